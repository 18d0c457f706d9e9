package gateway_test

import (
	"context"
	"fmt"
	"github.com/edgecache/edgecache/internal/testutil"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/valkeytest"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/wasm"
)

// testOrigin is the scripted origin (testutil.Origin) with one answer
// for every path a test does not script: body(path) (default "body of
// "+path), the path's Cache-Control (default max-age=300; "" for none),
// and Set-Cookie, which tests about other things opt in to storing.
type testOrigin struct {
	*testutil.Origin
	body     func(path string) string // set before the first request
	mu       sync.Mutex
	cacheCtl map[string]string // path → Cache-Control
}

func newTestOrigin(t testing.TB) *testOrigin {
	o := &testOrigin{Origin: testutil.NewOrigin(t), cacheCtl: map[string]string{}}
	o.body = func(path string) string { return "body of " + path }
	o.Default(func(w http.ResponseWriter, r *http.Request, _ int) {
		o.mu.Lock()
		cc, ok := o.cacheCtl[r.URL.Path]
		o.mu.Unlock()
		if !ok {
			cc = "max-age=300"
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Set-Cookie", "session=secret")
		w.Header().Set("X-Origin-Method", r.Method)
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			_, _ = io.WriteString(w, o.body(r.URL.Path))
		}
	})
	return o
}

func (o *testOrigin) setCacheControl(path, cc string) {
	o.mu.Lock()
	o.cacheCtl[path] = cc
	o.mu.Unlock()
}

// testConfig is a config with one route to origin and the given shards.
func testConfig(origin string, servers []*valkeytest.Server) *config.Config {
	c := &config.Config{
		// The test origins send Set-Cookie with every response; tests
		// about other things opt in to storing it (the default is not to:
		// TestSetCookieNotStoredByDefault).
		Routes: []config.Route{{Name: "test", Origin: origin, DefaultTTL: time.Minute, CacheSetCookie: true}},
		// Generous for a loaded 2-core machine; a dead shard still fails fast
		// (connection refused), and TestShardDownFailsOpen bounds it.
		Valkey: config.Valkey{CommandTimeout: time.Second, DialTimeout: time.Second, BreakerCooldown: time.Second},
	}
	for i, s := range servers {
		c.Shards = append(c.Shards, config.Shard{Name: fmt.Sprintf("shard-%d", i), Addr: s.Addr})
	}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

// startGateway serves a gateway for cfg on a loopback listener.
func startGateway(t testing.TB, cfg *config.Config) (*gateway.Gateway, string) {
	t.Helper()
	return startGatewayWith(t, cfg, gateway.Options{})
}

func startGatewayWith(t testing.TB, cfg *config.Config, o gateway.Options) (*gateway.Gateway, string) {
	t.Helper()
	g, ln := newGatewayListenerWith(t, cfg, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		g.Close()
	})
	return g, "http://" + ln.Addr().String()
}

type result struct {
	status      int
	body        string
	cacheStatus string
	age         string
	header      http.Header
}

var client = &http.Client{Timeout: 10 * time.Second}

func do(t testing.TB, method, url string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return roundTripResult(t, req)
}

// getWith is a GET of url with the request fields kv (name, value pairs;
// a field whose value is empty is not sent).
func getWith(t testing.TB, url string, kv ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			req.Header.Set(kv[i], kv[i+1])
		}
	}
	return roundTripResult(t, req)
}

// roundTripResult sends req with the test client and reads the answer whole.
func roundTripResult(t testing.TB, req *http.Request) result {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, string(b), resp.Header.Get("Cache-Status"), resp.Header.Get("Age"), resp.Header}
}

func get(t testing.TB, url string) result { t.Helper(); return do(t, http.MethodGet, url) }

// keyOf is the built-in key of a GET to url through the gateway.
func keyOf(t testing.TB, rawURL string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, rawURL, nil)
	return string(policies.DefaultKey{}.AppendKey(nil, &policies.Request{
		Method: http.MethodGet, Scheme: "http", Host: strings.ToLower(req.Host),
		Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery,
	}))
}

func wantStatus(t testing.TB, r result, code int, cacheStatus string) {
	t.Helper()
	if r.status != code || r.cacheStatus != cacheStatus {
		t.Fatalf("got %d %q, want %d %q (body %q)", r.status, r.cacheStatus, code, cacheStatus, r.body)
	}
}

// wantL1 asks until the answer comes from the L1, allowing a few shard
// reads first: after this gateway's own fill, its L1 keeps the miss its
// lookup tracked until the fill's invalidation is read, and that arrives on
// the connection the lookup used, while the fill's SET went out on any of
// valkey-go's pipelined connections (its Do picks one at random), so the
// SET's reply can come first. A loaded machine (CI) shows it.
func wantL1(t testing.TB, do func() result) result {
	t.Helper()
	const tries = 4
	var r result
	for i := 0; i < tries; i++ {
		if r = do(); r.status == 200 && r.cacheStatus == hitL1 {
			return r
		}
		if r.status != 200 || r.cacheStatus != hitL2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("got %d %q, want 200 %q within %d requests (body %q)", r.status, r.cacheStatus, hitL1, tries, r.body)
	return r
}

func newGatewayListener(t testing.TB, cfg *config.Config) (*gateway.Gateway, net.Listener) {
	return newGatewayListenerWith(t, cfg, gateway.Options{})
}

func newGatewayListenerWith(t testing.TB, cfg *config.Config, o gateway.Options) (*gateway.Gateway, net.Listener) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Plugins == nil {
		o.Plugins = pluginHost(t, cfg, o.Logger)
	}
	g, err := gateway.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return g, ln
}

// pluginHost is the WASM host the gateway loads plugins with, as
// `edgecache serve` makes it; the gateway closes it.
func pluginHost(t testing.TB, cfg *config.Config, log *slog.Logger) *wasm.Host {
	t.Helper()
	h, err := wasm.NewHost(context.Background(), wasm.Options{CacheDir: cfg.WASM.CacheDir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string { return testutil.FreeAddr(t) }
