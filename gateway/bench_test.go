package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// discardWriter is a reusable ResponseWriter: the benchmarks measure the
// handler, not net/http.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// benchHit measures the handler on a warm key: one request and one writer,
// reused.
func benchHit(b *testing.B, cfg *config.Config, wantCS string) {
	origin := newTestOrigin(b)
	origin.body = func(string) string { return string(make([]byte, 1024)) }
	cfg.Routes[0].Origin = origin.URL
	g, _ := startGateway(b, cfg)
	h := g.Handler()
	req := httptest.NewRequest(http.MethodGet, "http://bench.example/products/12345?a=1&b=2", nil)
	w := &discardWriter{h: http.Header{}}
	// Miss, then L2, then L1: the L1 may remember the miss until Valkey's
	// invalidation of it arrives, so warm up until the tier is reached.
	deadline := time.Now().Add(5 * time.Second)
	for {
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.h.Get("Cache-Status") == wantCS {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("warm-up ended with %q, want %q", w.h.Get("Cache-Status"), wantCS)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.status != 200 || w.h.Get("Cache-Status") != wantCS {
		b.Fatalf("status %d, %q", w.status, w.h.Get("Cache-Status"))
	}
}

func BenchmarkHit(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		benchHit(b, testConfig("http://unused", nil), hitL1)
	})
	b.Run("valkey-l1", func(b *testing.B) {
		benchHit(b, testConfig("http://unused", valkeytest.Start(b, 3)), hitL1)
	})
	b.Run("valkey-l1-wasm-key", func(b *testing.B) {
		cfg := testConfig("http://unused", valkeytest.Start(b, 3))
		cfg.Plugins = []config.Plugin{{Name: "strip", Path: pluginPath(b, "examples/go-stripparams.wasm")}}
		cfg.Routes[0].Plugins = []string{"strip"}
		benchHit(b, cfg, hitL1)
	})
	b.Run("valkey-l2", func(b *testing.B) {
		cfg := testConfig("http://unused", valkeytest.Start(b, 3))
		cfg.Valkey.DisableL1 = true
		benchHit(b, cfg, hitL2)
	})
}

// BenchmarkHitParallel is the L1 hit path from every core.
func BenchmarkHitParallel(b *testing.B) {
	origin := newTestOrigin(b)
	cfg := testConfig(origin.URL, valkeytest.Start(b, 3))
	g, _ := startGateway(b, cfg)
	h := g.Handler()
	for i := range 1000 {
		req := httptest.NewRequest(http.MethodGet, "http://bench.example/p/"+strconv.Itoa(i), nil)
		h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		reqs := make([]*http.Request, 1000)
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, "http://bench.example/p/"+strconv.Itoa(i), nil)
		}
		w := &discardWriter{h: http.Header{}}
		i := 0
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, reqs[i%1000])
			i++
		}
	})
}
