package shardmap

import (
	"context"
	"errors"
	"fmt"
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
	L1BytesPerConn  int
	DisableL1       bool
	L1TTL           time.Duration
	DialTimeout     time.Duration
	CommandTimeout  time.Duration
	BreakerFailures int
	BreakerCooldown time.Duration
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

	inflight atomic.Int64 // calls in progress
	retired  atomic.Bool  // no generation uses the shard any more

	mu      sync.Mutex // guards dialing and closed
	dialing bool
	closed  bool
}

// clientBox holds a shard's clients. r serves lookups: the same client as
// c, or a replica client for a Sentinel shard with ReadReplicas.
type clientBox struct{ c, r valkey.Client }

// Dial returns a Shard for spec. It tries to connect once; if that fails
// the Shard is returned anyway, marked down, and reconnects on use.
func Dial(spec Spec, o Options) *Shard {
	s := &Shard{Spec: spec, opts: o}
	s.br.threshold = int32(max(o.BreakerFailures, 1))
	s.br.cooldown = int64(o.BreakerCooldown)
	if err := s.connect(); err != nil {
		s.br.trip(time.Now().UnixNano())
	}
	return s
}

func (s *Shard) clientOption() valkey.ClientOption {
	o := valkey.ClientOption{
		DisableCache:      s.opts.DisableL1,
		CacheSizeEachConn: s.opts.L1BytesPerConn,
		Dialer:            net.Dialer{Timeout: s.opts.DialTimeout, KeepAlive: 30 * time.Second},
		ConnWriteTimeout:  s.opts.CommandTimeout,
		// A cache command that fails goes to the origin, not around again:
		// retrying would make the request wait out a failover. MOVED and
		// ASK are still followed.
		DisableRetry: true,
	}
	switch s.Kind() {
	case "sentinel":
		o.InitAddress = strings.Split(s.Sentinel, ",")
		o.Sentinel = valkey.SentinelOption{MasterSet: s.Master}
	case "cluster":
		o.InitAddress = strings.Split(s.Cluster, ",")
		if s.ReadReplicas {
			o.SendToReplicas = func(cmd valkey.Completed) bool { return cmd.IsReadOnly() }
		}
	default:
		o.InitAddress = []string{s.Addr}
		o.ForceSingleClient = true
	}
	return o
}

func (s *Shard) connect() error {
	c, err := valkey.NewClient(s.clientOption())
	if err != nil {
		return fmt.Errorf("shardmap: shard %s (%s %s): %w", s.Name, s.Kind(), s.Target(), err)
	}
	box := &clientBox{c: c, r: c}
	if s.Kind() == "sentinel" && s.ReadReplicas {
		o := s.clientOption()
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

func (s *Shard) release() {
	if s.inflight.Add(-1) == 0 && s.retired.Load() {
		s.Close()
	}
}

// Retire marks the shard as no longer used by any generation: it closes
// once its in-flight calls have finished (at once if there are none). A
// call that starts after Retire fails with ErrDown, and the gateway goes to
// the origin.
func (s *Shard) Retire() {
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
		return
	}
	if errors.Is(err, context.Canceled) { // the client went away, not the shard
		return
	}
	s.br.fail(now)
}

// Get reads key through client-side caching. The returned bytes are a
// read-only view shared with the L1: they must not be modified. l1 reports
// whether the value came from the L1 without a round trip.
func (s *Shard) Get(ctx context.Context, key string, now time.Time) (val []byte, l1 bool, err error) {
	n := now.UnixNano()
	b, err := s.acquire(n)
	if err != nil {
		return nil, false, err
	}
	c := b.r
	var res valkey.ValkeyResult
	if s.opts.DisableL1 {
		res = c.Do(ctx, c.B().Get().Key(key).Build())
	} else {
		res = c.DoCache(ctx, c.B().Get().Key(key).Cache(), s.opts.L1TTL)
	}
	val, err = res.AsBytes()
	s.release()
	s.done(err, n)
	if err != nil {
		if valkey.IsValkeyNil(err) {
			return nil, false, ErrNotFound
		}
		return nil, false, err
	}
	return val, res.IsCacheHit(), nil
}

// Set stores val under key for ttl (rounded up to a millisecond).
func (s *Shard) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	n := time.Now().UnixNano()
	b, err := s.acquire(n)
	if err != nil {
		return err
	}
	c := b.c
	ms := max(ttl.Milliseconds(), 1)
	err = c.Do(ctx, c.B().Set().Key(key).Value(valkey.BinaryString(val)).PxMilliseconds(ms).Build()).Error()
	s.release()
	s.done(err, n)
	return err
}

// Del removes keys; every gateway's L1 drops them through tracking.
func (s *Shard) Del(ctx context.Context, keys ...string) error {
	n := time.Now().UnixNano()
	b, err := s.acquire(n)
	if err != nil {
		return err
	}
	c := b.c
	err = c.Do(ctx, c.B().Del().Key(keys...).Build()).Error()
	s.release()
	s.done(err, n)
	return err
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
	s.closed = true
	b := s.client.Swap(nil)
	s.mu.Unlock()
	if b != nil {
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
