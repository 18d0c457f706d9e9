package listen_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/listen"
)

// TestRapidReset opens streams and resets them at once, in a burst
// (CVE-2023-44487), while another client keeps requesting: the other
// client is served throughout, and the abusive connection does not get
// more than MaxConcurrentStreams handlers at a time.
func TestRapidReset(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	var running, peak atomic.Int64
	slowOrigin := newSlowOrigin(t, &running, &peak)
	cfg := edgeConfig(t, slowOrigin, func(s *config.Server) {
		s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test")}
		s.HTTP2.MaxConcurrentStreams = 50
	})
	e := startEdge(t, cfg, listen.Options{})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var served, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the well-behaved client
		defer wg.Done()
		c := tlsClient(ca, e.addr, true)
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			resp, err := c.Get("https://edge.test/fast")
			if err != nil {
				failed.Add(1)
				continue
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 { // a body cut short is not served
				served.Add(1)
			} else {
				failed.Add(1)
			}
		}
	}()

	const burst = 5000
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "edge.test", RootCAs: ca.pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	sent := 0
	for i := range burst {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "edge.test"}, {":path", fmt.Sprintf("/slow/%d", i)}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		id := uint32(2*i + 1)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			break // the server closed the connection: what it should do
		}
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
	}
	// Read what the server says until it closes or goes quiet.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	goaway := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			goaway = true
		}
	}
	// The other client is still served after the burst.
	after := tlsClient(ca, e.addr, true)
	start := time.Now()
	resp, err := after.Get("https://edge.test/after")
	if err != nil {
		t.Fatalf("a new client after the burst: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || time.Since(start) > 5*time.Second {
		t.Fatalf("after the burst: status %d in %v", resp.StatusCode, time.Since(start))
	}
	cancel()
	wg.Wait()
	if failed.Load() != 0 || served.Load() == 0 {
		t.Fatalf("well-behaved client: %d served, %d failed", served.Load(), failed.Load())
	}
	if p := peak.Load(); p > 50+5 { // the limit, and the gateway's own /fast fills
		t.Fatalf("%d origin requests in flight at once from a connection limited to 50 streams", p)
	}
	t.Logf("burst: %d HEADERS+RST_STREAM sent, GOAWAY %v; origin peak in flight %d; other client: %d served, 0 failed", sent, goaway, peak.Load(), served.Load())
}

// newSlowOrigin answers /slow/ after 200ms and everything else at once,
// counting the requests in flight.
func newSlowOrigin(t *testing.T, running, peak *atomic.Int64) string {
	o := newOriginFunc(t, func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			select {
			case <-time.After(200 * time.Millisecond):
			case <-r.Context().Done():
			}
		}
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "origin %s", r.URL.Path)
	})
	return o
}

func TestHTTP3(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
		s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test")}
		s.HTTP3 = true
	})
	e := startEdge(t, cfg, listen.Options{})
	_, port, _ := net.SplitHostPort(e.addr)

	// TCP responses advertise HTTP/3 on the same port, over h2 and over
	// HTTP/1.1 (the fast path).
	for _, h2 := range []bool{true, false} {
		resp, err := tlsClient(ca, e.addr, h2).Get("https://edge.test/tcp")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.Header.Get("Alt-Svc"), `h3=":`+port+`"`; !strings.HasPrefix(got, want) {
			t.Fatalf("%s: Alt-Svc %q, want %s...", resp.Proto, got, want)
		}
	}

	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "edge.test"}}
	defer tr.Close()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i, want := range []string{"miss", "hit"} {
		resp, err := c.Get("https://127.0.0.1:" + port + "/h3")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "origin /h3" || resp.ProtoMajor != 3 {
			t.Fatalf("request %d: %d %s %q", i, resp.StatusCode, resp.Proto, body)
		}
		if cs := resp.Header.Get("Cache-Status"); i == 1 && !strings.Contains(cs, want) {
			t.Fatalf("Cache-Status %q over HTTP/3, want %s", cs, want)
		}
	}
}

func TestH2C(t *testing.T) {
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) { s.H2C = true })
	e := startEdge(t, cfg, listen.Options{})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + e.addr + "/h2c")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "origin /h2c" {
		t.Fatalf("%s %q, want HTTP/2.0 from the origin", resp.Proto, body)
	}
	// HTTP/1.1 still works on the same listener.
	resp, err = http.Get("http://" + e.addr + "/h1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.1 on an h2c listener: %s %d", resp.Proto, resp.StatusCode)
	}
}

// TestProxyProtocol sends v1 and v2 headers from a trusted and an
// untrusted network: the client address comes from the header only when
// the peer is trusted.
func TestProxyProtocol(t *testing.T) {
	echoAddr := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.RemoteAddr) // a failed write shows as a wrong address at the client
	})
	v1 := []byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n")
	v2 := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + "\xc6\x33\x64\x09" + "\x7f\x00\x00\x01" + "\x9c\x41\x00\x50") // 198.51.100.9:40001 -> 127.0.0.1:80
	for _, tc := range []struct {
		name    string
		trusted string
		header  []byte
		want    string // RemoteAddr host, or "" for a refused connection
	}{
		{"v1-trusted", "127.0.0.0/8", v1, "203.0.113.7:40000"},
		{"v2-trusted", "127.0.0.0/8", v2, "198.51.100.9:40001"},
		{"none-trusted", "127.0.0.0/8", nil, "127.0.0.1:"},
		{"v1-untrusted", "10.0.0.0/8", v1, ""},
		{"none-untrusted", "10.0.0.0/8", nil, "127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := edgeConfig(t, "http://127.0.0.1:1", func(s *config.Server) { s.ProxyProtocol.TrustedCIDRs = []string{tc.trusted} })
			addr := startPlain(t, cfg, echoAddr)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write(append(append([]byte{}, tc.header...), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"...)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if tc.want == "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("a PROXY header from an untrusted peer was answered %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), tc.want) {
				t.Fatalf("RemoteAddr %q, want %s", body, tc.want)
			}
		})
	}
}

// startPlain serves h through a listen.Server with a plain net/http
// server in the place of the gateway's fast path.
func startPlain(t *testing.T, cfg *config.Config, h http.Handler) string {
	t.Helper()
	s, err := listen.New(cfg, h, listen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain := func(ctx context.Context, ln net.Listener) error {
		srv := &http.Server{Handler: h}
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			return err
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, plain) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestRedirectListener(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	redirect := freeAddr(t)
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
		s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test")}
		s.RedirectListen = redirect
	})
	e := startEdge(t, cfg, listen.Options{})
	_, port, _ := net.SplitHostPort(e.addr)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	var resp *http.Response
	var err error
	for range 50 { // the redirect listener opens with Serve
		if resp, err = c.Get("http://" + redirect + "/a/b?c=d"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	host, _, _ := net.SplitHostPort(redirect)
	if want := "https://" + host + ":" + port + "/a/b?c=d"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("%d Location %q, want 308 %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
