package listen_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/listen"
)

// testCA is a certificate authority the test makes: it signs the
// gateway's certificates, and clients trust it alone.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  []byte
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "edgecache test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var serial atomic.Int64

// issue returns PEM certificate and key for names (ECDSA P-256), valid
// from notBefore to notAfter.
func (ca *testCA) issue(t testing.TB, notBefore, notAfter time.Time, client bool, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + serial.Add(1)),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// writeCert issues a certificate for names into dir as name.crt/.key
// (atomically: written aside, then renamed) and returns its config.
func (ca *testCA) writeCert(t testing.TB, dir, name string, names ...string) config.Certificate {
	t.Helper()
	c, k := ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(12*time.Hour), false, names...)
	return writePair(t, dir, name, c, k)
}

func writePair(t testing.TB, dir, name string, certPEM, keyPEM []byte) config.Certificate {
	t.Helper()
	cf := config.Certificate{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	writeAtomic(t, cf.KeyFile, keyPEM)
	writeAtomic(t, cf.CertFile, certPEM)
	return cf
}

func writeAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// origin is a real origin server answering every path with its path.
func newOrigin(t testing.TB) *httptest.Server {
	t.Helper()
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "origin %s", r.URL.Path)
	}))
	t.Cleanup(o.Close)
	return o
}

func newOriginFunc(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	o := httptest.NewServer(h)
	t.Cleanup(o.Close)
	return o.URL
}

// edgeConfig is a validated configuration: one route to origin, the
// embedded store, and server settings from edit.
func edgeConfig(t testing.TB, origin string, edit func(*config.Server), shards ...config.Shard) *config.Config {
	t.Helper()
	c := &config.Config{Routes: []config.Route{{Name: "test", Origin: origin, DefaultTTL: time.Minute}}, Shards: shards}
	c.Server.ShutdownTimeout = 5 * time.Second
	if edit != nil {
		edit(&c.Server)
	}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// edge is a real gateway served through a listen.Server.
type edge struct {
	g    *gateway.Gateway
	s    *listen.Server
	addr string // host:port of the TCP listener
}

func startEdge(t testing.TB, cfg *config.Config, o listen.Options) *edge {
	t.Helper()
	g, err := gateway.New(cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close) // after the listener's cleanup: cleanups run last first
	return startEdgeOn(t, cfg, g, o)
}

func sleepTick() { time.Sleep(20 * time.Millisecond) }

// startEdgeOn serves g through a listen.Server; the caller closes g.
func startEdgeOn(t testing.TB, cfg *config.Config, g *gateway.Gateway, o listen.Options) *edge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveEdge(t, cfg, g, o, ln)
}

// serveEdge serves g through a listen.Server on ln; the caller closes g.
func serveEdge(t testing.TB, cfg *config.Config, g *gateway.Gateway, o listen.Options, ln net.Listener) *edge {
	t.Helper()
	s, err := listen.New(cfg, g.Handler(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, g.Serve) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &edge{g: g, s: s, addr: ln.Addr().String()}
}

// tlsClient trusts ca only and dials every name to addr.
func tlsClient(ca *testCA, addr string, h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// issueIP returns a server certificate for an IP address (the ACME
// directory's own HTTPS).
func (ca *testCA) issueIP(t testing.TB, ip net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + serial.Add(1)),
		Subject:      pkix.Name{CommonName: ip.String()},
		IPAddresses:  []net.IP{ip},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
