package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edgecache.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `
server:
  listen: 127.0.0.1:8080
routes:
  - name: products
    path_prefix: /products/
    origin: http://127.0.0.1:9000
    default_ttl: 5m
shards:
  - { name: a, addr: 127.0.0.1:7001 }
  - { name: b, addr: 127.0.0.1:7002, weight: 2 }
valkey:
  command_timeout: 250ms
`

func TestLoadGood(t *testing.T) {
	c, err := Load(writeFile(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.IdleRelease != DefaultIdleRelease {
		t.Errorf("server.idle_release %v, want the default %v", c.Server.IdleRelease, DefaultIdleRelease)
	}
	if c.Routes[0].DefaultTTL != 5*time.Minute || c.Valkey.CommandTimeout != 250*time.Millisecond {
		t.Fatalf("durations: %+v", c)
	}
	if c.Shards[0].Weight != 1 || c.Shards[1].Weight != 2 {
		t.Fatalf("weights: %+v", c.Shards)
	}
	if withMethods, err := Load(writeFile(t, strings.Replace(good, "default_ttl: 5m", "default_ttl: 5m\n    methods: [GET, POST]", 1))); err != nil || len(withMethods.Routes[0].Methods) != 2 {
		t.Fatalf("methods [GET, POST]: %v", err)
	}
	if c.Valkey.DialTimeout != DefaultDialTimeout || c.Routes[0].MaxBodyBytes != DefaultMaxBodyBytes {
		t.Fatalf("defaults not filled: %+v", c)
	}
}

func TestLoadBad(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // each must appear in the error
	}{
		{"missing port", strings.Replace(good, "127.0.0.1:7002", "127.0.0.1", 1), []string{"shards[1].addr: missing port"}},
		{"unknown field", good + "\nshardz: []\n", []string{"shardz"}},
		{"unknown nested field", strings.Replace(good, "weight: 2", "wieght: 2", 1), []string{"wieght"}},
		{"bad yaml", "routes: [\n", []string{"yaml"}},
		{"no routes", "shards: []\n", []string{"routes: at least one route is required"}},
		{"bad origin", strings.Replace(good, "http://127.0.0.1:9000", "127.0.0.1:9000", 1), []string{"routes[0].origin: want an absolute http(s) URL"}},
		{"duplicate shard", strings.Replace(good, "name: b", "name: a", 1), []string{`shards[1].name: duplicate shard name "a"`}},
		{"bad duration", strings.Replace(good, "250ms", "fast", 1), []string{"command_timeout"}},
		{"idle release too short", strings.Replace(good, "listen: 127.0.0.1:8080", "listen: 127.0.0.1:8080\n  idle_release: 10ms", 1), []string{"server.idle_release: at least 100ms"}},
		{"l1 min uses out of range", strings.Replace(good, "command_timeout: 250ms", "command_timeout: 250ms\n  l1_min_uses: 3", 1), []string{"valkey.l1_min_uses: 1 (the L1 keeps a key from its first lookup) or 2"}},
		{"flush delay too long", strings.Replace(good, "command_timeout: 250ms", "command_timeout: 250ms\n  max_flush_delay: 50ms", 1), []string{"valkey.max_flush_delay: at most 10ms"}},
		{"lower-case method", strings.Replace(good, "default_ttl: 5m", "default_ttl: 5m\n    methods: [GET, post]", 1), []string{`routes[0].methods[1]: want one of GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE or an extension method token (methods are case-sensitive; not CONNECT or TRACE), got "post"`}},
		{"unknown method", strings.Replace(good, "default_ttl: 5m", "default_ttl: 5m\n    methods: [TRACE]", 1), []string{`routes[0].methods[0]`, `"TRACE"`}},
		{"weight range", strings.Replace(good, "weight: 2", "weight: 5000", 1), []string{"shards[1].weight: must be between 1 and 1000"}},
		{"bad trusted proxy", good + "\nforwarding:\n  trusted_proxies: [10.0.0.0/8, 300.1.1.1]\n", []string{"forwarding.trusted_proxies[1]: config: want a CIDR prefix or an address"}},
		{"bad cdn_loop", good + "\nforwarding:\n  cdn_loop: \"a b\"\n", []string{"forwarding.cdn_loop: want a token"}},
		{"both no-cache switches", strings.Replace(good, "default_ttl: 5m", "default_ttl: 5m\n    ignore_client_no_cache: true\n    honor_client_no_cache: true", 1), []string{"routes[0].honor_client_no_cache: contradicts ignore_client_no_cache"}},
		{"negative fill budget", good + "\nlimits:\n  fill_buffer_bytes: -1\n", []string{"limits.fill_buffer_bytes: must not be negative"}},
		{"several at once", strings.Replace(strings.Replace(good, "127.0.0.1:7002", "x", 1), "/products/", "products", 1),
			[]string{"shards[1].addr", "routes[0].path_prefix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEnvOnly(t *testing.T) {
	c, err := Source{Environ: []string{
		"EDGECACHE_SERVER_LISTEN=0.0.0.0:8081",
		"EDGECACHE_ROUTES_0_ORIGIN=http://origin.internal:9000",
		"EDGECACHE_ROUTES_0_DEFAULT_TTL=90s",
		"EDGECACHE_SHARDS_0_NAME=a",
		"EDGECACHE_SHARDS_0_ADDR=10.0.0.1:6379",
		"EDGECACHE_SHARDS_1_NAME=b",
		"EDGECACHE_SHARDS_1_ADDR=10.0.0.2:6379",
		"EDGECACHE_SHARDS_1_WEIGHT=3",
		"EDGECACHE_VALKEY_DISABLE_L1=true",
		"EDGECACHE_ADMIN_TOKEN=not-config",
		"PATH=/usr/bin",
	}}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "0.0.0.0:8081" || c.Routes[0].DefaultTTL != 90*time.Second || len(c.Shards) != 2 ||
		c.Shards[1].Weight != 3 || !c.Valkey.DisableL1 || c.Routes[0].PathPrefix != "/" {
		t.Fatalf("%+v", c)
	}
}

// TestEnvLists: list values are one comma-separated variable; sections
// behind a pointer (sentinel) are reachable.
func TestEnvLists(t *testing.T) {
	c, err := Source{File: writeFile(t, good), Environ: []string{
		"EDGECACHE_ROUTES_0_METHODS=GET, POST",
		"EDGECACHE_ROUTES_0_TAG_HEADERS=",
		"EDGECACHE_SHARDS_2_NAME=s",
		"EDGECACHE_SHARDS_2_SENTINEL_MASTER=mymaster",
		"EDGECACHE_SHARDS_2_SENTINEL_ADDRS=10.0.0.5:26379,10.0.0.6:26379",
		"EDGECACHE_SHARDS_3_NAME=c",
		"EDGECACHE_SHARDS_3_CLUSTER=10.0.1.1:6379,10.0.1.2:6379",
	}}.Load()
	if err != nil {
		t.Fatal(err)
	}
	r, s := c.Routes[0], c.Shards
	if strings.Join(r.Methods, "|") != "GET|POST" || len(r.TagHeaders) != 0 ||
		s[2].Sentinel == nil || s[2].Sentinel.Master != "mymaster" || strings.Join(s[2].Sentinel.Addrs, "|") != "10.0.0.5:26379|10.0.0.6:26379" ||
		strings.Join(s[3].Cluster, "|") != "10.0.1.1:6379|10.0.1.2:6379" {
		t.Fatalf("methods %q tag headers %q shards %+v %+v", r.Methods, r.TagHeaders, s[2], s[3])
	}
	if _, err := (Source{File: writeFile(t, good), Environ: []string{"EDGECACHE_ROUTES_0_METHODS=GET,post"}}).Load(); err == nil || !strings.Contains(err.Error(), `routes[0].methods[1]`) {
		t.Fatalf("a bad list member: %v", err)
	}
}

func TestEnvOverridesFileAndSetOverridesEnv(t *testing.T) {
	c, err := Source{
		File:    writeFile(t, good),
		Environ: []string{"EDGECACHE_SHARDS_1_ADDR=127.0.0.1:7009", "EDGECACHE_VALKEY_COMMAND_TIMEOUT=1s"},
		Sets:    []string{"valkey.command_timeout=2s", "routes[0].default_ttl=1m"},
	}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Shards[1].Addr != "127.0.0.1:7009" || c.Shards[1].Name != "b" || c.Valkey.CommandTimeout != 2*time.Second || c.Routes[0].DefaultTTL != time.Minute {
		t.Fatalf("%+v", c)
	}
}

func TestEnvUnknownVariable(t *testing.T) {
	_, err := Source{File: writeFile(t, good), Environ: []string{"EDGECACHE_SERVER_LISTN=x"}}.Load()
	if err == nil || !strings.Contains(err.Error(), "EDGECACHE_SERVER_LISTN") {
		t.Fatalf("got %v", err)
	}
}

func TestEmbeddedDefaultIsValid(t *testing.T) {
	c, err := Parse(DefaultYAML)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Shards) != 0 || c.Routes[0].Origin != "http://127.0.0.1:9000" {
		t.Fatalf("%+v", c)
	}
}

func TestEnvPath(t *testing.T) {
	for name, want := range map[string]string{
		"SERVER_LISTEN":            "server.listen",
		"SERVER_SHUTDOWN_TIMEOUT":  "server.shutdown_timeout",
		"ROUTES_12_PATH_PREFIX":    "routes.12.path_prefix",
		"VALKEY_L1_BYTES_PER_CONN": "valkey.l1_bytes_per_conn",
		"SHARDS_0_SENTINEL_MASTER": "shards.0.sentinel.master",
		"ROUTES_0_METHODS":         "routes.0.methods",
	} {
		got, _, err := envPath(name)
		if err != nil || got != want {
			t.Errorf("%s: got %q %v, want %q", name, got, err, want)
		}
	}
	for _, bad := range []string{"SERVER", "ROUTES_X_ORIGIN", "SERVER_LISTEN_X", "NOPE", "ROUTES_0_METHODS_0", "SHARDS_0_SENTINEL"} {
		if p, _, err := envPath(bad); err == nil {
			t.Errorf("%s resolved to %q", bad, p)
		}
	}
}

func TestRouteMethodsValidation(t *testing.T) {
	for _, tc := range []struct {
		methods []string
		ok      bool
	}{
		{[]string{"GET", "POST"}, true},
		{[]string{"PROPFIND", "M-SEARCH", "X_Y"}, true},
		{[]string{"TRACE"}, false},
		{[]string{"CONNECT"}, false},
		{[]string{"GET POST"}, false},
		{[]string{""}, false},
		{[]string{"GET/"}, false},
		{[]string{"post"}, false},
		{[]string{"Trace"}, false},
	} {
		c := &Config{Routes: []Route{{Name: "r", Origin: "http://127.0.0.1:1", Methods: tc.methods}}}
		c.EnsureDefaults()
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Fatalf("methods %q: err %v, want ok=%v", tc.methods, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "routes[0].methods[0]") {
			t.Fatalf("methods %q: error does not name the field: %v", tc.methods, err)
		}
	}
}
