package listen_test

import (
	"crypto/tls"
	"encoding/json"
	"strings"
	"testing"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/admin"
	"github.com/edgecache/edgecache/internal/listen"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTLSMetricsAndStatus counts handshakes by version and result, and
// exports each certificate's expiry, also listed in the admin status.
func TestTLSMetricsAndStatus(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
		s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test", "*.edge.test")}
	})
	g, err := gateway.New(cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	e := startEdgeOn(t, cfg, g, listen.Options{Registry: g.Registry()})
	g.SetCertificates(func() any { return e.s.Certificates() })

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13, tls.VersionTLS13} {
		conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "edge.test", RootCAs: ca.pool, MaxVersion: v})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	// A TLS 1.1 client is refused by the server (min_version 1.2). (A
	// client that rejects the server's certificate after a TLS 1.3
	// handshake is an ok on the server's side: it has finished by then.)
	if conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "edge.test", RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	want := `
# HELP edgecache_tls_handshakes_total TLS handshakes on the traffic listener by protocol version and result.
# TYPE edgecache_tls_handshakes_total counter
edgecache_tls_handshakes_total{result="error",version="unknown"} 1
edgecache_tls_handshakes_total{result="ok",version="1.2"} 1
edgecache_tls_handshakes_total{result="ok",version="1.3"} 2
`
	var lastErr error
	for range 100 { // the failure is counted when the server's handshake returns
		if lastErr = testutil.GatherAndCompare(g.Registry(), strings.NewReader(want), "edgecache_tls_handshakes_total"); lastErr == nil {
			break
		}
		sleepTick()
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	if n, err := testutil.GatherAndCount(g.Registry(), "edgecache_tls_certificate_expiry_seconds"); err != nil || n != 2 {
		t.Fatalf("expiry gauges: %d (%v), want one per name (2)", n, err)
	}
	b, _ := json.Marshal(admin.StatusOf(g))
	if !strings.Contains(string(b), `"certificates":[{"names":["edge.test","*.edge.test"],"source":"file"`) || !strings.Contains(string(b), `"not_after":"`) {
		t.Fatalf("admin status lacks the certificate: %s", b)
	}
}
