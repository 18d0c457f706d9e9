package gateway

import (
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
// allocated (tee.go reads them; a body longer than its first piece is
// answered while it is read). A complete body in pieces is joined for
// the store (the joined copy is reserved too, so the budget counts both
// while they coexist). A body that crosses a bound before it was
// answered keeps its pieces: the leader's client is sent them one at a
// time, each released as soon as it is written, so a slow client pins
// one piece, not the whole prefix, while the rest streams (streamLarge);
// waiters of that fill fetch on their own (miss), each through the same
// budget. One that crosses a bound while it streams is tee.go's pass.

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

// Why a fill stopped buffering before the end of the body.
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
