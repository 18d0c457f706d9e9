package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/internal/metrics"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/wasm"
)

var outcomes = []string{"hit", "miss"}

func gather(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func series(f *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		var ls []string
		for _, lp := range m.GetLabel() {
			ls = append(ls, lp.GetName()+"="+lp.GetValue())
		}
		k := strings.Join(ls, ",")
		switch {
		case m.Counter != nil:
			out[k] = m.GetCounter().GetValue()
		case m.Gauge != nil:
			out[k] = m.GetGauge().GetValue()
		case m.Histogram != nil:
			out[k] = float64(m.GetHistogram().GetSampleCount())
		}
	}
	return out
}

func TestRouteCounters(t *testing.T) {
	m := metrics.New()
	rc := m.Route("api", outcomes)
	if m.Route("api", outcomes) != rc {
		t.Fatal("Route is not memoized by name")
	}
	rc.Inc("GET", 0, 200)
	rc.Inc("GET", 0, 200)
	rc.Inc("BREW", 1, 418) // an unknown method is _OTHER
	rc.Prepare("HEAD", 1, 200)
	got := series(gather(t, m)["edgecache_requests_total"])
	want := map[string]float64{
		"cache=hit,code=200,method=GET,route=api":     2,
		"cache=miss,code=418,method=_OTHER,route=api": 1,
		"cache=miss,code=200,method=HEAD,route=api":   0,
	}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { rc.Inc("GET", 0, 200) }); n != 0 {
		t.Errorf("Inc allocates %v times per call", n)
	}
}

func TestShards(t *testing.T) {
	m := metrics.New()
	s := m.Shards()
	s.Command("a", "get", time.Millisecond, nil)
	s.Command("a", "get", time.Millisecond, errors.New("boom"))
	s.Command("b", "set", time.Millisecond, nil)
	f := gather(t, m)
	if got := series(f["edgecache_shard_command_duration_seconds"]); got["command=get,shard=a"] != 2 || got["command=set,shard=b"] != 1 {
		t.Errorf("durations %v", got)
	}
	if got := series(f["edgecache_shard_errors_total"]); got["shard=a"] != 1 || got["shard=b"] != 0 {
		t.Errorf("errors %v", got)
	}
	if n := testing.AllocsPerRun(1000, func() { s.Command("a", "get", time.Millisecond, nil) }); n != 0 {
		t.Errorf("Command allocates %v times per call", n)
	}
}

// TestStateWithRealPlugin exports the counters of a real WASM plugin, one
// whose key hook loops until the host's timeout stops it, at scrape time.
func TestStateWithRealPlugin(t *testing.T) {
	mod, err := os.ReadFile("../../plugins/testdata/hostile/loop.wasm")
	if err != nil {
		testutil.Missing(t, "no test plugin (make test builds it): %v", err)
	}
	ctx := context.Background()
	h, err := wasm.NewHost(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	p, err := h.Load(ctx, mod, hook.PluginOptions{Name: "looper", PoolSize: 1, Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for range 2 {
		if _, _, err := p.AppendKey(nil, &hook.Request{Method: "GET", Scheme: "https", Host: "x", Path: "/", Header: http.Header{}}); err == nil {
			t.Fatal("a looping key hook returned")
		}
	}
	m := metrics.New()
	m.WatchState(func() metrics.State {
		return metrics.State{
			Generation: 7,
			Shards:     []metrics.ShardState{{Name: "s0", Up: true, Share: .25, L1: true}, {Name: "s1", Open: true, Share: .75}},
			Plugins:    []metrics.PluginState{{Name: p.Name(), Stats: p.Stats()}},
		}
	})
	f := gather(t, m)
	checks := []struct {
		family, series string
		want           float64
	}{
		{"edgecache_generation", "", 7},
		{"edgecache_shard_circuit_open", "shard=s1", 1},
		{"edgecache_shard_circuit_open", "shard=s0", 0},
		{"edgecache_shard_up", "shard=s0", 1},
		{"edgecache_shard_key_share", "shard=s1", .75},
		{"edgecache_shard_l1_enabled", "shard=s0", 1},
		{"edgecache_shard_l1_enabled", "shard=s1", 0},
		{"edgecache_plugin_faults_total", "hook=key,plugin=looper", 2},
		{"edgecache_plugin_faults_total", "hook=response,plugin=looper", 0},
		{"edgecache_plugin_calls_total", "hook=key,plugin=looper", 2},
		{"edgecache_plugin_fault_kinds_total", "kind=timeout,plugin=looper", 2},
		{"edgecache_embedded_store_bytes", "", 0},
	}
	for _, c := range checks {
		fam := f[c.family]
		if fam == nil {
			t.Errorf("%s: missing", c.family)
			continue
		}
		if got, ok := series(fam)[c.series]; !ok || got != c.want {
			t.Errorf("%s{%s} = %v (%v), want %v", c.family, c.series, got, ok, c.want)
		}
	}
}

func TestReload(t *testing.T) {
	m := metrics.New()
	m.Reload(errors.New("bad"))
	m.Reload(nil)
	m.Reload(errors.New("bad"))
	f := gather(t, m)
	if got := series(f["edgecache_reloads_total"]); got["result=ok"] != 1 || got["result=error"] != 2 {
		t.Errorf("reloads %v", got)
	}
	if got := series(f["edgecache_config_last_reload_successful"]); got[""] != 0 {
		t.Errorf("last reload successful %v", got)
	}
}
