package origins_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/origins"
)

// backend is a real origin server that counts what reaches it and how
// much of it at once.
type backend struct {
	*httptest.Server
	hits   atomic.Int64
	g      *gauge
	status atomic.Int64 // 0: 200
	delay  atomic.Int64 // nanoseconds
}

// gauge counts requests in progress across the backends sharing it, and
// the most there were at once.
type gauge struct{ cur, max atomic.Int64 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			return
		}
	}
}

func newBackend(t *testing.T) *backend { return newBackendIn(t, &gauge{}) }

func newBackendIn(t *testing.T, g *gauge) *backend {
	b := &backend{g: g}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		g.enter()
		defer g.cur.Add(-1)
		if d := b.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if s := b.status.Load(); s != 0 {
			w.WriteHeader(int(s))
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

func newPool(t *testing.T, o origins.Options, bs ...*backend) *origins.Pool {
	t.Helper()
	if o.Name == "" {
		o.Name = "test"
	}
	for _, b := range bs {
		o.Servers = append(o.Servers, origins.Server{URL: b.URL})
	}
	p, err := origins.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func get(ctx context.Context, p *origins.Pool, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://test"+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != path && resp.StatusCode == 200 {
		return 0, fmt.Errorf("body %q, want %q", b, path)
	}
	return resp.StatusCode, nil
}

func TestBalance(t *testing.T) {
	for _, bal := range []string{origins.RoundRobin, origins.LeastRequests, origins.Hash} {
		t.Run(bal, func(t *testing.T) {
			a, b, c := newBackend(t), newBackend(t), newBackend(t)
			p := newPool(t, origins.Options{Balance: bal}, a, b, c)
			for i := range 300 {
				ctx := origins.WithKey(context.Background(), fmt.Sprintf("key-%d", i))
				if _, err := get(ctx, p, "/x"); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range []*backend{a, b, c} {
				if n := s.hits.Load(); n < 50 {
					t.Errorf("server %d got %d of 300 requests", i, n)
				}
			}
		})
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	p, err := origins.New(origins.Options{Name: "w", Servers: []origins.Server{{URL: a.URL, Weight: 3}, {URL: b.URL, Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 400 {
		if _, err := get(context.Background(), p, "/"); err != nil {
			t.Fatal(err)
		}
	}
	if a.hits.Load() != 300 || b.hits.Load() != 100 {
		t.Fatalf("weights 3:1 gave %d:%d", a.hits.Load(), b.hits.Load())
	}
}

// A key goes to the same server every time, and removing a server moves
// only the keys it had.
func TestHashStable(t *testing.T) {
	bs := []*backend{newBackend(t), newBackend(t), newBackend(t)}
	owner := func(p *origins.Pool, key string, bs []*backend) int {
		before := make([]int64, len(bs))
		for i, b := range bs {
			before[i] = b.hits.Load()
		}
		if _, err := get(origins.WithKey(context.Background(), key), p, "/"); err != nil {
			t.Fatal(err)
		}
		for i, b := range bs {
			if b.hits.Load() != before[i] {
				return i
			}
		}
		t.Fatal("no server got the request")
		return -1
	}
	p3 := newPool(t, origins.Options{Balance: origins.Hash}, bs...)
	p2 := newPool(t, origins.Options{Balance: origins.Hash}, bs[0], bs[1])
	moved := 0
	for i := range 200 {
		k := fmt.Sprintf("k%d", i)
		o := owner(p3, k, bs)
		if again := owner(p3, k, bs); again != o {
			t.Fatalf("key %s went to %d then %d", k, o, again)
		}
		if o2 := owner(p2, k, bs[:2]); o2 != o {
			if o != 2 {
				t.Fatalf("key %s moved from %d to %d though server %d stayed", k, o, o2, o)
			}
			moved++
		}
	}
	if moved < 30 || moved > 110 {
		t.Fatalf("%d of 200 keys were on the removed server; want about a third", moved)
	}
}

// A dead server costs no failed request: connect failures go to another
// server, and the dead one is ejected.
func TestRetryConnectFailure(t *testing.T) {
	a, b, c := newBackend(t), newBackend(t), newBackend(t)
	p := newPool(t, origins.Options{Outlier: origins.Outlier{ConsecutiveFailures: 3, BaseEjectionTime: time.Minute}}, a, b, c)
	c.Close()
	for i := range 300 {
		if code, err := get(context.Background(), p, "/"); err != nil || code != 200 {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	st := p.Stats()
	if !st.Servers[2].Ejected || st.Servers[2].Ejections != 1 {
		t.Fatalf("dead server not ejected once: %+v", st.Servers[2])
	}
	if st.Servers[2].Requests > 10 {
		t.Fatalf("dead server was tried %d times after its ejection threshold of 3", st.Servers[2].Requests)
	}
	var retries uint64
	for _, s := range st.Servers {
		retries += s.Retries
	}
	if retries == 0 || retries != st.Servers[2].Requests {
		t.Fatalf("%d retries for %d failed attempts", retries, st.Servers[2].Requests)
	}
}

// With every server down the caller gets ErrUnavailable, not a hang.
func TestAllDown(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	p := newPool(t, origins.Options{}, a, b)
	a.Close()
	b.Close()
	_, err := get(context.Background(), p, "/")
	if !errors.Is(err, origins.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

// The retry budget bounds retries to a share of requests.
func TestRetryBudget(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	p := newPool(t, origins.Options{RetryBudget: 0.1, Outlier: origins.Outlier{ConsecutiveFailures: -1}}, a, b)
	a.Close()
	b.Close()
	for range 200 {
		_, _ = get(context.Background(), p, "/")
	}
	var reqs, retries uint64
	for _, s := range p.Stats().Servers {
		reqs += s.Requests
		retries += s.Retries
	}
	// 10 of burst + 10% of 200.
	if retries > 31 || retries < 20 {
		t.Fatalf("%d retries for 200 requests with a 10%% budget (%d attempts)", retries, reqs)
	}
}

// 5xx in a row eject a server; it comes back after the ejection time, and
// a second ejection lasts longer.
func TestOutlierEjection(t *testing.T) {
	a, b, c := newBackend(t), newBackend(t), newBackend(t)
	p := newPool(t, origins.Options{Outlier: origins.Outlier{ConsecutiveFailures: 3, BaseEjectionTime: 300 * time.Millisecond}}, a, b, c)
	c.status.Store(503)
	fails := 0
	for range 60 {
		if code, _ := get(context.Background(), p, "/"); code != 200 {
			fails++
		}
	}
	if fails != 3 {
		t.Fatalf("%d failed responses before the ejection; want the threshold, 3", fails)
	}
	if !p.Stats().Servers[2].Ejected {
		t.Fatal("not ejected")
	}
	c.status.Store(0)
	time.Sleep(400 * time.Millisecond)
	before := c.hits.Load()
	for range 30 {
		if code, err := get(context.Background(), p, "/"); code != 200 {
			t.Fatal(code, err)
		}
	}
	if c.hits.Load()-before < 5 {
		t.Fatalf("recovered server got %d of 30 requests", c.hits.Load()-before)
	}
}

// At most half the pool is ejected, whatever the servers answer.
func TestMaxEjected(t *testing.T) {
	a, b, c := newBackend(t), newBackend(t), newBackend(t)
	for _, s := range []*backend{a, b, c} {
		s.status.Store(500)
	}
	p := newPool(t, origins.Options{Outlier: origins.Outlier{ConsecutiveFailures: 1, MaxEjectedPercent: 50}}, a, b, c)
	for range 30 {
		_, _ = get(context.Background(), p, "/")
	}
	n := 0
	for _, s := range p.Stats().Servers {
		if s.Ejected {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d of 3 servers ejected with max_ejected_percent 50", n)
	}
}

// Active checks take a slow server out within the thresholds and bring it
// back once it answers.
func TestHealthCheck(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	p := newPool(t, origins.Options{Health: origins.Health{
		Path: "/health", Interval: 50 * time.Millisecond, Timeout: 100 * time.Millisecond,
		HealthyThreshold: 2, UnhealthyThreshold: 2,
	}}, a, b)
	b.delay.Store(int64(300 * time.Millisecond))
	waitFor(t, 3*time.Second, "slow server marked down", func() bool { return !p.Stats().Servers[1].Up })
	before := b.hits.Load()
	for range 20 {
		if _, err := get(context.Background(), p, "/"); err != nil {
			t.Fatal(err)
		}
	}
	// Only health checks reach b now (a few may be in its handler).
	if n := b.hits.Load() - before; n > 8 {
		t.Fatalf("down server got %d requests", n)
	}
	b.delay.Store(0)
	waitFor(t, 3*time.Second, "recovered server marked up", func() bool { return p.Stats().Servers[1].Up })
}

func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A capped pool never has more than its cap at the servers; past the
// queue, ErrOverloaded at once.
func TestMaxConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		queue     int
		wantAllOK bool
	}{
		{"queue holds all", 100, true},
		{"small queue refuses", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gauge{}
			a, b := newBackendIn(t, g), newBackendIn(t, g)
			a.delay.Store(int64(50 * time.Millisecond))
			b.delay.Store(int64(50 * time.Millisecond))
			const n = 4
			p := newPool(t, origins.Options{MaxConcurrent: n, MaxQueue: tc.queue, QueueTimeout: 10 * time.Second}, a, b)
			var wg sync.WaitGroup
			var ok, over atomic.Int64
			for i := range 10 * n {
				wg.Go(func() {
					code, err := get(context.Background(), p, fmt.Sprintf("/%d", i))
					switch {
					case errors.Is(err, origins.ErrOverloaded):
						over.Add(1)
					case err == nil && code == 200:
						ok.Add(1)
					default:
						t.Errorf("%d %v", code, err)
					}
				})
			}
			wg.Wait()
			if m := g.max.Load(); m > n || m < 2 {
				t.Fatalf("servers saw up to %d at once with a cap of %d", m, n)
			}
			if tc.wantAllOK && ok.Load() != 10*n {
				t.Fatalf("%d ok, %d overloaded; want all ok", ok.Load(), over.Load())
			}
			if !tc.wantAllOK && (over.Load() == 0 || ok.Load() < n) {
				t.Fatalf("%d ok, %d overloaded; want some of each", ok.Load(), over.Load())
			}
		})
	}
}

// With one of three servers out, the other two share its turns evenly.
func TestRoundRobinSkipsEvenly(t *testing.T) {
	a, b, c := newBackend(t), newBackend(t), newBackend(t)
	p := newPool(t, origins.Options{Outlier: origins.Outlier{ConsecutiveFailures: 1, BaseEjectionTime: time.Minute}}, a, b, c)
	c.Close()
	for range 300 {
		if _, err := get(context.Background(), p, "/"); err != nil {
			t.Fatal(err)
		}
	}
	if d := a.hits.Load() - b.hits.Load(); d > 10 || d < -10 {
		t.Fatalf("uneven share: %d and %d", a.hits.Load(), b.hits.Load())
	}
}

// Close stops every health checker: pools built and closed leave no
// goroutine behind.
func TestCloseStopsCheckers(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	before := runtime.NumGoroutine()
	for range 5 {
		p := newPool(t, origins.Options{Health: origins.Health{Path: "/h", Interval: 10 * time.Millisecond}}, a, b)
		if _, err := get(context.Background(), p, "/"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
		p.Close()
	}
	waitFor(t, 3*time.Second, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= before+4 // the backends' idle connections may linger
	})
}

// A connection closed before any response byte is retried on another
// server for an idempotent request, never for a POST; a response that
// began (here a 200 whose body is cut) is never retried.
func TestRetryOnlyBeforeResponse(t *testing.T) {
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close() // nothing written
		}
	}))
	t.Cleanup(hangUp.Close)
	var cutHits atomic.Int64
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cutHits.Add(1)
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "partial")
		_ = http.NewResponseController(w).Flush()
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	}))
	t.Cleanup(cut.Close)
	good := newBackend(t)
	for _, tc := range []struct {
		name      string
		first     string
		method    string
		wantOK    bool
		wantGood  int64
		wantCut   int64
		errOnBody bool
	}{
		{"GET after a hang-up goes to another server", hangUp.URL, http.MethodGet, true, 1, 0, false},
		{"POST after a hang-up is not retried", hangUp.URL, http.MethodPost, false, 0, 0, false},
		{"GET whose response began is not retried", cut.URL, http.MethodGet, true, 0, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g0, c0 := good.hits.Load(), cutHits.Load()
			p, err := origins.New(origins.Options{Name: "r", Servers: []origins.Server{{URL: tc.first}, {URL: good.URL}}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			// Round robin starts at the second server: take one turn so
			// that the request under test goes to the first.
			if _, err := get(context.Background(), p, "/warm"); err != nil {
				t.Fatal(err)
			}
			g0++
			req, _ := http.NewRequest(tc.method, "http://r/x", nil)
			resp, err := p.RoundTrip(req)
			if (err == nil) != tc.wantOK {
				t.Fatalf("err %v, want ok=%v", err, tc.wantOK)
			}
			if err == nil {
				_, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if (rerr != nil) != tc.errOnBody {
					t.Fatalf("body error %v", rerr)
				}
			}
			if g, c := good.hits.Load()-g0, cutHits.Load()-c0; g != tc.wantGood || c != tc.wantCut {
				t.Fatalf("good server got %d, cut server %d; want %d, %d", g, c, tc.wantGood, tc.wantCut)
			}
		})
	}
}
