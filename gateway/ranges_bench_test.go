package gateway_test

import (
	"net/http"
	"testing"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// rangeHitCases are the stores a ranged hit is measured on: the embedded
// store and the L1 of a Valkey shard.
var rangeHitCases = []struct {
	name string
	cfg  func(testing.TB) *config.Config
}{
	{"embedded", func(testing.TB) *config.Config { return testConfig("http://unused", nil) }},
	{"valkey-l1", func(tb testing.TB) *config.Config { return testConfig("http://unused", valkeytest.Start(tb, 1)) }},
}

// warmRange warms a key as warmHit does, then makes its request ask for
// one range of the 1024-byte body.
func warmRange(tb testing.TB, cfg *config.Config) (http.Handler, *http.Request, *discardWriter) {
	h, req, w := warmHit(tb, cfg, hitL1)
	req.Header["Range"] = []string{"bytes=100-611"}
	return h, req, w
}

// wantRangeHit checks that the last answer was the range, from the L1.
func wantRangeHit(tb testing.TB, w *discardWriter) {
	tb.Helper()
	if w.status != http.StatusPartialContent || w.n == 0 || w.h.Get("Content-Range") != "bytes 100-611/1024" || w.h.Get("Cache-Status") != hitL1 {
		tb.Fatalf("status %d, Content-Range %q, Cache-Status %q: not a ranged L1 hit", w.status, w.h.Get("Content-Range"), w.h.Get("Cache-Status"))
	}
}

// BenchmarkHitRange is BenchmarkHit's L1 hit asked for a single range
// (512 of the 1024 bytes): compare with BenchmarkHit's embedded and
// valkey-l1 (the goal is at most 1.2x).
func BenchmarkHitRange(b *testing.B) {
	for _, c := range rangeHitCases {
		b.Run(c.name, func(b *testing.B) {
			h, req, w := warmRange(b, c.cfg(b))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
			b.StopTimer()
			wantRangeHit(b, w)
		})
	}
}

// TestRangeHitAllocs pins a single-range L1 hit at zero allocations per
// request, as TestHitAllocs does the whole hit (make test runs it without
// -race). Through a header map the range's two field values are kept by
// the entry for the next request for the same range; a different range
// costs their allocation once.
func TestRangeHitAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Valkey servers")
	}
	if raceEnabled {
		t.Skip("allocation counts under -race are the race detector's; make test runs this without it")
	}
	for _, c := range rangeHitCases {
		t.Run(c.name, func(t *testing.T) {
			h, req, w := warmRange(t, c.cfg(t))
			allocs := testing.AllocsPerRun(200, func() {
				clear(w.h)
				w.n = 0
				h.ServeHTTP(w, req)
			})
			wantRangeHit(t, w)
			if allocs != 0 {
				t.Errorf("a single-range L1 hit allocates %.1f times per request; want 0", allocs)
			}
		})
	}
}
