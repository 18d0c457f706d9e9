package policies_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/edgecache/edgecache/policies"
)

// A hit answering a Range request: parse against the stored body's
// length, then write Content-Range for a single range (no allocation
// with the caller's arrays).
func ExampleParseRange() {
	var buf [1]policies.ByteRange
	ranges, res := policies.ParseRange(buf[:0], []string{"bytes=-100"}, 1000)
	if res == policies.RangeSatisfiable && len(ranges) == 1 {
		var cr [48]byte
		fmt.Printf("206 Content-Range: %s\n", policies.AppendContentRange(cr[:0], ranges[0], 1000))
	}
	_, res = policies.ParseRange(buf[:0], []string{"bytes=5000-"}, 1000)
	fmt.Println(res == policies.RangeUnsatisfiable, string(policies.AppendUnsatisfiedRange(nil, 1000)))
	// Output:
	// 206 Content-Range: bytes 900-999/1000
	// true bytes */1000
}

// RFC 9213: CDN-Cache-Control, when valid, replaces Cache-Control for this
// cache; an invalid one is ignored whole.
func ExampleSelectTargeted() {
	h := http.Header{"Cache-Control": {"no-store"}, "Cdn-Cache-Control": {"max-age=600"}}
	cc, _, ok := policies.SelectTargeted([]string{policies.CDNCacheControl}, func(k string) []string { return h[k] })
	fmt.Println(ok, cc.MaxAge, cc.NoStore)
	h["Cdn-Cache-Control"] = []string{"Max-Age=600"} // not a Structured Field dictionary
	_, _, ok = policies.SelectTargeted([]string{policies.CDNCacheControl}, func(k string) []string { return h[k] })
	fmt.Println(ok)
	// Output:
	// true 10m0s false
	// false
}

// A conditional request answered from a stored response.
func ExampleEvaluate() {
	stored := http.Header{"Etag": {`"v7"`}, "Last-Modified": {"Fri, 14 Mar 2025 12:00:00 GMT"}}
	v := policies.ValidatorsOf(stored, time.Time{})
	req := http.Header{"If-None-Match": {`W/"v7"`}}
	fmt.Println(policies.Evaluate(http.MethodGet, req, &v) == policies.NotModified)
	// Output: true
}
