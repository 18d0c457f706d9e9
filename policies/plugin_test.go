package policies_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/wasm"
)

// pluginModules holds the built plugin modules (plugins/plugins.mk).
const pluginModules = "../plugins/testdata"

func loadPlugin(tb testing.TB, rel string, o hook.PluginOptions) *wasm.Plugin {
	tb.Helper()
	bin, err := os.ReadFile(filepath.Join(pluginModules, rel))
	if err != nil {
		tb.Fatal(err)
	}
	h, err := wasm.NewHost(context.Background(), wasm.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close(context.Background()) })
	if o.Name == "" {
		o.Name = rel
	}
	p, err := h.Load(context.Background(), bin, o)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func pluginRequest(path, query string, hdr ...string) *policies.Request {
	r := &policies.Request{Method: "GET", Scheme: "https", Host: "shop.example", Path: path, RawQuery: query, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func TestFromPluginKey(t *testing.T) {
	defaultKey := func(r *policies.Request) string { return string(policies.DefaultKey{}.AppendKey(nil, r)) }
	cases := []struct {
		name, module string
		req          *policies.Request
		want         func(r *policies.Request) string
	}{
		{"replace", "wat/minimal.wasm", pluginRequest("/a/b", "z=1&a=2"),
			func(*policies.Request) string { return "prefix:/a/b" }},
		{"extend puts the built-in key first", "wat/keyparts.wasm", pluginRequest("/a", "b=2&a=1", "X-Device", "mobile"),
			func(r *policies.Request) string { return "prefix:" + defaultKey(r) + "|mobile" }},
		{"declined", "wat/keyparts.wasm", pluginRequest("/a", "b=2&a=1"),
			func(r *policies.Request) string { return "prefix:" + defaultKey(r) }},
		{"trap falls back", "hostile/unreachable.wasm", pluginRequest("/a", "b=2&a=1"),
			func(r *policies.Request) string { return "prefix:" + defaultKey(r) }},
		{"ABI fault falls back", "hostile/bigresult.wasm", pluginRequest("/a", "b=2&a=1"),
			func(r *policies.Request) string { return "prefix:" + defaultKey(r) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := policies.FromPlugin(loadPlugin(t, tc.module, hook.PluginOptions{PoolSize: 1}), policies.Set{})
			for i := range 3 { // the first call, then memo hits (or repeated faults)
				got := string(set.Key.AppendKey([]byte("prefix:"), tc.req))
				if want := tc.want(tc.req); got != want {
					t.Fatalf("call %d: key %q, want %q", i, got, want)
				}
			}
		})
	}
}

// TestFromPluginUnexported: hooks the module does not export are the
// fallback's, not wrappers.
func TestFromPluginUnexported(t *testing.T) {
	p := loadPlugin(t, "wat/minimal.wasm", hook.PluginOptions{PoolSize: 1})
	fb := policies.Set{TTL: policies.DefaultTTL{Default: time.Minute}}
	set := policies.FromPlugin(p, fb)
	if set.TTL != fb.TTL {
		t.Errorf("TTL = %#v, want the fallback", set.TTL)
	}
	if _, ok := set.Miss.(policies.DefaultMiss); !ok {
		t.Errorf("Miss = %#v, want DefaultMiss", set.Miss)
	}
}

func TestFromPluginTTL(t *testing.T) {
	now := time.Now()
	fb := policies.Set{TTL: policies.DefaultTTL{Default: 2 * time.Minute}}
	ttl := policies.FromPlugin(loadPlugin(t, "examples/c-ttlbystatus.wasm", hook.PluginOptions{PoolSize: 1}), fb).TTL
	cases := []struct {
		name   string
		req    *policies.Request
		status int
		hdr    http.Header
		want   policies.Decision
	}{
		{"html", pluginRequest("/", ""), 200, http.Header{"Content-Type": {"text/html; charset=utf-8"}},
			policies.Decision{Store: true, TTL: 5 * time.Minute, StaleIfError: time.Hour, Tags: []string{"status:200", "type:text"}}},
		{"negative caching", pluginRequest("/gone", ""), 404, http.Header{},
			policies.Decision{Store: true, TTL: time.Minute, Tags: []string{"status:404"}}},
		{"server error", pluginRequest("/", ""), 503, http.Header{},
			policies.Decision{Reason: "server-error"}},
		{"private is the built-in's", pluginRequest("/", ""), 200, http.Header{"Cache-Control": {"private, max-age=60"}},
			policies.Decision{Reason: policies.ReasonPrivate}},
		{"Vary: * stays unstored", pluginRequest("/", ""), 200, http.Header{"Vary": {"*"}, "Content-Type": {"image/png"}},
			policies.Decision{Reason: policies.ReasonVaryStar}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ttl.Decide(tc.req, &policies.Response{Status: tc.status, Header: tc.hdr}, now)
			if !sameDecision(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
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

func TestFromPluginFaultsFallBack(t *testing.T) {
	fb := policies.Set{
		TTL:  policies.DefaultTTL{Default: time.Minute},
		Miss: fixedMiss{policies.MissAction{Bypass: true}},
	}
	set := policies.FromPlugin(loadPlugin(t, "hostile/unreachable.wasm", hook.PluginOptions{PoolSize: 1}), fb)
	r := pluginRequest("/", "")
	resp := &policies.Response{Status: 200, Header: http.Header{}}
	now := time.Now()
	if got, want := set.TTL.Decide(r, resp, now), fb.TTL.Decide(r, resp, now); !sameDecision(got, want) {
		t.Errorf("TTL: got %+v, want the fallback's %+v", got, want)
	}
	if got := set.Miss.OnMiss(r); !got.Bypass {
		t.Errorf("Miss: got %+v, want the fallback's", got)
	}
}

type fixedMiss struct{ a policies.MissAction }

func (m fixedMiss) OnMiss(*policies.Request) policies.MissAction { return m.a }

// TestPluginKeyAllocs pins the hit path: a memoized key costs no
// allocation.
func TestPluginKeyAllocs(t *testing.T) {
	set := policies.FromPlugin(loadPlugin(t, "wat/keyparts.wasm", hook.PluginOptions{PoolSize: 1}), policies.Set{})
	r := pluginRequest("/products/42", "b=2&a=1", "X-Device", "mobile", "Accept", "text/html")
	buf := make([]byte, 0, 256)
	buf = set.Key.AppendKey(buf[:0], r) // fills the memo
	if n := testing.AllocsPerRun(1000, func() { buf = set.Key.AppendKey(buf[:0], r) }); n != 0 {
		t.Fatalf("memoized AppendKey: %v allocs, want 0", n)
	}
}

// BenchmarkPluginKey compares a WASM key plugin, memoized and not, with
// the built-in key on the same request.
func BenchmarkPluginKey(b *testing.B) {
	r := pluginRequest("/v1/products/42", "sort=price&page=2&lang=en", "X-Device", "mobile")
	run := func(b *testing.B, k policies.Key) {
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			buf = k.AppendKey(buf[:0], r)
		}
	}
	b.Run("builtin", func(b *testing.B) { run(b, policies.DefaultKey{}) })
	b.Run("wasm-memoized", func(b *testing.B) {
		run(b, policies.FromPlugin(loadPlugin(b, "wat/keyparts.wasm", hook.PluginOptions{}), policies.Set{}).Key)
	})
	b.Run("wasm-unmemoized", func(b *testing.B) {
		run(b, policies.FromPlugin(loadPlugin(b, "wat/keyparts.wasm", hook.PluginOptions{MemoEntries: -1}), policies.Set{}).Key)
	})
}

// TestBuiltinKeyDropParam is the ABI's get_builtin_key at work: a WAT key
// hook (wat/dropparam.wat) reads the built-in key and drops the "drop"
// parameter; the key must be exactly the built-in key of the same URL
// without that parameter (ABI.md, "The built-in key").
func TestBuiltinKeyDropParam(t *testing.T) {
	h, err := wasm.NewHost(context.Background(), wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	bin, err := os.ReadFile(filepath.Join(pluginModules, "wat/dropparam.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policies.LoadPlugin(context.Background(), h, bin, hook.PluginOptions{Name: "dropparam"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	set := policies.FromPlugin(p, policies.Set{})
	cases := []struct{ path, query, want string }{
		{"/p", "", "https://shop.example/p"},
		{"/p", "drop=1", "https://shop.example/p"},
		{"/p", "a=1&drop=2", "https://shop.example/p?a=1"},
		{"/p", "drop=2&a=1", "https://shop.example/p?a=1"},
		{"/p", "b=2&drop=x&a=1", "https://shop.example/p?a=1&b=2"},
		{"/p", "a=1&a=0&drop=1", "https://shop.example/p?a=1&a=0"},        // values keep their order
		{"/p", "a=0&drop=1&a=1", "https://shop.example/p?a=0&a=1"},        // ... whichever it is
		{"/p", "drop=1&drop=2&z=9", "https://shop.example/p?z=9"},         // every "drop" piece
		{"/p", "drop", "https://shop.example/p"},                          // bare name
		{"/p", "drop=&a=", "https://shop.example/p?a="},                   // empty values stay
		{"/p", "a=&b&drop=1", "https://shop.example/p?a=&b"},              // bare names stay
		{"/p", "dropped=1&drop=1", "https://shop.example/p?dropped=1"},    // a longer name is another
		{"/p", "xdrop=1&drop=1", "https://shop.example/p?xdrop=1"},        // so is a longer prefix
		{"/p", "Drop=1&drop=1", "https://shop.example/p?Drop=1"},          // names are case-sensitive
		{"/p", "q=%41%26b&drop=1", "https://shop.example/p?q=%41%26b"},    // escapes kept, not decoded
		{"/p", "drop%3D1=2&a=1", "https://shop.example/p?a=1&drop%3D1=2"}, // an escaped '=' is part of the name
		{"/caf%C3%A9/x", "drop=1&k=%E2%82%AC", "https://shop.example/caf%C3%A9/x?k=%E2%82%AC"},
		{"/p", "a=1&&drop=1&&b=2", "https://shop.example/p?a=1&b=2"}, // empty pieces go (built-in)
		{"", "drop=1&c=3", "https://shop.example/?c=3"},              // empty path is "/"
		{"/p", "z=1&y=2&x=3&drop=4&w=5", "https://shop.example/p?w=5&x=3&y=2&z=1"},
		{"/p", "&", "https://shop.example/p"},
	}
	for _, tc := range cases {
		t.Run(tc.path+"?"+tc.query, func(t *testing.T) {
			r := pluginRequest(tc.path, tc.query)
			r.Host = "Shop.Example"
			got := string(set.Key.AppendKey(nil, r))
			if got != tc.want {
				t.Errorf("key %q, want %q", got, tc.want)
			}
			// The same, derived: the built-in key of the query without
			// the dropped pieces.
			var kept []string
			for _, piece := range strings.Split(tc.query, "&") {
				if piece != "drop" && !strings.HasPrefix(piece, "drop=") {
					kept = append(kept, piece)
				}
			}
			without := *r
			without.RawQuery = strings.Join(kept, "&")
			if want := string(policies.DefaultKey{}.AppendKey(nil, &without)); got != want {
				t.Errorf("key %q, built-in key without the parameter %q", got, want)
			}
		})
	}
	if s := p.Stats(); s.Hooks[hook.KeyHook].Faults != 0 || s.Hooks[hook.KeyHook].Declined != 0 {
		t.Errorf("stats %+v", s.Hooks[hook.KeyHook])
	}
}
