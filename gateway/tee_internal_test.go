package gateway

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestTeePassBounded: once a body crosses max_body_bytes, the tee reads
// at most passWindow (and the piece being filled) ahead of a reader that
// does not read, instead of the rest of the body; the reader then gets
// every byte, in order, and the budget is whole again once it leaves.
func TestTeePassBounded(t *testing.T) {
	const maxBody = 300 << 10
	body := strings.Repeat("0123456789abcdef", 2<<20/16) // 2 MiB, at once
	var b fillBudget
	tt := newTee(strings.NewReader(body), -1, maxBody, &b, 1<<30)
	tt.readHead()
	if tt.ended || tt.pass != "" {
		t.Fatalf("after the first piece: ended %v, pass %q", tt.ended, tt.pass)
	}
	rd := &teeReader{}
	tt.readers, tt.streaming = []*teeReader{rd}, true
	done := make(chan struct{})
	go func() { tt.readAll(); tt.finish(); close(done) }()

	bound := int64(maxBody+1) + passWindow + passChunk
	waitTee(t, func() bool { tt.mu.Lock(); defer tt.mu.Unlock(); return tt.pass != "" })
	time.Sleep(100 * time.Millisecond) // room for a tee that ignored the window to read on
	tt.mu.Lock()
	n := tt.n
	tt.mu.Unlock()
	if n > bound {
		t.Fatalf("read %d bytes ahead of a reader at 0, bound %d", n, bound)
	}
	var got bytes.Buffer
	for {
		p, end, err := tt.next(rd, true)
		if len(p) > 0 {
			got.Write(p)
			tt.advance(rd, len(p))
			continue
		}
		if end {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	<-done
	tt.detach(rd)
	if got.String() != body {
		t.Fatalf("the reader got %d bytes, not the body's %d", got.Len(), len(body))
	}
	if u := b.used.Load(); u != 0 {
		t.Fatalf("%d bytes still reserved", u)
	}
}

func waitTee(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
