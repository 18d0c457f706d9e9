package admin

import (
	"fmt"
	"testing"
	"time"
)

// TestLoginLimiter drives the per-address token bucket on a clock of its
// own: the burst, the wait it reports, the refill, the refund of a right
// token, addresses apart (IPv6 by /64) and the bound on addresses kept.
func TestLoginLimiter(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var l loginLimiter
	const a = "192.0.2.1:5000"
	for i := range LoginBurst {
		if w := l.take(a, t0); w != 0 {
			t.Fatalf("attempt %d held for %v", i+1, w)
		}
	}
	if w := l.take(a, t0); w != LoginInterval {
		t.Fatalf("past the burst: wait %v, want %v", w, LoginInterval)
	}
	if w := l.take("192.0.2.1:6000", t0.Add(LoginInterval/4)); w != LoginInterval*3/4 {
		t.Fatalf("another port of the address, a quarter later: wait %v", w)
	}
	if w := l.take("192.0.2.2:5000", t0); w != 0 {
		t.Fatalf("another address held: %v", w)
	}
	// One interval on, one attempt; a right token gives it back.
	t1 := t0.Add(LoginInterval)
	if w := l.take(a, t1); w != 0 {
		t.Fatalf("after an interval: wait %v", w)
	}
	l.refund(a, t1)
	if w := l.take(a, t1); w != 0 {
		t.Fatalf("after a refund: wait %v", w)
	}
	if w := l.take(a, t1); w == 0 {
		t.Fatal("two attempts from one interval's refill")
	}
	// IPv6: one bucket per /64.
	for i := range LoginBurst {
		l.take(fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1), t0)
	}
	if w := l.take("[2001:db8:1:2:ffff::1]:443", t0); w == 0 {
		t.Error("a fresh address in the same /64 is not held")
	}
	if w := l.take("[2001:db8:1:3::1]:443", t0); w != 0 {
		t.Errorf("another /64 is held: %v", w)
	}
	if w := l.take("[::ffff:192.0.2.1]:5000", t1); w == 0 {
		t.Error("an IPv4-mapped address escapes its IPv4 bucket")
	}
	// Bounded: past adminLimitAddrs, addresses with full buckets are forgotten first.
	var m loginLimiter
	m.take(a, t0) // held back by one attempt, never refilled below
	for i := range adminLimitAddrs + 100 {
		key := fmt.Sprintf("10.%d.%d.%d:1", i>>16, i>>8&255, i&255)
		m.take(key, t0)
		m.refund(key, t0) // a right token: full again
	}
	if n := len(m.buckets); n > adminLimitAddrs {
		t.Errorf("%d addresses kept, bound %d", n, adminLimitAddrs)
	}
	if b := m.buckets[limitKey(a)]; b == nil || b.tokens >= LoginBurst {
		t.Error("an address with failures was forgotten before ones without")
	}
}

// TestSessions: a session is valid until it expires or ends; the store
// is bounded.
func TestSessions(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var s sessions
	v := s.start(t0)
	if !s.valid(v, t0) || !s.valid(v, t0.Add(SessionTTL-time.Second)) || s.valid(v, t0.Add(SessionTTL)) {
		t.Fatal("a session's lifetime is not SessionTTL")
	}
	w := s.start(t0)
	s.end(v)
	if s.valid(v, t0) || !s.valid(w, t0) {
		t.Fatal("end ended the wrong session")
	}
	for i := range MaxSessions + 10 {
		s.start(t0.Add(time.Duration(i+1) * time.Millisecond))
	}
	if n := len(s.live); n > MaxSessions {
		t.Fatalf("%d sessions kept, bound %d", n, MaxSessions)
	}
	if s.valid(w, t0) {
		t.Error("the oldest session outlived the bound")
	}
}
