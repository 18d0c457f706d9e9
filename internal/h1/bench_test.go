package h1_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
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
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	first := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		first += len(line)
		if line == "\r\n" {
			break
		}
	}
	first += 1024
	if _, err := br.Discard(1024); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, first)
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
