package gateway_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/testutil"
)

// TestTargetedCacheControl: the route's own targeted field, then
// CDN-Cache-Control, decide for this cache over Cache-Control (RFC 9213
// §2.2) — for storage and freshness, and for the decisions made on every
// use (no-cache, must-revalidate, the route's default stale windows).
// CDN-Cache-Control is forwarded to clients, the route's own field is not.
func TestTargetedCacheControl(t *testing.T) {
	heads := map[string][]string{
		"/own":        {"Cache-Control", "no-store", "Edgecache-Control", "max-age=60"},
		"/cdn":        {"Cache-Control", "max-age=60", "Cdn-Cache-Control", "no-cache", "Etag", `"v"`},
		"/revalidate": {"Cache-Control", "max-age=1", "Cdn-Cache-Control", "max-age=1, must-revalidate"},
		"/swr":        {"Cache-Control", "max-age=1"},
		"/invalid":    {"Cache-Control", "max-age=60", "Cdn-Cache-Control", "max-age=1.5, ,"}, // invalid: ignored whole
	}
	o := testutil.NewOrigin(t)
	o.Default(func(w http.ResponseWriter, r *http.Request, n int) {
		kv := heads[r.URL.Path]
		for i := 0; i < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		if r.Header.Get("If-None-Match") == `"v"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, strconv.Itoa(n))
	})
	count := o.Count
	_, base, clock := clockedGateway(t, o, 0, func(r *config.Route) {
		r.Caching.TargetedField = "Edgecache-Control"
		r.StaleWhileRevalidate = time.Minute
	})

	// The own field wins over no-store; clients see the origin's
	// Cache-Control but not the own field.
	get(t, base+"/own")
	r := get(t, base+"/own")
	if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") || count("/own") != 1 {
		t.Fatalf("/own: %q after %d origin requests; want a hit", r.cacheStatus, count("/own"))
	}
	if r.header.Get("Edgecache-Control") != "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("/own: header %v", r.header)
	}
	// CDN-Cache-Control: no-cache wins over max-age=60: every use is
	// revalidated; it is forwarded.
	get(t, base+"/cdn")
	r = get(t, base+"/cdn")
	if strings.HasPrefix(r.cacheStatus, "edgecache; hit") || count("/cdn") != 2 || r.body != "1" {
		t.Fatalf("/cdn: %q %q after %d origin requests; want a revalidation", r.cacheStatus, r.body, count("/cdn"))
	}
	if r.header.Get("Cdn-Cache-Control") != "no-cache" {
		t.Fatalf("/cdn: CDN-Cache-Control not forwarded: %v", r.header)
	}
	// An invalid targeted field is ignored whole: Cache-Control applies.
	get(t, base+"/invalid")
	if r = get(t, base+"/invalid"); !strings.HasPrefix(r.cacheStatus, "edgecache; hit") {
		t.Fatalf("/invalid: %q, want a hit under Cache-Control's max-age", r.cacheStatus)
	}
	// must-revalidate from CDN-Cache-Control: once stale, not served under
	// the route's default stale-while-revalidate; without it, it is.
	get(t, base+"/revalidate")
	get(t, base+"/swr")
	clock.Advance(1100 * time.Millisecond) // stale by their own freshness
	if r = get(t, base+"/revalidate"); r.body != "2" {
		t.Fatalf("/revalidate: stale served (%q %q) despite the targeted must-revalidate", r.body, r.cacheStatus)
	}
	if r = get(t, base+"/swr"); r.body != "1" {
		t.Fatalf("/swr: got %q %q, want the stale body under the route's stale-while-revalidate", r.body, r.cacheStatus)
	}
}
