package gateway_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/admin"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/internal/valkeytest"
	"github.com/edgecache/edgecache/wasm"
)

const testToken = "test-admin-token-0123456789"

// scrape reads the admin listener's /metrics with the token and parses
// the Prometheus text format.
func scrape(t testing.TB, api string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the value of the series of family name whose labels
// include want (counter, gauge, or a histogram's sample count); ok is
// false if there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func wantValue(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(fams, name, labels)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// sumOf sums every series of family name whose labels include want.
func sumOf(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var n float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		for _, lp := range m.GetLabel() {
			if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			n += m.GetCounter().GetValue()
		case m.Gauge != nil:
			n += m.GetGauge().GetValue()
		case m.Histogram != nil:
			n += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return n
}

// tally counts responses by what their Cache-Status says.
type tally struct{ miss, l1, l2, bypass int }

func (c *tally) add(t testing.TB, r result) string {
	t.Helper()
	switch r.cacheStatus {
	case "edgecache; fwd=uri-miss; stored":
		c.miss++
		return "miss"
	case hitL1:
		c.l1++
		return "l1"
	case hitL2:
		c.l2++
		return "l2"
	case "edgecache; fwd=bypass":
		c.bypass++
		return "bypass"
	}
	t.Fatalf("unexpected Cache-Status %q", r.cacheStatus)
	return ""
}

// TestMetricsAfterKnownTraffic drives misses, L2 hits, L1 hits, a bypass
// and a coalesced miss through real shards, then scrapes the admin
// listener and checks that the counts are exactly what the client saw.
// (Which tier answers right after a store is timing: the L1 caches the
// miss until Valkey's invalidation of the SET arrives, so the test
// counts responses instead of assuming a sequence.)
func TestMetricsAfterKnownTraffic(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, servers)
	g, base := startGatewayWith(t, cfg, gateway.Options{})
	api := startAdmin(t, g)

	var c tally
	// /a until an L1 hit, /b until an L2 hit.
	for _, p := range []struct{ path, until string }{{"/a", "l1"}, {"/b", "l2"}} {
		for i := 0; ; i++ {
			if c.add(t, get(t, base+p.path)) == p.until {
				break
			}
			if i == 100 {
				t.Fatalf("%s: no %s hit in 100 requests", p.path, p.until)
			}
		}
	}
	if c.miss < 2 || c.l2 < 1 || c.l1 < 1 {
		t.Fatalf("responses %+v", c)
	}
	// A POST is proxied.
	c.add(t, do(t, http.MethodPost, base+"/a"))
	// Five concurrent misses on a slow key: one fetches, the others wait.
	origin.SetDelay(300 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := get(t, base+"/slow")
			mu.Lock()
			c.add(t, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	fetches := origin.Count("/slow")
	if fetches > 2 {
		t.Fatalf("/slow reached the origin %d times for 5 concurrent requests", fetches)
	}
	stores := origin.Count("/a") - 1 + origin.Count("/b") + fetches // the POST stores nothing

	fams := scrape(t, api)
	req := func(method, code, cache string) map[string]string {
		return map[string]string{"route": "test", "method": method, "code": code, "cache": cache}
	}
	total := c.miss + c.l1 + c.l2 + c.bypass
	t.Logf("responses: %+v; origin fetches of /slow: %d", c, fetches)
	wantValue(t, fams, "edgecache_requests_total", req("GET", "200", "miss"), float64(c.miss))
	wantValue(t, fams, "edgecache_requests_total", req("GET", "200", "hit"), float64(c.l1+c.l2))
	wantValue(t, fams, "edgecache_requests_total", req("POST", "200", "bypass"), 1)
	if n := sumOf(fams, "edgecache_requests_total", nil); n != float64(total) {
		t.Errorf("requests in all: %v, want %d", n, total)
	}
	wantValue(t, fams, "edgecache_cache_hits_total", map[string]string{"tier": "l1"}, float64(c.l1))
	wantValue(t, fams, "edgecache_cache_hits_total", map[string]string{"tier": "l2"}, float64(c.l2))
	wantValue(t, fams, "edgecache_coalesced_waiters_total", nil, float64(5-fetches))
	wantValue(t, fams, "edgecache_origin_request_duration_seconds", map[string]string{"route": "test"}, float64(stores))
	wantValue(t, fams, "edgecache_generation", nil, 1)
	wantValue(t, fams, "edgecache_embedded_store_bytes", nil, 0)

	// Every fetch stored once, on the key's owner.
	if n := sumOf(fams, "edgecache_shard_command_duration_seconds", map[string]string{"command": "set"}); n != float64(stores) {
		t.Errorf("set round trips: %v, want %d", n, stores)
	}
	// L1 hits make no round trip; every L2 hit made one, and so did the
	// first lookup of each key (concurrent misses share theirs, and the L1
	// may answer a miss too).
	if n := sumOf(fams, "edgecache_shard_command_duration_seconds", map[string]string{"command": "get"}); n < float64(c.l2+3) {
		t.Errorf("get round trips: %v, want at least %d", n, c.l2+3)
	}
	wantValue(t, fams, "edgecache_shard_errors_total", map[string]string{}, 0)
	var share float64
	for i := range 3 {
		s := map[string]string{"shard": "shard-" + string(rune('0'+i))}
		wantValue(t, fams, "edgecache_shard_circuit_open", s, 0)
		wantValue(t, fams, "edgecache_shard_up", s, 1)
		v, _ := value(fams, "edgecache_shard_key_share", s)
		share += v
	}
	if share < 0.999 || share > 1.001 {
		t.Errorf("key shares sum to %v, want 1", share)
	}
	wantValue(t, fams, "edgecache_reloads_total", map[string]string{"result": "ok"}, 0)
	wantValue(t, fams, "edgecache_config_last_reload_successful", nil, 1)

	// A reload that adds a shard nobody listens on is rejected; a good one
	// publishes generation 2.
	bad := testConfig(origin.URL, servers)
	bad.Shards = append(bad.Shards, config.Shard{Name: "nowhere", Addr: freeAddr(t), Weight: 1})
	if err := g.Reload(bad, "test"); err == nil {
		t.Fatal("reload with an unreachable shard: want an error")
	}
	fams = scrape(t, api)
	wantValue(t, fams, "edgecache_reloads_total", map[string]string{"result": "error"}, 1)
	wantValue(t, fams, "edgecache_config_last_reload_successful", nil, 0)
	if err := g.Reload(testConfig(origin.URL, servers), "test"); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, api)
	wantValue(t, fams, "edgecache_reloads_total", map[string]string{"result": "ok"}, 1)
	wantValue(t, fams, "edgecache_config_last_reload_successful", nil, 1)
	wantValue(t, fams, "edgecache_generation", nil, 3) // generation 2 was the rejected one

	// The label values come from the configuration and closed sets only.
	for _, name := range []string{"edgecache_requests_total", "edgecache_shard_command_duration_seconds"} {
		for _, m := range fams[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "/") {
					t.Errorf("%s has a path-like label %s=%q", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

// TestMetricsEmbeddedStore checks the embedded store's gauges and that a
// request no route serves is counted under route "none".
func TestMetricsEmbeddedStore(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Routes[0].Host = "only.example"
	g, base := startGatewayWith(t, cfg, gateway.Options{})
	api := startAdmin(t, g)

	req, _ := http.NewRequest(http.MethodGet, base+"/x", nil)
	req.Host = "only.example"
	for range 2 {
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if r := get(t, base+"/elsewhere"); r.status != http.StatusNotFound {
		t.Fatalf("no route: %d", r.status)
	}
	fams := scrape(t, api)
	wantValue(t, fams, "edgecache_requests_total", map[string]string{"route": "test", "cache": "miss"}, 1)
	wantValue(t, fams, "edgecache_requests_total", map[string]string{"route": "test", "cache": "hit"}, 1)
	wantValue(t, fams, "edgecache_requests_total", map[string]string{"route": "none", "cache": "no-route", "code": "404"}, 1)
	wantValue(t, fams, "edgecache_cache_hits_total", map[string]string{"tier": "l1"}, 1)
	if v, _ := value(fams, "edgecache_embedded_store_bytes", nil); v <= 0 {
		t.Errorf("embedded store bytes %v, want > 0", v)
	}
	wantValue(t, fams, "edgecache_embedded_store_max_bytes", nil, float64(config.DefaultEmbeddedMaxBytes))
	if _, ok := fams["edgecache_shard_circuit_open"]; ok {
		t.Error("shard gauges exported without shards")
	}
	var names []string
	for n := range fams {
		if strings.HasPrefix(n, "edgecache_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	t.Logf("exported: %s", strings.Join(names, " "))
}

// TestPluginMetrics runs a real plugin whose key hook never returns: every
// call times out, counts a fault, and the request is served with the
// built-in key. The faults show on /metrics and in the status.
func TestPluginMetrics(t *testing.T) {
	mod, err := filepath.Abs("../plugins/testdata/hostile/loop.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mod); err != nil {
		testutil.Missing(t, "no test plugin (make test builds it): %v", err)
	}
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Plugins = []config.Plugin{{Name: "looper", Path: mod, Timeout: 20 * time.Millisecond, PoolSize: 1}}
	cfg.Routes[0].Plugins = []string{"looper"}
	g, base := startGatewayWith(t, cfg, gateway.Options{})
	api := startAdmin(t, g)
	wantStatus(t, get(t, base+"/p"), 200, "edgecache; fwd=uri-miss; stored")
	wantStatus(t, get(t, base+"/p"), 200, hitL1)

	fams := scrape(t, api)
	faults, _ := value(fams, "edgecache_plugin_faults_total", map[string]string{"plugin": "looper", "hook": "key"})
	calls, _ := value(fams, "edgecache_plugin_calls_total", map[string]string{"plugin": "looper", "hook": "key"})
	if faults < 2 || calls != faults {
		t.Errorf("key hook: %v calls, %v faults; want every call (at least 2) a fault", calls, faults)
	}
	wantValue(t, fams, "edgecache_plugin_fault_kinds_total", map[string]string{"plugin": "looper", "kind": "timeout"}, faults)
	wantValue(t, fams, "edgecache_plugin_faults_total", map[string]string{"plugin": "looper", "hook": "response"}, 0)
	st := admin.StatusOf(g)
	if len(st.Plugins) != 1 || st.Plugins[0].Name != "looper" || st.Plugins[0].Faults["key"] != uint64(faults) {
		t.Errorf("status plugins %+v", st.Plugins)
	}
}

// TestPluginDeclinesAndSuspensions: a key hook that declines (keyparts
// without X-Device) counts declines, not faults; a key hook that loops is
// suspended after wasm.BreakerFaults consecutive faults, and the calls
// refused meanwhile are counted. Both show on /metrics and in the admin
// status.
func TestPluginDeclinesAndSuspensions(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	bad := cfg.Routes[0]
	bad.Name, bad.PathPrefix, bad.Plugins = "bad", "/bad/", []string{"looper"}
	cfg.Routes[0].Plugins = []string{"parts"}
	cfg.Routes = append(cfg.Routes, bad)
	cfg.Plugins = []config.Plugin{
		{Name: "parts", Path: pluginPath(t, "wat/keyparts.wasm"), MemoEntries: -1, PoolSize: 1},
		{Name: "looper", Path: pluginPath(t, "hostile/loop.wasm"), Timeout: 20 * time.Millisecond, PoolSize: 1},
	}
	g, base := startGatewayWith(t, cfg, gateway.Options{})
	api := startAdmin(t, g)
	const declines = 3
	for i := range declines {
		wantStatus(t, get(t, fmt.Sprintf("%s/p%d", base, i)), 200, "edgecache; fwd=uri-miss; stored")
	}
	const badCalls = wasm.BreakerFaults + 3
	for i := range badCalls {
		if r := get(t, fmt.Sprintf("%s/bad/%d", base, i)); r.status != 200 {
			t.Fatalf("/bad/%d: %d, want 200 with the built-in key", i, r.status)
		}
	}

	fams := scrape(t, api)
	wantValue(t, fams, "edgecache_plugin_declined_total", map[string]string{"plugin": "parts", "hook": "key"}, declines)
	wantValue(t, fams, "edgecache_plugin_faults_total", map[string]string{"plugin": "parts", "hook": "key"}, 0)
	wantValue(t, fams, "edgecache_plugin_declined_total", map[string]string{"plugin": "looper", "hook": "key"}, 0)
	susp, _ := value(fams, "edgecache_plugin_suspensions_total", map[string]string{"plugin": "looper"})
	refused, _ := value(fams, "edgecache_plugin_suspended_calls_total", map[string]string{"plugin": "looper"})
	if susp < 1 || refused < 1 {
		t.Errorf("looper: %v suspensions, %v refused calls; want at least 1 of each after %d calls", susp, refused, badCalls)
	}
	created, _ := value(fams, "edgecache_plugin_instances_created_total", map[string]string{"plugin": "parts"})
	if created != 1 {
		t.Errorf("parts: %v instances created, want 1 (pool of 1, no fault)", created)
	}
	st := admin.StatusOf(g)
	byName := map[string]admin.PluginStatus{}
	for _, p := range st.Plugins {
		byName[p.Name] = p
	}
	if p := byName["parts"]; p.Declined["key"] != declines || p.Faults["key"] != 0 {
		t.Errorf("status of parts %+v, want %d declined key calls", p, declines)
	}
	if p := byName["looper"]; p.Suspensions != uint64(susp) || p.SuspendedCalls != uint64(refused) || p.Suspensions == 0 {
		t.Errorf("status of looper %+v, want %v suspensions and %v refused calls as on /metrics", p, susp, refused)
	}
	// The admin API's JSON and the status page show them too.
	code, body, _ := testutil.Do(t, nil, "GET", api+"/admin/status", testToken, "")
	if code != 200 || !strings.Contains(body, `"declined":{"init":0,"key":3,"miss":0,"response":0}`) || !strings.Contains(body, `"suspensions":`) {
		t.Errorf("/admin/status: %d %s", code, body)
	}
	code, page, _ := testutil.Do(t, nil, "GET", api+"/admin/", testToken, "")
	want := fmt.Sprintf(`<tr><td>parts</td><td class="num">%d</td><td class="num">%d</td>`, byName["parts"].Calls["key"], declines)
	if code != 200 || !strings.Contains(page, "<th class=\"num\">declined</th>") || !strings.Contains(page, want) ||
		!strings.Contains(page, fmt.Sprintf(`<span class="bad">%d</span></td><td class="num">`, byName["looper"].Suspensions)) {
		t.Errorf("status page (%d) lacks the declines (%s) or the suspensions:\n%s", code, want, page)
	}
}
