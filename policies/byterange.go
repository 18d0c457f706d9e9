package policies

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strconv"
)

// MaxRanges is the most ranges a Range field may ask for before it is
// ignored and the whole representation sent (RFC 9110 §14.2 lets a server
// ignore a field with many small or overlapping ranges; a multipart reply
// to hundreds of ranges is an amplification tool).
const MaxRanges = 64

// ByteRange is a satisfiable byte range: Length bytes from Start.
type ByteRange struct {
	Start, Length int64
}

// RangeResult is what ParseRange decided.
type RangeResult uint8

const (
	// RangeIgnore: no Range, or one to ignore (invalid syntax, another
	// unit, too many ranges, ranges that add up to more than the
	// representation, an empty representation): send 200 with the whole
	// representation.
	RangeIgnore RangeResult = iota
	// RangeSatisfiable: send 206 with the ranges returned (one: a single
	// part with Content-Range; several: multipart/byteranges).
	RangeSatisfiable
	// RangeUnsatisfiable: send 416 with Content-Range: bytes */size
	// (AppendUnsatisfiedRange).
	RangeUnsatisfiable
)

// ParseRange parses a Range field (RFC 9110 §14.2) as http.Header holds
// its lines, against a representation of size bytes, appending the
// satisfiable ranges to dst. With a dst of capacity 1 (a stack array) a
// single range costs no allocation.
//
// It follows net/http's ServeContent (fs.go parseRange) so that a hit
// answers as a file server would: ranges are "bytes=" then a comma list
// with optional whitespace around members and around "-"; empty members
// are skipped; "N-M" past the end is cut at the end; "N-" runs to the
// end; "-N" is the last N bytes (all of them when N >= size); a range
// starting at or past the end is unsatisfiable, and only when every range
// is does the whole field answer 416; when the ranges together ask for
// more bytes than size (overlaps), the field is ignored. It differs where
// RFC 9110 asks: a syntactically invalid field, or a unit other than
// bytes (case-insensitive), is ignored (200), not answered 416 (§14.2: a
// server MAY ignore it; ignoring is what a cache in front of a server
// that ignores it must do); "-0" is unsatisfiable (§14.1.3: a suffix
// range needs a non-zero length); a field on more than one line is
// invalid; more than MaxRanges ranges are ignored; a zero-length
// representation ignores Range.
func ParseRange(dst []ByteRange, values []string, size int64) ([]ByteRange, RangeResult) {
	n := len(dst)
	if len(values) != 1 || size <= 0 {
		return dst, RangeIgnore
	}
	s := values[0]
	const unit = "bytes="
	if len(s) < len(unit) || !asciiEqualFold(s[:len(unit)], unit) {
		return dst, RangeIgnore
	}
	s = s[len(unit):]
	unsatisfiable := false
	var total int64
	count := 0
	for s != "" || count == 0 {
		var ra string
		ra, s = cutComma(s)
		ra = textproto.TrimString(ra)
		if ra == "" {
			if s == "" {
				break
			}
			continue
		}
		count++
		if count > MaxRanges {
			return dst[:n], RangeIgnore
		}
		r, res := parseOneRange(ra, size)
		switch res {
		case RangeIgnore:
			return dst[:n], RangeIgnore
		case RangeUnsatisfiable:
			unsatisfiable = true
			continue
		}
		total += r.Length
		dst = append(dst, r)
	}
	switch {
	case len(dst) > n && total > size:
		return dst[:n], RangeIgnore // overlapping ranges: send it whole, as ServeContent does
	case len(dst) > n:
		return dst, RangeSatisfiable
	case unsatisfiable:
		return dst, RangeUnsatisfiable
	}
	return dst, RangeIgnore // "bytes=" or "bytes= , ": no range at all
}

func cutComma(s string) (before, after string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func parseOneRange(ra string, size int64) (ByteRange, RangeResult) {
	i := 0
	for i < len(ra) && ra[i] != '-' {
		i++
	}
	if i == len(ra) {
		return ByteRange{}, RangeIgnore
	}
	start, end := textproto.TrimString(ra[:i]), textproto.TrimString(ra[i+1:])
	if start == "" {
		n, ok := parseRangeInt(end)
		switch {
		case !ok:
			return ByteRange{}, RangeIgnore
		case n == 0:
			return ByteRange{}, RangeUnsatisfiable
		}
		n = min(n, size)
		return ByteRange{Start: size - n, Length: n}, RangeSatisfiable
	}
	first, ok := parseRangeInt(start)
	if !ok {
		return ByteRange{}, RangeIgnore
	}
	last := size - 1
	if end != "" {
		if last, ok = parseRangeInt(end); !ok || last < first {
			return ByteRange{}, RangeIgnore
		}
	}
	if first >= size {
		return ByteRange{}, RangeUnsatisfiable
	}
	last = min(last, size-1)
	return ByteRange{Start: first, Length: last - first + 1}, RangeSatisfiable
}

// parseRangeInt parses 1*DIGIT into a non-negative int64.
func parseRangeInt(s string) (int64, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false // no sign, no empty
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// AppendContentRange appends a Content-Range value for r of a
// representation of size bytes ("bytes 0-99/1000"). It does not allocate
// when dst has room.
func AppendContentRange(dst []byte, r ByteRange, size int64) []byte {
	dst = append(dst, "bytes "...)
	dst = strconv.AppendInt(dst, r.Start, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, r.Start+r.Length-1, 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, size, 10)
}

// AppendUnsatisfiedRange appends the Content-Range value of a 416
// ("bytes */1000", RFC 9110 §14.4).
func AppendUnsatisfiedRange(dst []byte, size int64) []byte {
	dst = append(dst, "bytes */"...)
	return strconv.AppendInt(dst, size, 10)
}

// Multipart is a multipart/byteranges body (RFC 9110 §14.6) laid out for
// a set of ranges, as ServeContent writes it: each part has Content-Type
// (when known) and Content-Range, parts are separated by a boundary.
type Multipart struct {
	// ContentType is the response's Content-Type:
	// "multipart/byteranges; boundary=...".
	ContentType string
	// Length is the body's exact length, for Content-Length.
	Length int64

	boundary  string
	ranges    []ByteRange
	partType  string
	totalSize int64
}

// NewMultipart lays out the multipart body for ranges of a representation
// of size bytes whose own Content-Type is contentType ("" for none). The
// boundary is random (mime/multipart's), so that no body can contain it by
// design.
func NewMultipart(ranges []ByteRange, contentType string, size int64) *Multipart {
	m := &Multipart{ranges: ranges, partType: contentType, totalSize: size}
	var c countWriter
	mw := multipart.NewWriter(&c)
	m.boundary = mw.Boundary()
	for _, r := range ranges {
		_, _ = mw.CreatePart(m.partHeader(r)) // countWriter never fails
		c += countWriter(r.Length)
	}
	_ = mw.Close()
	m.Length = int64(c)
	m.ContentType = "multipart/byteranges; boundary=" + m.boundary
	return m
}

// WriteTo writes the body, taking each part from body (the whole
// representation, of the size given to NewMultipart).
func (m *Multipart) WriteTo(w io.Writer, body []byte) (int64, error) {
	if int64(len(body)) != m.totalSize {
		return 0, fmt.Errorf("policies: multipart body is %d bytes, laid out for %d", len(body), m.totalSize)
	}
	c := &countingWriter{w: w}
	mw := multipart.NewWriter(c)
	if err := mw.SetBoundary(m.boundary); err != nil {
		return 0, fmt.Errorf("policies: multipart boundary: %w", err)
	}
	for _, r := range m.ranges {
		part, err := mw.CreatePart(m.partHeader(r))
		if err != nil {
			return c.n, fmt.Errorf("policies: multipart part: %w", err)
		}
		if _, err := part.Write(body[r.Start : r.Start+r.Length]); err != nil {
			return c.n, fmt.Errorf("policies: multipart part: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return c.n, fmt.Errorf("policies: multipart close: %w", err)
	}
	return c.n, nil
}

func (m *Multipart) partHeader(r ByteRange) textproto.MIMEHeader {
	h := textproto.MIMEHeader{"Content-Range": {string(AppendContentRange(nil, r, m.totalSize))}}
	if m.partType != "" {
		h["Content-Type"] = []string{m.partType}
	}
	return h
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
