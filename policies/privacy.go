package policies

import (
	"net/http"
	"path"
	"strings"
	"time"
)

// Reasons Private gives for not storing a response (Decision.Reason).
const (
	ReasonSetCookie = "set-cookie" // the response sets a cookie
	ReasonCookie    = "cookie"     // the request had Cookie and the origin gave no explicit freshness
	ReasonDeception = "deception"  // Content-Type disagrees with the path's extension
)

// PrivacyOptions are a route's opt-outs from Private's defaults.
type PrivacyOptions struct {
	// StoreSetCookie stores a response with Set-Cookie (the gateway
	// removes the field from what it stores).
	StoreSetCookie bool
	// StoreWithCookie stores a response to a request with Cookie under
	// any freshness the TTL policy chose.
	StoreWithCookie bool
	// DeceptionArmor refuses a response whose Content-Type disagrees with
	// the extension of the request path.
	DeceptionArmor bool
}

// Private vetoes storing a response that the TTL policy (built-in or a
// plugin) would store, when it is likely to be one user's page. It
// returns the reason, or "" to let the decision stand. In order:
//
//  1. A response with Set-Cookie is not stored (nginx's and Varnish's
//     default): it is the answer to one client.
//  2. A response to a request with Cookie is stored only when the origin
//     gave it explicit freshness (s-maxage, max-age or Expires, RFC 9111
//     §4.2.1): a lifetime from default_ttl, negative_ttl or heuristics is
//     the gateway's guess, and a guess must not share a page that may
//     have been rendered for the cookie.
//  3. With DeceptionArmor, a response whose Content-Type does not agree
//     with the path's extension (/account.php/x.css answered text/html)
//     is not stored, as Cloudflare's Cache Deception Armor does. A path
//     without a known extension is not judged.
//
// Authorization needs no rule here: RFC 9111 §3.5 is DefaultTTL's (and
// the plugin adapter's guard), and the gateway answers a request with
// Authorization only from an entry marked public, s-maxage or
// must-revalidate.
// resp.Header is the origin's, unfiltered.
func Private(r *Request, resp *Response, o PrivacyOptions, now time.Time) string {
	if !o.StoreSetCookie && len(resp.Header["Set-Cookie"]) > 0 {
		return ReasonSetCookie
	}
	if !o.StoreWithCookie && len(r.Header["Cookie"]) > 0 && !ExplicitFreshness(resp.Header, now) {
		return ReasonCookie
	}
	if o.DeceptionArmor && !TypeMatchesPath(r.Path, resp.Header["Content-Type"]) {
		return ReasonDeception
	}
	return ""
}

// ExplicitFreshness reports whether the origin gave the response a
// positive freshness lifetime of its own (RFC 9111 §4.2.1): s-maxage,
// max-age or Expires, and not no-cache.
func ExplicitFreshness(h http.Header, now time.Time) bool {
	cc := ParseCacheControl(h["Cache-Control"])
	if cc.NoCache {
		return false
	}
	d, ok := explicitLifetime(&cc, h, now, true)
	return ok && d > 0
}

// extTypes are the media types a path extension promises. Kept here, not
// read from the system's mime tables, so that the decision is the same on
// every machine.
var extTypes = map[string][]string{
	".css":   {"text/css"},
	".js":    {"text/javascript", "application/javascript", "application/x-javascript"},
	".mjs":   {"text/javascript", "application/javascript"},
	".json":  {"application/json"},
	".map":   {"application/json"},
	".png":   {"image/png"},
	".jpg":   {"image/jpeg"},
	".jpeg":  {"image/jpeg"},
	".gif":   {"image/gif"},
	".webp":  {"image/webp"},
	".avif":  {"image/avif"},
	".svg":   {"image/svg+xml"},
	".ico":   {"image/x-icon", "image/vnd.microsoft.icon"},
	".woff":  {"font/woff", "application/font-woff"},
	".woff2": {"font/woff2"},
	".ttf":   {"font/ttf", "application/x-font-ttf"},
	".otf":   {"font/otf"},
	".txt":   {"text/plain"},
	".xml":   {"application/xml", "text/xml"},
	".pdf":   {"application/pdf"},
	".mp4":   {"video/mp4"},
	".webm":  {"video/webm"},
	".mp3":   {"audio/mpeg"},
	".wasm":  {"application/wasm"},
	".html":  {"text/html"},
	".htm":   {"text/html"},
	".csv":   {"text/csv"},
	".zip":   {"application/zip"},
	".gz":    {"application/gzip"},
}

// TypeMatchesPath reports whether contentType agrees with the extension
// of the (escaped) request path p. A path whose extension is not in the
// table agrees with anything; a known extension with no Content-Type
// agrees with nothing.
func TypeMatchesPath(p string, contentType []string) bool {
	want, ok := extTypes[strings.ToLower(path.Ext(p))]
	if !ok {
		return true
	}
	if len(contentType) == 0 {
		return false
	}
	mt, _, _ := strings.Cut(contentType[0], ";")
	mt = strings.ToLower(trimOWS(mt))
	for _, w := range want {
		if mt == w {
			return true
		}
	}
	return false
}
