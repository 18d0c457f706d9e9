package cli

import (
	"context"
	"log/slog"
	"runtime/metrics"
	"time"
)

// Returning freed heap when the process goes quiet (server.idle_release).
//
// Go's scavenger returns free heap to the OS only down to about 10% over
// the heap goal, and the goal is twice the live heap (GOGC=100); the
// forced GC comes after two minutes. So a gateway that filled a few
// thousand entries and went quiet keeps, for minutes, the garbage of
// those fills: a quarter to a third of its anonymous memory with a Go
// plugin. A POP's quiet hours are when that is worth giving back and
// costs nothing: once the process has used less than quietCPUShare of a
// core for a whole window, and has allocated enough since the last
// release for a GC to find garbage, it does what it does after start and
// each reload (memoryLimit.settle): one forced GC and debug.FreeOSMemory.
//
// The two conditions bound its cost. Quiet is measured by the process's
// own CPU time (getrusage), not by allocation: the hit path allocates
// nothing, so a gateway serving only L1 hits would look quiet to an
// allocation counter and be interrupted by a GC in the middle of its
// load. And a release needs releaseMinAlloc bytes, and a quarter of the
// heap that was live at the last GC, allocated since the last one: a GC
// costs in proportion to the live heap, so this is at most four times
// the GC work GOGC=100 already does for the same allocation, and only in
// windows when almost nothing is allocated. An idle gateway allocates
// nothing and releases nothing.

const (
	// quietCPUShare is the share of one core under which a window is
	// quiet: an idle gateway uses ~0.5% (the sysmon setting, RATIONALE
	// "Keeping sysmon awake"); one client's loop of L1 hits uses tens of
	// percent.
	quietCPUShare = 0.02
	// releaseMinAlloc is the least allocation since the last release
	// that makes another worth a GC.
	releaseMinAlloc = 1 << 20
)

// releaseSample is what one window's end reads.
type releaseSample struct {
	cpu    time.Duration // the process's user + system CPU time
	allocs uint64        // bytes allocated on the heap, ever
	live   uint64        // heap live at the last GC
}

// quietRelease reports whether a release is due at cur: the window
// since prev (window long) was quiet and enough was allocated since the
// release at lastAllocs.
func quietRelease(prev, cur releaseSample, window time.Duration, lastAllocs uint64) bool {
	if window <= 0 || cur.cpu-prev.cpu >= time.Duration(float64(window)*quietCPUShare) {
		return false
	}
	since := cur.allocs - lastAllocs
	return since >= releaseMinAlloc && since >= cur.live/4
}

// releaseMetrics are the runtime/metrics a sample reads.
var releaseMetrics = [...]string{"/gc/heap/allocs:bytes", "/gc/heap/live:bytes"}

// sampler reads releaseSamples without allocating.
type sampler struct{ m []metrics.Sample }

func newSampler() *sampler {
	s := &sampler{m: make([]metrics.Sample, len(releaseMetrics))}
	for i, name := range releaseMetrics {
		s.m[i].Name = name
	}
	return s
}

// read returns the current sample; ok is false where the process's CPU
// time cannot be read (release_other.go).
func (s *sampler) read() (r releaseSample, ok bool) {
	r.cpu, ok = processCPU()
	metrics.Read(s.m)
	if s.m[0].Value.Kind() == metrics.KindUint64 {
		r.allocs = s.m[0].Value.Uint64()
	}
	if s.m[1].Value.Kind() == metrics.KindUint64 {
		r.live = s.m[1].Value.Uint64()
	}
	return r, ok
}

// releaseWhenQuiet checks every window (the current server.idle_release,
// read through window) and releases when quietRelease says so, until ctx
// ends. A negative or zero window turns it off until a reload sets one.
func releaseWhenQuiet(ctx context.Context, window func() time.Duration, release func(), log *slog.Logger) {
	s := newSampler()
	prev, ok := s.read()
	if !ok {
		return
	}
	last := prev.allocs
	t := time.NewTimer(time.Hour) // one timer: an idle loop allocates nothing
	defer t.Stop()
	for {
		w := window()
		wait := w
		if w <= 0 {
			wait = time.Second // off: look again for a reload that turns it on
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, _ := s.read()
		if quietRelease(prev, cur, w, last) {
			start := time.Now()
			release()
			done, _ := s.read() // the release's own CPU is not the next window's
			log.Debug("quiet: returned the free heap to the OS", "took", time.Since(start), "cpu", done.cpu-cur.cpu, "allocated_since_last", cur.allocs-last, "live", done.live)
			cur, last = done, done.allocs
		}
		prev = cur
	}
}
