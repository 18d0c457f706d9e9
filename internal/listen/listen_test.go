package listen_test

import (
	"crypto/tls"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/listen"
)

// needTool returns the path of a tool, skipping the test without it
// unless CI is set, where a missing tool fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (make deps installs it)", name)
		}
		t.Skipf("%s not found (make deps installs it)", name)
	}
	return p
}

func TestTLSClients(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	cf := ca.writeCert(t, dir, "edge", "edge.test")
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
		s.TLS.Certificates = []config.Certificate{cf}
	})
	e := startEdge(t, cfg, listen.Options{})
	for _, tc := range []struct {
		name      string
		h2        bool
		wantProto string
	}{{"go-http1.1", false, "HTTP/1.1"}, {"go-h2", true, "HTTP/2.0"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsClient(ca, e.addr, tc.h2)
			for i, want := range []string{"miss", "hit"} {
				resp, err := c.Get("https://edge.test/a")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "origin /a" || resp.Proto != tc.wantProto {
					t.Fatalf("request %d: %d %s %q, want 200 %s", i, resp.StatusCode, resp.Proto, body, tc.wantProto)
				}
				if cs := resp.Header.Get("Cache-Status"); i == 1 && !strings.Contains(cs, "hit") {
					t.Fatalf("second request Cache-Status %q, want a hit (%s)", cs, want)
				}
				if v := resp.TLS.Version; v != tls.VersionTLS13 {
					t.Fatalf("TLS version %x, want 1.3", v)
				}
			}
		})
	}
	curl := needTool(t, "curl")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(e.addr, ":")
	for _, tc := range []struct{ flag, want string }{{"--http1.1", "1.1"}, {"--http2", "2"}} {
		t.Run("curl"+tc.flag, func(t *testing.T) {
			out, err := exec.Command(curl, "-sS", tc.flag, "--cacert", caFile, "--resolve", "edge.test:"+port+":127.0.0.1",
				"-w", "\n%{http_version} %{http_code}", "https://edge.test:"+port+"/curl").CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			if want := "origin /curl\n" + tc.want + " 200"; string(out) != want {
				t.Fatalf("curl printed %q, want %q", out, want)
			}
		})
	}
}

func TestSNIPicksCertificate(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	a := ca.writeCert(t, dir, "a", "a.test")
	b := ca.writeCert(t, dir, "b", "*.b.test", "b.test")
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
		s.TLS.Certificates = []config.Certificate{a, b}
	})
	e := startEdge(t, cfg, listen.Options{})
	for _, tc := range []struct{ sni, wantCN string }{
		{"a.test", "a.test"}, {"b.test", "*.b.test"}, {"www.b.test", "*.b.test"}, {"WWW.B.TEST", "*.b.test"},
		{"unknown.test", "a.test"}, {"", "a.test"}, // the first is the default
	} {
		t.Run(tc.sni, func(t *testing.T) {
			conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != tc.wantCN {
				t.Fatalf("SNI %q got certificate %q, want %q", tc.sni, cn, tc.wantCN)
			}
		})
	}
	infos := e.s.Certificates()
	if len(infos) != 2 || infos[1].Names[0] != "*.b.test" || infos[0].NotAfter.IsZero() {
		t.Fatalf("Certificates() = %+v", infos)
	}
}
