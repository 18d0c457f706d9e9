package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
)

// TestPluginPoolsFullAfterReload: at startup a plugin's pool fills in the
// background after its first instance; a reload publishes its generation
// only once every pool is full, as the generation it replaces had them.
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
		for _, name := range []string{"strip", "ttl"} {
			if s := g.Generation().Plugin(name).Stats(); s.Instances != 4 {
				t.Errorf("reload %d: %s published with %d instances, want 4", i, name, s.Instances)
			}
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
