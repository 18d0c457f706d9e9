package gateway

import (
	"sync"
	"sync/atomic"
	"time"
)

// localInvalidationGrace is how long a key this gateway invalidated is read
// past its L1. Valkey's tracking invalidation reaches the L1 through a push
// on another connection, a moment after the DEL's reply: without this, a
// client that writes through this gateway could read its old value back
// from this gateway's L1 for a few milliseconds.
const localInvalidationGrace = time.Second

// recentKeys are the keys this gateway deleted or purged in the last
// localInvalidationGrace. When there are none (almost always), checking
// costs one atomic load.
type recentKeys struct {
	n    atomic.Int64
	adds atomic.Int64
	m    sync.Map // key string → unix ns until which the L1 is not trusted
}

// sweepEvery is how many adds pass between sweeps of the expired keys, so
// that keys never looked up again do not pile up.
const sweepEvery = 1024

func (r *recentKeys) add(keys ...string) {
	now := time.Now()
	until := now.Add(localInvalidationGrace).UnixNano()
	for _, k := range keys {
		if _, loaded := r.m.Swap(k, until); !loaded {
			r.n.Add(1)
		}
	}
	if r.adds.Add(int64(len(keys)))%sweepEvery < int64(len(keys)) {
		r.sweep(now.UnixNano())
	}
}

// sweep forgets the keys whose grace ended before now.
func (r *recentKeys) sweep(now int64) {
	r.m.Range(func(k, v any) bool {
		if v.(int64) <= now && r.m.CompareAndDelete(k, v) {
			r.n.Add(-1)
		}
		return true
	})
}

// has reports whether key was invalidated here recently; it forgets keys
// whose grace has passed.
func (r *recentKeys) has(key string, now int64) bool {
	if r.n.Load() == 0 {
		return false
	}
	v, ok := r.m.Load(key)
	if !ok {
		return false
	}
	if now < v.(int64) {
		return true
	}
	if r.m.CompareAndDelete(key, v) {
		r.n.Add(-1)
	}
	return false
}
