package hook

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Request is the read-only view of a client request that policies and
// hooks decide on, canonicalized as the gateway fills it (CanonicalHost in
// policies).
type Request struct {
	Method   string
	Scheme   string // "http" or "https", as the client used it
	Host     string // lower-cased, without a default port
	Path     string // the escaped path as the client sent it
	RawQuery string // without the leading '?'
	Header   http.Header
}

// Response is the read-only view of an origin response given to the TTL
// policy and the response hook. Header is the origin's, before any
// filtering.
type Response struct {
	Status int
	Header http.Header
}

// Decision is what a TTL policy (or the response hook) says about an
// origin response. A plugin is given the built-in policy's decision and
// changes what it sets (plugins/ABI.md, "response").
type Decision struct {
	// Store reports whether the response may be stored at all.
	Store bool
	// TTL is the freshness lifetime counted from the moment of storage,
	// already reduced by the response's Age.
	TTL time.Duration
	// StaleWhileRevalidate and StaleIfError extend how long the stored
	// entry may be used after TTL (RFC 5861).
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	// Tags are surrogate keys that a purge by tag removes.
	Tags []string
	// Reason says why Store is false, for logs and the Cache-Status detail.
	Reason string
}

// MissAction is what a Miss policy (or the miss hook) says to do when the
// cache cannot answer. The zero value means: fetch from the route's origin
// and store as the TTL policy decides.
type MissAction struct {
	// Bypass fetches from the origin without storing the response.
	Bypass bool
	// OriginURL replaces the origin URL of the request ("" keeps it).
	OriginURL string
	// Header is set on the origin request (replacing values of the same name).
	Header http.Header
	// Status, when not zero, answers the client directly with Status and
	// Body, without contacting the origin; such a reply is never stored.
	Status int
	Body   []byte
}

// KeyAction says how the key hook named the entry.
type KeyAction uint8

const (
	// KeyDefault: the hook set nothing (or declined): use the built-in key.
	KeyDefault KeyAction = iota
	// KeyReplace: the appended bytes are the whole cache key (set_key).
	KeyReplace
	// KeyExtend: the built-in key followed by the appended bytes
	// (add_key_part); the caller puts the built-in key first.
	KeyExtend
)

// String returns "default", "replace" or "extend".
func (a KeyAction) String() string {
	switch a {
	case KeyReplace:
		return "replace"
	case KeyExtend:
		return "extend"
	}
	return "default"
}

// ID names a function a plugin may export. A plugin need not export every
// hook: one it does not export is the built-in policy's job.
type ID uint8

const (
	// KeyHook names the cache entry of a request ("key" export).
	KeyHook ID = iota
	// ResponseHook decides whether and how long an origin response is
	// stored ("response" export).
	ResponseHook
	// MissHook decides what to do when the cache has no usable entry
	// ("miss" export).
	MissHook
	// InitHook receives the plugin's config once per instance ("init"
	// export).
	InitHook

	// Count is the number of hooks; IDs run from 0 to Count-1.
	Count = 4
)

var names = [Count]string{"key", "response", "miss", "init"}

// String returns the hook's export name.
func (h ID) String() string {
	if int(h) < len(names) {
		return names[h]
	}
	return "hook?"
}

// ErrDeclined is returned by a Plugin's hook call when the hook returned
// non-zero: it declined, and the built-in policy decides. It is not a
// fault.
var ErrDeclined = errors.New("hook: declined")

// Plugin is a loaded plugin as the policies call it; *wasm.Plugin
// implements it. Its methods are safe for concurrent use.
type Plugin interface {
	// Name identifies the plugin in errors, logs and metrics.
	Name() string
	// Has reports whether the plugin exports hook h.
	Has(h ID) bool
	// AppendKey runs the key hook for r and appends what it set to dst:
	// the whole key (KeyReplace) or '|'-prefixed parts to follow the
	// built-in key (KeyExtend). On error (ErrDeclined included) dst is
	// returned unchanged with KeyDefault.
	AppendKey(dst []byte, r *Request) ([]byte, KeyAction, error)
	// Response runs the response hook; d holds the built-in decision on
	// entry and the plugin's on success, and is unchanged on error.
	Response(r *Request, resp *Response, d *Decision) error
	// Miss runs the miss hook; a holds the built-in action on entry and
	// the plugin's on success, and is unchanged on error.
	Miss(r *Request, a *MissAction) error
	// Stats returns a snapshot of the plugin's counters.
	Stats() PluginStats
	// WaitFull waits until the plugin's pool is full for the first time.
	WaitFull(ctx context.Context) error
	// Close waits for the calls in flight and releases the plugin.
	Close(ctx context.Context) error
}

// Loader loads plugins; *wasm.Host implements it. The gateway is given
// one, so that it does not depend on the WASM runtime.
type Loader interface {
	// LoadPlugin compiles (or takes from a compilation cache) and
	// instantiates code.
	LoadPlugin(ctx context.Context, code []byte, o PluginOptions) (Plugin, error)
	// Close releases the loader and every plugin it loaded.
	Close(ctx context.Context) error
}

// PluginOptions configure one loaded plugin. Zero values mean the loader's
// documented defaults (wasm.DefaultPoolSize, …).
type PluginOptions struct {
	// Name identifies the plugin in errors, logs and metrics.
	Name string
	// Config is given to the plugin's init hook (get_config); by
	// convention JSON.
	Config []byte
	// PoolSize is the most instances: the pool starts at one, created by
	// Load, and grows on demand (or Plugin.WaitFull) up to PoolSize.
	PoolSize int
	// IdleTimeout closes an instance unused that long, keeping one.
	IdleTimeout time.Duration
	// Timeout bounds each hook call.
	Timeout time.Duration
	// MemoryLimitPages bounds each instance's memory, in 64 KiB pages.
	MemoryLimitPages uint32
	// MaxCallsPerInstance recycles an instance after that many calls.
	MaxCallsPerInstance int
	// MemoEntries bounds the key hook's memo; negative disables it.
	MemoEntries int
	// InitTimeout bounds instantiating one instance and its init hook.
	InitTimeout time.Duration
	// Observe, when set, is told the duration of every guest call (not of
	// memo hits), faulted or not: for a latency histogram. It runs on the
	// calling goroutine and must be quick.
	Observe func(h ID, d time.Duration)
	// BuiltinKey, when set, appends the built-in cache key of a request:
	// what the ABI's get_builtin_key returns. policies sets it to
	// DefaultKey's (the wasm host cannot import policies).
	BuiltinKey func(dst []byte, r *Request) []byte
}

// HookStats count the guest calls of one hook.
type HookStats struct {
	Calls    uint64 // guest calls made (memo hits are not calls)
	Declined uint64 // calls that returned non-zero: the built-in policy decided
	Faults   uint64 // calls that faulted: the built-in policy decided
}

// PluginStats is a snapshot of a plugin's counters.
type PluginStats struct {
	Hooks [Count]HookStats // indexed by ID

	// Faults by kind (their sum is the sum of Hooks[].Faults).
	Timeouts, Traps, OutOfMemory, ABIViolations uint64
	// Busy counts calls that found no free instance within the timeout;
	// Suspended, calls refused while the plugin was suspended after
	// repeated faults; Suspensions, how often that happened.
	Busy, Suspended, Suspensions uint64

	// MemoHits and MemoMisses count key lookups in the memo; MemoSkipped
	// counts key results not memoized because the call read the clock
	// or randomness. MemoEntries is the memo's size now, MemoFields the
	// request fields the key hook has read ("path", "header:Accept"…).
	MemoHits, MemoMisses, MemoSkipped uint64
	MemoEntries                       int
	MemoFields                        []string
	MemoDisabled                      bool

	// Instances is the number of live instances; Instantiated counts every
	// instance created since Load (faults and recycling replace them),
	// Recycled those closed after MaxCallsPerInstance calls, Retired
	// those closed after IdleTimeout unused (the pool shrinking).
	Instances    int
	Instantiated uint64
	Recycled     uint64
	Retired      uint64
	// MemoryBytes is the linear memory of the live instances, as of the
	// end of their last call.
	MemoryBytes int64
}
