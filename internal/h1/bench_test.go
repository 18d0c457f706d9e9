package h1_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
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
		})
	}
}
