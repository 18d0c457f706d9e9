package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// bufSize is the read buffer of a connection: a request head that does
// not fit (with the bytes of a pipelined request before it) goes to
// net/http, as net/http's own reader is this size too.
const bufSize = 4096

// headerHint is the room of a connection's header map: more fields than
// a browser sends, so that the map, reused, never grows on a hit.
const headerHint = 16

// conn is one client connection on the fast path. Only its goroutine
// touches it, except idle (read by Shutdown) and the hang-up watch, which
// hands its result back through watchDone before the loop goes on.
type conn struct {
	srv    *Server
	rwc    net.Conn
	ctx    context.Context
	remote string
	base   *http.Request // the fields every request on the connection shares
	h2     net.Conn      // given to srv.HTTP2 when the loop ends (ALPN h2, or h2c's preface)

	// What the connection's requests reuse, one request at a time (the
	// ownership rule in the package doc): the request, its header map and
	// URL, its context while nothing asked for Done (nextCtx), and proto,
	// base with that context, which each request starts as.
	req    *http.Request
	proto  *http.Request
	header http.Header
	url    url.URL
	x      *reqCtx
	arena  arena

	buf  [bufSize]byte
	r, w int // unparsed bytes are buf[r:w]
	bw   *bufio.Writer
	res  ResponseWriter

	idle atomic.Bool
	// headStart is when the head being read began: the connection's
	// accept for its first request, the read that brought its first byte
	// for a request on a kept-alive connection, or the moment the
	// previous request ended for one whose bytes came with it (net/http
	// starts that one's deadline then too). Zero until known.
	headStart time.Time

	// The read deadline in force and why: moved only when it must be.
	deadline     time.Time
	deadlineKind uint8

	// The hang-up watch of the request in flight (see reqCtx): written
	// by the watch goroutine, read after watchDone.
	watchDone chan struct{}
	watchByte [1]byte
	watchGot  bool
	hungUp    bool

	date dateCache
}

const (
	deadlineNone uint8 = iota
	deadlineIdle
	deadlineHead
)

func (s *Server) newConn(rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, watchDone: make(chan struct{}, 1)}
	if s.ReadHeaderTimeout > 0 {
		// A connection's first head is due ReadHeaderTimeout after the
		// accept, as in net/http: IdleTimeout is the wait between requests.
		c.headStart = time.Now()
	}
	return c
}

// start prepares what every request on the connection shares. It runs on
// the connection's goroutine, not the accept loop: RemoteAddr behind the
// PROXY protocol reads the header, and one slow client must not hold up
// the accepts of the others.
func (c *conn) start(state *tls.ConnectionState) {
	c.ctx = context.Background()
	if c.srv.ConnContext != nil {
		c.ctx = c.srv.ConnContext(c.ctx, c.rwc)
	}
	if a := c.rwc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	c.base = (&http.Request{
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Body:       http.NoBody,
		RemoteAddr: c.remote,
		TLS:        state,
	}).WithContext(c.ctx)
	c.req, c.header = new(http.Request), make(http.Header, headerHint)
	c.bw = bufio.NewWriterSize(c.rwc, bufSize)
	c.res.c = c
	c.res.header = make(http.Header, 16)
}

// serve is the connection's loop: read a head, serve it or hand the
// connection over, until the client or the server closes it.
func (c *conn) serve() {
	handed := false
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.logf("h1: panic serving %s: %v\n%s", c.remote, v, buf)
		}
		if !handed {
			if c.bw != nil {
				_ = c.bw.Flush()
			}
			_ = c.rwc.Close()
		}
		c.srv.track(c, false)
		if c.h2 != nil {
			c.srv.HTTP2.ServeConn(c.h2) // untracked here: HTTP2 tracks and shuts down its own
		}
	}()
	var state *tls.ConnectionState
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if state, ok = c.handshake(tc); !ok {
			if c.srv.HTTP2 != nil && tc.ConnectionState().NegotiatedProtocol == "h2" {
				c.h2, handed = tc, true
				return
			}
			handed = c.give(c.rwc)
			return
		}
	}
	c.start(state)
	for {
		n, act := c.readHead()
		switch act {
		case actClose:
			return
		case actHandOver:
			handed = c.handOver()
			return
		}
		req, x, ok := c.parse(c.buf[c.r : c.r+n])
		if !ok {
			handed = c.handOver()
			return
		}
		c.r += n
		if c.r == c.w {
			c.r, c.w = 0, 0
		}
		c.headStart = time.Time{} // the next head's start is its own
		if !c.serveRequest(req, x) {
			return
		}
	}
}

// handshake completes a TLS handshake, bounded by ReadHeaderTimeout as
// net/http bounds it, and returns the connection's state if it speaks
// HTTP/1.1 (ALPN http/1.1, or none). A failed handshake, h2, or another
// protocol (ACME's acme-tls/1) is Fallback's: a second Handshake returns
// the first one's result, so net/http reports the failure (answering 400
// to plain HTTP on the TLS port) or serves the protocol exactly as if it
// had accepted the connection itself.
func (c *conn) handshake(tc *tls.Conn) (*tls.ConnectionState, bool) {
	d := c.srv.ReadHeaderTimeout
	if d > 0 {
		dl := time.Now().Add(d)
		_ = tc.SetReadDeadline(dl)
		_ = tc.SetWriteDeadline(dl)
	}
	err := tc.HandshakeContext(context.Background())
	if d > 0 {
		_ = tc.SetReadDeadline(time.Time{})
		_ = tc.SetWriteDeadline(time.Time{})
		// The first head is due ReadHeaderTimeout after the handshake,
		// as in net/http.
		c.headStart = time.Now()
	}
	if err != nil {
		return nil, false
	}
	st := tc.ConnectionState()
	if p := st.NegotiatedProtocol; p != "" && p != "http/1.1" {
		return nil, false
	}
	return &st, true
}

// serveRequest runs the handler for req and finishes its response; false
// means the connection must close.
func (c *conn) serveRequest(req *http.Request, x *reqCtx) bool {
	c.srv.stats.Requests.Add(1)
	w := &c.res
	w.reset(req)
	c.srv.Handler.ServeHTTP(w, req)
	w.finish()
	c.endRequest(x)
	return !w.closeAfter && !c.hungUp && w.err == nil && !c.srv.inShutdown.Load()
}

type action uint8

const (
	actServe action = iota
	actHandOver
	actClose
)

var headEnd = []byte("\r\n\r\n")

// readHead reads until buf[r:] holds a whole request head and returns its
// length. It hands the connection over as soon as the lines it has rule
// the fast path out (ruledOut), and waits for the rest of a head until
// headStart + ReadHeaderTimeout; with nothing of a next request yet, a
// kept-alive connection waits IdleTimeout.
func (c *conn) readHead() (int, action) {
	scanned, checked := 0, 0 // offsets in buf[r:w]: searched for the end, lines checked
	for {
		b := c.buf[c.r:c.w]
		if bareLF(b, scanned) {
			return 0, actHandOver // lines ending in LF alone: net/http reads those
		}
		if i := bytes.Index(b[scanned:], headEnd); i >= 0 {
			return scanned + i + len(headEnd), actServe
		}
		var out bool
		if checked, out = ruledOut(b, checked); out {
			return 0, actHandOver
		}
		scanned = max(0, len(b)-len(headEnd)+1)
		if c.w == len(c.buf) {
			if c.r == 0 {
				return 0, actHandOver // a head larger than the buffer: net/http's call
			}
			c.w = copy(c.buf[:], c.buf[c.r:c.w])
			c.r = 0
		}
		// The answers to pipelined requests went into bw together; they
		// go out before any wait for more of a request (as net/http
		// sends each at once), never held for a head that is incomplete.
		if c.bw.Buffered() > 0 && c.bw.Flush() != nil {
			return 0, actClose
		}
		if c.r < c.w && c.headStart.IsZero() {
			// Bytes that came with the previous request (or that the
			// hang-up watch read during it): this head starts now.
			c.headStart = time.Now()
		}
		if c.headStart.IsZero() {
			c.setDeadline(deadlineIdle)
		} else {
			c.setDeadline(deadlineHead)
		}
		if c.r == c.w {
			// Nothing of a request yet. The deadline is set before idle
			// is, so that Shutdown's wake-up (after it sees idle) wins.
			c.idle.Store(true)
			if c.srv.inShutdown.Load() {
				c.idle.Store(false)
				return 0, actClose
			}
		}
		n, err := c.rwc.Read(c.buf[c.w:])
		c.idle.Store(false)
		if n > 0 && c.headStart.IsZero() {
			c.headStart = time.Now()
		}
		c.w += n
		if err != nil {
			return 0, actClose
		}
	}
}

// bareLF reports whether b, from offset from on, has an LF that does not
// follow a CR.
func bareLF(b []byte, from int) bool {
	for i := from; ; i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return true
		}
	}
}

// setDeadline sets the read deadline for waiting idle between requests
// or for the rest of a head, moving it only when it must: a connection
// that keeps sending requests moves its idle deadline once per half
// IdleTimeout.
func (c *conn) setDeadline(kind uint8) {
	s := c.srv
	var want time.Time
	switch kind {
	case deadlineIdle:
		d := s.IdleTimeout
		if d == 0 {
			d = s.ReadHeaderTimeout
		}
		if d <= 0 {
			if c.deadlineKind != deadlineNone {
				_ = c.rwc.SetReadDeadline(time.Time{})
				c.deadline, c.deadlineKind = time.Time{}, deadlineNone
			}
			return
		}
		now := time.Now()
		if c.deadlineKind == deadlineIdle && c.deadline.Sub(now) > d/2 {
			return
		}
		want = now.Add(d)
	case deadlineHead:
		if s.ReadHeaderTimeout <= 0 {
			return // the idle deadline (if any) goes on bounding it
		}
		want = c.headStart.Add(s.ReadHeaderTimeout)
		if c.deadlineKind == deadlineHead && c.deadline.Equal(want) {
			return
		}
	}
	_ = c.rwc.SetReadDeadline(want)
	c.deadline, c.deadlineKind = want, kind
}

// handOver gives the connection, with the bytes read and not yet served,
// to Fallback. It reports whether Fallback took it.
func (c *conn) handOver() bool {
	if c.bw.Flush() != nil {
		return false
	}
	_ = c.rwc.SetReadDeadline(time.Time{})
	rest := append([]byte(nil), c.buf[c.r:c.w]...)
	rc := &replayConn{Conn: c.rwc, buf: rest, tls: c.base.TLS}
	if c.srv.HTTP2 != nil && c.base.TLS == nil && bytes.HasPrefix(rest, h2cPreface) {
		c.h2 = rc // h2c with prior knowledge: served once this loop has let go
		return true
	}
	return c.give(rc)
}

// h2cPreface is the head of HTTP/2's client preface, which the loop
// reads as a request head.
var h2cPreface = []byte("PRI * HTTP/2.0\r\n\r\n")

// give hands rwc to Fallback and counts it; false if Fallback has shut
// down.
func (c *conn) give(rwc net.Conn) bool {
	c.srv.stats.HandedOver.Add(1) // before: net/http may answer before give returns
	if !c.srv.handoff.give(rwc) {
		c.srv.stats.HandedOver.Add(^uint64(0))
		return false
	}
	return true
}

// The hang-up watch: net/http reads from the connection while every
// handler runs, to cancel the request's context when the client goes
// away. Here the read starts only when something asks for the context's
// Done channel (reqCtx.Done), and it stops when the request ends.

// startWatch starts reading one byte from the connection in the
// background: an error other than the deadline means the client hung up.
// x.mu is held.
func (c *conn) startWatch(x *reqCtx) {
	c.srv.stats.Watches.Add(1)
	x.watching = true
	go func() {
		n, err := c.rwc.Read(c.watchByte[:])
		switch {
		case n == 1:
			c.watchGot = true // the start of a pipelined request
		case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
			c.hungUp = true
			c.srv.stats.HungUp.Add(1)
			x.cancel()
		}
		c.watchDone <- struct{}{}
	}()
}

// endRequest ends x: it stops the watch (keeping the byte it may have
// read) and cancels the context, as net/http does when a handler returns.
func (c *conn) endRequest(x *reqCtx) {
	x.mu.Lock()
	x.ended = true
	watching := x.watching
	x.mu.Unlock()
	if watching {
		_ = c.rwc.SetReadDeadline(aLongTimeAgo)
		<-c.watchDone
		c.deadlineKind = deadlineNone // the next wait sets its own
		if c.watchGot {
			c.watchGot = false
			// The watch runs only when the buffer was drained: there is room.
			c.buf[c.w] = c.watchByte[0]
			c.w++
		}
	}
	x.cancel()
}
