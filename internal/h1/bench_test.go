package h1_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/h1"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// hitHandler answers like the gateway's hit path: pre-built header
// slices, a known length, one write of 1 KiB.
func hitHandler() http.Handler {
	body := []byte(strings.Repeat("x", 1024))
	ct, cl, cs := []string{"application/json"}, []string{"1024"}, []string{"edgecache; hit; detail=l1"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"], h["Content-Length"], h["Cache-Status"] = ct, cl, cs
		w.WriteHeader(200)
		w.Write(body)
	})
}

// BenchmarkServe is one keep-alive client sending a request, reading the
// answer, over loopback: net/http alone against the fast path, server and
// client in this process. Compare with benchstat; the CPU per request of
// the whole gateway is `make bench`'s to measure.
func BenchmarkServe(b *testing.B) {
	h := hitHandler()
	std, fast, _ := servers(b, h)
	for _, s := range []struct{ name, addr string }{{"net-http", std}, {"h1", fast}} {
		b.Run(s.name, func(b *testing.B) {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			roundTrips(b, c)
		})
	}
}

// BenchmarkServeTLS is BenchmarkServe over TLS 1.3 (ECDSA P-256,
// AES-128-GCM), the connection set up before the timer starts: net/http
// serving the TLS listener, as the traffic listener did, against the fast
// path after the handshake. cpu-ns/op is the process's CPU time (server
// and client) per round trip, from getrusage: wall time per op on a
// loaded machine is mostly waiting.
func BenchmarkServeTLS(b *testing.B) {
	h := hitHandler()
	ca := valkeytest.NewCA(b)
	cert, err := tls.LoadX509KeyPair(ca.CertFile, ca.KeyFile)
	if err != nil {
		b.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS13}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		return tls.NewListener(ln, conf)
	}
	lstd, lfast := listen(), listen()
	serveStd(b, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, lstd)
	serve(b, &h1.Server{Handler: h, Fallback: &http.Server{Handler: h}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}, lfast)
	for _, s := range []struct {
		name string
		ln   net.Listener
	}{{"net-http", lstd}, {"h1", lfast}} {
		b.Run(s.name, func(b *testing.B) {
			cc := ca.ClientConfig()
			cc.ServerName, cc.NextProtos = "localhost", []string{"http/1.1"}
			c, err := tls.Dial("tcp", s.ln.Addr().String(), cc)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			roundTrips(b, c)
		})
	}
}

// roundTrips times b.N requests on c, each written whole and its answer
// read whole before the next.
func roundTrips(b *testing.B, c net.Conn) {
	b.Helper()
	req := []byte("GET /products/1 HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 8192)
	// Every answer has the same length (the Date is fixed-width):
	// learn it from the first, then read exactly that much.
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, responseLen(b, c, br, req))
	cpu0 := processCPU(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestServeHitAllocatesNothing: no allocation per keep-alive hit over a
// real loopback connection: the request, its header map, URL and context
// are the connection's, reused; the head text and value slots come from its
// arena, a chunk every few dozen requests. The count is the process's
// (client and server); the client below allocates nothing per request.
// The exact mean, chunks included, is logged and bounded too.
func TestServeHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, fast, _ := servers(t, hitHandler())
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /products/12345?color=red HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: wrk\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n")
	br := bufio.NewReaderSize(c, 8192)
	buf := make([]byte, responseLen(t, c, br, req))
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatal(err)
		}
	}
	if allocs := testing.AllocsPerRun(2000, roundTrip); allocs != 0 {
		t.Errorf("%v allocations per keep-alive hit, want 0", allocs)
	}
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		roundTrip()
	}
	runtime.ReadMemStats(&after)
	mean := float64(after.Mallocs-before.Mallocs) / n
	perReq := float64(after.TotalAlloc-before.TotalAlloc) / n
	t.Logf("%.4f allocations, %.0f bytes per hit (arena chunks)", mean, perReq)
	if mean > 0.1 {
		t.Errorf("%.4f allocations per hit on average, want at most one chunk per 10 hits", mean)
	}
}

// responseLen sends req once and returns the length of its whole answer
// (the same for every hit: the Date is fixed-width).
func responseLen(t testing.TB, c net.Conn, br *bufio.Reader, req []byte) int {
	t.Helper()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		n += len(line)
		if line == "\r\n" {
			break
		}
	}
	if _, err := br.Discard(1024); err != nil {
		t.Fatal(err)
	}
	return n + 1024
}
