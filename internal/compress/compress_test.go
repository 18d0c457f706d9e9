package compress

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/andybalholm/brotli"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// jsonBody makes a JSON document of about n bytes, like an API response.
func jsonBody(n int) []byte {
	type item struct {
		ID    int      `json:"id"`
		Name  string   `json:"name"`
		Email string   `json:"email"`
		Tags  []string `json:"tags"`
		Score float64  `json:"score"`
	}
	var items []item
	var b []byte
	for i := 0; len(b) < n; i++ {
		items = append(items, item{i, fmt.Sprintf("user %d", i), fmt.Sprintf("user%d@example.com", i), []string{"a", "b", fmt.Sprint(i % 7)}, float64(i) * 1.25})
		b, _ = json.Marshal(items)
	}
	return b[:n]
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 1024, 100 * 1024} {
		body := jsonBody(size)
		for _, c := range []Coding{Identity, Gzip, Zstd, Brotli} {
			t.Run(fmt.Sprintf("%s/%d", c, size), func(t *testing.T) {
				prefix := []byte("keep")
				enc, err := Encode(append([]byte(nil), prefix...), c, body)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(enc, prefix) {
					t.Fatal("dst prefix lost")
				}
				enc = enc[len(prefix):]
				// Decoded by an independent decoder, not only ours.
				var got []byte
				switch c {
				case Identity:
					got = enc
				case Gzip:
					r, err := gzip.NewReader(bytes.NewReader(enc)) // the standard library's
					if err != nil {
						t.Fatal(err)
					}
					got, err = io.ReadAll(r)
					if err != nil {
						t.Fatal(err)
					}
				case Brotli:
					got, err = io.ReadAll(brotli.NewReader(bytes.NewReader(enc)))
					if err != nil {
						t.Fatal(err)
					}
				case Zstd:
					d, _ := zstd.NewReader(bytes.NewReader(enc))
					got, err = io.ReadAll(d)
					d.Close()
					if err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(got, body) {
					t.Fatalf("round trip differs: %d bytes, want %d", len(got), len(body))
				}
				dec, err := Decode(nil, c, enc, int64(len(body)))
				if err != nil || !bytes.Equal(dec, body) {
					t.Fatalf("Decode: %v (%d bytes)", err, len(dec))
				}
				if len(body) > 0 && c != Identity {
					if _, err := Decode(nil, c, enc, int64(len(body)-1)); err == nil {
						t.Fatal("Decode past its limit did not fail")
					}
				}
				if size == 100*1024 && c != Identity && len(enc) > len(body)/4 {
					t.Errorf("%s: 100 KiB JSON only compressed to %d bytes", c, len(enc))
				}
			})
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	for _, c := range []Coding{Gzip, Zstd, Brotli} {
		if _, err := Decode(nil, c, []byte("not compressed at all"), 1<<20); err == nil {
			t.Errorf("%s: corrupt input decoded", c)
		}
	}
	if _, err := Encode(nil, Coding(9), nil); err == nil {
		t.Error("unknown coding encoded")
	}
}

func TestCompressible(t *testing.T) {
	def := NewTypes(nil)
	tests := []struct {
		ct   string
		want bool
	}{
		{"text/html", true},
		{"text/html; charset=utf-8", true},
		{"TEXT/CSS", true},
		{"application/json", true},
		{"application/problem+json", true},
		{"application/atom+xml", true},
		{"application/javascript", true},
		{"application/wasm", true},
		{"image/svg+xml", true},
		{"image/png", false},
		{"image/jpeg", false},
		{"video/mp4", false},
		{"application/zip", false},
		{"application/octet-stream", false},
		{"font/woff2", false},
		{"", false},
		{"text", false},
		{"+json", false},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			if got := def.Compressible(tt.ct); got != tt.want {
				t.Fatalf("Compressible(%q) = %v", tt.ct, got)
			}
		})
	}
	custom := NewTypes([]string{"application/x-custom", " Image/* "})
	if !custom.Compressible("application/x-custom") || !custom.Compressible("image/png") || custom.Compressible("text/html") {
		t.Fatal("custom list")
	}
	if n := testing.AllocsPerRun(100, func() { def.Compressible("application/problem+json; charset=utf-8") }); n != 0 {
		t.Fatalf("Compressible: %v allocs", n)
	}
}

func TestValidType(t *testing.T) {
	for p, want := range map[string]bool{
		"text/*": true, "application/json": true, "*+json": true, "image/svg+xml": true,
		"*/*": false, "text": false, "text/": false, "/json": false, "*+": false, "text/h*": false, "a/b; q=1": false,
	} {
		if ValidType(p) != want {
			t.Errorf("ValidType(%q) != %v", p, want)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{1024, 100 * 1024} {
		body := jsonBody(size)
		for _, c := range []Coding{Gzip, Zstd, Brotli} {
			b.Run(fmt.Sprintf("%s/%dKiB", c, size/1024), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				var out []byte
				for b.Loop() {
					out, _ = Encode(out[:0], c, body)
				}
				b.ReportMetric(float64(len(out)), "out-bytes")
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{1024, 100 * 1024} {
		body := jsonBody(size)
		for _, c := range []Coding{Gzip, Zstd, Brotli} {
			enc, _ := Encode(nil, c, body)
			b.Run(fmt.Sprintf("%s/%dKiB", c, size/1024), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				var out []byte
				for b.Loop() {
					out, _ = Decode(out[:0], c, enc, int64(size))
				}
			})
		}
	}
}

// TestBrotliWindowBySize: a body that fits in BrotliSmallWindowBits is
// encoded with the small-window writer, decodes to itself, and comes out
// within 1% of what the default 4 MiB window makes of it (the window
// holds the whole body either way; the writers' hashers differ).
func TestBrotliWindowBySize(t *testing.T) {
	small := 1 << BrotliSmallWindowBits
	for _, size := range []int{1 << 10, 16 << 10, small, small + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			body := jsonBody(size)[:size]
			enc, err := Encode(nil, Brotli, body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(brotli.NewReader(bytes.NewReader(enc)))
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("decoded %d bytes (err %v), want the %d of the body", len(got), err, size)
			}
			var def bytes.Buffer
			w := brotli.NewWriterLevel(&def, BrotliLevel)
			if _, err := w.Write(body); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes: %d encoded, %d with the default window", size, len(enc), def.Len())
			if float64(len(enc)) > 1.01*float64(def.Len()) {
				t.Errorf("%d bytes encoded, the default window makes %d", len(enc), def.Len())
			}
			_, pool := brotliWriter(size)
			if want := size <= small; (pool == &brotliSmallPool) != want {
				t.Errorf("size %d: small-window pool %v, want %v", size, pool == &brotliSmallPool, want)
			}
		})
	}
}

// htmlBody makes an HTML page of about n bytes, like a shop's listing.
func htmlBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("<!doctype html><html><head><title>Shop</title><link rel=stylesheet href=/s.css></head><body><ul class=products>")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `<li class="product" data-id="%d"><a href="/products/%d">Product %d</a><span class="price">%d.%02d €</span></li>`+"\n", i, i, i*7, i%300, i%100)
	}
	return b.Bytes()[:n]
}

// retained is the heap that one of make's results keeps in use after GC
// (the mean of several, kept alive together, so that other garbage is
// noise), and one of them.
func retained(make func() any) (uint64, any) {
	const n = 8
	var before, after runtime.MemStats
	keep := make() // the first use's one-time allocations out of the figure
	runtime.GC()
	runtime.ReadMemStats(&before)
	var all [n]any
	for i := range all {
		all[i] = make()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(&all)
	if after.HeapInuse < before.HeapInuse {
		return 0, keep
	}
	return (after.HeapInuse - before.HeapInuse) / n, keep
}

// TestSmallEncoderState: the writers Encode uses for small bodies hold
// far less memory between uses than the full ones, and their output stays
// within a few percent of the full ones' on JSON and HTML.
func TestSmallEncoderState(t *testing.T) {
	const maxGrowth = 0.06 // stateless gzip vs level 6 (measured: +3.6% to +4.7% at 1 KiB)
	for _, size := range []int{512, GzipStatelessMax} {
		for name, body := range map[string][]byte{"json": jsonBody(size), "html": htmlBody(size)} {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				small, err := Encode(nil, Gzip, body) // GzipStatelessMax: the stateless writer
				if err != nil {
					t.Fatal(err)
				}
				var full bytes.Buffer
				w, _ := kgzip.NewWriterLevel(&full, GzipLevel)
				_, _ = w.Write(body)
				_ = w.Close()
				growth := float64(len(small)-full.Len()) / float64(full.Len())
				t.Logf("gzip %d bytes: level %d %d, stateless %d (%+.1f%%)", size, GzipLevel, full.Len(), len(small), 100*growth)
				if growth > maxGrowth {
					t.Errorf("stateless gzip %d bytes is %.1f%% larger than level %d's %d", len(small), 100*growth, GzipLevel, full.Len())
				}
				if len(small) >= len(body) {
					t.Errorf("stateless gzip %d bytes is not smaller than the body (%d)", len(small), len(body))
				}
			})
		}
	}
	body := jsonBody(1 << 10)
	use := func(level int) func() any {
		return func() any {
			w, _ := kgzip.NewWriterLevel(io.Discard, level)
			_, _ = w.Write(body)
			_ = w.Close()
			return w
		}
	}
	fullMem, k1 := retained(use(GzipLevel))
	smallMem, k2 := retained(use(kgzip.StatelessCompression))
	runtime.KeepAlive(k1)
	runtime.KeepAlive(k2)
	t.Logf("gzip writer after a 1 KiB body: level %d holds %d KiB, stateless %d KiB", GzipLevel, fullMem>>10, smallMem>>10)
	if smallMem > 128<<10 || smallMem*4 > fullMem {
		t.Errorf("stateless gzip writer holds %d KiB, level %d's %d KiB: not the saving GzipStatelessMax is for", smallMem>>10, GzipLevel, fullMem>>10)
	}
	zMem := func(opts ...zstd.EOption) func() any {
		return func() any {
			e, _ := zstd.NewWriter(nil, append([]zstd.EOption{zstd.WithEncoderLevel(ZstdLevel), zstd.WithEncoderConcurrency(1)}, opts...)...)
			_ = e.EncodeAll(body, nil)
			return e
		}
	}
	zFull, z1 := retained(zMem())
	zLow, z2 := retained(zMem(zstd.WithLowerEncoderMem(true)))
	t.Logf("zstd encoder after a 1 KiB body: %d KiB, with lower encoder memory %d KiB", zFull>>10, zLow>>10)
	if got, want := z2.(*zstd.Encoder).EncodeAll(body, nil), z1.(*zstd.Encoder).EncodeAll(body, nil); len(got) > len(want)+len(want)/50 {
		t.Errorf("zstd with lower encoder memory: %d bytes, default %d", len(got), len(want))
	}
	if zLow >= zFull {
		t.Errorf("zstd with lower encoder memory holds %d KiB, default %d KiB", zLow>>10, zFull>>10)
	}
}
