package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/internal/valkeytest"
	"github.com/edgecache/edgecache/shardmap"
)

func doWith(t testing.TB, method, url string, kv ...string) result {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b), resp.Header.Get("Cache-Status"), resp.Header.Get("Age"), resp.Header}
}

func semanticsGateway(t *testing.T, o *testutil.Origin, shards int, tweak func(*config.Route)) (*gateway.Gateway, string) {
	t.Helper()
	g, base, _ := clockedGateway(t, o, shards, tweak)
	return g, base
}

// clockedGateway is semanticsGateway with its freshness clock, which the
// test advances to make entries stale (Valkey's TTLs keep real time).
func clockedGateway(t *testing.T, o *testutil.Origin, shards int, tweak func(*config.Route)) (*gateway.Gateway, string, *testutil.Clock) {
	t.Helper()
	var servers []*valkeytest.Server
	if shards > 0 {
		servers = valkeytest.Start(t, shards)
	}
	cfg := testConfig(o.URL, servers)
	if tweak != nil {
		tweak(&cfg.Routes[0])
	}
	clk := testutil.NewClock()
	g, base := startGatewayWith(t, cfg, gateway.Options{Now: clk.Now})
	return g, base, clk
}

// wantCS checks a response's status, Cache-Status and body.
func wantCS(t *testing.T, r result, status int, cs, body string) {
	t.Helper()
	if r.status != status || r.cacheStatus != cs || (body != "" && r.body != body) {
		t.Fatalf("got %d %q %q, want %d %q %q", r.status, r.cacheStatus, r.body, status, cs, body)
	}
}

// 1. Freshness and request directives.
func TestFreshnessAndRequestDirectives(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/p", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "v"+strconv.Itoa(n), "Cache-Control", "max-age=60, s-maxage=1", "ETag", `"e`+strconv.Itoa(n)+`"`)
	})
	// The client's no-cache and max-age=0 are honoured only on opt-in.
	_, base, clk := clockedGateway(t, o, 1, func(r *config.Route) { r.HonorClientNoCache = true })

	wantCS(t, get(t, base+"/p"), 200, stored, "v1")
	wantCS(t, get(t, base+"/p"), 200, hitL2, "v1")
	wantCS(t, wantL1(t, func() result { return get(t, base+"/p") }), 200, hitL1, "v1") // after its own fill (wantL1)

	t.Run("client no-cache revalidates", func(t *testing.T) {
		r := doWith(t, "GET", base+"/p", "Cache-Control", "no-cache")
		if !strings.HasPrefix(r.cacheStatus, "edgecache; fwd=request") || o.Count("/p") != 2 {
			t.Fatalf("%q, origin %d", r.cacheStatus, o.Count("/p"))
		}
		if inm := o.Last("/p").Header.Get("If-None-Match"); inm != `"e1"` {
			t.Fatalf("revalidation sent If-None-Match %q", inm)
		}
	})
	t.Run("only-if-cached on a cold key is 504", func(t *testing.T) {
		r := doWith(t, "GET", base+"/cold", "Cache-Control", "only-if-cached")
		if r.status != http.StatusGatewayTimeout || o.Count("/cold") != 0 {
			t.Fatalf("%d, origin %d", r.status, o.Count("/cold"))
		}
	})
	t.Run("s-maxage wins: stale after 1s, max-stale accepts it", func(t *testing.T) {
		clk.Advance(1100 * time.Millisecond)
		before := o.Count("/p")
		r := doWith(t, "GET", base+"/p", "Cache-Control", "max-stale=60")
		wantCS(t, r, 200, "edgecache; hit; detail=stale", "")
		if o.Count("/p") != before {
			t.Fatal("max-stale went to the origin")
		}
		r = get(t, base+"/p") // stale without max-stale: revalidated (200 from origin here)
		if !strings.HasPrefix(r.cacheStatus, "edgecache; fwd=stale") || o.Count("/p") != before+1 {
			t.Fatalf("%q, origin %d", r.cacheStatus, o.Count("/p"))
		}
	})
	for _, tc := range []struct {
		name  string
		tweak func(*config.Route)
	}{
		{"ignore_client_no_cache", func(r *config.Route) { r.IgnoreClientNoCache = true }},
		{"client no-cache ignored by default", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o2 := testutil.NewOrigin(t)
			o2.Handle("/q", func(w http.ResponseWriter, r *http.Request, n int) {
				testutil.Reply(w, 200, "q", "Cache-Control", "max-age=60")
			})
			_, b2 := semanticsGateway(t, o2, 0, tc.tweak)
			get(t, b2+"/q")
			wantCS(t, doWith(t, "GET", b2+"/q", "Cache-Control", "no-cache"), 200, hitL1, "q")
			wantCS(t, doWith(t, "GET", b2+"/q", "Pragma", "no-cache"), 200, hitL1, "q")
			wantCS(t, doWith(t, "GET", b2+"/q", "Cache-Control", "max-age=0"), 200, hitL1, "q")
		})
	}
}

func TestAgeAcrossGateways(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/a", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "a", "Cache-Control", "max-age=600", "Age", "5")
	})
	servers := valkeytest.Start(t, 2)
	cfg := testConfig(o.URL, servers)
	clk := testutil.NewClock() // one clock: the two gateways' hosts agree on the time
	_, baseA := startGatewayWith(t, cfg, gateway.Options{Now: clk.Now})
	_, baseB := startGatewayWith(t, cfg, gateway.Options{Now: clk.Now})
	r := get(t, baseA+"/a")
	if r.age != "5" {
		t.Fatalf("miss Age %q, want the origin's 5", r.age)
	}
	clk.Advance(2100 * time.Millisecond)
	req, _ := http.NewRequest("GET", baseB+"/a", nil)
	req.Host = strings.TrimPrefix(baseA, "http://")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Cache-Status") != hitL2 || resp.Header.Get("Age") != "7" {
		t.Fatalf("gateway B: %q Age %q, want a hit with Age 7", resp.Header.Get("Cache-Status"), resp.Header.Get("Age"))
	}
}

// 1 (cont.). no-cache responses are stored and revalidated before every use;
// must-revalidate entries are never served stale.
func TestNoCacheAndMustRevalidate(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/nc", func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("If-None-Match") == `"x"` {
			testutil.Reply(w, 304, "", "ETag", `"x"`, "Cache-Control", "no-cache")
			return
		}
		testutil.Reply(w, 200, "body", "ETag", `"x"`, "Cache-Control", "no-cache")
	})
	o.Handle("/mr", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "mr"+strconv.Itoa(n), "Cache-Control", "max-age=1, must-revalidate")
	})
	_, base, clk := clockedGateway(t, o, 1, nil)
	wantCS(t, get(t, base+"/nc"), 200, stored, "body")
	for range 2 {
		wantCS(t, get(t, base+"/nc"), 200, "edgecache; fwd=stale; stored; fwd-status=304", "body")
	}
	if n := o.Count("/nc"); n != 3 {
		t.Fatalf("origin saw %d, want 3 (one fill, two revalidations)", n)
	}
	get(t, base+"/mr")
	clk.Advance(1100 * time.Millisecond) // stale, and still in Valkey (1s there)
	r := doWith(t, "GET", base+"/mr", "Cache-Control", "max-stale=600")
	if r.body != "mr2" {
		t.Fatalf("must-revalidate entry served stale: %q %q", r.body, r.cacheStatus)
	}
}

// 2. Vary.
func TestVary(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/v", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "lang="+r.Header.Get("Accept-Language")+" enc="+r.Header.Get("Accept-Encoding"),
			"Cache-Control", "max-age=60", "Vary", "Accept-Language, Accept-Encoding")
	})
	o.Handle("/star", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "star", "Cache-Control", "max-age=60", "Vary", "*")
	})
	g, base := semanticsGateway(t, o, 2, func(r *config.Route) { r.VaryNormalize = []string{"Accept-Language"} })
	// The origin is asked for the one coding the client prefers.
	wantCS(t, doWith(t, "GET", base+"/v", "Accept-Language", "en-US,en;q=0.9", "Accept-Encoding", "gzip, deflate"), 200, stored, "lang=en-US,en;q=0.9 enc=gzip")
	wantCS(t, doWith(t, "GET", base+"/v", "Accept-Language", "fr", "Accept-Encoding", "gzip"), 200, stored, "lang=fr enc=gzip")
	// Normalized: same language first member, and gzip however spelled.
	r := doWith(t, "GET", base+"/v", "Accept-Language", "EN-us", "Accept-Encoding", "deflate, gzip")
	if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") || r.body != "lang=en-US,en;q=0.9 enc=gzip" {
		t.Fatalf("variant not selected: %q %q", r.cacheStatus, r.body)
	}
	r = doWith(t, "GET", base+"/v", "Accept-Language", "fr-CA", "Accept-Encoding", "gzip")
	if r.body != "lang=fr-CA enc=gzip" || r.cacheStatus != stored {
		t.Fatalf("new variant: %q %q", r.cacheStatus, r.body)
	}
	if n := o.Count("/v"); n != 3 {
		t.Fatalf("origin saw %d, want 3 variants", n)
	}
	wantCS(t, get(t, base+"/star"), 200, "edgecache; fwd=uri-miss; detail=vary-star", "star")
	// A URL purge removes every variant.
	res, err := g.Purge(context.Background(), gateway.PurgeRequest{URL: base + "/v"})
	if err != nil || res.Keys != 1 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	waitFor(t, "the variants are gone", func() (bool, string) {
		r := doWith(t, "GET", base+"/v", "Accept-Language", "fr", "Accept-Encoding", "gzip")
		return r.cacheStatus == stored, r.cacheStatus
	})
}

// 3. Validators.
func TestValidators(t *testing.T) {
	o := testutil.NewOrigin(t)
	lm := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	o.Handle("/e", func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("If-None-Match") == `"big"` {
			testutil.Reply(w, 304, "", "ETag", `"big"`, "Cache-Control", "max-age=60", "X-Refreshed", strconv.Itoa(n))
			return
		}
		testutil.Reply(w, 200, strings.Repeat("b", 10000), "ETag", `"big"`, "Last-Modified", lm, "Cache-Control", "max-age=1")
	})
	_, base, clk := clockedGateway(t, o, 1, nil)
	get(t, base+"/e")
	get(t, base+"/e")
	t.Run("client conditionals answered from the cache", func(t *testing.T) {
		// The identity representation's tag (Go's client would otherwise
		// ask for gzip, whose tag is "big-gzip": encode.go).
		r := doWith(t, "GET", base+"/e", "If-None-Match", `W/"big"`, "Accept-Encoding", "identity")
		if r.status != 304 || r.body != "" || r.header.Get("Etag") != `"big"` {
			t.Fatalf("%d %q %v", r.status, r.body, r.header)
		}
		r = doWith(t, "GET", base+"/e", "If-Modified-Since", time.Now().UTC().Format(http.TimeFormat))
		if r.status != 304 {
			t.Fatalf("If-Modified-Since: %d", r.status)
		}
		r = doWith(t, "GET", base+"/e", "If-None-Match", `"other"`)
		if r.status != 200 || len(r.body) != 10000 {
			t.Fatalf("non-matching If-None-Match: %d", r.status)
		}
		if o.Count("/e") != 1 {
			t.Fatalf("origin saw %d", o.Count("/e"))
		}
	})
	t.Run("stale entry revalidated with 304, body not re-sent", func(t *testing.T) {
		clk.Advance(1100 * time.Millisecond)
		r := get(t, base+"/e")
		if r.status != 200 || len(r.body) != 10000 || r.cacheStatus != "edgecache; fwd=stale; stored; fwd-status=304" || r.header.Get("X-Refreshed") != "2" {
			t.Fatalf("%d %q %v", r.status, r.cacheStatus, r.header)
		}
		if got := o.Last("/e").Header.Get("If-Modified-Since"); got != lm {
			t.Fatalf("revalidation If-Modified-Since %q, want %q", got, lm)
		}
		// Refreshed for 60s now.
		r = get(t, base+"/e")
		if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") || len(r.body) != 10000 || o.Count("/e") != 2 {
			t.Fatalf("after refresh: %q, origin %d", r.cacheStatus, o.Count("/e"))
		}
	})
}

// TestIfModifiedSinceWithoutLastModified is RFC 9110 §13.1.3: a stored
// response without Last-Modified is compared with its Date.
func TestIfModifiedSinceWithoutLastModified(t *testing.T) {
	o := testutil.NewOrigin(t)
	date := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	o.Handle("/d", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "dated", "Date", date.Format(http.TimeFormat), "Cache-Control", "max-age=600")
	})
	_, base := semanticsGateway(t, o, 1, nil)
	if r := get(t, base+"/d"); r.status != 200 || r.header.Get("Last-Modified") != "" {
		t.Fatalf("fill: %d %v", r.status, r.header)
	}
	for _, c := range []struct {
		name   string
		since  time.Time
		status int
	}{
		{"at its Date", date, http.StatusNotModified},
		{"after its Date", date.Add(time.Minute), http.StatusNotModified},
		{"before its Date", date.Add(-time.Second), http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := doWith(t, "GET", base+"/d", "If-Modified-Since", c.since.Format(http.TimeFormat))
			if r.status != c.status || !strings.HasPrefix(r.cacheStatus, "edgecache; hit") {
				t.Fatalf("If-Modified-Since %v: %d %q, want %d from the cache", c.since, r.status, r.cacheStatus, c.status)
			}
			if c.status == http.StatusOK && r.body != "dated" {
				t.Fatalf("body %q", r.body)
			}
		})
	}
	if n := o.Count("/d"); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
}

// 4. Stale serving.
func TestStaleWhileRevalidate(t *testing.T) {
	o := testutil.NewOrigin(t)
	var refreshDone atomic.Int32
	o.Handle("/s", func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			time.Sleep(300 * time.Millisecond) // a slow refresh: the client must not wait for it
			defer refreshDone.Add(1)
		}
		testutil.Reply(w, 200, "s"+strconv.Itoa(n), "Cache-Control", "max-age=1, stale-while-revalidate=30")
	})
	_, base, clk := clockedGateway(t, o, 1, nil)
	get(t, base+"/s")
	clk.Advance(1100 * time.Millisecond)
	// Many clients at once, some hanging up at once: all served stale, one refresh.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/s", nil)
			resp, err := client.Do(req)
			if i%2 == 0 {
				cancel() // hangs up
			}
			if err == nil {
				if b, _ := io.ReadAll(resp.Body); string(b) != "s1" && i%2 == 1 {
					t.Errorf("client %d got %q", i, b)
				}
				resp.Body.Close()
			}
			cancel()
		}()
	}
	wg.Wait()
	waitFor(t, "the background refresh stored s2", func() (bool, string) {
		r := get(t, base+"/s")
		return r.body == "s2", r.body + " " + r.cacheStatus
	})
	if n := o.Count("/s"); n != 2 {
		t.Fatalf("origin saw %d, want 2 (fill and one refresh)", n)
	}
	if refreshDone.Load() != 1 {
		t.Fatal("the refresh did not complete")
	}
}

func TestStaleIfError(t *testing.T) {
	o := testutil.NewOrigin(t)
	var failing atomic.Bool
	o.Handle("/x", func(w http.ResponseWriter, r *http.Request, n int) {
		if failing.Load() {
			testutil.Reply(w, 503, "down")
			return
		}
		testutil.Reply(w, 200, "good", "Cache-Control", "max-age=1, stale-if-error=60")
	})
	o.Handle("/5xx", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 500, "err", "Cache-Control", "max-age=60")
	})
	_, base, clk := clockedGateway(t, o, 1, nil)
	get(t, base+"/x")
	clk.Advance(1100 * time.Millisecond)
	failing.Store(true)
	wantCS(t, get(t, base+"/x"), 200, "edgecache; hit; detail=stale-if-error", "good")
	// The origin refusing connections is covered too.
	o.Close()
	wantCS(t, get(t, base+"/x"), 200, "edgecache; hit; detail=stale-if-error", "good")
	// 5. A 5xx is stored only under the origin's explicit freshness
	// (RFC 9111 §3: any final status may be), never through the route's
	// default_ttl (not heuristically cacheable, RFC 9110 §15.1).
	o2 := testutil.NewOrigin(t)
	o2.Handle("/5xx", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 500, "err", "Cache-Control", "max-age=60")
	})
	o2.Handle("/5xx-plain", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 500, "err")
	})
	_, b2 := semanticsGateway(t, o2, 0, func(rc *config.Route) { rc.DefaultTTL = time.Minute })
	wantCS(t, get(t, b2+"/5xx"), 500, "edgecache; fwd=uri-miss; stored", "err")
	wantCS(t, get(t, b2+"/5xx"), 500, "edgecache; hit; detail=l1", "err")
	wantCS(t, get(t, b2+"/5xx-plain"), 500, "edgecache; fwd=uri-miss; detail=no-freshness", "err")
	wantCS(t, get(t, b2+"/5xx-plain"), 500, "edgecache; fwd=uri-miss; detail=no-freshness", "err")
}

func TestRouteDefaultStaleWindows(t *testing.T) {
	o := testutil.NewOrigin(t)
	var failing atomic.Bool
	o.Handle("/d", func(w http.ResponseWriter, r *http.Request, n int) {
		if failing.Load() {
			testutil.Reply(w, 502, "down")
			return
		}
		testutil.Reply(w, 200, "d", "Cache-Control", "max-age=1")
	})
	_, base, clk := clockedGateway(t, o, 0, func(r *config.Route) { r.StaleIfError = time.Minute })
	get(t, base+"/d")
	clk.Advance(1100 * time.Millisecond)
	failing.Store(true)
	wantCS(t, get(t, base+"/d"), 200, "edgecache; hit; detail=stale-if-error", "d")
}

// 5. Negative caching.
func TestNegativeCaching(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/gone", func(w http.ResponseWriter, r *http.Request, n int) { testutil.Reply(w, 410, "gone") })
	_, base := semanticsGateway(t, o, 1, func(r *config.Route) { r.NegativeTTL = time.Second })
	wantCS(t, get(t, base+"/gone"), 410, stored, "gone")
	wantCS(t, get(t, base+"/gone"), 410, hitL2, "gone")
	time.Sleep(1100 * time.Millisecond)
	// Gone from Valkey with its TTL (no validators, no stale window).
	wantCS(t, get(t, base+"/gone"), 410, stored, "gone")
	if o.Count("/gone") != 2 {
		t.Fatalf("origin saw %d", o.Count("/gone"))
	}
}

// 6. Invalidation and purge.
func TestInvalidationEveryGateway(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/items/1", func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == "POST" {
			testutil.Reply(w, 201, "", "Location", "/items/2", "Content-Location", "http://other.example/items/3")
			return
		}
		testutil.Reply(w, 200, "one", "Cache-Control", "max-age=600")
	})
	o.Handle("/items/2", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "two", "Cache-Control", "max-age=600")
	})
	servers := valkeytest.Start(t, 3)
	cfg := testConfig(o.URL, servers)
	_, baseA := startGateway(t, cfg)
	_, baseB := startGateway(t, cfg)
	host := strings.TrimPrefix(baseA, "http://")
	getH := func(base, path, method string) result {
		req, _ := http.NewRequest(method, base+path, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return result{status: resp.StatusCode, body: string(b), cacheStatus: resp.Header.Get("Cache-Status")}
	}
	for _, p := range []string{"/items/1", "/items/2"} {
		for range 3 {
			getH(baseA, p, "GET")
		}
		if r := getH(baseA, p, "GET"); r.cacheStatus != hitL1 {
			t.Fatalf("%s not in A's L1: %q", p, r.cacheStatus)
		}
	}
	if r := getH(baseB, "/items/1", "POST"); r.status != 201 {
		t.Fatalf("POST: %d", r.status)
	}
	for _, p := range []string{"/items/1", "/items/2"} {
		waitFor(t, "A drops "+p, func() (bool, string) {
			r := getH(baseA, p, "GET")
			return r.cacheStatus == stored, r.cacheStatus
		})
	}
}

func TestPurgeByTagKeyAndSoft(t *testing.T) {
	o := testutil.NewOrigin(t)
	var failing atomic.Bool
	for i := range 6 {
		p := "/t/" + strconv.Itoa(i)
		tags := "all odd"
		if i%2 == 0 {
			tags = "all even"
		}
		o.Handle(p, func(w http.ResponseWriter, r *http.Request, n int) {
			if failing.Load() {
				testutil.Reply(w, 500, "down")
				return
			}
			testutil.Reply(w, 200, p, "Cache-Control", "max-age=600, stale-if-error=600", "Surrogate-Key", tags, "Cache-Tag", "c"+strconv.Itoa(i))
		})
	}
	g, base := semanticsGateway(t, o, 3, nil)
	for i := range 6 {
		get(t, base+"/t/"+strconv.Itoa(i))
	}
	ctx := context.Background()
	res, err := g.Purge(ctx, gateway.PurgeRequest{Tag: "even"})
	if err != nil || res.Keys != 3 {
		t.Fatalf("purge even: %+v %v", res, err)
	}
	for i := range 6 {
		r := get(t, base+"/t/"+strconv.Itoa(i))
		if even := i%2 == 0; even != (r.cacheStatus == stored) {
			t.Fatalf("/t/%d after purging even: %q", i, r.cacheStatus)
		}
	}
	// Cache-Tag (comma or single) works too; a purged tag set is gone.
	if res, _ := g.Purge(ctx, gateway.PurgeRequest{Tag: "c1"}); res.Keys != 1 {
		t.Fatalf("purge c1: %+v", res)
	}
	// Soft purge: entries are stale, yet still serve stale-if-error.
	res, err = g.Purge(ctx, gateway.PurgeRequest{Tag: "all", Soft: true})
	if err != nil || res.Keys != 5 {
		t.Fatalf("soft purge all: %+v %v", res, err)
	}
	failing.Store(true)
	waitFor(t, "the soft-purged entry serves stale-if-error", func() (bool, string) {
		r := get(t, base+"/t/3") // the L1 drops the entry when Valkey's invalidation arrives
		return r.cacheStatus == "edgecache; hit; detail=stale-if-error" && r.body == "/t/3", r.cacheStatus
	})
	failing.Store(false)
	if r := get(t, base+"/t/3"); r.cacheStatus != "edgecache; fwd=stale; stored" {
		t.Fatalf("soft-purged entry not refetched: %q", r.cacheStatus)
	}
	// By key.
	key := keyOf(t, base+"/t/5")
	if res, err := g.Purge(ctx, gateway.PurgeRequest{Key: key}); err != nil || res.Keys != 1 {
		t.Fatalf("purge key: %+v %v", res, err)
	}
	if _, err := g.Purge(ctx, gateway.PurgeRequest{}); err == nil {
		t.Fatal("empty purge accepted")
	}
	if _, err := g.Purge(ctx, gateway.PurgeRequest{URL: "not a url"}); err == nil {
		t.Fatal("bad URL accepted")
	}
}

// 7. Coalescing across gateways.
func TestCrossGatewayStampede(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/hot", func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(200 * time.Millisecond)
		testutil.Reply(w, 200, "hot", "Cache-Control", "max-age=60")
	})
	for i := range 12 {
		o.Handle(fmt.Sprintf("/more/%d", i), func(w http.ResponseWriter, r *http.Request, n int) {
			testutil.Reply(w, 200, "more", "Cache-Control", "max-age=60")
		})
	}
	servers := valkeytest.Start(t, 3)
	cfg := testConfig(o.URL, servers)
	var bases []string
	for i := range 4 {
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("gateway", i)
		}
		_, b := startGatewayWith(t, cfg, gateway.Options{Logger: logger})
		bases = append(bases, b)
	}
	host := strings.TrimPrefix(bases[0], "http://")
	var wg sync.WaitGroup
	var failed atomic.Int32
	start := make(chan struct{})
	for _, b := range bases {
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("GET", b+"/hot", nil)
				req.Host = host
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "hot" {
					failed.Add(1)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	t.Logf("4 gateways x 50 clients on one cold key: %d origin requests, %d failed", o.Count("/hot"), failed.Load())
	if failed.Load() != 0 || o.Count("/hot") > 2 {
		t.Fatalf("%d origin requests (goal <= 2), %d failed", o.Count("/hot"), failed.Load())
	}
	// The holder freed its fill lock with the entry's SET (or after it),
	// before it answered: no lock is left to hold up the key's next miss.
	// More keys, one after another: a node's first release loads the
	// script (NOSCRIPT, then Release), the later ones go in the SET's
	// pipeline.
	for i := range 12 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/more/%d", bases[0], i), nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "stored") {
			t.Fatalf("/more/%d not stored: %q", i, cs)
		}
	}
	for _, srv := range servers {
		if keys, err := srv.Do("KEYS", shardmap.LockPrefix+"*"); err != nil || keys != "" {
			t.Fatalf("fill lock left on %s: %q, %v", srv.Addr, keys, err)
		}
	}
}

func TestLockHolderDeathBounded(t *testing.T) {
	// A gateway that takes the fill lock and dies: the others wait at most
	// lock_wait, then fetch themselves.
	o := testutil.NewOrigin(t)
	o.Handle("/slow", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			time.Sleep(5 * time.Second) // the first fetch never finishes in time
		}
		testutil.Reply(w, 200, "ok", "Cache-Control", "max-age=60")
	})
	servers := valkeytest.Start(t, 1)
	cfg := testConfig(o.URL, servers)
	cfg.Routes[0].LockWait = 500 * time.Millisecond
	cfg.Routes[0].OriginTimeout = 10 * time.Second
	_, a := startGateway(t, cfg)
	_, b := startGateway(t, cfg)
	host := strings.TrimPrefix(a, "http://")
	go func() {
		req, _ := http.NewRequest("GET", a+"/slow", nil)
		req.Host = host
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "the first fetch started", func() (bool, string) { return o.Count("/slow") == 1, "" })
	start := time.Now()
	req, _ := http.NewRequest("GET", b+"/slow", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if el := time.Since(start); el > 2*time.Second || resp.StatusCode != 200 {
		t.Fatalf("waited %v (status %d) behind a stuck lock holder; bound 500ms + fetch", el, resp.StatusCode)
	}
}

// TestFillLockOnlyWithPeers: a gateway alone on its shard fills without
// the cross-gateway lock (its singleflight is the coordination, and the
// lock a round trip per miss); once a second gateway uses the shard, both
// take it, the one that was alone without a restart (shardmap/peers.go).
func TestFillLockOnlyWithPeers(t *testing.T) {
	o := testutil.NewOrigin(t)
	entered := make(chan string, 4)
	release := make(chan struct{})
	o.Default(func(w http.ResponseWriter, r *http.Request, n int) {
		entered <- r.URL.Path
		<-release
		testutil.Reply(w, 200, "ok", "Cache-Control", "max-age=60")
	})
	srv := valkeytest.Start(t, 1)
	cfg := testConfig(o.URL, srv)
	_, a := startGateway(t, cfg)
	host := strings.TrimPrefix(a, "http://")
	// locksDuringFill GETs path from base and returns the fill locks on
	// the shard while the origin holds the request.
	locksDuringFill := func(base, path string) string {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Host = host
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
		<-entered
		keys, kerr := srv[0].Do("KEYS", shardmap.LockPrefix+"*")
		release <- struct{}{}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if kerr != nil {
			t.Fatal(kerr)
		}
		return keys
	}
	if keys := locksDuringFill(a, "/alone"); keys != "" {
		t.Fatalf("a gateway alone on its shard took a fill lock: %q", keys)
	}
	_, b := startGateway(t, cfg)
	waitFor(t, "a sees b on the roll", func() (bool, string) {
		keys := locksDuringFill(a, fmt.Sprintf("/peer-a/%d", time.Now().UnixNano()))
		return keys != "", "no lock: " + keys
	})
	if keys := locksDuringFill(b, "/peer-b"); keys == "" {
		t.Fatal("the second gateway filled without the lock")
	}
}

// 8. Large bodies stream through; a client that disconnects leaks nothing.
func TestLargeBodiesStream(t *testing.T) {
	o := testutil.NewOrigin(t)
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	o.Handle("/big", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.WriteHeader(200)
		chunk := strings.Repeat("z", 64<<10)
		for range 32 { // 2 MiB, flushed as it goes
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		<-release // then hold the connection: the gateway must not wait for the end to start sending
	})
	_, base := semanticsGateway(t, o, 0, func(r *config.Route) { r.MaxBodyBytes = 1 << 20 })
	// The first bytes arrive while the origin is still sending: streamed.
	resp, err := client.Get(base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2<<20)
	n, _ := io.ReadAtLeast(resp.Body, buf, 2<<20)
	// The head went out before the body crossed max_body_bytes: what
	// would become of the store was not known yet (tee.go).
	if n < 2<<20 || resp.Header.Get("Cache-Status") != "edgecache; fwd=uri-miss; detail=streaming" {
		t.Fatalf("read %d bytes, %q", n, resp.Header.Get("Cache-Status"))
	}
	resp.Body.Close() // the client hangs up mid-response
	once.Do(func() { close(release) })
	waitFor(t, "no goroutine left streaming after the client hung up", func() (bool, string) {
		buf := make([]byte, 1<<20)
		st := string(buf[:runtime.Stack(buf, true)])
		for _, f := range []string{"gateway.streamLarge", "gateway.(*Gateway).fetch", "gateway.(*Gateway).miss", "gateway.(*tee).readAll"} {
			if strings.Contains(st, f) {
				return false, "a goroutine is still in " + f
			}
		}
		return true, ""
	})
}
