// Package h1 is the traffic listener's HTTP/1.1 connection loop: a lean
// server for the requests a cache answers most, handing everything else
// to net/http.
//
// A cache hit costs little more than the HTTP around it, and with Go's
// net/http that HTTP is most of the CPU: per request it allocates a
// context with a cancel function, starts a goroutine that watches the
// connection for a hang-up (a read, two deadline changes and a wake-up),
// builds the response through two buffered writers and sorts the response
// headers. This package serves a bodiless HTTP/1.1 GET or HEAD on its own
// loop instead: one read of the request head into a per-connection
// buffer, one parse into an ordinary *http.Request (the connection's,
// reused: see Ownership below), the same http.Handler,
// and one write of the response. The watch for a hang-up starts only when
// the handler asks for the request context's Done channel (an origin fetch
// does; a hit does not).
//
// The first request it does not serve in its plainest form — another
// method, a body, Expect, Upgrade, HTTP/1.0, an oversized or unusual head,
// anything malformed — hands the connection, with the bytes already read,
// to Fallback (as soon as the head's complete lines show it: an HTTP/0.9
// request line is net/http's to answer 400 at once, not after a wait), an *http.Server with the same handler, for the rest of the
// connection's life. net/http then parses and answers it exactly as it
// would have without this package, errors (400, 431, 505) included. The
// fast path never has to be right about a request it was unsure of.
//
// Ownership: a fast-path request is the connection's, reused for its next
// request, so that a keep-alive hit allocates nothing (net/http allocates
// six objects per request, and at tens of thousands of hits a second the
// GC they cause is where a quiet connection's tail latency goes). Nothing
// may keep the *http.Request, its Header map, its URL or its context
// after the handler returns: work that outlives it (a background refresh,
// a fill that streams on for others) copies what it needs first —
// r.Clone, Header.Clone, a copy of the URL, context.WithoutCancel (which
// asks the context only for values, and those never change). Strings are
// safe to keep: the head's text and its header value slices come from a
// per-connection arena that is filled forward and never rewritten (a
// full chunk is left to the GC). A request whose handler asked for its
// context's Done channel leaves that context to whoever holds it: the
// next request gets a new one.
//
// What differs from net/http on the fast path, by design: response header
// order is the map's (not sorted); a hang-up is noticed only while the
// handler waits on the context; an idle keep-alive connection is closed
// after between IdleTimeout/2 and IdleTimeout (the deadline is moved at
// most once per half period, not once per request).
package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.1 on a listener; see the package documentation.
// Its zero value is not usable: Handler and Fallback are required.
type Server struct {
	// Handler answers every request the fast path serves.
	Handler http.Handler
	// Fallback serves the connections handed to it (its Handler should be
	// Handler too). Its Serve runs on a listener of handed-over
	// connections; Shutdown shuts it down with this server. Serve wraps
	// its ConnContext and Handler so that the requests of a TLS
	// connection handed over after its first bytes were read still carry
	// r.TLS (net/http only knows a *tls.Conn's state, and it gets a
	// connection that replays those bytes).
	Fallback *http.Server
	// HTTP2, if set, serves the TLS connections that chose h2 by ALPN
	// (after the handshake) and the plain ones that open with HTTP/2's
	// preface (h2c with prior knowledge) instead of Fallback, and shuts
	// down with this server (internal/h2's Server).
	HTTP2 interface {
		ServeConn(c net.Conn)
		Shutdown(ctx context.Context) error
	}
	// ReadHeaderTimeout bounds the reading of a request head: from the
	// accept for a connection's first request (a connection that sends
	// nothing is closed after it, as in net/http), from its first byte
	// for a later one, from the end of the previous request for one
	// pipelined behind it.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits longer than
	// it for its next request, once a request has been served. Zero
	// means ReadHeaderTimeout.
	IdleTimeout time.Duration
	// ConnContext, if set, gives each connection the context its
	// requests' contexts derive from (values only: nothing cancels it).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ErrorLog receives handler panics; nil means the log package's
	// standard logger.
	ErrorLog *log.Logger

	inShutdown atomic.Bool
	mu         sync.Mutex
	listener   net.Listener
	handoff    *handoff
	conns      map[*conn]struct{}
	fallback   chan error // Fallback.Serve's result

	stats Stats
}

// Stats counts what the fast path did. Its fields are read with atomic
// loads (see Server.Stats).
type Stats struct {
	// Requests is the number of requests served on the fast path.
	Requests atomic.Uint64
	// HandedOver is the number of connections given to Fallback.
	HandedOver atomic.Uint64
	// Watches is the number of requests whose handler asked for the
	// context's Done channel, starting a watch for a hang-up.
	Watches atomic.Uint64
	// HungUp is the number of watched requests whose client went away.
	HungUp atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Serve accepts connections on ln and serves them until Shutdown, when it
// returns http.ErrServerClosed. It starts Fallback on the listener of
// handed-over connections.
func (s *Server) Serve(ln net.Listener) error {
	if s.Handler == nil || s.Fallback == nil {
		return errors.New("h1: Server needs a Handler and a Fallback")
	}
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if s.listener != nil {
		s.mu.Unlock()
		return errors.New("h1: Serve called twice")
	}
	s.listener = ln
	s.handoff = newHandoff(ln.Addr())
	s.conns = make(map[*conn]struct{})
	s.fallback = make(chan error, 1)
	s.mu.Unlock()
	keepTLS(s.Fallback)
	go func() { s.fallback <- s.Fallback.Serve(s.handoff) }()

	var delay time.Duration // backoff on temporary accept errors, as net/http
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("h1: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(rw)
		if !s.track(c, true) {
			_ = rw.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops accepting, closes idle connections, waits for the
// requests in flight to finish (their connections close after their
// response), and shuts Fallback down, all within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	var lerr error
	if s.listener != nil {
		lerr = s.listener.Close()
	}
	started := s.handoff != nil
	s.mu.Unlock()

	ferr := make(chan error, 1)
	go func() {
		var h2err error
		if s.HTTP2 != nil {
			h2err = s.HTTP2.Shutdown(ctx)
		}
		ferr <- errors.Join(s.Fallback.Shutdown(ctx), h2err)
	}()

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		case <-tick.C:
		}
	}
	err = errors.Join(err, <-ferr)
	if started {
		if serr := <-s.fallback; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	if lerr != nil && !errors.Is(lerr, net.ErrClosed) {
		err = errors.Join(err, lerr)
	}
	return err
}

// closeIdle wakes every connection waiting for a request (it sees the
// shutdown and closes) and reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.rwc.SetReadDeadline(aLongTimeAgo)
		}
	}
	return len(s.conns) == 0
}

// track adds or removes c; adding fails once the server shuts down.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	return true
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// aLongTimeAgo is a read deadline that has passed: it wakes a blocked
// read at once.
var aLongTimeAgo = time.Unix(1, 0)

// handoff is the listener Fallback serves: it yields the connections the
// fast path handed over.
type handoff struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

// give hands c to Fallback; false if Fallback has shut down.
func (h *handoff) give(c net.Conn) bool {
	select {
	case h.ch <- c:
		return true
	case <-h.done:
		return false
	}
}

// replayConn is a handed-over connection: it reads the bytes the fast path
// had already read before the rest of the stream.
type replayConn struct {
	net.Conn
	buf []byte
	tls *tls.ConnectionState // when Conn is a *tls.Conn: its state
}

type tlsKey struct{}

// keepTLS makes fb's requests on a replayed TLS connection carry its
// state in r.TLS: the connection's context holds it, the handler copies
// it into the request. Connections net/http sees as *tls.Conn (h2, or a
// handshake it reports) have r.TLS from net/http already.
func keepTLS(fb *http.Server) {
	cc, h := fb.ConnContext, fb.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	fb.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if cc != nil {
			ctx = cc(ctx, c)
		}
		if rc, ok := c.(*replayConn); ok && rc.tls != nil {
			ctx = context.WithValue(ctx, tlsKey{}, rc.tls)
		}
		return ctx
	}
	fb.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(tlsKey{}).(*tls.ConnectionState); ok && r.TLS == nil {
			r2 := *r // a shallow copy, as http.StripPrefix makes
			r2.TLS = st
			r = &r2
		}
		h.ServeHTTP(w, r)
	})
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
