package wasm_test

import (
	"testing"

	"github.com/edgecache/edgecache/hook"
)

// BenchmarkCall is the host's cost of one hook call on a trivial guest
// (wat/minimal.wasm: read the path, set it as the key): pool, deadline,
// wazero's termination checks and two host functions. Memoized, the same
// call is a memo lookup.
func BenchmarkCall(b *testing.B) {
	h := newHost(b)
	r := request("/products/12345", "a=1")
	for _, bc := range []struct {
		name string
		memo int
	}{{"unmemoized", -1}, {"memoized", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			p := load(b, h, "wat/minimal.wasm", hook.PluginOptions{MemoEntries: bc.memo, MaxCallsPerInstance: 1 << 30})
			dst := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				dst, _, _ = p.AppendKey(dst[:0], r)
			}
		})
	}
}

// BenchmarkCallParallel is BenchmarkCall from every core, on one pool.
func BenchmarkCallParallel(b *testing.B) {
	h := newHost(b)
	p := load(b, h, "wat/minimal.wasm", hook.PluginOptions{MemoEntries: -1, MaxCallsPerInstance: 1 << 30})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := request("/products/12345", "a=1")
		dst := make([]byte, 0, 256)
		for pb.Next() {
			dst, _, _ = p.AppendKey(dst[:0], r)
		}
	})
}
