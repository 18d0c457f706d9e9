package gateway_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/admin"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// The gateway's side of the admin API: what a purge does to the cache,
// and the readiness probe of the traffic listener. The admin API itself
// is tested in internal/admin.

// startAdmin serves g's admin API (internal/admin, token testToken) on a
// loopback listener.
func startAdmin(t testing.TB, g *gateway.Gateway) string {
	t.Helper()
	a := admin.New(g, testToken)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve admin: %v", err)
		}
		a.Close()
	})
	return "http://" + ln.Addr().String()
}

// adminHandler is g's admin API (token testToken) as a handler.
func adminHandler(t testing.TB, g *gateway.Gateway) http.Handler {
	a := admin.New(g, testToken)
	t.Cleanup(a.Close)
	return a.Handler()
}

func TestAdminPurge(t *testing.T) {
	servers := valkeytest.Start(t, 3)
	origin := newTestOrigin(t)
	g, base := startGateway(t, testConfig(origin.URL, servers))
	api := startAdmin(t, g)
	for _, tc := range []struct {
		name, path, body string
		code             int
		keys             int
		after            string // Cache-Status of a GET once the purge reached the L1
	}{
		{"url", "/p-url", `{"url": "` + base + `/p-url"}`, 200, 1, "edgecache; fwd=uri-miss; stored"},
		{"key", "/p-key", `{"key": "` + keyOf(t, base+"/p-key") + `"}`, 200, 1, "edgecache; fwd=uri-miss; stored"},
		{"soft url", "/p-soft", `{"url": "` + base + `/p-soft", "soft": true}`, 200, 1, "edgecache; fwd=stale; stored"},
		{"nothing", "/p-bad", `{}`, 400, 0, ""},
		{"two things", "/p-bad", `{"key": "a", "tag": "b"}`, 400, 0, ""},
		{"unknown field", "/p-bad", `{"uri": "x"}`, 400, 0, ""},
		{"not json", "/p-bad", `purge everything`, 400, 0, ""},
		{"no route", "/p-bad", `{"url": "ftp://elsewhere/x"}`, 400, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code == http.StatusOK { // an entry in Valkey and the L1
				get(t, base+tc.path)
				wantStatus(t, get(t, base+tc.path), 200, hitL2)
			}
			code, body, _ := testutil.Do(t, nil, "POST", api+"/admin/purge", testToken, tc.body)
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			if code != 200 {
				if !strings.Contains(body, `"error"`) {
					t.Errorf("error body %s", body)
				}
				return
			}
			var res gateway.PurgeResult
			if err := json.Unmarshal([]byte(body), &res); err != nil || res.Keys != tc.keys {
				t.Fatalf("%s: %+v %v, want %d keys", body, res, err, tc.keys)
			}
			// Valkey's invalidation reaches the L1 an instant after the
			// purge's reply.
			waitFor(t, "the purge reaches the L1", func() (bool, string) {
				r := get(t, base+tc.path)
				return r.cacheStatus == tc.after, r.cacheStatus
			})
		})
	}
}

// TestReadyz checks the traffic listener's readiness: ready with the
// embedded store, with shards that answer, and not with every shard down.
func TestReadyz(t *testing.T) {
	origin := newTestOrigin(t)
	_, base := startGateway(t, testConfig(origin.URL, nil))
	if r := get(t, base+"/readyz"); r.status != 200 || !strings.Contains(r.body, "embedded") {
		t.Errorf("embedded: %d %q", r.status, r.body)
	}
	servers := valkeytest.Start(t, 2)
	_, base = startGateway(t, testConfig(origin.URL, servers))
	if r := get(t, base+"/readyz"); r.status != 200 || r.body != "ready\n" {
		t.Errorf("shards up: %d %q", r.status, r.body)
	}
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{{Name: "gone", Addr: freeAddr(t), Weight: 1}}
	_, base = startGateway(t, cfg)
	if r := get(t, base+"/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("every shard down: %d %q", r.status, r.body)
	}
	if r := get(t, base+"/healthz"); r.status != 200 {
		t.Errorf("healthz: %d", r.status)
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
