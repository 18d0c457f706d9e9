package listen_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/listen"
	"github.com/edgecache/edgecache/internal/valkeytest"
	"github.com/edgecache/edgecache/shardmap"
)

// pebble is Let's Encrypt's test ACME server, in process on loopback: its
// validation authority resolves every name to 127.0.0.1 through a DNS
// server of the test, and connects to the given challenge ports.
type pebble struct {
	dir      string         // directory URL
	rootFile string         // PEM of the CA serving the directory's HTTPS
	roots    *x509.CertPool // pebble's issuing root: what clients of the gateway trust
	orders   atomic.Int64
	finals   atomic.Int64
}

func startPebble(t *testing.T, httpPort, tlsPort int, validity uint64) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // a rejected nonce re-sends a POST: keep the counts exact
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: validity}})
	v := va.New(logger, httpPort, tlsPort, false, startDNS(t), store)
	front := wfe.New(logger, store, v, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	p := &pebble{roots: x509.NewCertPool()}
	p.roots.AddCert(authority.GetRootCert(0).Cert)
	h := front.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if r.Method == http.MethodPost && sw.code < 300 { // orders pebble accepted
			switch {
			case r.URL.Path == "/order-plz":
				p.orders.Add(1)
			case strings.HasPrefix(r.URL.Path, "/finalize-order/"):
				p.finals.Add(1)
			}
		}
	}))
	tc := newCA(t) // the directory's own HTTPS certificate
	certPEM, keyPEM := tc.issueIP(t, net.IPv4(127, 0, 0, 1))
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.dir = srv.URL + wfe.DirectoryPath
	p.rootFile = filepath.Join(t.TempDir(), "pebble-wfe-ca.pem")
	if err := os.WriteFile(p.rootFile, tc.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDNS answers every A question with 127.0.0.1 and every other with
// nothing (no AAAA, no CAA: issuance allowed).
func startDNS(t *testing.T) string {
	t.Helper()
	// pebble asks over TCP on the UDP port's number: the kernel picks a
	// free UDP port, whose TCP twin another test's connection may hold,
	// so try a few.
	var pc net.PacketConn
	var tcp net.Listener
	for try := 0; tcp == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if tcp, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
		}
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: tcp, Handler: h}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// startEdgeLn serves a new gateway through a listen.Server on ln.
func startEdgeLn(t *testing.T, cfg *config.Config, o listen.Options, ln net.Listener) *edge {
	t.Helper()
	g, err := gateway.New(cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return serveEdge(t, cfg, g, o, ln)
}

func portOf(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitCert waits for a certificate from pebble for sni whose serial is
// not in old, and returns its serial.
func waitCert(t *testing.T, addr, sni string, within time.Duration, old ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			leaf := conn.ConnectionState().PeerCertificates[0]
			conn.Close()
			serial := leaf.SerialNumber.String()
			if strings.Contains(leaf.Issuer.CommonName, "Pebble") && !contains(old, serial) && contains(leaf.DNSNames, sni) {
				return serial
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no new certificate from pebble for %s within %v (old: %v)", sni, within, old)
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestACMEIssueServeRenew obtains a certificate from pebble, with
// TLS-ALPN-01 and then HTTP-01, serves it to a client that trusts
// pebble's root, and renews it when its renewal window opens.
func TestACMEIssueServeRenew(t *testing.T) {
	for _, tc := range []struct {
		name string
		http bool // HTTP-01 instead of TLS-ALPN-01
	}{{"tls-alpn-01", false}, {"http-01", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			redirect := freeAddr(t)
			const validity = 20 // seconds: renewed after 5 (renew_window 0.75)
			pb := startPebble(t, portOf(t, redirect), portOf(t, ln.Addr().String()), validity)
			cfg := edgeConfig(t, newOrigin(t).URL, func(s *config.Server) {
				s.TLS.ACME = &config.ACME{
					CA: pb.dir, CARootFile: pb.rootFile, Email: "ops@edge.test", Domains: []string{"edge.test"},
					StoragePath: t.TempDir(), RenewWindow: 0.75,
					DisableHTTPChallenge: !tc.http, DisableTLSALPNChallenge: tc.http,
					HTTPChallengePort: portOf(t, redirect), TLSALPNChallengePort: portOf(t, ln.Addr().String()),
				}
				s.RedirectListen = redirect
			})
			e := startEdgeLn(t, cfg, listen.Options{ACMERenewCheck: time.Second}, ln)
			first := waitCert(t, e.addr, "edge.test", 30*time.Second)

			// Served, with its chain, to a real client that trusts pebble's root.
			resp, err := tlsClient(&testCA{pool: pb.roots}, e.addr, true).Get("https://edge.test/acme")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "origin /acme" || resp.ProtoMajor != 2 {
				t.Fatalf("%d %s %q over the ACME certificate", resp.StatusCode, resp.Proto, body)
			}
			if infos := e.s.Certificates(); len(infos) == 0 || infos[0].Source != "acme" {
				t.Fatalf("Certificates() = %+v, want the acme certificate", infos)
			}

			second := waitCert(t, e.addr, "edge.test", 30*time.Second, first)
			t.Logf("issued serial %s, renewed as %s; orders at pebble: %d, finalized: %d", first, second, pb.orders.Load(), pb.finals.Load())
			if pb.finals.Load() < 2 {
				t.Fatalf("%d certificates finalized at pebble, want 2 (issue, renew)", pb.finals.Load())
			}
		})
	}
}

// TestACMESharedValkeyStorageIssuesOnce starts two gateways with ACME
// storage in the same Valkey at the same moment: one certificate is
// ordered, and both serve it.
func TestACMESharedValkeyStorageIssuesOnce(t *testing.T) {
	srv := valkeytest.Start(t, 1)[0]
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// pebble validates on A's port; whichever gateway orders, A answers
	// the challenge from the shared storage if B holds the order.
	pb := startPebble(t, 1, portOf(t, lnA.Addr().String()), 3600)
	origin := newOrigin(t).URL
	var events sync.Map
	edges := make([]*edge, 2)
	var wg sync.WaitGroup
	for i, ln := range []net.Listener{lnA, lnB} {
		cfg := edgeConfig(t, origin, func(s *config.Server) {
			s.TLS.ACME = &config.ACME{
				CA: pb.dir, CARootFile: pb.rootFile, Domains: []string{"shared.test"}, Storage: "valkey",
				DisableHTTPChallenge: true, TLSALPNChallengePort: portOf(t, lnA.Addr().String()),
			}
		}, config.Shard{Name: "s0", Addr: srv.Addr})
		st, err := shardmap.NewCertStorage(shardmap.Spec{Name: "s0", Addr: srv.Addr}, shardmap.Options{DialTimeout: time.Second, CommandTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		name := string(rune('A' + i))
		o := listen.Options{ACMEStorage: st, OnACMEEvent: func(ev string) {
			n, _ := events.LoadOrStore(name+" "+ev, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}}
		wg.Add(1)
		go func() { // at the same moment
			defer wg.Done()
			edges[i] = startEdgeLn(t, cfg, o, ln)
		}()
	}
	wg.Wait()
	serialA := waitCert(t, edges[0].addr, "shared.test", 30*time.Second)
	serialB := waitCert(t, edges[1].addr, "shared.test", 30*time.Second)
	count := func(k string) int64 {
		if n, ok := events.Load(k); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	t.Logf("serials A %s B %s; orders %d, finalized %d; obtained A %d B %d", serialA, serialB, pb.orders.Load(), pb.finals.Load(), count("A cert_obtained"), count("B cert_obtained"))
	if serialA != serialB {
		t.Fatalf("gateways serve different certificates (%s, %s): storage not shared", serialA, serialB)
	}
	if pb.orders.Load() != 1 || pb.finals.Load() != 1 {
		t.Fatalf("%d orders, %d finalized at pebble, want 1 issuance for two gateways", pb.orders.Load(), pb.finals.Load())
	}
	if got := count("A cert_obtained") + count("B cert_obtained"); got != 1 {
		t.Fatalf("%d cert_obtained events, want 1", got)
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
