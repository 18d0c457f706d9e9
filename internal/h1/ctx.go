package h1

import (
	"context"
	"sync"
)

// reqCtx is a fast-path request's context. Like net/http's, it is
// canceled when the client hangs up during the request and when the
// request ends; unlike net/http's, it watches the connection only once
// something asks for Done — code that never waits on the context (a cache
// hit) costs no goroutine, no read and no deadline change. It is reused
// for the connection's next request unless Done was called (conn.nextCtx):
// nothing may keep it past the handler but context.WithoutCancel, which
// reads only the embedded Context, set once.
type reqCtx struct {
	context.Context // the connection's: values, never canceled
	c               *conn
	pipelined       bool // the next request's bytes were already read: nothing to watch

	mu       sync.Mutex
	done     chan struct{}
	err      error
	watching bool
	ended    bool
}

// Done starts the watch for a hang-up on its first call.
func (x *reqCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		} else if !x.ended && !x.pipelined {
			x.c.startWatch(x)
		}
	}
	return x.done
}

func (x *reqCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// cancel ends the context (once).
func (x *reqCtx) cancel() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil {
		return
	}
	x.err = context.Canceled
	if x.done != nil {
		close(x.done)
	}
}

func (x *reqCtx) String() string { return "h1.requestContext" }
