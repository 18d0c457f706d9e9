package shardmap

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// Spec describes one shard as configured.
type Spec struct {
	Name   string
	Addr   string
	Weight int
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

	client atomic.Pointer[clientBox]
	br     breaker

	mu      sync.Mutex // guards dialing and closed
	dialing bool
	closed  bool
}

type clientBox struct{ c valkey.Client }

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
	return valkey.ClientOption{
		InitAddress:       []string{s.Addr},
		ForceSingleClient: true,
		DisableCache:      s.opts.DisableL1,
		CacheSizeEachConn: s.opts.L1BytesPerConn,
		Dialer:            net.Dialer{Timeout: s.opts.DialTimeout, KeepAlive: 30 * time.Second},
		ConnWriteTimeout:  s.opts.CommandTimeout,
		DisableRetry:      true, // a cache read that fails goes to the origin, not around again
	}
}

func (s *Shard) connect() error {
	c, err := valkey.NewClient(s.clientOption())
	if err != nil {
		return fmt.Errorf("shardmap: shard %s at %s: %w", s.Name, s.Addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return ErrDown
	}
	s.client.Store(&clientBox{c})
	return nil
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

// acquire returns the client if the breaker lets a call through.
func (s *Shard) acquire(now int64) (valkey.Client, error) {
	if !s.br.allow(now) {
		return nil, ErrOpen
	}
	b := s.client.Load()
	if b == nil {
		s.redial()
		s.br.fail(now)
		return nil, ErrDown
	}
	return b.c, nil
}

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
	c, err := s.acquire(n)
	if err != nil {
		return nil, false, err
	}
	var res valkey.ValkeyResult
	if s.opts.DisableL1 {
		res = c.Do(ctx, c.B().Get().Key(key).Build())
	} else {
		res = c.DoCache(ctx, c.B().Get().Key(key).Cache(), s.opts.L1TTL)
	}
	val, err = res.AsBytes()
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
	c, err := s.acquire(n)
	if err != nil {
		return err
	}
	ms := max(ttl.Milliseconds(), 1)
	err = c.Do(ctx, c.B().Set().Key(key).Value(valkey.BinaryString(val)).PxMilliseconds(ms).Build()).Error()
	s.done(err, n)
	return err
}

// Del removes keys; every gateway's L1 drops them through tracking.
func (s *Shard) Del(ctx context.Context, keys ...string) error {
	n := time.Now().UnixNano()
	c, err := s.acquire(n)
	if err != nil {
		return err
	}
	err = c.Do(ctx, c.B().Del().Key(keys...).Build()).Error()
	s.done(err, n)
	return err
}

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
		b.c.Close()
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
