package config

import (
	"time"
)

// Config is one loaded configuration. It is a value: once Load returns it,
// nothing mutates it, so a generation built from it can be swapped in whole.
type Config struct {
	Server    Server    `koanf:"server"`
	Routes    []Route   `koanf:"routes"`
	Origins   []Origin  `koanf:"origins"` // origin pools (origins.go)
	Shards    []Shard   `koanf:"shards"`
	Valkey    Valkey    `koanf:"valkey"`
	Embedded  Embedded  `koanf:"embedded"`
	Plugins   []Plugin  `koanf:"plugins"`
	WASM      WASM      `koanf:"wasm"`
	Limits    Limits    `koanf:"limits"`
	Admin     Admin     `koanf:"admin"`
	Telemetry Telemetry `koanf:"telemetry"`
	Log       Log       `koanf:"log"`
	// Forwarding is what fills and passes tell the origin (security.go).
	Forwarding Forwarding `koanf:"forwarding"`
	// Compress is every route's compression, made on demand (compress.go).
	Compress Compress `koanf:"compress"`
}

// Server is the traffic listener.
type Server struct {
	// Listen is the address of the traffic listener (host:port).
	Listen string `koanf:"listen"`
	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// in-flight requests.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// ReadHeaderTimeout bounds how long a client may take to send headers.
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections idle for longer.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// DisableFastPath gives every connection to Go's net/http instead of
	// serving plain HTTP/1.1 GET and HEAD requests on edgecache's own
	// connection loop (internal/h1), which hands everything else to
	// net/http anyway. An escape hatch, not a tuning knob.
	DisableFastPath bool `koanf:"disable_fast_path"`
	// TLS, HTTP/2, HTTP/3, PROXY protocol and the redirect listener
	// (config/tls.go, internal/listen).
	TLS ServerTLS `koanf:"tls"`
	// HTTP3 also serves HTTP/3 (QUIC) on UDP at the same port as Listen.
	HTTP3 bool `koanf:"http3"`
	// H2C serves HTTP/2 without TLS (prior knowledge), for load balancers.
	H2C            bool          `koanf:"h2c"`
	HTTP2          HTTP2         `koanf:"http2"`
	ProxyProtocol  ProxyProtocol `koanf:"proxy_protocol"`
	RedirectListen string        `koanf:"redirect_listen"`
	MemoryLimit    ByteSize      `koanf:"memory_limit"` // GOMEMLIMIT-style; caps the caches (memory.go)
	IdleRelease    time.Duration `koanf:"idle_release"` // quiet this long: free heap back to the OS; negative: never
	viewMemoBytes  int64         // the view memo's bound under MemoryLimit (memory.go)
}

// Route maps requests (by host and path prefix) to an origin.
type Route struct {
	// Name identifies the route in logs and metrics.
	Name string `koanf:"name"`
	// Host matches the request's Host (case-insensitive, port ignored);
	// empty matches every host.
	Host string `koanf:"host"`
	// PathPrefix matches the start of the request path; empty means "/".
	PathPrefix string `koanf:"path_prefix"`
	// Origin is the base URL requests are forwarded to
	// (scheme://host[:port][/base]), or the name of a pool in origins.
	Origin string `koanf:"origin"`
	// OriginHost is the Host sent to the origin: "" the origin server's,
	// "preserve" the client's, anything else that host (origins.go).
	OriginHost string `koanf:"origin_host"`
	// Methods lists the request methods the route accepts; others are
	// answered 405 with the list in Allow. GET brings HEAD with it. Empty
	// accepts every method the gateway knows (GET, HEAD, OPTIONS, POST,
	// PUT, PATCH, DELETE).
	Methods []string `koanf:"methods"`
	// DefaultTTL is how long a response is kept when the origin says
	// nothing about freshness. Zero stores nothing without origin freshness.
	DefaultTTL time.Duration `koanf:"default_ttl"`
	// OriginTimeout bounds one origin fetch.
	OriginTimeout time.Duration `koanf:"origin_timeout"`
	// MaxBodyBytes is the largest body that is stored; larger responses
	// pass through uncached.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// NegativeTTL is how long a 404 or 410 is kept when the origin says
	// nothing about its freshness (negative caching). Negative: not at all.
	NegativeTTL time.Duration `koanf:"negative_ttl"`
	// HeuristicFreshness allows RFC 9111 heuristic freshness (a tenth of
	// the time since Last-Modified) when DefaultTTL is 0.
	HeuristicFreshness bool `koanf:"heuristic_freshness"`
	// StaleWhileRevalidate and StaleIfError are the stale windows used when
	// the origin sends none (RFC 5861).
	StaleWhileRevalidate time.Duration `koanf:"stale_while_revalidate"`
	StaleIfError         time.Duration `koanf:"stale_if_error"`
	// Keep is how long a stale entry that can be revalidated (it has an
	// ETag or Last-Modified) stays stored beyond its freshness and stale
	// windows, so that the origin can answer 304 instead of the body.
	Keep time.Duration `koanf:"keep"`
	// IgnoreClientNoCache is kept for old configurations: ignoring a
	// client's no-cache is now the default (see HonorClientNoCache).
	IgnoreClientNoCache bool `koanf:"ignore_client_no_cache"`
	// HonorClientNoCache lets a request's Cache-Control: no-cache (or
	// max-age=0, or Pragma: no-cache) force a revalidation with the origin;
	// by default the gateway ignores it, as CDNs do (RFC 9111 §5.2.1 makes
	// request directives advisory).
	HonorClientNoCache bool `koanf:"honor_client_no_cache"`
	// VaryNormalize lists request headers (besides Accept-Encoding, always
	// normalized) reduced to their first list member, lower-cased, when
	// they select a variant, so that variants don't explode.
	VaryNormalize []string `koanf:"vary_normalize"`
	// TagHeaders are the response headers that carry surrogate keys
	// (space- or comma-separated) for purge by tag.
	TagHeaders []string `koanf:"tag_headers"`
	// Plugins names the WASM plugins (from the top-level plugins list)
	// whose hooks replace the built-in policies on this route. Two plugins
	// of one route may not export the same hook.
	Plugins []string `koanf:"plugins"`
	// LockWait bounds how long a miss waits for another gateway that is
	// already fetching the same key (a lock in Valkey). Negative: no
	// cross-gateway coalescing.
	LockWait time.Duration `koanf:"lock_wait"`
	// CacheSetCookie stores responses that carry Set-Cookie (without the
	// header); by default they go to their client only.
	CacheSetCookie bool `koanf:"cache_set_cookie"`
	// CacheWithCookie stores responses to requests with Cookie under
	// default_ttl, negative_ttl and heuristics too; by default only
	// explicit origin freshness (max-age, s-maxage, Expires) stores them.
	CacheWithCookie bool `koanf:"cache_with_cookie"`
	// DeceptionArmor stores a response only when its Content-Type agrees
	// with the path's extension (web cache deception).
	DeceptionArmor bool `koanf:"deception_armor"`
	// Caching: targeted cache control and compression (caching.go).
	Caching Caching `koanf:"caching"`
	// Compress overrides the top-level compress block (compress.go).
	Compress Compress `koanf:"compress"`
}

// Shard is one Valkey shard of the L2: exactly one of Addr (a standalone
// node), Sentinel (a primary with replicas) or Cluster (a whole Valkey
// Cluster) is set.
type Shard struct {
	// Name identifies the shard and seeds its hash: renaming a shard moves
	// its keys, changing its address does not.
	Name string `koanf:"name"`
	// Addr is host:port of a standalone node.
	Addr string `koanf:"addr"`
	// Sentinel names a primary with replicas found through Sentinel.
	Sentinel *Sentinel `koanf:"sentinel"`
	// Cluster lists seed addresses of a Valkey Cluster; valkey-go learns
	// the topology and follows MOVED/ASK and failovers.
	Cluster []string `koanf:"cluster"`
	// ReadReplicas sends lookups to replicas (Sentinel and Cluster
	// shards); writes always go to the primary.
	ReadReplicas bool `koanf:"read_replicas"`
	// Weight is the shard's relative share of keys (default 1).
	Weight int `koanf:"weight"`
	// TLS, Username and the password fields (config/valkeyauth.go) default
	// to valkey's when the shard sets none of them.
	TLS                *TLS          `koanf:"tls"`
	Username           string        `koanf:"username"`
	PasswordFile       string        `koanf:"password_file"`
	PasswordEnv        string        `koanf:"password_env"`
	PasswordCommand    string        `koanf:"password_command"`
	PasswordCommandTTL time.Duration `koanf:"password_command_ttl"`
}

// Sentinel locates a primary through Sentinel.
type Sentinel struct {
	// Master is the name the sentinels monitor the primary under.
	Master string `koanf:"master"`
	// Addrs are the sentinels' host:port addresses.
	Addrs []string `koanf:"addrs"`
	// TLS (default: the shard's) and credentials of the sentinels
	// themselves, apart from the data nodes'.
	TLS          *TLS   `koanf:"tls"`
	Username     string `koanf:"username"`
	PasswordFile string `koanf:"password_file"`
	PasswordEnv  string `koanf:"password_env"`
}

// Valkey holds the client options shared by every shard.
type Valkey struct {
	// L1BytesPerConn is the client-side (L1) cache budget of each
	// connection (valkey-go CacheSizeEachConn).
	L1BytesPerConn int `koanf:"l1_bytes_per_conn"`
	// L1TTL caps how long an entry stays in L1 (it also never outlives the
	// key's TTL in Valkey).
	L1TTL time.Duration `koanf:"l1_ttl"`
	// DisableL1 turns client-side caching off: every lookup is a round trip.
	DisableL1 bool `koanf:"disable_l1"`
	// L1MinUses is the lookups of a key, 1 or 2, after which the L1 keeps
	// it (nginx's proxy_cache_min_uses, for the L1 only): with 2, a key's
	// first lookup in a while is a plain GET that Valkey does not track,
	// so a key asked for once (every miss of a crawl, a long tail) costs
	// no tracking, no invalidation push and no L1 room; its second lookup
	// is tracked and fills the L1. The L2 stores every key either way.
	L1MinUses int `koanf:"l1_min_uses"`
	// DialTimeout bounds connecting to a shard.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// CommandTimeout bounds one command round trip (valkey-go
	// ConnWriteTimeout: a shard that stops answering is detected within
	// about twice this).
	CommandTimeout time.Duration `koanf:"command_timeout"`
	// BreakerFailures is the number of consecutive failures that open a
	// shard's circuit breaker.
	BreakerFailures int `koanf:"breaker_failures"`
	// BreakerCooldown is how long an open breaker skips its shard before
	// letting one probe through.
	BreakerCooldown time.Duration `koanf:"breaker_cooldown"`
	// RebalanceWindow is how long after a shard-map change a miss on a
	// key's new owner reads the key's previous owner before going to the
	// origin. Zero means the default; a negative value turns it off.
	RebalanceWindow time.Duration `koanf:"rebalance_window"`
	// MaxFlushDelay lets a shard connection that has more than one command
	// waiting collect commands for up to this long after a write before
	// the next one (valkey-go MaxFlushDelay): fewer, larger writes, for
	// Valkey and the gateway alike. A lone command is never delayed. Zero
	// means the default; a negative value turns it off.
	MaxFlushDelay time.Duration `koanf:"max_flush_delay"`
	// FallbackTTL is how long, at most, an entry whose shard failed to
	// store it (or to answer for it) is kept in the gateway's own memory
	// and served from there while the shard stays unavailable, so that an
	// outage does not send every request for its keys to the origin. Zero
	// means the default; a negative value turns the fallback off.
	FallbackTTL time.Duration `koanf:"fallback_ttl"`
	// FallbackBytes is the memory budget of that fallback store.
	FallbackBytes int64 `koanf:"fallback_bytes"`
	// TLS and credentials every shard uses unless it sets its own; see
	// config/valkeyauth.go.
	TLS                    TLS           `koanf:"tls"`
	Username               string        `koanf:"username"`
	PasswordFile           string        `koanf:"password_file"`
	PasswordEnv            string        `koanf:"password_env"`
	PasswordCommand        string        `koanf:"password_command"`
	PasswordCommandTTL     time.Duration `koanf:"password_command_ttl"`
	AuthRefreshInterval    time.Duration `koanf:"auth_refresh_interval"`
	ClusterRefreshInterval time.Duration `koanf:"cluster_refresh_interval"`
}

// Embedded is the in-process store used when no shard is configured.
type Embedded struct {
	// MaxBytes is the memory budget of the store.
	MaxBytes int64 `koanf:"max_bytes"`
}

// Plugin is a WASM policy plugin (see plugins/ABI.md).
type Plugin struct {
	// Name is how routes refer to the plugin.
	Name string `koanf:"name"`
	// Path is the .wasm file; relative paths are relative to the config
	// file's directory. A changed file is picked up by the next reload.
	Path string `koanf:"path"`
	// Config is handed to the plugin's init hook, as JSON.
	Config map[string]any `koanf:"config"`
	// PoolSize is the number of instances (default 4).
	PoolSize int `koanf:"pool_size"`
	// Timeout bounds each hook call (default 100ms).
	Timeout time.Duration `koanf:"timeout"`
	// InitTimeout bounds instantiating one instance and its init hook.
	InitTimeout time.Duration `koanf:"init_timeout"`
	// MemoryLimitBytes bounds each instance's memory (default 32 MiB).
	MemoryLimitBytes int64 `koanf:"memory_limit_bytes"`
	// MaxCallsPerInstance recycles an instance after that many calls.
	MaxCallsPerInstance int `koanf:"max_calls_per_instance"`
	// MemoEntries bounds the key hook's memo; negative turns it off.
	MemoEntries int `koanf:"memo_entries"`
	// AllowedOrigins lists further origins (host or host:port, or URLs)
	// that the plugin's miss hook may send a request to, besides the
	// route's own origin host (security.go).
	AllowedOrigins []string `koanf:"allowed_origins"`
}

// WASM configures the plugin host.
type WASM struct {
	// CacheDir keeps compiled plugins on disk, so that a restart with the
	// same plugins starts fast ("" keeps them in memory). Read at start.
	CacheDir string `koanf:"cache_dir"`
}
