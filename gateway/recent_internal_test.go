package gateway

import (
	"strconv"
	"testing"
	"time"
)

// TestRecentKeysForget: keys are trusted again after the grace, and keys
// never looked up again are swept, so the set stays bounded.
func TestRecentKeysForget(t *testing.T) {
	var r recentKeys
	for i := range 3 * sweepEvery {
		r.add("k" + strconv.Itoa(i))
	}
	now := time.Now().UnixNano()
	if !r.has("k1", now) || r.has("other", now) {
		t.Fatal("membership within the grace")
	}
	later := time.Now().Add(2 * localInvalidationGrace).UnixNano()
	if r.has("k2", later) {
		t.Fatal("still untrusted after the grace")
	}
	r.sweep(later)
	if n := r.n.Load(); n != 0 {
		t.Fatalf("%d keys left after a sweep past the grace", n)
	}
	count := 0
	r.m.Range(func(any, any) bool { count++; return true })
	if count != 0 {
		t.Fatalf("%d entries left in the map", count)
	}
}
