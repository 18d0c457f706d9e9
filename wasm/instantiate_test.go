package wasm

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/edgecache/edgecache/hook"
)

// BenchmarkInstantiate measures creating one instance of each language's
// example (instantiation, _initialize and init; the module is compiled
// already) and reports its memory: the guest's linear memory after init
// and the Go heap the instance holds.
func BenchmarkInstantiate(b *testing.B) {
	modules := []struct{ name, file, config string }{
		{"wat", "wat/minimal.wasm", ""},
		{"c", "examples/c-ttlbystatus.wasm", ""},
		{"rust", "examples/rust-pathttl.wasm", `{"/static/": "1d"}`},
		{"assemblyscript", "examples/assemblyscript-misspolicy.wasm", `{"bypass_cookies": ["s"]}`},
		{"go", "examples/go-stripparams.wasm", ""},
	}
	ctx := context.Background()
	h, err := NewHost(ctx, Options{CacheDir: filepath.Join(os.TempDir(), "edgecache-plugins-test-cache")})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	for _, m := range modules {
		b.Run(m.name, func(b *testing.B) {
			bin, err := os.ReadFile("../plugins/testdata/" + m.file)
			if err != nil {
				b.Fatal(err)
			}
			p, err := h.Load(ctx, bin, hook.PluginOptions{Name: m.name, Config: []byte(m.config), PoolSize: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(ctx)

			// Memory: hold a few instances and divide.
			const hold = 8
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			held := make([]*instance, hold)
			for i := range held {
				if held[i], err = p.newInstance(ctx); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			linear := held[0].mem.Size()
			for _, in := range held {
				p.discard(in)
			}

			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				in, err := p.newInstance(ctx)
				if err != nil {
					b.Fatal(err)
				}
				p.discard(in)
			}
			b.ReportMetric(float64(linear), "linear-B/inst")
			b.ReportMetric(float64(int64(after.HeapInuse-before.HeapInuse)/hold), "heap-B/inst")
		})
	}
}
