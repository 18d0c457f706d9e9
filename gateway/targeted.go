package gateway

import (
	"net/http"
	"strings"

	"github.com/edgecache/edgecache/policies"
)

// Targeted cache control (RFC 9213)
//
// A route follows the first usable field of its target list — its own
// field (routes[].caching.targeted_field), then CDN-Cache-Control — and
// then ignores Cache-Control and Expires (policies.ResponseDirectives). The TTL
// policy applies that to storage and freshness; the two decisions made
// later, on every use of the entry (whether it may be served stale at all,
// whether every use is revalidated), need it too, but a stored entry is
// shared by every route and its view knows no route. So an entry whose
// freshness came from a targeted field is stored with hdrRevalidate, the
// revalidation directives that field gave ("none" when it gave none),
// and the view reads that instead of Cache-Control. The field is
// internal: an origin cannot send it (stripInternal), and a view removes
// it before anything is served.
//
// Towards clients, CDN-Cache-Control is forwarded (it targets every CDN
// cache on the path: a shield's downstream edge follows it too) and the
// route's own field is removed (policies.TargetedForwarded).

// hdrRevalidate carries the revalidation directives of a targeted field
// in a stored entry.
const hdrRevalidate = "Edgecache-Revalidate"

// revalidateNone is hdrRevalidate's value when the field gave none.
var revalidateNone = []string{"none"}

// directives is the response directives the route follows for h.
func (rt *route) directives(h http.Header) policies.CacheControl {
	cc, _ := policies.ResponseDirectives(h, rt.targetedField)
	return cc
}

// entryHeader is the header an entry is stored with: stored as fetched,
// with hdrRevalidate when a targeted field decided, and the Early Hints
// (hints.go) — on a copy: the fetched header is also the leader's answer.
func (rt *route) entryHeader(stored, decided http.Header, hints []string) http.Header {
	cc, targeted := policies.ResponseDirectives(decided, rt.targetedField)
	if !targeted {
		return withHints(stored, false, hints)
	}
	var dirs []string
	if cc.NoCache {
		dirs = append(dirs, "no-cache")
	}
	if cc.MustRevalidate {
		dirs = append(dirs, "must-revalidate")
	}
	if cc.ProxyRevalidate {
		dirs = append(dirs, "proxy-revalidate")
	}
	if cc.Public || cc.HasSMaxAge {
		dirs = append(dirs, "public") // reusable for requests with Authorization (see reuse)
	}
	h := stored.Clone()
	h[hdrRevalidate] = revalidateNone
	if len(dirs) > 0 {
		h[hdrRevalidate] = []string{strings.Join(dirs, ", ")}
	}
	return withHints(h, true, hints)
}

// reuse is what a stored entry's header says about its reuse, from
// hdrRevalidate when a targeted field decided (the field is removed from
// h), else from Cache-Control: whether every use is revalidated
// (no-cache), whether it may never be served stale (must-revalidate,
// proxy-revalidate), and whether it may answer a request with
// Authorization (public, s-maxage or must-revalidate: RFC 9111 §3.5).
func reuse(h http.Header) (noCache, mustRevalidate, withAuth bool) {
	v, ok := h[hdrRevalidate]
	if ok {
		delete(h, hdrRevalidate)
	} else {
		v = h["Cache-Control"]
	}
	cc := policies.ParseCacheControl(v)
	mustRevalidate = cc.MustRevalidate || cc.ProxyRevalidate
	return cc.NoCache, mustRevalidate, cc.MustRevalidate || cc.Public || cc.HasSMaxAge
}
