package listen_test

import (
	"crypto/tls"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/listen"
)

// TestHTTP2ServerChoice: server.http2.server picks the server that
// answers ALPN h2, told apart by their SETTINGS (net/http's announces a
// 1 MiB SETTINGS_MAX_FRAME_SIZE; internal/h2 keeps the 16 KiB default),
// and both serve a hit.
func TestHTTP2ServerChoice(t *testing.T) {
	for _, tc := range []struct {
		server        string
		wantFrameSize bool
	}{{config.HTTP2ServerInline, false}, {config.HTTP2ServerStd, true}} {
		t.Run(tc.server, func(t *testing.T) {
			ca, dir := newCA(t), t.TempDir()
			cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
				s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test")}
				s.HTTP2.Server = tc.server
			})
			e := startEdge(t, cfg, listen.Options{})
			conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "edge.test", RootCAs: ca.pool, NextProtos: []string{"h2"}})
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
			for i := range 2 { // a miss, then a hit
				resp, err := tlsClient(ca, e.addr, true).Get("https://edge.test/choice")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
					t.Fatalf("request %d: %s %d", i, resp.Proto, resp.StatusCode)
				}
			}
		})
	}
}
