package gateway

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// TestRecentKeysForget: keys are trusted again after the grace, and keys
// never looked up again are swept, so the set stays bounded.
func TestRecentKeysForget(t *testing.T) {
	var r recentKeys
	for i := range 3 * sweepEvery {
		r.add("k" + strconv.Itoa(i))
	}
	now := time.Now().UnixNano()
	if !r.has("k1", now) || r.has("other", now) {
		t.Fatal("membership within the grace")
	}
	later := time.Now().Add(2 * localInvalidationGrace).UnixNano()
	if r.has("k2", later) {
		t.Fatal("still untrusted after the grace")
	}
	r.sweep(later)
	if n := r.n.Load(); n != 0 {
		t.Fatalf("%d keys left after a sweep past the grace", n)
	}
	count := 0
	r.m.Range(func(any, any) bool { count++; return true })
	if count != 0 {
		t.Fatalf("%d entries left in the map", count)
	}
}

// TestVaryMarkerFilled: a fill that creates a Vary marker remembers the
// primary key as filled, as it does the variant's key. Until Valkey's
// invalidation push arrives (Redis 7 sends it after the reply to the
// write), the L1 may still say "no such key" at the primary, and the next
// request for it would miss and go to the origin again: on a loaded
// machine TestRefreshOutlivesRequest met a second origin request that way.
func TestVaryMarkerFilled(t *testing.T) {
	srv := valkeytest.Start(t, 1)[0]
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "X-Req")
		_, _ = w.Write([]byte("v"))
	}))
	defer origin.Close()
	cfg := &config.Config{
		Routes: []config.Route{{Name: "test", Origin: origin.URL, DefaultTTL: time.Minute}},
		Shards: []config.Shard{{Name: "a", Addr: srv.Addr}},
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	req := httptest.NewRequest(http.MethodGet, "http://gw/v?a=1", nil)
	req.Header.Set("X-Req", "A")
	rec := httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, req)
	if cs := rec.Header().Get("Cache-Status"); rec.Code != 200 || !strings.Contains(cs, "stored") {
		t.Fatalf("first request: %d %q, want a stored fill", rec.Code, cs)
	}
	var keys []string
	g.filled.m.Range(func(k, _ any) bool { keys = append(keys, k.(string)); return true })
	var primary, variant bool
	for _, k := range keys {
		switch {
		case k == "http://gw/v?a=1":
			primary = true
		case strings.HasPrefix(k, "http://gw/v?a=1\x00v:"):
			variant = true
		}
	}
	if !primary || !variant {
		t.Fatalf("filled holds %q: want the primary key (the marker) and the variant's", keys)
	}
}
