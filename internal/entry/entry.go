package entry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"
)

// Version is the envelope format this package writes and reads.
const Version = 1

// The fixed-width header.
const (
	magic0 = 'E'
	magic1 = 'C'

	offVersion    = 2
	offStatus     = 3
	offStoredAt   = 5
	offFreshUntil = FreshUntilOffset
	offInitialAge = 21
	offSWR        = 25
	offSIE        = 29

	// FreshUntilOffset is where an envelope keeps its fresh-until (unix
	// ms, big-endian, 8 bytes): a soft purge overwrites those bytes in
	// place, on the shard, without decoding the value.
	FreshUntilOffset = 13

	// HeaderSize is the length of the fixed-width header that Peek reads;
	// every valid value is longer.
	HeaderSize = 33

	// minSize is HeaderSize plus one byte for each of the five lengths
	// and counts that follow it.
	minSize = HeaderSize + 5
)

// maxUnixMilli is 9999-12-31T23:59:59.999Z, the last instant stored.
const maxUnixMilli = 253402300799999

// MaxTime is the last instant an envelope can hold (9999-12-31T23:59:59.999Z):
// "never" for a fresh-until.
var MaxTime = time.UnixMilli(maxUnixMilli).UTC()

var (
	// ErrCorrupt is returned (wrapped with the detail) for a value that is
	// not a valid envelope: foreign, truncated or damaged.
	ErrCorrupt = errors.New("entry: corrupt value")
	// ErrVersion is returned (wrapped with the version found) for an
	// envelope of a format version this package does not read.
	ErrVersion = errors.New("entry: unsupported version")
)

// Entry is one cached response.
type Entry struct {
	Status int // 100..999
	// StoredAt and FreshUntil are kept at millisecond precision, between
	// 1970 and 9999; the zero Time is kept as the zero Time. Decode
	// returns them in UTC.
	StoredAt   time.Time
	FreshUntil time.Time
	// InitialAge is the response's age when stored (its Age header plus
	// transit). It and the stale windows are kept in whole seconds
	// (truncated), from 0 to math.MaxUint32 seconds (clamped).
	InitialAge           time.Duration
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	ETag                 string
	LastModified         string
	// Header is stored as given (see Filter); names with no value are
	// dropped. Decode returns nil for an entry with no header.
	Header http.Header
	// Tags are the surrogate keys; Decode returns nil for none.
	Tags []string
	// Body is a view of the decoded value (see Decode); nil when empty.
	Body []byte
}

// Meta is the fixed-width header of an envelope, read by Peek.
type Meta struct {
	Status               int
	StoredAt             int64 // unix ms, 0 for the zero time
	FreshUntil           int64 // unix ms, 0 for the zero time
	InitialAge           time.Duration
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
}

// Size returns the exact length of e's encoding.
func Size(e *Entry) int {
	n := HeaderSize + strSize(e.ETag) + strSize(e.LastModified)
	pairs := 0
	for k, vs := range e.Header {
		for _, v := range vs {
			n += strSize(k) + strSize(v)
		}
		pairs += len(vs)
	}
	n += uvarintSize(uint64(pairs))
	n += uvarintSize(uint64(len(e.Tags)))
	for _, t := range e.Tags {
		n += strSize(t)
	}
	return n + uvarintSize(uint64(len(e.Body))) + len(e.Body)
}

// Encode appends the encoding of e to dst and returns the extended buffer.
// It grows dst at most once, and allocates nothing when dst has Size(e)
// bytes of spare capacity and e.Header at most 32 names. It does not validate e: an Entry that Decode would
// reject (a status outside 100..999, a header name that is not a token)
// encodes into a value that fails to decode, which the gateway treats as
// a miss.
func Encode(dst []byte, e *Entry) []byte {
	dst = slices.Grow(dst, Size(e))
	dst = append(dst, magic0, magic1, Version)
	dst = binary.BigEndian.AppendUint16(dst, uint16(min(max(e.Status, 0), math.MaxUint16)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(timeToMilli(e.StoredAt)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(timeToMilli(e.FreshUntil)))
	dst = binary.BigEndian.AppendUint32(dst, durToSeconds(e.InitialAge))
	dst = binary.BigEndian.AppendUint32(dst, durToSeconds(e.StaleWhileRevalidate))
	dst = binary.BigEndian.AppendUint32(dst, durToSeconds(e.StaleIfError))
	dst = appendStr(dst, e.ETag)
	dst = appendStr(dst, e.LastModified)

	// Sorted names make the encoding deterministic. The array keeps the
	// usual header set off the heap.
	var arr [32]string
	names := arr[:0]
	pairs := 0
	for k, vs := range e.Header {
		if len(vs) > 0 {
			names = append(names, k)
			pairs += len(vs)
		}
	}
	slices.Sort(names)
	dst = binary.AppendUvarint(dst, uint64(pairs))
	for _, k := range names {
		for _, v := range e.Header[k] {
			dst = appendStr(dst, k)
			dst = appendStr(dst, v)
		}
	}

	dst = binary.AppendUvarint(dst, uint64(len(e.Tags)))
	for _, t := range e.Tags {
		dst = appendStr(dst, t)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Body)))
	return append(dst, e.Body...)
}

// Peek decodes the fixed-width header of b without allocating. It checks
// the header only: a value Peek accepts may still fail Decode.
func Peek(b []byte) (Meta, error) {
	if len(b) < minSize {
		if len(b) >= 3 && b[0] == magic0 && b[1] == magic1 && b[offVersion] != Version {
			return Meta{}, fmt.Errorf("%w %d", ErrVersion, b[offVersion])
		}
		return Meta{}, fmt.Errorf("%w: %d bytes, shorter than an envelope", ErrCorrupt, len(b))
	}
	if b[0] != magic0 || b[1] != magic1 {
		return Meta{}, fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:2])
	}
	if b[offVersion] != Version {
		return Meta{}, fmt.Errorf("%w %d", ErrVersion, b[offVersion])
	}
	m := Meta{
		Status:               int(binary.BigEndian.Uint16(b[offStatus:])),
		StoredAt:             int64(binary.BigEndian.Uint64(b[offStoredAt:])),
		FreshUntil:           int64(binary.BigEndian.Uint64(b[offFreshUntil:])),
		InitialAge:           time.Duration(binary.BigEndian.Uint32(b[offInitialAge:])) * time.Second,
		StaleWhileRevalidate: time.Duration(binary.BigEndian.Uint32(b[offSWR:])) * time.Second,
		StaleIfError:         time.Duration(binary.BigEndian.Uint32(b[offSIE:])) * time.Second,
	}
	if m.Status < 100 || m.Status > 999 {
		return Meta{}, fmt.Errorf("%w: status %d", ErrCorrupt, m.Status)
	}
	if m.StoredAt < 0 || m.StoredAt > maxUnixMilli {
		return Meta{}, fmt.Errorf("%w: stored-at %d out of range", ErrCorrupt, m.StoredAt)
	}
	if m.FreshUntil < 0 || m.FreshUntil > maxUnixMilli {
		return Meta{}, fmt.Errorf("%w: fresh-until %d out of range", ErrCorrupt, m.FreshUntil)
	}
	return m, nil
}

// Decode decodes the whole envelope b into e, replacing all of e.
//
// e.Body aliases b: b must not be mutated, and must stay alive, as long as
// e.Body is in use (it is a view, capped so that appending to it copies).
// The strings are copied into one allocation and do not alias b.
//
// b is validated in full before e is touched: on error e is unchanged and
// the error wraps ErrCorrupt or ErrVersion.
func Decode(b []byte, e *Entry) error {
	m, err := Peek(b)
	if err != nil {
		return err
	}
	l, err := scan(b)
	if err != nil {
		return err
	}

	// All strings sit between the fixed header and the body length: one
	// conversion copies them, and each is a substring of it.
	s := string(b[HeaderSize:l.strEnd])
	r := reader{b: b, off: HeaderSize}
	str := func() string {
		start, end := r.next()
		return s[start-HeaderSize : end-HeaderSize]
	}

	*e = Entry{
		Status:               m.Status,
		StoredAt:             milliToTime(m.StoredAt),
		FreshUntil:           milliToTime(m.FreshUntil),
		InitialAge:           m.InitialAge,
		StaleWhileRevalidate: m.StaleWhileRevalidate,
		StaleIfError:         m.StaleIfError,
	}
	e.ETag = str()
	e.LastModified = str()

	r.count()
	if l.pairs > 0 {
		h := make(http.Header, l.pairs)
		vals := make([]string, l.pairs)
		prev, start := "", 0
		for i := range l.pairs {
			k, v := str(), str()
			vals[i] = v
			if i > 0 && k == prev {
				// The next value of the name being read: widen its view.
				h[k] = vals[start : i+1 : i+1]
				continue
			}
			if old, ok := h[k]; ok {
				// A name seen before, not just before: append copies, as
				// the view's capacity is capped.
				// Later values of it take this path too (prev is cleared).
				h[k] = append(old, v)
				prev = ""
				continue
			}
			h[k] = vals[i : i+1 : i+1]
			prev, start = k, i
		}
		e.Header = h
	}

	r.count()
	if l.tags > 0 {
		e.Tags = make([]string, l.tags)
		for i := range e.Tags {
			e.Tags[i] = str()
		}
	}

	if l.bodyStart < len(b) {
		e.Body = b[l.bodyStart:len(b):len(b)]
	}
	return nil
}

// layout is what scan learns of a valid envelope.
type layout struct {
	pairs, tags int
	strEnd      int // offset of the body length
	bodyStart   int
}

// scan validates everything after the fixed header of b.
func scan(b []byte) (layout, error) {
	var l layout
	r := reader{b: b, off: HeaderSize}
	if err := r.skipStr("etag"); err != nil {
		return l, err
	}
	if err := r.skipStr("last-modified"); err != nil {
		return l, err
	}

	// A pair takes at least three bytes: two lengths and a name.
	n, err := r.bounded("header count", 3)
	if err != nil {
		return l, err
	}
	l.pairs = n
	for i := range n {
		start, end, err := r.str("header name")
		if err != nil {
			return l, err
		}
		if !validName(b[start:end]) {
			return l, fmt.Errorf("%w: header %d: invalid name %q", ErrCorrupt, i, b[start:end])
		}
		start, end, err = r.str("header value")
		if err != nil {
			return l, err
		}
		if !validValue(b[start:end]) {
			return l, fmt.Errorf("%w: header %d: invalid value", ErrCorrupt, i)
		}
	}

	n, err = r.bounded("tag count", 1)
	if err != nil {
		return l, err
	}
	l.tags = n
	for range n {
		if err := r.skipStr("tag"); err != nil {
			return l, err
		}
	}

	l.strEnd = r.off
	start, end, err := r.str("body")
	if err != nil {
		return l, err
	}
	if end != len(b) {
		return l, fmt.Errorf("%w: %d bytes after the body", ErrCorrupt, len(b)-end)
	}
	l.bodyStart = start
	return l, nil
}

// reader walks the variable part of an envelope.
type reader struct {
	b   []byte
	off int
}

func (r *reader) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad %s at offset %d", ErrCorrupt, what, r.off)
	}
	r.off += n
	return v, nil
}

// str reads a length-prefixed string and returns its bounds in r.b.
func (r *reader) str(what string) (start, end int, err error) {
	n, w := binary.Uvarint(r.b[r.off:])
	if w <= 0 {
		return 0, 0, fmt.Errorf("%w: bad %s length at offset %d", ErrCorrupt, what, r.off)
	}
	r.off += w
	if rem := uint64(len(r.b) - r.off); n > rem {
		return 0, 0, fmt.Errorf("%w: %s length %d beyond the %d bytes left at offset %d", ErrCorrupt, what, n, rem, r.off)
	}
	start = r.off
	r.off += int(n)
	return start, r.off, nil
}

func (r *reader) skipStr(what string) error {
	_, _, err := r.str(what)
	return err
}

// bounded reads a count of items that take at least size bytes each and
// checks that the bytes left can hold them.
func (r *reader) bounded(what string, size int) (int, error) {
	n, err := r.uvarint(what)
	if err != nil {
		return 0, err
	}
	if rem := uint64(len(r.b) - r.off); n > rem/uint64(size) {
		return 0, fmt.Errorf("%w: %s %d beyond the %d bytes left at offset %d", ErrCorrupt, what, n, rem, r.off)
	}
	return int(n), nil
}

// next and count re-read what scan has validated.
func (r *reader) next() (start, end int) {
	n, w := binary.Uvarint(r.b[r.off:])
	start = r.off + w
	r.off = start + int(n)
	return start, r.off
}

func (r *reader) count() {
	_, w := binary.Uvarint(r.b[r.off:])
	r.off += w
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func strSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// timeToMilli maps t to the stored milliseconds: the zero Time and times
// up to the epoch to 0, times past 9999 to the end of 9999.
func timeToMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return min(max(t.UnixMilli(), 0), maxUnixMilli)
}

func milliToTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func durToSeconds(d time.Duration) uint32 {
	return uint32(min(max(d/time.Second, 0), math.MaxUint32))
}

// isTchar reports the token characters of RFC 9110 §5.6.2.
var isTchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar[c] {
			return false
		}
	}
	return true
}

func validValue(b []byte) bool {
	for _, c := range b {
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}
