package h1

import "unsafe"

// Defaults of a connection's arena: a chunk holds the heads of dozens of
// typical requests (a wrk or browser GET head is 50–500 bytes), so a hit
// allocates one chunk every few dozen requests instead of a string per
// head; a connection keeps one of each chunk while it lives.
const (
	arenaBytes  = 4096 // bytes per chunk of head text (bufSize: the largest head fits)
	arenaValues = 128  // header values per chunk of value slots (2 KiB)
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
}

// copy returns b's bytes as a string in the arena.
func (a *arena) copy(b []byte) string {
	if len(b) > len(a.text) {
		a.text = make([]byte, max(arenaBytes, len(b)))
	}
	n := copy(a.text, b)
	s := unsafe.String(unsafe.SliceData(a.text), n) // never written again: see arena
	a.text = a.text[n:]
	return s
}

// values returns n unused value slots.
func (a *arena) values(n int) []string {
	if n > len(a.vals) {
		a.vals = make([]string, max(arenaValues, n))
	}
	v := a.vals[:n:n]
	a.vals = a.vals[n:]
	return v
}
