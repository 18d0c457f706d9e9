package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// TestFastPathMatchesNetHTTP: a gateway on the HTTP/1 fast path (hits
// written from fields serialized once per entry) answers byte for byte
// what one on net/http alone answers — hits, HEAD, 304s, misses, passes —
// with one Date header, the origin's when it sent one.
func TestFastPathMatchesNetHTTP(t *testing.T) {
	servers := valkeytest.Start(t, 1)
	origin := newScripted(t)
	var mu sync.Mutex
	var sentDate string
	origin.handle("/p", func(w http.ResponseWriter, r *http.Request, n int) {
		h := w.Header()
		mu.Lock()
		sentDate = time.Now().UTC().Format(http.TimeFormat)
		h.Set("Date", sentDate)
		mu.Unlock()
		h["Link"] = []string{"</a.css>; rel=preload", "</b.js>; rel=preload"}
		h["X-Odd-CASE"] = []string{"v"}
		h.Set("ETag", `"v1"`)
		reply(w, 200, `{"id":1}`, "Cache-Control", "max-age=60")
	})
	origin.handle("/nodate", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header()["Date"] = nil // net/http sends no Date when the map holds nil
		reply(w, 404, "gone", "Cache-Control", "max-age=60")
	})
	fastCfg := testConfig(origin.URL, servers)
	stdCfg := testConfig(origin.URL, servers)
	stdCfg.Server.DisableFastPath = true
	_, fast := startGateway(t, fastCfg)
	_, std := startGateway(t, stdCfg)

	exchange := func(base, raw string) string {
		t.Helper()
		resp := rawExchange(t, base, raw)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := len(resp.Header["Date"]); n != 1 {
			t.Errorf("%s %q: %d Date headers", base, raw, n)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s cl=%d te=%v\n", resp.Status, resp.ContentLength, resp.TransferEncoding)
		for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
			v := resp.Header[k]
			switch k {
			case "Date", "Age": // the clock's, not the server's
				v = []string{"(present)"}
			}
			fmt.Fprintf(&b, "%s: %q\n", k, v)
		}
		fmt.Fprintf(&b, "body %q", body)
		return b.String()
	}
	req := func(method, path string, extra ...string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: shop.example\r\n" + strings.Join(extra, "") + "\r\n"
	}
	for _, path := range []string{"/p", "/nodate"} {
		// Fill through one gateway; the other reads the same shard.
		exchange(std, req("GET", path))
		for _, raw := range []string{
			req("GET", path), req("GET", path), // L2, then L1
			req("HEAD", path),
			req("GET", path, "If-None-Match: \"v1\"\r\n"),
			req("GET", path, "Connection: close\r\n"),
		} {
			want, got := exchange(std, raw), exchange(fast, raw)
			want = strings.ReplaceAll(want, "detail=l2", "detail=l1") // the L1s fill at different moments
			got = strings.ReplaceAll(got, "detail=l2", "detail=l1")
			if got != want {
				t.Errorf("%q\nfast path:\n%s\nnet/http:\n%s", raw, got, want)
			}
		}
	}
	// The origin's Date is the one a hit carries.
	mu.Lock()
	origDate := sentDate
	mu.Unlock()
	resp := rawExchange(t, fast, req("GET", "/p"))
	resp.Body.Close()
	if got := resp.Header.Get("Date"); got != origDate {
		t.Errorf("hit Date %q, origin sent %q", got, origDate)
	}
}

// rawExchange sends raw on a new connection and reads one response.
func rawExchange(t *testing.T, base, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: strings.Fields(raw)[0]})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestL1OffReadsWhatTheShardHolds: with client-side caching off, a view
// remembered for a key's bytes is reused only while the shard returns the
// same bytes; a purge, a soft purge or a new entry is seen on the next read.
func TestL1OffReadsWhatTheShardHolds(t *testing.T) {
	servers := valkeytest.Start(t, 1)
	origin := newScripted(t)
	origin.handle("/v", func(w http.ResponseWriter, r *http.Request, n int) {
		reply(w, 200, fmt.Sprintf("v%d", n), "Cache-Control", "max-age=60, stale-if-error=60")
	})
	cfg := testConfig(origin.URL, servers)
	cfg.Valkey.DisableL1 = true
	g, base := startGateway(t, cfg)
	for i, want := range []string{"v1", "v1", "v1"} {
		if r := get(t, base+"/v"); r.body != want || (i > 0 && r.cacheStatus != hitL2) {
			t.Fatalf("read %d: %q %q", i, r.body, r.cacheStatus)
		}
	}
	if _, err := g.Purge(t.Context(), gateway.PurgeRequest{URL: base + "/v", Soft: true}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, base+"/v"); r.body != "v2" || r.cacheStatus != "edgecache; fwd=stale; stored" {
		t.Fatalf("after a soft purge: %q %q", r.body, r.cacheStatus)
	}
	if r := get(t, base+"/v"); r.body != "v2" || r.cacheStatus != hitL2 {
		t.Fatalf("after the refill: %q %q", r.body, r.cacheStatus)
	}
	if _, err := g.Purge(t.Context(), gateway.PurgeRequest{URL: base + "/v"}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, base+"/v"); r.body != "v3" || r.cacheStatus != "edgecache; fwd=uri-miss; stored" {
		t.Fatalf("after a purge: %q %q", r.body, r.cacheStatus)
	}
}
