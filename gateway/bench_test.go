package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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

// warmHit starts a gateway for cfg and warms one key until it is served
// from the tier wantCS names; it returns the handler, the request and the
// writer to reuse. With ae the request sends that Accept-Encoding and the
// body is a compressible JSON document the fill compresses; without, the
// route does not compress (a plain hit, as before compression).
func warmHit(tb testing.TB, cfg *config.Config, wantCS, ae string) (http.Handler, *http.Request, *discardWriter) {
	return warmHitWith(tb, cfg, wantCS, ae, nil)
}

// curlFields are the fields curl sends with every request: the "-curl"
// rows compare a Range or a compressed hit with a plain hit that carries
// request fields too, as every real one does (wrk sends none), so that
// the ratio is what the feature costs and not what the first field in an
// empty header map costs every lookup.
var curlFields = http.Header{"User-Agent": {"curl/7.88.1"}, "Accept": {"*/*"}}

// warmHitWith is warmHit with the request fields extra.
func warmHitWith(tb testing.TB, cfg *config.Config, wantCS, ae string, extra http.Header) (http.Handler, *http.Request, *discardWriter) {
	origin := newTestOrigin(tb)
	origin.body = func(string) string { return string(make([]byte, 1024)) }
	if ae != "" {
		origin.body = func(string) string { return string(jsonBody(1024)) }
	} else {
		cfg.Routes[0].Compress.Disabled = true
	}
	cfg.Routes[0].Origin = origin.URL
	g, _ := startGateway(tb, cfg)
	h := g.Handler()
	req := httptest.NewRequest(http.MethodGet, "http://bench.example/products/12345?a=1&b=2", nil)
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	for k, vv := range extra {
		req.Header[k] = vv
	}
	w := &discardWriter{h: http.Header{}}
	// Miss, then L2, then L1: the L1 may remember the miss until Valkey's
	// invalidation of it arrives, so warm up until the tier is reached.
	deadline := time.Now().Add(5 * time.Second)
	for {
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.h.Get("Cache-Status") == wantCS {
			return h, req, w
		}
		if time.Now().After(deadline) {
			tb.Fatalf("warm-up ended with %q, want %q", w.h.Get("Cache-Status"), wantCS)
		}
		time.Sleep(time.Millisecond)
	}
}

// benchHit measures the handler on a warm key: one request and one writer,
// reused.
func benchHit(b *testing.B, cfg *config.Config, wantCS, ae string) {
	benchHitFields(b, cfg, wantCS, ae, nil)
}

// benchHitFields is benchHit with the request fields extra.
func benchHitFields(b *testing.B, cfg *config.Config, wantCS, ae string, extra http.Header) {
	h, req, w := warmHitWith(b, cfg, wantCS, ae, extra)
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
	if ae != "" && w.h.Get("Content-Encoding") == "" {
		b.Fatalf("Accept-Encoding %q was not sent a coding", ae)
	}
}

// TestHitAllocs pins the hit handler at zero allocations per request (the
// benchmarks above report it; this fails when it moves), for the embedded
// store and the L1 of a Valkey shard, with and without a WASM key plugin.
func TestHitAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Valkey servers")
	}
	if raceEnabled {
		t.Skip("allocation counts under -race are the race detector's; make test runs this without it")
	}
	cases := []struct {
		name string
		cfg  func() *config.Config
		ae   string // a compressed entry's hit (encode.go)
	}{
		{"embedded", func() *config.Config { return testConfig("http://unused", nil) }, ""},
		{"valkey-l1", func() *config.Config { return testConfig("http://unused", valkeytest.Start(t, 1)) }, ""},
		{"valkey-l1-wasm-key", func() *config.Config {
			cfg := testConfig("http://unused", valkeytest.Start(t, 1))
			cfg.Plugins = []config.Plugin{{Name: "strip", Path: pluginPath(t, "examples/go-stripparams.wasm")}}
			cfg.Routes[0].Plugins = []string{"strip"}
			return cfg
		}, ""},
		{"valkey-l1-compressed", func() *config.Config { return testConfig("http://unused", valkeytest.Start(t, 1)) }, "br, gzip"},
		{"embedded-compressed-identity", func() *config.Config { return testConfig("http://unused", nil) }, "identity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, req, w := warmHit(t, c.cfg(), hitL1, c.ae)
			allocs := testing.AllocsPerRun(200, func() {
				clear(w.h)
				h.ServeHTTP(w, req)
			})
			if w.status != 200 || w.h.Get("Cache-Status") != hitL1 {
				t.Fatalf("status %d, %q: not an L1 hit", w.status, w.h.Get("Cache-Status"))
			}
			if c.ae == "br, gzip" && w.h.Get("Content-Encoding") != "br" {
				t.Fatalf("Content-Encoding %q, want br", w.h.Get("Content-Encoding"))
			}
			if allocs != 0 {
				t.Errorf("an L1 hit allocates %.1f times per request; want 0", allocs)
			}
		})
	}
}

func BenchmarkHit(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		benchHit(b, testConfig("http://unused", nil), hitL1, "")
	})
	b.Run("valkey-l1", func(b *testing.B) {
		benchHit(b, testConfig("http://unused", valkeytest.Start(b, 3)), hitL1, "")
	})
	// A compressed entry's hit: the coding is picked from Accept-Encoding
	// and its stored body written; no compression work (encode.go).
	b.Run("valkey-l1-compressed", func(b *testing.B) {
		benchHit(b, testConfig("http://unused", valkeytest.Start(b, 3)), hitL1, "br, gzip")
	})
	// The same three with curl's request fields (curlFields): the plain
	// hits BenchmarkHitRange's and the compressed "-curl" rows compare with.
	b.Run("embedded-curl", func(b *testing.B) {
		benchHitFields(b, testConfig("http://unused", nil), hitL1, "", curlFields)
	})
	b.Run("valkey-l1-curl", func(b *testing.B) {
		benchHitFields(b, testConfig("http://unused", valkeytest.Start(b, 3)), hitL1, "", curlFields)
	})
	b.Run("valkey-l1-compressed-curl", func(b *testing.B) {
		benchHitFields(b, testConfig("http://unused", valkeytest.Start(b, 3)), hitL1, "br, gzip", curlFields)
	})
	b.Run("valkey-l1-wasm-key", func(b *testing.B) {
		cfg := testConfig("http://unused", valkeytest.Start(b, 3))
		cfg.Plugins = []config.Plugin{{Name: "strip", Path: pluginPath(b, "examples/go-stripparams.wasm")}}
		cfg.Routes[0].Plugins = []string{"strip"}
		benchHit(b, cfg, hitL1, "")
	})
	b.Run("valkey-l2", func(b *testing.B) {
		cfg := testConfig("http://unused", valkeytest.Start(b, 3))
		cfg.Valkey.DisableL1 = true
		benchHit(b, cfg, hitL2, "")
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

// BenchmarkServeHit is the whole server on a warm key: one keep-alive
// client on loopback sending a request and reading the answer, on the
// HTTP/1 fast path and on net/http alone. Client and server share the
// process, so ns/op is a round trip, not the server's CPU (make bench
// measures that); allocs/op are the server's (the client allocates
// nothing per iteration).
func BenchmarkServeHit(b *testing.B) {
	for _, fast := range []bool{true, false} {
		name := "h1"
		if !fast {
			name = "net-http"
		}
		b.Run(name, func(b *testing.B) {
			origin := newTestOrigin(b)
			origin.body = func(string) string { return string(make([]byte, 1024)) }
			cfg := testConfig(origin.URL, nil)
			cfg.Server.DisableFastPath = !fast
			_, base := startGateway(b, cfg)
			raw := []byte("GET /products/12345?a=1&b=2 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 8192)
			size := 0
			for range 3 { // miss, then hits: learn a hit's length
				resp := roundTrip(b, c, br, raw)
				if resp.Header.Get("Cache-Status") == hitL1 {
					var h strings.Builder
					_ = resp.Header.Write(&h) // a strings.Builder does not fail
					size = len("HTTP/1.1 200 OK\r\n") + h.Len() + len("\r\n") + 1024
				}
			}
			if size == 0 {
				b.Fatal("no L1 hit in three requests")
			}
			buf := make([]byte, size)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(raw); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(br, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if !bytes.Contains(buf, []byte(hitL1)) {
				b.Fatalf("last answer %q", buf)
			}
		})
	}
}
