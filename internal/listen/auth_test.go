package listen_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/listen"
)

func TestClientCertificates(t *testing.T) {
	ca, clients, dir := newCA(t), newCA(t), t.TempDir()
	caFile := filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(caFile, clients.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := clients.issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), true, "client.test")
	good, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	fc, fk := newCA(t).issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), true, "stranger.test")
	foreign, _ := tls.X509KeyPair(fc, fk)
	for _, mode := range []string{"require", "verify_if_given"} {
		t.Run(mode, func(t *testing.T) {
			cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
				s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge-"+mode, "edge.test")}
				s.TLS.ClientCAFile, s.TLS.ClientAuth = caFile, mode
			})
			e := startEdge(t, cfg, listen.Options{})
			for _, tc := range []struct {
				name   string
				certs  []tls.Certificate
				wantOK bool
			}{
				{"signed", []tls.Certificate{good}, true},
				{"foreign", []tls.Certificate{foreign}, false},
				{"none", nil, mode == "verify_if_given"},
			} {
				c := tlsClient(ca, e.addr, true)
				c.Transport.(*http.Transport).TLSClientConfig.Certificates = tc.certs
				resp, err := c.Get("https://edge.test/mtls")
				if err == nil {
					resp.Body.Close()
				}
				if ok := err == nil && resp.StatusCode == 200; ok != tc.wantOK {
					t.Fatalf("%s client certificate: ok %v (%v), want %v", tc.name, ok, err, tc.wantOK)
				}
			}
		})
	}
}

// TestSessionResumption resumes a TLS 1.3 session on a new connection
// with the ticket of the first.
func TestSessionResumption(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
		s.TLS.Certificates = []config.Certificate{ca.writeCert(t, dir, "edge", "edge.test")}
	})
	e := startEdge(t, cfg, listen.Options{})
	conf := &tls.Config{ServerName: "edge.test", RootCAs: ca.pool, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	for i, want := range []bool{false, true} {
		conn, err := tls.Dial("tcp", e.addr, conf)
		if err != nil {
			t.Fatal(err)
		}
		// TLS 1.3 tickets arrive after the handshake: read to receive one.
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = conn.Read(make([]byte, 1))
		if got := conn.ConnectionState().DidResume; got != want {
			t.Fatalf("connection %d: resumed %v, want %v", i, got, want)
		}
		conn.Close()
	}
}

// TestACMEOnDemandOnlyRouteHosts lets a handshake for a route's host
// obtain a certificate and refuses any other name.
func TestACMEOnDemandOnlyRouteHosts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pb := startPebble(t, 1, portOf(t, ln.Addr().String()), 3600)
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
		s.TLS.ACME = &config.ACME{CA: pb.dir, CARootFile: pb.rootFile, OnDemand: true, StoragePath: t.TempDir(),
			DisableHTTPChallenge: true, TLSALPNChallengePort: portOf(t, ln.Addr().String())}
	})
	cfg.Routes = append([]config.Route{{Name: "od", Host: "od.test", Origin: cfg.Routes[0].Origin, DefaultTTL: time.Minute}}, cfg.Routes...)
	cfg.EnsureDefaults()
	e := startEdgeLn(t, cfg, listen.Options{}, ln)
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "od.test", RootCAs: pb.roots})
	if err != nil {
		t.Fatalf("on-demand handshake for a route host: %v", err)
	}
	conn.Close()
	if conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "stranger.test", InsecureSkipVerify: true}); err == nil {
		conn.Close()
		t.Fatal("a handshake for a name that is no route's host got a certificate")
	}
	if pb.finals.Load() != 1 {
		t.Fatalf("%d certificates issued, want 1 (od.test only)", pb.finals.Load())
	}
}
