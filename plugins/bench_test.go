package plugins_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/edgecache/edgecache/hook"
)

// BenchmarkHook is the cost of one guest call of each example's hook,
// unmemoized, with wazero's termination checks on (the host's only mode):
// what a miss pays per hook. The key hook's memoized cost is in
// BenchmarkKeyMemoized.
func BenchmarkHook(b *testing.B) {
	r := &hook.Request{Method: "GET", Scheme: "https", Host: "shop.example", Path: "/static/app.js",
		RawQuery: "utm_source=news&id=42&fbclid=x&b=2", Header: http.Header{"Accept": {"*/*"}, "Cookie": {"theme=dark; sid=1"}}}
	resp := &hook.Response{Status: 200, Header: http.Header{"Content-Type": {"application/javascript"}}}
	cases := []struct {
		name, module, config string
		hook                 hook.ID
	}{
		{"go/key", "go-stripparams", "", hook.KeyHook},
		{"c/response", "c-ttlbystatus", "", hook.ResponseHook},
		{"rust/response", "rust-pathttl", `{"/static/": "1d", "/api/": "30s"}`, hook.ResponseHook},
		{"assemblyscript/miss", "assemblyscript-misspolicy", `{"fallback_origin": "https://old.example", "fallback_prefixes": ["/legacy/"], "bypass_cookies": ["session"]}`, hook.MissHook},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			p := load(b, tc.module, tc.config, hook.PluginOptions{MemoEntries: -1, MaxCallsPerInstance: 1 << 30})
			var call func() error
			switch tc.hook {
			case hook.KeyHook:
				buf := make([]byte, 0, 256)
				call = func() error { _, _, err := p.AppendKey(buf[:0], r); return err }
			case hook.ResponseHook:
				call = func() error { d := hook.Decision{Store: true, TTL: time.Minute}; return p.Response(r, resp, &d) }
			default:
				call = func() error { var a hook.MissAction; return p.Miss(r, &a) }
			}
			if err := call(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKeyMemoized is the Go example's key hook on a hot request: a
// memo lookup, no guest call.
func BenchmarkKeyMemoized(b *testing.B) {
	r := &hook.Request{Method: "GET", Scheme: "https", Host: "shop.example", Path: "/p/42", RawQuery: "utm_source=news&id=42"}
	p := load(b, "go-stripparams", "", hook.PluginOptions{})
	buf := make([]byte, 0, 256)
	buf, _, _ = p.AppendKey(buf[:0], r)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf, _, _ = p.AppendKey(buf[:0], r)
	}
}
