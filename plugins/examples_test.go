package plugins_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/wasm"
)

// examples is where `make plugins` puts the built examples.
const examples = "testdata/examples"

// host is shared by the package's tests: one compilation cache.
var host *wasm.Host

func TestMain(m *testing.M) {
	// A compilation cache shared by test runs: compiling the Go example
	// takes seconds (tens under -race); wazero writes entries atomically.
	var err error
	host, err = wasm.NewHost(context.Background(), wasm.Options{
		CacheDir:    filepath.Join(os.TempDir(), "edgecache-plugins-test-cache"),
		GuestOutput: os.Stderr,
	})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	_ = host.Close(context.Background())
	os.Exit(code)
}

func load(tb testing.TB, name string, config string, o hook.PluginOptions) *wasm.Plugin {
	tb.Helper()
	bin, err := os.ReadFile(filepath.Join(examples, name+".wasm"))
	if err != nil {
		tb.Fatalf("%v (run `make plugins`)", err)
	}
	o.Name, o.Config = name, []byte(config)
	if o.PoolSize == 0 {
		o.PoolSize = 2
	}
	p, err := host.Load(context.Background(), bin, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func req(method, path, query string, hdr ...string) *policies.Request {
	r := &policies.Request{Method: method, Scheme: "https", Host: "shop.example", Path: path, RawQuery: query, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// noFaults fails the test if the plugin faulted or declined unexpectedly.
func noFaults(t *testing.T, p *wasm.Plugin) {
	t.Helper()
	s := p.Stats()
	for h, hs := range s.Hooks {
		if hs.Faults != 0 {
			t.Errorf("%v hook: %d faults (%+v)", hook.ID(h), hs.Faults, s)
		}
	}
}

// Every example exports the hooks it documents, and nothing else.
func TestExampleHooks(t *testing.T) {
	cases := []struct {
		name   string
		config string
		hooks  []hook.ID
	}{
		{"go-stripparams", "", []hook.ID{hook.KeyHook, hook.InitHook}},
		{"c-ttlbystatus", "", []hook.ID{hook.ResponseHook}},
		{"rust-pathttl", `{"/": "1m"}`, []hook.ID{hook.ResponseHook, hook.InitHook}},
		{"assemblyscript-misspolicy", "", []hook.ID{hook.MissHook, hook.InitHook}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, tc.name, tc.config, hook.PluginOptions{PoolSize: 1})
			for h := range hook.ID(4) {
				want := false
				for _, x := range tc.hooks {
					want = want || x == h
				}
				if p.Has(h) != want {
					t.Errorf("Has(%v) = %v, want %v", h, p.Has(h), want)
				}
			}
		})
	}
}

func TestGoStripParams(t *testing.T) {
	p := load(t, "go-stripparams", `{"drop": ["ref"], "drop_prefixes": ["pk_"]}`, hook.PluginOptions{})
	key := policies.FromPlugin(p, policies.Set{}).Key
	cases := []struct {
		name, path, query, want string
	}{
		{"no query", "/p/1", "", "https://shop.example/p/1"},
		{"sorted", "/p/1", "z=1&a=2", "https://shop.example/p/1?a=2&z=1"},
		{"tracking dropped", "/p/1", "utm_source=news&a=2&fbclid=x&gclid=y&UTM_Medium=m", "https://shop.example/p/1?a=2"},
		{"config drops", "/p/1", "ref=home&pk_campaign=c&b=1", "https://shop.example/p/1?b=1"},
		{"only tracking", "/p/1", "utm_source=a&fbclid=b", "https://shop.example/p/1"},
		{"empty params", "/p/1", "&&a=1&", "https://shop.example/p/1?a=1"},
		{"repeated names keep order", "/s", "q=b&q=a&p=1", "https://shop.example/s?p=1&q=b&q=a"},
		{"values stay escaped", "/s", "q=a%20b&utm_term=x", "https://shop.example/s?q=a%20b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 { // a guest call, then a memo hit
				got := string(key.AppendKey(nil, req("GET", tc.path, tc.query)))
				if got != tc.want {
					t.Fatalf("call %d: key %q, want %q", i, got, tc.want)
				}
			}
		})
	}
	noFaults(t, p)
	if s := p.Stats(); s.MemoHits == 0 || s.MemoSkipped != 0 {
		t.Errorf("memo: %+v, want hits and no skipped results (the Go runtime must not count as impure)", s)
	}
}

// TestGoStripParamsConfig runs the example's own config parser (it does
// not use encoding/json, to stay small): what JSON allows in the config
// is read, anything else rejects it at init.
func TestGoStripParamsConfig(t *testing.T) {
	bin, err := os.ReadFile(filepath.Join(examples, "go-stripparams.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, config string
		ok           bool
		query, want  string // with ok: a query and the key's query it gives
	}{
		{"spaces and both lists", " {\n\t\"drop\" : [ \"ref\" ] ,\r\"drop_prefixes\":[\"pk_\",\"x\"]}\n", true, "ref=1&pk_a=2&xy=3&b=4", "b=4"},
		{"escapes", `{"drop": ["r\u0065f", "a\"b", "c\\d", "\u00E9t\u00e9"]}`, true, "ref=1&a\"b=2&c\\d=3&\u00e9t\u00e9=4&q=5", "q=5"},
		{"a surrogate pair", `{"drop": ["\ud83d\ude00"]}`, true, "\U0001F600=1&q=2", "q=2"},
		{"null and empty lists", `{"drop": null, "drop_prefixes": []}`, true, "ref=1", "ref=1"},
		{"empty object", `{}`, true, "fbclid=1&a=1", "a=1"},
		{"a number", `{"drop": 3}`, false, "", ""},
		{"another field", `{"drop": [], "keep": ["a"]}`, false, "", ""},
		{"a list of numbers", `{"drop": [1]}`, false, "", ""},
		{"trailing bytes", `{"drop": []} x`, false, "", ""},
		{"unterminated", `{"drop": ["ref`, false, "", ""},
		{"a bad escape", `{"drop": ["\x41"]}`, false, "", ""},
		{"a trailing comma", `{"drop": ["a",]}`, false, "", ""},
		{"not an object", `["ref"]`, false, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := host.Load(context.Background(), bin, hook.PluginOptions{Name: "strip", Config: []byte(tc.config), PoolSize: 1})
			if !tc.ok {
				if !errors.Is(err, wasm.ErrInit) {
					_ = closeIf(p)
					t.Fatalf("Load: %v, want ErrInit", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			key := policies.FromPlugin(p, policies.Set{}).Key
			got := string(key.AppendKey(nil, req("GET", "/p", tc.query)))
			if want := "https://shop.example/p?" + tc.want; got != want {
				t.Fatalf("key %q, want %q", got, want)
			}
		})
	}
}

func closeIf(p *wasm.Plugin) error {
	if p == nil {
		return nil
	}
	return p.Close(context.Background())
}

func TestCTTLByStatus(t *testing.T) {
	p := load(t, "c-ttlbystatus", "", hook.PluginOptions{})
	ttl := policies.FromPlugin(p, policies.Set{TTL: policies.DefaultTTL{Default: 2 * time.Minute}}).TTL
	cases := []struct {
		name   string
		status int
		hdr    http.Header
		want   policies.Decision
	}{
		{"image", 200, http.Header{"Content-Type": {"image/webp"}},
			policies.Decision{Store: true, TTL: 24 * time.Hour, StaleIfError: time.Hour, Tags: []string{"status:200", "type:image"}}},
		{"json", 200, http.Header{"Content-Type": {"application/json"}},
			policies.Decision{Store: true, TTL: time.Minute, StaleIfError: time.Hour, Tags: []string{"status:200", "type:application"}}},
		{"html", 200, http.Header{"Content-Type": {"Text/HTML"}},
			policies.Decision{Store: true, TTL: 5 * time.Minute, StaleIfError: time.Hour, Tags: []string{"status:200", "type:text"}}},
		{"no type", 200, http.Header{},
			policies.Decision{Store: true, TTL: 10 * time.Minute, StaleIfError: time.Hour, Tags: []string{"status:200"}}},
		{"origin lifetime kept", 200, http.Header{"Cache-Control": {"max-age=30"}, "Content-Type": {"image/png"}},
			policies.Decision{Store: true, TTL: 30 * time.Second, StaleIfError: time.Hour, Tags: []string{"status:200", "type:image"}}},
		{"404", 404, http.Header{}, policies.Decision{Store: true, TTL: time.Minute, Tags: []string{"status:404"}}},
		{"410", 410, http.Header{}, policies.Decision{Store: true, TTL: time.Minute, Tags: []string{"status:410"}}},
		{"500", 500, http.Header{"Cache-Control": {"max-age=600"}}, policies.Decision{Reason: "server-error"}},
		{"302", 302, http.Header{}, policies.Decision{Reason: "status"}},
		{"no-store left to the built-in", 200, http.Header{"Cache-Control": {"no-store"}}, policies.Decision{Reason: policies.ReasonNoStore}},
	}
	now := time.Now()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ttl.Decide(req("GET", "/x", ""), &policies.Response{Status: tc.status, Header: tc.hdr}, now)
			if !sameDecision(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	noFaults(t, p)
}

func TestRustPathTTL(t *testing.T) {
	config := `{
		"/static/": "1d",
		"/api/": {"ttl": "30s", "swr": "1m", "sie": "1h"},
		"/api/cart": 0,
		"/feeds/": 90
	}`
	p := load(t, "rust-pathttl", config, hook.PluginOptions{})
	ttl := policies.FromPlugin(p, policies.Set{TTL: policies.DefaultTTL{Default: 2 * time.Minute}}).TTL
	cases := []struct {
		name, path string
		status     int
		hdr        http.Header
		want       policies.Decision
	}{
		{"static", "/static/app.js", 200, http.Header{}, policies.Decision{Store: true, TTL: 24 * time.Hour, Tags: []string{"ttl-rule:/static/"}}},
		{"longest prefix", "/api/cart/items", 200, http.Header{}, policies.Decision{Reason: "path-rule"}},
		{"windows", "/api/products", 200, http.Header{}, policies.Decision{Store: true, TTL: 30 * time.Second, StaleWhileRevalidate: time.Minute, StaleIfError: time.Hour, Tags: []string{"ttl-rule:/api/"}}},
		{"seconds", "/feeds/rss", 200, http.Header{}, policies.Decision{Store: true, TTL: 90 * time.Second, Tags: []string{"ttl-rule:/feeds/"}}},
		{"table beats origin", "/static/x.css", 200, http.Header{"Cache-Control": {"max-age=5"}}, policies.Decision{Store: true, TTL: 24 * time.Hour, Tags: []string{"ttl-rule:/static/"}}},
		{"no rule: built-in", "/other", 200, http.Header{}, policies.Decision{Store: true, TTL: 2 * time.Minute}},
		{"private: built-in", "/static/me", 200, http.Header{"Cache-Control": {"private"}}, policies.Decision{Reason: policies.ReasonPrivate}},
		{"500: built-in", "/static/x", 500, http.Header{}, policies.Decision{Reason: policies.ReasonNoFreshness}}, // not heuristically cacheable (RFC 9110 §15.1)
	}
	now := time.Now()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ttl.Decide(req("GET", tc.path, ""), &policies.Response{Status: tc.status, Header: tc.hdr}, now)
			if !sameDecision(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	noFaults(t, p)

	for _, bad := range []string{`{"static/": "1d"}`, `{"/x": "5y"}`, `[1]`, `{"/x": {"ttl": "1m", "bogus": 1}}`} {
		bin, _ := os.ReadFile(filepath.Join(examples, "rust-pathttl.wasm"))
		if _, err := host.Load(context.Background(), bin, hook.PluginOptions{Config: []byte(bad), PoolSize: 1}); !errors.Is(err, wasm.ErrInit) {
			t.Errorf("config %s: err %v, want ErrInit", bad, err)
		}
	}
}

func TestAssemblyScriptMissPolicy(t *testing.T) {
	config := `{"fallback_origin": "https://legacy.example.net/",
		"fallback_prefixes": ["/legacy/", "/old-api/"],
		"bypass_cookies": ["session"],
		"deny_prefixes": ["/internal/"]}`
	p := load(t, "assemblyscript-misspolicy", config, hook.PluginOptions{})
	miss := policies.FromPlugin(p, policies.Set{}).Miss
	hdr := http.Header{"X-Edge-Policy": {"misspolicy"}}
	cases := []struct {
		name string
		req  *policies.Request
		want policies.MissAction
	}{
		{"plain", req("GET", "/p/1", ""), policies.MissAction{Header: hdr}},
		{"authorization bypasses", req("GET", "/p/1", "", "Authorization", "Bearer x"), policies.MissAction{Bypass: true, Header: hdr}},
		{"session cookie bypasses", req("GET", "/p/1", "", "Cookie", "theme=dark; session=abc"), policies.MissAction{Bypass: true, Header: hdr}},
		{"other cookie does not", req("GET", "/p/1", "", "Cookie", "theme=dark; sessionx=1"), policies.MissAction{Header: hdr}},
		{"fallback origin", req("GET", "/legacy/page", "a=1&b=2"), policies.MissAction{OriginURL: "https://legacy.example.net/legacy/page?a=1&b=2", Header: hdr}},
		{"fallback origin, no query", req("GET", "/old-api/v1", ""), policies.MissAction{OriginURL: "https://legacy.example.net/old-api/v1", Header: hdr}},
		{"denied", req("GET", "/internal/metrics", ""), policies.MissAction{Status: 403, Body: []byte("forbidden\n")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := miss.OnMiss(tc.req)
			if got.Bypass != tc.want.Bypass || got.OriginURL != tc.want.OriginURL || got.Status != tc.want.Status ||
				string(got.Body) != string(tc.want.Body) || !sameHeader(got.Header, tc.want.Header) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	noFaults(t, p)

	bin, _ := os.ReadFile(filepath.Join(examples, "assemblyscript-misspolicy.wasm"))
	if _, err := host.Load(context.Background(), bin, hook.PluginOptions{Config: []byte(`{"fallback_prefixes": ["/x/"]}`), PoolSize: 1}); !errors.Is(err, wasm.ErrInit) {
		t.Errorf("config without fallback_origin: err %v, want ErrInit", err)
	}
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := b[k]
		if len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}

func sameDecision(a, b policies.Decision) bool {
	if a.Store != b.Store || a.TTL != b.TTL || a.StaleWhileRevalidate != b.StaleWhileRevalidate ||
		a.StaleIfError != b.StaleIfError || a.Reason != b.Reason || len(a.Tags) != len(b.Tags) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i] != b.Tags[i] {
			return false
		}
	}
	return true
}
