package entry

import (
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// FuzzDecode holds the envelope's promise: any bytes decode to an entry or
// to an error, never a panic; and an entry that decodes re-encodes to a
// value that decodes to the same entry (and to the same bytes again).
//
// Seeds are below and in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	valid := [][]byte{
		Encode(nil, sample()),
		Encode(nil, &Entry{Status: 200}),
		Encode(nil, &Entry{
			Status:       304,
			StoredAt:     t0,
			ETag:         `W/"1"`,
			Header:       http.Header{"A": {"1", "2"}, "B": {""}},
			Tags:         []string{"x", "", "y"},
			Body:         []byte("hello"),
			StaleIfError: time.Minute,
		}),
	}
	for _, v := range valid {
		f.Add(v)
		for _, n := range []int{0, 2, 3, HeaderSize - 1, HeaderSize, HeaderSize + 1, len(v) / 2, len(v) - 1} {
			if n <= len(v) {
				f.Add(v[:n])
			}
		}
		f.Add(append(append([]byte(nil), v...), 'x'))
	}
	f.Add([]byte("EC\x01"))
	f.Add([]byte("EC\x02garbage garbage garbage garbage garbage"))
	f.Add([]byte(`{"status":200}`))
	f.Add([]byte("\xff\xfe\xfd\xfc random bytes \x00\x01\x02\x80\x80\x80\x80\x80"))

	f.Fuzz(func(t *testing.T, b []byte) {
		orig := append([]byte(nil), b...)
		var e Entry
		err := Decode(b, &e)
		if !bytes.Equal(b, orig) {
			t.Fatal("Decode mutated its input")
		}
		m, perr := Peek(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Decode error %v is neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		if perr != nil {
			t.Fatalf("Decode succeeded, Peek failed: %v", perr)
		}
		if m != metaOf(&e) {
			t.Fatalf("Peek = %+v, Decode meta = %+v", m, metaOf(&e))
		}

		enc := Encode(nil, &e)
		if len(enc) != Size(&e) {
			t.Fatalf("len(Encode) = %d, Size = %d", len(enc), Size(&e))
		}
		var e2 Entry
		if err := Decode(enc, &e2); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", e, e2)
		}
		if enc2 := Encode(nil, &e2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not deterministic:\n%q\n%q", enc, enc2)
		}
	})
}
