package h1_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/h1"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// handshakeErrors counts the log lines that report a failed handshake.
type handshakeErrors struct{ n atomic.Int64 }

func (h *handshakeErrors) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		h.n.Add(1)
	}
	return len(p), nil
}

// seen is what the handler saw of its last request.
type seen struct {
	mu    sync.Mutex
	tls   bool
	proto string
}

// TestTLS serves the fast path on a TLS listener whose ALPN offers h2,
// http/1.1 and acme-tls/1, as the traffic listener's does: HTTP/1.1 (by
// ALPN or without it) is the fast path's, with r.TLS set; h2, another
// protocol and a failed handshake are net/http's, which answers them as
// if it had accepted the connection; a request handed over mid-way keeps
// r.TLS.
func TestTLS(t *testing.T) {
	ca := valkeytest.NewCA(t) // a server certificate for localhost
	cert, err := tls.LoadX509KeyPair(ca.CertFile, ca.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	trust := func(protos ...string) *tls.Config {
		c := ca.ClientConfig()
		c.ServerName, c.NextProtos = "localhost", protos
		return c
	}
	var last seen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last.mu.Lock()
		last.tls, last.proto = r.TLS != nil && r.TLS.HandshakeComplete, r.Proto
		last.mu.Unlock()
		_, _ = io.WriteString(w, "hello "+r.Method)
	})
	var logs handshakeErrors
	errLog := log.New(&logs, "", 0)
	fb := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
	srv := &h1.Server{Handler: h, Fallback: fb, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, ErrorLog: errLog}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1", "acme-tls/1"}}
	serve(t, srv, tls.NewListener(ln, conf))

	client := func(h2 bool) *http.Client {
		tr := &http.Transport{
			TLSClientConfig:   trust(),
			ForceAttemptHTTP2: h2,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr) // every name is the test's server
			},
		}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	h1c, h2c := client(false), client(true)
	for _, tc := range []struct {
		name       string
		do         func(t *testing.T) string // the answer's body
		body       string
		proto      string
		fast, hand uint64 // what the fast path counts
	}{
		{"http/1.1 by ALPN", func(t *testing.T) string { return get(t, h1c, http.MethodGet) }, "hello GET", "HTTP/1.1", 1, 0},
		{"keep-alive", func(t *testing.T) string { return get(t, h1c, http.MethodGet) }, "hello GET", "HTTP/1.1", 1, 0},
		{"no ALPN", func(t *testing.T) string { return rawTLS(t, addr, trust()) }, "hello GET", "HTTP/1.1", 1, 0},
		{"POST handed over", func(t *testing.T) string { return get(t, h1c, http.MethodPost) }, "hello POST", "HTTP/1.1", 0, 1},
		{"h2", func(t *testing.T) string { return get(t, h2c, http.MethodGet) }, "hello GET", "HTTP/2.0", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := srv.Stats()
			req0, hand0 := st.Requests.Load(), st.HandedOver.Load()
			last.mu.Lock()
			last.tls, last.proto = false, ""
			last.mu.Unlock()
			if got := tc.do(t); got != tc.body {
				t.Fatalf("body %q, want %q", got, tc.body)
			}
			last.mu.Lock()
			gotTLS, gotProto := last.tls, last.proto
			last.mu.Unlock()
			if !gotTLS || gotProto != tc.proto {
				t.Fatalf("handler saw TLS %v over %s, want TLS over %s", gotTLS, gotProto, tc.proto)
			}
			if fast, hand := st.Requests.Load()-req0, st.HandedOver.Load()-hand0; fast != tc.fast || hand != tc.hand {
				t.Fatalf("fast path served %d and handed over %d, want %d and %d", fast, hand, tc.fast, tc.hand)
			}
		})
	}

	t.Run("acme-tls/1 closed after the handshake", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, trust("acme-tls/1"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if p := c.ConnectionState().NegotiatedProtocol; p != "acme-tls/1" {
			t.Fatalf("negotiated %q", p)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %d bytes, %v; want the server to close", n, err)
		}
	})
	t.Run("plain HTTP on the TLS port", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request") || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
			t.Fatalf("answer %q, want net/http's 400", b)
		}
		deadline := time.Now().Add(5 * time.Second)
		for logs.n.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if logs.n.Load() != 1 {
			t.Fatalf("%d handshake errors logged, want 1", logs.n.Load())
		}
	})
}

func get(t *testing.T, c *http.Client, method string) string {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("x")
	}
	req, err := http.NewRequest(method, "https://localhost/", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawTLS sends one GET on a TLS connection configured by conf.
func rawTLS(t *testing.T, addr string, conf *tls.Config) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if p := c.ConnectionState().NegotiatedProtocol; p != "" {
		t.Fatalf("negotiated %q with no ALPN offered", p)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
