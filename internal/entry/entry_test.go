package entry

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// sample is a typical stored response: ~6 headers and a 1 KiB body.
func sample() *Entry {
	return &Entry{
		Status:               200,
		StoredAt:             t0,
		FreshUntil:           t0.Add(time.Hour),
		InitialAge:           3 * time.Second,
		StaleWhileRevalidate: 30 * time.Second,
		StaleIfError:         24 * time.Hour,
		ETag:                 `"abc123"`,
		LastModified:         "Fri, 14 Mar 2025 12:00:00 GMT",
		Header: http.Header{
			"Content-Type":  {"application/json"},
			"Cache-Control": {"public, max-age=3600"},
			"Etag":          {`"abc123"`},
			"Last-Modified": {"Fri, 14 Mar 2025 12:00:00 GMT"},
			"Date":          {"Fri, 14 Mar 2025 15:09:23 GMT"},
			"Vary":          {"Accept-Encoding", "Accept-Language"},
		},
		Tags: []string{"product:42", "catalog"},
		Body: bytes.Repeat([]byte("0123456789abcdef"), 64),
	}
}

// normal is what Decode(Encode(e)) must equal: the precision and the
// empty forms the envelope keeps.
func normal(e *Entry) *Entry {
	n := *e
	n.StoredAt = milliToTime(timeToMilli(e.StoredAt))
	n.FreshUntil = milliToTime(timeToMilli(e.FreshUntil))
	n.InitialAge = time.Duration(durToSeconds(e.InitialAge)) * time.Second
	n.StaleWhileRevalidate = time.Duration(durToSeconds(e.StaleWhileRevalidate)) * time.Second
	n.StaleIfError = time.Duration(durToSeconds(e.StaleIfError)) * time.Second
	n.Header = nil
	for k, vs := range e.Header {
		if len(vs) == 0 {
			continue
		}
		if n.Header == nil {
			n.Header = http.Header{}
		}
		n.Header[k] = vs
	}
	if len(e.Tags) == 0 {
		n.Tags = nil
	}
	if len(e.Body) == 0 {
		n.Body = nil
	}
	return &n
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    *Entry
	}{
		{"typical", sample()},
		{"zero", &Entry{Status: 200}},
		{"empty-non-nil", &Entry{Status: 204, Header: http.Header{}, Tags: []string{}, Body: []byte{}}},
		{"name-without-values", &Entry{Status: 200, Header: http.Header{"X-Empty": {}, "X-One": {"1"}}}},
		{"empty-values", &Entry{Status: 200, Header: http.Header{"X-A": {"", ""}}, Tags: []string{""}}},
		{"sub-ms-and-sub-second", &Entry{
			Status:               404,
			StoredAt:             t0.Add(123456 * time.Nanosecond),
			FreshUntil:           t0.Add(999 * time.Microsecond),
			InitialAge:           1500 * time.Millisecond,
			StaleWhileRevalidate: 999 * time.Millisecond,
		}},
		{"other-zone", &Entry{Status: 301, StoredAt: t0.In(time.FixedZone("X", 3600))}},
		{"negative-durations", &Entry{Status: 200, InitialAge: -time.Second, StaleIfError: -time.Hour}},
		{"huge-durations", &Entry{Status: 200, StaleIfError: math.MaxInt64}},
		{"before-epoch", &Entry{Status: 200, StoredAt: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"after-9999", &Entry{Status: 200, FreshUntil: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"status-bounds", &Entry{Status: 999}},
		{"many-values", &Entry{Status: 200, Header: http.Header{"Link": {"a", "b", "c", "d"}, "A": {"1"}, "Z": {"2", "3"}}}},
		{"many-headers", &Entry{Status: 200, Header: manyHeaders(100)}},
		{"long-strings", &Entry{Status: 200, ETag: strings.Repeat("e", 300), Tags: []string{strings.Repeat("t", 20000)}, Body: make([]byte, 1<<17)}},
		{"binary-body", &Entry{Status: 200, Body: []byte{0, 0xff, '\r', '\n', 'E', 'C'}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Encode(nil, tt.e)
			if got, want := len(b), Size(tt.e); got != want {
				t.Errorf("len(Encode) = %d, Size = %d", got, want)
			}
			var got Entry
			if err := Decode(b, &got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if want := normal(tt.e); !reflect.DeepEqual(&got, want) {
				t.Errorf("Decode(Encode(e)):\n got %+v\nwant %+v", got, *want)
			}
			// Deterministic: the decoded entry encodes to the same bytes.
			if b2 := Encode(nil, &got); !bytes.Equal(b, b2) {
				t.Errorf("re-encoding differs:\n%q\n%q", b, b2)
			}
			m, err := Peek(b)
			if err != nil {
				t.Fatalf("Peek: %v", err)
			}
			if want := metaOf(&got); m != want {
				t.Errorf("Peek = %+v, Decode gives %+v", m, want)
			}
		})
	}
}

func manyHeaders(n int) http.Header {
	h := make(http.Header, n)
	for i := range n {
		h["X-H"+strings.Repeat("x", i)] = []string{strings.Repeat("v", i)}
	}
	return h
}

func metaOf(e *Entry) Meta {
	return Meta{
		Status:               e.Status,
		StoredAt:             timeToMilli(e.StoredAt),
		FreshUntil:           timeToMilli(e.FreshUntil),
		InitialAge:           e.InitialAge,
		StaleWhileRevalidate: e.StaleWhileRevalidate,
		StaleIfError:         e.StaleIfError,
	}
}

func TestZeroTimeRoundTrip(t *testing.T) {
	var got Entry
	if err := Decode(Encode(nil, &Entry{Status: 200}), &got); err != nil {
		t.Fatal(err)
	}
	if !got.StoredAt.IsZero() || !got.FreshUntil.IsZero() || got.StoredAt != (time.Time{}) {
		t.Errorf("zero times decoded as %v, %v", got.StoredAt, got.FreshUntil)
	}
}

func TestEncodeAppends(t *testing.T) {
	prefix := []byte("prefix")
	b := Encode(append([]byte(nil), prefix...), sample())
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("Encode lost dst's bytes")
	}
	var e Entry
	if err := Decode(b[len(prefix):], &e); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeBodyAliasesInput(t *testing.T) {
	b := Encode(nil, sample())
	var e Entry
	if err := Decode(b, &e); err != nil {
		t.Fatal(err)
	}
	if &e.Body[0] != &b[len(b)-len(e.Body)] {
		t.Error("Body does not alias the input")
	}
	if cap(e.Body) != len(e.Body) {
		t.Errorf("cap(Body) = %d, want %d: appending would write into the input", cap(e.Body), len(e.Body))
	}
	// The strings are copies: mutating the input (which callers must not
	// do) would not change them.
	etag := e.ETag
	for i := HeaderSize; i < len(b)-len(e.Body); i++ {
		b[i] = 'X'
	}
	if e.ETag != etag || e.Header.Get("Content-Type") != "application/json" {
		t.Error("strings alias the input")
	}
}

func TestDecodeReplacesEntry(t *testing.T) {
	e := *sample()
	if err := Decode(Encode(nil, &Entry{Status: 204}), &e); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, Entry{Status: 204}) {
		t.Errorf("Decode left fields behind: %+v", e)
	}
}

func TestDecodeMergesSplitNames(t *testing.T) {
	// A foreign encoder may split a name's values; Decode joins them in
	// order and re-encoding groups them.
	var b []byte
	b = append(b, Encode(nil, &Entry{Status: 200})[:HeaderSize]...)
	b = appendStr(b, "")
	b = appendStr(b, "")
	b = binary.AppendUvarint(b, 5)
	for _, kv := range [][2]string{{"B", "1"}, {"A", "x"}, {"B", "2"}, {"B", "3"}, {"A", "y"}} {
		b = appendStr(appendStr(b, kv[0]), kv[1])
	}
	b = binary.AppendUvarint(b, 0)
	b = binary.AppendUvarint(b, 0)
	var e Entry
	if err := Decode(b, &e); err != nil {
		t.Fatal(err)
	}
	want := http.Header{"A": {"x", "y"}, "B": {"1", "2", "3"}}
	if !reflect.DeepEqual(e.Header, want) {
		t.Errorf("Header = %v, want %v", e.Header, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := Encode(nil, sample())
	with := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), valid...))
	}
	// minimal builds an envelope field by field after a valid header.
	minimal := func(rest ...[]byte) []byte {
		b := append([]byte(nil), valid[:HeaderSize]...)
		for _, r := range rest {
			b = append(b, r...)
		}
		return b
	}
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	str := func(s string) []byte { return appendStr(nil, s) }

	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"nil", nil, ErrCorrupt},
		{"foreign", []byte(`{"status":200,"body":"hello, this is json, not an entry"}`), ErrCorrupt},
		{"magic-only", []byte("EC"), ErrCorrupt},
		{"version-2", with(func(b []byte) []byte { b[offVersion] = 2; return b }), ErrVersion},
		{"version-0-short", []byte("EC\x00"), ErrVersion},
		{"status-0", with(func(b []byte) []byte { b[offStatus], b[offStatus+1] = 0, 0; return b }), ErrCorrupt},
		{"status-99", with(func(b []byte) []byte { b[offStatus], b[offStatus+1] = 0, 99; return b }), ErrCorrupt},
		{"status-1000", with(func(b []byte) []byte { binary.BigEndian.PutUint16(b[offStatus:], 1000); return b }), ErrCorrupt},
		{"stored-at-negative", with(func(b []byte) []byte { b[offStoredAt] = 0x80; return b }), ErrCorrupt},
		{"fresh-until-far", with(func(b []byte) []byte { b[offFreshUntil+1] = 0x7f; return b }), ErrCorrupt},
		{"trailing-garbage", append(append([]byte(nil), valid...), 0), ErrCorrupt},
		{"truncated-body", valid[:len(valid)-1], ErrCorrupt},
		{"etag-beyond", minimal(uv(1000)), ErrCorrupt},
		{"bad-varint", minimal([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), ErrCorrupt},
		{"huge-header-count", minimal(str(""), str(""), uv(1<<40), make([]byte, 64)), ErrCorrupt},
		{"max-header-count", minimal(str(""), str(""), uv(math.MaxUint64), str(""), str("")), ErrCorrupt},
		{"huge-tag-count", minimal(str(""), str(""), uv(0), uv(1<<62), make([]byte, 8)), ErrCorrupt},
		{"huge-body", minimal(str(""), str(""), uv(0), uv(0), uv(math.MaxUint64)), ErrCorrupt},
		{"empty-name", minimal(str(""), str(""), uv(1), str(""), str("v"), uv(0), uv(0)), ErrCorrupt},
		{"space-in-name", minimal(str(""), str(""), uv(1), str("X Y"), str("v"), uv(0), uv(0)), ErrCorrupt},
		{"colon-in-name", minimal(str(""), str(""), uv(1), str("X:"), str("v"), uv(0), uv(0)), ErrCorrupt},
		{"crlf-in-value", minimal(str(""), str(""), uv(1), str("X"), str("a\r\nSet-Cookie: x"), uv(0), uv(0)), ErrCorrupt},
		{"nul-in-value", minimal(str(""), str(""), uv(1), str("X"), str("a\x00"), uv(0), uv(0)), ErrCorrupt},
		{"missing-body", minimal(str(""), str(""), uv(0), uv(0)), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Entry{Status: 1, ETag: "keep"}
			err := Decode(tt.b, &e)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
			if e.Status != 1 || e.ETag != "keep" {
				t.Errorf("Decode changed e on error: %+v", e)
			}
			if !strings.HasPrefix(err.Error(), "entry: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	// The minimal valid value, to show the cases above differ from it only
	// where they say.
	if err := Decode(minimal(str(""), str(""), uv(0), uv(0), uv(0)), new(Entry)); err != nil {
		t.Errorf("minimal envelope: %v", err)
	}
}

func TestDecodeEveryTruncation(t *testing.T) {
	valid := Encode(nil, sample())
	for i := range len(valid) {
		if err := Decode(valid[:i], new(Entry)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode(valid[:%d]) = %v, want ErrCorrupt", i, err)
		}
	}
}

func TestPeekMatchesDecode(t *testing.T) {
	b := Encode(nil, sample())
	m, err := Peek(b)
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := Decode(b, &e); err != nil {
		t.Fatal(err)
	}
	want := Meta{
		Status:               200,
		StoredAt:             t0.UnixMilli(),
		FreshUntil:           t0.Add(time.Hour).UnixMilli(),
		InitialAge:           3 * time.Second,
		StaleWhileRevalidate: 30 * time.Second,
		StaleIfError:         24 * time.Hour,
	}
	if m != want || metaOf(&e) != want {
		t.Errorf("Peek = %+v, Decode meta = %+v, want %+v", m, metaOf(&e), want)
	}
}

func TestAllocs(t *testing.T) {
	e := sample()
	b := Encode(nil, e)
	buf := make([]byte, 0, len(b))
	if n := testing.AllocsPerRun(100, func() { buf = Encode(buf[:0], e) }); n != 0 {
		t.Errorf("Encode into a reused buffer: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Peek(b) }); n != 0 {
		t.Errorf("Peek: %v allocs, want 0", n)
	}
	var d Entry
	// The string copy, the map, the values and the tags (the map may take
	// a couple more for its groups).
	if n := testing.AllocsPerRun(100, func() { _ = Decode(b, &d) }); n > 6 {
		t.Errorf("Decode: %v allocs, want at most 6", n)
	}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name     string
		dst, src http.Header
		want     http.Header
	}{
		{
			name: "hop-by-hop",
			src: http.Header{
				"Connection":                {"keep-alive"},
				"Keep-Alive":                {"timeout=5"},
				"Proxy-Connection":          {"keep-alive"},
				"Proxy-Authenticate":        {"Basic"},
				"Proxy-Authentication-Info": {"x"},
				"Proxy-Authorization":       {"Basic xyz"},
				"Te":                        {"trailers"},
				"Trailer":                   {"X-Checksum"},
				"Transfer-Encoding":         {"chunked"},
				"Upgrade":                   {"h2c"},
				"Content-Type":              {"text/plain"},
			},
			want: http.Header{"Content-Type": {"text/plain"}},
		},
		{
			name: "named-in-connection",
			src: http.Header{
				"Connection": {"close, X-Internal", " x-other "},
				"X-Internal": {"1"},
				"X-Other":    {"2"},
				"X-Kept":     {"3"},
			},
			want: http.Header{"X-Kept": {"3"}},
		},
		{
			name: "cookies-age-length",
			src: http.Header{
				"Set-Cookie":     {"a=1", "b=2"},
				"Set-Cookie2":    {"c=3"},
				"Age":            {"10"},
				"Content-Length": {"42"},
				"Date":           {"Fri, 14 Mar 2025 15:09:23 GMT"},
				"Etag":           {`"x"`},
				"Last-Modified":  {"Fri, 14 Mar 2025 12:00:00 GMT"},
				"Cache-Control":  {"public, max-age=60"},
				"Vary":           {"Accept-Encoding", "Origin"},
			},
			want: http.Header{
				"Date":          {"Fri, 14 Mar 2025 15:09:23 GMT"},
				"Etag":          {`"x"`},
				"Last-Modified": {"Fri, 14 Mar 2025 12:00:00 GMT"},
				"Cache-Control": {"public, max-age=60"},
				"Vary":          {"Accept-Encoding", "Origin"},
			},
		},
		{
			name: "non-canonical-names",
			src:  http.Header{"content-type": {"a"}, "set-cookie": {"x"}, "x-foo": {"b"}, "TRANSFER-ENCODING": {"chunked"}},
			want: http.Header{"Content-Type": {"a"}, "X-Foo": {"b"}},
		},
		{
			name: "merge-into-dst",
			dst:  http.Header{"X-A": {"0"}, "X-B": {"kept"}},
			src:  http.Header{"X-A": {"1", "2"}, "x-a": {"3"}},
			want: http.Header{"X-A": {"0", "1", "2", "3"}, "X-B": {"kept"}},
		},
		{
			name: "empty",
			src:  http.Header{"X-None": {}, "Age": {"1"}},
			want: http.Header{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := tt.dst
			if dst == nil {
				dst = http.Header{}
			}
			Filter(dst, tt.src)
			if tt.name == "merge-into-dst" {
				// The order of x-a and X-A in src is the map's: compare
				// as a set.
				got := dst["X-A"]
				if len(got) != 4 || got[0] != "0" {
					t.Fatalf("X-A = %v", got)
				}
				dst["X-A"] = []string{"0", "1", "2", "3"}
			}
			if !reflect.DeepEqual(dst, tt.want) {
				t.Errorf("Filter:\n got %v\nwant %v", dst, tt.want)
			}
		})
	}
}

func TestFilterCopiesValues(t *testing.T) {
	src := http.Header{"X-A": {"1", "2"}}
	dst := http.Header{}
	Filter(dst, src)
	src["X-A"][0] = "changed"
	if dst["X-A"][0] != "1" {
		t.Error("dst shares src's values")
	}
	dst["X-A"] = append(dst["X-A"], "3")
	if len(src["X-A"]) != 2 {
		t.Error("appending to dst changed src")
	}
}
