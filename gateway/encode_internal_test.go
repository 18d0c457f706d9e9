package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/compress"
	"github.com/edgecache/edgecache/internal/entry"
)

func TestCodedETag(t *testing.T) {
	tests := []struct {
		etag string
		cd   compress.Coding
		want string
	}{
		{`"abc"`, compress.Brotli, `"abc-br"`},
		{`W/"abc"`, compress.Gzip, `W/"abc-gzip"`},
		{`"abc"`, compress.Identity, `"abc"`},
		{``, compress.Zstd, ``},
		{`abc`, compress.Zstd, `abc-zstd`}, // not a valid tag: still distinct
		{`"`, compress.Gzip, `"-gzip`},     // not a valid tag either
	}
	for _, tt := range tests {
		t.Run(tt.etag+"/"+tt.cd.String(), func(t *testing.T) {
			if got := codedETag(tt.etag, tt.cd); got != tt.want {
				t.Errorf("codedETag(%q, %s) = %q, want %q", tt.etag, tt.cd, got, tt.want)
			}
		})
	}
}

// compressedEntry is what a fill stores for body with the default
// compress block.
func compressedEntry(t testing.TB, body []byte) []byte {
	t.Helper()
	c := newCompression((&config.Config{Routes: []config.Route{{}}}).EnsureDefaults().Routes[0].Compress)
	h, blob, ok := c.encode(http.Header{"Content-Type": {"application/json"}, "Etag": {`"e"`}, "Vary": {"Accept-Encoding, Origin"}}, body)
	if !ok {
		t.Fatal("not compressed")
	}
	e := entry.Entry{Status: 200, StoredAt: time.Now(), FreshUntil: time.Now().Add(time.Hour), Header: h, Body: blob}
	return entry.Encode(nil, &e)
}

func TestCompressedEntryDecode(t *testing.T) {
	small := []byte(`{"a":"` + string(make([]byte, 600)) + `"}`)
	large := []byte(`{"a":"` + string(make([]byte, 20000)) + `"}`)
	for name, body := range map[string][]byte{"small": small, "large": large} {
		t.Run(name, func(t *testing.T) {
			v := decodeView(compressedEntry(t, body))
			if v == nil || v.coded == nil {
				t.Fatal("not decoded as a compressed entry")
			}
			if got := v.coded.lazy; got != (len(body) >= compress.StoreIdentityBelow) {
				t.Errorf("lazy identity = %v for %d bytes", got, len(body))
			}
			for _, ae := range []string{"br", "gzip", "zstd", ""} {
				r := v.represent([]string{ae})
				if ae == "" {
					r = v.represent(nil)
				}
				ce := r.header.Get("Content-Encoding")
				if ce != ae {
					t.Errorf("%q: Content-Encoding %q", ae, ce)
				}
				dec, err := compress.Decode(nil, codingOf(t, ce), r.body, 1<<20)
				if err != nil || string(dec) != string(body) {
					t.Errorf("%q: body does not decode to the original (%v)", ae, err)
				}
				if strings.Join(r.header.Values("Vary"), ", ") != "Origin, Accept-Encoding" || r.header.Get(hdrCodings) != "" {
					t.Errorf("%q: Vary %q, internal %q", ae, r.header.Values("Vary"), r.header.Get(hdrCodings))
				}
			}
		})
	}
}

func codingOf(t testing.TB, ce string) compress.Coding {
	if ce == "" {
		return compress.Identity
	}
	c, ok := codingNamed(ce)
	if !ok {
		t.Fatalf("coding %q", ce)
	}
	return c
}

// TestCompressedEntryCorrupt: a value whose codings field does not
// describe its body is a miss (nil view), and a stored coding that does
// not decode gives identity clients a 502, never the coded bytes.
func TestCompressedEntryCorrupt(t *testing.T) {
	for _, field := range [][]string{
		{"br 0 999999", "identity - 10"},
		{"br x 1", "identity - 10"},
		{"br 0 1"},
		{"identity 0 1"},
		{"br 0 1", "br 0 1", "identity - 1"},
		{"deflate 0 1", "identity - 1"},
		{"br -1 1", "identity - 1"},
		{"br 0 1 2", "identity - 1"},
	} {
		e := entry.Entry{Status: 200, Header: http.Header{hdrCodings: field}, Body: []byte("0123456789")}
		if v := decodeView(entry.Encode(nil, &e)); v != nil {
			t.Errorf("%q: decoded", field)
		}
	}
	e := entry.Entry{Status: 200, Header: http.Header{hdrCodings: {"zstd 0 10", "identity - 100"}}, Body: []byte("not zstd!!")}
	v := decodeView(entry.Encode(nil, &e))
	if v == nil {
		t.Fatal("a well-formed field was refused")
	}
	if r := v.represent([]string{"gzip"}); r.status != http.StatusBadGateway || r.header.Get("Content-Encoding") != "" {
		t.Errorf("identity of a damaged coding: %d %v", r.status, r.header)
	}
	if r := v.represent([]string{"zstd"}); r.status != 200 || r.header.Get("Content-Encoding") != "zstd" {
		t.Errorf("zstd: %d %v", r.status, r.header)
	}
}

// TestRepresentAllocs: choosing a representation allocates nothing, for
// a coding and for a stored or decoded identity body (once decoded).
func TestRepresentAllocs(t *testing.T) {
	for _, n := range []int{600, 20000} {
		v := decodeView(compressedEntry(t, make([]byte, n)))
		for _, ae := range [][]string{{"br, gzip"}, {"gzip;q=0.5, zstd"}, nil, {"identity"}} {
			v.represent(ae)
			if a := testing.AllocsPerRun(100, func() { v.represent(ae) }); a != 0 {
				t.Errorf("%d bytes, %q: %.1f allocations", n, ae, a)
			}
		}
	}
}

// BenchmarkRepresent is what a compressed hit adds to a plain one.
func BenchmarkRepresent(b *testing.B) {
	v := decodeView(compressedEntry(b, make([]byte, 1024)))
	for _, ae := range []string{"br, gzip", "gzip, deflate, br, zstd", "identity"} {
		b.Run(ae, func(b *testing.B) {
			vals := []string{ae}
			b.ReportAllocs()
			for b.Loop() {
				_ = v.represent(vals)
			}
		})
	}
}
