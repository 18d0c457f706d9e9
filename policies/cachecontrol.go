package policies

import "time"

// MaxDelta is the largest delta-seconds value kept: larger values (and
// overflowing ones) are clamped to it, as RFC 9111 §1.2.2 allows.
const MaxDelta = (1 << 31) * time.Second

// CacheControl is a parsed Cache-Control field (RFC 9111 §5.2), request or
// response. A duration is meaningful only when its Has flag is set.
//
// Parsing choices, for a shared cache, where RFC 9111 leaves room:
//
//   - Directive names are case-insensitive; unknown directives are ignored.
//   - Arguments are accepted in token or quoted-string form ("max-age=5"
//     and `max-age="5"`), per §5.2.
//   - When a directive appears more than once, the first occurrence counts
//     (§4.2.1), across all field lines.
//   - An invalid or missing max-age or s-maxage argument ("max-age=abc",
//     "max-age=-1", "max-age") makes the response stale: HasMaxAge with
//     MaxAge 0 (§4.2.1 encourages treating invalid freshness as stale).
//   - An invalid max-stale, min-fresh, stale-while-revalidate or
//     stale-if-error argument drops the directive: no stale use is granted
//     by a value that cannot be read. max-stale with no argument sets
//     MaxStaleAny.
//   - Qualified no-cache="field" and private="field" count as the
//     unqualified directive: storing the rest of the response while
//     omitting the named fields is allowed but not required, and refusing
//     is the safe choice. The field lists are not kept.
//   - Delta-seconds above MaxDelta are clamped to MaxDelta; durations are
//     never negative.
type CacheControl struct {
	NoStore         bool
	NoCache         bool // also set by the qualified form no-cache="..."
	Private         bool // also set by the qualified form private="..."
	Public          bool
	MustRevalidate  bool
	ProxyRevalidate bool
	MustUnderstand  bool
	NoTransform     bool
	Immutable       bool
	OnlyIfCached    bool

	MaxAge               time.Duration
	SMaxAge              time.Duration
	MaxStale             time.Duration
	MinFresh             time.Duration
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration

	HasMaxAge   bool
	HasSMaxAge  bool
	HasMaxStale bool
	HasMinFresh bool
	HasSWR      bool
	HasSIE      bool
	// MaxStaleAny is max-stale without an argument: any staleness is
	// accepted (HasMaxStale is set too).
	MaxStaleAny bool
}

// ParseCacheControl parses the lines of a Cache-Control field, as
// http.Header holds them. It never fails: what it cannot read it ignores
// as documented on CacheControl. It does not allocate.
func ParseCacheControl(values []string) CacheControl {
	var cc CacheControl
	for _, v := range values {
		cc.parse(v)
	}
	return cc
}

func (cc *CacheControl) parse(s string) {
	i := 0
	for {
		// Skip separators and whitespace before a directive.
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		if i == len(s) {
			return
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ',' {
			i++
		}
		name := trimOWS(s[start:i])
		if i == len(s) || s[i] == ',' {
			cc.directive(name, "", false)
			continue
		}
		i++ // '='
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		var val string
		if i < len(s) && s[i] == '"' {
			// quoted-string: runs to the next unescaped quote, or to the
			// end of the line when unterminated. Escapes are left in
			// place: no kept argument can contain one validly.
			i++
			start = i
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i, len(s))
			val = s[start:i]
			// Whatever follows the closing quote up to the next comma is
			// not part of the directive.
			for i < len(s) && s[i] != ',' {
				i++
			}
		} else {
			start = i
			for i < len(s) && s[i] != ',' {
				i++
			}
			val = trimOWS(s[start:i])
		}
		cc.directive(name, val, true)
	}
}

// directive applies one directive. name is as written.
func (cc *CacheControl) directive(name, val string, hasVal bool) {
	var buf [24]byte
	if len(name) > len(buf) {
		return // longer than any directive we know
	}
	lower := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower) {
	case "no-store":
		cc.NoStore = true
	case "no-cache":
		cc.NoCache = true
	case "private":
		cc.Private = true
	case "public":
		cc.Public = true
	case "must-revalidate":
		cc.MustRevalidate = true
	case "proxy-revalidate":
		cc.ProxyRevalidate = true
	case "must-understand":
		cc.MustUnderstand = true
	case "no-transform":
		cc.NoTransform = true
	case "immutable":
		cc.Immutable = true
	case "only-if-cached":
		cc.OnlyIfCached = true
	case "max-age":
		if !cc.HasMaxAge {
			cc.HasMaxAge = true
			cc.MaxAge, _ = parseDelta(val) // invalid: 0, stale
		}
	case "s-maxage":
		if !cc.HasSMaxAge {
			cc.HasSMaxAge = true
			cc.SMaxAge, _ = parseDelta(val)
		}
	case "max-stale":
		if cc.HasMaxStale {
			return
		}
		if !hasVal {
			cc.HasMaxStale, cc.MaxStaleAny = true, true
		} else if d, ok := parseDelta(val); ok {
			cc.HasMaxStale, cc.MaxStale = true, d
		}
	case "min-fresh":
		if d, ok := parseDelta(val); ok && !cc.HasMinFresh {
			cc.HasMinFresh, cc.MinFresh = true, d
		}
	case "stale-while-revalidate":
		if d, ok := parseDelta(val); ok && !cc.HasSWR {
			cc.HasSWR, cc.StaleWhileRevalidate = true, d
		}
	case "stale-if-error":
		if d, ok := parseDelta(val); ok && !cc.HasSIE {
			cc.HasSIE, cc.StaleIfError = true, d
		}
	}
}

// parseDelta parses delta-seconds (1*DIGIT), clamping at MaxDelta.
func parseDelta(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	const maxSec = int64(MaxDelta / time.Second)
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxSec {
			n = n*10 + int64(c-'0')
		}
	}
	return time.Duration(min(n, maxSec)) * time.Second, true
}

// trimOWS trims spaces and tabs at both ends of s.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
