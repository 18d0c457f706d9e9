package policies

import "strings"

// maxPreferredOf is how many codings PreferredOf weighs (the rest of a
// longer have are ignored): an entry holds at most br, zstd and gzip.
const maxPreferredOf = 8

// PreferredOf returns the coding of have (names as VariantCodings spells
// them, in the server's order of preference) that a request with
// Accept-Encoding vals prefers: the highest q-value, ties to the earlier
// in have; "" (identity) when the request names none of them acceptably,
// weighs identity higher, or sends no Accept-Encoding (see above). It is
// the choice a hit makes among the codings an entry stores, so it reads
// the field once (AcceptsCoding reads it per coding) and does not
// allocate. A member named twice counts as its first mention, as in
// AcceptsCoding.
//
// A request that refuses identity too (identity;q=0, or *;q=0) and
// accepts nothing in have still gets "": RFC 9110 §12.5.3 lets a server
// answer without a coding rather than 406, and most servers do.
func PreferredOf(vals []string, have []string) string {
	if vals == nil {
		return ""
	}
	have = have[:min(len(have), maxPreferredOf)]
	var q [maxPreferredOf]int
	var seen uint
	starQ, starSeen, idQ, idSeen := 0, false, 0, false
	for _, v := range vals {
		for v != "" {
			var member string
			member, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(member, ";")
			switch name = trimOWS(name); {
			case name == "":
			case name == "*":
				if !starSeen {
					starQ, starSeen = qValue(params), true
				}
			case strings.EqualFold(name, "identity"):
				if !idSeen {
					idQ, idSeen = qValue(params), true
				}
			default:
				for i, c := range have {
					if seen&(1<<i) == 0 && sameCoding(name, c) {
						q[i], seen = qValue(params), seen|1<<i
					}
				}
			}
		}
	}
	best, bestQ := "", 0
	for i, c := range have {
		w := q[i]
		if seen&(1<<i) == 0 {
			if !starSeen {
				continue
			}
			w = starQ
		}
		if w > bestQ {
			best, bestQ = c, w
		}
	}
	if idSeen && idQ > bestQ {
		return ""
	}
	return best
}

// sameCoding is codingEqual with the lengths compared first: the hit
// path's version.
func sameCoding(name, coding string) bool {
	switch len(name) - len(coding) {
	case 0:
		return strings.EqualFold(name, coding)
	case 2: // x-gzip, x-compress
		return (coding == "gzip" || coding == "compress") && (name[0] == 'x' || name[0] == 'X') && name[1] == '-' && strings.EqualFold(name[2:], coding)
	}
	return false
}
