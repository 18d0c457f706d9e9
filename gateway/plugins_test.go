package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/telemetry"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/internal/valkeytest"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// pluginPath is a built example or test module of plugins/testdata.
func pluginPath(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "plugins", "testdata", rel)
}

// pluginConfig routes /k/ through the Go key plugin, /t/ through the C TTL
// plugin, /m/ through the AssemblyScript miss plugin, /r/ through the Rust
// TTL table and /bad/ through a plugin that loops forever.
func pluginConfig(t testing.TB, origin, fallback string, servers []*valkeytest.Server) *config.Config {
	cfg := testConfig(origin, servers)
	base := cfg.Routes[0]
	route := func(name, prefix string, plugins ...string) config.Route {
		r := base
		r.Name, r.PathPrefix, r.Plugins, r.DefaultTTL = name, prefix, plugins, 0
		return r
	}
	cfg.Routes = []config.Route{
		route("key", "/k/", "strip"),
		route("ttl", "/t/", "ttl"),
		route("miss", "/m/", "miss"),
		route("table", "/r/", "table"),
		route("bad", "/bad/", "loop"),
	}
	cfg.Routes[4].DefaultTTL = time.Minute
	cfg.Plugins = []config.Plugin{
		{Name: "strip", Path: pluginPath(t, "examples/go-stripparams.wasm"), Config: map[string]any{"drop": []any{"ref"}}, PoolSize: 2},
		{Name: "ttl", Path: pluginPath(t, "examples/c-ttlbystatus.wasm")},
		{Name: "miss", Path: pluginPath(t, "examples/assemblyscript-misspolicy.wasm"), Config: map[string]any{
			"fallback_origin": fallback, "fallback_prefixes": []any{"/m/legacy/"}, "deny_prefixes": []any{"/m/internal/"},
		}, AllowedOrigins: []string{fallback}}, // the plugin may redirect there, and nowhere else
		{Name: "table", Path: pluginPath(t, "examples/rust-pathttl.wasm"), Config: map[string]any{"/r/short/": "2s", "/r/none/": 0}},
		{Name: "loop", Path: pluginPath(t, "hostile/loop.wasm"), Timeout: 50 * time.Millisecond},
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPluginsEndToEnd(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	o := testutil.NewOrigin(t)
	fb := testutil.NewOrigin(t)
	for _, p := range []string{"/k/p", "/m/a", "/m/internal/x", "/r/short/x", "/r/none/x", "/r/other", "/bad/x"} {
		o.Handle(p, func(w http.ResponseWriter, r *http.Request, n int) {
			testutil.Reply(w, 200, "origin "+r.URL.Path+" policy="+r.Header.Get("X-Edge-Policy"), "Content-Type", "application/json")
		})
	}
	o.Handle("/t/json", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "{}", "Content-Type", "application/json")
	})
	o.Handle("/t/missing", func(w http.ResponseWriter, r *http.Request, n int) { testutil.Reply(w, 404, "no") })
	o.Handle("/t/err", func(w http.ResponseWriter, r *http.Request, n int) { testutil.Reply(w, 503, "down") })
	fb.Handle("/m/legacy/y", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "fallback", "Cache-Control", "max-age=60")
	})
	g, base := startGateway(t, pluginConfig(t, o.URL, fb.URL, servers))
	gen := g.Generation()
	pttl := func(rawURL string) int {
		key := keyOf(t, rawURL)
		for _, s := range servers {
			if v, err := s.Do("PTTL", key); err == nil && v != "-2" {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return -2
	}

	t.Run("go key plugin drops tracking parameters", func(t *testing.T) {
		wantCS(t, get(t, base+"/k/p?b=2&utm_source=news&a=1"), 200, "edgecache; fwd=uri-miss; detail=no-freshness", "")
		// No freshness from the origin on this route: give it one.
		o.Handle("/k/p", func(w http.ResponseWriter, r *http.Request, n int) {
			testutil.Reply(w, 200, "p", "Cache-Control", "max-age=60")
		})
		wantCS(t, get(t, base+"/k/p?a=1&b=2&fbclid=zz"), 200, stored, "p")
		r := get(t, base+"/k/p?ref=x&b=2&a=1&gclid=1")
		if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") || r.body != "p" {
			t.Fatalf("tracking parameters changed the key: %q", r.cacheStatus)
		}
		if st := gen.Plugin("strip").Stats(); st.Hooks[0].Calls == 0 || st.Timeouts+st.Traps != 0 {
			t.Fatalf("strip stats %+v", st)
		}
	})
	t.Run("c ttl plugin by status and type", func(t *testing.T) {
		wantCS(t, get(t, base+"/t/json"), 200, stored, "{}")
		if ms := pttl(base + "/t/json"); ms <= 0 || ms > (60+3600)*1000 {
			t.Fatalf("json PTTL %d, want 60s + 1h stale-if-error", ms)
		}
		wantCS(t, get(t, base+"/t/missing"), 404, stored, "no")
		r := get(t, base+"/t/err")
		if r.status != 503 || strings.Contains(r.cacheStatus, "stored") {
			t.Fatalf("5xx: %d %q", r.status, r.cacheStatus)
		}
		res, err := g.Purge(context.Background(), gateway.PurgeRequest{Tag: "status:404"})
		if err != nil || res.Keys != 1 {
			t.Fatalf("purge by the plugin's tag: %+v %v", res, err)
		}
	})
	t.Run("assemblyscript miss plugin", func(t *testing.T) {
		r := get(t, base+"/m/internal/x")
		if r.status != 403 || o.Count("/m/internal/x") != 0 {
			t.Fatalf("deny: %d, origin %d", r.status, o.Count("/m/internal/x"))
		}
		wantCS(t, get(t, base+"/m/legacy/y"), 200, stored, "fallback")
		if fb.Count("/m/legacy/y") != 1 {
			t.Fatal("fallback origin not used")
		}
		o.Handle("/m/a", func(w http.ResponseWriter, r *http.Request, n int) {
			testutil.Reply(w, 200, "policy="+r.Header.Get("X-Edge-Policy"), "Cache-Control", "max-age=60")
		})
		wantCS(t, get(t, base+"/m/a"), 200, stored, "policy=misspolicy")
	})
	t.Run("rust ttl table", func(t *testing.T) {
		wantCS(t, get(t, base+"/r/short/x"), 200, stored, "")
		if ms := pttl(base + "/r/short/x"); ms <= 0 || ms > 2000 {
			t.Fatalf("PTTL %d, want <= 2s", ms)
		}
		r := get(t, base+"/r/none/x")
		if strings.Contains(r.cacheStatus, "stored") {
			t.Fatalf("0 means do not store: %q", r.cacheStatus)
		}
	})
	t.Run("a looping plugin is contained", func(t *testing.T) {
		start := time.Now()
		for range 3 {
			r := get(t, base+"/bad/x")
			if r.status != 200 {
				t.Fatalf("%d %q", r.status, r.cacheStatus)
			}
		}
		st := gen.Plugin("loop").Stats()
		t.Logf("3 requests through a looping plugin in %v; faults: %d timeouts", time.Since(start).Round(time.Millisecond), st.Timeouts)
		if st.Timeouts == 0 {
			t.Fatal("no fault counted")
		}
	})
}

func TestPluginReloadUnderLoad(t *testing.T) {
	servers := valkeytest.Start(t, 2)
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, servers)
	cfg.Plugins = []config.Plugin{{Name: "strip", Path: pluginPath(t, "examples/go-stripparams.wasm"), PoolSize: 2}}
	cfg.Routes[0].Plugins = []string{"strip"}
	g, base := startGateway(t, cfg)
	stop := make(chan struct{})
	l := startLoad(t, base, 4, 100, stop)
	for i := range 5 {
		time.Sleep(500 * time.Millisecond)
		next := *cfg
		next.Plugins = []config.Plugin{{Name: "strip", Path: cfg.Plugins[0].Path, PoolSize: 2, Config: map[string]any{"drop": []any{"v" + strconv.Itoa(i)}}}}
		if err := g.Reload(&next, "test"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	l.wg.Wait()
	t.Logf("plugin reloaded 5 times under load: %d ok, %d failed", l.ok.Load(), l.failed.Load())
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed; first: %s", l.failed.Load(), l.firstErr)
	}
}

func TestBadPluginRejectsConfig(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	g, _ := startGateway(t, cfg)
	for _, mod := range []string{"hostile/wrongabi.wasm", "hostile/noabi.wasm", "hostile/initloop.wasm"} {
		next := *cfg
		next.Plugins = []config.Plugin{{Name: "x", Path: pluginPath(t, mod), InitTimeout: 200 * time.Millisecond}}
		next.Routes = append([]config.Route(nil), cfg.Routes...)
		next.Routes[0].Plugins = []string{"x"}
		if err := g.Reload(&next, "test"); err == nil {
			t.Fatalf("%s accepted", mod)
		} else {
			t.Logf("%s: %v", mod, err)
		}
	}
}

func TestPluginCallDurationsExported(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Plugins = []config.Plugin{{Name: "strip", Path: pluginPath(t, "examples/go-stripparams.wasm"), MemoEntries: -1}}
	cfg.Routes[0].Plugins = []string{"strip"}
	g, base := startGatewayWith(t, cfg, gateway.Options{})
	for i := range 3 {
		get(t, base+"/p?utm_source="+strconv.Itoa(i))
	}
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	adminHandler(t, g).ServeHTTP(w, req)
	line := ""
	for _, l := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(l, `edgecache_plugin_call_duration_seconds_count{hook="key",plugin="strip"}`) {
			line = l
		}
	}
	// Memo off: every request is a guest call.
	if f := strings.Fields(line); len(f) != 2 || f[1] != "3" {
		t.Fatalf("key hook call count line %q, want 3 calls", line)
	}
}

func TestPluginHookSpanEvents(t *testing.T) {
	origin := newTestOrigin(t)
	exp := tracetest.NewInMemoryExporter()
	tracing := telemetry.NewTracingWith(exp, nil, 1, true)
	t.Cleanup(func() { _ = tracing.Shutdown(t.Context()) })
	cfg := testConfig(origin.URL, nil)
	cfg.Plugins = []config.Plugin{{Name: "strip", Path: pluginPath(t, "examples/go-stripparams.wasm")}}
	cfg.Routes[0].Plugins = []string{"strip"}
	_, base := startGatewayWith(t, cfg, gateway.Options{Tracing: tracing})
	get(t, base+"/ev?utm_source=x") // a miss: key, miss and response hooks
	if err := tracing.Provider.(interface{ ForceFlush(context.Context) error }).ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	seen := map[string][]string{}
	for _, sp := range exp.GetSpans() {
		for _, ev := range sp.Events {
			for _, a := range ev.Attributes {
				if a.Key == "edgecache.plugins" {
					seen[ev.Name] = a.Value.AsStringSlice()
				}
			}
		}
	}
	for _, name := range []string{"edgecache.plugin.key", "edgecache.plugin.miss", "edgecache.plugin.response"} {
		if p := seen[name]; len(p) != 1 || p[0] != "strip" {
			t.Errorf("event %s: plugins %v, want [strip] (events seen: %v)", name, p, seen)
		}
	}
}
