package policies

import "time"

// ParseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7) in one of its three
// forms, and nothing else:
//
//	IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//	RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
//	asctime      Sun Nov  6 08:49:37 1994
//
// Matching is exact: one space between fields (asctime pads a one-digit
// day with a second space, which is the only double space allowed), two
// digits for hour, minute and second, "GMT" in upper case, case-sensitive
// day and month names, no leading or trailing whitespace. A second of 60
// (a leap second) is accepted and rolls over. The day name is checked to
// be a day name but not against the date, so a wrong weekday is not
// enough to expire a response. RFC 850's two-digit year is read as the
// most recent year with those digits that is not more than 50 years in the
// future (§5.6.7), relative to the current year.
//
// It does not allocate.
func ParseHTTPDate(s string) (time.Time, bool) {
	return parseHTTPDate(s, time.Now().UTC().Year())
}

// ParseHTTPDateField parses a field that holds one HTTP-date, such as
// Expires, Date or Last-Modified, as http.Header holds it: a field sent on
// more than one line is invalid, as is an empty one. RFC 9111 §5.3 makes
// an invalid Expires mean "already expired".
func ParseHTTPDateField(values []string) (time.Time, bool) {
	if len(values) != 1 {
		return time.Time{}, false
	}
	return ParseHTTPDate(values[0])
}

func parseHTTPDate(s string, nowYear int) (time.Time, bool) {
	switch {
	case len(s) == len("Sun, 06 Nov 1994 08:49:37 GMT") && s[3] == ',':
		if !isDayName(s[:3]) || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25:] != " GMT" {
			return time.Time{}, false
		}
		day, ok1 := digits(s[5:7])
		mon, ok2 := month(s[8:11])
		year, ok3 := digits(s[12:16])
		if !ok1 || !ok2 || !ok3 {
			return time.Time{}, false
		}
		return clock(year, mon, day, s[17:25])
	case len(s) == len("Sun Nov  6 08:49:37 1994") && s[3] == ' ':
		if !isDayName(s[:3]) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' {
			return time.Time{}, false
		}
		mon, ok1 := month(s[4:7])
		var day int
		var ok2 bool
		if s[8] == ' ' {
			day, ok2 = digits(s[9:10])
		} else {
			day, ok2 = digits(s[8:10])
			ok2 = ok2 && day >= 10 // a one-digit day is padded with a space, not a zero
		}
		year, ok3 := digits(s[20:24])
		if !ok1 || !ok2 || !ok3 {
			return time.Time{}, false
		}
		return clock(year, mon, day, s[11:19])
	}
	// RFC 850: a full day name, then ", DD-Mon-YY HH:MM:SS GMT".
	comma := -1
	for i := 0; i < len(s) && i <= len("Wednesday"); i++ {
		if s[i] == ',' {
			comma = i
			break
		}
	}
	if comma < 0 || !isLongDayName(s[:comma]) {
		return time.Time{}, false
	}
	r := s[comma:]
	if len(r) != len(", 06-Nov-94 08:49:37 GMT") || r[1] != ' ' || r[4] != '-' || r[8] != '-' || r[11] != ' ' || r[20:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(r[2:4])
	mon, ok2 := month(r[5:8])
	yy, ok3 := digits(r[9:11])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	year := nowYear - nowYear%100 + yy
	if year > nowYear+50 {
		year -= 100
	}
	return clock(year, mon, day, r[12:20])
}

// clock parses "HH:MM:SS" and builds the time, rejecting a day the month
// does not have.
func clock(year int, mon time.Month, day int, hms string) (time.Time, bool) {
	if hms[2] != ':' || hms[5] != ':' {
		return time.Time{}, false
	}
	h, ok1 := digits(hms[0:2])
	m, ok2 := digits(hms[3:5])
	sec, ok3 := digits(hms[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 || day < 1 || day > daysIn(mon, year) {
		return time.Time{}, false
	}
	return time.Date(year, mon, day, h, m, sec, 0, time.UTC), true
}

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// digits parses a run of ASCII digits (no sign, not empty).
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func month(s string) (time.Month, bool) {
	switch s {
	case "Jan":
		return time.January, true
	case "Feb":
		return time.February, true
	case "Mar":
		return time.March, true
	case "Apr":
		return time.April, true
	case "May":
		return time.May, true
	case "Jun":
		return time.June, true
	case "Jul":
		return time.July, true
	case "Aug":
		return time.August, true
	case "Sep":
		return time.September, true
	case "Oct":
		return time.October, true
	case "Nov":
		return time.November, true
	case "Dec":
		return time.December, true
	}
	return 0, false
}

func isDayName(s string) bool {
	switch s {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

func isLongDayName(s string) bool {
	switch s {
	case "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday":
		return true
	}
	return false
}
