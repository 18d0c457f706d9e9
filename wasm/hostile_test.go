package wasm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/wasm"
)

// TestHostileCalls runs each hostile module's hook several times: every
// call must fail fast with the right error, count a fault, discard the
// instance, and leave the plugin usable (the pool refills).
func TestHostileCalls(t *testing.T) {
	const timeout = 50 * time.Millisecond
	cases := []struct {
		name   string
		module string
		hook   hook.ID
		want   error
		pages  uint32
		stat   func(hook.PluginStats) uint64
		within time.Duration
	}{
		{"infinite loop", "hostile/loop.wasm", hook.KeyHook, wasm.ErrTimeout, 0, func(s hook.PluginStats) uint64 { return s.Timeouts }, 20 * timeout},
		{"unreachable", "hostile/unreachable.wasm", hook.KeyHook, wasm.ErrTrap, 0, func(s hook.PluginStats) uint64 { return s.Traps }, timeout},
		{"unreachable response", "hostile/unreachable.wasm", hook.ResponseHook, wasm.ErrTrap, 0, func(s hook.PluginStats) uint64 { return s.Traps }, timeout},
		{"unreachable miss", "hostile/unreachable.wasm", hook.MissHook, wasm.ErrTrap, 0, func(s hook.PluginStats) uint64 { return s.Traps }, timeout},
		{"memory.grow bomb", "hostile/grow.wasm", hook.KeyHook, wasm.ErrMemory, 64, func(s hook.PluginStats) uint64 { return s.OutOfMemory }, 0},
		{"memory.grow refused, then a spin to the deadline", "hostile/growspin.wasm", hook.KeyHook, wasm.ErrMemory, 64, func(s hook.PluginStats) uint64 { return s.OutOfMemory }, 20 * timeout},
		{"result too large", "hostile/bigresult.wasm", hook.KeyHook, wasm.ErrABI, 0, func(s hook.PluginStats) uint64 { return s.ABIViolations }, timeout},
		{"pointer outside memory", "hostile/badptr.wasm", hook.KeyHook, wasm.ErrABI, 0, func(s hook.PluginStats) uint64 { return s.ABIViolations }, timeout},
		{"setter of another hook", "hostile/wronghook.wasm", hook.KeyHook, wasm.ErrABI, 0, func(s hook.PluginStats) uint64 { return s.ABIViolations }, timeout},
		{"header injection", "hostile/badinject.wasm", hook.MissHook, wasm.ErrABI, 0, func(s hook.PluginStats) uint64 { return s.ABIViolations }, timeout},
		// Termination checks sit on loop back-edges only: a recursion runs
		// until wazero's stack limit traps it, ~0.7s (3-4s under -race),
		// past the deadline, so it counts as a timeout.
		{"stack overflow", "hostile/recurse.wasm", hook.KeyHook, wasm.ErrTimeout, 0, func(s hook.PluginStats) uint64 { return s.Timeouts + s.Traps }, 10 * time.Second},
	}
	h := newHost(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := hook.PluginOptions{PoolSize: 2, Timeout: timeout, MemoryLimitPages: tc.pages}
			if tc.within == 0 {
				// Growing memory costs Go allocations and GC: up to tens
				// of ms for 4 MiB on a loaded box. Give it time to fail
				// on its own.
				o.Timeout, tc.within = 2*time.Second, 2*time.Second
			}
			p := load(t, h, tc.module, o)
			calls := 3
			if tc.within > time.Second {
				calls = 1 // slow by nature: one is enough
			}
			for i := range calls {
				// A faulted instance is replaced in the background; on a
				// loaded machine that can outlast the call timeout, so wait
				// for a full pool: this test is about containment.
				for deadline := time.Now().Add(10 * time.Second); p.Stats().Instances < o.PoolSize && time.Now().Before(deadline); {
					time.Sleep(5 * time.Millisecond)
				}
				start := time.Now()
				err := callHook(p, tc.hook)
				if !errors.Is(err, tc.want) && (tc.want != wasm.ErrTimeout || !errors.Is(err, wasm.ErrTrap)) {
					t.Fatalf("call %d: err = %v, want %v", i, err, tc.want)
				}
				var he *wasm.HookError
				if !errors.As(err, &he) || he.Hook != tc.hook {
					t.Fatalf("call %d: err %v is not a HookError of the %v hook", i, err, tc.hook)
				}
				if d := time.Since(start); d > tc.within+time.Second {
					t.Errorf("call %d took %v", i, d)
				}
			}
			s := p.Stats()
			if got := tc.stat(s); got != uint64(calls) {
				t.Errorf("fault counter = %d, want %d (%+v)", got, calls, s)
			}
			if s.Hooks[tc.hook].Faults != uint64(calls) || s.Hooks[tc.hook].Calls != uint64(calls) {
				t.Errorf("hook stats = %+v, want %d calls and faults", s.Hooks[tc.hook], calls)
			}
			// The pool refills: discarded instances are replaced.
			waitFor(t, func() bool { return p.Stats().Instances == 2 })
			if s := p.Stats(); s.Instantiated < 2+uint64(calls) {
				t.Errorf("instantiated %d, want at least %d", s.Instantiated, 2+calls)
			}
		})
	}
}

func callHook(p *wasm.Plugin, h hook.ID) error {
	r := request("/p", "")
	switch h {
	case hook.KeyHook:
		_, _, err := p.AppendKey(nil, r)
		return err
	case hook.ResponseHook:
		d := hook.Decision{Store: true, TTL: time.Minute}
		return p.Response(r, &hook.Response{Status: 200}, &d)
	default:
		var a hook.MissAction
		return p.Miss(r, &a)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHostileLoad: modules that are not valid plugins fail Load with a
// clear error and leave nothing running.
func TestHostileLoad(t *testing.T) {
	cases := []struct {
		name, module string
		want         error
	}{
		{"wrong ABI version", "hostile/wrongabi.wasm", wasm.ErrABIVersion},
		{"no ABI version", "hostile/noabi.wasm", wasm.ErrABIVersion},
		{"no hooks", "hostile/nohooks.wasm", wasm.ErrInvalidModule},
		{"no memory", "hostile/nomemory.wasm", wasm.ErrInvalidModule},
		{"unknown import", "hostile/badimport.wasm", wasm.ErrInvalidModule},
		{"wrong import signature", "hostile/badsig.wasm", wasm.ErrInvalidModule},
		{"init never returns", "hostile/initloop.wasm", wasm.ErrInit},
		{"not wasm", "wat/minimal.wat", wasm.ErrInvalidModule},
	}
	h := newHost(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := h.Load(context.Background(), readModule(t, tc.module), hook.PluginOptions{Timeout: 20 * time.Millisecond, InitTimeout: 200 * time.Millisecond})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Load: err = %v, want %v", err, tc.want)
			}
			if p != nil {
				t.Fatal("Load returned a plugin with an error")
			}
			t.Log(err)
			if _, err := h.Compile(context.Background(), readModule(t, tc.module)); tc.want != wasm.ErrInit && !errors.Is(err, tc.want) {
				t.Errorf("Compile: err = %v, want %v", err, tc.want)
			}
		})
	}
}
