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
// A body with Content-Length is read into a buffer of exactly that size;
// one without grows by doubling, the next size reserved before the copy,
// so the budget counts both while they coexist. Waiters of a fill that
// streams fetch on their own (miss), each through the same budget.

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

// fillStart is the first buffer of a body without Content-Length.
const fillStart = 64 << 10

// readBody reads body (contentLength, or -1) into a buffer of at most
// maxBody+1 bytes reserved from budget. It returns what it read, the
// bytes reserved for it (the caller releases them), and why it stopped
// early ("" when the body is complete); err is the body's read error.
func readBody(body io.Reader, contentLength, maxBody int64, budget *fillBudget, limit int64) (buf []byte, held int64, stopped string, err error) {
	size := min(int64(fillStart), maxBody+1)
	if contentLength >= 0 {
		size = min(contentLength+1, maxBody+1) // +1: the read that sees EOF
	}
	if !budget.reserve(size, limit) {
		return nil, 0, detailFillBudget, nil
	}
	held = size
	buf = make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > maxBody {
				return buf, held, detailTooLarge, nil
			}
			next := min(2*int64(cap(buf)), maxBody+1)
			if !budget.reserve(next, limit) {
				return buf, held, detailFillBudget, nil
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			budget.release(held)
			buf, held = nb, next
		}
		n, rerr := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case int64(len(buf)) > maxBody:
			return buf, held, detailTooLarge, nil
		case rerr == io.EOF:
			return buf, held, "", nil
		case rerr != nil:
			return buf, held, "", rerr
		}
	}
}

// releaser returns held bytes to budget once, however often it is called.
func releaser(budget *fillBudget, held int64) func() {
	if held == 0 {
		return func() {}
	}
	var once sync.Once
	return func() { once.Do(func() { budget.release(held) }) }
}
