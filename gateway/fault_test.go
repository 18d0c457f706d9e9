package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/internal/valkeytest"
	"github.com/edgecache/edgecache/shardmap"
)

// Fault tests: real shards, real origins, real sockets, bounded load. Each
// reports its failed requests against a budget of zero wherever the origin
// can answer, and bounds what a fault may cost (latency, origin requests).

// faultOrigin is the scripted origin (testutil.Origin, whose delay makes
// it slow) answering every path the same way, and switched while load
// runs: healthy, answering 503, or resetting connections.
type faultOrigin struct {
	*testutil.Origin
	mode atomic.Int32 // originUp, origin503, originReset
	cc   atomic.Value // string: Cache-Control of every response
}

const (
	originUp int32 = iota
	origin503
	originReset
)

func newFaultOrigin(t testing.TB, cacheControl string) *faultOrigin {
	o := &faultOrigin{Origin: testutil.NewOrigin(t)}
	o.cc.Store(cacheControl)
	o.Default(func(w http.ResponseWriter, r *http.Request, _ int) {
		switch o.mode.Load() {
		case origin503:
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		case originReset:
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST, like a crashed process
				}
				c.Close()
			}
			return
		}
		cc := o.cc.Load().(string)
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			cc = "no-store" // always fetched: in flight at the origin
		}
		w.Header().Set("Cache-Control", cc)
		// The client may hang up on purpose; a failed write shows as a
		// wrong body at the client, which the tests check.
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	})
	return o
}

// sample is one request of a fault load.
type sample struct {
	path string
	end  time.Time
	d    time.Duration
	err  string // "" for a correct 200
	cs   string // Cache-Status
}

// faultLoad is bounded GET load over a key set that records every
// request, so that a test can ask what happened in each phase.
type faultLoad struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []sample
}

// loadClient keeps a connection per worker (no churn of loopback ports).
func loadClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	if dial != nil {
		tr.DialContext = dial
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// startFaultLoad runs workers over paths prefix+0 … prefix+keys-1 until
// stopped, each worker starting stride keys after the previous one; a
// request is correct when it is a 200 with the path's body.
func startFaultLoad(c *http.Client, base, prefix string, workers, keys, stride int) *faultLoad {
	l := &faultLoad{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var mine []sample
			defer func() {
				l.mu.Lock()
				l.samples = append(l.samples, mine...)
				l.mu.Unlock()
			}()
			for i := w * stride; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := prefix + strconv.Itoa(i%keys)
				start := time.Now()
				s := sample{path: path}
				resp, err := c.Get(base + path)
				if err != nil {
					s.err = err.Error()
				} else {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					s.cs = resp.Header.Get("Cache-Status")
					switch {
					case rerr != nil:
						s.err = rerr.Error()
					case resp.StatusCode != 200 || string(b) != "body of "+path:
						s.err = fmt.Sprintf("%s: %d %.60q (%s)", path, resp.StatusCode, b, s.cs)
					}
				}
				s.end = time.Now()
				s.d = s.end.Sub(start)
				mine = append(mine, s)
			}
		}()
	}
	return l
}

func (l *faultLoad) finish() []sample {
	close(l.stop)
	l.wg.Wait()
	slices.SortFunc(l.samples, byEnd)
	return l.samples
}

func byEnd(a, b sample) int { return a.end.Compare(b.end) }

// stats summarizes samples that ended in [from, to).
type stats struct {
	n, failed int
	firstErr  string
	p50, p99  time.Duration
	max       time.Duration
	slow      int // longer than the threshold given to summarize
}

func summarize(ss []sample, from, to time.Time, slow time.Duration) stats {
	var st stats
	var ds []time.Duration
	for _, s := range ss {
		if s.end.Before(from) || !s.end.Before(to) {
			continue
		}
		st.n++
		if s.err != "" {
			st.failed++
			if st.firstErr == "" {
				st.firstErr = s.err
			}
		}
		if s.d > slow {
			st.slow++
		}
		ds = append(ds, s.d)
	}
	if len(ds) == 0 {
		return st
	}
	slices.Sort(ds)
	st.p50, st.p99, st.max = ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
	return st
}

func (st stats) String() string {
	return fmt.Sprintf("%d requests, %d failed, p50 %v p99 %v max %v, %d slow",
		st.n, st.failed, st.p50.Round(time.Microsecond), st.p99.Round(time.Microsecond), st.max.Round(time.Microsecond), st.slow)
}

// wantNoFailures is the budget: zero failed requests.
func wantNoFailures(t *testing.T, phase string, st stats) {
	t.Helper()
	t.Logf("%-28s %v", phase+":", st)
	if st.failed != 0 {
		t.Errorf("%s: %d failed requests (budget 0); first: %s", phase, st.failed, st.firstErr)
	}
	if st.n == 0 {
		t.Errorf("%s: no requests", phase)
	}
}

// shardOf returns the gateway's shard at addr.
func shardOf(t *testing.T, g *gateway.Gateway, addr string) *shardmap.Shard {
	t.Helper()
	for _, s := range g.Generation().Shards().Shards() {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("no shard at %s", addr)
	return nil
}

// pathOwnedBy returns a fresh path whose key the shard at addr owns.
func pathOwnedBy(t *testing.T, g *gateway.Gateway, base, addr, prefix string) string {
	t.Helper()
	for i := range 10000 {
		p := prefix + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(i)
		if g.Generation().Shards().Pick(keyOf(t, base+p)).Addr == addr {
			return p
		}
	}
	t.Fatal("no key maps to " + addr)
	return ""
}

// waitStoresOn waits until a new key owned by the shard at addr is stored
// there and then hit: the shard serves the cache again.
func waitStoresOn(t *testing.T, g *gateway.Gateway, base, addr string) {
	t.Helper()
	waitForLong(t, "the cache stores on "+addr+" again", 10*time.Second, func() (bool, string) {
		p := pathOwnedBy(t, g, base, addr, "/again/")
		if r := get(t, base+p); r.cacheStatus != stored {
			return false, r.cacheStatus
		}
		r := get(t, base+p)
		return strings.HasPrefix(r.cacheStatus, "edgecache; hit") && !strings.Contains(r.cacheStatus, "fallback"), r.cacheStatus
	})
}

func waitForLong(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, last := cond()
		if ok {
			t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: still %s after %v", what, last, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// faultConfig is testConfig with the shard timeouts the fault tests bound
// latency by.
func faultConfig(origin string, addrs []string, commandTimeout time.Duration) *config.Config {
	cfg := testConfig(origin, nil)
	for i, a := range addrs {
		cfg.Shards = append(cfg.Shards, config.Shard{Name: fmt.Sprintf("shard-%d", i), Addr: a, Weight: 1})
	}
	cfg.Valkey.CommandTimeout = commandTimeout
	cfg.Valkey.DialTimeout = commandTimeout
	cfg.Valkey.BreakerFailures = 3
	cfg.Valkey.BreakerCooldown = time.Second
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return cfg
}

func addrsOf(servers []*valkeytest.Server) []string {
	var a []string
	for _, s := range servers {
		a = append(a, s.Addr)
	}
	return a
}

func warm(t *testing.T, base, prefix string, keys int) {
	t.Helper()
	for i := range keys {
		if r := get(t, base+prefix+strconv.Itoa(i)); r.status != 200 {
			t.Fatalf("warm-up: %d", r.status)
		}
	}
}

// TestFaultShardKilledAndRestarted: a shard crashes under load and comes
// back (empty) on the same port.
func TestFaultShardKilledAndRestarted(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newFaultOrigin(t, "max-age=300")
	g, base := startGateway(t, faultConfig(origin.URL, addrsOf(servers), 300*time.Millisecond))
	warm(t, base, "/k/", 300)
	warmed := origin.Total()
	c := loadClient(nil)
	l := startFaultLoad(c, base, "/k/", 3, 300, 7919)
	cold := startFaultLoad(c, base, "/cold/"+strconv.FormatInt(time.Now().UnixNano(), 36)+"/", 1, 1<<30, 1<<20)
	t0 := time.Now()
	time.Sleep(2 * time.Second)
	servers[1].Kill()
	killed := time.Now()
	time.Sleep(3 * time.Second)
	servers[1].Restart(t)
	restarted := time.Now()
	time.Sleep(3 * time.Second)
	ss := append(l.finish(), cold.finish()...)
	wantNoFailures(t, "before the kill", summarize(ss, t0, killed, time.Second))
	down := summarize(ss, killed, restarted, 300*time.Millisecond)
	wantNoFailures(t, "shard down", down)
	wantNoFailures(t, "after the restart", summarize(ss, restarted, time.Now(), time.Second))
	// A dead shard answers "connection refused" at once: no request waits
	// a command timeout for it.
	if down.max > time.Second {
		t.Errorf("with the shard down a request took %v", down.max)
	}
	t.Logf("origin requests after warm-up: %d (the dead shard's keys, once each, then again after its empty restart)", origin.Total()-warmed)
	waitStoresOn(t, g, base, servers[1].Addr)
}

// TestFaultShardFrozen: a shard stops answering (SIGSTOP) with its port
// open. Commands time out, the circuit opens, and from then on requests
// for its keys go to the origin without waiting on it, but for the one
// probe per cooldown.
func TestFaultShardFrozen(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newFaultOrigin(t, "max-age=300")
	const timeout = 200 * time.Millisecond
	cfg := faultConfig(origin.URL, addrsOf(servers), timeout)
	g, base := startGateway(t, cfg)
	warm(t, base, "/k/", 300)
	sh := shardOf(t, g, servers[1].Addr)
	// Warm keys are answered by the L1 without touching the shard, frozen
	// or not; cold keys make the lookups and stores that meet the freeze.
	c := loadClient(nil)
	l := startFaultLoad(c, base, "/k/", 2, 300, 7919)
	cold := startFaultLoad(c, base, "/cold/"+strconv.FormatInt(time.Now().UnixNano(), 36)+"/", 2, 1<<30, 1<<20)
	t0 := time.Now()
	time.Sleep(1500 * time.Millisecond)
	servers[1].Freeze()
	frozen := time.Now()
	deadline := frozen.Add(5 * time.Second)
	for !sh.Open() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	opened := time.Now()
	if !sh.Open() {
		servers[1].Thaw()
		l.finish()
		cold.finish()
		t.Fatal("the circuit did not open within 5s of the freeze")
	}
	time.Sleep(4 * time.Second)
	servers[1].Thaw()
	thawed := time.Now()
	time.Sleep(2 * time.Second)
	ss := slices.SortedFunc(slices.Values(append(l.finish(), cold.finish()...)), byEnd)
	t.Logf("circuit opened %v after the freeze", opened.Sub(frozen).Round(time.Millisecond))
	wantNoFailures(t, "before the freeze", summarize(ss, t0, frozen, time.Second))
	wantNoFailures(t, "frozen, before the circuit", summarize(ss, frozen, opened, time.Second))
	open := summarize(ss, opened.Add(timeout), thawed, timeout/2)
	wantNoFailures(t, "frozen, circuit open", open)
	wantNoFailures(t, "thawed", summarize(ss, thawed, time.Now(), time.Second))
	// Requests stop waiting on the frozen shard: only the probe let through
	// once per cooldown (and the requests queued behind it on the same
	// connection) may wait for a command timeout.
	probes := int(thawed.Sub(opened)/cfg.Valkey.BreakerCooldown) + 1
	if open.slow > 4*probes {
		t.Errorf("with the circuit open, %d requests took over %v; want at most %d (probes)", open.slow, timeout/2, 4*probes)
	}
	if open.p99 >= timeout {
		t.Errorf("with the circuit open, p99 %v: requests still wait on the frozen shard (command timeout %v)", open.p99, timeout)
	}
	waitStoresOn(t, g, base, servers[1].Addr)
}

// startToxiproxy runs a toxiproxy API server in-process on loopback and
// returns a client for it.
func startToxiproxy(t *testing.T) *toxiclient.Client {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	api := httptest.NewServer(srv.Routes())
	t.Cleanup(func() {
		_ = srv.Collection.Clear()
		api.Close()
	})
	return toxiclient.NewClient(api.URL)
}

// TestFaultNetwork: between the gateway and one shard, through toxiproxy:
// added latency below the command timeout, then a partition that drops
// every byte (a black hole), then one that refuses connections, then the
// network heals.
func TestFaultNetwork(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	tp := startToxiproxy(t)
	proxy, err := tp.CreateProxy("shard1", "127.0.0.1:0", servers[1].Addr)
	if err != nil {
		t.Fatal(err)
	}
	addrs := addrsOf(servers)
	addrs[1] = proxy.Listen
	origin := newFaultOrigin(t, "max-age=300")
	const timeout = 300 * time.Millisecond
	g, base := startGateway(t, faultConfig(origin.URL, addrs, timeout))
	warm(t, base, "/k/", 300)
	sh := shardOf(t, g, proxy.Listen)
	c := loadClient(nil)
	l := startFaultLoad(c, base, "/k/", 2, 300, 7919)
	cold := startFaultLoad(c, base, "/cold/"+strconv.FormatInt(time.Now().UnixNano(), 36)+"/", 2, 1<<30, 1<<20)

	phase := func(name string, d time.Duration, f func()) (string, time.Time, time.Time) {
		f()
		from := time.Now()
		time.Sleep(d)
		return name, from, time.Now()
	}
	type window struct {
		name     string
		from, to time.Time
	}
	var ws []window
	add := func(name string, from, to time.Time) { ws = append(ws, window{name, from, to}) }
	add(phase("clean", 1500*time.Millisecond, func() {}))
	add(phase("latency 50ms ±10ms", 3*time.Second, func() {
		for _, stream := range []string{"upstream", "downstream"} {
			if _, err := proxy.AddToxic("lat-"+stream, "latency", stream, 1, toxiclient.Attributes{"latency": 25, "jitter": 5}); err != nil {
				t.Fatal(err)
			}
		}
	}))
	latencyOpened := sh.Open()
	add(phase("partition: black hole", 4*time.Second, func() {
		for _, stream := range []string{"upstream", "downstream"} {
			_ = proxy.RemoveToxic("lat-" + stream)
			if _, err := proxy.AddToxic("hole-"+stream, "timeout", stream, 1, toxiclient.Attributes{"timeout": 0}); err != nil {
				t.Fatal(err)
			}
		}
	}))
	holeOpen := sh.Open()
	add(phase("partition: refused", 3*time.Second, func() {
		for _, stream := range []string{"upstream", "downstream"} {
			_ = proxy.RemoveToxic("hole-" + stream)
		}
		if err := proxy.Disable(); err != nil {
			t.Fatal(err)
		}
	}))
	add(phase("healed", 2*time.Second, func() {
		if err := proxy.Enable(); err != nil {
			t.Fatal(err)
		}
	}))
	ss := slices.SortedFunc(slices.Values(append(l.finish(), cold.finish()...)), byEnd)
	for _, w := range ws {
		wantNoFailures(t, w.name, summarize(ss, w.from, w.to, timeout/2))
	}
	if latencyOpened {
		t.Error("50ms of latency, below the command timeout, opened the circuit")
	}
	if !holeOpen {
		t.Error("the black hole did not open the circuit")
	}
	// Past the first command timeouts that open it, the partition costs no
	// waiting: at most the probes do.
	hole := ws[2]
	st := summarize(ss, hole.from.Add(2*timeout+500*time.Millisecond), hole.to, timeout/2)
	t.Logf("black hole, circuit open:    %v", st)
	if st.p99 >= timeout {
		t.Errorf("black hole: p99 %v with the circuit open", st.p99)
	}
	waitStoresOn(t, g, base, proxy.Listen)
}

// TestFaultOriginDownWarmCache: stale entries are served while the origin
// answers 503, resets connections, and then is gone (stale-if-error).
func TestFaultOriginDownWarmCache(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newFaultOrigin(t, "max-age=1, stale-if-error=600")
	clk := testutil.NewClock()
	_, base := startGatewayWith(t, faultConfig(origin.URL, addrsOf(servers), 300*time.Millisecond), gateway.Options{Now: clk.Now})
	warm(t, base, "/k/", 100)
	clk.Advance(1100 * time.Millisecond) // every entry is stale now
	l := startFaultLoad(loadClient(nil), base, "/k/", 4, 100, 7919)
	origin.mode.Store(origin503)
	t0 := time.Now()
	time.Sleep(2 * time.Second)
	origin.mode.Store(originReset)
	t1 := time.Now()
	time.Sleep(2 * time.Second)
	origin.Listener.Close() // connection refused from now on
	origin.CloseClientConnections()
	t2 := time.Now()
	time.Sleep(2 * time.Second)
	ss := l.finish()
	wantNoFailures(t, "origin answers 503", summarize(ss, t0, t1, time.Second))
	wantNoFailures(t, "origin resets connections", summarize(ss, t1, t2, time.Second))
	wantNoFailures(t, "origin gone", summarize(ss, t2, time.Now(), time.Second))
	n := 0
	for _, s := range ss {
		if s.cs == "edgecache; hit; detail=stale-if-error" {
			n++
		}
	}
	if n == 0 {
		t.Fatal("nothing was served stale-if-error")
	}
	// A key that was never cached has nothing to fall back on: that is the
	// origin's failure, outside the budget, and it is a 502 (not a hang).
	start := time.Now()
	if r := get(t, base+"/never-cached"); r.status != http.StatusBadGateway || time.Since(start) > 2*time.Second {
		t.Fatalf("uncached key with the origin gone: %d after %v", r.status, time.Since(start))
	}
}

// TestFaultOriginSlow: coalescing makes a slow origin see one request per
// key; the origin timeout bounds how long a client waits, and with
// stale-if-error it still gets an answer.
func TestFaultOriginSlow(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	t.Run("slow within the timeout", func(t *testing.T) {
		origin := newFaultOrigin(t, "max-age=300")
		origin.SetDelay(300 * time.Millisecond)
		cfg := faultConfig(origin.URL, addrsOf(servers), 300*time.Millisecond)
		cfg.Routes[0].OriginTimeout = 2 * time.Second
		_, base := startGateway(t, cfg)
		const keys = 40
		// Every worker walks the same keys at the same time: 16 clients
		// miss each key together.
		l := startFaultLoad(loadClient(nil), base, "/cold/", 16, keys, 0)
		t0 := time.Now()
		time.Sleep(3 * time.Second)
		ss := l.finish()
		wantNoFailures(t, "300ms origin, 16 workers", summarize(ss, t0, time.Now(), time.Second))
		distinct := map[string]bool{}
		for _, s := range ss {
			distinct[s.path] = true
		}
		if n := origin.Total(); n != int64(len(distinct)) {
			t.Errorf("origin saw %d requests for %d keys under %d requests; want one per key", n, len(distinct), len(ss))
		} else {
			t.Logf("origin saw %d requests: one per key, for %d client requests", n, len(ss))
		}
	})
	t.Run("slower than the timeout", func(t *testing.T) {
		origin := newFaultOrigin(t, "max-age=1, stale-if-error=600")
		cfg := faultConfig(origin.URL, addrsOf(servers), 300*time.Millisecond)
		const originTimeout = 500 * time.Millisecond
		cfg.Routes[0].OriginTimeout = originTimeout
		clk := testutil.NewClock()
		_, base := startGatewayWith(t, cfg, gateway.Options{Now: clk.Now})
		const keys = 20
		warm(t, base, "/stale/", keys)
		clk.Advance(1100 * time.Millisecond) // stale now
		origin.SetDelay(5 * time.Second)
		before := origin.Total()
		l := startFaultLoad(loadClient(nil), base, "/stale/", 16, keys, 7919)
		t0 := time.Now()
		const dur = 3 * time.Second
		time.Sleep(dur)
		ss := l.finish()
		st := summarize(ss, t0, time.Now(), originTimeout+time.Second)
		wantNoFailures(t, "5s origin, 500ms timeout", st)
		if st.slow != 0 {
			t.Errorf("%d requests waited longer than the origin timeout plus 1s", st.slow)
		}
		// One fetch per key per timeout window, however many clients wait.
		n := origin.Total() - before
		bound := int64(keys) * (int64(dur/originTimeout) + 2)
		t.Logf("origin requests: %d for %d client requests (bound %d: one per key per %v)", n, len(ss), bound, originTimeout)
		if n > bound {
			t.Errorf("origin saw %d requests, bound %d", n, bound)
		}
	})
}

// TestFaultGatewayRestart: two gateways behind a round-robin balancer are
// restarted one after the other, gracefully, on their ports, under load
// that includes requests in flight at the origin.
//
// What zero failed requests needs, honestly: Shutdown finishes in-flight
// requests and closes idle connections; the balancer retries a connection
// that is refused (the request was never sent, so any balancer may) on the
// other gateway; and a request that races an idle connection being closed
// is retried by Go's transport, as it is a GET that was not written yet.
// A client connected straight to a restarting gateway would see the
// refused connections.
func TestFaultGatewayRestart(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newFaultOrigin(t, "max-age=300")
	cfg := faultConfig(origin.URL, addrsOf(servers), 300*time.Millisecond)

	type instance struct {
		addr string
		stop func() error
	}
	start := func(addr string) *instance {
		g, err := gateway.New(cfg, gateway.Options{Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		var ln net.Listener
		for i := 0; ; i++ { // the port was ours a moment ago
			if ln, err = net.Listen("tcp", addr); err == nil || i == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Serve(ctx, ln) }()
		return &instance{addr: ln.Addr().String(), stop: func() error {
			cancel()
			err := <-done
			g.Close()
			return err
		}}
	}
	gws := []*instance{start("127.0.0.1:0"), start("127.0.0.1:0")}
	t.Cleanup(func() {
		for _, g := range gws {
			_ = g.stop()
		}
	})
	var next, failovers atomic.Int64
	var lbMu sync.Mutex
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		first := int(next.Add(1))
		var err error
		for i := range 2 {
			lbMu.Lock()
			addr := gws[(first+i)%2].addr
			lbMu.Unlock()
			var c net.Conn
			if c, err = d.DialContext(ctx, network, addr); err == nil {
				if i > 0 {
					failovers.Add(1)
				}
				return c, nil
			}
		}
		return nil, err
	}
	c := loadClient(dial)
	const base = "http://gateways.test"
	for i := range 200 { // warm the shared L2
		if r, err := c.Get(base + "/k/" + strconv.Itoa(i)); err == nil {
			r.Body.Close()
		}
	}
	// Requests in flight at the origin during each shutdown: /slow/ is
	// never stored, and the origin takes 200ms.
	origin.SetDelay(200 * time.Millisecond)
	l := startFaultLoad(c, base, "/k/", 6, 200, 7919)
	slow := startFaultLoad(c, base, "/slow/", 4, 1<<30, 1<<20)
	t0 := time.Now()
	var stopErrs []error
	for i := range gws {
		time.Sleep(2 * time.Second)
		lbMu.Lock()
		old := gws[i]
		lbMu.Unlock()
		stopStart := time.Now()
		stopErrs = append(stopErrs, old.stop())
		t.Logf("gateway %d shut down gracefully in %v", i, time.Since(stopStart).Round(time.Millisecond))
		ng := start(old.addr)
		lbMu.Lock()
		gws[i] = ng
		lbMu.Unlock()
	}
	time.Sleep(2 * time.Second)
	ss := l.finish()
	slowSS := slow.finish()
	for i, err := range stopErrs {
		if err != nil {
			t.Errorf("gateway %d: shutdown: %v", i, err)
		}
	}
	wantNoFailures(t, "cached keys", summarize(ss, t0, time.Now(), time.Second))
	wantNoFailures(t, "uncached keys at the origin", summarize(slowSS, t0, time.Now(), 2*time.Second))
	t.Logf("connections refused and retried on the other gateway: %d", failovers.Load())
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestFaultShardDownFallback: while a shard is down, what it cannot store
// is kept in the gateway's fallback for valkey.fallback_ttl and served
// from there, so the origin sees about one request per key per TTL
// instead of every request; a purge reaches the fallback; once the shard
// is back, the fallback is not read. With the fallback off, every request
// for the dead shard's keys reaches the origin.
func TestFaultShardDownFallback(t *testing.T) {
	const keys, rounds = 20, 10
	run := func(t *testing.T, fallbackTTL time.Duration) (originPerRound []int64) {
		srv := valkeytest.Start(t, 1)[0]
		origin := newFaultOrigin(t, "max-age=300")
		cfg := faultConfig(origin.URL, []string{srv.Addr}, 300*time.Millisecond)
		cfg.Valkey.FallbackTTL = fallbackTTL
		_, base := startGateway(t, cfg)
		warm(t, base, "/k/", keys)
		srv.Kill()
		for range rounds {
			before := origin.Total()
			for i := range keys {
				if r := get(t, base+"/k/"+strconv.Itoa(i)); r.status != 200 || r.body != "body of /k/"+strconv.Itoa(i) {
					t.Fatalf("shard down: %d %q (%s)", r.status, r.body, r.cacheStatus)
				}
			}
			originPerRound = append(originPerRound, origin.Total()-before)
		}
		return originPerRound
	}
	t.Run("off", func(t *testing.T) {
		per := run(t, -1)
		t.Logf("origin requests per round of %d keys, shard down, no fallback: %v", keys, per)
		for i, n := range per {
			if n != keys {
				t.Fatalf("round %d: %d origin requests for %d keys, want every request to go there", i, n, keys)
			}
		}
	})
	t.Run("on", func(t *testing.T) {
		per := run(t, time.Minute)
		t.Logf("origin requests per round of %d keys, shard down, fallback on: %v", keys, per)
		if per[0] != keys {
			t.Fatalf("first round after the kill: %d origin requests, want %d (the shard's copies are gone)", per[0], keys)
		}
		for i, n := range per[1:] {
			if n != 0 {
				t.Fatalf("round %d: %d origin requests, want 0 (the fallback holds every key)", i+1, n)
			}
		}
	})

	srv := valkeytest.Start(t, 1)[0]
	origin := newFaultOrigin(t, "max-age=300")
	cfg := faultConfig(origin.URL, []string{srv.Addr}, 300*time.Millisecond)
	cfg.Valkey.FallbackTTL = 500 * time.Millisecond
	g, base := startGateway(t, cfg)
	srv.Kill()
	get(t, base+"/f/a")
	if r := get(t, base+"/f/a"); r.cacheStatus != "edgecache; hit; detail=fallback" {
		t.Fatalf("second request with the shard down: %s", r.cacheStatus)
	}
	t.Run("expires", func(t *testing.T) {
		time.Sleep(600 * time.Millisecond)
		before := origin.Count("/f/a")
		if r := get(t, base+"/f/a"); r.status != 200 || origin.Count("/f/a") != before+1 {
			t.Fatalf("after the fallback TTL: %d, %d origin requests (was %d): %s", r.status, origin.Count("/f/a"), before, r.cacheStatus)
		}
	})
	t.Run("purged", func(t *testing.T) {
		get(t, base+"/f/b")
		if r := get(t, base+"/f/b"); r.cacheStatus != "edgecache; hit; detail=fallback" {
			t.Fatalf("before the purge: %s", r.cacheStatus)
		}
		if _, err := g.Purge(context.Background(), gateway.PurgeRequest{URL: base + "/f/b"}); err == nil {
			t.Log("purge reported no error with the shard down")
		}
		if r := get(t, base+"/f/b"); strings.Contains(r.cacheStatus, "hit") {
			t.Fatalf("after a purge: %s", r.cacheStatus)
		}
	})
	t.Run("shard back", func(t *testing.T) {
		get(t, base+"/f/c")
		srv.Restart(t)
		waitStoresOn(t, g, base, srv.Addr)
		// /f/c is in the fallback for a while yet; the shard answers (a
		// miss), so it comes from the origin and then from the shard.
		if r := get(t, base+"/f/c"); strings.Contains(r.cacheStatus, "fallback") {
			t.Fatalf("shard back: %s", r.cacheStatus)
		}
	})
}
