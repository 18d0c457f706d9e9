package listen_test

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/listen"
)

// TestHTTP2ServerChoice: server.http2.server picks the server that
// answers ALPN h2 and h2c's prior knowledge, told apart by their
// SETTINGS (net/http's announces a 1 MiB SETTINGS_MAX_FRAME_SIZE;
// internal/h2 keeps the 16 KiB default), and both serve a miss and a hit.
func TestHTTP2ServerChoice(t *testing.T) {
	for _, tc := range []struct {
		server        string
		h2c           bool
		wantFrameSize bool
	}{
		{config.HTTP2ServerInline, false, false}, {config.HTTP2ServerStd, false, true},
		{config.HTTP2ServerInline, true, false}, {config.HTTP2ServerStd, true, true},
	} {
		t.Run(fmt.Sprintf("%s h2c=%v", tc.server, tc.h2c), func(t *testing.T) {
			ca, dir := newCA(t), t.TempDir()
			cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
				if tc.h2c {
					s.H2C = true
				} else {
					s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test")}
				}
				s.HTTP2.Server = tc.server
			})
			e := startEdge(t, cfg, listen.Options{})
			var conn net.Conn
			var err error
			if tc.h2c {
				conn, err = net.Dial("tcp", e.addr)
			} else {
				conn, err = tls.Dial("tcp", e.addr, &tls.Config{ServerName: "edge.test", RootCAs: ca.pool, NextProtos: []string{"h2"}})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
				t.Fatal(err)
			}
			fr := http2.NewFramer(conn, conn)
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			sf, ok := f.(*http2.SettingsFrame)
			if !ok {
				t.Fatalf("first frame %v, want SETTINGS", f)
			}
			_, has := sf.Value(http2.SettingMaxFrameSize)
			if has != tc.wantFrameSize {
				t.Fatalf("SETTINGS_MAX_FRAME_SIZE announced %v, want %v (the other server answered)", has, tc.wantFrameSize)
			}
			c, url := tlsClient(ca, e.addr, true), "https://edge.test/choice"
			if tc.h2c {
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				c, url = &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}, "http://"+e.addr+"/choice"
			}
			for i := range 2 { // a miss, then a hit
				resp, err := c.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != "origin /choice" {
					t.Fatalf("request %d: %s %d %q", i, resp.Proto, resp.StatusCode, b)
				}
			}
		})
	}
}

// TestHTTP2GatewayDifferential sends the same requests through Go's h2
// client to two gateways, one on each HTTP/2 server, in front of one
// origin: a miss, a hit, HEAD, a range, a 304, a POST with a body (to the
// origin through the proxy), an uncacheable 404. Status, body and the
// header fields must match (Date and Age aside).
func TestHTTP2GatewayDifferential(t *testing.T) {
	o := newOriginFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Etag", `"e1"`)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "origin %s %s %q", r.Method, r.URL.Path, b)
	})
	ca, dir := newCA(t), t.TempDir()
	cert := ca.writeCert(t, dir, "edge", "edge.test")
	clients := map[string]*http.Client{}
	for _, srv := range []string{config.HTTP2ServerInline, config.HTTP2ServerStd} {
		cfg := edgeConfig(t, o, func(s *config.Server) {
			s.TLS.Certificates = []config.Certificate{cert}
			s.HTTP2.Server = srv
		})
		clients[srv] = tlsClient(ca, startEdge(t, cfg, listen.Options{}).addr, true)
	}
	for _, tc := range []struct {
		name, method, path, body string
		kv                       []string
	}{
		{"miss", "GET", "/d/a", "", nil},
		{"hit", "GET", "/d/a", "", nil},
		{"HEAD hit", "HEAD", "/d/a", "", nil},
		{"range", "GET", "/d/a", "", []string{"Range", "bytes=2-7"}},
		{"304", "GET", "/d/a", "", []string{"If-None-Match", `"e1"`}},
		{"POST", "POST", "/d/post", strings.Repeat("p", 100<<10), nil},
		{"404", "GET", "/gone", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]string
			for i, srv := range []string{config.HTTP2ServerInline, config.HTTP2ServerStd} {
				req, _ := http.NewRequest(tc.method, "https://edge.test"+tc.path, strings.NewReader(tc.body))
				for j := 0; j+1 < len(tc.kv); j += 2 {
					req.Header.Set(tc.kv[j], tc.kv[j+1])
				}
				resp, err := clients[srv].Do(req)
				if err != nil {
					t.Fatalf("%s: %v", srv, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.ProtoMajor != 2 {
					t.Fatalf("%s: %s body %v", srv, resp.Proto, err)
				}
				resp.Header.Del("Date")
				resp.Header.Del("Age")
				keys := slices.Sorted(maps.Keys(resp.Header))
				var hb strings.Builder
				for _, k := range keys {
					fmt.Fprintf(&hb, "%s: %q\n", k, resp.Header[k])
				}
				got[i] = fmt.Sprintf("%d\n%s%d bytes, sha256 %x: %.200q", resp.StatusCode, hb.String(), len(b), sha256.Sum256(b), b)
			}
			if got[0] != got[1] {
				t.Fatalf("inline:\n%s\nstd:\n%s", got[0], got[1])
			}
		})
	}
}
