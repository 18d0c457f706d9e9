package h2

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestHeadEncoding: the literal head encoder's output decodes, with an
// HPACK decoder, to the fields it was given: static-table statuses and
// others, names from the static table and new ones, canonical or not,
// values past the one-byte length (127) and the 4-bit index prefix (15).
func TestHeadEncoding(t *testing.T) {
	long := strings.Repeat("v", 300)
	type field struct{ name, value string }
	var b []byte
	var want []field
	for _, code := range []int{200, 204, 206, 304, 400, 404, 500, 103, 418, 599} {
		b = appendStatus(b, code)
		want = append(want, field{":status", statusText(code)})
	}
	for _, k := range []string{"Cache-Control", "Age", "Www-Authenticate", "X-Request-Id", "X-Custom-Thing", "etag", "x-lower", "Cache-Status"} {
		lk, idx, skip := headerName(k)
		if skip {
			t.Fatalf("%s skipped", k)
		}
		if lk != strings.ToLower(k) {
			t.Fatalf("%s: name %q", k, lk)
		}
		for _, v := range []string{"", "x", long} {
			b = appendLiteral(b, idx, lk, v)
			want = append(want, field{lk, v})
		}
	}
	if _, idx, _ := headerName("etag"); idx != 34 {
		t.Fatalf("etag, not canonical: static index %d, want 34", idx)
	}
	if _, idx, _ := headerName("Www-Authenticate"); idx != 61 {
		t.Fatalf("www-authenticate: static index %d, want 61", idx)
	}
	for _, k := range []string{"Connection", "Transfer-Encoding", "upgrade"} {
		if _, _, skip := headerName(k); !skip {
			t.Fatalf("%s not skipped", k)
		}
	}
	var got []field
	d := hpack.NewDecoder(4096, func(f hpack.HeaderField) { got = append(got, field{f.Name, f.Value}) })
	if _, err := d.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d fields decoded, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("field %d: %q, want %q", i, got[i], want[i])
		}
	}
	for _, i := range []uint64{0, 14, 15, 16, 126, 127, 128, 300, 1 << 20} {
		enc := appendInt(nil, 4, 0, i)
		if i < 15 && len(enc) != 1 {
			t.Fatalf("%d: %d bytes", i, len(enc))
		}
	}
}

// TestHeadTableSizeUpdate: a client that lowers SETTINGS_HEADER_TABLE_SIZE
// gets the size update at the start of the next response head (RFC 7541
// 4.2; nghttp2's decoder refuses a head without it), and only there.
func TestHeadTableSizeUpdate(t *testing.T) {
	p := newPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("ok"))
	}), nil)
	r := dialRaw(t, p)
	if err := r.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	// Raw blocks: read the HEADERS frames without decoding them.
	r.fr.ReadMetaHeaders = nil
	var blocks [][]byte
	for id := uint32(1); id <= 5; id += 2 {
		if err := r.headers(id, "/", true); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for got := false; !got && time.Now().Before(deadline); {
			_ = r.conn.SetReadDeadline(deadline)
			f, err := r.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == id {
				blocks = append(blocks, append([]byte(nil), h.HeaderBlockFragment()...))
				got = true
			}
		}
	}
	if len(blocks) != 3 {
		t.Fatalf("%d response heads, want 3", len(blocks))
	}
	// The first head after the SETTINGS starts with "size update to 0"
	// (001 00000); the ones after it do not.
	if blocks[0][0] != 0x20 {
		t.Fatalf("first head starts with %#x, want the size update 0x20", blocks[0][0])
	}
	for i, b := range blocks[1:] {
		if b[0]&0xe0 == 0x20 {
			t.Fatalf("head %d starts with another size update %#x", i+2, b[0])
		}
	}
	d := hpack.NewDecoder(4096, nil)
	for i, b := range blocks {
		fields, err := d.DecodeFull(b)
		if err != nil {
			t.Fatalf("head %d: %v", i+1, err)
		}
		if fields[0].Name != ":status" || fields[0].Value != "200" {
			t.Fatalf("head %d: %v", i+1, fields)
		}
	}
}
