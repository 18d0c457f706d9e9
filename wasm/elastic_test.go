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

// heldOutput is a GuestOutput that holds every write until release is
// closed, and counts the writes held: testdata/blockkey.wasm's key hook
// writes, so each call in flight is one held write.
type heldOutput struct {
	release chan struct{}
	mu      sync.Mutex
	held    int
}

func (h *heldOutput) Write(b []byte) (int, error) {
	h.mu.Lock()
	h.held++
	h.mu.Unlock()
	<-h.release
	h.mu.Lock()
	h.held--
	h.mu.Unlock()
	return len(b), nil
}

func (h *heldOutput) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// TestPoolGrowsOnDemandAndShrinksWhenIdle: a cold plugin holds one
// instance; N calls held in the guest at once grow the pool to
// min(N, PoolSize); once they end, the instances left unused for the idle
// timeout are closed, down to one, and the plugin still answers.
func TestPoolGrowsOnDemandAndShrinksWhenIdle(t *testing.T) {
	const poolSize, idle = 4, 200 * time.Millisecond
	bin, err := os.ReadFile("testdata/blockkey.wasm")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 6} {
		t.Run("calls="+string(rune('0'+n)), func(t *testing.T) {
			out := &heldOutput{release: make(chan struct{})}
			var releaseOnce sync.Once
			release := func() { releaseOnce.Do(func() { close(out.release) }) }
			t.Cleanup(release) // a failed wait must not leave calls held
			h, err := wasm.NewHost(context.Background(), wasm.Options{GuestOutput: out})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.Close(context.Background()) })
			// The timeout is long: the held calls must not time out, and
			// the calls beyond PoolSize wait for a released instance.
			o := hook.PluginOptions{Name: "blockkey", PoolSize: poolSize, Timeout: 20 * time.Second, IdleTimeout: idle, MemoEntries: -1}
			p, err := h.Load(context.Background(), bin, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close(context.Background()) })
			time.Sleep(50 * time.Millisecond) // a filler that filled eagerly would show now
			if s := p.Stats(); s.Instances != 1 || s.Instantiated != 1 {
				t.Fatalf("cold plugin: %d live, %d created; want 1 and 1", s.Instances, s.Instantiated)
			}

			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					if _, _, err := p.AppendKey(nil, request("/", "")); !errors.Is(err, hook.ErrDeclined) {
						errs <- err
					}
				})
			}
			want := min(n, poolSize)
			waitFor(t, func() bool { return out.count() == want && p.Stats().Instances == want })
			time.Sleep(50 * time.Millisecond) // no more than want may appear
			if s := p.Stats(); s.Instances != want || out.count() != want {
				t.Errorf("%d calls held: %d instances, %d calls in the guest; want %d", n, s.Instances, out.count(), want)
			}
			release()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("held call: %v, want ErrDeclined", err)
			}

			start := time.Now()
			waitFor(t, func() bool { return p.Stats().Instances == 1 })
			s := p.Stats()
			t.Logf("%d calls: grew to %d, back to 1 after %v idle (idle timeout %v); %d created, %d retired",
				n, want, time.Since(start).Round(time.Millisecond), idle, s.Instantiated, s.Retired)
			if s.Retired != uint64(want-1) || s.Instantiated != uint64(want) {
				t.Errorf("after idle: %d created, %d retired; want %d and %d", s.Instantiated, s.Retired, want, want-1)
			}
			if _, _, err := p.AppendKey(nil, request("/", "")); !errors.Is(err, hook.ErrDeclined) {
				t.Errorf("call after shrinking: %v", err)
			}
		})
	}
}
