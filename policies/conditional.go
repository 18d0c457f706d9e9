package policies

import (
	"net/http"
	"time"
)

// Precondition is the result of evaluating a request's preconditions against a
// stored response (RFC 9110 §13.2.2).
type Precondition uint8

const (
	// Proceed: serve the stored response (or a range of it) as usual.
	Proceed Precondition = iota
	// NotModified: answer 304 Not Modified (GET or HEAD only).
	NotModified
	// PreconditionFailed: answer 412 Precondition Failed.
	PreconditionFailed
)

// Validators are what a stored response can be compared against.
type Validators struct {
	// ETag is the stored ETag field as sent ("" when absent).
	ETag string
	// LastModified and Date are the stored fields, zero when absent or
	// invalid.
	LastModified time.Time
	Date         time.Time
	// Stored is when the response was received, for If-Modified-Since
	// when it has neither Last-Modified nor Date (RFC 9111 §4.3.2).
	Stored time.Time
}

// ValidatorsOf reads the validators from a stored response's header
// (canonical keys) and its time of storage. It does not allocate.
func ValidatorsOf(h http.Header, stored time.Time) Validators {
	v := Validators{Stored: stored}
	if e := h["Etag"]; len(e) == 1 {
		v.ETag = e[0]
	}
	v.LastModified, _ = ParseHTTPDateField(h["Last-Modified"])
	v.Date, _ = ParseHTTPDateField(h["Date"])
	return v
}

// Evaluate applies RFC 9110 §13.2.2's order of preconditions to a request
// answered from the cache, given its header (canonical keys) and method:
//
//  1. If-Match, when present: false → 412.
//  2. If-Unmodified-Since, without If-Match: false → 412.
//  3. If-None-Match, when present: false → 304 for GET and HEAD, else 412.
//  4. If-Modified-Since, without If-None-Match, GET or HEAD only: false
//     → 304; without a stored Last-Modified the stored Date is used, and
//     without that the time of storage (RFC 9110 §13.1.3, RFC 9111 §4.3.2).
//  5. Otherwise Proceed; If-Range is evaluated by the range code
//     (IfRange), since it only decides between a 206 and a 200.
//
// Invalid dates make their field ignored (§13.1.3, §13.1.4). RFC 9111
// §4.3.2 lets a cache leave If-Match and If-Unmodified-Since to the
// origin; evaluating them against the stored response gives the same
// answer while it is fresh. It does not allocate.
func Evaluate(method string, h http.Header, v *Validators) Precondition {
	if im := h["If-Match"]; len(im) > 0 {
		if !MatchList(im, v.ETag, true) {
			return PreconditionFailed
		}
	} else if ius, ok := ParseHTTPDateField(h["If-Unmodified-Since"]); ok {
		if lm := v.lastModified(); lm.IsZero() || lm.After(ius) {
			return PreconditionFailed
		}
	}
	getOrHead := method == http.MethodGet || method == http.MethodHead
	if inm := h["If-None-Match"]; len(inm) > 0 {
		if MatchList(inm, v.ETag, false) {
			if getOrHead {
				return NotModified
			}
			return PreconditionFailed
		}
		return Proceed
	}
	if !getOrHead {
		return Proceed
	}
	if ims, ok := ParseHTTPDateField(h["If-Modified-Since"]); ok {
		if lm := v.modifiedAt(); !lm.IsZero() && !lm.After(ims) {
			return NotModified
		}
	}
	return Proceed
}

// lastModified is Last-Modified only: If-Unmodified-Since needs a real
// modification date.
func (v *Validators) lastModified() time.Time { return v.LastModified }

// modifiedAt is the date If-Modified-Since is compared with.
func (v *Validators) modifiedAt() time.Time {
	switch {
	case !v.LastModified.IsZero():
		return v.LastModified
	case !v.Date.IsZero():
		return v.Date
	}
	return v.Stored
}

// IfRange evaluates an If-Range field (RFC 9110 §13.1.5) against the
// stored response: true means the Range applies (206), false means the
// whole representation is sent (200). An entity-tag matches only by strong
// comparison (a weak tag never matches); a date matches only when it
// equals Last-Modified exactly and Last-Modified is a strong validator (at
// least one second before Date, §8.8.2.2). No If-Range: true. A field on
// several lines or not parseable: false (the safe answer is the whole
// representation).
func IfRange(values []string, v *Validators) bool {
	if len(values) == 0 {
		return true
	}
	if len(values) > 1 {
		return false
	}
	s := trimOWS(values[0])
	if len(s) > 0 && (s[0] == '"' || (len(s) > 1 && s[0] == 'W' && s[1] == '/')) {
		return StrongMatch(s, v.ETag)
	}
	t, ok := ParseHTTPDate(s)
	if !ok || v.LastModified.IsZero() || !t.Equal(v.LastModified) {
		return false
	}
	return !v.Date.IsZero() && v.Date.Sub(v.LastModified) >= time.Second
}

// StrongMatch is RFC 9110 §8.8.3.2's strong comparison: both entity-tags
// are valid and strong, and their opaque tags are equal.
func StrongMatch(a, b string) bool {
	oa, weakA, okA := opaqueTag(a)
	ob, weakB, okB := opaqueTag(b)
	return okA && okB && !weakA && !weakB && oa == ob
}

// WeakMatch is RFC 9110 §8.8.3.2's weak comparison: both entity-tags are
// valid and their opaque tags are equal, weak or not.
func WeakMatch(a, b string) bool {
	oa, _, okA := opaqueTag(a)
	ob, _, okB := opaqueTag(b)
	return okA && okB && oa == ob
}

// MatchList reports whether a list-valued If-Match or If-None-Match field
// (its lines) matches etag: "*" matches any stored response, otherwise a
// member must match by strong comparison (If-Match, strong true) or weak
// comparison (If-None-Match). A malformed member never matches; scanning
// continues after it when the next comma can be found.
func MatchList(values []string, etag string, strong bool) bool {
	for _, line := range values {
		s := line
		for s != "" {
			// Skip separators.
			for s != "" && (s[0] == ' ' || s[0] == '\t' || s[0] == ',') {
				s = s[1:]
			}
			if s == "" {
				break
			}
			if s[0] == '*' {
				return true // a stored response is a current representation
			}
			n := tagLen(s)
			if n == 0 {
				// Not an entity-tag: skip to the next comma.
				i := 0
				for i < len(s) && s[i] != ',' {
					i++
				}
				s = s[i:]
				continue
			}
			tag := s[:n]
			s = s[n:]
			if strong && StrongMatch(tag, etag) || !strong && WeakMatch(tag, etag) {
				return true
			}
		}
	}
	return false
}

// tagLen returns the length of the entity-tag at the start of s, 0 if
// there is none. entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc =
// %x21 / %x23-7E / obs-text.
func tagLen(s string) int {
	i := 0
	if len(s) >= 2 && s[0] == 'W' && s[1] == '/' {
		i = 2
	}
	if i >= len(s) || s[i] != '"' {
		return 0
	}
	for i++; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			return i + 1
		}
		if c < 0x21 || c == 0x7f {
			return 0
		}
	}
	return 0
}

// opaqueTag splits a whole entity-tag (surrounding OWS allowed) into its
// opaque part (with quotes) and weakness.
func opaqueTag(s string) (opaque string, weak, ok bool) {
	s = trimOWS(s)
	if n := tagLen(s); n == 0 || n != len(s) {
		return "", false, false
	}
	if s[0] == 'W' {
		return s[2:], true, true
	}
	return s, false, true
}
