package h1

import "unsafe"

// Sizes of a connection's arena chunks: a full-size chunk holds the
// heads of dozens of typical requests (a wrk or browser GET head is
// 50–500 bytes), so a busy connection's hit allocates one chunk every few
// dozen requests instead of a string per head. Chunks start small and
// double up to the full size, so that a connection that sends a request
// or two (and then sits idle, holding its last chunk) costs little.
const (
	arenaBytes     = 4096 // full size of a chunk of head text (bufSize: the largest head fits)
	arenaValues    = 128  // full size of a chunk of header value slots (2 KiB)
	arenaMinBytes  = 512  // the first text chunk
	arenaMinValues = 16   // the first value chunk
)

// arena gives a connection's requests their strings and header value
// slots from chunks that are filled forward and never written twice:
// a chunk is dropped (to the GC) when full, not reused. So a string or a
// value slice of a request stays valid and unchanged for as long as
// anything holds it — a cache key, a span attribute, a log line, a
// background refresh — unlike the *http.Request, its Header map and its
// URL, which the connection reuses (see the package doc).
type arena struct {
	text []byte   // the unused rest of the text chunk
	vals []string // the unused rest of the value chunk
	// The sizes of the chunks in use: the next one is twice as large.
	textSize, valsSize int
}

// grow is the size of the chunk after one of size: twice it, from least
// to full, and at least need.
func grow(size, least, full, need int) int {
	return max(min(max(2*size, least), full), need)
}

// copy returns b's bytes as a string in the arena.
func (a *arena) copy(b []byte) string {
	if len(b) > len(a.text) {
		a.textSize = grow(a.textSize, arenaMinBytes, arenaBytes, len(b))
		a.text = make([]byte, a.textSize)
	}
	n := copy(a.text, b)
	s := unsafe.String(unsafe.SliceData(a.text), n) // never written again: see arena
	a.text = a.text[n:]
	return s
}

// values returns n unused value slots.
func (a *arena) values(n int) []string {
	if n > len(a.vals) {
		a.valsSize = grow(a.valsSize, arenaMinValues, arenaValues, n)
		a.vals = make([]string, a.valsSize)
	}
	v := a.vals[:n:n]
	a.vals = a.vals[n:]
	return v
}
