package policies

import "time"

// CDNCacheControl is the targeted field RFC 9213 §3 defines for CDN caches.
const CDNCacheControl = "Cdn-Cache-Control"

// ParseTargeted parses one targeted cache-control field (RFC 9213), such
// as CDN-Cache-Control or an edgecache-specific one, as http.Header holds
// its lines. It returns false when the field is absent, empty or not a
// valid RFC 8941 Dictionary: then the cache falls back to Cache-Control.
//
// What RFC 9213 requires, and what this does:
//
//   - §2.1: the field is a Structured Field Dictionary; a field that fails
//     to parse is ignored whole, as if absent. Directive names are
//     therefore lower case ("MAX-AGE=60" makes the field invalid).
//     Parameters are ignored. Values that break a directive's implied type
//     (a max-age that is a Decimal, a String or negative) "SHOULD NOT be
//     consumed": such a directive is dropped, the rest of the field
//     applies.
//   - §2.1: a cache using the field MUST implement max-age,
//     must-revalidate, no-store, no-cache and private, and SHOULD
//     implement the others it supports in Cache-Control: here also
//     s-maxage, public, proxy-revalidate, must-understand, no-transform,
//     immutable, stale-while-revalidate and stale-if-error (RFC 5861).
//     no-cache and private with a value (a field list) count as the
//     unqualified directive, as in ParseCacheControl. Unknown directives
//     are ignored, but still make the field valid and non-empty:
//     "CDN-Cache-Control: none" overrides Cache-Control and grants nothing.
//   - §2.2: a cache with a target list (edgecache: its own field, if
//     configured, then CDN-Cache-Control) uses the first field on the list
//     that is present, valid and non-empty, and then MUST ignore
//     Cache-Control and Expires for its own storage and freshness; with
//     none usable, Cache-Control and Expires apply as usual. Only this
//     cache's decisions change: the Cache-Control sent on to clients is
//     the origin's. SelectTargeted does the selection.
//   - Forwarding: RFC 9213 does not ask a cache to remove a targeted field.
//     CDN-Cache-Control targets every CDN cache on the path, so a cache that
//     may sit behind another one (a shield) keeps it; a field that names
//     only this cache (edgecache's own) has no use downstream and should be
//     removed towards clients. TargetedForwarded says which.
//
// A duplicated key keeps its last value (RFC 8941 §3.2). Durations are
// clamped to MaxDelta. It does not allocate for a field on one line whose
// directives carry no parameters and no inner lists.
func ParseTargeted(values []string) (CacheControl, bool) {
	// A targeted field has a handful of members; the array keeps them off
	// the heap.
	var buf [16]Member
	ms, err := parseDictionary(buf[:0], joinLines(values), false)
	if err != nil || len(ms) == 0 {
		return CacheControl{}, false // invalid or empty: ignored (§2.2)
	}
	var cc CacheControl
	for i := range ms {
		cc.targeted(&ms[i])
	}
	return cc, true
}

// SelectTargeted applies RFC 9213 §2.2's target list to a response's
// header fields (canonical keys): fields are tried in order and the first
// present, valid and non-empty one wins. It returns that field's
// directives and its index in fields, or false when none is usable (then
// Cache-Control and Expires apply). get returns a field's lines, usually
// from an http.Header: func(k string) []string { return h[k] }.
func SelectTargeted(fields []string, get func(name string) []string) (CacheControl, int, bool) {
	for i, f := range fields {
		if v := get(f); len(v) > 0 {
			if cc, ok := ParseTargeted(v); ok {
				return cc, i, true
			}
		}
	}
	return CacheControl{}, -1, false
}

// TargetedForwarded reports whether a targeted field is sent on towards
// clients: CDN-Cache-Control is (it targets every CDN cache on the path);
// any other targeted field, being edgecache's own, is not. name must be in
// canonical form.
func TargetedForwarded(name string) bool { return name == CDNCacheControl }

// targeted applies one dictionary member (keys are unique by then).
func (cc *CacheControl) targeted(m *Member) {
	flag := func(b *bool) {
		// A boolean directive given ?0 is not set; any other value
		// (a field list for no-cache/private, say) sets it.
		*b = m.IsInnerList || m.Item.Kind != KindBoolean || m.Item.Bool
	}
	delta := func(d *time.Duration, has *bool) {
		if m.IsInnerList || m.Item.Kind != KindInteger || m.Item.Int < 0 {
			return // not consumed (§2.1)
		}
		*d, *has = MaxDelta, true
		if m.Item.Int < int64(MaxDelta/time.Second) {
			*d = time.Duration(m.Item.Int) * time.Second
		}
	}
	switch m.Key {
	case "max-age":
		delta(&cc.MaxAge, &cc.HasMaxAge)
	case "s-maxage":
		delta(&cc.SMaxAge, &cc.HasSMaxAge)
	case "stale-while-revalidate":
		delta(&cc.StaleWhileRevalidate, &cc.HasSWR)
	case "stale-if-error":
		delta(&cc.StaleIfError, &cc.HasSIE)
	case "no-store":
		flag(&cc.NoStore)
	case "no-cache":
		flag(&cc.NoCache)
	case "private":
		flag(&cc.Private)
	case "public":
		flag(&cc.Public)
	case "must-revalidate":
		flag(&cc.MustRevalidate)
	case "proxy-revalidate":
		flag(&cc.ProxyRevalidate)
	case "must-understand":
		flag(&cc.MustUnderstand)
	case "no-transform":
		flag(&cc.NoTransform)
	case "immutable":
		flag(&cc.Immutable)
	}
}
