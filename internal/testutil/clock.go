package testutil

import (
	"sync/atomic"
	"time"
)

// Clock is a test clock for code that takes a func() time.Time (such as
// gateway.Options.Now): real time plus whatever Advance added, so that a
// test makes an entry stale by advancing it instead of sleeping, while
// durations it does not control (an origin's latency, an Age) still pass
// as they do. Safe for concurrent use; it never goes backwards.
type Clock struct {
	offset atomic.Int64 // ns added to the real time
}

// NewClock returns a clock that reads the real time until advanced.
func NewClock() *Clock { return &Clock{} }

// Now is the real time plus the advances so far.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward by d (a negative d is ignored: a clock
// going backwards is not what the code under test must handle here).
func (c *Clock) Advance(d time.Duration) {
	if d > 0 {
		c.offset.Add(int64(d))
	}
}
