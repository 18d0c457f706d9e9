package wasm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/edgecache/edgecache/hook"
)

// exitCodeTimeout is the exit code the watchdog closes an overdue instance
// with.
const exitCodeTimeout = 0xec_dead

// deadlineKilled marks an instance the watchdog closed.
const deadlineKilled = -1

// instance is one instantiated module and the state of the call it is
// running. It is owned by one caller between acquire and release (or
// discard); the watchdog only touches deadline and closes the module.
//
// An instance is also the context.Context of its calls: a background
// context (no deadline, never done) whose identity lets the host functions
// find the call's state with a type assertion, with no allocation and no
// context value lookup. wazero passes it through unchanged.
type instance struct {
	p     *Plugin
	mod   api.Module
	mem   api.Memory
	fns   [hook.Count]api.Function
	stack [1]uint64
	calls int
	// idleSince is the nanotime the instance was last put on the free
	// stack; written and read under the pool's mu.
	idleSince int64

	// deadline is the nanotime by which the current call must end, 0 when
	// idle, deadlineKilled once the watchdog closed the module.
	deadline atomic.Int64
	// memBytes is the size of the linear memory after the last call, for
	// Stats (reading the memory's size during a call would race its growth).
	memBytes atomic.Int64

	// the current call
	hook      hook.ID
	violation string
	req       hook.Request
	resp      hook.Response
	base, dec hook.Decision
	tags      int
	miss      hook.MissAction
	baseMiss  hook.MissAction // the built-in action, for get_builtin_*
	// missHeaderOwned: miss.Header is this call's copy, not the caller's.
	missHeaderOwned bool
	key             []byte
	keyAct          hook.KeyAction
	name            []byte // scratch: a canonical header name
	builtinKey      []byte // scratch: get_builtin_key's value

	// what a key hook call read, for the memo
	rs       *readSet
	readMask uint8
	newHdrs  []string
	impure   bool

	// failedGrow: the current call's memory.grow past the limit was
	// refused (memory.go); if the call then fails, it is a memory fault.
	failedGrow bool
}

var _ context.Context = (*instance)(nil)

func (in *instance) Deadline() (time.Time, bool) { return time.Time{}, false }
func (in *instance) Done() <-chan struct{}       { return nil }
func (in *instance) Err() error                  { return nil }
func (in *instance) Value(any) any               { return nil }

// initContext is the context of instantiation: it carries the instance
// (host functions may run from start functions) and the init deadline.
type initContext struct {
	context.Context
	in *instance
}

// instanceOf returns the instance whose call (or instantiation) ctx is;
// m is the calling module, whose memory the instance records on its first
// host call (start functions call before InstantiateModule returns).
func instanceOf(ctx context.Context, m api.Module) *instance {
	switch c := ctx.(type) {
	case *instance:
		return c
	case *initContext:
		if c.in.mem == nil {
			c.in.mem = m.Memory()
		}
		return c.in
	}
	panic(&abiViolation{"host function called outside a plugin call"})
}

// noteHeader records that a key hook read the header in in.name.
func (in *instance) noteHeader() {
	if in.rs == nil || in.rs.indexBytes(in.name) >= 0 {
		return
	}
	for _, n := range in.newHdrs {
		if n == string(in.name) {
			return
		}
	}
	in.newHdrs = append(in.newHdrs, string(in.name))
}

// pool is the bounded set of instances of one plugin, and the two
// goroutines that look after it: the watchdog, which closes instances
// whose call is overdue, and the filler, which creates every instance
// after Load's first. The pool is elastic (doc.go, "Pools"): target is how
// many instances it wants, from one up to size. A call that finds no free
// instance raises target by one (while below size) and waits; the filler
// keeps the live set at target, which also replaces discarded instances
// (faults, recycling) in the background; an instance left free for
// idleTimeout is closed and lowers target, never below one. The filler is
// the only goroutine that creates instances once Load returns, which is
// what keeps the pool at most at its size.
type pool struct {
	size        int
	idleTimeout time.Duration

	mu sync.Mutex
	// free is a stack: the instance released last is taken first, so
	// that under light load the same few stay busy and the others age
	// at the bottom until the filler closes them.
	free    []*instance
	live    map[*instance]struct{} // free and busy
	target  int                    // instances wanted, in [1, size]
	waiters int                    // callers waiting that no handoff has served yet
	// handoff passes released or new instances to waiting callers; its
	// capacity (size) bounds the waiters that can be owed one, so a send
	// under mu never blocks.
	handoff chan *instance

	refill chan struct{}
	ctx    context.Context    // the goroutines' lifetime; not a request context
	cancel context.CancelFunc // stops the goroutines and any instantiation
	wg     sync.WaitGroup

	// filled is closed when the pool holds size instances for the first
	// time (fillErr nil), or with the error that interrupted the filling
	// WaitFull asked for. fillErr is written once, before the close.
	filled  chan struct{}
	fillErr error
}

func (pl *pool) init(size int, idleTimeout time.Duration) {
	pl.size, pl.idleTimeout = size, idleTimeout
	pl.free = make([]*instance, 0, size)
	pl.live = make(map[*instance]struct{}, size)
	pl.target = 1
	pl.handoff = make(chan *instance, size)
	pl.refill = make(chan struct{}, 1)
	pl.filled = make(chan struct{})
}

// put makes in available: to a waiting caller if there is one, else on
// top of the free stack.
func (pl *pool) put(in *instance) {
	pl.mu.Lock()
	if pl.waiters > 0 {
		pl.waiters--
		pl.handoff <- in
	} else {
		in.idleSince = nanotime()
		pl.free = append(pl.free, in)
	}
	pl.mu.Unlock()
}

// take pops the instance released last, or registers the caller as a
// waiter and asks for one more instance (while below size).
func (pl *pool) take() (in *instance, wait bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if n := len(pl.free); n > 0 {
		in = pl.free[n-1]
		pl.free[n-1] = nil
		pl.free = pl.free[:n-1]
		return in, false
	}
	pl.waiters++
	if pl.target < pl.size {
		pl.target++
	}
	return nil, true
}

// giveUp ends a wait that timed out. When a handoff already served the
// caller (no waiter left owed one), the instance is in handoff: take it.
func (pl *pool) giveUp() *instance {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.waiters > 0 {
		pl.waiters--
		return nil
	}
	return <-pl.handoff
}

// short reports whether the pool has fewer live instances than it wants.
func (pl *pool) short() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.live) < pl.target
}

// grow raises target to size, for WaitFull.
func (pl *pool) grow() {
	pl.mu.Lock()
	pl.target = pl.size
	pl.mu.Unlock()
	pl.kick()
}

// reap removes from the pool the instances free for longer than
// idleTimeout, oldest first, keeping one, and returns them to be closed.
// It counts them in retired as it removes them, under the lock that
// liveCount takes: a Stats that sees fewer instances sees them retired
// (counted after the close, a reader in between saw it gone and not
// retired).
func (pl *pool) reap(now int64, retired *atomic.Uint64) []*instance {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	n := 0
	for n < len(pl.free) && len(pl.live) > 1 && now-pl.free[n].idleSince > int64(pl.idleTimeout) {
		delete(pl.live, pl.free[n])
		pl.target = max(1, pl.target-1)
		n++
	}
	if n == 0 {
		return nil
	}
	retired.Add(uint64(n))
	out := append([]*instance(nil), pl.free[:n]...)
	m := copy(pl.free, pl.free[n:])
	clear(pl.free[m:])
	pl.free = pl.free[:m]
	return out
}

func (pl *pool) startWatchdog(p *Plugin) {
	ctx, cancel := context.WithCancel(context.Background())
	pl.ctx, pl.cancel = ctx, cancel
	pl.wg.Add(1)
	go p.watchdog(ctx)
}

func (pl *pool) startFiller(p *Plugin) {
	pl.wg.Add(1)
	go p.filler(pl.ctx)
}

// stop ends the goroutines; closing the runtime closes the instances.
func (pl *pool) stop() {
	pl.cancel()
	pl.wg.Wait()
}

func (pl *pool) memoryBytes() int64 {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var n int64
	for in := range pl.live {
		n += in.memBytes.Load()
	}
	return n
}

func (pl *pool) liveCount() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.live)
}

func (pl *pool) kick() {
	select {
	case pl.refill <- struct{}{}:
	default:
	}
}

// watchTick is how often the watchdog looks for overdue calls: a quarter
// of the timeout, within [1ms, 25ms].
func watchTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, time.Millisecond), 25*time.Millisecond)
}

// watchdog closes the module of every instance whose call is past its
// deadline. wazero's termination checks (WithCloseOnContextDone) make the
// guest notice at its next loop back-edge or function call and return a
// sys.ExitError. One goroutine per pool replaces a timer and a
// cancellable context per call.
func (p *Plugin) watchdog(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(watchTick(p.opts.Timeout))
	defer t.Stop()
	var overdue []*instance
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := nanotime()
		p.mu.Lock()
		for in := range p.live {
			if d := in.deadline.Load(); d > 0 && now > d && in.deadline.CompareAndSwap(d, deadlineKilled) {
				overdue = append(overdue, in)
			}
		}
		p.mu.Unlock()
		for _, in := range overdue {
			_ = in.mod.CloseWithExitCode(context.Background(), exitCodeTimeout)
		}
		clear(overdue)
		overdue = overdue[:0]
	}
}

// reapTick is how often the filler looks for instances idle for longer
// than timeout: a quarter of it, so an instance lives at most 1.25 times
// the idle timeout past its last call.
func reapTick(timeout time.Duration) time.Duration { return max(timeout/4, time.Millisecond) }

// filler keeps the pool at its target whenever kicked, backing off while
// instantiation fails, and closes the instances idle for too long. How the
// first fill to size ends (WaitFull) is what filled reports.
func (p *Plugin) filler(ctx context.Context) {
	defer p.wg.Done()
	settled := false
	settle := func(err error) {
		if !settled {
			settled, p.fillErr = true, err
			close(p.filled)
		}
	}
	defer settle(ErrClosed)
	reap := time.NewTicker(reapTick(p.idleTimeout))
	defer reap.Stop()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-reap.C:
			for _, in := range p.reap(nanotime(), &p.stats.retired) {
				_ = in.mod.Close(context.Background())
			}
			continue
		case <-p.refill:
		}
		for p.short() {
			if ctx.Err() != nil {
				return // closed: instantiating goes on with a done context
			}
			in, err := p.newInstance(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				settle(err)
				p.log.Error("plugin instance could not be created", "plugin", p.name, "err", err, "retry_in", backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			p.put(in)
		}
		if p.liveCount() >= p.size {
			settle(nil)
		}
	}
}

// newInstance instantiates the module, adds it to the live set and runs
// its init hook.
func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	in := &instance{p: p, key: make([]byte, 0, 256), name: make([]byte, 0, 64)}
	ictx, cancel := context.WithTimeout(ctx, p.opts.InitTimeout)
	defer cancel()
	ictx = experimental.WithMemoryAllocator(ictx, p.newAllocator(in))
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithStdout(p.host.output).
		WithStderr(p.host.output)
	mod, err := p.rt.InstantiateModule(&initContext{ictx, in}, p.cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: instantiate: %v", ErrInit, err)
	}
	in.mod, in.mem = mod, mod.Memory()
	if in.mem == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("%w: the module has no memory", ErrInvalidModule)
	}
	in.memBytes.Store(int64(in.mem.Size()))
	for h := range hook.ID(hook.Count) {
		if p.has[h] {
			in.fns[h] = mod.ExportedFunction(h.String())
		}
	}
	p.stats.instantiated.Add(1)
	p.mu.Lock()
	p.live[in] = struct{}{}
	p.mu.Unlock()
	if p.has[hook.InitHook] {
		rc, err := p.invoke(in, hook.InitHook, p.opts.InitTimeout)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInit, err)
		}
		if rc != 0 {
			p.discard(in)
			return nil, fmt.Errorf("%w: init returned %d (config rejected)", ErrInit, rc)
		}
	}
	p.noteInitBytes(int64(in.mem.Size()))
	return in, nil
}

// acquire takes a free instance. When every instance is busy it asks the
// filler for one more (up to PoolSize) and waits up to the plugin's
// timeout for whichever comes first: a new instance or a released one.
func (p *Plugin) acquire(h hook.ID) (*instance, error) {
	if p.closed.Load() {
		return nil, &HookError{Plugin: p.name, Hook: h, Err: ErrClosed}
	}
	if until := p.suspendedUntil.Load(); until != 0 && nanotime() < until {
		p.stats.suspended.Add(1)
		return nil, &HookError{Plugin: p.name, Hook: h, Err: ErrSuspended}
	}
	in, wait := p.take()
	if !wait {
		return in, nil
	}
	p.kick()
	t := time.NewTimer(p.opts.Timeout)
	defer t.Stop()
	select {
	case in := <-p.handoff:
		return in, nil
	case <-t.C:
		if in := p.giveUp(); in != nil {
			return in, nil
		}
		p.stats.busy.Add(1)
		return nil, &HookError{Plugin: p.name, Hook: h, Err: ErrBusy}
	}
}

// release returns a healthy instance to the pool, or recycles it after
// MaxCallsPerInstance calls.
func (p *Plugin) release(in *instance) {
	in.calls++
	if in.calls >= p.opts.MaxCallsPerInstance {
		p.stats.recycled.Add(1)
		p.discard(in)
		return
	}
	p.put(in)
}

// discard closes an instance and has the filler replace it (the target
// stays). A trapped
// instance is never reused: wazero leaves it callable, but its memory and
// globals may be anywhere.
func (p *Plugin) discard(in *instance) {
	_ = in.mod.Close(context.Background())
	p.mu.Lock()
	delete(p.live, in)
	p.mu.Unlock()
	p.kick()
}

// invoke calls hook h of in with a deadline. On a fault it counts and logs
// it, discards the instance and returns a *HookError; otherwise it returns
// the hook's result code and the caller releases the instance.
func (p *Plugin) invoke(in *instance, h hook.ID, timeout time.Duration) (int32, error) {
	in.hook, in.violation, in.failedGrow = h, "", false
	in.readMask, in.newHdrs, in.impure = 0, in.newHdrs[:0], false
	p.stats.calls[h].Add(1)
	start := nanotime()
	in.deadline.Store(start + int64(timeout))
	err := in.fns[h].CallWithStack(in, in.stack[:])
	killed := in.deadline.Swap(0) == deadlineKilled
	if obs := p.opts.Observe; obs != nil {
		obs(h, time.Duration(nanotime()-start))
	}
	if !killed && err == nil && in.violation == "" {
		in.memBytes.Store(int64(in.mem.Size()))
		if p.consecutive.Load() != 0 { // no shared write on the common path
			p.consecutive.Store(0)
			p.cooldown.Store(int64(BreakerCooldown))
		}
		rc := int32(uint32(in.stack[0]))
		if rc != 0 {
			p.stats.declined[h].Add(1)
		}
		return rc, nil
	}
	kind, detail := p.classify(in, err, killed)
	p.stats.hookFaults[h].Add(1)
	p.stats.faults[kind].Add(1)
	herr := &HookError{Plugin: p.name, Hook: h, Err: faultErrs[kind], Detail: detail}
	p.faults.log(p.log, herr)
	p.discard(in)
	if h != hook.InitHook && p.consecutive.Add(1) >= BreakerFaults {
		p.suspend()
	}
	return 0, herr
}

// suspend opens the breaker: calls fail with ErrSuspended until the
// cooldown ends. Then calls try the plugin again: a success closes the
// breaker, a fault suspends it again for twice as long.
func (p *Plugin) suspend() {
	p.consecutive.Store(BreakerFaults - 1)
	cd := time.Duration(p.cooldown.Load())
	p.cooldown.Store(int64(min(2*cd, BreakerMaxCooldown)))
	p.suspendedUntil.Store(nanotime() + int64(cd))
	p.stats.suspensions.Add(1)
	p.log.Error("plugin suspended after repeated faults, served with the built-in policy",
		"plugin", p.name, "faults", BreakerFaults, "for", cd)
}

func (p *Plugin) classify(in *instance, err error, killed bool) (kind int, detail string) {
	var exit *sys.ExitError
	timedOut := killed || errors.As(err, &exit) && exit.ExitCode() == exitCodeTimeout
	switch {
	case in.failedGrow:
		// Whatever the guest did after the refused grow — trapped, or
		// spun until the deadline — the cause is the memory limit.
		then := "then timed out"
		if !timedOut && err != nil {
			then = "then: " + firstLine(err.Error())
		}
		return faultMemory, fmt.Sprintf("memory.grow past the limit of %d KiB refused; %s", uint64(p.opts.MemoryLimitPages)*64, then)
	case timedOut:
		return faultTimeout, fmt.Sprintf("no answer within %v", p.opts.Timeout)
	case in.violation != "":
		return faultABI, in.violation
	case err == nil:
		return faultTrap, "module closed during the call"
	}
	return faultTrap, firstLine(err.Error())
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
