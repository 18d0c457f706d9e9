package entry

import (
	"net/http"
	"testing"
)

// The benchmarks use sample: a 1 KiB body and 6 header names.

func BenchmarkEncode(b *testing.B) {
	e := sample()
	buf := make([]byte, 0, Size(e))
	b.ReportAllocs()
	b.SetBytes(int64(Size(e)))
	for b.Loop() {
		buf = Encode(buf[:0], e)
	}
}

func BenchmarkDecode(b *testing.B) {
	buf := Encode(nil, sample())
	var e Entry
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := Decode(buf, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPeek(b *testing.B) {
	buf := Encode(nil, sample())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Peek(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	src := sample().Header.Clone()
	src["Connection"] = []string{"keep-alive"}
	src["Set-Cookie"] = []string{"a=1"}
	src["Content-Length"] = []string{"1024"}
	b.ReportAllocs()
	for b.Loop() {
		dst := make(http.Header, len(src))
		Filter(dst, src)
	}
}
