package origins

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"
)

// Transport is an http.RoundTripper that carries plain-HTTP GET and HEAD
// requests without a body on the goroutine that asks: it writes the
// request and reads the response head itself, and the body is read by
// whoever reads resp.Body, on the connection directly. net/http's
// Transport gives every connection a read and a write goroutine and hands
// each request and response between them and the caller over channels —
// two goroutine wake-ups per request, for a cache's miss path most of
// what the origin request costs beyond its system calls. Everything else
// (https, request bodies, upgrades, a proxy from the environment, a cap
// on connections per host) goes to the http.Transport it was made from,
// whose dialer, idle bounds and response-header limit it uses too.
//
// A connection goes back to the idle list only when its response body
// was read to the end; a body closed early closes its connection (it is
// never drained: an origin may send a lot). The request's context bounds
// the whole exchange, the body's reading included: when it is done the
// connection's deadline is set in the past, which ends a blocked read or
// write. A request that fails on a reused connection before any response
// byte came is sent once more on a new one (the server may have closed
// the idle connection just then), as net/http does.
type Transport struct {
	fallback    *http.Transport
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration
	maxHeader   int64

	mu    sync.Mutex
	idle  map[string][]*conn // by host:port, the most recently used last
	sweep *time.Timer        // armed while any connection is idle
}

var _ http.RoundTripper = (*Transport)(nil)

// defaultMaxHeader is net/http's bound on a response head when
// MaxResponseHeaderBytes is 0.
const defaultMaxHeader = 10 << 20

// max1xx bounds the informational responses before the final one.
const max1xx = 5

// NewTransport returns a Transport that sends what it does not carry
// itself to t, and takes t's DialContext, MaxIdleConnsPerHost (default
// 2, as net/http's), IdleConnTimeout and MaxResponseHeaderBytes.
func NewTransport(t *http.Transport) *Transport {
	d := t.DialContext
	if d == nil {
		d = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr := &Transport{fallback: t, dial: d, maxIdle: t.MaxIdleConnsPerHost, idleTimeout: t.IdleConnTimeout,
		maxHeader: t.MaxResponseHeaderBytes, idle: map[string][]*conn{}}
	if tr.maxIdle == 0 {
		tr.maxIdle = http.DefaultMaxIdleConnsPerHost
	}
	if tr.maxHeader <= 0 {
		tr.maxHeader = defaultMaxHeader
	}
	return tr
}

// RoundTrip sends req (see the type's doc for which requests it carries
// itself).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.direct(req) {
		return t.fallback.RoundTrip(req)
	}
	addr := hostPort(req)
	c, reused, err := t.get(req.Context(), addr, true)
	if err != nil {
		return nil, err
	}
	resp, err := t.exchange(c, req)
	if err != nil && reused && c.read == 0 && req.Context().Err() == nil {
		// The server closed the idle connection as we sent on it.
		if c, _, err = t.get(req.Context(), addr, false); err != nil {
			return nil, err
		}
		resp, err = t.exchange(c, req)
	}
	return resp, err
}

// direct reports whether RoundTrip carries req itself.
func (t *Transport) direct(req *http.Request) bool {
	if req.URL.Scheme != "http" || (req.Method != http.MethodGet && req.Method != http.MethodHead) ||
		(req.Body != nil && req.Body != http.NoBody) || req.Trailer != nil || t.fallback.MaxConnsPerHost > 0 {
		return false
	}
	if req.Header["Upgrade"] != nil || req.Header["Expect"] != nil {
		return false
	}
	if t.fallback.Proxy != nil {
		if u, err := t.fallback.Proxy(req); u != nil || err != nil {
			return false
		}
	}
	return true
}

func hostPort(req *http.Request) string {
	if req.URL.Port() != "" {
		return req.URL.Host
	}
	return net.JoinHostPort(req.URL.Hostname(), "80")
}

// conn is one connection to an origin. Its reads count the bytes of the
// response in progress and stop past limit while the head is being read.
type conn struct {
	net.Conn
	addr   string
	br     *bufio.Reader
	bw     *bufio.Writer
	limit  int64 // what the head may still read
	read   int64 // bytes read for the current request
	idleAt time.Time
}

var errHeadTooLarge = errors.New("origins: response head too large")

func (c *conn) Read(p []byte) (int, error) {
	if c.limit <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.Conn.Read(p)
	c.limit -= int64(n)
	c.read += int64(n)
	return n, err
}

// get returns an idle connection to addr (when idleOK) or a new one, and
// whether it was idle.
func (t *Transport) get(ctx context.Context, addr string, idleOK bool) (*conn, bool, error) {
	if idleOK {
		if c := t.takeIdle(addr); c != nil {
			return c, true, nil
		}
	}
	nc, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	c := &conn{Conn: nc, addr: addr}
	c.br = bufio.NewReader(c)
	c.bw = bufio.NewWriter(nc)
	return c, false, nil
}

func (t *Transport) takeIdle(addr string) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	for l := t.idle[addr]; len(l) > 0; l = t.idle[addr] {
		c := l[len(l)-1]
		l[len(l)-1] = nil
		t.idle[addr] = l[:len(l)-1]
		if t.idleTimeout <= 0 || time.Since(c.idleAt) < t.idleTimeout {
			return c
		}
		_ = c.Close()
	}
	return nil
}

// put keeps c for the next request to its address, or closes it when
// that address has its share of idle connections.
func (t *Transport) put(c *conn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	l := t.idle[c.addr]
	if len(l) >= t.maxIdle {
		t.mu.Unlock()
		_ = c.Close()
		return
	}
	t.idle[c.addr] = append(l, c)
	if t.sweep == nil && t.idleTimeout > 0 {
		t.sweep = time.AfterFunc(t.idleTimeout, t.closeExpired)
	}
	t.mu.Unlock()
}

// closeExpired closes the connections idle for longer than idleTimeout
// (a connection nobody asks for would otherwise stay open until Close).
func (t *Transport) closeExpired() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep = nil
	for addr, l := range t.idle {
		keep := l[:0]
		for _, c := range l {
			if time.Since(c.idleAt) >= t.idleTimeout {
				_ = c.Close()
			} else {
				keep = append(keep, c)
			}
		}
		clear(l[len(keep):])
		if len(keep) == 0 {
			delete(t.idle, addr)
			continue
		}
		t.idle[addr] = keep
	}
	if len(t.idle) > 0 {
		t.sweep = time.AfterFunc(t.idleTimeout/2, t.closeExpired)
	}
}

// CloseIdleConnections closes the idle connections, this Transport's and
// its fallback's.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	for _, l := range t.idle {
		for _, c := range l {
			_ = c.Close()
		}
	}
	clear(t.idle)
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	t.mu.Unlock()
	t.fallback.CloseIdleConnections()
}

// aLongTimeAgo is a deadline that ends any blocked read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes req on c and reads the final response's head. On an
// error c is closed.
func (t *Transport) exchange(c *conn, req *http.Request) (resp *http.Response, err error) {
	ctx := req.Context()
	c.read, c.limit = 0, t.maxHeader
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
	defer func() {
		if err != nil {
			stop()
			_ = c.Close()
			if ctx.Err() != nil {
				err = fmt.Errorf("origins: %w (%w)", ctx.Err(), err)
			}
		}
	}()
	if err := req.Write(c.bw); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	trace := httptrace.ContextClientTrace(ctx)
	for n := 0; ; n++ {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || n == max1xx {
			return nil, fmt.Errorf("origins: unexpected %d response", resp.StatusCode)
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
	c.limit = math.MaxInt64
	b := &connBody{t: t, c: c, rc: resp.Body, stop: stop, keep: !resp.Close && !req.Close, ctx: ctx}
	if resp.Body == http.NoBody {
		b.finish(stateEOF)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// connBody is a response body read straight off its connection. Close may
// come from another goroutine than Read (it ends a blocked Read).
type connBody struct {
	t     *Transport
	c     *conn
	rc    io.ReadCloser // net/http's framing (length, chunks) over c.br
	stop  func() bool   // unregisters the context's deadline setter
	keep  bool          // the connection may serve another request
	ctx   context.Context
	state atomic.Int32
}

const (
	stateOpen = iota
	stateEOF
	stateClosed
)

func (b *connBody) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case stateEOF:
		return 0, io.EOF
	case stateClosed:
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(stateEOF)
	case err != nil:
		b.finish(stateClosed)
		if b.ctx.Err() != nil {
			err = fmt.Errorf("origins: %w (%w)", b.ctx.Err(), err)
		}
	}
	return n, err
}

// Close ends the body; a body not read to its end closes its connection.
func (b *connBody) Close() error {
	b.finish(stateClosed)
	return nil
}

// finish moves the body out of stateOpen once: to stateEOF, which gives
// the connection back when it may be reused, or to stateClosed.
func (b *connBody) finish(to int32) {
	if !b.state.CompareAndSwap(stateOpen, to) {
		return
	}
	fired := !b.stop()
	if to == stateEOF && b.keep && !fired {
		b.t.put(b.c)
		return
	}
	_ = b.c.Close()
}
