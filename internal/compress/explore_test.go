package compress

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func heapAfter(f func() any) (uint64, any) {
	var a, b runtime.MemStats
	runtime.GC(); runtime.GC()
	runtime.ReadMemStats(&a)
	keep := f()
	runtime.GC(); runtime.GC()
	runtime.ReadMemStats(&b)
	return b.HeapInuse - a.HeapInuse, keep
}

func TestExplore(t *testing.T) {
	body := jsonBody(1024)
	big := jsonBody(32 << 10)
	for _, lvl := range []int{6, 5, 4, 1, gzip.StatelessCompression} {
		m, k := heapAfter(func() any {
			w, _ := gzip.NewWriterLevel(nil, lvl)
			var buf bytes.Buffer
			w.Reset(&buf); w.Write(body); w.Close()
			return w
		})
		_ = k
		var b1, b2 bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b1, lvl); w.Write(body); w.Close()
		w, _ = gzip.NewWriterLevel(&b2, lvl); w.Write(big); w.Close()
		t.Logf("gzip %d: retained %d KiB, 1K->%d, 32K->%d", lvl, m>>10, b1.Len(), b2.Len())
	}
	for _, o := range []struct{ name string; opts []zstd.EOption }{
		{"default", nil},
		{"lowmem", []zstd.EOption{zstd.WithLowerEncoderMem(true)}},
		{"lowmem+win64k", []zstd.EOption{zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1 << 16)}},
		{"win64k", []zstd.EOption{zstd.WithWindowSize(1 << 16)}},
	} {
		opts := append([]zstd.EOption{zstd.WithEncoderLevel(ZstdLevel), zstd.WithEncoderConcurrency(1)}, o.opts...)
		m, k := heapAfter(func() any {
			e, _ := zstd.NewWriter(nil, opts...)
			e.EncodeAll(body, nil)
			return e
		})
		e := k.(*zstd.Encoder)
		t.Logf("zstd %s: retained %d KiB, 1K->%d, 32K->%d", o.name, m>>10, len(e.EncodeAll(body, nil)), len(e.EncodeAll(big, nil)))
		m2, _ := heapAfter(func() any { e.EncodeAll(big, nil); return nil })
		t.Logf("   after 32K: +%d KiB", m2>>10)
	}
}
