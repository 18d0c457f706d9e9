package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
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

	"github.com/edgecache/edgecache/config"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/admin"
	"github.com/edgecache/edgecache/internal/telemetry"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/origins"
)

// poolOrigin is one real origin server of a pool: it answers "body of
// <path>", counts requests per path and at once (shared by the servers
// of a pool), and can be made to fail or slow down.
type poolOrigin struct {
	*httptest.Server
	fleet  *fleet
	hits   atomic.Int64
	status atomic.Int64 // 0: 200
	delay  atomic.Int64 // nanoseconds
}

// fleet counts what reaches any of its origins.
type fleet struct {
	mu       sync.Mutex
	perPath  map[string]int
	cur, max atomic.Int64
	total    atomic.Int64
	cc       string // Cache-Control of every response
}

func newFleet(cc string) *fleet { return &fleet{perPath: map[string]int{}, cc: cc} }

func (f *fleet) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.perPath[path]
}

func (f *fleet) handler(o *poolOrigin) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			// Slow is slow everywhere; errors (status) are the
			// application's, and the health endpoint does not see them,
			// so that passive ejection is what catches them.
			if d := o.delay.Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			return
		}
		o.hits.Add(1)
		f.total.Add(1)
		n := f.cur.Add(1)
		defer f.cur.Add(-1)
		for m := f.max.Load(); n > m && !f.max.CompareAndSwap(m, n); m = f.max.Load() {
		}
		f.mu.Lock()
		f.perPath[r.URL.Path]++
		f.mu.Unlock()
		if d := o.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		w.Header().Set("Cache-Control", f.cc)
		w.Header().Set("X-Host", r.Host)
		if s := o.status.Load(); s != 0 {
			w.WriteHeader(int(s))
		}
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	})
}

func (f *fleet) start(t *testing.T, n int) []*poolOrigin {
	out := make([]*poolOrigin, n)
	for i := range out {
		o := &poolOrigin{fleet: f}
		o.Server = httptest.NewServer(f.handler(o))
		t.Cleanup(o.Close)
		out[i] = o
	}
	return out
}

func urls(servers []*poolOrigin) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.URL
	}
	return out
}

// poolConfig is a config with one route to the pool "api" of servers.
func poolConfig(t *testing.T, servers []string, edit func(*config.Origin, *config.Route)) *config.Config {
	t.Helper()
	o := config.Origin{Name: "api"}
	for _, s := range servers {
		o.Servers = append(o.Servers, config.OriginServer{URL: s})
	}
	r := config.Route{Name: "t", Origin: "api", DefaultTTL: time.Minute}
	if edit != nil {
		edit(&o, &r)
	}
	c := &config.Config{Routes: []config.Route{r}, Origins: []config.Origin{o}}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// hammer sends requests for distinct keys from workers until stop is
// closed or n requests were sent, and counts the ones that did not get
// the origin's body.
type hammer struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	first      string
	wg         sync.WaitGroup
}

func startHammer(base, prefix string, workers, n int, stop <-chan struct{}) *hammer {
	h := &hammer{}
	var next atomic.Int64
	for range workers {
		h.wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
				path := prefix + strconv.FormatInt(i, 10)
				r, err := client.Get(base + path)
				msg := ""
				if err != nil {
					msg = err.Error()
				} else {
					b, _ := io.ReadAll(r.Body)
					r.Body.Close()
					if r.StatusCode != 200 || string(b) != "body of "+path {
						msg = fmt.Sprintf("%s: %d %q (%s)", path, r.StatusCode, b, r.Header.Get("Cache-Status"))
					}
				}
				if msg == "" {
					h.ok.Add(1)
					continue
				}
				h.failed.Add(1)
				h.mu.Lock()
				if h.first == "" {
					h.first = msg
				}
				h.mu.Unlock()
			}
		})
	}
	return h
}

func serverStats(g *gateway.Gateway, pool string) []origins.ServerStats {
	for _, p := range admin.StatusOf(g).Pools {
		if p.Name == pool {
			return p.Servers
		}
	}
	return nil
}

// Three origin servers under load, one killed: no failed request.
func TestPoolServerKilled(t *testing.T) {
	f := newFleet("max-age=300")
	srv := f.start(t, 3)
	g, base := startGatewayWith(t, poolConfig(t, urls(srv), nil), gateway.Options{})
	api := startAdmin(t, g)
	stop := make(chan struct{})
	h := startHammer(base, "/k/", 6, 1500, stop)
	for f.total.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	srv[2].Close() // waits for its in-flight requests; then refuses
	h.wg.Wait()
	close(stop)
	st := serverStats(g, "api")
	t.Logf("killed one of 3 servers: %d ok, %d failed; hits %d/%d/%d; killed server: %+v",
		h.ok.Load(), h.failed.Load(), srv[0].hits.Load(), srv[1].hits.Load(), srv[2].hits.Load(), st[2])
	if h.failed.Load() != 0 {
		t.Fatalf("%d failed requests; first: %s", h.failed.Load(), h.first)
	}
	if h.ok.Load() != 1500 {
		t.Fatalf("%d of 1500 requests answered", h.ok.Load())
	}
	if !st[2].Ejected {
		t.Fatalf("killed server not ejected: %+v", st[2])
	}
	var retries uint64
	for _, s := range st {
		retries += s.Retries
	}
	if retries == 0 {
		t.Fatal("no retry counted")
	}

	// The same in the metrics, per server.
	fams := scrape(t, api)
	dead := map[string]string{"pool": "api", "server": srv[2].URL}
	wantValue(t, fams, "edgecache_origin_ejected", dead, 1)
	wantValue(t, fams, "edgecache_origin_up", dead, 1) // no active checks
	wantValue(t, fams, "edgecache_origin_requests_total", dead, float64(st[2].Requests))
	wantValue(t, fams, "edgecache_origin_latency_seconds", dead, float64(st[2].Requests))
	wantValue(t, fams, "edgecache_origin_ejected", map[string]string{"pool": "api", "server": srv[0].URL}, 0)
	wantValue(t, fams, "edgecache_origin_in_flight", map[string]string{"pool": "api", "server": srv[0].URL}, 0)
	wantValue(t, fams, "edgecache_origin_queue_length", map[string]string{"pool": "api"}, 0)
	if n := sumOf(fams, "edgecache_origin_retries_total", map[string]string{"pool": "api"}); n != float64(retries) {
		t.Errorf("edgecache_origin_retries_total sums to %v, status says %d", n, retries)
	}
	if n := sumOf(fams, "edgecache_origin_requests_total", map[string]string{"pool": "api"}); n != float64(1500+retries) {
		t.Errorf("edgecache_origin_requests_total sums to %v for 1500 misses and %d retries", n, retries)
	}

	// The admin status and the status page list the pool and its servers.
	for _, tc := range []struct{ path, want string }{
		{"/admin/status", `"pools":[{"name":"api","balance":"round_robin"`},
		{"/admin/status", `"url":"` + srv[2].URL + `","weight":1,"up":true,"ejected":true`},
		{"/admin/", `<tr class="origin" data-pool="api">`},
		{"/admin/", `<code>` + srv[2].URL + `</code></td>
        <td><span class="bad">ejected</span>`},
	} {
		req, _ := http.NewRequest(http.MethodGet, api+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: %d, want it to contain %s", tc.path, resp.StatusCode, tc.want)
		}
	}
}

// One server answers 5xx: it is ejected after consecutive_failures of
// them, and serves again once it recovers and its ejection time is over.
// Another made slow fails its health checks and comes back after it.
func TestPoolEjectAndRecover(t *testing.T) {
	f := newFleet("no-store")
	srv := f.start(t, 3)
	g, base := startGateway(t, poolConfig(t, urls(srv), func(o *config.Origin, _ *config.Route) {
		o.Outlier = config.OriginOutlier{ConsecutiveFailures: 3, BaseEjectionTime: 500 * time.Millisecond, MaxEjectedPercent: 70}
		o.Health = config.OriginHealth{Path: "/health", Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2}
	}))
	srv[0].status.Store(503)
	var bad int
	for i := range 60 {
		if r := get(t, base+"/e/"+strconv.Itoa(i)); r.status != 200 {
			bad++
		}
	}
	st := serverStats(g, "api")
	t.Logf("5xx server: %d failed responses, stats %+v", bad, st[0])
	if !st[0].Ejected {
		t.Fatalf("5xx server not ejected: %+v", st[0])
	}
	// Each ejection follows 3 consecutive failures; on a loaded box the 60
	// requests can outlast the 500 ms ejection, and the server, back in
	// the pool, fails 3 more times before it is ejected again.
	if limit := 3 * int(st[0].Ejections); bad > limit {
		t.Fatalf("%d 5xx responses reached clients for %d ejections; consecutive_failures is 3", bad, st[0].Ejections)
	}
	srv[0].status.Store(0)
	time.Sleep(600 * time.Millisecond)
	before := srv[0].hits.Load()
	for i := range 30 {
		if r := get(t, base+"/r/"+strconv.Itoa(i)); r.status != 200 {
			t.Fatalf("after recovery: %d %q", r.status, r.cacheStatus)
		}
	}
	if n := srv[0].hits.Load() - before; n < 5 {
		t.Fatalf("recovered server got %d of 30 requests", n)
	}

	srv[1].delay.Store(int64(time.Second)) // slower than the check's timeout
	deadline := time.Now().Add(5 * time.Second)
	for serverStats(g, "api")[1].Up {
		if time.Now().After(deadline) {
			t.Fatal("slow server still up after 5s of checks")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before = srv[1].hits.Load()
	for i := range 30 {
		if r := get(t, base+"/s/"+strconv.Itoa(i)); r.status != 200 {
			t.Fatalf("with a slow server down: %d", r.status)
		}
	}
	if n := srv[1].hits.Load() - before; n != 0 {
		t.Fatalf("server marked down got %d requests", n)
	}
	srv[1].delay.Store(0)
	deadline = time.Now().Add(5 * time.Second)
	for !serverStats(g, "api")[1].Up {
		if time.Now().After(deadline) {
			t.Fatal("recovered slow server not back up within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every server down: stale entries are served (stale-if-error), cold keys
// get 503 with Retry-After.
func TestPoolAllDown(t *testing.T) {
	f := newFleet("max-age=1")
	srv := f.start(t, 3)
	clk := testutil.NewClock()
	_, base := startGatewayWith(t, poolConfig(t, urls(srv), func(o *config.Origin, r *config.Route) {
		r.StaleIfError = time.Minute
		o.RetryAfter = 7 * time.Second
	}), gateway.Options{Now: clk.Now})
	for i := range 10 {
		wantStatus(t, get(t, base+"/w/"+strconv.Itoa(i)), 200, "edgecache; fwd=uri-miss; stored")
	}
	clk.Advance(1100 * time.Millisecond) // stale now
	for _, s := range srv {
		s.Close()
	}
	for i := range 10 {
		r := get(t, base+"/w/"+strconv.Itoa(i))
		wantStatus(t, r, 200, "edgecache; hit; detail=stale-if-error")
		if r.body != "body of /w/"+strconv.Itoa(i) {
			t.Fatalf("stale body %q", r.body)
		}
	}
	for i := range 5 {
		r := get(t, base+"/cold/"+strconv.Itoa(i))
		wantStatus(t, r, 503, "edgecache; fwd=uri-miss; detail=origin-unavailable")
		if ra := r.header.Get("Retry-After"); ra != "7" {
			t.Fatalf("Retry-After %q, want 7", ra)
		}
	}
	// Passed through (not cached) requests too.
	r := do(t, http.MethodPost, base+"/cold/post")
	wantStatus(t, r, 503, "edgecache; fwd=bypass; detail=origin-unavailable")
	if ra := r.header.Get("Retry-After"); ra != "7" {
		t.Fatalf("POST: Retry-After %q, want 7", ra)
	}
}

// A pool capped at N never has more than N requests at its servers, under
// 10×N concurrent distinct misses; what cannot wait gets 503.
func TestPoolMaxConcurrent(t *testing.T) {
	const n = 4
	for _, tc := range []struct {
		name  string
		queue int
		allOK bool
	}{
		{"queue holds all", 10 * n, true},
		{"queue of 2", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet("max-age=300")
			srv := f.start(t, 3)
			for _, s := range srv {
				s.delay.Store(int64(50 * time.Millisecond))
			}
			_, base := startGateway(t, poolConfig(t, urls(srv), func(o *config.Origin, _ *config.Route) {
				o.MaxConcurrent, o.MaxQueue, o.QueueTimeout = n, tc.queue, 10*time.Second
			}))
			var wg sync.WaitGroup
			var ok, refused atomic.Int64
			start := make(chan struct{})
			for i := range 10 * n {
				wg.Go(func() {
					<-start
					r, err := client.Get(base + "/c/" + strconv.Itoa(i))
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					switch {
					case r.StatusCode == 200:
						ok.Add(1)
					case r.StatusCode == 503 && r.Header.Get("Retry-After") != "":
						refused.Add(1)
					default:
						t.Errorf("%d %s", r.StatusCode, r.Header.Get("Cache-Status"))
					}
				})
			}
			close(start)
			wg.Wait()
			t.Logf("cap %d, %d concurrent misses: the origins saw at most %d at once; %d ok, %d refused", n, 10*n, f.max.Load(), ok.Load(), refused.Load())
			if m := f.max.Load(); m > n || m < 2 {
				t.Fatalf("origins saw %d at once with max_concurrent %d", m, n)
			}
			if tc.allOK && ok.Load() != 10*n {
				t.Fatalf("%d ok, %d refused; the queue should hold them all", ok.Load(), refused.Load())
			}
			if !tc.allOK && (refused.Load() == 0 || ok.Load() < n) {
				t.Fatalf("%d ok, %d refused; want both", ok.Load(), refused.Load())
			}
		})
	}
}

// mTLS to an origin that requires a client certificate: with the pool's
// client certificate the fill works; a pool without one is refused by the
// origin's TLS handshake.
func TestPoolMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.der)
	serverCert := ca.issue(t, "origin.test", false)
	certFile := writePEM(t, dir, "client.pem", "CERTIFICATE", ca.issue(t, "edgecache", true).Certificate[0])
	clientKey := ca.lastKey
	keyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)

	f := newFleet("max-age=300")
	o := &poolOrigin{fleet: f}
	o.Server = httptest.NewUnstartedServer(f.handler(o))
	o.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool}
	o.StartTLS()
	t.Cleanup(o.Close)
	for _, tc := range []struct {
		name       string
		clientCert bool
		want       int
	}{
		{"with client certificate", true, 200},
		{"without client certificate", false, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := startGateway(t, poolConfig(t, []string{o.URL}, func(oc *config.Origin, _ *config.Route) {
				oc.TLS = config.OriginTLS{CAFile: caFile, ServerName: "origin.test"}
				if tc.clientCert {
					oc.TLS.CertFile, oc.TLS.KeyFile = certFile, keyFile
				}
			}))
			r := get(t, base+"/m/"+strings.ReplaceAll(tc.name, " ", "-"))
			if r.status != tc.want {
				t.Fatalf("got %d %q, want %d", r.status, r.cacheStatus, tc.want)
			}
		})
	}
	if f.total.Load() != 1 {
		t.Fatalf("%d requests reached the mTLS origin, want 1 (the one with a certificate)", f.total.Load())
	}
}

type testCA struct {
	der     []byte
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pool    *x509.CertPool
	lastKey *ecdsa.PrivateKey
}

func newCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgecache test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{der: der, cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, name string, client bool) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	ca.lastKey = key
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// edge → shield → origin: N edge gateways (POPs, each its own store)
// whose route's origin is one shield gateway cause one origin request per
// key, the shield coalescing their misses; each edge's Cache-Status lists
// the shield's entry, then its own.
func TestShield(t *testing.T) {
	const edges, keys = 4, 20
	f := newFleet("max-age=300")
	srv := f.start(t, 1)
	srv[0].delay.Store(int64(100 * time.Millisecond)) // the edges' misses overlap at the shield
	_, shield := startGateway(t, poolConfig(t, urls(srv), nil))
	bases := make([]string, edges)
	for i := range bases {
		_, bases[i] = startGateway(t, poolConfig(t, []string{shield}, func(_ *config.Origin, r *config.Route) { r.Name = "edge" }))
	}
	var wg sync.WaitGroup
	statuses := make([][]string, edges)
	for e, base := range bases {
		statuses[e] = make([]string, keys)
		for k := range keys {
			wg.Go(func() {
				r, err := client.Get(base + "/s/" + strconv.Itoa(k))
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				if r.StatusCode != 200 || string(b) != "body of /s/"+strconv.Itoa(k) {
					t.Errorf("edge %d key %d: %d %q", e, k, r.StatusCode, b)
				}
				statuses[e][k] = r.Header.Get("Cache-Status")
			})
		}
	}
	wg.Wait()
	for k := range keys {
		if n := f.count("/s/" + strconv.Itoa(k)); n != 1 {
			t.Fatalf("key %d: %d origin requests from %d edges, want 1", k, n, edges)
		}
	}
	t.Logf("%d edges × %d keys: %d origin requests; e.g. Cache-Status %q", edges, keys, f.total.Load(), statuses[0][0])
	for e := range edges {
		for k := range keys {
			cs := statuses[e][k]
			parts := strings.Split(cs, ", ")
			if len(parts) != 2 || !strings.HasPrefix(parts[0], "edgecache; ") || parts[1] != "edgecache; fwd=uri-miss; stored" {
				t.Fatalf("edge %d key %d: Cache-Status %q; want the shield's entry, then the edge's miss", e, k, cs)
			}
		}
	}
	// A second round is a hit at each edge: one entry, the edge's own.
	r := get(t, bases[1]+"/s/3")
	if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") || strings.Contains(r.cacheStatus, ",") {
		t.Fatalf("edge hit: Cache-Status %q", r.cacheStatus)
	}
}

// Host: the server's by default, the client's with origin_host:
// preserve, a literal otherwise.
func TestPoolOriginHost(t *testing.T) {
	f := newFleet("no-store")
	srv := f.start(t, 1)
	for _, tc := range []struct{ setting, want string }{
		{"", strings.TrimPrefix(srv[0].URL, "http://")},
		{"preserve", "www.example.test"},
		{"api.internal", "api.internal"},
	} {
		t.Run("origin_host="+tc.setting, func(t *testing.T) {
			_, base := startGateway(t, poolConfig(t, urls(srv), func(_ *config.Origin, r *config.Route) { r.OriginHost = tc.setting }))
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequest(method, base+"/h", nil)
				req.Host = "www.example.test"
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := resp.Header.Get("X-Host"); got != tc.want {
					t.Fatalf("%s: origin saw Host %q, want %q", method, got, tc.want)
				}
			}
		})
	}
}

// A reload that changes the pool (servers replaced one by one, balance
// and cap changed) under load: no failed request, and the pool's servers
// in the status follow the config.
func TestPoolReloadUnderLoad(t *testing.T) {
	f := newFleet("no-store")
	srv := f.start(t, 4)
	doc := func(balance string, idx ...int) string {
		var b strings.Builder
		b.WriteString("routes:\n  - name: t\n    origin: api\n    default_ttl: 1m\norigins:\n  - name: api\n    balance: " + balance + "\n    max_concurrent: 8\n    max_queue: 64\n    servers:\n")
		for _, i := range idx {
			fmt.Fprintf(&b, "      - url: %s\n", srv[i].URL)
		}
		return b.String()
	}
	edits := []struct {
		balance string
		servers []int
	}{
		{"round_robin", []int{0, 1}},
		{"least_requests", []int{0, 1, 2}},
		{"least_requests", []int{1, 2}},
		{"hash", []int{2, 3}},
		{"round_robin", []int{3, 0}},
	}
	g, base, path := fileGateway(t, doc(edits[0].balance, edits[0].servers...))
	stop := make(chan struct{})
	h := startHammer(base, "/l/", 4, 1<<30, stop)
	for _, e := range edits[1:] {
		time.Sleep(time.Second)
		writeAndWait(t, g, path, doc(e.balance, e.servers...), false)
		st := serverStats(g, "api")
		if len(st) != len(e.servers) || st[0].URL != srv[e.servers[0]].URL {
			t.Fatalf("after reload the pool is %+v", st)
		}
	}
	time.Sleep(time.Second)
	close(stop)
	h.wg.Wait()
	t.Logf("pool reloaded %d times under load: %d ok, %d failed", len(edits)-1, h.ok.Load(), h.failed.Load())
	if h.failed.Load() != 0 {
		t.Fatalf("%d failed requests; first: %s", h.failed.Load(), h.first)
	}
	if h.ok.Load() < 200 {
		t.Fatalf("only %d requests", h.ok.Load())
	}
}

// A pool's requests carry the trace context, as a URL origin's do.
func TestPoolTracing(t *testing.T) {
	origin := newHeaderOrigin(t)
	exp := tracetest.NewInMemoryExporter()
	tracing := telemetry.NewTracingWith(exp, nil, 1, true)
	t.Cleanup(func() { _ = tracing.Shutdown(t.Context()) })
	_, base := startGatewayWith(t, poolConfig(t, []string{origin.URL}, nil), gateway.Options{Tracing: tracing})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, base+"/pooltraced", nil)
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := origin.traceparents("/pooltraced")
	// The fill copies the client's headers: the origin must see the
	// gateway's client span as the parent, not the client's span.
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "00-"+traceID+"-") || strings.Contains(seen[0], "00f067aa0ba902b7") {
		t.Fatalf("origin saw traceparent %q, want trace %s with the gateway's span as parent", seen, traceID)
	}
}

// A reload that leaves a pool's section alone keeps the pool (its
// counters and ejections go on); one that edits it starts a new pool.
func TestPoolKeptAcrossReload(t *testing.T) {
	f := newFleet("no-store")
	srv := f.start(t, 2)
	doc := func(ttl, weight string) string {
		return "routes:\n  - name: t\n    origin: api\n    default_ttl: " + ttl + "\norigins:\n  - name: api\n    servers:\n" +
			"      - { url: \"" + srv[0].URL + "\", weight: " + weight + " }\n      - { url: \"" + srv[1].URL + "\" }\n"
	}
	g, base, path := fileGateway(t, doc("1m", "1"))
	for i := range 10 {
		get(t, base+"/x/"+strconv.Itoa(i))
	}
	requests := func() uint64 {
		var n uint64
		for _, s := range serverStats(g, "api") {
			n += s.Requests
		}
		return n
	}
	if n := requests(); n != 10 {
		t.Fatalf("%d requests counted, want 10", n)
	}
	writeAndWait(t, g, path, doc("2m", "1"), false) // the route changed, not the pool
	if n := requests(); n != 10 {
		t.Fatalf("after a reload that kept the pool: %d requests counted, want 10", n)
	}
	writeAndWait(t, g, path, doc("2m", "3"), false) // the pool changed
	if n := requests(); n != 0 {
		t.Fatalf("after a reload that changed the pool: %d requests counted, want a new pool's 0", n)
	}
	if st := serverStats(g, "api"); st[0].Weight != 3 {
		t.Fatalf("new pool: %+v", st)
	}
}
