package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
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
	return warmRangeWith(tb, cfg, nil)
}

// warmRangeWith is warmRange with the request fields extra.
func warmRangeWith(tb testing.TB, cfg *config.Config, extra http.Header) (http.Handler, *http.Request, *discardWriter) {
	h, req, w := warmHitWith(tb, cfg, hitL1, "", extra)
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
// The "-curl" rows send curl's fields too: compare them with
// BenchmarkHit's "-curl" rows.
func BenchmarkHitRange(b *testing.B) {
	for _, c := range rangeHitCases {
		for _, extra := range []struct {
			suffix string
			h      http.Header
		}{{"", nil}, {"-curl", curlFields}} {
			b.Run(c.name+extra.suffix, func(b *testing.B) {
				benchRange(b, c.cfg(b), extra.h)
			})
		}
	}
}

// benchRange measures a single-range L1 hit with the request fields extra.
func benchRange(b *testing.B, cfg *config.Config, extra http.Header) {
	h, req, w := warmRangeWith(b, cfg, extra)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	wantRangeHit(b, w)
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

// BenchmarkServeHitRange is BenchmarkServeHit's h1 row asked for one
// range: the whole server on a warm key over one keep-alive connection,
// the 206 read whole each time. allocs/op are the server's.
func BenchmarkServeHitRange(b *testing.B) {
	origin := newTestOrigin(b)
	origin.body = func(string) string { return string(make([]byte, 1024)) }
	_, base := startGateway(b, testConfig(origin.URL, nil))
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 8192)
	plain := []byte("GET /products/12345 HTTP/1.1\r\nHost: bench.example\r\n\r\n")
	raw := []byte("GET /products/12345 HTTP/1.1\r\nHost: bench.example\r\nRange: bytes=100-611\r\n\r\n")
	var head []byte
	for _, req := range [][]byte{plain, plain, raw} { // miss, hit, then learn the 206's length
		resp := roundTrip(b, c, br, req)
		var h strings.Builder
		_ = resp.Header.Write(&h) // a strings.Builder does not fail
		head = []byte(resp.Status + h.String())
		if resp.StatusCode == http.StatusPartialContent && resp.Header.Get("Cache-Status") != hitL1 {
			b.Fatalf("206 with Cache-Status %q, want a hit", resp.Header.Get("Cache-Status"))
		}
	}
	buf := make([]byte, len("HTTP/1.1 ")+len(head)+len("\r\n\r\n")+512)
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
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 206")) || !bytes.Contains(buf, []byte("Content-Range: bytes 100-611/1024")) {
		b.Fatalf("last answer %q", buf)
	}
}

// rawReply is a response's head, its body read and discarded.
type rawReply struct {
	StatusCode int
	Status     string
	Header     http.Header
}

// roundTrip writes one raw request on c and reads its response whole.
func roundTrip(tb testing.TB, c net.Conn, br *bufio.Reader, req []byte) rawReply {
	tb.Helper()
	if _, err := c.Write(req); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatal(err)
	}
	return rawReply{resp.StatusCode, resp.Status, resp.Header}
}
