package policies

import (
	"net/http"
	"testing"
)

func BenchmarkDefaultKey(b *testing.B) {
	r := &Request{
		Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/v1/products/42",
		RawQuery: "sort=price&page=2&fields=name,price&lang=en&currency=EUR",
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = DefaultKey{}.AppendKey(buf[:0], r)
	}
}

func BenchmarkParseCacheControl(b *testing.B) {
	for _, bc := range []struct {
		name string
		v    []string
	}{
		{"public-max-age", []string{"public, max-age=3600"}},
		{"no-store", []string{"no-store"}},
		{"stale-windows", []string{"public, s-maxage=600, max-age=60, stale-while-revalidate=30, stale-if-error=86400"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ParseCacheControl(bc.v)
			}
		})
	}
}

func BenchmarkDefaultTTL(b *testing.B) {
	req := &Request{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/", Header: http.Header{
		"Accept": {"application/json"}, "Accept-Encoding": {"gzip"}, "User-Agent": {"bench"},
	}}
	resp := &Response{Status: 200, Header: http.Header{
		"Cache-Control": {"public, max-age=3600, stale-while-revalidate=30"},
		"Content-Type":  {"application/json"},
		"Age":           {"12"},
		"Vary":          {"Accept-Encoding"},
		"Date":          {"Fri, 14 Mar 2025 15:00:00 GMT"},
	}}
	p := DefaultTTL{}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Decide(req, resp, ttlNow)
	}
}
