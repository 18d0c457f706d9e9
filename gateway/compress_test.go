package gateway_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/policies"
)

// codingOrigin is a real origin whose response per path is set by the
// test (type, body, fields), counting requests per path.
type codingOrigin struct {
	*httptest.Server
	mu    sync.Mutex
	resp  map[string]originResp
	count map[string]int
	delay time.Duration
}

type originResp struct {
	ctype  string
	body   []byte
	header map[string]string
}

func newCodingOrigin(t testing.TB) *codingOrigin {
	o := &codingOrigin{resp: map[string]originResp{}, count: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.count[r.URL.Path]++
		rs, delay := o.resp[r.URL.Path], o.delay
		o.mu.Unlock()
		time.Sleep(delay)
		h := w.Header()
		h.Set("Content-Type", rs.ctype)
		h.Set("Cache-Control", "max-age=300")
		h.Set("Etag", `"v1"`)
		for k, v := range rs.header {
			h.Set(k, v)
		}
		_, _ = w.Write(rs.body)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *codingOrigin) set(path string, rs originResp) {
	o.mu.Lock()
	o.resp[path] = rs
	o.mu.Unlock()
}

func (o *codingOrigin) hits(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[path]
}

// rawClient does not decode codings (nor ask for any): the test sees
// what the gateway sent.
var rawClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}

type coded struct {
	status int
	header http.Header
	raw    []byte // as sent
	body   []byte // decoded from Content-Encoding
}

// getCoded GETs url with the given Accept-Encoding ("-": none) and
// extra fields, and decodes the body with decoders independent of the
// gateway's where there is one (the standard library's gzip).
func getCoded(t testing.TB, method, url, ae string, extra ...string) coded {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ae != "-" {
		req.Header.Set("Accept-Encoding", ae)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	c := coded{status: resp.StatusCode, header: resp.Header, raw: raw}
	var r io.Reader
	switch ce := resp.Header.Get("Content-Encoding"); {
	case len(raw) == 0 && (method == http.MethodHead || resp.StatusCode == http.StatusNotModified):
		return c
	case ce == "":
		c.body = raw
		return c
	case ce == "gzip":
		zr, err := stdgzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
		r = zr
	case ce == "br":
		r = brotli.NewReader(bytes.NewReader(raw))
	case ce == "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("zstd body: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected Content-Encoding %q", ce)
	}
	if c.body, err = io.ReadAll(r); err != nil {
		t.Fatalf("%s body does not decode: %v", resp.Header.Get("Content-Encoding"), err)
	}
	return c
}

// jsonBody is a compressible body of about n bytes.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d","price":%d.99,"tags":["a","b"]},`, i, i, i%100)
	}
	b.WriteString(`{}]}`)
	return b.Bytes()
}

func compressGateway(t testing.TB, o *codingOrigin, mutate func(*config.Config)) string {
	cfg := testConfig(o.URL, nil)
	if mutate != nil {
		mutate(cfg)
		cfg.EnsureDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	_, base := startGateway(t, cfg)
	return base
}

// TestCompressedRepresentations: a compressible body the origin sent
// uncompressed is filled once and every client gets a body it can decode
// that equals the origin's, in the coding it prefers, with Vary,
// Content-Length and a per-coding ETag; small and large bodies (each
// coding made on the first request that picks it). The large one is past
// compress.StoreIdentityBelow and under the fill's first piece
// (headAfter): at 64 KiB the leader's answer streamed or not by whether
// the origin's EOF came with its last bytes.
func TestCompressedRepresentations(t *testing.T) {
	o := newCodingOrigin(t)
	base := compressGateway(t, o, nil)
	for _, size := range []int{1 << 10, 32 << 10} {
		path := fmt.Sprintf("/api/%d", size)
		body := jsonBody(size)
		o.set(path, originResp{ctype: "application/json; charset=utf-8", body: body})
		clients := []struct {
			ae, want string
		}{
			{"br, gzip", "br"}, // the first is the fill's leader
			{"gzip", "gzip"},
			{"zstd", "zstd"},
			{"gzip, deflate, br, zstd", "br"},
			{"gzip;q=1, br;q=0.5", "gzip"},
			{"identity", ""},
			{"-", ""}, // no Accept-Encoding: identity
			{"deflate, compress", ""},
			{"*", "br"},
			{"br;q=0, *;q=0.5", "zstd"},
			{"identity;q=0", ""}, // refuses everything it can get: identity anyway (no 406)
		}
		etags := map[string]string{}
		for i, c := range clients {
			r := getCoded(t, http.MethodGet, base+path, c.ae)
			if r.status != 200 {
				t.Fatalf("%d %q: status %d", size, c.ae, r.status)
			}
			if got := r.header.Get("Content-Encoding"); got != c.want {
				t.Errorf("%d %q: Content-Encoding %q, want %q (%s)", size, c.ae, got, c.want, r.header.Get("Cache-Status"))
			}
			if !bytes.Equal(r.body, body) {
				t.Errorf("%d %q: decoded body (%d bytes) differs from the origin's (%d)", size, c.ae, len(r.body), len(body))
			}
			if got, want := r.header.Get("Content-Length"), fmt.Sprint(len(r.raw)); got != want {
				t.Errorf("%d %q: Content-Length %s, body %s bytes", size, c.ae, got, want)
			}
			if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Accept-Encoding") {
				t.Errorf("%d %q: Vary %q lacks Accept-Encoding", size, c.ae, r.header.Values("Vary"))
			}
			if r.header.Get("Edgecache-Codings") != "" {
				t.Errorf("%d %q: the internal field reached the client", size, c.ae)
			}
			if c.want != "" && len(r.raw) >= len(body) {
				t.Errorf("%d %q: %s body %d bytes is not smaller than %d", size, c.ae, c.want, len(r.raw), len(body))
			}
			if i > 0 && !strings.HasPrefix(r.header.Get("Cache-Status"), "edgecache; hit") {
				t.Errorf("%d %q: Cache-Status %q, want a hit", size, c.ae, r.header.Get("Cache-Status"))
			}
			etag := r.header.Get("Etag")
			if prev, ok := etags[c.want]; ok && prev != etag {
				t.Errorf("%d %q: ETag %q, the same coding had %q", size, c.ae, etag, prev)
			}
			etags[c.want] = etag
		}
		want := map[string]string{"": `"v1"`, "br": `"v1-br"`, "gzip": `"v1-gzip"`, "zstd": `"v1-zstd"`}
		for cd, e := range want {
			if etags[cd] != e {
				t.Errorf("%d: coding %q has ETag %q, want %q", size, cd, etags[cd], e)
			}
		}
		if n := o.hits(path); n != 1 {
			t.Errorf("%d: origin saw %d requests, want 1", size, n)
		}
	}
}

// TestCompressConditionalAndHead: a coding's own ETag revalidates that
// coding only; HEAD gets the coding's headers without a body.
func TestCompressConditionalAndHead(t *testing.T) {
	o := newCodingOrigin(t)
	base := compressGateway(t, o, nil)
	body := jsonBody(8 << 10)
	o.set("/c", originResp{ctype: "text/html", body: body})
	first := getCoded(t, http.MethodGet, base+"/c", "br")
	tests := []struct {
		name, ae, inm string
		want          int
	}{
		{"own tag", "br", `"v1-br"`, http.StatusNotModified},
		{"own tag among others", "gzip", `"x", "v1-gzip"`, http.StatusNotModified},
		{"identity tag asking br", "br", `"v1"`, http.StatusOK},
		{"br tag asking gzip", "gzip", `"v1-br"`, http.StatusOK},
		{"identity tag, identity", "-", `"v1"`, http.StatusNotModified},
		{"star", "zstd", `*`, http.StatusNotModified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := getCoded(t, http.MethodGet, base+"/c", tt.ae, "If-None-Match", tt.inm)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d", r.status, tt.want)
			}
			if tt.want == http.StatusOK && !bytes.Equal(r.body, body) {
				t.Fatal("body differs")
			}
		})
	}
	h := getCoded(t, http.MethodHead, base+"/c", "gzip")
	if h.header.Get("Content-Encoding") != "gzip" || len(h.raw) != 0 || h.header.Get("Content-Length") == "" {
		t.Errorf("HEAD: %q, %d body bytes, Content-Length %q", h.header.Get("Content-Encoding"), len(h.raw), h.header.Get("Content-Length"))
	}
	if first.header.Get("Content-Encoding") != "br" || o.hits("/c") != 1 {
		t.Errorf("first %q, origin saw %d", first.header.Get("Content-Encoding"), o.hits("/c"))
	}
}

// TestCompressNotApplied: what must not be encoded is served as the
// origin sent it, to a client that would accept every coding.
func TestCompressNotApplied(t *testing.T) {
	o := newCodingOrigin(t)
	base := compressGateway(t, o, func(c *config.Config) {
		c.Routes = append(c.Routes, config.Route{Name: "off", PathPrefix: "/off/", Origin: o.URL, DefaultTTL: time.Minute,
			Compress: config.Compress{Disabled: true}})
		c.Routes[0], c.Routes[1] = c.Routes[1], c.Routes[0]
	})
	var gz bytes.Buffer
	zw := stdgzip.NewWriter(&gz)
	_, _ = zw.Write(jsonBody(4 << 10))
	_ = zw.Close()
	big := jsonBody(4 << 10)
	tests := []struct {
		name string
		resp originResp
		ce   string // what the client must get
	}{
		{"no-transform", originResp{ctype: "application/json", body: big, header: map[string]string{"Cache-Control": "max-age=300, no-transform"}}, ""},
		{"not compressible", originResp{ctype: "image/png", body: big}, ""},
		{"no type", originResp{body: big}, ""},
		{"small", originResp{ctype: "text/plain", body: []byte(strings.Repeat("a", 200))}, ""},
		{"origin compressed", originResp{ctype: "application/json", body: gz.Bytes(), header: map[string]string{"Content-Encoding": "gzip"}}, "gzip"},
		{"route disabled", originResp{ctype: "text/plain", body: big}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/" + strings.ReplaceAll(tt.name, " ", "-")
			if tt.name == "route disabled" {
				path = "/off/x"
			}
			o.set(path, tt.resp)
			for i := range 2 {
				r := getCoded(t, http.MethodGet, base+path, "br, gzip, zstd")
				if ce := r.header.Get("Content-Encoding"); ce != tt.ce {
					t.Fatalf("request %d: Content-Encoding %q, want %q", i, ce, tt.ce)
				}
				if !bytes.Equal(r.raw, tt.resp.body) {
					t.Fatalf("request %d: body is not the origin's bytes", i)
				}
				if tt.ce == "" && r.header.Get("Etag") != `"v1"` {
					t.Fatalf("request %d: ETag %q changed", i, r.header.Get("Etag"))
				}
			}
			if n := o.hits(path); n != 1 {
				t.Errorf("origin saw %d requests, want 1", n)
			}
		})
	}
}

// TestCompressHostileAcceptEncoding: whatever a client writes, it never
// gets a coding its field does not accept.
func TestCompressHostileAcceptEncoding(t *testing.T) {
	o := newCodingOrigin(t)
	base := compressGateway(t, o, func(c *config.Config) { c.Compress.Codings = []string{"br", "gzip"} })
	body := jsonBody(16 << 10)
	o.set("/h", originResp{ctype: "application/json", body: body})
	getCoded(t, http.MethodGet, base+"/h", "br")
	huge := strings.Repeat("xgzip, ", 1000) + "zstd"
	for _, ae := range []string{
		"zstd, xbr", "zstd", "xbr, gzipx, br2", "br;q=0", "br;q=0, gzip;q=0",
		"br;q=1.5", "gzip;q=abc", "gzip;q=0.0001", "BR;Q=0", "*;q=0, br;q=0", "br;q=0, *",
		";;;,,,", "gzip ; q = 0", "x-gzip;q=0, gzip", huge, strings.Repeat("br;q=0,", 2000),
	} {
		r := getCoded(t, http.MethodGet, base+"/h", ae)
		ce := r.header.Get("Content-Encoding")
		vals := []string{ae}
		if ce != "" && !policies.AcceptsCoding(vals, ce) {
			t.Errorf("Accept-Encoding %.60q got %q, which it does not accept", ae, ce)
		}
		if r.status == 200 && !bytes.Equal(r.body, body) {
			t.Errorf("Accept-Encoding %.60q: body differs", ae)
		}
	}
	if n := o.hits("/h"); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}

// TestCompressMissCoalesced: the fill encodes once; the leader and every
// request that waited on it get the coding each accepts, and the origin
// sees one request.
func TestCompressMissCoalesced(t *testing.T) {
	o := newCodingOrigin(t)
	o.delay = 200 * time.Millisecond
	base := compressGateway(t, o, nil)
	body := jsonBody(32 << 10)
	o.set("/m", originResp{ctype: "text/css", body: body})
	aes := []string{"br", "gzip", "zstd", "-", "gzip, br", "identity"}
	want := []string{"br", "gzip", "zstd", "", "br", ""}
	var wg sync.WaitGroup
	var misses atomic.Int32
	got := make([]coded, len(aes)*3)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = getCoded(t, http.MethodGet, base+"/m", aes[i%len(aes)])
			if strings.Contains(got[i].header.Get("Cache-Status"), "fwd=") {
				misses.Add(1)
			}
		}()
	}
	wg.Wait()
	for i, r := range got {
		if ce := r.header.Get("Content-Encoding"); ce != want[i%len(aes)] || !bytes.Equal(r.body, body) {
			t.Errorf("client %d (%q): Content-Encoding %q, body equal %v (%s)", i, aes[i%len(aes)], ce, bytes.Equal(r.body, body), r.header.Get("Cache-Status"))
		}
	}
	if n := o.hits("/m"); n != 1 {
		t.Errorf("origin saw %d requests, want 1 (%d misses)", n, misses.Load())
	}
}

// TestCompressOriginVaryAndInternalField: an origin that says Vary:
// Accept-Encoding for an uncompressed body is filled once for every
// coding (the entry answers them all), and an origin cannot smuggle the
// internal field into the cache.
func TestCompressOriginVaryAndInternalField(t *testing.T) {
	o := newCodingOrigin(t)
	base := compressGateway(t, o, nil)
	body := jsonBody(8 << 10)
	o.set("/v", originResp{ctype: "text/plain", body: body, header: map[string]string{"Vary": "Accept-Encoding"}})
	o.set("/evil", originResp{ctype: "text/plain", body: body, header: map[string]string{"Edgecache-Codings": "br 0 10"}})
	for _, ae := range []string{"gzip", "br", "-", "zstd", "gzip"} {
		for _, p := range []string{"/v", "/evil"} {
			r := getCoded(t, http.MethodGet, base+p, ae)
			if !bytes.Equal(r.body, body) {
				t.Fatalf("%s %q: body differs (%s)", p, ae, r.header.Get("Cache-Status"))
			}
		}
	}
	if n := o.hits("/v"); n != 1 {
		t.Errorf("/v: origin saw %d requests, want 1", n)
	}
	if n := o.hits("/evil"); n != 1 {
		t.Errorf("/evil: origin saw %d requests, want 1", n)
	}
}

// TestCompressRevalidated: a stale compressed entry is revalidated with
// the origin's own tag, a 304 refreshes it without the body, and every
// client still gets its coding of the same body (large: identity is
// decoded, small: stored).
func TestCompressRevalidated(t *testing.T) {
	for _, size := range []int{1 << 10, 16 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			body := jsonBody(size)
			var full, notMod atomic.Int32
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Etag", `"r1"`)
				w.Header().Set("Cache-Control", "max-age=1")
				w.Header().Set("Content-Type", "application/json")
				if r.Header.Get("If-None-Match") == `"r1"` {
					notMod.Add(1)
					w.WriteHeader(http.StatusNotModified)
					return
				}
				full.Add(1)
				_, _ = w.Write(body)
			}))
			defer origin.Close()
			cfg := testConfig(origin.URL, nil)
			cfg.Routes[0].DefaultTTL = 0
			clk := testutil.NewClock()
			_, base := startGatewayWith(t, cfg, gateway.Options{Now: clk.Now})
			getCoded(t, http.MethodGet, base+"/r", "gzip")
			clk.Advance(1100 * time.Millisecond) // stale by its own freshness
			for _, c := range []struct{ ae, want string }{{"br", "br"}, {"-", ""}, {"zstd", "zstd"}, {"gzip", "gzip"}, {"identity", ""}} {
				r := getCoded(t, http.MethodGet, base+"/r", c.ae)
				if ce := r.header.Get("Content-Encoding"); ce != c.want || !bytes.Equal(r.body, body) {
					t.Errorf("%q: Content-Encoding %q, body equal %v (%s)", c.ae, ce, bytes.Equal(r.body, body), r.header.Get("Cache-Status"))
				}
				if r.header.Get("Edgecache-Codings") != "" {
					t.Errorf("%q: the internal field reached the client", c.ae)
				}
			}
			if full.Load() != 1 || notMod.Load() != 1 {
				t.Errorf("origin sent %d full responses and %d 304s, want 1 and 1", full.Load(), notMod.Load())
			}
		})
	}
}

// TestCompressLargeBodyOnDemand: a fill stores a large compressible body
// as it came, serves the first client that asks for br the identity body
// (with Vary: Accept-Encoding) while br is made in the background, and
// br once it is made, from the one origin request.
func TestCompressLargeBodyOnDemand(t *testing.T) {
	o := newCodingOrigin(t)
	base := compressGateway(t, o, nil)
	body := jsonBody(gateway.EncodeInlineMax * 3)
	o.set("/big", originResp{ctype: "application/json", body: body})
	if r := getCoded(t, http.MethodGet, base+"/big", "-"); r.header.Get("Content-Encoding") != "" || !bytes.Equal(r.body, body) {
		t.Fatalf("miss without Accept-Encoding: %q, body equal %v", r.header.Get("Content-Encoding"), bytes.Equal(r.body, body))
	}
	// A br client that comes while the fill still stores joins its
	// stream (Cache-Status detail=streaming), and gets Vary too
	// (TestCompressStreamedAnswerVaries).
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := getCoded(t, http.MethodGet, base+"/big", "br")
		if !bytes.Equal(r.body, body) {
			t.Fatalf("br client (%q): body differs", r.header.Get("Content-Encoding"))
		}
		if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Accept-Encoding") {
			t.Fatalf("Vary %q lacks Accept-Encoding (%s)", r.header.Values("Vary"), r.header.Get("Cache-Status"))
		}
		if r.header.Get("Content-Encoding") == "br" {
			if r.header.Get("Etag") != `"v1-br"` || len(r.raw) >= len(body) {
				t.Errorf("br: ETag %q, %d bytes of %d", r.header.Get("Etag"), len(r.raw), len(body))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("br was not served within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := o.hits("/big"); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}

// TestCompressStreamedAnswerVaries: the clients of a fill that streams
// (a body past the first piece) get the identity body as it comes, and
// with it the Vary: Accept-Encoding of the compressed entry it stores;
// a streamed body the route does not compress gets no such Vary. Before,
// the streamed head was the origin's, and a client that joined the fill
// just after the leader's answer got a body without the Vary the next
// client's coded answer had.
func TestCompressStreamedAnswerVaries(t *testing.T) {
	o := newCodingOrigin(t)
	base := compressGateway(t, o, nil)
	big := jsonBody(gateway.EncodeInlineMax * 3)
	o.set("/json", originResp{ctype: "application/json", body: big})
	o.set("/png", originResp{ctype: "image/png", body: big})
	o.set("/varies", originResp{ctype: "application/json", body: big, header: map[string]string{"Vary": "Accept-Language"}})
	for _, c := range []struct {
		path, want string
	}{{"/json", "Accept-Encoding"}, {"/png", ""}, {"/varies", "Accept-Language, Accept-Encoding"}} {
		r := getCoded(t, http.MethodGet, base+c.path, "br")
		if cs := r.header.Get("Cache-Status"); !strings.Contains(cs, "detail=streaming") {
			t.Fatalf("%s: Cache-Status %q: the fill did not stream", c.path, cs)
		}
		if vary := strings.Join(r.header.Values("Vary"), ", "); vary != c.want || !bytes.Equal(r.body, big) {
			t.Errorf("%s: Vary %q, want %q; body equal %v", c.path, vary, c.want, bytes.Equal(r.body, big))
		}
	}
	// The entry is stored as a compressed one, not under a Vary marker
	// for the Accept-Encoding the streamed head carried: br is made and
	// served from the one origin request.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := getCoded(t, http.MethodGet, base+"/json", "br")
		if r.header.Get("Content-Encoding") == "br" && bytes.Equal(r.body, big) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("br was not served within 20s (%s)", r.header.Get("Cache-Status"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := o.hits("/json"); n != 1 {
		t.Errorf("origin saw %d requests for /json, want 1", n)
	}
}
