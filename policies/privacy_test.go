package policies

import (
	"net/http"
	"testing"
	"time"
)

func TestPrivate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cookie := http.Header{"Cookie": {"session=victim"}}
	for _, tc := range []struct {
		name string
		path string
		req  http.Header
		resp http.Header
		o    PrivacyOptions
		want string
	}{
		{"plain", "/a", nil, http.Header{"Cache-Control": {"max-age=60"}}, PrivacyOptions{}, ""},
		{"set-cookie", "/a", nil, http.Header{"Set-Cookie": {"s=1"}, "Cache-Control": {"max-age=60"}}, PrivacyOptions{}, ReasonSetCookie},
		{"set-cookie opted in", "/a", nil, http.Header{"Set-Cookie": {"s=1"}}, PrivacyOptions{StoreSetCookie: true}, ""},
		{"cookie, no freshness (default_ttl)", "/a", cookie, http.Header{}, PrivacyOptions{}, ReasonCookie},
		{"cookie, heuristic only", "/a", cookie, http.Header{"Last-Modified": {"Mon, 01 Dec 2025 00:00:00 GMT"}}, PrivacyOptions{}, ReasonCookie},
		{"cookie, max-age", "/a", cookie, http.Header{"Cache-Control": {"max-age=60"}}, PrivacyOptions{}, ""},
		{"cookie, s-maxage", "/a", cookie, http.Header{"Cache-Control": {"s-maxage=60"}}, PrivacyOptions{}, ""},
		{"cookie, Expires", "/a", cookie, http.Header{"Expires": {"Tue, 01 Dec 2026 13:00:00 GMT"}}, PrivacyOptions{}, ""},
		{"cookie, max-age=0", "/a", cookie, http.Header{"Cache-Control": {"max-age=0"}}, PrivacyOptions{}, ReasonCookie},
		{"cookie, no-cache with max-age", "/a", cookie, http.Header{"Cache-Control": {"no-cache, max-age=60"}, "Etag": {`"x"`}}, PrivacyOptions{}, ReasonCookie},
		{"cookie opted in", "/a", cookie, http.Header{}, PrivacyOptions{StoreWithCookie: true}, ""},
		{"armor off", "/account.php/x.css", nil, http.Header{"Content-Type": {"text/html"}}, PrivacyOptions{}, ""},
		{"armor: html as css", "/account.php/x.css", nil, http.Header{"Content-Type": {"text/html"}}, PrivacyOptions{DeceptionArmor: true}, ReasonDeception},
		{"armor: css as css", "/s/APP.CSS", nil, http.Header{"Content-Type": {"Text/CSS; charset=utf-8"}}, PrivacyOptions{DeceptionArmor: true}, ""},
		{"armor: no type", "/x.js", nil, http.Header{}, PrivacyOptions{DeceptionArmor: true}, ReasonDeception},
		{"armor: unknown extension", "/x.php", nil, http.Header{"Content-Type": {"text/html"}}, PrivacyOptions{DeceptionArmor: true}, ""},
		{"armor: no extension", "/account", nil, http.Header{"Content-Type": {"text/html"}}, PrivacyOptions{DeceptionArmor: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Request{Method: "GET", Path: tc.path, Header: tc.req}
			if got := Private(r, &Response{Status: 200, Header: tc.resp}, tc.o, now); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoopCount(t *testing.T) {
	for _, tc := range []struct {
		vals []string
		want int
	}{
		{nil, 0},
		{[]string{"edgecache"}, 1},
		{[]string{"other, EdgeCache; v=1", " edgecache "}, 2},
		{[]string{"edgecache2, xedgecache"}, 0},
		{[]string{",,edgecache,,"}, 1},
	} {
		if got := LoopCount(tc.vals, "edgecache"); got != tc.want {
			t.Errorf("LoopCount(%q) = %d, want %d", tc.vals, got, tc.want)
		}
	}
}

func TestOriginAllowed(t *testing.T) {
	hosts := map[string]bool{"origin.internal:8080": true, "cdn.example": true}
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://origin.internal:8080/a", true},
		{"http://ORIGIN.internal:8080/a?x", true},
		{"https://cdn.example:443/a", true},
		{"http://cdn.example/a", true},
		{"http://origin.internal/a", false},
		{"http://169.254.169.254/latest/meta-data", false},
		{"http://user@cdn.example/a", false},
		{"ftp://cdn.example/a", false},
		{"/relative", false},
		{"http://cdn.example.evil/a", false},
		{"://bad", false},
	} {
		if got := OriginAllowed(tc.url, hosts); got != tc.want {
			t.Errorf("OriginAllowed(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}
}
