package shardmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Errors of a shard operation.
var (
	// ErrNotFound reports that the shard does not hold the key.
	ErrNotFound = errors.New("shardmap: key not found")
	// ErrOpen reports that the shard's circuit breaker is open: the shard
	// failed recently and is skipped until its cooldown passes.
	ErrOpen = errors.New("shardmap: circuit open")
	// ErrDown reports that the shard has no connection yet.
	ErrDown = errors.New("shardmap: shard not connected")
)

// Spec describes how to reach one shard. Two shards with equal Specs and
// Options are the same shard: a reload keeps its client (and its L1).
type Spec struct {
	Name string
	// Exactly one of Addr (standalone), Sentinel (comma-separated sentinel
	// addresses, with Master) and Cluster (comma-separated seeds).
	Addr     string
	Sentinel string
	Master   string
	Cluster  string
	// ReadReplicas sends lookups to replicas (Sentinel and Cluster).
	ReadReplicas bool
	// TLS and Auth reach the data nodes; SentinelTLS and SentinelAuth the
	// sentinels (auth.go).
	TLS          TLS
	Auth         Auth
	SentinelTLS  TLS
	SentinelAuth Auth
}

// Kind names the shard's topology: "standalone", "sentinel" or "cluster".
func (s Spec) Kind() string {
	switch {
	case s.Sentinel != "":
		return "sentinel"
	case s.Cluster != "":
		return "cluster"
	}
	return "standalone"
}

// Target is the address (or addresses) the shard is reached at, for logs.
func (s Spec) Target() string {
	switch s.Kind() {
	case "sentinel":
		return s.Master + "@" + s.Sentinel
	case "cluster":
		return s.Cluster
	}
	return s.Addr
}

// Options are the client options shared by every shard. Zero values are
// not defaulted here: the config package fills them in.
type Options struct {
	L1BytesPerConn int
	DisableL1      bool
	L1TTL          time.Duration
	// L1MinUses is how many lookups of a key, within the last few
	// hundred thousand keys looked up, the L1 waits for before it keeps
	// the key (admit.go): 2 or more, the second; less, the first.
	L1MinUses       int
	DialTimeout     time.Duration
	CommandTimeout  time.Duration
	BreakerFailures int
	BreakerCooldown time.Duration
	MaxFlushDelay   time.Duration // valkey-go MaxFlushDelay; zero or negative: none
	// AuthRefresh is how often live connections re-authenticate when the
	// credentials can change (a password file or command).
	AuthRefresh time.Duration
	// ClusterRefresh is how often a Cluster shard rescans its topology
	// (valkey-go ShardsRefreshInterval); zero or negative: only on MOVED.
	ClusterRefresh time.Duration
	// Log receives connection events (no tracking, insecure TLS); nil
	// discards them.
	Log *slog.Logger
	// Member names this gateway in each shard's roll of the gateways that
	// use it (peers.go); "": not on the roll, and Alone is always false.
	Member string
}

// Shard is one Valkey shard: a valkey-go client with client-side caching
// (the L1) and a circuit breaker. A Shard connects lazily: a shard that is
// down when the gateway starts is retried in the background while requests
// fail open to the origin.
type Shard struct {
	Spec
	opts Options

	client atomic.Pointer[clientBox] // writes, and reads unless reader is set
	br     breaker
	hooks  atomic.Pointer[Hooks]

	gets getBatcher // lookups without the L1

	inflight atomic.Int64 // calls in progress
	refs     atomic.Int32 // sets holding the shard (refs.go)
	retired  atomic.Bool  // no set holds the shard any more

	lastErr atomic.Pointer[string] // why the last connect or command failed; nil after a success
	l1Off   atomic.Pointer[string] // why the shard runs without L1; nil with L1

	mu      sync.Mutex // guards dialing and closed
	dialing bool
	closed  bool

	peerStop chan struct{} // closed by Close: ends the roll's beat (peers.go); nil without Member
}

// clientBox holds a shard's clients. r serves lookups: the same client as
// c, or a replica client for a Sentinel shard with ReadReplicas. noL1
// sends lookups through the batcher: L1 disabled, or the server refused
// CLIENT TRACKING.
type clientBox struct {
	c, r valkey.Client
	noL1 bool
}

// Dial returns a Shard for spec. It tries to connect once; if that fails
// the Shard is returned anyway, marked down, and reconnects on use.
func Dial(spec Spec, o Options) *Shard {
	s := &Shard{Spec: spec, opts: o}
	s.gets.slotted = spec.Kind() == "cluster"
	s.br.threshold = int32(max(o.BreakerFailures, 1))
	s.br.cooldown = int64(o.BreakerCooldown)
	if spec.TLS.Insecure || spec.SentinelTLS.Insecure {
		s.logger().Warn("shardmap: TLS certificate verification is OFF for this shard (insecure_skip_verify): anyone on the path can read and change its traffic", "shard", spec.Name)
	}
	if err := s.connect(); err != nil {
		s.br.trip(time.Now().UnixNano())
	}
	if o.Member != "" {
		_ = s.join() // before the first request: peers see us at once (peers.go)
		s.peerStop = make(chan struct{})
		go s.beat(s.peerStop)
	}
	return s
}

func (s *Shard) logger() *slog.Logger {
	if s.opts.Log != nil {
		return s.opts.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Shard) clientOption() (valkey.ClientOption, error) {
	o := valkey.ClientOption{
		DisableCache:      s.opts.DisableL1,
		CacheSizeEachConn: s.opts.L1BytesPerConn,
		// valkey-go's default buffers are 0.5 MiB each way per connection
		// (RATIONALE.md, "Footprint"); values larger than the buffer are
		// read and written around it, so a small one costs no syscalls.
		ReadBufferEachConn:  ConnBufferBytes,
		WriteBufferEachConn: ConnBufferBytes,
		Dialer:              net.Dialer{Timeout: s.opts.DialTimeout, KeepAlive: s.opts.CommandTimeout}, // valkey-go pings every KeepAlive: a hung shard is found within about that
		ConnWriteTimeout:    s.opts.CommandTimeout,
		// A cache command that fails goes to the origin, not around again:
		// retrying would make the request wait out a failover. MOVED and
		// ASK are still followed.
		DisableRetry: true,
	}
	if s.opts.MaxFlushDelay > 0 {
		o.MaxFlushDelay = s.opts.MaxFlushDelay
	}
	var err error
	if o.TLSConfig, err = s.TLS.Config(); err != nil {
		return o, err
	}
	var src CredentialSource
	rotates := false
	if s.Auth.Set() {
		if src, rotates, err = NewSource(s.Auth); err != nil {
			return o, err
		}
		o.AuthCredentialsFn = authFn(src, rotates, s.opts.AuthRefresh, nil)
	}
	switch s.Kind() {
	case "sentinel":
		o.InitAddress = strings.Split(s.Sentinel, ",")
		o.Sentinel = valkey.SentinelOption{MasterSet: s.Master, Dialer: o.Dialer}
		if o.Sentinel.TLSConfig, err = s.SentinelTLS.Config(); err != nil {
			return o, fmt.Errorf("sentinel: %w", err)
		}
		var sc Credentials
		if s.SentinelAuth.Set() {
			// The sentinels' credentials are read when the shard
			// connects: valkey-go has no refresh for them.
			ssrc, _, err := NewSource(s.SentinelAuth)
			if err != nil {
				return o, fmt.Errorf("sentinel: %w", err)
			}
			if sc, err = ssrc.Credentials(context.Background()); err != nil {
				return o, fmt.Errorf("sentinel: %w", err)
			}
			o.Sentinel.Username, o.Sentinel.Password = sc.Username, sc.Password
		}
		if src != nil {
			// valkey-go dials the sentinels with a copy of the data nodes'
			// options, AuthCredentialsFn included, which wins over
			// Sentinel.Username/Password: answer a sentinel's address
			// with the sentinels' credentials.
			o.AuthCredentialsFn = authFn(src, rotates, s.opts.AuthRefresh, &sentinelCreds{addrs: sentinelAddrs(o.InitAddress), creds: sc})
		}
	case "cluster":
		o.InitAddress = strings.Split(s.Cluster, ",")
		if s.ReadReplicas {
			o.SendToReplicas = func(cmd valkey.Completed) bool { return cmd.IsReadOnly() }
		}
		if s.opts.ClusterRefresh > 0 {
			o.ClusterOption.ShardsRefreshInterval = s.opts.ClusterRefresh
		}
	default:
		o.InitAddress = []string{s.Addr}
		o.ForceSingleClient = true
	}
	return o, nil
}

// connect dials the shard and publishes its clients. A server that
// refuses CLIENT TRACKING (no permission, a proxy, an old server) is
// dialed again without client-side caching: the shard serves through
// batched L2 lookups and says so (L1Off, a log line).
func (s *Shard) connect() error {
	err := s.dial()
	if err != nil {
		msg := err.Error()
		s.lastErr.Store(&msg)
		return err
	}
	s.lastErr.Store(nil)
	return nil
}

func (s *Shard) dial() error {
	o, err := s.clientOption()
	if err != nil {
		return fmt.Errorf("shardmap: shard %s (%s %s): %w", s.Name, s.Kind(), s.Target(), err)
	}
	c, err := valkey.NewClient(o)
	if err != nil && !o.DisableCache && errors.Is(err, valkey.ErrNoCache) {
		reason := "server refused CLIENT TRACKING: " + firstLine([]byte(err.Error()))
		if s.l1Off.Load() == nil {
			s.logger().Warn("shardmap: shard runs without L1 (every lookup is a round trip, batched)", "shard", s.Name, "reason", reason)
		}
		s.l1Off.Store(&reason)
		o.DisableCache = true
		c, err = valkey.NewClient(o)
	} else if err == nil && !o.DisableCache {
		s.l1Off.Store(nil)
	}
	if err != nil {
		return fmt.Errorf("shardmap: shard %s (%s %s): %w%s", s.Name, s.Kind(), s.Target(), err, s.tlsHint(err))
	}
	box := &clientBox{c: c, r: c, noL1: o.DisableCache}
	if s.Kind() == "sentinel" && s.ReadReplicas {
		o.ReplicaOnly = true
		r, err := valkey.NewClient(o)
		if err != nil {
			c.Close()
			return fmt.Errorf("shardmap: shard %s replicas (%s): %w", s.Name, s.Target(), err)
		}
		box.r = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		box.close()
		return ErrDown
	}
	s.client.Store(box)
	return nil
}

// tlsHint explains the reset that a server requiring client certificates
// gives a TLS 1.3 client without one: the handshake succeeded, then the
// server hung up.
func (s *Shard) tlsHint(err error) string {
	if !s.TLS.Enabled || s.TLS.CertFile != "" {
		return ""
	}
	if msg := err.Error(); strings.Contains(msg, "reset by peer") || strings.Contains(msg, "broken pipe") || strings.Contains(msg, "certificate required") || strings.Contains(msg, "EOF") {
		return " (if the server requires client certificates, set tls.cert_file and tls.key_file)"
	}
	return ""
}

// Err returns why the shard's last connection attempt or command failed,
// or "" once one succeeded after it. It names no secret: valkey-go's errors carry the server's
// reply (WRONGPASS…) or the TLS failure, never the password.
func (s *Shard) Err() string {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// L1Off returns why the shard serves without its L1 ("" while the L1 is
// on): valkey.disable_l1, or a server that refused CLIENT TRACKING.
func (s *Shard) L1Off() string {
	if s.opts.DisableL1 {
		return "valkey.disable_l1"
	}
	if p := s.l1Off.Load(); p != nil {
		return *p
	}
	return ""
}

// TLSOn reports whether the shard's data nodes are reached over TLS.
func (s *Shard) TLSOn() bool { return s.TLS.Enabled }

func (b *clientBox) close() {
	b.c.Close()
	if b.r != b.c {
		b.r.Close()
	}
}

// redial connects in the background, once at a time.
func (s *Shard) redial() {
	s.mu.Lock()
	if s.dialing || s.closed {
		s.mu.Unlock()
		return
	}
	s.dialing = true
	s.mu.Unlock()
	go func() {
		err := s.connect()
		s.mu.Lock()
		s.dialing = false
		s.mu.Unlock()
		if err == nil {
			s.br.succeed()
			if s.opts.Member != "" {
				_ = s.join()
			}
		}
	}()
}

// acquire returns the client if the breaker lets a call through. A call
// that acquired must call release.
func (s *Shard) acquire(now int64) (*clientBox, error) {
	if !s.br.allow(now) {
		return nil, ErrOpen
	}
	s.inflight.Add(1)
	b := s.client.Load()
	if b == nil {
		s.release()
		if !s.retired.Load() {
			s.redial()
		}
		s.br.fail(now)
		return nil, ErrDown
	}
	return b, nil
}

// release ends a call that acquired. The last call on a retired shard
// closes it, on a goroutine of its own: Close leaves the roll, a round
// trip of up to a second to a shard that may be slow, which the request
// that happened to finish last must not wait for.
func (s *Shard) release() {
	if s.inflight.Add(-1) == 0 && s.retired.Load() {
		go s.Close()
	}
}

// retire marks the shard as no longer held by any set: it closes once
// its in-flight calls have finished (at once if there are none). A call
// that starts after retire fails with ErrDown, and the gateway goes to the
// origin.
func (s *Shard) retire() {
	s.retired.Store(true)
	if s.inflight.Load() == 0 {
		s.Close()
	}
}

// InFlight returns the number of calls in progress.
func (s *Shard) InFlight() int64 { return s.inflight.Load() }

// done records the outcome of a call for the breaker.
func (s *Shard) done(err error, now int64) {
	if err == nil || valkey.IsValkeyNil(err) {
		s.br.succeed()
		if s.lastErr.Load() != nil { // a load, no write, while all is well
			s.lastErr.Store(nil)
		}
		return
	}
	if errors.Is(err, context.Canceled) { // the client went away, not the shard
		return
	}
	msg := err.Error() // a failing shard's path: the allocation does not matter
	s.lastErr.Store(&msg)
	s.br.fail(now)
}

// Get reads key through client-side caching. The returned bytes are a
// read-only view shared with the L1: they must not be modified. l1 reports
// whether the value came from the L1 without a round trip; with
// ErrNotFound, whether the L1 now holds that answer (a tracked read).
func (s *Shard) Get(ctx context.Context, key string, now time.Time) (val []byte, l1 bool, err error) {
	return s.get(ctx, key, true, now)
}

// get is Get; with admit false, a key the L1 does not hold yet is read
// with a plain GET that Valkey does not track and the L1 does not keep
// (admit.go).
func (s *Shard) get(ctx context.Context, key string, admit bool, now time.Time) (val []byte, l1 bool, err error) {
	n := now.UnixNano()
	b, err := s.acquire(n)
	if err != nil {
		return nil, false, err
	}
	c := b.r
	hit, tracked := false, false
	switch {
	case b.noL1:
		val, err = s.gets.get(ctx, c, key) // batch.go
	case !admit:
		val, err = c.Do(ctx, c.B().Get().Key(key).Build()).AsBytes()
	default:
		res := c.DoCache(ctx, c.B().Get().Key(key).Cache(), s.opts.L1TTL)
		val, err = res.AsBytes()
		hit, tracked = res.IsCacheHit(), true
	}
	s.release()
	if !hit {
		// Only a round trip says anything about the shard's health: L1 hits
		// keep succeeding while a frozen shard's connection waits out its
		// timeout, and must not keep the breaker closed. An L1 hit pays
		// nothing here.
		s.done(err, n)
		s.observe(ctx, "get", now, err) // after the fact, from the caller's clock
	}
	if err != nil {
		if valkey.IsValkeyNil(err) {
			return nil, tracked, ErrNotFound
		}
		return nil, false, err
	}
	return val, hit, nil
}

// GetDirect reads key with a round trip to the primary, bypassing the L1:
// for re-checks that must see the shard's current value.
func (s *Shard) GetDirect(ctx context.Context, key string) ([]byte, error) {
	var val []byte
	err := s.run(ctx, "get", func(b *clientBox) error {
		var err error
		val, err = b.c.Do(ctx, b.c.B().Get().Key(key).Build()).AsBytes()
		return err
	})
	if valkey.IsValkeyNil(err) {
		return nil, ErrNotFound
	}
	return val, err
}

// run calls fn with the shard's clients if the breaker lets it, and
// records the outcome.
func (s *Shard) run(ctx context.Context, cmd string, fn func(b *clientBox) error) error {
	start := time.Now()
	n := start.UnixNano()
	b, err := s.acquire(n)
	if err != nil {
		return err
	}
	err = fn(b)
	s.release()
	s.done(err, n)
	s.observe(ctx, cmd, start, err)
	return err
}

// Set stores val under key for ttl (rounded up to a millisecond) and adds
// key to the index set of each tag on this shard, so that a purge by tag
// is one command per shard. A tag set lives as long as its longest-lived
// member.
func (s *Shard) Set(ctx context.Context, key string, val []byte, ttl time.Duration, tags ...string) error {
	return s.run(ctx, "set", func(b *clientBox) error {
		c := b.c
		if len(tags) == 0 {
			return c.Do(ctx, setCmd(c, key, val, ttl)).Error()
		}
		return firstErr(c.DoMulti(ctx, setCmds(c, key, val, ttl, tags, 0)...))
	})
}

func setCmd(c valkey.Client, key string, val []byte, ttl time.Duration) valkey.Completed {
	return c.B().Set().Key(key).Value(valkey.BinaryString(val)).PxMilliseconds(max(ttl.Milliseconds(), 1)).Build()
}

// setCmds are the commands of Set, with room for extra more.
func setCmds(c valkey.Client, key string, val []byte, ttl time.Duration, tags []string, extra int) valkey.Commands {
	ms := max(ttl.Milliseconds(), 1)
	cmds := make(valkey.Commands, 0, 1+3*len(tags)+extra)
	cmds = append(cmds, setCmd(c, key, val, ttl))
	for _, t := range tags {
		tk := TagKey(t)
		cmds = append(cmds,
			c.B().Sadd().Key(tk).Member(key).Build(),
			c.B().Pexpire().Key(tk).Milliseconds(ms).Nx().Build(),
			c.B().Pexpire().Key(tk).Milliseconds(ms).Gt().Build())
	}
	return cmds
}

// firstErr is the first error of a pipeline's replies.
func firstErr(res []valkey.ValkeyResult) error {
	for _, r := range res {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// SetNX stores val under key for ttl unless key exists; it reports
// whether it stored.
func (s *Shard) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	var ok bool
	err := s.run(ctx, "set", func(b *clientBox) error {
		c := b.c
		err := c.Do(ctx, c.B().Set().Key(key).Value(valkey.BinaryString(val)).Nx().PxMilliseconds(max(ttl.Milliseconds(), 1)).Build()).Error()
		if valkey.IsValkeyNil(err) {
			return nil
		}
		ok = err == nil
		return err
	})
	return ok, err
}

// Extend makes key live at least ttl from now (PEXPIRE GT).
func (s *Shard) Extend(ctx context.Context, key string, ttl time.Duration) error {
	return s.run(ctx, "pexpire", func(b *clientBox) error {
		c := b.c
		return c.Do(ctx, c.B().Pexpire().Key(key).Milliseconds(max(ttl.Milliseconds(), 1)).Gt().Build()).Error()
	})
}

// Del removes keys; every gateway's L1 drops them through tracking.
func (s *Shard) Del(ctx context.Context, keys ...string) error {
	return s.run(ctx, "del", func(b *clientBox) error {
		c := b.c
		for _, r := range c.DoMulti(ctx, delCmds(c, keys)...) { // one DEL per key: keys may be in other Cluster slots
			if err := r.Error(); err != nil {
				return err
			}
		}
		return nil
	})
}

func delCmds(c valkey.Client, keys []string) valkey.Commands {
	cmds := make(valkey.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = c.B().Del().Key(k).Build()
	}
	return cmds
}

// ConnBufferBytes is the read and the write buffer of each Valkey
// connection: 64 KiB instead of valkey-go's 0.5 MiB. Commands and replies
// of the gateway are one entry each; bufio reads and writes one larger
// than the buffer directly, so the size only bounds how many small
// pipelined replies one read takes in.
const ConnBufferBytes = 64 << 10

// TagPrefix starts the keys of the per-shard tag index sets.
const TagPrefix = "edgecache:tag:"

// TagKey is the key of tag's index set.
func TagKey(tag string) string { return TagPrefix + tag }

// softScript marks an entry stale in place: it overwrites the entry's
// fresh-until (8 bytes, big-endian unix ms, at entry.FreshUntilOffset
// of the envelope, which the caller passes) if the key exists. A soft-purged entry is still there for
// stale-if-error and revalidation.
var softScript = valkey.NewLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SETRANGE', KEYS[1], tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0`)

// tagScript purges every member of a tag set, hard (DEL) or soft (as
// softScript), in one round trip. It names keys outside KEYS, which a
// standalone or Sentinel shard allows; Cluster shards use purgeTagCluster.
var tagScript = valkey.NewLuaScript(`
local ks = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, k in ipairs(ks) do
  if ARGV[1] == 'soft' then
    if redis.call('EXISTS', k) == 1 then
      redis.call('SETRANGE', k, tonumber(ARGV[3]), ARGV[2])
      n = n + 1
    end
  else
    n = n + redis.call('DEL', k)
  end
end
if ARGV[1] ~= 'soft' then redis.call('DEL', KEYS[1]) end
return n`)

// SoftPurge marks key stale by writing staleAt (8 bytes) at offset off of
// its value, if it exists. It reports whether the key existed.
func (s *Shard) SoftPurge(ctx context.Context, key string, off int, staleAt []byte) (bool, error) {
	var n int64
	err := s.run(ctx, "purge", func(b *clientBox) error {
		var err error
		n, err = softScript.Exec(ctx, b.c, []string{key}, []string{string(staleAt), fmt.Sprint(off)}).AsInt64()
		return err
	})
	return n == 1, err
}

// PurgeTag removes (or, soft, marks stale) every entry of tag on this
// shard and returns how many it touched: one command on a standalone or
// Sentinel shard; on a Cluster shard, SMEMBERS then one pipelined command
// per member (members live in other slots).
func (s *Shard) PurgeTag(ctx context.Context, tag string, soft bool, off int, staleAt []byte) (int, error) {
	var n int64
	err := s.run(ctx, "purge_tag", func(b *clientBox) error {
		c := b.c
		mode := "hard"
		if soft {
			mode = "soft"
		}
		if s.Kind() != "cluster" {
			var err error
			n, err = tagScript.Exec(ctx, c, []string{TagKey(tag)}, []string{mode, string(staleAt), fmt.Sprint(off)}).AsInt64()
			return err
		}
		members, err := c.Do(ctx, c.B().Smembers().Key(TagKey(tag)).Build()).AsStrSlice()
		if err != nil || len(members) == 0 {
			return err
		}
		var results []valkey.ValkeyResult
		if soft {
			execs := make([]valkey.LuaExec, len(members))
			for i, k := range members {
				execs[i] = valkey.LuaExec{Keys: []string{k}, Args: []string{string(staleAt), fmt.Sprint(off)}}
			}
			results = softScript.ExecMulti(ctx, c, execs...)
		} else {
			results = c.DoMulti(ctx, delCmds(c, append(members, TagKey(tag)))...)
		}
		for _, r := range results {
			v, err := r.AsInt64()
			if err != nil {
				return err
			}
			n += v
		}
		if !soft {
			n-- // the tag set itself
		}
		return nil
	})
	return int(n), err
}

// Connected reports whether the shard has a client.
func (s *Shard) Connected() bool { return s.client.Load() != nil }

// Healthy reports whether the breaker is closed and the shard connected.
func (s *Shard) Healthy() bool {
	return s.client.Load() != nil && s.br.openUntil.Load() == 0
}

// Close closes the client. Calls after Close fail with ErrDown.
func (s *Shard) Close() {
	s.mu.Lock()
	was := s.closed
	s.closed = true
	b := s.client.Swap(nil)
	s.mu.Unlock()
	if !was && s.peerStop != nil {
		close(s.peerStop)
	}
	if b != nil {
		if s.opts.Member != "" {
			s.leave(b)
		}
		b.close()
	}
}

// breaker is a consecutive-failure circuit breaker. Closed, it lets every
// call through; after threshold failures in a row it opens for cooldown;
// then one probe at a time goes through until one succeeds. A closed
// breaker costs two atomic loads per call and no writes.
type breaker struct {
	threshold int32
	cooldown  int64 // ns
	failures  atomic.Int32
	openUntil atomic.Int64 // unix ns; 0 means closed
}

func (b *breaker) allow(now int64) bool {
	until := b.openUntil.Load()
	if until == 0 || now >= until && b.openUntil.CompareAndSwap(until, now+b.cooldown) {
		return true // closed, or this call is the half-open probe
	}
	return false
}

func (b *breaker) succeed() {
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
	}
}

func (b *breaker) fail(now int64) {
	if b.failures.Add(1) >= b.threshold {
		b.trip(now)
	}
}

func (b *breaker) trip(now int64) { b.openUntil.Store(now + b.cooldown) }

// Open reports whether the shard's breaker is open.
func (s *Shard) Open() bool { return s.br.openUntil.Load() != 0 }

// Hooks receive a shard's instrumentation. They are set per shard with
// SetHooks rather than in Options: Options identify a shard across
// reloads (Set.Find compares them), and funcs do not compare.
type Hooks struct {
	// Command is called after each command that made a round trip (or
	// tried to: err says how it failed), never for an L1 hit, with the
	// caller's context, the command's name as the call sites give it
	// (get, set, pexpire, del, purge, purge_tag, lock, unlock…), when it
	// started and its error (nil for a missing key).
	// It must be cheap and must not block.
	Command func(ctx context.Context, shard, cmd string, start time.Time, err error)
}

// SetHooks sets (nil: removes) the shard's instrumentation.
func (s *Shard) SetHooks(h *Hooks) { s.hooks.Store(h) }

func (s *Shard) observe(ctx context.Context, cmd string, start time.Time, err error) {
	if h := s.hooks.Load(); h != nil && h.Command != nil {
		if valkey.IsValkeyNil(err) {
			err = nil
		}
		h.Command(ctx, s.Name, cmd, start, err)
	}
}
