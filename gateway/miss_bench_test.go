package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/edgecache/edgecache/internal/valkeytest"
)

// BenchmarkMiss measures the miss path in the handler: a new key per
// request (lookup, fill lock, origin request over loopback, store with
// its SET, lock release), 1 KiB bodies, one Valkey shard. "compressed" is
// the default route, whose fill marks the entry's codings pending (the
// requests send no Accept-Encoding, so none is made); "identity" does not
// compress. ns/op is the wall time of one miss after another,
// Valkey's and the origin's wait included; cpu-ns/op is this process's
// CPU per miss (getrusage: the gateway and the in-process test origin,
// not Valkey), the figure to compare.
func BenchmarkMiss(b *testing.B) {
	for _, name := range []string{"compressed", "identity"} {
		b.Run(name, func(b *testing.B) {
			origin := newTestOrigin(b)
			origin.body = func(string) string { return string(jsonBody(1024)) }
			cfg := testConfig(origin.URL, valkeytest.Start(b, 1))
			cfg.Routes[0].Compress.Disabled = name == "identity"
			g, _ := startGateway(b, cfg)
			h := g.Handler()
			w := &discardWriter{h: http.Header{}}
			path := []byte("http://bench.example/products/")
			base := len(path)
			b.ReportAllocs()
			n := 0
			cpu0 := processCPU(b)
			for b.Loop() {
				n++
				path = strconv.AppendInt(path[:base], int64(n), 10)
				clear(w.h)
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, string(path), nil))
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(n), "cpu-ns/op")
			if cs := w.h.Get("Cache-Status"); w.status != 200 || !strings.Contains(cs, "fwd=uri-miss") || !strings.Contains(cs, "stored") {
				b.Fatalf("last request: status %d, Cache-Status %q; want a stored miss", w.status, cs)
			}
		})
	}
}

// processCPU is this process's user and system CPU time so far, in ns.
func processCPU(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
