package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/edgecache/edgecache/policies"
)

// Streaming a fill (Varnish's streaming of a busy object)
//
// A fill reads its origin body once, into a tee: a growing list of
// pieces held within the bounds of fillbuf.go. The first piece (up to
// headAfter bytes, or the whole body if shorter) is read before anyone is
// answered, so a small body is stored and answered exactly as a whole
// one. A body longer than that is read on by a goroutine owned by the
// fill, not by any client: the leader and every coalesced waiter follow
// the pieces at their own pace (each a teeReader), and a request that
// misses while the body is still coming joins it (Gateway.busy) instead
// of fetching again. Once the body is complete and within its bounds,
// the fill stores it as a whole fill would.
//
// While it buffers, a slow or absent reader never holds the fill or the
// other readers: the pieces stay until the fill ends and the last reader
// has left. When the body crosses max_body_bytes or the fill budget, the
// tee stops buffering (pass): nothing will be stored, nobody new may
// join, each piece is released once every attached reader has written
// it, and the fill reads ahead of the slowest reader by passWindow at
// most, outside the budget (a proxy's buffer), so memory stays bounded
// whatever the readers do. A pass with no reader left stops reading the
// origin. An origin that fails mid-body ends every reader's response
// short of its end (the connection is closed, a chunked body is never
// terminated), as Varnish and nginx do, and nothing is stored.

// headAfter is how much of a body a fill reads before it answers: a body
// that ends within it is answered whole, with the Cache-Status of its
// store.
const headAfter = fillChunk

// passChunk is the piece a tee reads in once it no longer buffers, and
// passWindow how far ahead of its slowest reader it may read then (as
// streamLarge's one buffer, so that many passes cost little).
const (
	passChunk  = 32 << 10
	passWindow = 2 * passChunk
)

// passPieces recycles pass pieces: a piece goes back only once every
// reader has written it and let go of it (releaseConsumed, releaseIfIdle).
var passPieces = sync.Pool{New: func() any { return new([passChunk]byte) }}

// teeWrite bounds one write to a client, so that a slow client's
// progress (and so the release of pieces) is seen in steps.
const teeWrite = 64 << 10

// detailStreaming is the Cache-Status detail of a response whose body
// was still coming from the origin when its head was sent: the fill
// means to store it, and whether it did is known only at the end.
const detailStreaming = "streaming"

// errAbandoned ends a pass that no reader follows.
var errAbandoned = errors.New("gateway: streamed body abandoned by its readers")

type tee struct {
	mu   sync.Mutex
	data sync.Cond // readers: bytes were read, or the body ended
	room sync.Cond // the fill: a reader moved or left

	body   io.Reader
	cl     int64 // Content-Length, or -1
	max    int64 // max_body_bytes
	budget *fillBudget
	limit  int64 // limits.fill_buffer_bytes
	hold   *fillHold

	pieces    []teePiece
	n         int64  // bytes read
	ended     bool   // the body is over (err: how it failed)
	err       error  // the origin's read error, or errAbandoned
	pass      string // why it stopped buffering: detailTooLarge, detailFillBudget
	streaming bool   // read on by the fill's goroutine (not yet answered otherwise)
	cancelled bool   // the fill's context is done
	finished  bool   // the fill is done with it (stored or not)

	readers []*teeReader
	f       *fetched    // the head, for requests that join
	lead    *teeReader  // the leader's, attached before anyone is answered
	stop    func() bool // stops the context's wake-up
}

type teePiece struct {
	off      int64 // of its first byte in the body
	b        []byte
	reserved int64 // from the budget (0 for a pass piece)
}

// teeReader is one client's position in the body.
type teeReader struct{ pos int64 }

func newTee(body io.Reader, contentLength, maxBody int64, budget *fillBudget, limit int64) *tee {
	t := &tee{body: body, cl: contentLength, max: maxBody, budget: budget, limit: limit, hold: &fillHold{budget: budget}}
	t.data.L, t.room.L = &t.mu, &t.mu
	return t
}

// readHead reads the first piece: up to headAfter bytes or the end of
// the body, unless it stops buffering first.
func (t *tee) readHead() {
	for !t.ended && t.pass == "" && t.n <= headAfter {
		if !t.readOnce() {
			return
		}
	}
}

// readAll reads the rest of the body, in the fill's goroutine.
func (t *tee) readAll() {
	for t.readOnce() {
	}
}

// readOnce reads once from the origin into the pieces; false: no more.
func (t *tee) readOnce() bool {
	buf, ok := t.space()
	if !ok {
		return false
	}
	n, err := t.body.Read(buf)
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &t.pieces[len(t.pieces)-1]
	p.b = p.b[:len(p.b)+n]
	t.n += int64(n)
	if t.pass == "" && (t.n > t.max || t.cl >= 0 && t.n > t.cl) {
		t.pass = detailTooLarge // (longer than its Content-Length, too)
	}
	switch {
	case errors.Is(err, io.EOF):
		t.ended = true
	case err != nil:
		t.ended, t.err = true, err
	}
	t.data.Broadcast()
	return !t.ended
}

// space is where the next read goes: the rest of the last piece, or a
// new piece reserved from the budget while buffering; once passing, a
// piece outside the budget when the slowest reader is near enough.
func (t *tee) space() ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k := len(t.pieces); k > 0 && len(t.pieces[k-1].b) < cap(t.pieces[k-1].b) {
		p := t.pieces[k-1].b
		return p[len(p):cap(p)], true
	}
	if t.pass == "" {
		size := min(int64(fillChunk), t.max+1-t.n)
		if t.cl >= 0 {
			size = min(t.cl, t.max) + 1 - t.n // one buffer, +1: the read that sees EOF
		}
		if t.budget.reserve(size, t.limit) {
			t.hold.held += size
			t.pieces = append(t.pieces, teePiece{off: t.n, b: make([]byte, 0, size), reserved: size})
			return t.pieces[len(t.pieces)-1].b[:size], true
		}
		t.pass = detailFillBudget
	}
	if !t.streaming {
		return nil, false // not answered yet: the leader streams the rest (streamLarge)
	}
	for len(t.readers) > 0 && t.n-t.minPos() >= passWindow && !t.cancelled {
		t.room.Wait()
	}
	t.releaseConsumed()
	if len(t.readers) == 0 {
		t.ended, t.err = true, errAbandoned
		t.data.Broadcast()
		return nil, false
	}
	t.pieces = append(t.pieces, teePiece{off: t.n, b: passPieces.Get().(*[passChunk]byte)[:0]})
	return t.pieces[len(t.pieces)-1].b[:passChunk], true
}

// minPos is the slowest reader's position (the end when none is left).
func (t *tee) minPos() int64 {
	m := t.n
	for _, r := range t.readers {
		m = min(m, r.pos)
	}
	return m
}

// releaseConsumed releases, once passing, the pieces every reader has
// written (a piece still being filled stays).
func (t *tee) releaseConsumed() {
	if t.pass == "" {
		return
	}
	low := t.minPos()
	for i := range t.pieces {
		p := &t.pieces[i]
		if p.b == nil {
			continue
		}
		if p.off+int64(len(p.b)) > low || len(p.b) < cap(p.b) && !t.ended {
			return
		}
		t.drop(p)
	}
}

// drop releases one piece: to the budget, or to passPieces.
func (t *tee) drop(p *teePiece) {
	if p.reserved > 0 {
		t.hold.releasePart(p.reserved)
	} else if p.b != nil {
		passPieces.Put((*[passChunk]byte)(p.b[:passChunk]))
	}
	p.b = nil
}

// attach is a new reader from the start of the body, if the tee still
// has all of it and means to store it; nil otherwise.
func (t *tee) attach() *teeReader {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pass != "" || t.err != nil || t.finished && len(t.readers) == 0 {
		return nil
	}
	rd := &teeReader{}
	t.readers = append(t.readers, rd)
	return rd
}

// detach removes rd; the last reader of a finished tee releases it.
func (t *tee) detach(rd *teeReader) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.readers {
		if r == rd {
			t.readers = append(t.readers[:i], t.readers[i+1:]...)
			break
		}
	}
	t.releaseConsumed()
	t.releaseIfIdle()
	t.room.Broadcast()
}

// finish is the fill letting go of the tee (after the store).
func (t *tee) finish() {
	if t.stop != nil {
		t.stop()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finished = true
	t.releaseIfIdle()
}

func (t *tee) releaseIfIdle() {
	if t.finished && len(t.readers) == 0 {
		for i := range t.pieces {
			if t.pieces[i].reserved == 0 {
				t.drop(&t.pieces[i])
			}
			t.pieces[i].b = nil
		}
		t.hold.release()
	}
}

// wake is called when the fill's context is done: a fill waiting for
// its readers goes on to fail its read.
func (t *tee) wake() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cancelled = true
	t.room.Broadcast()
}

// next returns the bytes after rd's position, waiting for some when
// wait is set; end is set when the body is over for rd (err: how the
// origin failed).
func (t *tee) next(rd *teeReader, wait bool) (b []byte, end bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for wait && rd.pos == t.n && !t.ended {
		t.data.Wait()
	}
	if rd.pos < t.n {
		i := sort.Search(len(t.pieces), func(i int) bool { return t.pieces[i].off > rd.pos }) - 1
		p := t.pieces[i]
		b = p.b[rd.pos-p.off:]
		return b[:min(len(b), teeWrite)], false, nil
	}
	return nil, t.ended, t.err
}

// advance moves rd past n written bytes.
func (t *tee) advance(rd *teeReader, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rd.pos += int64(n)
	if t.pass != "" {
		t.releaseConsumed()
		t.room.Broadcast()
	}
}

// copyTo writes the body to w as it comes, flushing whenever it has to
// wait. It returns the origin's error when the body ended short, nil
// when it is complete or the client went away.
func (t *tee) copyTo(w http.ResponseWriter, rd *teeReader) error {
	rc := http.NewResponseController(w)
	for {
		b, end, err := t.next(rd, false)
		if len(b) == 0 && !end {
			if rc.Flush() != nil {
				return nil
			}
			b, end, err = t.next(rd, true)
		}
		if len(b) > 0 {
			if _, werr := w.Write(b); werr != nil {
				return nil // the client went away: the fill goes on without it
			}
			t.advance(rd, len(b))
			continue
		}
		if end {
			return err
		}
	}
}

// parts are the pieces read, for streamLarge.
func (t *tee) parts() [][]byte {
	out := make([][]byte, 0, len(t.pieces))
	for _, p := range t.pieces {
		out = append(out, p.b)
	}
	return out
}

// whole makes one buffer of a complete body read in pieces, releasing
// the pieces; the joined copy is reserved beyond the limit if need be
// (the body is complete and the pieces go at once).
func (t *tee) whole() []byte {
	if len(t.pieces) == 1 {
		return t.pieces[0].b
	}
	t.budget.reserve(t.n, 0)
	out := make([]byte, 0, t.n)
	for i := range t.pieces {
		out = append(out, t.pieces[i].b...)
		t.hold.releasePart(t.pieces[i].reserved)
		t.pieces[i].b = nil
	}
	t.hold.held += t.n
	return out
}

// contiguous is the complete body for the store while readers may still
// follow the pieces: the one piece, or a copy whose reservation (extra)
// the caller releases once stored.
func (t *tee) contiguous() (body []byte, extra int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pieces) == 1 {
		return t.pieces[0].b, 0
	}
	t.budget.reserve(t.n, 0)
	out := make([]byte, 0, t.n)
	for _, p := range t.pieces {
		out = append(out, p.b...)
	}
	return out, t.n
}

// stream answers the fill's clients before the end of a body longer than
// headAfter: the storage decision is made on the head, the tee is read on
// by a goroutine of the fill's own (bounded by ctx, the origin timeout),
// and the body is stored once complete. The fill's request is copied
// first: it outlives the leader's request.
func (fl *fill) stream(ctx context.Context, cancel context.CancelFunc, f *fetched, resp *http.Response, t *tee) *fetched {
	now := time.Now()
	dec, keep := fl.decide(f, resp.Header, now)
	if keep {
		f.detail = detailStreaming
	}
	fl.detach()
	join := keep && fl.joinable(f)
	stored := f.header // the clients' may add Vary (streamHeader): the entry's own is the origin's
	if keep {
		f.header = fl.streamHeader(f, t.cl) // encode.go
	}
	unlock := fl.unlock
	fl.unlock = nil
	f.tee, t.f, t.streaming = t, f, true
	t.lead = &teeReader{}
	t.readers = append(t.readers, t.lead)
	t.stop = context.AfterFunc(ctx, t.wake)
	if join {
		fl.g.busy.Store(fl.key, t) // requests that miss meanwhile join
	}
	go func() {
		t.readAll()
		if keep && t.err == nil && t.pass == "" {
			done := *f // readers share f
			done.header = stored
			fl.keepStreamed(ctx, &done, dec, now, t)
		}
		if join {
			fl.g.busy.CompareAndDelete(fl.key, t)
		}
		resp.Body.Close()
		cancel()
		if unlock != nil {
			unlock() // the cross-gateway fill lock, held until stored
		}
		t.finish()
	}()
	return f
}

// joinable reports whether any request that misses on the fill's key may
// be given f: it does not vary, or the key is already the variant's
// (through the marker) for the same fields.
func (fl *fill) joinable(f *fetched) bool {
	names := varyNames(f.header["Vary"])
	return len(names) == 0 || fl.marker != nil && equalNames(fl.marker.varyNames, names)
}

// detach makes the fill's request its own, for a fill that outlives its
// leader's request: the fast path reuses the leader's Header, URL and
// context for its connection's next request (internal/h1), so they are
// copied, and the context keeps only its values.
func (fl *fill) detach() {
	fr := fl.req
	hdr := fr.header.Clone()
	preq := fr.preq
	preq.Header = hdr
	fl.req = &fetchReq{ctx: context.WithoutCancel(fr.ctx), method: fr.method, url: cloneURL(fr.url), header: hdr, preq: preq, peer: fr.peer}
}

// keepStreamed stores a streamed body that completed within its bounds
// as done, a copy of the fill's fetched that only the store uses.
func (fl *fill) keepStreamed(ctx context.Context, done *fetched, dec policies.Decision, now time.Time, t *tee) {
	body, extra := t.contiguous()
	done.body, done.tee = body, nil
	fl.keep(ctx, done, dec, now)
	t.budget.release(extra)
}

// writeTee answers one request from a streaming fill: the head at once,
// then the body as it comes. false: the request could not join (the tee
// stopped buffering, so the start of the body may be gone) and nothing
// was written.
func writeTee(w http.ResponseWriter, r *http.Request, st *reqState, a *answer) bool {
	t := a.f.tee
	rd := t.lead
	if !a.leader {
		if rd = t.attach(); rd == nil {
			return false
		}
	}
	defer t.detach(rd)
	if !writeFetchedHead(w, r, st, a, t.cl) || r.Method == http.MethodHead {
		return true
	}
	if err := t.copyTo(w, rd); err != nil {
		// The origin failed mid-body: end the response short, so that
		// the client sees it is incomplete (net/http and the fast path
		// close the connection; HTTP/2 resets the stream).
		panic(http.ErrAbortHandler)
	}
	return true
}
