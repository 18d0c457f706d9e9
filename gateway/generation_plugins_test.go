package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/admin"
)

// TestPluginPoolsFullAfterReload: at startup a plugin's pool grows in the
// background after its first instance (WaitFull asks for all of it); a
// reload publishes its generation only once the pools of the plugins it
// swapped are full.
func TestPluginPoolsFullAfterReload(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	// Go instances take ~10 ms each: a pool filled in the background is
	// seen short right after Reload.
	cfg.Plugins = []config.Plugin{
		{Name: "strip", Path: pluginPath(t, "examples/go-stripparams.wasm"), PoolSize: 4},
		{Name: "ttl", Path: pluginPath(t, "examples/c-ttlbystatus.wasm"), PoolSize: 4},
	}
	cfg.Routes[0].Plugins = []string{"strip", "ttl"}
	g, _ := startGateway(t, cfg)
	for _, name := range []string{"strip", "ttl"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := g.Generation().Plugin(name).WaitFull(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s at startup: %v", name, err)
		}
	}
	for i := range 3 {
		next := *cfg
		next.Plugins = append([]config.Plugin(nil), cfg.Plugins...)
		next.Plugins[0].Config = map[string]any{"drop": []any{"v" + string(rune('0'+i))}}
		if err := g.Reload(&next, "test"); err != nil {
			t.Fatal(err)
		}
		// strip changed: its new pool must be full when published. ttl
		// did not: it is the same plugin, whose pool may have shrunk
		// meanwhile (wasm.DefaultIdleTimeout; elastic pools).
		if s := g.Generation().Plugin("strip").Stats(); s.Instances != 4 {
			t.Errorf("reload %d: strip published with %d instances, want 4", i, s.Instances)
		}
	}
}

// TestPluginLoadErrorNamesFirstFailing: plugins load side by side; the
// configuration is rejected with the error of the first plugin that failed,
// in configuration order, and the generation serving stays.
func TestPluginLoadErrorNamesFirstFailing(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	g, base := startGateway(t, cfg)
	next := *cfg
	next.Plugins = []config.Plugin{
		{Name: "ttl", Path: pluginPath(t, "examples/c-ttlbystatus.wasm")},
		{Name: "loops", Path: pluginPath(t, "hostile/initloop.wasm"), InitTimeout: 300 * time.Millisecond},
		{Name: "table", Path: pluginPath(t, "examples/rust-pathttl.wasm")},
		{Name: "noabi", Path: pluginPath(t, "hostile/noabi.wasm")}, // fails first, in time
	}
	err := g.Reload(&next, "test")
	if err == nil || !strings.Contains(err.Error(), "plugins[1] (loops)") {
		t.Fatalf("reload: %v, want the error of plugins[1]", err)
	}
	if g.Generation().Config != cfg {
		t.Fatal("a rejected configuration was published")
	}
	get(t, base+"/after")
}

// TestUnchangedPluginsReusedAcrossReload: under load, reloads that change
// no plugin (only a route's default_ttl) keep every plugin as it is — the
// same plugin, no instance created (PluginStatus.InstancesCreated) — and a
// reload that changes one plugin's config swaps that one only. No request
// fails.
func TestUnchangedPluginsReusedAcrossReload(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	// Recycling after MaxCallsPerInstance would create instances for a
	// reason of its own: out of this test's reach.
	cfg.Plugins = []config.Plugin{
		{Name: "strip", Path: pluginPath(t, "examples/go-stripparams.wasm"), PoolSize: 2, MaxCallsPerInstance: 1 << 30},
		{Name: "ttl", Path: pluginPath(t, "examples/c-ttlbystatus.wasm"), PoolSize: 2, MaxCallsPerInstance: 1 << 30},
	}
	cfg.Routes[0].Plugins = []string{"strip", "ttl"}
	g, base := startGateway(t, cfg)
	for _, name := range []string{"strip", "ttl"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := g.Generation().Plugin(name).WaitFull(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	created := func() map[string]uint64 {
		out := map[string]uint64{}
		for _, p := range admin.StatusOf(g).Plugins {
			out[p.Name] = p.InstancesCreated
		}
		return out
	}
	before := created()
	strip, ttl := g.Generation().Plugin("strip"), g.Generation().Plugin("ttl")

	stop := make(chan struct{})
	l := startLoad(t, base, 4, 50, stop)
	for i := range 3 {
		time.Sleep(200 * time.Millisecond)
		next := *cfg
		next.Routes = append([]config.Route(nil), cfg.Routes...)
		next.Routes[0].DefaultTTL = time.Duration(i+1) * time.Minute
		if err := g.Reload(&next, "test"); err != nil {
			t.Fatal(err)
		}
		if g.Generation().Plugin("strip") != strip || g.Generation().Plugin("ttl") != ttl {
			t.Fatalf("reload %d without plugin changes replaced a plugin", i)
		}
	}
	if after := created(); after["strip"] != before["strip"] || after["ttl"] != before["ttl"] {
		t.Errorf("instances created: %v before the reloads, %v after; want no new one", before, after)
	}

	// A changed config swaps that plugin, and only that one.
	next := *cfg
	next.Plugins = append([]config.Plugin(nil), cfg.Plugins...)
	next.Plugins[0].Config = map[string]any{"drop": []any{"ref"}}
	if err := g.Reload(&next, "test"); err != nil {
		t.Fatal(err)
	}
	if g.Generation().Plugin("strip") == strip {
		t.Error("a plugin with a changed config was not swapped")
	}
	if g.Generation().Plugin("ttl") != ttl {
		t.Error("an unchanged plugin was replaced along with a changed one")
	}
	if s := g.Generation().Plugin("strip").Stats(); s.Instances != 2 || s.Instantiated != 2 {
		t.Errorf("swapped plugin: %d live, %d created; want a new full pool of 2", s.Instances, s.Instantiated)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	l.wg.Wait()
	t.Logf("4 reloads under load: %d ok, %d failed; instances created %v → %v", l.ok.Load(), l.failed.Load(), before, created())
	if l.ok.Load() == 0 || l.failed.Load() != 0 {
		t.Fatalf("%d ok, %d failed; first: %s", l.ok.Load(), l.failed.Load(), l.firstErr)
	}
	// The old strip is closed once its calls finish: its calls fall back.
	deadline := time.Now().Add(5 * time.Second)
	for strip.Stats().Instances != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strip.Stats().Instances; n != 0 {
		t.Errorf("the replaced plugin still has %d instances", n)
	}
}
