package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStorableStatuses (RFC 9111 §3, §4.2.1, §5.3; RFC 9110 §5.6.7,
// §15.1): any final status with explicit freshness is stored, unknown
// codes included; without it only the heuristically cacheable codes take
// the route's default_ttl; must-understand lets a known status through
// no-store; 206 is never stored as such; an Expires that is not a valid
// HTTP-date (extra spaces, a one-digit hour, several lines) means already
// expired.
func TestStorableStatuses(t *testing.T) {
	var n atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		q := r.URL.Query()
		for _, e := range q["expires"] {
			w.Header().Add("Expires", e)
		}
		if cc := q.Get("cc"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		code, _ := strconv.Atoi(q.Get("status"))
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "body")
	}))
	defer origin.Close()
	cfg := testConfig(origin.URL, nil)
	cfg.Routes[0].DefaultTTL = time.Minute
	_, base := startGateway(t, cfg)
	future := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) // an hour below 10: "3:04:05" is one digit
	for _, tc := range []struct {
		status  int
		cc      string
		expires []string
		stored  bool
	}{
		{200, "", nil, true}, // default_ttl: heuristically cacheable
		{404, "", nil, true},
		{410, "", nil, true},
		{501, "", nil, true},
		{302, "", nil, false}, // not heuristically cacheable: needs explicit freshness
		{307, "", nil, false},
		{400, "", nil, false},
		{500, "", nil, false},
		{503, "", nil, false},
		{299, "", nil, false},
		{302, "max-age=60", nil, true},
		{303, "max-age=60", nil, true},
		{307, "s-maxage=60", nil, true},
		{400, "max-age=60", nil, true},
		{500, "max-age=60", nil, true},
		{599, "max-age=60", nil, true}, // unknown code, explicit freshness
		{299, "max-age=60", nil, true},
		{302, "public", nil, false}, // public without a lifetime: a guess is not allowed for a 302
		{206, "max-age=60", nil, false},
		{200, "no-store, must-understand, max-age=60", nil, true}, // understood status: no-store ignored
		{299, "no-store, must-understand, max-age=60", nil, false},
		{302, "", []string{future.Format(http.TimeFormat)}, true},
		{200, "", []string{strings.Replace(future.Format(http.TimeFormat), " ", "  ", 1)}, false},  // extra space: invalid, expired
		{200, "", []string{future.Format("Mon, 02 Jan 2006 3:04:05 GMT")}, false},                  // one-digit hour
		{200, "", []string{future.Format(http.TimeFormat), future.Format(http.TimeFormat)}, false}, // several lines
		{200, "", []string{future.Format("Monday, 02-Jan-06 15:04:05 GMT")}, true},                 // obsolete RFC 850 form
		{200, "", []string{future.Format(time.ANSIC)}, true},                                       // asctime
	} {
		q := url.Values{"status": {strconv.Itoa(tc.status)}, "cc": {tc.cc}, "expires": tc.expires}
		path := "/s?" + q.Encode()
		name := strconv.Itoa(tc.status) + " " + tc.cc + " " + strings.Join(tc.expires, "|")
		t.Run(name, func(t *testing.T) {
			get(t, base+path)
			before := n.Load()
			r := get(t, base+path)
			hit := strings.HasPrefix(r.cacheStatus, "edgecache; hit")
			if hit != tc.stored || hit && n.Load() != before {
				t.Fatalf("status %d %q expires %q: second request %q, want stored=%v", tc.status, tc.cc, tc.expires, r.cacheStatus, tc.stored)
			}
		})
	}
}
