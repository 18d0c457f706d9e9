package testutil

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Handler answers one request to an Origin; n is the request's number on
// its path, from 1.
type Handler func(w http.ResponseWriter, r *http.Request, n int)

// Origin is a real HTTP origin (an httptest.Server on loopback) whose
// answers a test scripts per path, and that records what reaches it: the
// count per path and in all, and the head (method, URL, header) of every
// request. A path without a handler gets the default handler, or 404.
// An optional delay before every answer ends early when the client hangs
// up. Closed when the test ends.
type Origin struct {
	*httptest.Server
	total atomic.Int64
	delay atomic.Int64 // ns

	mu       sync.Mutex
	handlers map[string]Handler
	fallback Handler
	heads    map[string][]*http.Request
}

// NewOrigin starts an origin that answers 404 until scripted.
func NewOrigin(tb testing.TB) *Origin {
	o := &Origin{handlers: map[string]Handler{}, heads: map[string][]*http.Request{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	tb.Cleanup(o.Close)
	return o
}

func (o *Origin) serve(w http.ResponseWriter, r *http.Request) {
	o.total.Add(1)
	head := r.Clone(context.Background())
	head.Body = http.NoBody // a head: the body is the handler's to read
	o.mu.Lock()
	o.heads[r.URL.Path] = append(o.heads[r.URL.Path], head)
	n := len(o.heads[r.URL.Path])
	h := o.handlers[r.URL.Path]
	if h == nil {
		h = o.fallback
	}
	o.mu.Unlock()
	if d := time.Duration(o.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r, n)
}

// Handle scripts the answers on path.
func (o *Origin) Handle(path string, h Handler) {
	o.mu.Lock()
	o.handlers[path] = h
	o.mu.Unlock()
}

// Default scripts the answers on every path without a handler of its own.
func (o *Origin) Default(h Handler) {
	o.mu.Lock()
	o.fallback = h
	o.mu.Unlock()
}

// Respond scripts path to answer always with status, body and the header
// lines kv (name, value, name, value...).
func (o *Origin) Respond(path string, status int, body string, kv ...string) {
	o.Handle(path, func(w http.ResponseWriter, _ *http.Request, _ int) { Reply(w, status, body, kv...) })
}

// SetDelay makes every answer wait d first (0: none).
func (o *Origin) SetDelay(d time.Duration) { o.delay.Store(int64(d)) }

// Count is how many requests reached path.
func (o *Origin) Count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.heads[path])
}

// Total is how many requests reached the origin, on any path.
func (o *Origin) Total() int64 { return o.total.Load() }

// Last is the head of the last request on path, nil if none.
func (o *Origin) Last(path string) *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.heads[path]
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1]
}

// Requests are the heads of the requests on path, in order.
func (o *Origin) Requests(path string) []*http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*http.Request(nil), o.heads[path]...)
}

// Reply writes a response with the header lines kv (name, value, ...),
// status and body. A failed write is not reported: it shows as a wrong
// body at the client, which the test checks.
func Reply(w http.ResponseWriter, status int, body string, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		w.Header().Add(kv[i], kv[i+1])
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
