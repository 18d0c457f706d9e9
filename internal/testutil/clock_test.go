package testutil

import (
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	c := NewClock()
	before := time.Now()
	if d := c.Now().Sub(before); d < 0 || d > time.Second {
		t.Fatalf("a new clock is %v off the real time", d)
	}
	c.Advance(time.Hour)
	c.Advance(-time.Hour) // ignored
	if d := time.Until(c.Now()); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("after Advance(1h): %v ahead, want 1h", d)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	if d := time.Until(c.Now()); d < time.Hour+799*time.Millisecond || d > time.Hour+801*time.Millisecond+time.Second {
		t.Fatalf("after 800 concurrent 1ms advances: %v ahead, want 1h0.8s", d)
	}
}
