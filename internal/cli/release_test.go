package cli

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
)

func TestQuietRelease(t *testing.T) {
	const w = time.Second
	at := func(cpu time.Duration, allocs, live uint64) releaseSample {
		return releaseSample{cpu: cpu, allocs: allocs, live: live}
	}
	prev := at(10*time.Second, 100<<20, 8<<20)
	cases := []struct {
		name string
		cur  releaseSample
		last uint64
		w    time.Duration
		want bool
	}{
		{"quiet, 4 MiB allocated", at(10*time.Second+5*time.Millisecond, 104<<20, 8<<20), 100 << 20, w, true},
		{"idle, nothing allocated", at(10*time.Second+5*time.Millisecond, 100<<20, 8<<20), 100 << 20, w, false},
		{"busy", at(10*time.Second+300*time.Millisecond, 104<<20, 8<<20), 100 << 20, w, false},
		{"just under the quiet share", at(10*time.Second+19*time.Millisecond, 104<<20, 8<<20), 100 << 20, w, true},
		{"at the quiet share", at(10*time.Second+20*time.Millisecond, 104<<20, 8<<20), 100 << 20, w, false},
		{"under 1 MiB since the last", at(10*time.Second, 101<<20-1, 1<<20), 100 << 20, w, false},
		{"under a quarter of the live heap", at(10*time.Second, 120<<20, 100<<20), 100 << 20, w, false},
		{"a quarter of the live heap", at(10*time.Second, 125<<20, 100<<20), 100 << 20, w, true},
		{"off", at(10*time.Second, 104<<20, 8<<20), 100 << 20, -1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := quietRelease(prev, c.cur, c.w, c.last); got != c.want {
				t.Fatalf("quietRelease = %v, want %v", got, c.want)
			}
		})
	}
}

// heapFree is the heap that is free and not returned to the OS.
func heapFree() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink [][]byte

// TestReleaseWhenQuiet runs the loop in this process: garbage made while
// a goroutine keeps a core busy is not released until the spinning stops,
// and then it is, within a few windows, returned to the OS.
func TestReleaseWhenQuiet(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	debug.FreeOSMemory()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var releases atomic.Int32
	var freeAfter atomic.Uint64 // read by the release itself: later garbage of other goroutines does not count
	const window = 200 * time.Millisecond
	var spin atomic.Bool
	spin.Store(true)
	spun := make(chan struct{})
	go func() {
		defer close(spun)
		for x := 0; spin.Load(); x++ {
			if x%(1<<20) == 0 {
				runtime.Gosched()
			}
		}
	}()
	go releaseWhenQuiet(ctx, func() time.Duration { return window }, func() {
		debug.FreeOSMemory()
		freeAfter.Store(heapFree())
		releases.Add(1) // after: the test reads freeAfter once it sees a release
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// 64 MiB of garbage, made while busy.
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
		for i := range sink[len(sink)-1] {
			sink[len(sink)-1][i] = byte(i)
		}
	}
	sink = nil
	runtime.GC() // the garbage is now free heap, not yet returned
	time.Sleep(5 * window)
	if n := releases.Load(); n != 0 {
		t.Fatalf("%d releases while a core was busy", n)
	}
	if free := heapFree(); free < 16<<20 {
		t.Fatalf("only %d bytes of free heap before the release; the test made no garbage to release", free)
	}
	spin.Store(false)
	<-spun
	deadline := time.Now().Add(20 * window)
	for releases.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(window / 4)
	}
	if releases.Load() == 0 {
		t.Fatalf("no release within %v of going quiet", 20*window)
	}
	if free := freeAfter.Load(); free > 8<<20 {
		t.Fatalf("%d bytes of free heap kept after the release", free)
	}
	time.Sleep(5 * window)
	if n := releases.Load(); n != 1 {
		t.Fatalf("%d releases; want 1: nothing was allocated after the first", n)
	}
}

// TestIdleReleaseFollowsReload: the loop reads the window each time, and
// apply (start and every reload) sets it.
func TestIdleReleaseFollowsReload(t *testing.T) {
	m := &memoryLimit{}
	for _, d := range []time.Duration{time.Second, -1, 250 * time.Millisecond} {
		c := &config.Config{}
		c.Server.IdleRelease = d
		m.apply(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if got := m.idleRelease(); got != d {
			t.Fatalf("after a reload to %v the window is %v", d, got)
		}
	}
}
