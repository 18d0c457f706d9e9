package gateway

import (
	"io"
	"sync"
	"sync/atomic"
)

// Bounded fill buffers
//
// A fill reads the origin body into one buffer, to store it and to answer
// the clients of the fill. Two bounds hold whatever clients and origins
// do:
//
//   - per fill, the buffer never grows past the route's max_body_bytes
//     (+1, to see that the body is larger): the moment the body crosses
//     it, the fill stops buffering and streams the rest to its client,
//     uncached;
//   - over all fills, the bytes of buffers held (their capacity, from
//     the moment they are allocated until the leader's client has been
//     answered) stay within limits.fill_buffer_bytes: a fill that cannot
//     reserve more streams too (detail=fill-budget).
//
// A body with Content-Length is read into a buffer of exactly that size.
// One without is read in fillChunk pieces, each reserved before it is
// allocated, and joined once complete (the joined copy is reserved before
// the pieces are released, so the budget counts both while they
// coexist). A body that crosses a bound keeps its pieces: the leader's
// client is sent them one at a time, each released as soon as it is
// written, so a slow client pins one piece, not the whole prefix, while
// the rest streams. Waiters of a fill that streams fetch on their own
// (miss), each through the same budget.

// fillBudget counts the bytes of fill buffers held, for the whole
// gateway (it outlives generations; its limit is the current one's).
type fillBudget struct{ used atomic.Int64 }

// reserve takes n bytes if that keeps the total within limit (<= 0: no
// limit).
func (b *fillBudget) reserve(n, limit int64) bool {
	if limit <= 0 {
		b.used.Add(n)
		return true
	}
	for {
		u := b.used.Load()
		if u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *fillBudget) release(n int64) { b.used.Add(-n) }

// Why readBody stopped buffering before the end of the body.
const (
	detailTooLarge   = "too-large"
	detailFillBudget = "fill-budget"
)

// fillChunk is the piece a body without Content-Length is read in.
const fillChunk = 64 << 10

// fillHold is what a fill holds of the budget: the complete body, or the
// pieces read before it stopped buffering.
type fillHold struct {
	budget *fillBudget
	held   int64
	once   sync.Once
}

// releasePart returns one written piece to the budget.
func (h *fillHold) releasePart(n int64) {
	h.budget.release(n)
	h.held -= n
}

// release returns what is still held, once.
func (h *fillHold) release() { h.once.Do(func() { h.budget.release(h.held); h.held = 0 }) }

// readBody reads body (contentLength, or -1) into at most maxBody+1
// bytes reserved from budget (limit: limits.fill_buffer_bytes). A
// complete body is returned whole; one that crossed a bound is returned
// as the pieces read so far, with why it stopped (detailTooLarge,
// detailFillBudget). err is the body's read error. The caller releases
// hold.
func readBody(body io.Reader, contentLength, maxBody int64, budget *fillBudget, limit int64) (whole []byte, parts [][]byte, stopped string, hold *fillHold, err error) {
	hold = &fillHold{budget: budget}
	if contentLength >= 0 {
		size := min(contentLength+1, maxBody+1) // +1: the read that sees EOF
		if !budget.reserve(size, limit) {
			return nil, nil, detailFillBudget, hold, nil
		}
		hold.held = size
		buf := make([]byte, 0, size)
		for {
			n, rerr := body.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			switch {
			case int64(len(buf)) > maxBody:
				return nil, [][]byte{buf}, detailTooLarge, hold, nil
			case rerr == io.EOF:
				return buf, nil, "", hold, nil
			case rerr != nil:
				return nil, nil, "", hold, rerr
			case len(buf) == cap(buf):
				return nil, [][]byte{buf}, detailTooLarge, hold, nil // longer than its Content-Length
			}
		}
	}
	var total int64
	for {
		size := min(int64(fillChunk), maxBody+1-total)
		if !budget.reserve(size, limit) {
			return nil, parts, detailFillBudget, hold, nil
		}
		hold.held += size
		buf := make([]byte, 0, size)
		var rerr error
		for len(buf) < cap(buf) && rerr == nil {
			var n int
			n, rerr = body.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		}
		parts = append(parts, buf)
		total += int64(len(buf))
		switch {
		case total > maxBody:
			return nil, parts, detailTooLarge, hold, nil
		case rerr == io.EOF:
			return join(parts, total, hold, limit), nil, "", hold, nil
		case rerr != nil:
			return nil, nil, "", hold, rerr
		}
	}
}

// join makes one buffer of a complete body read in pieces; the joined
// copy is reserved beyond the limit if need be (the body is complete and
// the pieces are released at once).
func join(parts [][]byte, total int64, hold *fillHold, limit int64) []byte {
	if len(parts) == 1 {
		return parts[0]
	}
	hold.budget.reserve(total, 0)
	out := make([]byte, 0, total)
	for _, p := range parts {
		out = append(out, p...)
		hold.releasePart(int64(cap(p)))
	}
	hold.held += total
	return out
}
