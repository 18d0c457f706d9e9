package wasm_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/wasm"
)

// gatedOutput is a GuestOutput for testdata/initwrite.wasm, whose init
// hook writes a line and fails when the write does: the first free writes
// pass, the later ones wait for release, or fail when release is nil.
type gatedOutput struct {
	free    int
	release chan struct{}

	mu     sync.Mutex
	writes int
}

func (g *gatedOutput) Write(b []byte) (int, error) {
	g.mu.Lock()
	g.writes++
	n := g.writes
	g.mu.Unlock()
	switch {
	case n <= g.free:
		return len(b), nil
	case g.release == nil:
		return 0, errors.New("gated")
	}
	<-g.release
	return len(b), nil
}

// loadInitWrite loads testdata/initwrite.wasm in a host whose guest output
// is out. Load must return within 10s: a Load that waited for an instance
// held by out would never return.
func loadInitWrite(t *testing.T, out *gatedOutput, poolSize int) (*wasm.Plugin, error) {
	t.Helper()
	bin, err := os.ReadFile("testdata/initwrite.wasm")
	if err != nil {
		t.Fatal(err)
	}
	h, err := wasm.NewHost(context.Background(), wasm.Options{GuestOutput: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	type loaded struct {
		p   *wasm.Plugin
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		p, err := h.Load(context.Background(), bin, hook.PluginOptions{Name: "initwrite", PoolSize: poolSize})
		done <- loaded{p, err}
	}()
	select {
	case l := <-done:
		return l.p, l.err
	case <-time.After(10 * time.Second):
		if out.release != nil {
			close(out.release) // let Load and the test end
		}
		t.Fatal("Load did not return while the instances after the first were held")
		return nil, nil
	}
}

// TestLoadFillsPoolInBackground: Load returns once one instance has run its
// init hook, and the plugin answers calls; WaitFull grows the pool, the
// filler creates the others in the background and WaitFull waits for them.
func TestLoadFillsPoolInBackground(t *testing.T) {
	out := &gatedOutput{free: 1, release: make(chan struct{})}
	p, err := loadInitWrite(t, out, 4)
	if err != nil {
		close(out.release)
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			close(out.release)
		}
	}()
	// The second instance's init is held: the pool holds one instance
	// ready, and another being created.
	if s := p.Stats(); s.Instantiated > 2 || s.Instances > 2 {
		t.Errorf("%d instances created, %d live, while the second init is held", s.Instantiated, s.Instances)
	}
	if _, act, err := p.AppendKey(nil, request("/", "")); (err != nil && !errors.Is(err, hook.ErrDeclined)) || act != hook.KeyDefault {
		t.Fatalf("call on the first instance: %v %v", act, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.WaitFull(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFull with the second init held: %v, want the deadline", err)
	}

	close(out.release)
	released = true
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitFull(ctx); err != nil {
		t.Fatalf("WaitFull: %v", err)
	}
	if s := p.Stats(); s.Instances != 4 || s.Instantiated != 4 {
		t.Errorf("full pool: %d live, %d created; want 4 and 4", s.Instances, s.Instantiated)
	}
}

// TestLoadInitFails: an init hook that fails fails Load, as it always did.
func TestLoadInitFails(t *testing.T) {
	p, err := loadInitWrite(t, &gatedOutput{free: 0}, 4)
	if !errors.Is(err, wasm.ErrInit) || p != nil {
		t.Fatalf("Load with a failing init: %v, want ErrInit", err)
	}
}

// TestWaitFullReportsFillError: when an instance after the first fails its
// init, Load has returned already; WaitFull reports the failure (a reload
// uses it to reject the configuration) and the plugin keeps serving from
// the instances it has.
func TestWaitFullReportsFillError(t *testing.T) {
	p, err := loadInitWrite(t, &gatedOutput{free: 1}, 4)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitFull(ctx); !errors.Is(err, wasm.ErrInit) {
		t.Fatalf("WaitFull: %v, want ErrInit", err)
	}
	if _, act, err := p.AppendKey(nil, request("/", "")); (err != nil && !errors.Is(err, hook.ErrDeclined)) || act != hook.KeyDefault {
		t.Fatalf("call on the first instance: %v %v", act, err)
	}
}

// TestWaitFullAfterClose: closing a plugin whose pool is still filling
// ends WaitFull with ErrClosed.
func TestWaitFullAfterClose(t *testing.T) {
	out := &gatedOutput{free: 1, release: make(chan struct{})}
	p, err := loadInitWrite(t, out, 4)
	if err != nil {
		close(out.release)
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	// Close stops the filler, then waits for it, whose second init is held
	// in the writer (nothing shows when it stopped it: give it time). Then
	// let the init return: the filler must create no more instances.
	time.Sleep(100 * time.Millisecond)
	close(out.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitFull(ctx); !errors.Is(err, wasm.ErrClosed) {
		t.Fatalf("WaitFull after Close: %v, want ErrClosed", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// Load's, and the second if the filler had started it.
	if s := p.Stats(); s.Instantiated > 2 {
		t.Errorf("%d instances created; want at most 2, none started after Close", s.Instantiated)
	}
}
