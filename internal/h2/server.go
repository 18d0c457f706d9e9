package h2

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Defaults of a Server's zero fields.
const (
	// DefaultMaxConcurrentStreams is net/http's: the streams a client may
	// have open (and handlers running) on one connection.
	DefaultMaxConcurrentStreams = 250
	// DefaultMaxHeaderListBytes bounds a request's decoded header list.
	DefaultMaxHeaderListBytes = 64 << 10
	// DefaultPrefaceTimeout bounds the client preface and first SETTINGS.
	DefaultPrefaceTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a connection without streams after it.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultWriteTimeout bounds one write of the connection's frames: a
	// client that stops reading cannot hold a handler forever.
	DefaultWriteTimeout = 30 * time.Second
	// shutdownPoll is how often Shutdown looks for connections that ended.
	shutdownPoll = 20 * time.Millisecond
)

// Server serves HTTP/2 connections handed to ServeConn.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// MaxConcurrentStreams, MaxHeaderListBytes: see the defaults.
	MaxConcurrentStreams int
	MaxHeaderListBytes   int
	// PrefaceTimeout bounds the client's preface (net/http's
	// ReadHeaderTimeout plays this part for its server).
	PrefaceTimeout time.Duration
	IdleTimeout    time.Duration
	WriteTimeout   time.Duration
	// ConnContext, if set, gives each connection the context its
	// requests' contexts derive from.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ErrorLog receives handler panics; nil means the log package's.
	ErrorLog *log.Logger

	inShutdown atomic.Bool
	mu         sync.Mutex
	conns      map[*conn]struct{}

	stats Stats
}

// Stats counts what the server did; read with atomic loads.
type Stats struct {
	// Streams is the number of requests handed to the handler.
	Streams atomic.Uint64
	// Detached is the number of handlers that left the read loop to
	// block (or started on their own goroutine for a request body).
	Detached atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

func (s *Server) maxStreams() int {
	return orDefault(s.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// ServeConn serves HTTP/2 on c, whose client preface has not been read.
// It may return before the connection ends: when a handler blocks, the
// connection goes on on another goroutine.
func (s *Server) ServeConn(c net.Conn) {
	if s.inShutdown.Load() {
		_ = c.Close()
		return
	}
	cc := newConn(s, c)
	if !s.track(cc, true) {
		_ = c.Close()
		return
	}
	if !cc.handshake() {
		cc.shut()
		return
	}
	cc.readLoop()
}

func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.inShutdown.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

// Shutdown sends every connection GOAWAY, waits for their streams to
// finish (closing each connection when it has none left), and closes what
// remains when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	for _, c := range s.list() {
		c.goAway(http2.ErrCodeNo)
	}
	t := time.NewTicker(shutdownPoll)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			for _, c := range s.list() {
				c.close()
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Server) list() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func tlsState(c net.Conn) *tls.ConnectionState {
	type stater interface{ ConnectionState() tls.ConnectionState }
	if tc, ok := c.(stater); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}
