package wasm_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/wasm"
)

// TestHammer calls one pool from many goroutines (run it with -race): a
// healthy plugin never fails, and a plugin whose every call traps is
// contained while its pool is drained and refilled concurrently.
func TestHammer(t *testing.T) {
	const goroutines, calls = 16, 200
	h := newHost(t)
	good := load(t, h, "wat/minimal.wasm", hook.PluginOptions{PoolSize: 4, MemoEntries: -1, Timeout: time.Second, MaxCallsPerInstance: 97})
	bad := load(t, h, "hostile/unreachable.wasm", hook.PluginOptions{PoolSize: 4, Timeout: time.Second})
	var wg sync.WaitGroup
	var goodErrs, badTraps, badBusy, badSuspended atomic.Int64
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 64)
			for i := range calls {
				path := "/p/" + string(rune('a'+g)) + "/" + string(rune('a'+i%26))
				out, act, err := good.AppendKey(buf[:0], request(path, ""))
				if err != nil || act != hook.KeyReplace || string(out) != path {
					goodErrs.Add(1)
					t.Errorf("good plugin: %q %v %v", out, act, err)
					return
				}
				if i%10 == 0 {
					_, _, err := bad.AppendKey(buf[:0], request(path, ""))
					switch {
					case errors.Is(err, wasm.ErrTrap):
						badTraps.Add(1)
					case errors.Is(err, wasm.ErrBusy):
						badBusy.Add(1)
					case errors.Is(err, wasm.ErrSuspended):
						badSuspended.Add(1)
					default:
						t.Errorf("bad plugin: err = %v, want a trap", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	s := good.Stats()
	if s.Hooks[hook.KeyHook].Calls != goroutines*calls || s.Hooks[hook.KeyHook].Faults != 0 {
		t.Errorf("good plugin stats: %+v", s)
	}
	if s.Recycled == 0 {
		t.Errorf("no instance recycled after %d calls of at most 97 each: %+v", goroutines*calls, s)
	}
	bs := bad.Stats()
	if bs.Traps != uint64(badTraps.Load()) || bs.Busy != uint64(badBusy.Load()) || bs.Suspended != uint64(badSuspended.Load()) {
		t.Errorf("bad plugin: %d traps, %d busy, %d suspended seen, stats %+v", badTraps.Load(), badBusy.Load(), badSuspended.Load(), bs)
	}
	if bs.Suspensions == 0 {
		t.Errorf("bad plugin never suspended: %+v", bs)
	}
	waitFor(t, func() bool { return bad.Stats().Instances == 4 && good.Stats().Instances == 4 })
	t.Logf("bad plugin: %d traps, %d busy, %d suspended, %d instances created", bs.Traps, bs.Busy, bs.Suspended, bs.Instantiated)
}

// generation is how the gateway is expected to hold plugins across a
// reload: requests pin the current generation; a reload publishes the next
// one, waits for the requests that pinned the old one, then closes it.
type generation struct {
	p        *wasm.Plugin
	inflight atomic.Int64
}

func acquireGen(cur *atomic.Pointer[generation]) *generation {
	for {
		g := cur.Load()
		g.inflight.Add(1)
		if cur.Load() == g {
			return g
		}
		g.inflight.Add(-1) // replaced meanwhile: pin the new one
	}
}

// TestReloadUnderLoad replaces the plugin five times while eight
// goroutines call it: no call fails and none falls back.
func TestReloadUnderLoad(t *testing.T) {
	h := newHost(t)
	mods := []string{"wat/minimal.wasm", "wat/clock.wasm"} // same keys, different modules
	opts := hook.PluginOptions{PoolSize: 2, MemoEntries: -1, Timeout: time.Second}
	var cur atomic.Pointer[generation]
	first, err := h.Load(context.Background(), readModule(t, mods[0]), opts)
	if err != nil {
		t.Fatal(err)
	}
	cur.Store(&generation{p: first})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 64)
			for {
				select {
				case <-stop:
					return
				default:
				}
				g := acquireGen(&cur)
				out, act, err := g.p.AppendKey(buf[:0], request("/reload", ""))
				g.inflight.Add(-1)
				calls.Add(1)
				if err != nil || act != hook.KeyReplace || string(out) != "/reload" {
					failures.Add(1)
					t.Errorf("call during reload: %q %v %v", out, act, err)
				}
			}
		}()
	}
	for i := range 5 {
		time.Sleep(30 * time.Millisecond)
		next, err := h.Load(context.Background(), readModule(t, mods[(i+1)%2]), opts)
		if err != nil {
			t.Fatal(err)
		}
		old := cur.Swap(&generation{p: next})
		for old.inflight.Load() > 0 {
			time.Sleep(time.Millisecond)
		}
		if err := old.p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(30 * time.Millisecond)
	close(stop)
	wg.Wait()
	_ = cur.Load().p.Close(context.Background())
	if calls.Load() == 0 || failures.Load() != 0 {
		t.Fatalf("%d calls, %d failed", calls.Load(), failures.Load())
	}
	t.Logf("%d calls across 5 reloads", calls.Load())
}

// TestCloseWaitsForCalls: Close returns after the call in flight ends (here
// by timing out), and calls after Close fail with ErrClosed.
func TestCloseWaitsForCalls(t *testing.T) {
	h := newHost(t)
	p, err := h.Load(context.Background(), readModule(t, "hostile/loop.wasm"), hook.PluginOptions{PoolSize: 1, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	callErr := make(chan error, 1)
	go func() {
		_, _, err := p.AppendKey(nil, request("/", ""))
		callErr <- err
	}()
	waitFor(t, func() bool { return p.Stats().Hooks[hook.KeyHook].Calls == 1 })
	start := time.Now()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The call started just before Close and runs until the watchdog stops
	// it, 200ms after it started: Close must have waited for most of that.
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("Close returned after %v, before the call in flight ended", waited)
	}
	select {
	case err := <-callErr:
		if !errors.Is(err, wasm.ErrTimeout) {
			t.Errorf("call in flight: %v, want ErrTimeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call in flight did not return")
	}
	if _, _, err := p.AppendKey(nil, request("/", "")); !errors.Is(err, wasm.ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNoHook(t *testing.T) {
	h := newHost(t)
	p := load(t, h, "wat/minimal.wasm", hook.PluginOptions{PoolSize: 1})
	if p.Has(hook.ResponseHook) || p.Has(hook.MissHook) || !p.Has(hook.KeyHook) {
		t.Fatal("Has disagrees with the module's exports")
	}
	d := hook.Decision{Store: true}
	if err := p.Response(request("/", ""), &hook.Response{Status: 200}, &d); !errors.Is(err, wasm.ErrNoHook) {
		t.Errorf("Response: %v, want ErrNoHook", err)
	}
	var a hook.MissAction
	if err := p.Miss(request("/", ""), &a); !errors.Is(err, wasm.ErrNoHook) {
		t.Errorf("Miss: %v, want ErrNoHook", err)
	}
}

// TestMemo checks what the memo keys on: the values of the fields the
// hook read, headers included, and nothing for calls that read the clock.
func TestMemo(t *testing.T) {
	h := newHost(t)
	t.Run("by header", func(t *testing.T) {
		p := load(t, h, "wat/keyparts.wasm", hook.PluginOptions{PoolSize: 1})
		cases := []struct {
			path   string
			device []string
			want   string
			act    hook.KeyAction
		}{
			{"/a", []string{"mobile"}, "|mobile", hook.KeyExtend},
			{"/b", []string{"mobile"}, "|mobile", hook.KeyExtend}, // hit: path not read
			{"/a", []string{"tv"}, "|tv", hook.KeyExtend},
			{"/a", nil, "", hook.KeyDefault},
			{"/a", []string{"a", "b"}, "|a, b", hook.KeyExtend},
			{"/c", []string{"a", "b"}, "|a, b", hook.KeyExtend}, // hit
			{"/c", []string{"a, b"}, "|a, b", hook.KeyExtend},   // same bytes, different values: a call
		}
		for i, tc := range cases {
			var hdr []string
			for _, v := range tc.device {
				hdr = append(hdr, "X-Device", v)
			}
			out, act, err := p.AppendKey(nil, request(tc.path, "", hdr...))
			if errors.Is(err, hook.ErrDeclined) && tc.act == hook.KeyDefault {
				err = nil // a guest call that declined; a memo hit of it returns no error
			}
			if err != nil || act != tc.act || string(out) != tc.want {
				t.Fatalf("case %d: %q %v %v, want %q %v", i, out, act, err, tc.want, tc.act)
			}
		}
		s := p.Stats()
		if s.MemoHits != 2 || s.Hooks[hook.KeyHook].Calls != 5 || len(s.MemoFields) != 1 || s.MemoFields[0] != "header:X-Device" {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("clock read is not memoized", func(t *testing.T) {
		p := load(t, h, "wat/clock.wasm", hook.PluginOptions{PoolSize: 1})
		for range 3 {
			if out, _, err := p.AppendKey(nil, request("/t", "")); err != nil || string(out) != "/t" {
				t.Fatalf("%q %v", out, err)
			}
		}
		if s := p.Stats(); s.MemoHits != 0 || s.MemoSkipped != 3 || s.Hooks[hook.KeyHook].Calls != 3 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		p := load(t, h, "wat/minimal.wasm", hook.PluginOptions{PoolSize: 1, MemoEntries: -1})
		for range 3 {
			_, _, _ = p.AppendKey(nil, request("/t", ""))
		}
		if s := p.Stats(); !s.MemoDisabled || s.MemoHits+s.MemoMisses != 0 || s.Hooks[hook.KeyHook].Calls != 3 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		p := load(t, h, "wat/minimal.wasm", hook.PluginOptions{PoolSize: 1, MemoEntries: 64})
		for i := range 1000 {
			_, _, _ = p.AppendKey(nil, request("/n/"+string(rune('0'+i%10))+string(rune('a'+i/10%26))+string(rune('a'+i/260)), ""))
		}
		if n := p.Stats().MemoEntries; n > 64 || n == 0 {
			t.Errorf("memo holds %d entries, bound 64", n)
		}
	})
}

// TestCompilationCacheDir: a module compiled into a cache directory loads
// from it in another host (another process, in production).
func TestCompilationCacheDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	h1, err := wasm.NewHost(ctx, wasm.Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	info, err := h1.Compile(ctx, readModule(t, "wat/minimal.wasm"))
	if err != nil || info.ABIVersion != 1 || info.HookNames() != "key" {
		t.Fatalf("Compile: %+v %v", info, err)
	}
	_ = h1.Close(ctx)
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Fatal("the cache directory is empty after Compile")
	}
	h2, err := wasm.NewHost(ctx, wasm.Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close(ctx)
	p, err := h2.Load(ctx, readModule(t, "wat/minimal.wasm"), hook.PluginOptions{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := p.AppendKey(nil, request("/c", "")); err != nil || string(out) != "/c" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestPluginOptionsInvalid(t *testing.T) {
	h := newHost(t)
	for _, o := range []hook.PluginOptions{
		{PoolSize: -1}, {PoolSize: wasm.MaxPoolSize + 1}, {Timeout: -time.Second},
		{MemoryLimitPages: 65537}, {MaxCallsPerInstance: -1},
	} {
		if _, err := h.Load(context.Background(), readModule(t, "wat/minimal.wasm"), o); err == nil {
			t.Errorf("Load accepted %+v", o)
		}
	}
}

func TestHostClose(t *testing.T) {
	h, err := wasm.NewHost(context.Background(), wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Load(context.Background(), readModule(t, "wat/minimal.wasm"), hook.PluginOptions{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.AppendKey(nil, request("/after-close", "")); !errors.Is(err, wasm.ErrClosed) {
		t.Errorf("call after Host.Close: %v, want ErrClosed", err)
	}
	if _, err := h.Load(context.Background(), readModule(t, "wat/minimal.wasm"), hook.PluginOptions{PoolSize: 1}); err == nil {
		t.Error("Load after Host.Close succeeded")
	}
}

// TestBreaker: a plugin that faults on every call is suspended after
// BreakerFaults faults (calls fall back at once, no instantiation), tried
// again after the cooldown, and suspended again at its next fault.
func TestBreaker(t *testing.T) {
	h := newHost(t)
	p := load(t, h, "hostile/unreachable.wasm", hook.PluginOptions{PoolSize: 1, Timeout: time.Second})
	for i := range wasm.BreakerFaults {
		if _, _, err := p.AppendKey(nil, request("/", "")); !errors.Is(err, wasm.ErrTrap) {
			t.Fatalf("call %d: %v, want ErrTrap", i, err)
		}
	}
	start := time.Now()
	if _, _, err := p.AppendKey(nil, request("/", "")); !errors.Is(err, wasm.ErrSuspended) {
		t.Fatalf("after %d faults: %v, want ErrSuspended", wasm.BreakerFaults, err)
	}
	s := p.Stats()
	if s.Suspensions != 1 || s.Suspended != 1 || s.Traps != wasm.BreakerFaults {
		t.Fatalf("stats %+v", s)
	}
	time.Sleep(wasm.BreakerCooldown - time.Since(start) + 50*time.Millisecond)
	if _, _, err := p.AppendKey(nil, request("/", "")); !errors.Is(err, wasm.ErrTrap) {
		t.Fatalf("after the cooldown: %v, want the plugin tried again", err)
	}
	if _, _, err := p.AppendKey(nil, request("/", "")); !errors.Is(err, wasm.ErrSuspended) {
		t.Fatalf("a fault after the cooldown: %v, want suspended again", err)
	}
	if s := p.Stats(); s.Suspensions != 2 {
		t.Fatalf("stats %+v", s)
	}
}
