package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
)

// methodOrigin answers GET and HEAD with a cacheable body and any other
// method with 207, naming the method it saw.
func methodOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin-Method", r.Method)
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			w.Header().Set("Cache-Control", "max-age=300")
			_, _ = io.WriteString(w, "page")
			return
		}
		w.WriteHeader(207)
		_, _ = io.WriteString(w, "multi")
	}))
	t.Cleanup(o.Close)
	return o
}

// TestExtensionMethodsReachOrigin: methods a route does not restrict go
// to the origin, extension methods included (RFC 9110 §9.1, §16.1: the
// method token is extensible; M-SEARCH is UPnP's, PROPFIND and MKCOL
// WebDAV's). A safe one (PROPFIND) leaves the cached GET alone; an unsafe
// or unknown one that succeeds invalidates it (RFC 9111 §4.4). CONNECT and
// TRACE are refused.
func TestExtensionMethodsReachOrigin(t *testing.T) {
	origin := methodOrigin(t)
	_, base := startGateway(t, testConfig(origin.URL, nil))
	for _, tc := range []struct {
		method     string
		want       int
		invalidate bool
	}{
		{"M-SEARCH", 207, true},
		{"PROPFIND", 207, false},
		{"REPORT", 207, false},
		{"MKCOL", 207, true},
		{"LOCK", 207, true},
		{"X_CUSTOM", 207, true},
		{"TRACE", http.StatusMethodNotAllowed, false},
		{"CONNECT", http.StatusMethodNotAllowed, false},
	} {
		t.Run(tc.method, func(t *testing.T) {
			url := base + "/dav/" + tc.method
			get(t, url) // stored
			if r := get(t, url); !strings.HasPrefix(r.cacheStatus, "edgecache; hit") {
				t.Fatalf("second GET: %q", r.cacheStatus)
			}
			r := do(t, tc.method, url)
			if r.status != tc.want {
				t.Fatalf("%s: got %d (body %q), want %d", tc.method, r.status, r.body, tc.want)
			}
			if tc.want == 207 && r.header.Get("X-Origin-Method") != tc.method {
				t.Fatalf("origin saw %q", r.header.Get("X-Origin-Method"))
			}
			after := get(t, url)
			if hit := strings.HasPrefix(after.cacheStatus, "edgecache; hit"); hit == tc.invalidate {
				t.Fatalf("GET after %s: %q; want invalidated=%v", tc.method, after.cacheStatus, tc.invalidate)
			}
		})
	}
}

// TestRouteExtensionMethods: a route's methods list may name extension
// methods; others get 405 with the route's Allow.
func TestRouteExtensionMethods(t *testing.T) {
	origin := methodOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Routes = append([]config.Route{{Name: "dav", PathPrefix: "/dav/", Origin: origin.URL, DefaultTTL: time.Minute, Methods: []string{"GET", "PROPFIND", "MKCOL"}}}, cfg.Routes...)
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, base := startGateway(t, cfg)
	for _, tc := range []struct {
		method string
		want   int
	}{{"PROPFIND", 207}, {"MKCOL", 207}, {"GET", 200}, {"HEAD", 200}, {"LOCK", 405}, {"M-SEARCH", 405}, {"POST", 405}} {
		r := do(t, tc.method, base+"/dav/x")
		if r.status != tc.want {
			t.Fatalf("%s: got %d, want %d", tc.method, r.status, tc.want)
		}
		if tc.want == 405 && r.header.Get("Allow") != "GET, HEAD, PROPFIND, MKCOL" {
			t.Fatalf("%s: Allow %q", tc.method, r.header.Get("Allow"))
		}
	}
}
