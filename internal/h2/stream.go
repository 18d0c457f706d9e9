package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
)

var (
	errReset   = errors.New("h2: stream reset")
	errHandler = errors.New("h2: handler returned")
)

// stream is one request. Its fields are guarded by conn.mu, except rw's
// and req's, which are the handler's.
type stream struct {
	c          *conn
	id         uint32
	sendWindow int64
	recvWindow int // credit the client has left
	body       *pipe
	ctx        *streamCtx
	// inline: the handler runs on the leader; detached: it handed the
	// read loop on (or never had it).
	inline, detached bool
	gone             bool // reset or closed: removed from conn.streams
	rw               responseWriter
}

// onHeaders opens a stream for a request HEADERS frame and runs its
// handler: inline if the request has no body, else on its own goroutine.
func (c *conn) onHeaders(f *http2.MetaHeadersFrame) loopAction {
	c.mu.Lock()
	id := f.StreamID
	if id%2 == 0 || id <= c.maxID {
		if st := c.streams[id]; st != nil && st.body != nil && !st.body.eof && f.StreamEnded() {
			// Trailers end the body; their fields are dropped.
			if b := st.body; b.want >= 0 && b.got != b.want {
				c.resetLocked(id, http2.ErrCodeProtocol)
			}
			st.body.eof = true
			c.cond.Broadcast()
			c.mu.Unlock()
			return loopGo
		}
		c.goAwayLocked(http2.ErrCodeProtocol)
		c.mu.Unlock()
		return loopStop
	}
	c.maxID = id
	if c.sentGoAway {
		c.mu.Unlock()
		return loopGo
	}
	if len(c.streams) >= c.srv.maxStreams() || c.running >= c.srv.maxStreams() {
		_ = c.wfr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		c.mu.Unlock()
		return loopGo
	}
	st := &stream{c: c, id: id, sendWindow: int64(c.peerWindow), recvWindow: initialWindow}
	st.ctx = &streamCtx{Context: c.base, st: st}
	if !f.StreamEnded() {
		st.body = &pipe{st: st}
	}
	req, code := c.newRequest(st, f)
	if req == nil {
		if code == http.StatusRequestHeaderFieldsTooLarge {
			st.rw.reset(st, nil)
			c.streams[id] = st
			c.running++
			c.mu.Unlock()
			st.rw.status(code)
			c.finish(st)
			return loopGo
		}
		_ = c.wfr.WriteRSTStream(id, http2.ErrCodeProtocol)
		c.mu.Unlock()
		return loopGo
	}
	c.streams[id] = st
	c.running++
	st.rw.reset(st, req)
	c.srv.stats.Streams.Add(1)
	if st.body != nil {
		st.detached = true
		c.mu.Unlock()
		c.srv.stats.Detached.Add(1)
		go c.serve(st, req)
		return loopGo
	}
	st.inline = true
	c.mu.Unlock()
	c.serve(st, req)
	c.mu.Lock()
	handedOn := st.detached
	c.mu.Unlock()
	if handedOn {
		return loopHandedOn
	}
	return loopGo
}

// detachLocked hands the read loop to a new goroutine: st's handler is
// about to block on the goroutine that held it.
func (c *conn) detachLocked(st *stream) {
	if !st.inline || st.detached || st.gone {
		return
	}
	st.detached = true
	c.srv.stats.Detached.Add(1)
	go c.readLoop()
}

// serve runs the handler and finishes the stream.
func (c *conn) serve(st *stream, req *http.Request) {
	defer func() {
		if e := recover(); e != nil {
			if e != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logf("h2: panic serving %s: %v\n%s", c.raddr, e, buf)
			}
			c.mu.Lock()
			if !st.gone {
				c.resetLocked(st.id, http2.ErrCodeInternal)
			}
			c.running--
			c.afterStreamLocked(st)
			c.mu.Unlock()
		}
	}()
	c.srv.Handler.ServeHTTP(&st.rw, req)
	c.finish(st)
}

// finish ends the response (headers if none went out, the last DATA with
// END_STREAM) and releases the stream.
func (c *conn) finish(st *stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !st.gone {
		st.rw.endLocked()
		if st.body != nil && !st.body.eof && !st.gone {
			// The client is still sending a body nobody will read.
			_ = c.wfr.WriteRSTStream(st.id, http2.ErrCodeNo)
		}
		c.endStreamLocked(st, errHandler)
		c.served++ // answered whole: what the rapid-reset budget weighs resets against
	}
	c.running--
	c.afterStreamLocked(st)
}

// afterStreamLocked flushes for a handler off the read loop (the leader
// flushes its own batches) and closes a draining connection.
func (c *conn) afterStreamLocked(st *stream) {
	if st.detached {
		_ = c.flushLocked()
	}
	if c.sentGoAway && len(c.streams) == 0 {
		_ = c.flushLocked()
		c.closeLocked()
	}
}

// newRequest builds the request of a HEADERS frame; nil and a status
// (431) or 0 (a malformed request: PROTOCOL_ERROR) if it cannot.
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) (*http.Request, int) {
	if f.Truncated {
		return nil, http.StatusRequestHeaderFieldsTooLarge
	}
	method, path, scheme, auth := f.PseudoValue("method"), f.PseudoValue("path"), f.PseudoValue("scheme"), f.PseudoValue("authority")
	if method == "" || (method != http.MethodConnect && (path == "" || scheme == "")) {
		return nil, 0
	}
	if f.HasPriority() && f.Priority.StreamDep == f.StreamID {
		return nil, 0 // depends on itself (RFC 9113 5.3.1)
	}
	h := make(http.Header, len(f.Fields))
	vals := make([]string, 0, len(f.Fields)) // every field's first value, one allocation
	var cookies []string
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return nil, 0 // connection-specific (RFC 9113 8.2.2)
		case "te":
			if hf.Value != "trailers" {
				return nil, 0
			}
		}
		k := textproto.CanonicalMIMEHeaderKey(hf.Name)
		if vv, ok := h[k]; ok {
			h[k] = append(vv, hf.Value)
			continue
		}
		vals = append(vals, hf.Value)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)] // capped: an append copies
	}
	if len(cookies) > 0 {
		h["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if auth == "" {
		auth = h.Get("Host")
	}
	r := &http.Request{
		Method: method, Proto: "HTTP/2.0", ProtoMajor: 2, Header: h, Host: auth,
		RemoteAddr: c.raddr, TLS: c.tls, RequestURI: path, Body: http.NoBody,
	}
	var err error
	if method == http.MethodConnect {
		r.URL, r.RequestURI = &url.URL{Host: auth}, auth
	} else if path == "*" && method == http.MethodOptions {
		r.URL = &url.URL{Path: "*"}
	} else if r.URL, err = url.ParseRequestURI(path); err != nil {
		return nil, 0
	}
	if st.body != nil {
		r.Body, r.ContentLength = st.body, -1
		if cl := h.Get("Content-Length"); cl != "" {
			if r.ContentLength, err = strconv.ParseInt(cl, 10, 64); err != nil || r.ContentLength < 0 {
				return nil, 0
			}
		}
		st.body.want = r.ContentLength
		st.body.expect = strings.EqualFold(h.Get("Expect"), "100-continue")
	}
	return r.WithContext(st.ctx), 0
}

// streamCtx is a request's context: canceled when the stream ends (reset,
// the connection closed, the handler returned). Asking for Done on the
// read loop hands the loop on first: whoever waits on it may block.
type streamCtx struct {
	context.Context // the connection's: values, never canceled
	st              *stream
	done            chan struct{}
	err             error
	quiet           quietCtx // WithoutCancel's, in the same allocation
}

func (x *streamCtx) Done() <-chan struct{} {
	c := x.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		}
	}
	c.detachLocked(x.st)
	return x.done
}

func (x *streamCtx) Err() error {
	x.st.c.mu.Lock()
	defer x.st.c.mu.Unlock()
	if x.err != nil {
		return context.Canceled
	}
	return nil
}

func (x *streamCtx) cancelLocked(err error) {
	if x.err != nil {
		return
	}
	x.err = err
	if x.done != nil {
		close(x.done)
	}
}

func (x *streamCtx) String() string { return "h2.requestContext" }

// Value answers streamKey with the stream's context itself (MayBlock
// finds it under any values added on top).
func (x *streamCtx) Value(key any) any {
	if key == (streamKey{}) {
		return x
	}
	return x.Context.Value(key)
}

// streamKey is the context key of a stream's own context.
type streamKey struct{}

// MayBlock tells the server that the handler of the request whose context
// (or a context derived from it) is ctx is about to wait without asking for
// Done — a wait bounded by something other than the client, such as a
// shard's command timeout: a handler running on its connection's read loop
// hands the loop on first, as Done does, so that the connection's other
// streams are not held behind the wait. Outside this package's requests it
// does nothing.
func MayBlock(ctx context.Context) {
	if x, ok := ctx.Value(streamKey{}).(*streamCtx); ok {
		x.mayBlock()
	}
}

// mayBlock hands the read loop on if x's handler holds it. It is safe from
// any goroutine at any time: after the stream ended it does nothing.
func (x *streamCtx) mayBlock() {
	c := x.st.c
	c.mu.Lock()
	c.detachLocked(x.st)
	c.mu.Unlock()
}

// WithoutCancel is context.WithoutCancel for a wait that the handler
// bounds itself, such as a shard read under its command timeout: the
// values of ctx (a request's context of this package, or one derived from
// it), no cancellation, and a Done that announces the wait (MayBlock) and
// returns nil. A client that asks for Done only when it is about to wait
// (valkey-go: a round trip, not an L1 hit) so moves the handler off its
// connection's read loop exactly when it may block.
//
// Unlike a context the handler pools, it stays valid after the request:
// the contexts a client derives from it ask it for Done again later, from
// their timer's goroutine (context's removeChild), and then it does
// nothing, since the stream has ended and is never reused. The first call
// per stream takes no allocation; it returns nil outside this package's
// requests.
func WithoutCancel(ctx context.Context) context.Context {
	x, ok := ctx.Value(streamKey{}).(*streamCtx)
	if !ok {
		return nil
	}
	c := x.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if x.quiet.values != nil { // a second wait of the same request
		return &quietCtx{values: ctx, x: x}
	}
	x.quiet = quietCtx{values: ctx, x: x}
	return &x.quiet
}

// quietCtx is WithoutCancel's context. Its fields are written once, before
// it is handed out, and only read after.
type quietCtx struct {
	values context.Context
	x      *streamCtx
}

func (q *quietCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done announces the wait and returns nil: the handler's own bound (a
// command timeout) ends it, not the client.
func (q *quietCtx) Done() <-chan struct{} {
	q.x.mayBlock()
	return nil
}

func (q *quietCtx) Err() error        { return nil }
func (q *quietCtx) Value(key any) any { return q.values.Value(key) }
func (q *quietCtx) String() string    { return "h2.WithoutCancel" }

// pipe is a request body: the DATA frames' bytes, bounded by the
// stream's receive window. Guarded by conn.mu; waits on conn.cond.
type pipe struct {
	st      *stream
	buf     []byte
	want    int64 // the Content-Length announced, -1 if none
	got     int64 // the DATA bytes received
	eof     bool
	expect  bool  // the client waits for 100 Continue before the body
	err     error // reset, closed, or the handler closed the body
	unacked int   // bytes read whose credit the client has not got back
}

func (p *pipe) add(data []byte, padding int) {
	p.buf = append(p.buf, data...)
	p.unacked += padding
}

func (p *pipe) Read(b []byte) (int, error) {
	c := p.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.expect && p.err == nil && !p.st.gone {
		// The first read asks for the body, as net/http's does.
		p.expect = false
		p.st.rw.continueLocked()
	}
	for len(p.buf) == 0 && !p.eof && p.err == nil {
		c.detachLocked(p.st)
		c.cond.Wait()
	}
	if len(p.buf) == 0 {
		if p.err != nil && !p.eof {
			return 0, p.err
		}
		return 0, io.EOF
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	if len(p.buf) == 0 {
		p.buf = nil
	}
	p.unacked += n
	if p.unacked >= windowRefill && !p.eof && !p.st.gone {
		_ = c.wfr.WriteWindowUpdate(p.st.id, uint32(p.unacked))
		p.st.recvWindow += p.unacked
		p.unacked = 0
		if p.st.detached {
			_ = c.flushLocked()
		}
	}
	return n, nil
}

func (p *pipe) Close() error {
	c := p.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.err == nil {
		p.err = http.ErrBodyReadAfterClose
	}
	p.buf = nil
	return nil
}
