package gateway_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// Safe by default (issue 12): each test sends the bytes of a
// reproduction, raw over TCP, to a gateway in front of a real origin that
// echoes its request head, and asserts what reaches the origin and what
// the next client is served.

// echoHead renders the request head the origin received: the request
// line, then every field as "Name: value", sorted.
func echoHead(r *http.Request) string {
	lines := []string{}
	for k, vs := range r.Header {
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	slices.Sort(lines)
	return r.Method + " " + r.RequestURI + "\n" + strings.Join(lines, "\n")
}

// safeGateway serves a gateway with the library defaults (no opt-ins:
// testConfig's cache_set_cookie is undone) in front of o, one shard.
func safeGateway(t *testing.T, o *testutil.Origin, tweak func(*config.Config)) string {
	t.Helper()
	cfg := testConfig(o.URL, valkeytest.Start(t, 1))
	cfg.Routes[0].CacheSetCookie = false
	if tweak != nil {
		tweak(cfg)
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, base := startGateway(t, cfg)
	return strings.TrimPrefix(base, "http://")
}

// 1. Private pages.
func TestCookieRequestNotStoredWithoutFreshness(t *testing.T) {
	o := testutil.NewOrigin(t)
	for _, p := range []string{"/dyn/account.css", "/dyn/explicit.css"} {
		o.Handle(p, func(w http.ResponseWriter, r *http.Request, n int) {
			kv := []string{"Content-Type", "text/css"}
			if strings.Contains(r.URL.Path, "explicit") {
				kv = append(kv, "Cache-Control", "max-age=60")
			}
			testutil.Reply(w, 200, echoHead(r), kv...)
		})
	}
	victim := get1("/dyn/account.css", "Cookie: session=VICTIM\r\n")
	t.Run("default_ttl does not store it", func(t *testing.T) {
		addr := safeGateway(t, o, nil) // testConfig: default_ttl 1m
		r := rawDo(t, addr, victim)
		if cs := r.header.Get("Cache-Status"); cs != "edgecache; fwd=uri-miss; detail=cookie" || !strings.Contains(r.body, "VICTIM") {
			t.Fatalf("victim's request: %q %q", cs, r.body)
		}
		next := rawDo(t, addr, get1("/dyn/account.css"))
		if strings.Contains(next.body, "VICTIM") || strings.HasPrefix(next.header.Get("Cache-Status"), "edgecache; hit") {
			t.Fatalf("the next cookieless client got %q (%s)", next.body, next.header.Get("Cache-Status"))
		}
	})
	t.Run("explicit freshness stores it", func(t *testing.T) {
		addr := safeGateway(t, o, nil)
		if r := rawDo(t, addr, get1("/dyn/explicit.css", "Cookie: a=1\r\n")); r.header.Get("Cache-Status") != stored {
			t.Fatalf("max-age response to a cookie request: %q", r.header.Get("Cache-Status"))
		}
	})
	t.Run("cache_with_cookie opts in", func(t *testing.T) {
		addr := safeGateway(t, o, func(c *config.Config) { c.Routes[0].CacheWithCookie = true })
		if r := rawDo(t, addr, victim); r.header.Get("Cache-Status") != stored {
			t.Fatalf("opted in: %q", r.header.Get("Cache-Status"))
		}
	})
}

func TestSetCookieNotStoredByDefault(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/login", func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(200 * time.Millisecond) // so that concurrent requests coalesce
		testutil.Reply(w, 200, echoHead(r), "Cache-Control", "max-age=60", "Set-Cookie", "session="+r.Header.Get("Cookie"))
	})
	addr := safeGateway(t, o, nil)
	r := rawDo(t, addr, get1("/login", "Cookie: u=alice\r\n"))
	if cs := r.header.Get("Cache-Status"); cs != "edgecache; fwd=uri-miss; detail=set-cookie" || r.header.Get("Set-Cookie") != "session=u=alice" {
		t.Fatalf("login: %q, Set-Cookie %q", cs, r.header.Get("Set-Cookie"))
	}
	if next := rawDo(t, addr, get1("/login")); strings.Contains(next.body, "alice") {
		t.Fatalf("the next client got alice's page: %q (%s)", next.body, next.header.Get("Cache-Status"))
	}
	// Clients that wait on the same fetch get their own answer, not the
	// one that set another user's cookie.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			user := fmt.Sprintf("user%d", i)
			r := rawDo(t, addr, get1("/login", "Cookie: u="+user+"\r\n"))
			if !strings.Contains(r.body, "Cookie: u="+user+"\n") && !strings.HasSuffix(r.body, "Cookie: u="+user) {
				t.Errorf("%s got another user's page: %q", user, r.body)
			}
		})
	}
	wg.Wait()
}

func TestDeceptionArmor(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/account.php/x.css", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "<html>account</html>", "Content-Type", "text/html", "Cache-Control", "max-age=60")
	})
	o.Handle("/app.css", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "body{}", "Content-Type", "text/css; charset=utf-8", "Cache-Control", "max-age=60")
	})
	for _, tc := range []struct {
		name   string
		armor  bool
		path   string
		status string
	}{
		{"off: stored as the origin says", false, "/account.php/x.css", stored},
		{"on: html under .css not stored", true, "/account.php/x.css", "edgecache; fwd=uri-miss; detail=deception"},
		{"on: css under .css stored", true, "/app.css", stored},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := safeGateway(t, o, func(c *config.Config) { c.Routes[0].DeceptionArmor = tc.armor })
			if r := rawDo(t, addr, get1(tc.path)); r.header.Get("Cache-Status") != tc.status {
				t.Fatalf("%s: %q, want %q", tc.path, r.header.Get("Cache-Status"), tc.status)
			}
		})
	}
}

// 2. Forwarded headers.
func TestUnderscoreAndOverrideHeadersNotForwarded(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/p", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, echoHead(r), "Cache-Control", "max-age=60")
	})
	fields := "X_Forwarded_Host: evil.example\r\nX-Forwarded_Host: evil.example\r\n" +
		"X-Forwarded-Uri: /evil\r\nX-Forwarded-Path: /evil\r\nX-Forwarded-Url: /evil\r\nX-Original-Uri: /evil\r\n" +
		"X-Original-Url: /evil\r\nX-Rewrite-Url: /evil\r\nX-Envoy-Original-Path: /evil\r\nX-Http-Host-Override: evil.example\r\n" +
		"X-Host: evil.example\r\nX-Forwarded-Server: evil.example\r\n"
	t.Run("fill", func(t *testing.T) {
		addr := safeGateway(t, o, nil)
		r := rawDo(t, addr, get1("/p", fields))
		if r.status != 200 || strings.Contains(r.body, "evil") || strings.Contains(strings.ToLower(r.body), "_host") {
			t.Fatalf("the fill carried them: %q", r.body)
		}
	})
	t.Run("pass drops underscores", func(t *testing.T) {
		addr := safeGateway(t, o, nil)
		r := rawDo(t, addr, "POST /p HTTP/1.1\r\nHost: edge.example\r\nContent-Length: 0\r\n"+fields+"Connection: close\r\n\r\n")
		if r.status != 200 || strings.Contains(r.body, "_Host") || strings.Contains(r.body, "_host") {
			t.Fatalf("the pass carried them: %q", r.body)
		}
	})
	t.Run("allow_underscores_in_headers opts out", func(t *testing.T) {
		addr := safeGateway(t, o, func(c *config.Config) { c.Forwarding.AllowUnderscoresInHeaders = true })
		if r := rawDo(t, addr, get1("/p", "X_Custom: 1\r\n")); !strings.Contains(r.body, "X_custom: 1") {
			t.Fatalf("opted out, still dropped: %q", r.body)
		}
	})
}

func TestForwardedSetFromConnection(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/p", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, echoHead(r), "Cache-Control", "no-store")
	})
	spoof := "X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n"
	own := []string{"X-Forwarded-For: 127.0.0.1", "Forwarded: for=127.0.0.1;host=edge.example;proto=http",
		"X-Forwarded-Proto: http", "X-Forwarded-Host: edge.example", "Cdn-Loop: edgecache"}
	chained := []string{"X-Forwarded-For: 6.6.6.6, 127.0.0.1", "Forwarded: for=6.6.6.6, for=127.0.0.1;host=edge.example;proto=http",
		"X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example"}
	for _, tc := range []struct {
		name    string
		trusted []string
		want    []string
	}{
		{"untrusted peer: the gateway's own", nil, own},
		{"trusted proxy: chain kept", []string{"127.0.0.0/8"}, chained},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := safeGateway(t, o, func(c *config.Config) { c.Forwarding.TrustedProxies = tc.trusted })
			for _, req := range []string{get1("/p", spoof), "POST /p HTTP/1.1\r\nHost: edge.example\r\nContent-Length: 0\r\n" + spoof + "Connection: close\r\n\r\n"} {
				r := rawDo(t, addr, req)
				for _, w := range tc.want {
					if !strings.Contains(r.body+"\n", "\n"+w+"\n") {
						t.Errorf("%s: origin did not get %q:\n%s", strings.Fields(req)[0], w, r.body)
					}
				}
			}
		})
	}
}

func TestClientNoCacheCannotForceRefill(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/p", func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(100 * time.Millisecond)
		testutil.Reply(w, 200, echoHead(r), "Cache-Control", "max-age=60", "ETag", fmt.Sprintf(`"v%d"`, n))
	})
	t.Run("ignored by default", func(t *testing.T) {
		addr := safeGateway(t, o, nil)
		good := rawDo(t, addr, get1("/p"))
		n := o.Count("/p")
		r := rawDo(t, addr, get1("/p", "Cache-Control: no-cache\r\nPragma: no-cache\r\nX-Forwarded-Host: evil.example\r\n"))
		if o.Count("/p") != n || r.body != good.body || !strings.HasPrefix(r.header.Get("Cache-Status"), "edgecache; hit") {
			t.Fatalf("no-cache forced a refill: origin %d→%d, %q", n, o.Count("/p"), r.header.Get("Cache-Status"))
		}
	})
	t.Run("honoured: one revalidation in flight per key", func(t *testing.T) {
		addr := safeGateway(t, o, func(c *config.Config) { c.Routes[0].HonorClientNoCache = true })
		rawDo(t, addr, get1("/p"))
		n := o.Count("/p")
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { rawDo(t, addr, get1("/p", "Cache-Control: no-cache\r\n")) })
		}
		wg.Wait()
		// 20 forced revalidations at once: one fetch, and perhaps one more
		// by a request that arrived after it finished (the loaded box).
		if got := o.Count("/p") - n; got < 1 || got > 3 {
			t.Fatalf("20 concurrent no-cache requests made %d origin requests", got)
		}
	})
}

// 3. Accept-Encoding.
func TestAcceptEncodingNeverServesUnaccepted(t *testing.T) {
	o := testutil.NewOrigin(t)
	// An origin that compresses with the first coding it knows in the
	// request's list (as many do, ignoring q-values), and says Vary.
	o.Handle("/v", func(w http.ResponseWriter, r *http.Request, n int) {
		ce := ""
		for _, c := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
			c = strings.TrimSpace(strings.Split(c, ";")[0])
			if c == "zstd" || c == "br" || c == "gzip" {
				ce = c
				break
			}
		}
		kv := []string{"Cache-Control", "max-age=60", "Vary", "Accept-Encoding"}
		if ce != "" {
			kv = append(kv, "Content-Encoding", ce)
		}
		testutil.Reply(w, 200, "coded:"+ce, kv...)
	})
	// An origin that always gzips and forgets Vary.
	o.Handle("/novary", func(w http.ResponseWriter, r *http.Request, n int) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = io.WriteString(zw, "coded:gzip")
		_ = zw.Close()
		testutil.Reply(w, 200, b.String(), "Cache-Control", "max-age=60", "Content-Encoding", "gzip")
	})
	addr := safeGateway(t, o, nil)
	ask := func(path, ae string) rawResponse {
		extra := ""
		if ae != "-" {
			extra = "Accept-Encoding: " + ae + "\r\n"
		}
		return rawDo(t, addr, get1(path, extra))
	}
	for _, step := range []struct{ ae, want string }{
		{"zstd", "zstd"},
		{"-", ""}, // no Accept-Encoding: identity only
		{"identity", ""},
		{"deflate", ""},
		{"zstd, xbr", "zstd"},
		{"gzip, deflate, br", "br"},
		{"gzip;q=1, br;q=0.5", "gzip"},
		{"br;q=0, gzip", "gzip"},
		{"*", "br"},
		{"zstd;q=0.9, gzip", "gzip"},
	} {
		r := ask("/v", step.ae)
		if got := r.header.Get("Content-Encoding"); got != step.want || r.body != "coded:"+step.want {
			t.Errorf("Accept-Encoding %q: got Content-Encoding %q, body %q (%s), want %q", step.ae, got, r.body, r.header.Get("Cache-Status"), step.want)
		}
	}
	ask("/novary", "gzip")
	if r := ask("/novary", "gzip"); !strings.HasPrefix(r.header.Get("Cache-Status"), "edgecache; hit") {
		t.Fatalf("a gzip client should hit: %q", r.header.Get("Cache-Status"))
	}
	for _, ae := range []string{"-", "identity", "br", "gzip;q=0"} {
		if r := ask("/novary", ae); strings.HasPrefix(r.header.Get("Cache-Status"), "edgecache; hit") {
			t.Errorf("Accept-Encoding %q was served the stored gzip entry (%s)", ae, r.header.Get("Cache-Status"))
		}
	}
}

// 6. Vary on exactly the forwarded fields.
func TestVaryIgnoresConnectionNominated(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/v", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "lang="+r.Header.Get("Accept-Language"), "Cache-Control", "max-age=60", "Vary", "Accept-Language")
	})
	addr := safeGateway(t, o, nil)
	poison := rawDo(t, addr, get1("/v", "Accept-Language: fr\r\nConnection: Accept-Language\r\n"))
	if poison.body != "lang=" {
		t.Fatalf("the origin got the nominated field: %q", poison.body)
	}
	if r := rawDo(t, addr, get1("/v", "Accept-Language: fr\r\n")); r.body != "lang=fr" {
		t.Fatalf("a French client got %q (%s): the no-language page stored under fr", r.body, r.header.Get("Cache-Status"))
	}
	if r := rawDo(t, addr, get1("/v")); r.body != "lang=" || !strings.HasPrefix(r.header.Get("Cache-Status"), "edgecache; hit") {
		t.Fatalf("no-language client: %q (%s)", r.body, r.header.Get("Cache-Status"))
	}
}

// 8. Expect, loops, SSRF.
func TestExpectNotForwardedBodiless(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/p", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, echoHead(r), "Cache-Control", "no-store")
	})
	addr := safeGateway(t, o, nil)
	for _, req := range []string{
		get1("/p", "Expect: 100-continue\r\n"),
		"DELETE /p HTTP/1.1\r\nHost: edge.example\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
	} {
		if r := rawDo(t, addr, req); r.status != 200 || strings.Contains(r.body, "Expect") {
			t.Errorf("%s: %d, origin got %q", strings.Fields(req)[0], r.status, r.body)
		}
	}
}

func TestCDNLoop(t *testing.T) {
	t.Run("named too often: 508", func(t *testing.T) {
		o := testutil.NewOrigin(t)
		o.Handle("/p", func(w http.ResponseWriter, r *http.Request, n int) { testutil.Reply(w, 200, echoHead(r)) })
		addr := safeGateway(t, o, nil)
		if r := rawDo(t, addr, get1("/p", "CDN-Loop: other, EdgeCache\r\n")); r.status != 200 || !strings.Contains(r.body, "Cdn-Loop: edgecache\nCdn-Loop: other, EdgeCache") {
			t.Fatalf("named once: %d %q", r.status, r.body)
		}
		if r := rawDo(t, addr, get1("/p", "CDN-Loop: edgecache, edgecache; v=1\r\n")); r.status != http.StatusLoopDetected || o.Count("/p") != 1 {
			t.Fatalf("named twice: %d, origin %d", r.status, o.Count("/p"))
		}
	})
	t.Run("a route whose origin is the gateway", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig("http://"+ln.Addr().String(), nil)
		g, err := gateway.New(cfg, gateway.Options{Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Serve(ctx, ln) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			g.Close()
		}()
		r := rawDo(t, ln.Addr().String(), get1("/loop"))
		if r.status != http.StatusLoopDetected {
			t.Fatalf("a loop through the gateway answered %d %q", r.status, r.body)
		}
	})
}

func TestMissPluginOriginAllowList(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/m/legacy/x", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "route origin", "Cache-Control", "no-store")
	})
	other := testutil.NewOrigin(t) // an address the plugin names: internal, say
	other.Handle("/m/legacy/x", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, "other", "Cache-Control", "no-store")
	})
	for _, tc := range []struct {
		name    string
		allowed []string
		want    string
	}{
		{"not allowed: the route's origin", nil, "route origin"},
		{"allowed_origins", []string{other.URL}, "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := safeGateway(t, o, func(c *config.Config) {
				c.Routes[0].Plugins = []string{"miss"}
				c.Plugins = []config.Plugin{{Name: "miss", Path: pluginPath(t, "examples/assemblyscript-misspolicy.wasm"),
					Config: map[string]any{"fallback_origin": other.URL, "fallback_prefixes": []any{"/m/legacy/"}}, AllowedOrigins: tc.allowed}}
			})
			if r := rawDo(t, addr, get1("/m/legacy/x")); r.status != 200 || r.body != tc.want {
				t.Fatalf("%d %q, want %q", r.status, r.body, tc.want)
			}
		})
	}
}

// 4. Bounded memory (the real binary's RSS: cmd/edgecache
// TestFillMemoryBounded). Past the fill budget a response streams whole
// and uncached, and the requests that waited on that fill get the whole
// body too, each by its own fetch.
func TestFillBudgetStreamsAndWaitersAnswered(t *testing.T) {
	const size = 600 << 10
	o := testutil.NewOrigin(t)
	o.Handle("/big", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		time.Sleep(150 * time.Millisecond) // so that requests coalesce
		chunk := strings.Repeat("z", 32<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			_, _ = io.WriteString(w, chunk[:min(len(chunk), size-sent)])
			w.(http.Flusher).Flush() // chunked
		}
	})
	addr := safeGateway(t, o, func(c *config.Config) { c.Limits.FillBufferBytes = 100 << 10 })
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			r := rawDo(t, addr, get1("/big"))
			if r.status != 200 || len(r.body) != size {
				t.Errorf("%d, %d bytes (%s), want %d", r.status, len(r.body), r.header.Get("Cache-Status"), size)
			}
			if cs := r.header.Get("Cache-Status"); strings.Contains(cs, "stored") {
				t.Errorf("stored past the fill budget: %s", cs)
			}
		})
	}
	wg.Wait()
	if r := rawDo(t, addr, get1("/big")); r.header.Get("Cache-Status") != "edgecache; fwd=uri-miss; detail=fill-budget" {
		t.Fatalf("alone past the budget: %q", r.header.Get("Cache-Status"))
	}
}
