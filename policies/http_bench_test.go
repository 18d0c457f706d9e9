package policies

import (
	"net/http"
	"testing"
	"time"
)

// Benchmarks of the decisions a hit may call (ranges, conditionals, Vary)
// and of the fill-time parsers; each must report 0 allocs/op.

func BenchmarkParseRangeSingle(b *testing.B) {
	v := []string{"bytes=100-199"}
	b.ReportAllocs()
	for b.Loop() {
		var buf [1]ByteRange
		var cr [48]byte
		rs, _ := ParseRange(buf[:0], v, 1<<20)
		AppendContentRange(cr[:0], rs[0], 1<<20)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	h := http.Header{"If-None-Match": {`"a", W/"b"`}}
	v := Validators{ETag: `"b"`, LastModified: ttlNow, Date: ttlNow.Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(http.MethodGet, h, &v)
	}
}

func BenchmarkAppendAcceptLanguage(b *testing.B) {
	v := []string{"de-DE;q=0.5, en-US, fr;q=0.8, *;q=0.1"}
	b.ReportAllocs()
	for b.Loop() {
		var buf [64]byte
		AppendAcceptLanguage(buf[:0], v)
	}
}

func BenchmarkParseTargeted(b *testing.B) {
	v := []string{"max-age=60, stale-while-revalidate=30, stale-if-error=3600"}
	b.ReportAllocs()
	for b.Loop() {
		ParseTargeted(v)
	}
}

func BenchmarkParseHTTPDate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ParseHTTPDate("Sun, 06 Nov 1994 08:49:37 GMT")
	}
}
