package gateway

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/compress"
	"github.com/edgecache/edgecache/internal/entry"
)

// pendingEntry is what a fill stores for body with the default compress
// block: body as it came, every coding pending (compress, mark).
func pendingEntry(t testing.TB, body []byte) []byte {
	t.Helper()
	c := newCompression((&config.Config{Routes: []config.Route{{}}}).EnsureDefaults().Routes[0].Compress)
	h, _ := c.mark(http.Header{"Content-Type": {"application/json"}, "Etag": {`"e"`}, "Vary": {"Accept-Encoding, Origin"}}, body)
	e := entry.Entry{Status: 200, StoredAt: time.Now(), FreshUntil: time.Now().Add(time.Hour), Header: h, Body: body}
	return entry.Encode(nil, &e)
}

// apiBody is n bytes of a JSON list, compressible as an API's answers are.
func apiBody(n int) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; b.Len() < n-2; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"product %d","price":%d.%02d,"tags":["a%d","b"]},`, i, i*7, i%500, i%100, i%13)
	}
	return []byte(b.String()[:n-1] + "]")
}

// TestPendingCodings: an entry the fill stored uncompressed holds no
// coding until a request picks one; then each coding is made once, kept
// with the view, decodes to the body and carries its own ETag and Vary.
func TestPendingCodings(t *testing.T) {
	for _, n := range []int{600, 20000, EncodeInlineMax} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			body := apiBody(n)
			v := decodeView(pendingEntry(t, body))
			if v == nil || v.coded == nil {
				t.Fatal("not decoded as a compressed entry")
			}
			for _, cd := range v.coded.order {
				if !v.coded.pending[cd] || v.coded.ready[cd].Load() || v.coded.views[cd] != nil {
					t.Fatalf("%s made before any request picked it", cd)
				}
			}
			for _, ae := range []string{"br", "gzip", "zstd", ""} {
				r := v.represent([]string{ae})
				if ae == "" {
					r = v.represent(nil)
				}
				if ce := r.header.Get("Content-Encoding"); ce != ae {
					t.Fatalf("%q: Content-Encoding %q", ae, ce)
				}
				if again := v.represent([]string{ae}); ae != "" && again != r {
					t.Errorf("%q: a second request got another view: the coding was not kept", ae)
				}
				dec, err := compress.Decode(nil, codingOf(t, ae), r.body, 1<<20)
				if err != nil || string(dec) != string(body) {
					t.Errorf("%q: body does not decode to the original (%v)", ae, err)
				}
				if ae != "" && len(r.body) >= len(body) {
					t.Errorf("%q: %d bytes, not smaller than %d", ae, len(r.body), len(body))
				}
				if want := codedETag(`"e"`, codingOf(t, ae)); r.etag != want || r.header.Get("Etag") != want {
					t.Errorf("%q: ETag %q / %q, want %q", ae, r.etag, r.header.Get("Etag"), want)
				}
				if got := r.header.Get("Content-Length"); got != fmt.Sprint(len(r.body)) {
					t.Errorf("%q: Content-Length %s for %d bytes", ae, got, len(r.body))
				}
				if strings.Join(r.header.Values("Vary"), ", ") != "Origin, Accept-Encoding" || r.header.Get(hdrCodings) != "" {
					t.Errorf("%q: Vary %q, internal %q", ae, r.header.Values("Vary"), r.header.Get(hdrCodings))
				}
			}
		})
	}
}

// TestPendingCodingCoalesced: concurrent first requests for a coding
// get the one representation made for them all.
func TestPendingCodingCoalesced(t *testing.T) {
	v := decodeView(pendingEntry(t, apiBody(32<<10)))
	const n = 16
	got := make([]*view, n)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = v.represent([]string{"gzip, br"})
		}()
	}
	wg.Wait()
	for i, r := range got {
		if r != got[0] || r.header.Get("Content-Encoding") != "br" {
			t.Fatalf("request %d: %q, same view as the first %v", i, r.header.Get("Content-Encoding"), r == got[0])
		}
	}
}

// TestPendingCodingLarge: a body past EncodeInlineMax is served as
// identity while its coding is made in the background, then coded.
func TestPendingCodingLarge(t *testing.T) {
	body := apiBody(4 * EncodeInlineMax)
	v := decodeView(pendingEntry(t, body))
	first := v.represent([]string{"br"})
	if ce := first.header.Get("Content-Encoding"); ce != "" || string(first.body) != string(body) {
		t.Fatalf("first request: Content-Encoding %q; want identity while br is made", ce)
	}
	if !strings.Contains(strings.Join(first.header.Values("Vary"), ","), "Accept-Encoding") {
		t.Errorf("identity served for br lacks Vary: Accept-Encoding: %q", first.header.Values("Vary"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for v.represent([]string{"br"}).header.Get("Content-Encoding") != "br" {
		if time.Now().After(deadline) {
			t.Fatal("br was not made in the background within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	dec, err := compress.Decode(nil, compress.Brotli, v.represent([]string{"br"}).body, int64(len(body)))
	if err != nil || string(dec) != string(body) {
		t.Errorf("br body does not decode to the original (%v)", err)
	}
}

// TestPendingCodingNotSmaller: a body no coding makes smaller is served
// as identity, with the origin's tag, to every client.
func TestPendingCodingNotSmaller(t *testing.T) {
	body := make([]byte, 2048)
	_, _ = rand.Read(body)
	v := decodeView(pendingEntry(t, body))
	for _, ae := range []string{"br", "gzip", "zstd", "br, gzip"} {
		r := v.represent([]string{ae})
		if ce := r.header.Get("Content-Encoding"); ce != "" || r.etag != `"e"` || string(r.body) != string(body) {
			t.Errorf("%q: Content-Encoding %q, ETag %q, body equal %v", ae, ce, r.etag, string(r.body) == string(body))
		}
	}
}

// TestPendingCodingsRefused: fields that mix pending codings with an
// identity body that is not stored, or repeat a coding, are not ours.
func TestPendingCodingsRefused(t *testing.T) {
	for _, field := range [][]string{
		{"br + 0", "identity - 10"},
		{"br + 0", "br + 0", "identity 0 10"},
		{"br + 0", "br 0 1", "identity 0 10"},
		{"identity + 0"},
	} {
		e := entry.Entry{Status: 200, Header: http.Header{hdrCodings: field}, Body: []byte("0123456789")}
		if v := decodeView(entry.Encode(nil, &e)); v != nil {
			t.Errorf("%q: decoded", field)
		}
	}
}

// TestPendingRepresentAllocs: once made, a pending coding is picked
// without allocating, as a stored one is.
func TestPendingRepresentAllocs(t *testing.T) {
	v := decodeView(pendingEntry(t, apiBody(1024)))
	for _, ae := range [][]string{{"br, gzip"}, {"gzip;q=0.5, zstd"}, nil, {"identity"}, {"br", "gzip"}} {
		v.represent(ae)
		if a := testing.AllocsPerRun(100, func() { v.represent(ae) }); a != 0 {
			t.Errorf("%q: %.1f allocations", ae, a)
		}
	}
}

// TestMarkParses: the codings a fill builds for its clients (mark) are
// the ones a gateway reads back from the entry it stored (parseCodings),
// for the route's codings in any order and any header.
func TestMarkParses(t *testing.T) {
	body := apiBody(3000)
	headers := []http.Header{
		{"Content-Type": {"application/json"}, "Etag": {`"e"`}, "Vary": {"Accept-Encoding, Origin"}, "Content-Length": {"3000"}},
		{"Content-Type": {"text/html"}, "Vary": {"accept-encoding"}, "Cache-Control": {"max-age=60"}},
		{"Content-Type": {"text/css"}, "Etag": {`W/"weak"`}, "Vary": {"Origin", "Accept-Language"}},
		{"Content-Type": {"application/json"}},
	}
	for _, list := range [][]string{nil, {"gzip"}, {"zstd", "br"}, {"gzip", "gzip", "br"}} {
		cfg := (&config.Config{Routes: []config.Route{{Compress: config.Compress{Codings: list}}}}).EnsureDefaults().Routes[0].Compress
		c := newCompression(cfg)
		for i, h := range headers {
			stored, got := c.mark(h, body)
			want, err := parseCodings(stored, body)
			if err != nil {
				t.Fatalf("%v, header %d: the stored field does not parse: %v", list, i, err)
			}
			if !reflect.DeepEqual(got.have, want.have) || !reflect.DeepEqual(got.order, want.order) || got.pending != want.pending ||
				got.lazy != want.lazy || got.src != want.src || got.limit != want.limit || got.tag != want.tag {
				t.Errorf("%v, header %d: have %v order %v pending %v lazy %v tag %q; parsed %v %v %v %v %q",
					list, i, got.have, got.order, got.pending, got.lazy, got.tag, want.have, want.order, want.pending, want.lazy, want.tag)
			}
			if !reflect.DeepEqual(got.hdr, want.hdr) {
				t.Errorf("%v, header %d: base fields %v, parsed %v", list, i, got.hdr, want.hdr)
			}
			if !reflect.DeepEqual(got.reps, want.reps) {
				t.Errorf("%v, header %d: representations %v, parsed %v", list, i, got.reps, want.reps)
			}
			if h.Get(hdrCodings) != "" || stored.Get(hdrCodings) == "" {
				t.Errorf("%v, header %d: the origin's header was written, or the stored one lacks the field", list, i)
			}
		}
	}
}
