package listen_test

import (
	"context"
	"crypto/tls"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/listen"
)

// servedSerial is the serial number of the certificate a new handshake
// for sni gets.
func servedSerial(t *testing.T, addr, sni string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestCertReplacedOnDiskUnderLoad replaces the certificate files while
// clients on kept-alive and new connections send requests: the new
// certificate is served within seconds, and no request fails.
func TestCertReplacedOnDiskUnderLoad(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	cf := ca.writeCert(t, dir, "edge", "edge.test")
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) { s.TLS.Certificates = []config.Certificate{cf} })
	e := startEdge(t, cfg, listen.Options{})
	before := servedSerial(t, e.addr, "edge.test")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // bound, even if the swap never comes
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tlsClient(ca, e.addr, w%2 == 0)
			for i := 0; i < 5000 && ctx.Err() == nil; i++ {
				if w == 3 { // new connections: a fresh handshake per request
					c.CloseIdleConnections()
				}
				resp, err := c.Get("https://edge.test/load")
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(body) != "origin /load" {
						err = &statusErr{resp.StatusCode}
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	ca.writeCert(t, dir, "edge", "edge.test") // same paths, new pair
	deadline := time.Now().Add(10 * time.Second)
	after := before
	for after == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		after = servedSerial(t, e.addr, "edge.test")
	}
	time.Sleep(300 * time.Millisecond) // load on the new certificate too
	cancel()
	wg.Wait()
	if after == before {
		t.Fatalf("certificate serial %s still served 10s after the files changed", before)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the swap, first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 50 {
		t.Fatalf("only %d requests completed: the load did not run", ok.Load())
	}
	t.Logf("%d requests, 0 failed; serial %s -> %s", ok.Load(), before, after)
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return "status " + strconv.Itoa(e.code) }

// TestBrokenCertRejected writes a key that does not match, an expired
// certificate and a missing file: each reload is refused naming the
// field, and the certificate serving keeps serving.
func TestBrokenCertRejected(t *testing.T) {
	ca, dir := newCA(t), t.TempDir()
	cf := ca.writeCert(t, dir, "edge", "edge.test")
	cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) { s.TLS.Certificates = []config.Certificate{cf} })
	e := startEdge(t, cfg, listen.Options{})
	before := servedSerial(t, e.addr, "edge.test")
	c := tlsClient(ca, e.addr, true)

	_, otherKey := ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), false, "edge.test")
	oldCert, oldKey := ca.issue(t, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour), false, "edge.test")
	for _, tc := range []struct {
		name      string
		cert, key []byte
		path      string // empty: the edge pair's paths
		want      string
	}{
		{"key-mismatch", nil, otherKey, "", "server.tls.certificates[0].key_file: "},
		{"expired", oldCert, oldKey, "", "server.tls.certificates[0].cert_file: certificate \"edge.test\" expired"},
		{"missing", nil, nil, dir + "/gone", "server.tls.certificates[0].cert_file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := *cfg
			next.Server.TLS.Certificates = []config.Certificate{cf}
			if tc.path != "" {
				next.Server.TLS.Certificates = []config.Certificate{{CertFile: tc.path + ".crt", KeyFile: tc.path + ".key"}}
			} else {
				broken := config.Certificate{CertFile: dir + "/broken.crt", KeyFile: dir + "/broken.key"}
				certPEM := tc.cert
				if certPEM == nil {
					writeAtomic(t, broken.CertFile, mustRead(t, cf.CertFile))
				} else {
					writeAtomic(t, broken.CertFile, certPEM)
				}
				writeAtomic(t, broken.KeyFile, tc.key)
				next.Server.TLS.Certificates = []config.Certificate{broken}
			}
			err := e.s.Reload(&next)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload: %v, want an error containing %q", err, tc.want)
			}
			if got := servedSerial(t, e.addr, "edge.test"); got != before {
				t.Fatalf("serial %s served after a rejected reload, want %s", got, before)
			}
			resp, err := c.Get("https://edge.test/still")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d after a rejected reload", resp.StatusCode)
			}
		})
	}
	// The same on disk: the edge pair's key overwritten with a foreign one
	// is refused by the file watch, and the old pair keeps serving.
	writeAtomic(t, cf.KeyFile, otherKey)
	time.Sleep(4 * config.DefaultDebounce)
	if got := servedSerial(t, e.addr, "edge.test"); got != before {
		t.Fatalf("serial %s served after a broken key was written, want %s", got, before)
	}
}
