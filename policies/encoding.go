package policies

import "strings"

// Accept-Encoding
//
// A fill asks the origin for one coding, the client's preferred among
// those the gateway keys variants on (VariantCodings), and the response
// is stored under the coding it actually has (its Content-Encoding), so
// that a client is only ever given a coding it accepts:
//
//   - Codings and their q-values are read as RFC 9110 §12.5.3 says; a
//     coding with q=0, or an unreadable q-value, is not acceptable.
//   - No content coding ("identity") is acceptable unless excluded by
//     identity;q=0, or by *;q=0 without an identity entry.
//   - A request without Accept-Encoding accepts identity only. The RFC
//     lets a cache send any coding then, but the clients that send none
//     (curl, scripts, health checks) are the ones that cannot decode; the
//     CDNs make the same choice.
//   - x-gzip and x-compress are gzip and compress (§8.4.1.3).
//
// None of these allocate.

// VariantCodings are the codings the gateway keys Accept-Encoding
// variants on, in its order of preference when the client's q-values tie.
var VariantCodings = [...]string{"br", "zstd", "gzip"}

// qOf returns the q-value (0-1000) of coding in the Accept-Encoding field
// values, and whether coding is listed; "*" finds the wildcard.
func qOf(vals []string, coding string) (int, bool) {
	for _, v := range vals {
		for v != "" {
			var member string
			member, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(member, ";")
			if !codingEqual(trimOWS(name), coding) {
				continue
			}
			return qValue(params), true
		}
	}
	return 0, false
}

func codingEqual(name, coding string) bool {
	if strings.EqualFold(name, coding) {
		return true
	}
	switch {
	case strings.EqualFold(name, "x-gzip"):
		return coding == "gzip"
	case strings.EqualFold(name, "x-compress"):
		return coding == "compress"
	}
	return false
}

// qValue reads the weight of a member's parameters ("q=0.5"); 1000 when
// there is none, 0 when it cannot be read.
func qValue(params string) int {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, val, ok := strings.Cut(trimOWS(p), "=")
		if !ok || !strings.EqualFold(trimOWS(k), "q") {
			continue
		}
		return parseQ(trimOWS(val))
	}
	return 1000
}

// parseQ reads a qvalue: "0" ["." 0*3DIGIT] or "1" ["." 0*3"0"].
func parseQ(s string) int {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q
	}
	if s[1] != '.' || len(s) > 5 {
		return 0
	}
	scale := 100
	for _, c := range []byte(s[2:]) {
		if c < '0' || c > '9' {
			return 0
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0
	}
	return q
}

// AcceptsCoding reports whether a request whose Accept-Encoding field
// values are vals (nil: no such field) accepts content coded with coding
// ("" or "identity" for none).
func AcceptsCoding(vals []string, coding string) bool {
	if coding == "" || strings.EqualFold(coding, "identity") {
		if vals == nil {
			return true
		}
		if q, ok := qOf(vals, "identity"); ok {
			return q > 0
		}
		q, ok := qOf(vals, "*")
		return !ok || q > 0
	}
	if vals == nil {
		return false
	}
	if q, ok := qOf(vals, coding); ok {
		return q > 0
	}
	q, ok := qOf(vals, "*")
	return ok && q > 0
}

// AcceptsContentCoding reports whether a request with Accept-Encoding
// vals accepts a response whose Content-Encoding is ce (one field value,
// possibly a list of codings applied in order: each must be accepted).
func AcceptsContentCoding(vals []string, ce string) bool {
	for ce != "" {
		var c string
		c, ce, _ = strings.Cut(ce, ",")
		if c = trimOWS(c); c != "" && !AcceptsCoding(vals, c) {
			return false
		}
	}
	return true
}

// PreferredCoding returns the coding of VariantCodings a request with
// Accept-Encoding vals prefers (highest q-value, ties in VariantCodings
// order), or "" when it accepts none of them or prefers identity.
func PreferredCoding(vals []string) string { return PreferredOf(vals, VariantCodings[:]) }

// VariantCoding returns the variant a response with Content-Encoding
// field values ce is stored as: "" (identity) or one of VariantCodings;
// ok is false for any other coding, or several, which are not stored.
func VariantCoding(ce []string) (string, bool) {
	if len(ce) == 0 {
		return "", true
	}
	if len(ce) > 1 {
		return "", false
	}
	v := trimOWS(ce[0])
	if v == "" || strings.EqualFold(v, "identity") {
		return "", true
	}
	for _, c := range VariantCodings {
		if codingEqual(v, c) {
			return c, true
		}
	}
	return "", false
}
