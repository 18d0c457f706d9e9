package policies_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/edgecache/edgecache/policies"
)

func ExampleDefaultKey() {
	r := &policies.Request{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/items", RawQuery: "page=2&&sort=asc"}
	fmt.Println(string(policies.DefaultKey{}.AppendKey(nil, r)))
	// Output: https://api.example.com/items?page=2&sort=asc
}

func ExampleParseCacheControl() {
	cc := policies.ParseCacheControl([]string{"Public, max-age=60", "stale-if-error=600"})
	fmt.Println(cc.Public, cc.MaxAge, cc.StaleIfError)
	// Output: true 1m0s 10m0s
}

func ExampleDefaultTTL() {
	p := policies.DefaultTTL{Default: time.Minute}
	r := &policies.Request{Method: "GET", Header: http.Header{}}
	now := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)

	d := p.Decide(r, &policies.Response{Status: 200, Header: http.Header{
		"Cache-Control": {"max-age=300, stale-while-revalidate=30"},
		"Age":           {"100"},
	}}, now)
	fmt.Println(d.Store, d.TTL, d.StaleWhileRevalidate)

	d = p.Decide(r, &policies.Response{Status: 200, Header: http.Header{"Cache-Control": {"private"}}}, now)
	fmt.Println(d.Store, d.Reason)
	// Output:
	// true 3m20s 30s
	// false private
}
