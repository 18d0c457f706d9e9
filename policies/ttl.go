package policies

import (
	"net/http"
	"strings"
	"time"
)

// The reasons DefaultTTL gives for not storing a response (Decision.Reason),
// which the gateway reports in the Cache-Status detail.
const (
	ReasonMethod         = "method"           // not GET or HEAD
	ReasonStatus         = "status"           // status not stored
	ReasonNoStore        = "no-store"         // no-store in the request or response
	ReasonPrivate        = "private"          // private, qualified or not
	ReasonNoCache        = "no-cache"         // no-cache, qualified or not
	ReasonVaryStar       = "vary-star"        // Vary: *
	ReasonAuthorization  = "authorization"    // request with Authorization, response not marked shareable
	ReasonExpired        = "expired"          // explicit lifetime of 0 or less, or an invalid Expires
	ReasonNoFreshness    = "no-freshness"     // no explicit lifetime and no Default
	ReasonStaleOnArrival = "stale-on-arrival" // Age used up the lifetime
)

// DefaultTTL is the built-in TTL policy: RFC 9111 storage and freshness
// rules for a shared cache, without heuristic freshness. In order:
//
//  1. The request method is GET or HEAD.
//  2. The status is not 206 or 304 (edgecache stores complete responses).
//  3. The request has no no-store. The response's directives are the
//     first valid targeted field (TargetedField, then CDN-Cache-Control,
//     RFC 9213), which then replaces Cache-Control and Expires, else
//     Cache-Control.
//  4. Storable decides (RFC 9111 §3): every final status with explicit
//     freshness, or public, is storable; without either only the
//     heuristically cacheable ones (RFC 9110 §15.1), to which Default and
//     Negative apply; must-understand; no-store; private; a request with
//     Authorization only with public, s-maxage or must-revalidate (§3.5).
//     Then no-cache without a validator, and Vary: *, are not stored.
//  5. The freshness lifetime is s-maxage, else max-age, else Expires minus
//     Date (Date defaults to now; an invalid Expires — ParseHTTPDateField:
//     several lines, extra spaces, a one-digit hour — is already expired),
//     else Default. An explicit lifetime of 0 or less is not stored
//     (ReasonExpired), nor is a response with no lifetime when Default is 0
//     (ReasonNoFreshness). Lifetimes are clamped to MaxDelta.
//  6. TTL is the lifetime minus the response's Age (ResponseAge); 0 or
//     less is not stored (ReasonStaleOnArrival).
//  7. stale-while-revalidate and stale-if-error are passed on, unless the
//     response has must-revalidate or proxy-revalidate, which forbid
//     serving it stale. s-maxage implies proxy-revalidate (§5.2.2.10) but
//     does not cancel them: "s-maxage=60, stale-while-revalidate=30" is a
//     common CDN instruction and is honoured.
//
// A response with Set-Cookie is stored: entry.Filter drops the field.
// DefaultTTL sets no Tags. It does not allocate for a typical response
// (Cache-Control max-age or s-maxage); parsing Expires may.
type DefaultTTL struct {
	// Default is the lifetime of a response the origin gives none for.
	// Zero (or less) means such a response is not stored (unless
	// Heuristic applies).
	Default time.Duration
	// Negative, when positive, is the lifetime of a 404 or 410 the origin
	// gives none for, instead of Default: negative caching, kept short.
	Negative time.Duration
	// Heuristic allows heuristic freshness (RFC 9111 §4.2.2) when the
	// origin gives no lifetime and Default is 0: a tenth of the time since
	// Last-Modified, at most HeuristicMax.
	Heuristic bool
	// TargetedField is an edgecache-specific targeted cache-control field
	// (canonical form), tried before CDN-Cache-Control. Empty: none.
	TargetedField string
}

// HeuristicMax caps heuristic freshness.
const HeuristicMax = 24 * time.Hour

var _ TTL = DefaultTTL{}

// Decide implements TTL.
func (p DefaultTTL) Decide(r *Request, resp *Response, now time.Time) Decision {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return noStore(ReasonMethod)
	}
	if resp.Status == http.StatusPartialContent || resp.Status == http.StatusNotModified {
		// edgecache stores complete responses only, and a 304 answers a
		// conditional request: neither is a response to store as such.
		return noStore(ReasonStatus)
	}
	if ParseCacheControl(r.Header["Cache-Control"]).NoStore {
		return noStore(ReasonNoStore)
	}
	cc, targeted := p.directives(resp.Header)
	_, hasExpires := resp.Header["Expires"]
	hasExpires = hasExpires && !targeted // RFC 9213 §2.2: a targeted field overrides Expires too
	if ok, reason := Storable(resp.Status, &cc, hasExpires || p.defaultFor(resp.Status) > 0, len(r.Header["Authorization"]) > 0); !ok {
		return noStore(reason)
	}
	switch {
	case cc.NoCache && !hasValidator(resp.Header):
		return noStore(ReasonNoCache)
	case varyStar(resp.Header["Vary"]):
		return noStore(ReasonVaryStar)
	}

	lifetime, explicit := explicitLifetime(&cc, resp.Header, now, !targeted)
	switch {
	case cc.NoCache:
		lifetime = 0 // stored to be revalidated before every use
	case !explicit && p.defaultFor(resp.Status) > 0:
		lifetime = p.defaultFor(resp.Status)
	case !explicit && p.Heuristic:
		if h, ok := heuristicLifetime(resp.Header, now); ok {
			lifetime = h
			break
		}
		return noStore(ReasonNoFreshness)
	case !explicit:
		return noStore(ReasonNoFreshness)
	}
	ttl := lifetime - ResponseAge(resp.Header)
	if ttl <= 0 {
		// Stale already. Worth keeping only if it can be revalidated.
		if !hasValidator(resp.Header) {
			if lifetime <= 0 {
				return noStore(ReasonExpired)
			}
			return noStore(ReasonStaleOnArrival)
		}
		ttl = 0
	}

	d := Decision{Store: true, TTL: ttl}
	if !cc.MustRevalidate && !cc.ProxyRevalidate {
		d.StaleWhileRevalidate = cc.StaleWhileRevalidate
		d.StaleIfError = cc.StaleIfError
	}
	return d
}

// directives returns the response directives this cache follows (see
// Directives).
func (p DefaultTTL) directives(h http.Header) (cc CacheControl, targeted bool) {
	return ResponseDirectives(h, p.TargetedField)
}

// ResponseDirectives returns the response directives this cache follows: the
// first usable targeted field (field, if not empty, then
// CDN-Cache-Control; RFC 9213 §2.2), else Cache-Control. targeted says a
// targeted field won; then Cache-Control and Expires do not apply to this
// cache. field must be in canonical form.
func ResponseDirectives(h http.Header, field string) (cc CacheControl, targeted bool) {
	if field != "" {
		if v := h[field]; len(v) > 0 {
			if cc, ok := ParseTargeted(v); ok {
				return cc, true
			}
		}
	}
	if v := h[CDNCacheControl]; len(v) > 0 {
		if cc, ok := ParseTargeted(v); ok {
			return cc, true
		}
	}
	return ParseCacheControl(h["Cache-Control"]), false
}

// defaultFor is the configured lifetime of a response with status that
// states none (Negative for 404 and 410 when set, else Default), clamped
// to MaxDelta; 0 when there is none. It applies only where Storable allows
// storing without explicit freshness (heuristically cacheable statuses):
// a route default is the operator's heuristic.
func (p DefaultTTL) defaultFor(status int) time.Duration {
	if !HeuristicallyCacheable(status) {
		return 0
	}
	if p.Negative > 0 && (status == 404 || status == 410) {
		return min(p.Negative, MaxDelta)
	}
	return min(max(p.Default, 0), MaxDelta)
}

func noStore(reason string) Decision { return Decision{Reason: reason} }

// hasValidator reports whether a stored response could be revalidated
// with a conditional request (an ETag or a Last-Modified).
func hasValidator(h http.Header) bool {
	return len(h["Etag"]) > 0 || len(h["Last-Modified"]) > 0
}

// heuristicLifetime is RFC 9111 §4.2.2's suggestion: 10% of the time since
// Last-Modified, capped at HeuristicMax.
func heuristicLifetime(h http.Header, now time.Time) (time.Duration, bool) {
	lm := h["Last-Modified"]
	if len(lm) == 0 {
		return 0, false
	}
	t, ok := ParseHTTPDateField(lm)
	if !ok {
		return 0, false
	}
	date := now
	if d, ok := ParseHTTPDateField(h["Date"]); ok {
		date = d
	}
	if !date.After(t) {
		return 0, false
	}
	return min(date.Sub(t)/10, HeuristicMax), true
}

// explicitLifetime returns the freshness lifetime the response states
// (RFC 9111 §4.2.1), and whether it states one.
// useExpires is false when a targeted field replaced Cache-Control and
// Expires (RFC 9213 §2.2).
func explicitLifetime(cc *CacheControl, h http.Header, now time.Time, useExpires bool) (time.Duration, bool) {
	switch {
	case cc.HasSMaxAge:
		return cc.SMaxAge, true
	case cc.HasMaxAge:
		return cc.MaxAge, true
	}
	exp, ok := h["Expires"]
	if !ok || !useExpires {
		return 0, false
	}
	expires, ok := ParseHTTPDateField(exp)
	if !ok {
		return 0, true // invalid (several lines included): already expired (§5.3)
	}
	date := now
	if t, ok := ParseHTTPDateField(h["Date"]); ok {
		date = t
	}
	return min(expires.Sub(date), MaxDelta), true
}

// ResponseAge returns the value of h's Age field (RFC 9111 §5.1): the
// first member if it is a list, 0 when absent or invalid, clamped to
// MaxDelta. h must have canonical keys, as net/http gives them. It does
// not allocate.
func ResponseAge(h http.Header) time.Duration {
	v := h["Age"]
	if len(v) == 0 {
		return 0
	}
	first, _, _ := strings.Cut(v[0], ",")
	d, ok := parseDelta(trimOWS(first))
	if !ok {
		return 0
	}
	return d
}

// varyStar reports whether the Vary field lists "*".
func varyStar(values []string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if trimOWS(tok) == "*" {
				return true
			}
		}
	}
	return false
}
