package listen_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/listen"
)

// TestTLSFastPath runs the gateway behind TLS: HTTP/1.1 requests go to
// the fast path, h2 and requests it hands over to net/http, and every one
// of them is an https request to the gateway: the origin is told so, and
// a GET over HTTP/1.1 and over h2 read the same cache entry.
func TestTLSFastPath(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	origin := newOriginFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Forwarded-Proto"))
	})
	cfg := edgeConfig(t, origin, func(s *config.Server) {
		s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test")}
	})
	e := startEdge(t, cfg, listen.Options{})
	h1c, h2c := tlsClient(ca, e.addr, false), tlsClient(ca, e.addr, true)
	for _, tc := range []struct {
		name, method, path string
		c                  *http.Client
		proto              int
		body, status       string // status: the Cache-Status's second item
	}{
		{"h1 GET miss", http.MethodGet, "/k", h1c, 1, "GET /k https", "fwd=uri-miss"},
		{"h2 GET hit", http.MethodGet, "/k", h2c, 2, "GET /k https", "hit"},
		{"h1 GET hit", http.MethodGet, "/k", h1c, 1, "GET /k https", "hit"},
		{"h1 POST handed over", http.MethodPost, "/p", h1c, 1, "POST /p https", ""},
		{"h1 GET after the hand-over", http.MethodGet, "/k", h1c, 1, "GET /k https", "hit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.method == http.MethodPost {
				body = strings.NewReader("x")
			}
			req, err := http.NewRequest(tc.method, "https://edge.test"+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tc.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != tc.proto || string(b) != tc.body {
				t.Fatalf("%s %q, want HTTP/%d %q", resp.Proto, b, tc.proto, tc.body)
			}
			if cs := resp.Header.Get("Cache-Status"); tc.status != "" && !strings.Contains(cs, "; "+tc.status) {
				t.Fatalf("Cache-Status %q, want %s", cs, tc.status)
			}
		})
	}
}

// TestProxyProtocolSlowPeer holds a connection from a trusted peer that
// never sends its PROXY header: the other clients are accepted and served
// meanwhile, with and without TLS (the header is read on the
// connection's goroutine, not the accept loop).
func TestProxyProtocolSlowPeer(t *testing.T) {
	const headerTimeout = 10 * time.Second
	for _, withTLS := range []bool{false, true} {
		name := "plain"
		if withTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			ca, dir := newCA(t), t.TempDir()
			cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
				s.ProxyProtocol.TrustedCIDRs = []string{"127.0.0.0/8"}
				s.ProxyProtocol.HeaderTimeout = headerTimeout
				if withTLS {
					s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test")}
				}
			})
			e := startEdge(t, cfg, listen.Options{})
			slow, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			time.Sleep(100 * time.Millisecond) // the slow peer is accepted first

			start := time.Now()
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * headerTimeout))
			if _, err := io.WriteString(c, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n"); err != nil {
				t.Fatal(err)
			}
			var rw io.ReadWriter = c
			if withTLS {
				tc := tlsConn(c, ca)
				defer tc.Close()
				rw = tc
			}
			if _, err := io.WriteString(rw, "GET /x HTTP/1.1\r\nHost: edge.test\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(rw), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if took := time.Since(start); resp.StatusCode != 200 || took > headerTimeout/2 {
				t.Fatalf("status %d after %v behind a peer that sends nothing (its header is due in %v)", resp.StatusCode, took, headerTimeout)
			}
		})
	}
}

// tlsConn is an HTTP/1.1 TLS client on c, trusting ca.
func tlsConn(c net.Conn, ca *testCA) *tls.Conn {
	return tls.Client(c, &tls.Config{ServerName: "edge.test", RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
}
