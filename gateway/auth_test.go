package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAuthorization (RFC 9111 §3.5): a response to a request with
// Authorization is stored, and a stored response answers such a request,
// only when it has public, s-maxage or must-revalidate. Anything else an
// authorized request gets is its own: never stored, never shared with a
// concurrent request (no coalescing), whatever the case of the field.
func TestAuthorization(t *testing.T) {
	var n atomic.Int64
	cc := map[string]string{
		"/plain": "max-age=60", "/public": "public, max-age=60", "/smax": "s-maxage=60",
		"/mr": "max-age=60, must-revalidate", "/slow": "max-age=60",
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path == "/slow" {
			time.Sleep(100 * time.Millisecond)
		}
		if v, ok := cc[r.URL.Path]; ok {
			w.Header().Set("Cache-Control", v)
		}
		_, _ = io.WriteString(w, "user="+r.Header.Get("Authorization"))
	}))
	defer origin.Close()
	_, base := startGateway(t, testConfig(origin.URL, nil))
	send := func(path, auth string) result { return getWith(t, base+path, "Authorization", auth) }
	hit := func(r result) bool { return strings.HasPrefix(r.cacheStatus, "edgecache; hit") }

	// A stored entry without those directives does not answer Alice; her
	// answer is not stored over it.
	send("/plain", "")
	if r := send("/plain", "Bearer alice"); hit(r) || r.body != "user=Bearer alice" {
		t.Fatalf("/plain with Authorization: %q %q, want the origin's answer", r.cacheStatus, r.body)
	}
	if r := send("/plain", ""); !hit(r) || r.body != "user=" {
		t.Fatalf("/plain anonymous after Alice: %q %q", r.cacheStatus, r.body)
	}
	// An authorized fill of a route default (no directives) stores nothing.
	send("/default", "Bearer alice")
	if r := send("/default", ""); hit(r) || r.body != "user=" {
		t.Fatalf("/default anonymous after Alice: %q %q", r.cacheStatus, r.body)
	}
	// public, s-maxage, must-revalidate: stored from Alice's request and
	// reused for everyone.
	for _, p := range []string{"/public", "/smax", "/mr"} {
		send(p, "Bearer alice")
		before := n.Load()
		if r := send(p, "Bearer bob"); !hit(r) || r.body != "user=Bearer alice" {
			t.Errorf("%s for Bob: %q %q, want Alice's stored answer", p, r.cacheStatus, r.body)
		}
		if r := send(p, ""); !hit(r) || n.Load() != before {
			t.Errorf("%s anonymous: %q", p, r.cacheStatus)
		}
	}
	// Concurrent authorized requests for one key each get their own.
	var wg sync.WaitGroup
	users := []string{"a", "b", "c", "d", "e"}
	got := make([]string, len(users))
	for i, u := range users {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = send("/slow", "Bearer "+u).body }()
	}
	wg.Wait()
	for i, u := range users {
		if got[i] != "user=Bearer "+u {
			t.Errorf("user %s got %q", u, got[i])
		}
	}
}

// TestAuthorizationAnyCase: the field's presence decides, whatever the
// case of its name or its value, on the fast path too.
func TestAuthorizationAnyCase(t *testing.T) {
	o, addr, _ := hostileGateway(t, 1, nil)
	rawDo(t, addr, get1("/private")) // an entry without public exists
	for _, h := range []string{"Authorization: Bearer alice\r\n", "authorization: x\r\n", "AUTHORIZATION: \r\n"} {
		n := o.count()
		r := rawDo(t, addr, get1("/private", h))
		if strings.HasPrefix(r.header.Get("Cache-Status"), "edgecache; hit") || o.count() != n+1 {
			t.Errorf("%q was answered from the cache: %q", h, r.header.Get("Cache-Status"))
		}
	}
	if _, ok := o.last().Header["Authorization"]; !ok {
		t.Fatal("the origin did not get the (empty) credentials field")
	}
}
