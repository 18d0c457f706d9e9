package wasm

import "sync"

// Guest log lines are rate-limited per plugin: a burst of LogBurst lines,
// then one per LogInterval. Lines over the limit are dropped and counted;
// the next line that is logged carries the count of those dropped before
// it ("suppressed=N"), so that a flood is visible without flooding.
const (
	// LogBurst is how many guest log lines may follow one another with no
	// wait.
	LogBurst = 10
	// LogInterval is the rate at which the burst refills: one line per
	// interval.
	LogInterval = 100_000_000 // 100 ms, in nanoseconds of nanotime
)

// logLimiter is a token bucket of LogBurst lines refilled at one per
// LogInterval. Guest log lines are rare next to calls: a mutex is enough.
type logLimiter struct {
	mu         sync.Mutex
	tokens     int64
	last       int64 // nanotime of the last refill; 0: never used (full)
	suppressed int64 // lines dropped since the last line logged
}

// allow reports whether a line may be logged at now, and how many lines
// were dropped before it (reset once reported).
func (l *logLimiter) allow(now int64) (ok bool, suppressed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == 0 {
		l.tokens, l.last = LogBurst, now
	}
	if n := (now - l.last) / LogInterval; n > 0 {
		l.tokens = min(LogBurst, l.tokens+n)
		l.last += n * LogInterval
	}
	if l.tokens == 0 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
