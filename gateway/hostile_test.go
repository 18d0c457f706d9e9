package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/entry"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// Hostile input: requests crafted byte by byte (net.Dial), since the Go
// client normalizes or refuses most of what an attacker sends.

// echoOrigin answers every request with what it received: the raw request
// target, and the headers an origin commonly trusts to build links or to
// route (X-Forwarded-Host, X-Original-URL…). It records each request.
type echoOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

// trustedByOrigins are request headers that origins commonly honour: to
// build absolute URLs, to pick the scheme, or to rewrite the path or
// method (IIS, Symfony, Rails, Express middlewares). An unkeyed one that
// reaches the origin on a cache fill is the classic cache poisoning vector.
var trustedByOrigins = []string{
	"X-Forwarded-Host", "X-Forwarded-Scheme", "X-Forwarded-Proto", "X-Forwarded-Port",
	"X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-For", "Forwarded",
	"X-Original-Url", "X-Rewrite-Url", "X-Host", "X-Original-Host",
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
}

// gatewaySets are the fields of trustedByOrigins that the gateway sets
// itself from the connection: present on every origin request, with the
// client's values only from a trusted proxy.
var gatewaySets = map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "Forwarded": true}

func newEchoOrigin(t testing.TB) *echoOrigin {
	o := &echoOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.reqs = append(o.reqs, r.Clone(context.Background()))
		o.mu.Unlock()
		var b strings.Builder
		b.WriteString("uri=" + r.RequestURI)
		for _, h := range trustedByOrigins {
			if gatewaySets[h] {
				continue // the gateway's own on every request (forward.go); tests read them from o.last()
			}
			if v := r.Header.Get(h); v != "" {
				fmt.Fprintf(&b, " %s=%s", h, v)
			}
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"e1"`)
		if v := r.URL.Query().Get("echo"); v != "" {
			w.Header().Set("X-Echo", v) // a reflected header, as redirects do with ?next=
		}
		w.Header().Set("Set-Cookie", "session=secret")
		if inm := r.Header.Get("If-None-Match"); inm == `"e1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, b.String()) // a failed write shows as a wrong body at the client
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *echoOrigin) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.reqs)
}

func (o *echoOrigin) last() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reqs[len(o.reqs)-1]
}

// rawResponse is what came back on the wire.
type rawResponse struct {
	status int
	header http.Header
	body   string
	wire   string // the status line and header section, as sent
}

// rawDo writes req as is on a new connection to addr (host:port) and reads
// one response.
func rawDo(t *testing.T, addr, req string) rawResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("write: %v", err)
	}
	var wire strings.Builder
	br := bufio.NewReader(io.TeeReader(conn, &wire))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v (got %q)", trunc(req), err, wire.String())
	}
	head := wire.String()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if i := strings.Index(head, "\r\n\r\n"); i >= 0 {
		head = head[:i+2]
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b), wire: head}
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

func get1(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: edge.example\r\n" + strings.Join(extra, "") + "Connection: close\r\n\r\n"
}

func hostileGateway(t *testing.T, shards int, tweak func(*config.Config)) (*echoOrigin, string, []*valkeytest.Server) {
	t.Helper()
	o := newEchoOrigin(t)
	var servers []*valkeytest.Server
	if shards > 0 {
		servers = valkeytest.Start(t, shards)
	}
	cfg := testConfig(o.URL, servers)
	if tweak != nil {
		tweak(cfg)
	}
	_, base := startGateway(t, cfg)
	return o, strings.TrimPrefix(base, "http://"), servers
}

func TestLimits(t *testing.T) {
	o, addr, _ := hostileGateway(t, 0, nil)
	_, small, _ := hostileGateway(t, 0, func(c *config.Config) {
		c.Limits = config.Limits{MaxURIBytes: 200, MaxHeaderBytes: 1024, MaxRequestBodyBytes: 1024}
	})
	long := func(n int) string { return "/p?x=" + strings.Repeat("a", n) }
	for _, tc := range []struct {
		name string
		addr string
		req  string
		want int
	}{
		{"uri at the default limit", addr, get1(long(config.DefaultMaxURIBytes - len("/p?x="))), 200},
		{"uri over the default limit", addr, get1(long(config.DefaultMaxURIBytes)), http.StatusRequestURITooLong},
		{"uri over limit plus header limit: net/http answers", addr, get1(long(config.DefaultMaxURIBytes + config.DefaultMaxHeaderBytes + 8192)), http.StatusRequestHeaderFieldsTooLarge},
		{"uri over a configured limit", small, get1(long(300)), http.StatusRequestURITooLong},
		{"header under the default limit", addr, get1("/p", "X-Big: "+strings.Repeat("b", config.DefaultMaxHeaderBytes-200)+"\r\n"), 200},
		{"header over the default limit", addr, get1("/p", "X-Big: "+strings.Repeat("b", config.DefaultMaxHeaderBytes)+"\r\n"), http.StatusRequestHeaderFieldsTooLarge},
		{"many small headers over the limit", addr, get1("/p", strings.Repeat("X-Many: cccccccccccccccccccccccccccccccccccccccc\r\n", 1000)), http.StatusRequestHeaderFieldsTooLarge},
		{"header over 1 MiB", addr, get1("/p", "X-Big: "+strings.Repeat("b", 1<<20)+"\r\n"), http.StatusRequestHeaderFieldsTooLarge},
		{"header over a configured limit", small, get1("/p", "X-Big: "+strings.Repeat("b", 1100)+"\r\n"), http.StatusRequestHeaderFieldsTooLarge},
		{"body length over the default limit", addr, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(config.DefaultMaxRequestBodyBytes+1) + "\r\n\r\n", http.StatusRequestEntityTooLarge},
		{"body length over a configured limit", small, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("d", 2000), http.StatusRequestEntityTooLarge},
		{"body at a configured limit", small, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n" + strings.Repeat("d", 1024), 200},
		{"chunked body over a configured limit", small, "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("100\r\n"+strings.Repeat("e", 256)+"\r\n", 8) + "0\r\n\r\n", http.StatusRequestEntityTooLarge},
		{"chunked body within a configured limit", small, "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + "100\r\n" + strings.Repeat("e", 256) + "\r\n0\r\n\r\n", 200},
		{"TRACE", addr, "TRACE /p HTTP/1.1\r\nHost: a\r\nCookie: secret\r\n\r\n", http.StatusMethodNotAllowed},
		{"CONNECT (no path: echo's router answers)", addr, "CONNECT edge.example:443 HTTP/1.1\r\nHost: edge.example:443\r\n\r\n", http.StatusNotFound},
		{"PROPFIND: an extension method, to the origin", addr, "PROPFIND /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200},
		{"unknown method, to the origin", addr, "BREW /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200},
		{"lower-case get: a known method in another case", addr, "get /p HTTP/1.1\r\nHost: a\r\n\r\n", http.StatusMethodNotAllowed},
		{"lower-case trace", addr, "trace /p HTTP/1.1\r\nHost: a\r\n\r\n", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := o.count()
			r := rawDo(t, tc.addr, tc.req)
			if r.status != tc.want {
				t.Fatalf("got %d %q, want %d", r.status, trunc(r.body), tc.want)
			}
			if tc.want == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
			if tc.want >= 400 && tc.addr == addr && o.count() != before {
				t.Fatalf("a rejected request reached the origin")
			}
		})
	}
}

// TestRouteMethods: a route's methods list is enforced after routing, with
// the route's own Allow, before anything reaches the origin or the cache;
// GET brings HEAD; a route without a list takes every known method.
func TestRouteMethods(t *testing.T) {
	o, addr, _ := hostileGateway(t, 1, func(c *config.Config) {
		c.Routes = append([]config.Route{
			{Name: "readonly", PathPrefix: "/ro/", Origin: c.Routes[0].Origin, DefaultTTL: time.Minute, Methods: []string{"GET"}, CacheSetCookie: true},
			{Name: "writeonly", PathPrefix: "/wo/", Origin: c.Routes[0].Origin, Methods: []string{"POST", "PUT"}},
		}, c.Routes...)
		c.EnsureDefaults()
	})
	req := func(method, path string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: edge.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	}
	for _, tc := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/ro/a", 200, ""},
		{"HEAD", "/ro/a", 200, ""},
		{"POST", "/ro/a", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"DELETE", "/ro/a", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"OPTIONS", "/ro/a", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/wo/a", 200, ""},
		{"PUT", "/wo/a", 200, ""},
		{"GET", "/wo/a", http.StatusMethodNotAllowed, "POST, PUT"},
		{"HEAD", "/wo/a", http.StatusMethodNotAllowed, "POST, PUT"},
		{"PATCH", "/other", 200, ""},
		{"DELETE", "/other", 200, ""},
		{"TRACE", "/ro/a", http.StatusMethodNotAllowed, strings.Join(config.KnownMethods, ", ")},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := o.count()
			r := rawDo(t, addr, req(tc.method, tc.path))
			if r.status != tc.want {
				t.Fatalf("got %d %q, want %d", r.status, trunc(r.body), tc.want)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
			if tc.want == http.StatusMethodNotAllowed && o.count() != before {
				t.Fatal("a rejected request reached the origin")
			}
		})
	}
	// The 405 for POST did not invalidate the cached GET: it never ran.
	if r := rawDo(t, addr, get1("/ro/a")); !strings.HasPrefix(r.header.Get("Cache-Status"), "edgecache; hit") {
		t.Fatalf("GET /ro/a after the rejected unsafe methods: %s", r.header.Get("Cache-Status"))
	}
}

// TestPathTricksKeepKeysApart: the key is built from exactly the path (and
// query) the origin is sent, so whatever an origin makes of encoded
// slashes, double encoding or case, what it answers for one request target
// is served only to requests for that same target. Dot-segments, which
// could escape a route's path prefix, are refused.
func TestPathTricksKeepKeysApart(t *testing.T) {
	o, addr, _ := hostileGateway(t, 1, func(c *config.Config) {
		c.Routes = append([]config.Route{{Name: "public", PathPrefix: "/public/", Origin: c.Routes[0].Origin, DefaultTTL: time.Minute, CacheSetCookie: true}}, c.Routes...)
		c.EnsureDefaults()
	})
	variants := []string{
		"/public/a/b", "/public/a%2Fb", "/public/a%252Fb", "/public/a%2fb", "/public/A/b", "/public/a/B",
		"/public/a//b", "/public/a/b/", "/public/%61/b", "/public/a/b%20", "/public/a/b;x=1",
		"/public/a/b?", "/public/a/b?q=1", "/public/a/b?Q=1", "/public/a/b?q=1&q=2", "/public/a/b?q=%31",
		"/public/a%5Cb", "/public/a\\b", "/public/%2561/b", "/public/a/b%00", "/public/a/b%0d%0a",
		"/public/\u00e4", "/public/%C3%A4",
	}
	// Twice each, interleaved: a collision would serve one variant's body
	// to another.
	bodies := map[string]string{}
	for round := range 2 {
		for _, v := range variants {
			r := rawDo(t, addr, get1(v))
			if r.status != 200 {
				t.Fatalf("%q: %d %q", v, r.status, r.body)
			}
			if round == 0 {
				bodies[v] = r.body
				continue
			}
			if r.body != bodies[v] || !strings.HasPrefix(r.header.Get("Cache-Status"), "edgecache; hit") {
				t.Errorf("%q: second response %q (%s), first %q", v, r.body, r.header.Get("Cache-Status"), bodies[v])
			}
		}
	}
	// The origin was asked for each variant's own target (the form the
	// gateway forwards: Go's escaping of the path where the raw form is
	// not a valid escaping), and each variant got that answer.
	byBody := map[string][]string{}
	for _, v := range variants {
		u, err := url.ParseRequestURI(v)
		if err != nil {
			t.Fatal(err)
		}
		want := "uri=" + u.EscapedPath()
		if u.RawQuery != "" { // "?" alone is no query: the same key, and the same target forwarded
			want += "?" + u.RawQuery
		}
		if bodies[v] != want {
			t.Errorf("%q got %q, want the origin's answer for its own target %q", v, bodies[v], want)
		}
		byBody[bodies[v]] = append(byBody[bodies[v]], v)
	}
	for body, vs := range byBody {
		if len(vs) > 1 {
			t.Logf("share one entry (the same target once forwarded): %q → %q", vs, body)
		}
	}
	n := o.count()
	for _, v := range []string{
		"/public/../private", "/public/./x", "/public/x/..", "/public/%2e%2e/private", "/public/%2E%2E%2Fprivate",
		"/public/..%2fprivate", "/public/.%2e/private", "/public/x/%2e",
	} {
		if r := rawDo(t, addr, get1(v)); r.status != http.StatusBadRequest {
			t.Errorf("dot-segment %q: %d %q, want 400", v, r.status, r.body)
		}
	}
	if o.count() != n {
		t.Fatal("a dot-segment request reached the origin")
	}
	// Not dot-segments: dots inside names are ordinary.
	for _, v := range []string{"/public/.well-known/x", "/public/a..b", "/public/...", "/public/x.", "/public/.x/y"} {
		if r := rawDo(t, addr, get1(v)); r.status != 200 {
			t.Errorf("%q: %d, want 200", v, r.status)
		}
	}
}

// TestDuplicateQueryOrder: the built-in key sorts query parameters by name
// only, keeping repeated names in the order sent, so "?q=1&q=2" and
// "?q=2&q=1" (which an origin reading the first value answers differently)
// are different entries.
func TestDuplicateQueryOrder(t *testing.T) {
	_, addr, _ := hostileGateway(t, 0, nil)
	a := rawDo(t, addr, get1("/dq?q=attacker&q=1"))
	b := rawDo(t, addr, get1("/dq?q=1&q=attacker"))
	if a.body == b.body {
		t.Fatalf("%q was served %q, the origin's answer to the other order", "/dq?q=1&q=attacker", b.body)
	}
}

// TestUnkeyedHeadersCannotPoison: headers that are not part of the key
// never reach the origin on a cache fill, so they cannot shape what is
// stored for everyone. (The pass path, which stores nothing, forwards
// X-Forwarded-For/-Host/-Proto set by the gateway itself.)
func TestUnkeyedHeadersCannotPoison(t *testing.T) {
	o, addr, _ := hostileGateway(t, 1, nil)
	for i, h := range trustedByOrigins {
		t.Run(h, func(t *testing.T) {
			path := "/poison/" + strconv.Itoa(i)
			evil := "evil.example"
			if strings.HasPrefix(h, "X-Original") && h != "X-Original-Host" || h == "X-Rewrite-Url" {
				evil = "/admin/evil"
			}
			if strings.Contains(h, "Method") {
				evil = "DELETE"
			}
			r := rawDo(t, addr, get1(path, h+": "+evil+"\r\n"))
			if r.status != 200 || strings.Contains(r.body, "evil") || strings.Contains(r.body, "DELETE") {
				t.Fatalf("the fill carried %s: %d %q", h, r.status, r.body)
			}
			if v := o.last().Header.Get(h); v != "" && (!gatewaySets[h] || strings.Contains(v, "evil")) {
				t.Fatalf("the origin received %s: %q on a cache fill", h, v)
			}
			clean := rawDo(t, addr, get1(path))
			if clean.body != "uri="+path || !strings.HasPrefix(clean.header.Get("Cache-Status"), "edgecache; hit") {
				t.Fatalf("the next client got %q (%s)", clean.body, clean.header.Get("Cache-Status"))
			}
		})
	}
	t.Run("Host is keyed", func(t *testing.T) {
		// The Host a client sends is part of the key (the route's origin
		// gets its own Host): another host's entry never answers.
		a := rawDo(t, addr, "GET /h HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
		b := rawDo(t, addr, get1("/h"))
		if a.header.Get("Cache-Status") != stored || b.header.Get("Cache-Status") != stored {
			t.Fatalf("hosts share an entry: %q then %q", a.header.Get("Cache-Status"), b.header.Get("Cache-Status"))
		}
		if host := o.last().Host; host != strings.TrimPrefix(o.URL, "http://") {
			t.Fatalf("origin got Host %q", host)
		}
	})
	t.Run("absolute-form target", func(t *testing.T) {
		a := rawDo(t, addr, "GET http://evil.example/abs HTTP/1.1\r\nHost: edge.example\r\nConnection: close\r\n\r\n")
		b := rawDo(t, addr, get1("/abs"))
		if a.status != 200 || b.header.Get("Cache-Status") != stored {
			t.Fatalf("absolute-form request shares an entry with Host's: %d, then %q", a.status, b.header.Get("Cache-Status"))
		}
	})
}

// TestNoResponseSplitting: CR/LF that a client smuggles into a query or a
// header, or that a stored value carries, never becomes a header line.
func TestNoResponseSplitting(t *testing.T) {
	_, addr, servers := hostileGateway(t, 1, nil)
	injected := func(r rawResponse) bool {
		for _, line := range strings.Split(r.wire, "\r\n") {
			l := strings.ToLower(line)
			if strings.HasPrefix(l, "set-cookie: pwn") || strings.HasPrefix(l, "x-injected") {
				return true
			}
		}
		return strings.Contains(r.wire, "\npwn") || strings.Contains(r.wire, "\rpwn")
	}
	t.Run("encoded CRLF in a reflected query value", func(t *testing.T) {
		for range 3 { // miss, then hits (l2, l1)
			r := rawDo(t, addr, get1("/split?echo=a%0d%0aSet-Cookie:%20pwn=1%0d%0aX-Injected:%201"))
			if injected(r) || r.status != 200 {
				t.Fatalf("%d, response head:\n%s", r.status, r.wire)
			}
		}
	})
	for _, tc := range []struct{ name, req string }{
		{"raw CRLF in the target", "GET /split?x=1\r\nSet-Cookie: pwn=1 HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"bare CR in a header value", "GET /split HTTP/1.1\r\nHost: a\r\nX-A: b\rSet-Cookie: pwn=1\r\n\r\n"},
		{"bare LF in the target", "GET /split?x=1\nX-Injected: 1 HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"NUL in a header value", "GET /split HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDo(t, addr, tc.req)
			if injected(r) || r.status < 400 || r.status > 499 {
				t.Fatalf("%d, response head:\n%s", r.status, r.wire)
			}
		})
	}
	t.Run("stored value with CRLF in a header", func(t *testing.T) {
		// Someone with write access to a shard plants an entry whose
		// header value and name carry CRLF: it fails to decode and is a
		// miss.
		key := keyOf(t, "http://edge.example/planted")
		for _, h := range []http.Header{
			{"X-A": {"b\r\nSet-Cookie: pwn=1"}},
			{"X-A\r\nSet-Cookie: pwn": {"1"}},
		} {
			e := entry.Entry{Status: 200, StoredAt: time.Now(), FreshUntil: time.Now().Add(time.Hour), Header: h, Body: []byte("planted")}
			if _, err := servers[0].Do("SET", key, string(entry.Encode(nil, &e))); err != nil {
				t.Fatal(err)
			}
			r := rawDo(t, addr, get1("/planted"))
			if injected(r) || r.body == "planted" {
				t.Fatalf("%d %q, response head:\n%s", r.status, r.body, r.wire)
			}
		}
	})
}

// storedValue returns the raw entry under url's key on whichever server
// holds it.
func storedValue(t *testing.T, servers []*valkeytest.Server, rawURL string) string {
	t.Helper()
	key := keyOf(t, rawURL)
	for _, s := range servers {
		if v, err := s.Do("GET", key); err == nil && v != "" {
			return v
		}
	}
	t.Fatalf("no entry for %s", rawURL)
	return ""
}

// TestSetCookieNeverStored: with routes[].cache_set_cookie (testConfig
// opts in; the default stores nothing: TestSetCookieNotStoredByDefault),
// a response is stored without its Set-Cookie, which reaches only the
// client that made the fetch.
func TestSetCookieNeverStored(t *testing.T) {
	o, addr, servers := hostileGateway(t, 1, func(c *config.Config) {
		c.Routes[0].HonorClientNoCache = true // "revalidated" forces a revalidation
	})
	noCookie := func(t *testing.T, path string) {
		t.Helper()
		v := storedValue(t, servers, "http://edge.example"+path)
		var e entry.Entry
		if err := entry.Decode([]byte(v), &e); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.Header["Set-Cookie"]; ok || strings.Contains(v, "session=secret") {
			t.Fatalf("%s: stored entry carries Set-Cookie: %v", path, e.Header)
		}
		for range 2 {
			if r := rawDo(t, addr, get1(path)); r.header.Get("Set-Cookie") != "" {
				t.Fatalf("%s: a hit (%s) carries Set-Cookie", path, r.header.Get("Cache-Status"))
			}
		}
	}
	t.Run("GET fill", func(t *testing.T) {
		r := rawDo(t, addr, get1("/c/get"))
		if r.header.Get("Set-Cookie") != "session=secret" {
			t.Fatalf("the fetching client lost its Set-Cookie: %v", r.header)
		}
		noCookie(t, "/c/get")
	})
	t.Run("HEAD fill", func(t *testing.T) {
		r := rawDo(t, addr, "HEAD /c/head HTTP/1.1\r\nHost: edge.example\r\nConnection: close\r\n\r\n")
		if r.status != 200 || r.header.Get("Cache-Status") != stored {
			t.Fatalf("HEAD: %d %q", r.status, r.header.Get("Cache-Status"))
		}
		noCookie(t, "/c/head")
	})
	t.Run("revalidated", func(t *testing.T) {
		rawDo(t, addr, get1("/c/reval"))
		// Cache-Control: no-cache from the client revalidates: the origin
		// answers 304 with Set-Cookie, and the entry is stored again.
		n := o.count()
		r := rawDo(t, addr, get1("/c/reval", "Cache-Control: no-cache\r\n"))
		if o.count() != n+1 || !strings.Contains(r.header.Get("Cache-Status"), "fwd-status=304") {
			t.Fatalf("no revalidation: %q", r.header.Get("Cache-Status"))
		}
		if o.last().Header.Get("If-None-Match") != `"e1"` {
			t.Fatal("the revalidation was not conditional")
		}
		noCookie(t, "/c/reval")
	})
	t.Run("coalesced waiters", func(t *testing.T) {
		var wg sync.WaitGroup
		cookies := make(chan string, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get("http://" + addr + "/c/many")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				cookies <- resp.Header.Get("Set-Cookie")
			}()
		}
		wg.Wait()
		close(cookies)
		n := 0
		for c := range cookies {
			if c != "" {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("%d responses carried the fetching client's Set-Cookie", n)
		}
	})
}

func TestMalformedRequests4xx(t *testing.T) {
	o, addr, _ := hostileGateway(t, 0, nil)
	for _, tc := range []struct{ name, req string }{
		{"no Host in HTTP/1.1", "GET /m HTTP/1.1\r\n\r\n"},
		{"two Hosts", "GET /m HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{"Host with a space", "GET /m HTTP/1.1\r\nHost: a b\r\n\r\n"},
		{"malformed version", "GET /m HTTP/x.y\r\nHost: a\r\n\r\n"},
		{"no version", "GET /m\r\nHost: a\r\n\r\n"},
		{"garbage line", "HELLO\r\n\r\n"},
		{"space in a header name", "GET /m HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n"},
		{"colon-less header line", "GET /m HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"},
		{"negative Content-Length", "POST /m HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"},
		{"non-numeric Content-Length", "POST /m HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n"},
		{"conflicting Content-Lengths", "POST /m HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx"},
		{"raw NUL in the path", "GET /m\x00 HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"relative target", "GET m HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"asterisk target on GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"invalid escape in the path", "GET /m%zz HTTP/1.1\r\nHost: a\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := o.count()
			r := rawDo(t, addr, tc.req)
			if r.status < 400 || r.status > 499 {
				t.Fatalf("got %d %q, want a 4xx", r.status, trunc(r.body))
			}
			if o.count() != before {
				t.Fatal("a malformed request reached the origin")
			}
		})
	}
	// Not 4xx, and right so: net/http answers an unknown transfer coding
	// with 501 (RFC 9112 §6.1), and replaces obs-fold with a space (RFC
	// 9112 §5.2 allows either that or 400).
	if r := rawDo(t, addr, "POST /m HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"); r.status != http.StatusNotImplemented {
		t.Errorf("unknown Transfer-Encoding: %d", r.status)
	}
	if r := rawDo(t, addr, "GET /fold HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: b\r\n c\r\nConnection: close\r\n\r\n"); r.status != 200 {
		t.Errorf("obs-fold: %d", r.status)
	}
	t.Run("bad chunk size on the pass path", func(t *testing.T) {
		// The pass starts the origin request before the body turns out
		// malformed: the client's error, 400, not the origin's 502.
		r := rawDo(t, addr, "POST /m HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
		if r.status != http.StatusBadRequest {
			t.Fatalf("got %d %q, want 400", r.status, r.body)
		}
	})
	t.Run("smuggling: Content-Length with chunked", func(t *testing.T) {
		// A front end that reads Content-Length would see one request; one
		// that reads chunked, two. The gateway must not answer the
		// smuggled one.
		req := "POST /m HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(conn) // EOF: the gateway closed the connection after one response
		if n := strings.Count(string(b), "HTTP/1.1 "); n != 1 || err != nil {
			t.Fatalf("%d responses (read: %v):\n%s", n, err, b)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, r := range o.reqs {
			if r.URL.Path == "/smuggled" {
				t.Fatal("the smuggled request reached the origin")
			}
		}
	})
	// After all that, the gateway serves.
	if r := rawDo(t, addr, get1("/after")); r.status != 200 {
		t.Fatalf("after the malformed requests: %d", r.status)
	}
}
