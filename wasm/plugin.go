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
	"github.com/tetratelabs/wazero/experimental"
)

// Defaults of PluginOptions; a zero field means its default. See doc.go
// ("Pools") for how they were chosen.
const (
	// DefaultPoolSize is the number of instances per plugin.
	DefaultPoolSize = 4
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

// PluginOptions configure one loaded plugin. Zero values mean the
// documented defaults (DefaultPoolSize, …).
type PluginOptions struct {
	// Name identifies the plugin in errors, logs and metrics.
	Name string
	// Config is given to the plugin's init hook (get_config); by
	// convention JSON.
	Config []byte
	// PoolSize is the number of instances: one created by Load, the
	// others in the background right after (Plugin.WaitFull).
	PoolSize int
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
	Observe func(h Hook, d time.Duration)
}

// withDefaults fills in the defaults and validates, in one place.
func (o PluginOptions) withDefaults() (PluginOptions, error) {
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
	var errs []error
	if o.PoolSize < 0 || o.PoolSize > MaxPoolSize {
		errs = append(errs, fmt.Errorf("pool size %d is outside [1, %d]", o.PoolSize, MaxPoolSize))
	}
	if o.Timeout < 0 || o.InitTimeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v or init timeout %v is negative", o.Timeout, o.InitTimeout))
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
	opts   PluginOptions
	info   ModuleInfo
	has    [numHooks]bool
	config string
	log    *slog.Logger
	rt     wazero.Runtime
	cm     wazero.CompiledModule
	memo   *memo // nil when disabled

	// alloc creates the instances' memories with initBytes of capacity:
	// the largest memory an instance had after init (memory.go).
	alloc     experimental.MemoryAllocator
	initBytes atomic.Int64

	// callMu is held shared by every guest call; Close takes it
	// exclusively to wait for calls in flight.
	callMu sync.RWMutex
	closed atomic.Bool

	pool
	stats   counters
	faults  faultLog
	lastLog atomic.Int64 // guest log lines, rate-limited

	// the breaker
	consecutive    atomic.Int64 // faults since the last successful call
	suspendedUntil atomic.Int64 // nanotime; 0 when not suspended
	cooldown       atomic.Int64 // the next suspension's length
}

// counters are the atomics behind PluginStats.
type counters struct {
	calls, declined, hookFaults [numHooks]atomic.Uint64
	faults                      [numFaults]atomic.Uint64
	busy, suspended             atomic.Uint64
	suspensions                 atomic.Uint64
	memoHits, memoMisses        atomic.Uint64
	memoSkipped                 atomic.Uint64
	instantiated, recycled      atomic.Uint64
}

// HookStats count the guest calls of one hook.
type HookStats struct {
	Calls    uint64 // guest calls made (memo hits are not calls)
	Declined uint64 // calls that returned non-zero: the built-in policy decided
	Faults   uint64 // calls that faulted: the built-in policy decided
}

// PluginStats is a snapshot of a plugin's counters.
type PluginStats struct {
	Hooks [numHooks]HookStats // indexed by Hook

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
	// Recycled those closed after MaxCallsPerInstance calls.
	Instances    int
	Instantiated uint64
	Recycled     uint64
	// MemoryBytes is the linear memory of the live instances, as of the
	// end of their last call.
	MemoryBytes int64
}

// Load compiles wasm (a hit in the compilation cache when it was compiled
// before), validates it against the ABI, creates one instance and runs its
// init hook with o.Config: a module that does not instantiate, or whose
// init rejects the config, fails Load. A Plugin is ready to call when Load
// returns; the rest of the pool is created in the background (WaitFull
// waits for it).
func (h *Host) Load(ctx context.Context, wasm []byte, o PluginOptions) (*Plugin, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if h.isClosed() {
		return nil, ErrHostClosed
	}
	rt := wazero.NewRuntimeWithConfig(ctx, h.runtimeConfig(o.MemoryLimitPages))
	fail := func(err error) (*Plugin, error) {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: plugin %q: %w", o.Name, err)
	}
	if err := instantiateImports(ctx, rt); err != nil {
		return fail(err)
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrInvalidModule, err))
	}
	info, err := validate(cm)
	if err != nil {
		return fail(err)
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
	p.alloc = p.newAllocator()
	p.cooldown.Store(int64(BreakerCooldown))
	if o.MemoEntries > 0 && p.has[HookKey] {
		p.memo = newMemo(o.MemoEntries)
	}
	p.pool.init(o.PoolSize)
	p.pool.startWatchdog(p) // init hooks run under the watchdog too
	// One instance proves that the module instantiates and that its init
	// hook accepts the config; the filler creates the others (RATIONALE.md,
	// "Startup").
	in, err := p.newInstance(ctx)
	if err != nil {
		p.pool.stop()
		return fail(err)
	}
	p.idle <- in
	if err := h.add(p); err != nil {
		p.pool.stop()
		return fail(err)
	}
	p.pool.startFiller(p)
	p.kick()
	return p, nil
}

// WaitFull waits until the pool holds PoolSize instances for the first
// time: Load creates one, the pool's filler the others, in the background.
// It returns the error that interrupted that fill (an instance that did
// not instantiate or whose init hook failed: ErrInit, ErrInvalidModule;
// the filler goes on trying, with backoff), ErrClosed when the plugin was
// closed first, or ctx's error.
func (p *Plugin) WaitFull(ctx context.Context) error {
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
func (p *Plugin) Has(h Hook) bool { return int(h) < numHooks && p.has[h] }

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
	p.pool.stop()
	p.host.remove(p)
	return p.rt.Close(ctx)
}

// Stats returns a snapshot of the plugin's counters.
func (p *Plugin) Stats() PluginStats {
	var s PluginStats
	for h := range numHooks {
		s.Hooks[h] = HookStats{
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
	s.Instances = p.pool.liveCount()
	s.MemoryBytes = p.pool.memoryBytes()
	s.Instantiated = p.stats.instantiated.Load()
	s.Recycled = p.stats.recycled.Load()
	return s
}

// AppendKey runs the key hook for r and appends what it set to dst: the
// whole key (KeyReplace), or parts to follow the built-in key, each
// preceded by '|' (KeyExtend). With KeyDefault nothing is appended. A
// memoized request costs a lookup and no guest call (doc.go,
// "Memoization"). On error dst is returned unchanged and the caller uses
// the built-in key.
func (p *Plugin) AppendKey(dst []byte, r *Request) ([]byte, KeyAction, error) {
	if !p.has[HookKey] {
		return dst, KeyDefault, ErrNoHook
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
	in, err := p.acquire(HookKey)
	if err != nil {
		return dst, KeyDefault, err
	}
	in.req = *r
	in.key, in.keyAct = in.key[:0], KeyDefault
	if p.memo != nil {
		in.rs = p.memo.set.Load()
	}
	rc, err := p.invoke(in, HookKey, p.opts.Timeout)
	if err != nil {
		in.req = Request{}
		return dst, KeyDefault, err
	}
	act := in.keyAct
	if rc != 0 {
		act = KeyDefault
		in.key = in.key[:0]
	}
	if act != KeyDefault {
		dst = append(dst, in.key...)
	}
	if p.memo != nil {
		if in.impure {
			p.stats.memoSkipped.Add(1)
		} else {
			p.memo.record(in.readMask, in.newHdrs, &in.req, act, in.key)
		}
	}
	in.req, in.rs = Request{}, nil
	p.release(in)
	return dst, act, nil
}

// Response runs the response hook. d holds the built-in policy's decision
// on entry; on success it holds the plugin's (what it did not set is
// unchanged). On error, or when the hook declines, d is unchanged.
func (p *Plugin) Response(r *Request, resp *Response, d *Decision) error {
	if !p.has[HookResponse] {
		return ErrNoHook
	}
	p.callMu.RLock()
	defer p.callMu.RUnlock()
	in, err := p.acquire(HookResponse)
	if err != nil {
		return err
	}
	in.req, in.resp, in.base, in.dec, in.tags = *r, *resp, *d, *d, 0
	rc, err := p.invoke(in, HookResponse, p.opts.Timeout)
	if err == nil && rc == 0 {
		*d = in.dec
	}
	in.req, in.resp, in.base, in.dec = Request{}, Response{}, Decision{}, Decision{}
	if err == nil {
		p.release(in)
	}
	return err
}

// Miss runs the miss hook. a holds the built-in policy's action on entry
// (usually the zero MissAction: fetch from the route's origin and store);
// on success it holds the plugin's (what it did not set is unchanged; a
// header map of the caller's is copied, never written). On error, or when
// the hook declines, a is unchanged.
func (p *Plugin) Miss(r *Request, a *MissAction) error {
	if !p.has[HookMiss] {
		return ErrNoHook
	}
	p.callMu.RLock()
	defer p.callMu.RUnlock()
	in, err := p.acquire(HookMiss)
	if err != nil {
		return err
	}
	in.req, in.miss, in.missHeaderOwned = *r, *a, false
	rc, err := p.invoke(in, HookMiss, p.opts.Timeout)
	if err == nil && rc == 0 {
		*a = in.miss
	}
	in.req, in.miss = Request{}, MissAction{}
	if err == nil {
		p.release(in)
	}
	return err
}
