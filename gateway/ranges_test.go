package gateway_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/testutil"
)

// rangeBody is the representation the range tests ask parts of: 100
// bytes, each position telling where it is.
var rangeBody = func() string {
	var b strings.Builder
	for i := 0; b.Len() < 100; i++ {
		fmt.Fprintf(&b, "%02d|", i)
	}
	return b.String()[:100]
}()

// rangeGateway starts a gateway in front of o, on the HTTP/1 fast path
// or on net/http alone, with tweak applied to its config.
func rangeGateway(t *testing.T, o *testutil.Origin, fast bool, tweak func(*config.Config)) (*gateway.Gateway, string) {
	t.Helper()
	cfg := testConfig(o.URL, nil)
	cfg.Server.DisableFastPath = !fast
	if tweak != nil {
		tweak(cfg)
	}
	return startGateway(t, cfg)
}

// rangeOrigin answers path with rangeBody, validators and freshness cc,
// and fails the test if a fill forwards Range or If-Range.
func rangeOrigin(t *testing.T, o *testutil.Origin, path, cc string, lastMod time.Time) {
	o.Handle(path, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Header.Get("Range") != "" || r.Header.Get("If-Range") != "" {
			t.Errorf("the origin got Range %q, If-Range %q", r.Header.Get("Range"), r.Header.Get("If-Range"))
		}
		if r.Header.Get("If-None-Match") == `"v1"` {
			testutil.Reply(w, http.StatusNotModified, "", "Cache-Control", cc, "Etag", `"v1"`)
			return
		}
		testutil.Reply(w, http.StatusOK, rangeBody, "Cache-Control", cc, "Etag", `"v1"`,
			"Last-Modified", lastMod.UTC().Format(http.TimeFormat), "Content-Type", "text/plain; charset=utf-8")
	})
}

// TestRangeHit asks a stored entry for ranges, on both writers: single,
// suffix and open ranges, several (multipart/byteranges), If-Range, 416,
// HEAD, and the Range fields that are ignored. The origin sees the one
// fill, never a Range.
func TestRangeHit(t *testing.T) {
	lastMod := time.Now().Add(-time.Hour).Truncate(time.Second)
	lm := lastMod.UTC().Format(http.TimeFormat)
	whole := func(t *testing.T, r result) { t.Helper(); wantBody(t, r, http.StatusOK, rangeBody) }
	part := func(from, to int) func(*testing.T, result) {
		return func(t *testing.T, r result) {
			t.Helper()
			wantBody(t, r, http.StatusPartialContent, rangeBody[from:to+1])
			wantField(t, r, "Content-Range", fmt.Sprintf("bytes %d-%d/100", from, to))
			wantField(t, r, "Content-Length", strconv.Itoa(to-from+1))
		}
	}
	cases := []struct {
		name   string
		method string
		kv     []string
		check  func(*testing.T, result)
	}{
		{"single", "GET", []string{"Range", "bytes=0-9"}, part(0, 9)},
		{"single middle", "GET", []string{"Range", "bytes=10-19"}, part(10, 19)},
		{"suffix", "GET", []string{"Range", "bytes=-5"}, part(95, 99)},
		{"suffix longer than body", "GET", []string{"Range", "bytes=-500"}, part(0, 99)},
		{"open", "GET", []string{"Range", "bytes=90-"}, part(90, 99)},
		{"past the end is cut", "GET", []string{"Range", "bytes=95-200"}, part(95, 99)},
		{"unit case-insensitive", "GET", []string{"Range", "Bytes=1-2"}, part(1, 2)},
		{"several", "GET", []string{"Range", "bytes=0-4, 10-14,-3"}, wantParts(t, [][2]int{{0, 4}, {10, 14}, {97, 99}})},
		{"several, one unsatisfiable", "GET", []string{"Range", "bytes=0-1,200-300"}, part(0, 1)},
		{"unsatisfiable", "GET", []string{"Range", "bytes=100-"}, want416},
		{"unsatisfiable zero suffix", "GET", []string{"Range", "bytes=-0"}, want416},
		{"overlapping: whole", "GET", []string{"Range", "bytes=0-80,10-90"}, whole},
		{"too many: whole", "GET", []string{"Range", "bytes=" + strings.Repeat("0-0,", 70) + "1-1"}, whole},
		{"invalid syntax ignored", "GET", []string{"Range", "bytes=abc"}, whole},
		{"reversed ignored", "GET", []string{"Range", "bytes=9-1"}, whole},
		{"other unit ignored", "GET", []string{"Range", "items=0-1"}, whole},
		{"two lines ignored", "GET", []string{"Range", "bytes=0-1", "Range", "bytes=2-3"}, whole},
		{"if-range etag matches", "GET", []string{"Range", "bytes=0-9", "If-Range", `"v1"`}, part(0, 9)},
		{"if-range weak etag never matches", "GET", []string{"Range", "bytes=0-9", "If-Range", `W/"v1"`}, whole},
		{"if-range other etag", "GET", []string{"Range", "bytes=0-9", "If-Range", `"v2"`}, whole},
		{"if-range date equal", "GET", []string{"Range", "bytes=0-9", "If-Range", lm}, part(0, 9)},
		{"if-range date later", "GET", []string{"Range", "bytes=0-9", "If-Range", lastMod.Add(time.Second).UTC().Format(http.TimeFormat)}, whole},
		{"if-range without range", "GET", []string{"If-Range", `"v1"`}, whole},
		{"if-none-match first: 304", "GET", []string{"Range", "bytes=0-9", "If-None-Match", `"v1"`}, func(t *testing.T, r result) {
			t.Helper()
			wantBody(t, r, http.StatusNotModified, "")
		}},
		{"head", "HEAD", []string{"Range", "bytes=0-9"}, func(t *testing.T, r result) {
			t.Helper()
			wantBody(t, r, http.StatusPartialContent, "")
			wantField(t, r, "Content-Range", "bytes 0-9/100")
			wantField(t, r, "Content-Length", "10")
		}},
		{"head unsatisfiable", "HEAD", []string{"Range", "bytes=100-"}, want416},
	}
	for _, fast := range []bool{true, false} {
		t.Run(map[bool]string{true: "h1", false: "net-http"}[fast], func(t *testing.T) {
			o := testutil.NewOrigin(t)
			rangeOrigin(t, o, "/r", "max-age=300", lastMod)
			_, base := rangeGateway(t, o, fast, nil)
			first := get(t, base+"/r")
			wantBody(t, first, http.StatusOK, rangeBody)
			wantField(t, first, "Accept-Ranges", "bytes")
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := doWith(t, c.method, base+"/r", c.kv...)
					c.check(t, r)
					if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") {
						t.Errorf("Cache-Status %q, want a hit", r.cacheStatus)
					}
				})
			}
			if n := o.Count("/r"); n != 1 {
				t.Errorf("the origin got %d requests, want the one fill", n)
			}
			wantField(t, get(t, base+"/r"), "Accept-Ranges", "bytes")
		})
	}
}

func wantBody(t *testing.T, r result, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("got %d %q (Cache-Status %q), want %d %q", r.status, r.body, r.cacheStatus, status, body)
	}
}

func wantField(t *testing.T, r result, name, want string) {
	t.Helper()
	if got := r.header.Values(name); len(got) != 1 || got[0] != want {
		t.Errorf("%s: %q, want %q", name, got, want)
	}
}

// want416 checks an unsatisfiable range's answer: Content-Range with the
// length, no body, and nothing that would let a cache downstream store it.
func want416(t *testing.T, r result) {
	t.Helper()
	wantBody(t, r, http.StatusRequestedRangeNotSatisfiable, "")
	wantField(t, r, "Content-Range", "bytes */100")
	wantField(t, r, "Content-Length", "0")
	for _, name := range []string{"Cache-Control", "Content-Type", "Accept-Ranges"} {
		if v := r.header.Get(name); v != "" {
			t.Errorf("a 416 has %s %q", name, v)
		}
	}
}

// wantParts checks a multipart/byteranges answer, parsed by mime/multipart.
func wantParts(t *testing.T, parts [][2]int) func(*testing.T, result) {
	return func(t *testing.T, r result) {
		t.Helper()
		if r.status != http.StatusPartialContent {
			t.Fatalf("status %d, want 206", r.status)
		}
		wantField(t, r, "Content-Length", strconv.Itoa(len(r.body)))
		mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" {
			t.Fatalf("Content-Type %q: %v", r.header.Get("Content-Type"), err)
		}
		mr := multipart.NewReader(strings.NewReader(r.body), params["boundary"])
		for i, p := range parts {
			pt, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			b, _ := io.ReadAll(pt)
			cr := fmt.Sprintf("bytes %d-%d/100", p[0], p[1])
			if string(b) != rangeBody[p[0]:p[1]+1] || pt.Header.Get("Content-Range") != cr || pt.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("part %d: %q %q %q, want %q %q", i, b, pt.Header.Get("Content-Range"), pt.Header.Get("Content-Type"), rangeBody[p[0]:p[1]+1], cr)
			}
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Errorf("after the last part: %v, want EOF", err)
		}
	}
}

// TestRangeMiss sends Range requests for an entry not stored yet, all at
// once: one fill without Range, each request answered its own range from
// the whole body, and the entry stored whole.
func TestRangeMiss(t *testing.T) {
	o := testutil.NewOrigin(t)
	release := make(chan struct{})
	o.Handle("/m", func(w http.ResponseWriter, r *http.Request, _ int) {
		<-release
		if r.Header.Get("Range") != "" {
			t.Errorf("the fill forwarded Range %q", r.Header.Get("Range"))
		}
		testutil.Reply(w, http.StatusOK, rangeBody, "Cache-Control", "max-age=300", "Content-Type", "text/plain")
	})
	_, base := rangeGateway(t, o, true, nil)
	ranges := [][2]int{{0, 9}, {10, 19}, {50, 99}, {0, 0}, {99, 99}}
	results := make([]result, len(ranges))
	var wg sync.WaitGroup
	for i, rg := range ranges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = doWith(t, "GET", base+"/m", "Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))
		}()
	}
	time.Sleep(200 * time.Millisecond) // let them all join the fill
	close(release)
	wg.Wait()
	for i, rg := range ranges {
		wantBody(t, results[i], http.StatusPartialContent, rangeBody[rg[0]:rg[1]+1])
		wantField(t, results[i], "Content-Range", fmt.Sprintf("bytes %d-%d/100", rg[0], rg[1]))
		wantField(t, results[i], "Content-Length", strconv.Itoa(rg[1]-rg[0]+1))
	}
	if n := o.Count("/m"); n != 1 {
		t.Fatalf("the origin got %d requests, want 1 (coalesced)", n)
	}
	r := get(t, base+"/m")
	wantBody(t, r, http.StatusOK, rangeBody)
	if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") {
		t.Errorf("after the ranged miss: Cache-Status %q, want a hit of the whole entry", r.cacheStatus)
	}
	wantField(t, r, "Accept-Ranges", "bytes")
}

// TestRangeMissAnswers covers what a ranged miss answers besides a 206:
// 416, an ignored range, If-Range, HEAD, and a response the fill may not
// store (answered from its whole body all the same).
func TestRangeMissAnswers(t *testing.T) {
	cases := []struct {
		name   string
		cc     string
		method string
		kv     []string
		status int
		body   string
		cr     string
	}{
		{"single", "max-age=300", "GET", []string{"Range", "bytes=5-9"}, 206, rangeBody[5:10], "bytes 5-9/100"},
		{"not stored", "no-store", "GET", []string{"Range", "bytes=5-9"}, 206, rangeBody[5:10], "bytes 5-9/100"},
		{"unsatisfiable", "max-age=300", "GET", []string{"Range", "bytes=300-"}, 416, "", "bytes */100"},
		{"invalid", "max-age=300", "GET", []string{"Range", "bytes=x-"}, 200, rangeBody, ""},
		{"if-range mismatch", "max-age=300", "GET", []string{"Range", "bytes=0-1", "If-Range", `"other"`}, 200, rangeBody, ""},
		{"head", "max-age=300", "HEAD", []string{"Range", "bytes=0-1"}, 206, "", "bytes 0-1/100"},
	}
	o := testutil.NewOrigin(t)
	_, base := rangeGateway(t, o, true, nil)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "/ma" + strconv.Itoa(i)
			rangeOrigin(t, o, path, c.cc, time.Now().Add(-time.Hour))
			r := doWith(t, c.method, base+path, c.kv...)
			wantBody(t, r, c.status, c.body)
			if got := r.header.Get("Content-Range"); got != c.cr {
				t.Errorf("Content-Range %q, want %q", got, c.cr)
			}
			if !strings.HasPrefix(r.cacheStatus, "edgecache; fwd=uri-miss") {
				t.Errorf("Cache-Status %q, want a miss", r.cacheStatus)
			}
		})
	}
}

// TestRangeStaleRevalidates asks a range of an entry that must be
// revalidated on every use (no-cache): the revalidation is the normal
// conditional fill, without Range, and the range is answered from the
// revalidated body.
func TestRangeStaleRevalidates(t *testing.T) {
	o := testutil.NewOrigin(t)
	rangeOrigin(t, o, "/s", "no-cache", time.Now().Add(-time.Hour))
	_, base := rangeGateway(t, o, true, nil)
	wantBody(t, get(t, base+"/s"), http.StatusOK, rangeBody)
	r := doWith(t, "GET", base+"/s", "Range", "bytes=-10")
	wantBody(t, r, http.StatusPartialContent, rangeBody[90:])
	wantField(t, r, "Content-Range", "bytes 90-99/100")
	if !strings.Contains(r.cacheStatus, "fwd-status=304") {
		t.Errorf("Cache-Status %q, want a revalidation (fwd-status=304)", r.cacheStatus)
	}
	if n := o.Count("/s"); n != 2 {
		t.Fatalf("the origin got %d requests, want the fill and one revalidation", n)
	}
	if inm := o.Last("/s").Header.Get("If-None-Match"); inm != `"v1"` {
		t.Errorf("the revalidation sent If-None-Match %q, want \"v1\"", inm)
	}
}

// TestRangeVaryVariant asks a range of a Vary'd entry: the range is of
// the variant the request selects, never of another.
func TestRangeVaryVariant(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/v", func(w http.ResponseWriter, r *http.Request, _ int) {
		lang := r.Header.Get("Accept-Language")
		testutil.Reply(w, http.StatusOK, lang+":"+rangeBody, "Cache-Control", "max-age=300", "Vary", "Accept-Language")
	})
	_, base := rangeGateway(t, o, true, nil)
	for _, lang := range []string{"en", "fr"} {
		wantBody(t, doWith(t, "GET", base+"/v", "Accept-Language", lang), http.StatusOK, lang+":"+rangeBody)
	}
	for _, lang := range []string{"fr", "en"} {
		t.Run(lang, func(t *testing.T) {
			r := doWith(t, "GET", base+"/v", "Accept-Language", lang, "Range", "bytes=0-4")
			wantBody(t, r, http.StatusPartialContent, (lang + ":" + rangeBody)[:5])
			wantField(t, r, "Content-Range", "bytes 0-4/103")
			if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") {
				t.Errorf("Cache-Status %q, want a hit", r.cacheStatus)
			}
		})
	}
	if n := o.Count("/v"); n != 2 {
		t.Errorf("the origin got %d requests, want one per variant", n)
	}
}

// TestRangeTooLarge: a body too large to store is not buffered for a
// range; the request goes to the origin with its Range.
func TestRangeTooLarge(t *testing.T) {
	o := testutil.NewOrigin(t)
	big := bytes.Repeat([]byte("0123456789"), 100)
	o.Handle("/big", func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Cache-Control", "max-age=300")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(big))
	})
	_, base := rangeGateway(t, o, true, func(c *config.Config) { c.Routes[0].MaxBodyBytes = 100 })
	r := doWith(t, "GET", base+"/big", "Range", "bytes=10-14")
	wantBody(t, r, http.StatusPartialContent, "01234")
	wantField(t, r, "Content-Range", "bytes 10-14/1000")
	if got := o.Last("/big").Header.Get("Range"); got != "bytes=10-14" {
		t.Errorf("the origin's last request had Range %q, want it forwarded", got)
	}
}

// TestRangeStoredRepresentation: ranges are of the stored representation.
// A gzip entry's single range is of its coded bytes; several ranges of it
// are sent whole; a stored status other than 200 has no ranges.
func TestRangeStoredRepresentation(t *testing.T) {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = io.WriteString(zw, strings.Repeat(rangeBody, 5))
	_ = zw.Close()
	coded := zb.String()
	o := testutil.NewOrigin(t)
	o.Handle("/z", func(w http.ResponseWriter, r *http.Request, _ int) {
		testutil.Reply(w, http.StatusOK, coded, "Cache-Control", "max-age=300", "Content-Encoding", "gzip", "Vary", "Accept-Encoding")
	})
	o.Handle("/gone", func(w http.ResponseWriter, r *http.Request, _ int) {
		testutil.Reply(w, http.StatusNotFound, rangeBody, "Cache-Control", "max-age=300")
	})
	_, base := rangeGateway(t, o, true, nil)
	wantBody(t, doWith(t, "GET", base+"/z", "Accept-Encoding", "gzip"), http.StatusOK, coded)
	wantBody(t, get(t, base+"/gone"), http.StatusNotFound, rangeBody)
	cases := []struct {
		name, path, rng string
		status          int
		body, cr        string
	}{
		{"coded single", "/z", "bytes=0-9", http.StatusPartialContent, coded[:10], fmt.Sprintf("bytes 0-9/%d", len(coded))},
		{"coded several: whole", "/z", "bytes=0-1,5-6", http.StatusOK, coded, ""},
		{"404 whole", "/gone", "bytes=0-9", http.StatusNotFound, rangeBody, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := doWith(t, "GET", base+c.path, "Accept-Encoding", "gzip", "Range", c.rng)
			wantBody(t, r, c.status, c.body)
			if got := r.header.Get("Content-Range"); got != c.cr {
				t.Errorf("Content-Range %q, want %q", got, c.cr)
			}
			if !strings.HasPrefix(r.cacheStatus, "edgecache; hit") {
				t.Errorf("Cache-Status %q, want a hit", r.cacheStatus)
			}
		})
	}
}
