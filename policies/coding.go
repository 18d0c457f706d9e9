package policies

// PreferredOf returns the coding of have (names as VariantCodings spells
// them, in the server's order of preference) that a request with
// Accept-Encoding vals prefers: the highest q-value, ties to the earlier
// in have; "" (identity) when the request names none of them acceptably,
// weighs identity higher, or sends no Accept-Encoding (see above). It is
// the choice a hit makes among the codings an entry stores; it does not
// allocate.
//
// A request that refuses identity too (identity;q=0, or *;q=0) and
// accepts nothing in have still gets "": RFC 9110 §12.5.3 lets a server
// answer without a coding rather than 406, and most servers do.
func PreferredOf(vals []string, have []string) string {
	if vals == nil {
		return ""
	}
	best, bestQ := "", 0
	for _, c := range have {
		q, ok := qOf(vals, c)
		if !ok {
			if q, ok = qOf(vals, "*"); !ok {
				continue
			}
		}
		if q > bestQ {
			best, bestQ = c, q
		}
	}
	if iq, ok := qOf(vals, "identity"); ok && iq > bestQ {
		return ""
	}
	return best
}
