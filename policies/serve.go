package policies

import (
	"net/http"
	"strings"
	"time"
)

// The serve decision
//
// A lookup that finds an entry asks Serve whether it may answer as is,
// stale, or stale while it is refreshed; a failed origin asks
// ServeOnError. Times are unix milliseconds and durations milliseconds,
// as the gateway's decoded entries hold them, so that a hit converts
// nothing. None of these allocate.

// Stored is what the serve decision reads of a stored response.
type Stored struct {
	StoredAt   int64 // unix ms: when the response was received
	FreshUntil int64 // unix ms: when it stops being fresh
	InitialAge int64 // ms: the response's age when it was received
	SWR, SIE   int64 // ms: the stale-while-revalidate and stale-if-error windows
	// From the stored Cache-Control: no-cache, and must-revalidate or
	// proxy-revalidate (never served stale).
	NoCache, MustRevalidate bool
}

// Age is the response's age at now (RFC 9111 §4.2.3, with the time of
// storage as the response time), in ms.
func (s *Stored) Age(now int64) int64 { return now - s.StoredAt + s.InitialAge }

// SoftPurged applies a soft purge made at purgedAt (unix ms) to s: a
// response stored at or before it is fresh no longer than purgedAt.
func (s *Stored) SoftPurged(purgedAt int64) {
	if s.StoredAt <= purgedAt {
		s.FreshUntil = min(s.FreshUntil, purgedAt)
	}
}

// Use is how a stored response may answer a request.
type Use uint8

const (
	// UseNone: go to the origin (revalidating when possible).
	UseNone Use = iota
	// UseFresh: the response is fresh enough for the request: serve it.
	UseFresh
	// UseStale: stale, but the request accepts it (max-stale).
	UseStale
	// UseStaleRefresh: stale within stale-while-revalidate: serve it and
	// refresh it in the background.
	UseStaleRefresh
)

// Serve decides at now (unix ms) how s may answer a request with
// directives d (RFC 9111 §4.2, §5.2.1; RFC 5861 §3):
//
//   - fresh, the response without no-cache, the request without no-cache,
//     its min-fresh met and its max-age not passed: UseFresh;
//   - no-cache on either side, or must-revalidate once stale: UseNone;
//   - stale within the request's max-stale: UseStale;
//   - stale within the response's stale-while-revalidate: UseStaleRefresh;
//   - otherwise UseNone.
//
// A fresh response the request refuses (min-fresh, max-age) is not
// served stale either: the request asked for something fresher.
func Serve(s *Stored, d *Directives, now int64) Use {
	left := s.FreshUntil - now
	fresh := left > 0 && !s.NoCache
	if fresh && !d.NoCache && (!d.HasMinFresh || left >= d.MinFresh) && (!d.HasMaxAge || s.Age(now) <= d.MaxAge) {
		return UseFresh
	}
	if d.NoCache || s.NoCache || s.MustRevalidate && !fresh {
		return UseNone
	}
	if fresh {
		return UseNone
	}
	staleBy := -left
	if d.HasMaxStale && (d.MaxStaleAny || staleBy <= d.MaxStale) {
		return UseStale
	}
	if staleBy < s.SWR {
		return UseStaleRefresh
	}
	return UseNone
}

// ServeOnError reports whether s may answer at now (unix ms) in place of
// an origin that failed: within its stale-if-error window (RFC 5861 §4).
func ServeOnError(s *Stored, now int64) bool { return now < s.FreshUntil+s.SIE }

// Directives are the request's Cache-Control directives the serve
// decision honours (RFC 9111 §5.2.1), durations in ms.
type Directives struct {
	NoCache, OnlyIfCached                            bool
	HasMaxAge, HasMaxStale, MaxStaleAny, HasMinFresh bool
	MaxAge, MaxStale, MinFresh                       int64
}

// ParseDirectives reads a request's Cache-Control (canonical keys), and
// Pragma: no-cache when there is no Cache-Control (RFC 9111 §5.4), with
// ParseCacheControl's rules. max-age=0 asks for revalidation as no-cache
// does. With ignoreNoCache (a per-route switch, as CDNs offer) the
// client cannot force revalidation: no-cache, Pragma and max-age are
// ignored. It does not allocate.
func ParseDirectives(h http.Header, ignoreNoCache bool) Directives {
	cc, ok := h["Cache-Control"]
	if !ok {
		if p := h["Pragma"]; len(p) > 0 && !ignoreNoCache {
			return Directives{NoCache: p[0] == "no-cache"}
		}
		return Directives{}
	}
	c := ParseCacheControl(cc)
	return Directives{
		NoCache:      (c.NoCache || c.HasMaxAge && c.MaxAge == 0) && !ignoreNoCache,
		OnlyIfCached: c.OnlyIfCached,
		HasMaxAge:    c.HasMaxAge && !ignoreNoCache,
		MaxAge:       c.MaxAge.Milliseconds(),
		HasMaxStale:  c.HasMaxStale || c.MaxStaleAny,
		MaxStale:     c.MaxStale.Milliseconds(),
		MaxStaleAny:  c.MaxStaleAny,
		HasMinFresh:  c.HasMinFresh,
		MinFresh:     c.MinFresh.Milliseconds(),
	}
}

// StaleDefaults gives a decision to store the route's default stale
// windows, swr and sie, where the response (its Cache-Control, cc) names
// none of its own. A response with must-revalidate or proxy-revalidate
// gets no default window: it must not be served stale (RFC 9111 §5.2.2.2).
func StaleDefaults(dec Decision, cc *CacheControl, swr, sie time.Duration) Decision {
	revalidate := cc.MustRevalidate || cc.ProxyRevalidate
	if !cc.HasSWR && !revalidate {
		dec.StaleWhileRevalidate = swr
	}
	if !cc.HasSIE && !revalidate {
		dec.StaleIfError = sie
	}
	return dec
}

// Retain is how long a stored response is kept: its freshness, then the
// longer of its stale windows, and keep more when it has a validator, so
// that it can still be revalidated (a 304) rather than fetched whole.
// Zero or less: nothing to store.
func Retain(dec *Decision, hasValidator bool, keep time.Duration) time.Duration {
	retain := dec.TTL + max(dec.StaleWhileRevalidate, dec.StaleIfError)
	if hasValidator {
		retain += keep
	}
	return retain
}

// ParseTags reads surrogate keys from the response fields names (such as
// Surrogate-Key, space-separated, and Cache-Tag, comma-separated): both
// separators, and tabs, are accepted in either. nil when there are none.
func ParseTags(h http.Header, names []string) []string {
	var tags []string
	for _, n := range names {
		for _, v := range h[n] {
			tags = append(tags, strings.FieldsFunc(v, isTagSeparator)...)
		}
	}
	return tags
}

func isTagSeparator(r rune) bool { return r == ' ' || r == ',' || r == '\t' }

// AppendVariantValue appends the value of the request field name
// (canonical) that selects a variant: with firstMember (a route's
// vary_normalize list), only its first list member without parameters,
// lower-cased, so that "en-US,en;q=0.5" and "EN-us" select one variant;
// otherwise AppendVaryValue's normalization (Accept-Language as a weighted
// language set, any other field as a list). It does not allocate when dst
// has room.
func AppendVariantValue(dst []byte, name string, values []string, firstMember bool) []byte {
	if firstMember {
		if len(values) == 0 {
			return dst
		}
		first, _, _ := strings.Cut(values[0], ",")
		first, _, _ = strings.Cut(first, ";")
		for _, c := range []byte(strings.TrimSpace(first)) {
			dst = append(dst, lower(c))
		}
		return dst
	}
	return AppendVaryValue(dst, name, values)
}
