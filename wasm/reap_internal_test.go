package wasm

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestReapCountsBeforeClose: the instances reap takes out of the pool
// are counted retired by the time the pool no longer counts them live,
// before the filler closes them (a wazero close takes a while). Counted
// after the close, a Stats in between saw one instance and none retired
// (TestPoolGrowsOnDemandAndShrinksWhenIdle failed so in CI).
func TestReapCountsBeforeClose(t *testing.T) {
	var pl pool
	pl.init(4, time.Millisecond)
	for range 4 {
		in := &instance{}
		pl.live[in] = struct{}{}
		pl.put(in)
	}
	var retired atomic.Uint64
	out := pl.reap(nanotime()+int64(time.Second), &retired)
	if len(out) != 3 || pl.liveCount() != 1 || retired.Load() != 3 {
		t.Fatalf("reap took %d, %d live, %d retired; want 3, 1 and 3", len(out), pl.liveCount(), retired.Load())
	}
	if out := pl.reap(nanotime()+int64(time.Second), &retired); len(out) != 0 || retired.Load() != 3 {
		t.Fatalf("the last instance: reap took %d, %d retired; want 0 and 3", len(out), retired.Load())
	}
}
