package config

import (
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/origins"
)

const withPool = `
routes:
  - name: api
    origin: api
    origin_host: preserve
origins:
  - name: api
    servers:
      - { url: "http://127.0.0.1:9001", weight: 2 }
      - { url: "https://127.0.0.1:9002" }
    max_concurrent: 8
    health: { path: /healthz, expected_status: [200, 204] }
`

func TestLoadPool(t *testing.T) {
	c, err := Parse([]byte(withPool))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Pool(c.Routes[0].Origin)
	if p == nil || len(p.Servers) != 2 || p.Servers[0].Weight != 2 || p.Servers[1].Weight != 1 {
		t.Fatalf("pool: %+v", p)
	}
	if p.Balance != origins.RoundRobin || p.MaxQueue != 8 || p.Health.Interval != origins.DefaultHealthInterval ||
		p.Outlier.ConsecutiveFailures != origins.DefaultConsecutiveFails || len(p.Health.ExpectedStatus) != 2 {
		t.Fatalf("defaults: %+v", p)
	}
	o := p.PoolOptions()
	if o.Name != "api" || len(o.Servers) != 2 || o.Servers[0].URL != "http://127.0.0.1:9001" || o.Health.Path != "/healthz" || o.MaxConcurrent != 8 {
		t.Fatalf("options: %+v", o)
	}
	env, err := Source{Default: []byte(withPool), Environ: []string{"EDGECACHE_ORIGINS_0_OUTLIER_BASE_EJECTION_TIME=2s", "EDGECACHE_ORIGINS_0_HEALTH_EXPECTED_STATUS=200,301"}}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if p := env.Pool("api"); p.Outlier.BaseEjectionTime != 2*time.Second || len(p.Health.ExpectedStatus) != 2 || p.Health.ExpectedStatus[1] != 301 {
		t.Fatalf("from the environment: %+v", p)
	}
}

func TestValidatePools(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new string
		want     string
	}{
		{"route names no pool", "origin: api\n", "origin: apj\n", `routes[0].origin: no pool named "apj"`},
		{"no name", "  - name: api\n    servers", "  - name: \"\"\n    servers", "origins[0].name: missing pool name"},
		{"bad name", "  - name: api\n    servers", "  - name: a/b\n    servers", "origins[0].name: want letters"},
		{"duplicate", "[200, 204] }\n", "[200, 204] }\n  - { name: api, servers: [{url: \"http://127.0.0.1:1\"}] }\n", `origins[1].name: duplicate pool name "api"`},
		{"server with a path", "http://127.0.0.1:9001", "http://127.0.0.1:9001/v1", "origins[0].servers[0].url: must not carry a path"},
		{"server not a URL", "http://127.0.0.1:9001", "127.0.0.1:9001", "origins[0].servers[0].url: want http(s)://host[:port]"},
		{"weight", "weight: 2", "weight: 101", "origins[0].servers[0].weight: must be between 1 and 100"},
		{"balance", "max_concurrent: 8", "max_concurrent: 8\n    balance: random", `origins[0].balance: want round_robin, least_requests or hash, got "random"`},
		{"negative cap", "max_concurrent: 8", "max_concurrent: -1", "origins[0].max_concurrent: must not be negative"},
		{"health path", "path: /healthz", "path: healthz", "origins[0].health.path: must start with '/'"},
		{"expected status", "[200, 204]", "[200, 2040]", "origins[0].health.expected_status[1]: not an HTTP status"},
		{"retry budget", "max_concurrent: 8", "max_concurrent: 8\n    retry_budget: 1.5", "origins[0].retry_budget: at most 1"},
		{"ejected percent", "max_concurrent: 8", "max_concurrent: 8\n    outlier: { max_ejected_percent: 150 }", "origins[0].outlier.max_ejected_percent: must be between 0 and 100"},
		{"ca file", "max_concurrent: 8", "max_concurrent: 8\n    tls: { ca_file: /nonexistent/ca.pem }", "origins[0].tls.ca_file: "},
		{"cert without key", "max_concurrent: 8", "max_concurrent: 8\n    tls: { cert_file: " + writeFile(t, "x") + " }", "origins[0].tls: set both cert_file and key_file"},
		{"origin_host", "origin_host: preserve", "origin_host: http://x/", `routes[0].origin_host: want "preserve" or a host[:port]`},
		{"timeout", "max_concurrent: 8", "max_concurrent: 8\n    queue_timeout: -1s", "origins[0].queue_timeout: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(withPool, tc.old, tc.new, 1)
			if doc == withPool {
				t.Fatalf("the edit %q changed nothing", tc.old)
			}
			_, err := Parse([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
