package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPostContentLocation (RFC 9110 §9.3.3, RFC 9111 §4.4): a POST's
// response with explicit freshness and a Content-Location equal to its URL
// answers later GETs of the URL; without either, or naming another URL,
// or too large to buffer, the POST only invalidates.
func TestPostContentLocation(t *testing.T) {
	type script struct {
		loc, cc string // "self" in loc: the request's own URL, relative; "abs": absolute
		big     bool
		stored  bool
	}
	cases := map[string]script{
		"/p/relative":   {loc: "self", cc: "max-age=60", stored: true},
		"/p/absolute":   {loc: "abs", cc: "max-age=60", stored: true},
		"/p/smaxage":    {loc: "self", cc: "s-maxage=60", stored: true},
		"/p/query?a=1":  {loc: "self", cc: "max-age=60", stored: true},
		"/p/otherquery": {loc: "/p/otherquery?x=1", cc: "max-age=60"},
		"/p/noloc":      {cc: "max-age=60"},
		"/p/other":      {loc: "/elsewhere", cc: "max-age=60"},
		"/p/otherhost":  {loc: "http://other.example/p/otherhost", cc: "max-age=60"},
		"/p/nofresh":    {loc: "self"}, // the route's default_ttl is not explicit
		"/p/nocache":    {loc: "self", cc: "no-cache, max-age=60"},
		"/p/big":        {loc: "self", cc: "max-age=60", big: true},
	}
	var n atomic.Int64
	var base string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		sc := cases[r.URL.RequestURI()]
		if r.Method != http.MethodPost {
			w.Header().Set("Cache-Control", "max-age=60")
			_, _ = io.WriteString(w, "got-"+strconv.FormatInt(i, 10))
			return
		}
		switch sc.loc {
		case "self":
			w.Header().Set("Content-Location", r.URL.RequestURI())
		case "abs":
			w.Header().Set("Content-Location", base+r.URL.RequestURI())
		case "":
		default:
			w.Header().Set("Content-Location", sc.loc)
		}
		if sc.cc != "" {
			w.Header().Set("Cache-Control", sc.cc)
		}
		body := "posted-" + strconv.FormatInt(i, 10)
		if sc.big {
			body = strings.Repeat("x", 4096)
		}
		_, _ = io.WriteString(w, body)
	}))
	defer origin.Close()
	cfg := testConfig(origin.URL, nil)
	cfg.Routes[0].MaxBodyBytes = 1024
	_, base = startGateway(t, cfg)
	for path, sc := range cases {
		t.Run(path, func(t *testing.T) {
			get(t, base+path) // a stored GET, which the POST invalidates
			resp, err := client.Post(base+path, "text/plain", strings.NewReader("data"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("POST: %d", resp.StatusCode)
			}
			r := get(t, base+path)
			hit := strings.HasPrefix(r.cacheStatus, "edgecache; hit")
			if hit != sc.stored || sc.stored && r.body != string(b) {
				t.Fatalf("GET after POST: %q %q (POST gave %q); want stored=%v", r.cacheStatus, trunc(r.body), trunc(string(b)), sc.stored)
			}
			if !sc.stored && !strings.HasPrefix(r.body, "got-") {
				t.Fatalf("GET after POST: %q, want the origin's GET answer", trunc(r.body))
			}
		})
	}
}
