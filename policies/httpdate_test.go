package policies

import (
	"net/http"
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Time // zero: invalid
	}{
		{"imf-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", want},
		{"rfc850", "Sunday, 06-Nov-94 08:49:37 GMT", want},
		{"asctime padded day", "Sun Nov  6 08:49:37 1994", want},
		{"asctime two-digit day", "Thu Nov 24 08:49:37 1994", time.Date(1994, 11, 24, 8, 49, 37, 0, time.UTC)},
		{"wrong weekday accepted", "Mon, 06 Nov 1994 08:49:37 GMT", want},
		{"leap second rolls over", "Sun, 06 Nov 1994 08:49:60 GMT", time.Date(1994, 11, 6, 8, 50, 0, 0, time.UTC)},
		{"leap day", "Thu, 29 Feb 2024 00:00:00 GMT", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"rfc850 year in the future within 50", "Friday, 01-Jan-60 00:00:00 GMT", time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"rfc850 year more than 50 ahead is past", "Friday, 01-Jan-99 00:00:00 GMT", time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)},

		{"empty", "", time.Time{}},
		{"two spaces", "Sun,  06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"one-digit hour", "Sun, 06 Nov 1994 8:49:37 GMT", time.Time{}},
		{"one-digit day", "Sun, 6 Nov 1994 08:49:37 GMT", time.Time{}},
		{"trailing space", "Sun, 06 Nov 1994 08:49:37 GMT ", time.Time{}},
		{"leading space", " Sun, 06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"not GMT", "Sun, 06 Nov 1994 08:49:37 UTC", time.Time{}},
		{"lower-case gmt", "Sun, 06 Nov 1994 08:49:37 gmt", time.Time{}},
		{"numeric zone", "Sun, 06 Nov 1994 08:49:37 +0000", time.Time{}},
		{"lower-case month", "Sun, 06 nov 1994 08:49:37 GMT", time.Time{}},
		{"bad day name", "Sum, 06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"hour 24", "Sun, 06 Nov 1994 24:00:00 GMT", time.Time{}},
		{"minute 60", "Sun, 06 Nov 1994 08:60:00 GMT", time.Time{}},
		{"second 61", "Sun, 06 Nov 1994 08:49:61 GMT", time.Time{}},
		{"Feb 30", "Sun, 30 Feb 1994 08:49:37 GMT", time.Time{}},
		{"Feb 29 not leap", "Sun, 29 Feb 1900 08:49:37 GMT", time.Time{}},
		{"day 00", "Sun, 00 Nov 1994 08:49:37 GMT", time.Time{}},
		{"rfc850 short day name", "Sun, 06-Nov-94 08:49:37 GMT", time.Time{}},
		{"rfc850 four-digit year", "Sunday, 06-Nov-1994 08:49:37 GMT", time.Time{}},
		{"asctime zero-padded day", "Sun Nov 06 08:49:37 1994", time.Time{}},
		{"asctime with GMT", "Sun Nov  6 08:49:37 1994 GMT", time.Time{}},
		{"asctime one space before one-digit day", "Sun Nov 6 08:49:37 1994", time.Time{}},
		{"sign in year", "Sun, 06 Nov +994 08:49:37 GMT", time.Time{}},
		{"number", "0", time.Time{}},
		{"ISO 8601", "1994-11-06T08:49:37Z", time.Time{}},
		{"newline", "Sun, 06 Nov 1994\n08:49:37 GMT", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseHTTPDate(tt.in, 2026)
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Fatalf("parseHTTPDate(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestParseHTTPDateField(t *testing.T) {
	const d = "Sun, 06 Nov 1994 08:49:37 GMT"
	tests := []struct {
		name   string
		values []string
		ok     bool
	}{
		{"one line", []string{d}, true},
		{"absent", nil, false},
		{"two lines", []string{d, d}, false},
		{"invalid", []string{"0"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := ParseHTTPDateField(tt.values); ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
		})
	}
}

func TestParseHTTPDateAllocs(t *testing.T) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"} {
		if n := testing.AllocsPerRun(100, func() { ParseHTTPDate(s) }); n != 0 {
			t.Errorf("ParseHTTPDate(%q): %v allocs", s, n)
		}
	}
}

// FuzzParseHTTPDate: never panics, and what it accepts formats back to
// itself in IMF-fixdate (the form it is most often sent in) after a round
// trip, so the parse is exact.
func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "", "Sun, 06 Nov 1994 8:49:37 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, ok := ParseHTTPDate(s)
		if !ok {
			return
		}
		imf := tm.Format(http.TimeFormat)
		again, ok := ParseHTTPDate(imf)
		if !ok || !again.Equal(tm) {
			t.Fatalf("%q -> %v -> %q does not parse back", s, tm, imf)
		}
	})
}
