package gateway

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestReadBody(t *testing.T) {
	body := strings.Repeat("b", 300<<10)
	for _, tc := range []struct {
		name          string
		contentLength int64
		maxBody       int64
		limit         int64
		wantLen       int
		wantStopped   string
	}{
		{"chunked, fits", -1, 1 << 20, 0, len(body), ""},
		{"known length, fits", int64(len(body)), 1 << 20, 0, len(body), ""},
		{"chunked, crosses max_body_bytes", -1, 100 << 10, 0, 100<<10 + 1, detailTooLarge},
		{"over the budget from the start", -1, 1 << 20, 32 << 10, 0, detailFillBudget},
		{"over the budget while growing", -1, 1 << 20, 128 << 10, 128 << 10, detailFillBudget},
		{"known length over the budget", int64(len(body)), 1 << 20, 200 << 10, 0, detailFillBudget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b fillBudget
			// iotest-like: the origin hands out small reads.
			r := io.LimitReader(&slowReader{strings.NewReader(body)}, int64(len(body)))
			// The tee read through without answering (as if nobody
			// followed it): the bounds are those of a whole fill.
			tt := newTee(r, tc.contentLength, tc.maxBody, &b, tc.limit)
			for !tt.ended && tt.pass == "" && tt.readOnce() {
			}
			stopped, hold, err := tt.pass, tt.hold, tt.err
			var whole []byte
			var parts [][]byte
			if stopped == "" {
				whole = tt.whole()
			} else {
				parts = tt.parts()
			}
			buf := whole
			if stopped != "" {
				buf = bytes.Join(parts, nil)
			}
			if err != nil || stopped != tc.wantStopped || len(buf) != tc.wantLen || (stopped == "") != (whole != nil) {
				t.Fatalf("got %d bytes (whole %v), stopped %q, err %v; want %d, %q", len(buf), whole != nil, stopped, err, tc.wantLen, tc.wantStopped)
			}
			if !bytes.Equal(buf, []byte(body[:len(buf)])) {
				t.Fatal("the buffer does not hold the body's bytes")
			}
			if tc.limit > 0 && b.used.Load() > tc.limit {
				t.Fatalf("%d bytes reserved, limit %d", b.used.Load(), tc.limit)
			}
			var capacity int64
			for _, p := range append(parts, whole) {
				capacity += int64(cap(p))
			}
			if b.used.Load() != hold.held || capacity != hold.held {
				t.Fatalf("reserved %d, held %d, buffers' capacity %d", b.used.Load(), hold.held, capacity)
			}
			for _, p := range parts { // as streamLarge does
				hold.releasePart(int64(cap(p)))
			}
			hold.release()
			hold.release()
			if b.used.Load() != 0 {
				t.Fatalf("%d bytes still reserved after release", b.used.Load())
			}
		})
	}
}

type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 10000)]) }
