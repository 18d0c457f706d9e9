package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/wasm"
)

// TestPluginRunMatchesGateway runs a table of requests (and origin
// responses) through `plugin run`'s path (parseRequest, loadRoute, decide)
// and through a real gateway's (Gateway.Explain: the read path's request
// view, route and policies) and requires the same key, miss action and
// storage decision. The cases include those where the two used to differ:
// the Method/Vary: */Authorization guard, the TTL <= 0 rule and the host's
// canonical form.
func TestPluginRunMatchesGateway(t *testing.T) {
	const td = "../../plugins/testdata/"
	doc := `
routes:
  - { name: key, path_prefix: /k/, origin: "http://127.0.0.1:9", plugins: [strip] }
  - { name: drop, path_prefix: /d/, origin: "http://127.0.0.1:9", plugins: [drop] }
  - { name: half, path_prefix: /t/, origin: "http://127.0.0.1:9", plugins: [half], default_ttl: 1m, negative_ttl: 4s }
  - { name: ttl, path_prefix: /c/, origin: "http://127.0.0.1:9", plugins: [ttl], negative_ttl: 3s }
  - { name: miss, path_prefix: /m/, origin: "http://127.0.0.1:9", plugins: [miss] }
plugins:
  - { name: strip, path: ` + td + `examples/go-stripparams.wasm, config: { drop: [ref] } }
  - { name: drop, path: ` + td + `wat/dropparam.wasm }
  - { name: half, path: ` + td + `wat/halfttl.wasm }
  - { name: ttl, path: ` + td + `examples/c-ttlbystatus.wasm }
  - { name: miss, path: ` + td + `wat/missroute.wasm }
`
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	host, err := wasm.NewHost(context.Background(), wasm.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: log, Plugins: host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)

	// The CLI's side: each route's plugin loaded as `plugin run` loads it.
	cli := map[string]*loaded{}
	for _, rc := range cfg.Routes {
		pc := cfg.Plugins[pluginIndex(t, cfg, rc.Plugins[0])]
		var conf []byte
		if pc.Config != nil {
			conf, _ = json.Marshal(pc.Config)
		}
		l, err := loadRoute(context.Background(), filepath.Clean(pc.Path), conf, wasm.DefaultTimeout, rc, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.close(context.Background()) })
		cli[rc.Name] = l
	}

	type hdrs map[string]string
	cases := []struct {
		name, request string
		header        hdrs
		status        int // 0: no response
		respHeader    hdrs
		wantKey       string // checked when not ""
		wantStore     *bool
	}{
		{"host case and :443", "GET https://Shop.Example:443/k/p?ref=1&b=2&a=1", nil, 0, nil, "https://shop.example/k/p?a=1&b=2", nil},
		{"http with :443", "GET http://shop.example:443/k/x", nil, 0, nil, "http://shop.example/k/x", nil},
		{"https with :80", "GET https://SHOP.example:80/k/x?ref=", nil, 0, nil, "https://shop.example/k/x", nil},
		{"other port kept", "GET http://shop.example:8080/k/x", nil, 0, nil, "http://shop.example:8080/k/x", nil},
		{"escaped path", "GET https://shop.example/k/a%2Fb/caf%C3%A9?ref=x", nil, 0, nil, "https://shop.example/k/a%2Fb/caf%C3%A9", nil},
		{"drop param", "GET https://shop.example/d/p?a=1&a=0&drop=1", nil, 0, nil, "https://shop.example/d/p?a=1&a=0", nil},
		{"drop only param", "GET https://shop.example/d/p?drop", nil, 0, nil, "https://shop.example/d/p", nil},
		{"drop empty values", "GET https://Shop.Example/d/p?b=&drop=&a", nil, 0, nil, "https://shop.example/d/p?a&b=", nil},
		{"half of max-age", "GET https://shop.example/t/a", nil, 200, hdrs{"Cache-Control": "max-age=600"}, "", ptr(true)},
		{"half of default ttl", "GET https://shop.example/t/b", nil, 200, nil, "", ptr(true)},
		{"TTL <= 0 rule: max-age=1 halves to 0", "GET https://shop.example/t/c", nil, 200, hdrs{"Cache-Control": "max-age=1"}, "", ptr(false)},
		{"built-in refusal declines", "GET https://shop.example/t/d", nil, 200, hdrs{"Cache-Control": "no-store"}, "", ptr(false)},
		{"guard: method", "POST https://shop.example/t/e", nil, 200, hdrs{"Cache-Control": "max-age=600"}, "", ptr(false)},
		{"guard: method with ttl plugin", "PUT https://shop.example/c/logo.png", nil, 200, hdrs{"Content-Type": "image/png"}, "", ptr(false)},
		{"guard: Vary *", "GET https://shop.example/c/x.png", nil, 200, hdrs{"Content-Type": "image/png", "Vary": "*"}, "", ptr(false)},
		{"guard: Authorization", "GET https://shop.example/c/y.png", hdrs{"Authorization": "Bearer x"}, 200, hdrs{"Content-Type": "image/png"}, "", ptr(false)},
		{"Authorization, shareable", "GET https://shop.example/c/z.png", hdrs{"Authorization": "Bearer x"}, 200, hdrs{"Content-Type": "image/png", "Cache-Control": "public, max-age=60"}, "", ptr(true)},
		{"ttl by type", "GET https://shop.example/c/logo.png", nil, 200, hdrs{"Content-Type": "image/png"}, "", ptr(true)},
		{"negative ttl of the plugin", "GET https://shop.example/c/missing", nil, 404, nil, "", ptr(true)},
		{"5xx not stored", "GET https://shop.example/c/err", nil, 503, nil, "", ptr(false)},
		{"half of the route's negative ttl", "GET https://shop.example/t/404", nil, 404, nil, "", ptr(true)},
		{"HEAD is cacheable", "HEAD https://shop.example/t/head", nil, 200, hdrs{"Cache-Control": "max-age=100"}, "", ptr(true)},
		{"miss: bypass", "GET https://shop.example/m/private/x", nil, 0, nil, "", nil}, // checked below

		{"miss: respond", "GET https://shop.example/m/gone", nil, 0, nil, "", nil},
		{"miss: declined", "GET https://shop.example/m/other?x=1", nil, 0, nil, "https://shop.example/m/other?x=1", nil},
	}
	now := time.Now()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The gateway's side: a request as the server would parse it.
			hr := httptest.NewRequest(methodOf(tc.request), urlOf(tc.request), nil)
			for k, v := range tc.header {
				hr.Header.Set(k, v)
			}
			var resp *policies.Response
			if tc.status != 0 {
				rh := http.Header{}
				for k, v := range tc.respHeader {
					rh.Set(k, v)
				}
				resp = &policies.Response{Status: tc.status, Header: rh}
			}
			e, err := g.Explain(hr, resp, now)
			if err != nil {
				t.Fatal(err)
			}
			// The CLI's side.
			hdr := http.Header{}
			for k, v := range tc.header {
				hdr.Set(k, v)
			}
			r, err := parseRequest(tc.request, hdr)
			if err != nil {
				t.Fatal(err)
			}
			o := cli[e.Route].decide(r, resp, now)
			if o.key != e.Key {
				t.Errorf("key: plugin run %q, gateway %q", o.key, e.Key)
			}
			if got, want := formatMiss(o.miss), formatMiss(e.Miss); got != want {
				t.Errorf("miss: plugin run %s\n      gateway    %s", got, want)
			}
			if got, want := formatDecision(o.dec), formatDecision(e.Decision); got != want {
				t.Errorf("decision: plugin run %s\n          gateway    %s", got, want)
			}
			if tc.wantKey != "" && e.Key != tc.wantKey {
				t.Errorf("key %q, want %q", e.Key, tc.wantKey)
			}
			switch tc.name {
			case "miss: bypass":
				if !e.Miss.Bypass {
					t.Errorf("miss %s, want bypass", formatMiss(e.Miss))
				}
			case "miss: respond":
				if e.Miss.Status != http.StatusGone {
					t.Errorf("miss %s, want 410", formatMiss(e.Miss))
				}
			case "half of the route's negative ttl":
				if e.Decision.TTL != 2*time.Second {
					t.Errorf("ttl %v, want 2s (half of negative_ttl 4s)", e.Decision.TTL)
				}
			}
			if tc.wantStore != nil && e.Decision.Store != *tc.wantStore {
				t.Errorf("store = %v (%s), want %v", e.Decision.Store, e.Decision.Reason, *tc.wantStore)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func methodOf(req string) string {
	r, _ := parseRequest(req, nil)
	return r.Method
}

func urlOf(req string) string {
	_, u, _ := cutSpace(req)
	return u
}

func cutSpace(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return "", s, false
}

func pluginIndex(t *testing.T, cfg *config.Config, name string) int {
	for i, p := range cfg.Plugins {
		if p.Name == name {
			return i
		}
	}
	t.Fatalf("no plugin %q", name)
	return -1
}
