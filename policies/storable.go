package policies

// ReasonMustUnderstand is the reason Storable gives for a response with
// must-understand whose status this cache does not know (RFC 9111
// §5.2.2.3).
const ReasonMustUnderstand = "must-understand"

// Storable reports whether a shared cache may store a response to a GET
// or HEAD (RFC 9111 §3), and if not, why (one of the Reason* constants).
// cc holds the response's directives (Cache-Control, or the targeted field
// SelectTargeted chose); hasExpires says the response has an Expires field
// (valid or not: an invalid one is explicit freshness of zero, §5.3) and is
// to be false when a targeted field is used (RFC 9213 §2.2);
// reqAuthorization says the request carried Authorization.
//
// In order:
//
//  1. Only final statuses (200 and up) are stored; a 1xx is interim.
//  2. must-understand: with a status this cache understands
//     (UnderstoodStatus) no-store is ignored (§5.2.2.3); with another, the
//     response is not stored.
//  3. no-store is not stored; private is not stored (a shared cache).
//  4. A request with Authorization is stored only when the response has
//     public, s-maxage or must-revalidate (§3.5).
//  5. The response needs a reason to be stored: explicit freshness
//     (max-age, s-maxage, Expires), public, or a heuristically cacheable
//     status (HeuristicallyCacheable). So every final status — 302, 303,
//     307, 400, 500, 503, unknown codes — is storable when the origin
//     states a lifetime, and only the RFC 9110 §15.1 list is without one.
//
// no-cache does not prevent storing (the response is revalidated before
// each use); Vary: * is the read path's concern (it can never match), as
// is whether a 206 can be combined (RFC 9111 §3.3-3.4).
func Storable(status int, cc *CacheControl, hasExpires, reqAuthorization bool) (bool, string) {
	if status < 200 || status > 999 {
		return false, ReasonStatus
	}
	noStore := cc.NoStore
	if cc.MustUnderstand {
		if !UnderstoodStatus(status) {
			return false, ReasonMustUnderstand
		}
		noStore = false
	}
	switch {
	case noStore:
		return false, ReasonNoStore
	case cc.Private:
		return false, ReasonPrivate
	case reqAuthorization && !cc.Public && !cc.HasSMaxAge && !cc.MustRevalidate:
		return false, ReasonAuthorization
	}
	if cc.HasMaxAge || cc.HasSMaxAge || hasExpires || cc.Public || HeuristicallyCacheable(status) {
		return true, ""
	}
	return false, ReasonNoFreshness
}

// HeuristicallyCacheable reports the statuses RFC 9110 §15.1 makes
// heuristically cacheable: a response with one of them may be stored and
// given heuristic freshness (RFC 9111 §4.2.2) without explicit freshness.
func HeuristicallyCacheable(status int) bool {
	switch status {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// UnderstoodStatus reports the final statuses whose caching requirements
// this cache knows (for must-understand, RFC 9111 §5.2.2.3): the codes RFC
// 9110 §15 defines, plus 429, 431, 451 and 511 (RFC 6585, RFC 7725), other
// than 206 (edgecache does not store partial content, it fills whole
// objects) and 304 (a response to a conditional request, never stored as
// such).
func UnderstoodStatus(status int) bool {
	switch {
	case 200 <= status && status <= 205,
		300 <= status && status <= 308 && status != 304 && status != 305 && status != 306,
		400 <= status && status <= 417,
		421 <= status && status <= 422, status == 426, status == 428, status == 429, status == 431, status == 451,
		500 <= status && status <= 505, status == 511:
		return true
	}
	return false
}
