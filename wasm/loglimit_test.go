package wasm

import "testing"

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	const t0 = int64(1)
	cases := []struct {
		name           string
		at             int64 // nanotime
		lines          int
		wantLogged     int
		wantSuppressed int64 // reported by the first line logged
	}{
		{"a burst passes", t0, LogBurst, LogBurst, 0},
		{"past the burst, dropped", t0, 5, 0, 0},
		{"one interval later: one line, with the count", t0 + LogInterval, 3, 1, 5},
		{"the count is reported once", t0 + 2*LogInterval, 1, 1, 2},
		{"a long pause refills the burst, no more", t0 + 100*LogInterval, LogBurst + 1, LogBurst, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logged, first := 0, int64(-1)
			for range tc.lines {
				ok, s := l.allow(tc.at)
				if ok {
					if first < 0 {
						first = s
					}
					logged++
				}
			}
			if logged != tc.wantLogged {
				t.Errorf("%d lines logged, want %d", logged, tc.wantLogged)
			}
			if tc.wantLogged > 0 && first != tc.wantSuppressed {
				t.Errorf("first line reports %d suppressed, want %d", first, tc.wantSuppressed)
			}
		})
	}
}
