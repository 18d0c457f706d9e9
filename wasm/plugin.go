package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/edgecache/edgecache/hook"
)

// Defaults of PluginOptions; a zero field means its default. See doc.go
// ("Pools") for how they were chosen.
const (
	// DefaultPoolSize is the most instances a plugin's pool grows to; it
	// starts at one.
	DefaultPoolSize = 4
	// DefaultIdleTimeout closes an instance left unused that long, down to
	// one per plugin. Re-creating a Go instance costs 5–10 ms of CPU: at
	// most one per instance per 30 s is < 0.05% of a core for traffic that
	// comes in bursts, while the 4–5 MiB each holds is given back within
	// a minute of a burst (doc.go, "Pools").
	DefaultIdleTimeout = 30 * time.Second
	// DefaultTimeout bounds one hook call. Generous: a loaded 2-core box
	// must not turn scheduling delays into faults.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultMemoryLimitPages bounds an instance's memory: 512 pages of
	// 64 KiB = 32 MiB.
	DefaultMemoryLimitPages = 512
	// DefaultMaxCallsPerInstance recycles an instance after that many
	// calls, to bound guest heap growth and fragmentation.
	DefaultMaxCallsPerInstance = 10000

	// DefaultInitTimeout bounds instantiating a module and running its
	// init hook (a Go guest takes ~10 ms; its first compilation, without
	// the cache, more than a second, but that is outside this bound).
	DefaultInitTimeout = 5 * time.Second
	// MaxPoolSize is the largest PoolSize accepted.
	MaxPoolSize = 64
	// MaxConfigBytes is the largest config accepted.
	MaxConfigBytes = 1 << 20

	// BreakerFaults consecutive faults suspend a plugin (ErrSuspended) for
	// BreakerCooldown, doubling with each suspension that follows without
	// a successful call in between, up to BreakerMaxCooldown. A plugin that
	// faults on every call would otherwise cost an instantiation per
	// request (~10 ms of CPU for a Go guest).
	BreakerFaults      = 10
	BreakerCooldown    = time.Second
	BreakerMaxCooldown = 30 * time.Second
)

// withDefaults fills in the defaults and validates, in one place.
func withDefaults(o hook.PluginOptions) (hook.PluginOptions, error) {
	if o.Name == "" {
		o.Name = "plugin"
	}
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MemoryLimitPages == 0 {
		o.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if o.MaxCallsPerInstance == 0 {
		o.MaxCallsPerInstance = DefaultMaxCallsPerInstance
	}
	if o.MemoEntries == 0 {
		o.MemoEntries = DefaultMemoEntries
	}
	if o.InitTimeout == 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	var errs []error
	if o.PoolSize < 0 || o.PoolSize > MaxPoolSize {
		errs = append(errs, fmt.Errorf("pool size %d is outside [1, %d]", o.PoolSize, MaxPoolSize))
	}
	if o.Timeout < 0 || o.InitTimeout < 0 || o.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v, init timeout %v or idle timeout %v is negative", o.Timeout, o.InitTimeout, o.IdleTimeout))
	}
	if o.MemoryLimitPages > 65536 {
		errs = append(errs, fmt.Errorf("memory limit of %d pages exceeds 4 GiB", o.MemoryLimitPages))
	}
	if o.MaxCallsPerInstance < 0 {
		errs = append(errs, fmt.Errorf("max calls per instance %d is negative", o.MaxCallsPerInstance))
	}
	if len(o.Config) > MaxConfigBytes {
		errs = append(errs, fmt.Errorf("config of %d bytes exceeds %d", len(o.Config), MaxConfigBytes))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("wasm: plugin %q: %w", o.Name, errors.Join(errs...))
	}
	return o, nil
}

// Plugin is a loaded plugin: a compiled module and a pool of instances.
// Its methods are safe for concurrent use.
type Plugin struct {
	name   string
	host   *Host
	opts   hook.PluginOptions
	info   ModuleInfo
	has    [hook.Count]bool
	config string
	log    *slog.Logger
	rt     wazero.Runtime
	cm     wazero.CompiledModule
	memo   *memo // nil when disabled

	// initBytes is the largest memory an instance had after init: the
	// capacity new instances start with (memory.go).
	initBytes atomic.Int64

	// callMu is held shared by every guest call; Close takes it
	// exclusively to wait for calls in flight.
	callMu sync.RWMutex
	closed atomic.Bool

	pool
	stats    counters
	faults   faultLog
	logLimit logLimiter // guest log lines

	// the breaker
	consecutive    atomic.Int64 // faults since the last successful call
	suspendedUntil atomic.Int64 // nanotime; 0 when not suspended
	cooldown       atomic.Int64 // the next suspension's length
}

// counters are the atomics behind PluginStats.
type counters struct {
	calls, declined, hookFaults [hook.Count]atomic.Uint64
	faults                      [numFaults]atomic.Uint64
	busy, suspended             atomic.Uint64
	suspensions                 atomic.Uint64
	memoHits, memoMisses        atomic.Uint64
	memoSkipped                 atomic.Uint64
	instantiated, recycled      atomic.Uint64
	retired                     atomic.Uint64
}

// Load compiles wasm (a hit in the compilation cache when it was compiled
// before), validates it against the ABI, creates one instance and runs its
// init hook with o.Config: a module that does not instantiate, or whose
// init rejects the config, fails Load. A Plugin is ready to call when Load
// returns; the rest of the pool is created in the background (WaitFull
// waits for it).
func (h *Host) Load(ctx context.Context, wasm []byte, o hook.PluginOptions) (*Plugin, error) {
	o, err := withDefaults(o)
	if err != nil {
		return nil, err
	}
	if h.isClosed() {
		return nil, ErrHostClosed
	}
	rt := wazero.NewRuntimeWithConfig(ctx, h.runtimeConfig(runtimeMemoryPages))
	fail := func(err error) (*Plugin, error) {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: plugin %q: %w", o.Name, err)
	}
	if err := instantiateImports(ctx, rt); err != nil {
		return fail(err)
	}
	cm, err := rt.CompileModule(ctx, mergeDataSegments(wasm))
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrInvalidModule, err))
	}
	info, err := validate(cm)
	if err != nil {
		return fail(err)
	}
	for _, m := range cm.ExportedMemories() {
		if m.Min() > o.MemoryLimitPages {
			return fail(fmt.Errorf("%w: the module's initial memory of %d pages exceeds the limit of %d", ErrInvalidModule, m.Min(), o.MemoryLimitPages))
		}
	}
	p := &Plugin{
		name:   o.Name,
		host:   h,
		opts:   o,
		info:   info,
		config: string(o.Config),
		log:    h.log,
		rt:     rt,
		cm:     cm,
	}
	for _, hk := range info.Hooks {
		p.has[hk] = true
	}
	p.cooldown.Store(int64(BreakerCooldown))
	if o.MemoEntries > 0 && p.has[hook.KeyHook] {
		p.memo = newMemo(o.MemoEntries)
	}
	p.init(o.PoolSize, o.IdleTimeout)
	p.startWatchdog(p) // init hooks run under the watchdog too
	// One instance proves that the module instantiates and that its init
	// hook accepts the config; the filler creates the others (RATIONALE.md,
	// "Startup").
	in, err := p.newInstance(ctx)
	if err != nil {
		p.stop()
		return fail(err)
	}
	p.put(in)
	if err := h.add(p); err != nil {
		p.stop()
		return fail(err)
	}
	p.startFiller(p)
	return p, nil
}

// LoadPlugin is Load behind the hook.Loader interface, for the policies
// package and the gateway, which do not import wasm.
func (h *Host) LoadPlugin(ctx context.Context, wasm []byte, o hook.PluginOptions) (hook.Plugin, error) {
	p, err := h.Load(ctx, wasm, o)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
}

var (
	_ hook.Loader = (*Host)(nil)
	_ hook.Plugin = (*Plugin)(nil)
)

// WaitFull grows the pool to PoolSize and waits until it holds PoolSize
// instances for the first time: Load creates one, the pool's filler the
// others, in the background (they shrink back after IdleTimeout unused).
// A reload uses it so that the pool replacing a warm one is warm.
// It returns the error that interrupted that fill (an instance that did
// not instantiate or whose init hook failed: ErrInit, ErrInvalidModule;
// the filler goes on trying, with backoff), ErrClosed when the plugin was
// closed first, or ctx's error.
func (p *Plugin) WaitFull(ctx context.Context) error {
	p.grow()
	select {
	case <-p.filled:
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.fillErr != nil {
		return fmt.Errorf("wasm: plugin %q: %w", p.name, p.fillErr)
	}
	return nil
}

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// Info returns what the module declares.
func (p *Plugin) Info() ModuleInfo { return p.info }

// Has reports whether the module exports hook h. A hook it does not export
// is the built-in policy's job; calling it returns ErrNoHook.
func (p *Plugin) Has(h hook.ID) bool { return int(h) < hook.Count && p.has[h] }

// Close stops new calls (they return ErrClosed, though the key hook may
// still answer from its memo), waits for the calls in flight, then closes
// the instances and the plugin's runtime.
func (p *Plugin) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Wait for the calls in flight; calls that come later wait here, then
	// see closed.
	p.callMu.Lock()
	defer p.callMu.Unlock()
	p.stop()
	p.host.remove(p)
	err := p.rt.Close(ctx) // closes every instance
	p.mu.Lock()
	clear(p.live)
	p.mu.Unlock()
	return err
}

// Stats returns a snapshot of the plugin's counters.
func (p *Plugin) Stats() hook.PluginStats {
	var s hook.PluginStats
	for h := range hook.Count {
		s.Hooks[h] = hook.HookStats{
			Calls:    p.stats.calls[h].Load(),
			Declined: p.stats.declined[h].Load(),
			Faults:   p.stats.hookFaults[h].Load(),
		}
	}
	s.Timeouts = p.stats.faults[faultTimeout].Load()
	s.Traps = p.stats.faults[faultTrap].Load()
	s.OutOfMemory = p.stats.faults[faultMemory].Load()
	s.ABIViolations = p.stats.faults[faultABI].Load()
	s.Busy = p.stats.busy.Load()
	s.Suspended = p.stats.suspended.Load()
	s.Suspensions = p.stats.suspensions.Load()
	s.MemoHits = p.stats.memoHits.Load()
	s.MemoMisses = p.stats.memoMisses.Load()
	s.MemoSkipped = p.stats.memoSkipped.Load()
	if p.memo != nil {
		s.MemoEntries = p.memo.len()
		s.MemoDisabled = p.memo.disabled.Load()
		rs := p.memo.set.Load()
		for _, f := range []struct {
			bit  uint8
			name string
		}{{fieldMethod, "method"}, {fieldScheme, "scheme"}, {fieldHost, "host"}, {fieldPath, "path"}, {fieldQuery, "query"}} {
			if rs.fields&f.bit != 0 {
				s.MemoFields = append(s.MemoFields, f.name)
			}
		}
		for _, h := range rs.headers {
			s.MemoFields = append(s.MemoFields, "header:"+h)
		}
	} else {
		s.MemoDisabled = true
	}
	s.Instances = p.liveCount()
	s.MemoryBytes = p.memoryBytes()
	s.Instantiated = p.stats.instantiated.Load()
	s.Recycled = p.stats.recycled.Load()
	s.Retired = p.stats.retired.Load()
	return s
}

// AppendKey runs the key hook for r and appends what it set to dst: the
// whole key (KeyReplace), or parts to follow the built-in key, each
// preceded by '|' (KeyExtend). With KeyDefault nothing is appended. A
// memoized request costs a lookup and no guest call (doc.go,
// "Memoization"). On error, or when the hook declines (hook.ErrDeclined;
// a memo hit of a declined call returns KeyDefault and no error), dst is
// returned unchanged and the caller uses the built-in key.
func (p *Plugin) AppendKey(dst []byte, r *hook.Request) ([]byte, hook.KeyAction, error) {
	if !p.has[hook.KeyHook] {
		return dst, hook.KeyDefault, ErrNoHook
	}
	if p.memo != nil {
		if out, act, ok := p.memo.lookup(dst, r); ok {
			p.stats.memoHits.Add(1)
			return out, act, nil
		}
		p.stats.memoMisses.Add(1)
	}
	p.callMu.RLock()
	defer p.callMu.RUnlock()
	in, err := p.acquire(hook.KeyHook)
	if err != nil {
		return dst, hook.KeyDefault, err
	}
	in.req = *r
	in.key, in.keyAct = in.key[:0], hook.KeyDefault
	if p.memo != nil {
		in.rs = p.memo.set.Load()
	}
	rc, err := p.invoke(in, hook.KeyHook, p.opts.Timeout)
	if err != nil {
		in.req = hook.Request{}
		return dst, hook.KeyDefault, err
	}
	act := in.keyAct
	if rc != 0 {
		act = hook.KeyDefault
		in.key = in.key[:0]
	}
	if act != hook.KeyDefault {
		dst = append(dst, in.key...)
	}
	if p.memo != nil {
		if in.impure {
			p.stats.memoSkipped.Add(1)
		} else {
			p.memo.record(in.readMask, in.newHdrs, &in.req, act, in.key)
		}
	}
	in.req, in.rs = hook.Request{}, nil
	p.release(in)
	if rc != 0 {
		return dst, hook.KeyDefault, hook.ErrDeclined
	}
	return dst, act, nil
}

// Response runs the response hook. d holds the built-in policy's decision
// on entry; on success it holds the plugin's (what it did not set is
// unchanged). On error, or when the hook declines (hook.ErrDeclined), d
// is unchanged.
func (p *Plugin) Response(r *hook.Request, resp *hook.Response, d *hook.Decision) error {
	if !p.has[hook.ResponseHook] {
		return ErrNoHook
	}
	p.callMu.RLock()
	defer p.callMu.RUnlock()
	in, err := p.acquire(hook.ResponseHook)
	if err != nil {
		return err
	}
	in.req, in.resp, in.base, in.dec, in.tags = *r, *resp, *d, *d, 0
	rc, err := p.invoke(in, hook.ResponseHook, p.opts.Timeout)
	if err == nil && rc == 0 {
		*d = in.dec
	}
	in.req, in.resp, in.base, in.dec = hook.Request{}, hook.Response{}, hook.Decision{}, hook.Decision{}
	return p.done(in, rc, err)
}

// done ends a response or miss call: a failed call's instance is already
// discarded; a successful one goes back to the pool, and a non-zero
// result is a decline.
func (p *Plugin) done(in *instance, rc int32, err error) error {
	if err != nil {
		return err
	}
	p.release(in)
	if rc != 0 {
		return hook.ErrDeclined
	}
	return nil
}

// Miss runs the miss hook. a holds the built-in policy's action on entry
// (usually the zero MissAction: fetch from the route's origin and store);
// on success it holds the plugin's (what it did not set is unchanged; a
// header map of the caller's is copied, never written). On error, or when
// the hook declines (hook.ErrDeclined), a is unchanged.
func (p *Plugin) Miss(r *hook.Request, a *hook.MissAction) error {
	if !p.has[hook.MissHook] {
		return ErrNoHook
	}
	p.callMu.RLock()
	defer p.callMu.RUnlock()
	in, err := p.acquire(hook.MissHook)
	if err != nil {
		return err
	}
	in.req, in.miss, in.baseMiss, in.missHeaderOwned = *r, *a, *a, false
	rc, err := p.invoke(in, hook.MissHook, p.opts.Timeout)
	if err == nil && rc == 0 {
		*a = in.miss
	}
	in.req, in.miss, in.baseMiss = hook.Request{}, hook.MissAction{}, hook.MissAction{}
	return p.done(in, rc, err)
}
