package policies

// maxLanguages is how many language ranges AppendAcceptLanguage sorts on
// the stack; a longer field is normalized as an unknown field instead.
const maxLanguages = 32

// AppendVaryValue appends the normalized value of the request field name
// (canonical form), for use in a variant key: two requests whose values
// normalize the same select the same stored response (RFC 9111 §4.1
// allows normalizing "in a way that is known to have identical semantics").
// Accept-Language is normalized by AppendAcceptLanguage; any other field
// by AppendListValue. It does not allocate when dst has room.
func AppendVaryValue(dst []byte, name string, values []string) []byte {
	if name == "Accept-Language" {
		return AppendAcceptLanguage(dst, values)
	}
	return AppendListValue(dst, values)
}

// AppendListValue appends values normalized as a comma-separated list
// (RFC 9110 §5.6.1): lines joined by commas, whitespace around commas and
// at both ends removed, empty members dropped. Whitespace inside a member
// and anything inside a quoted string are kept: they may matter.
func AppendListValue(dst []byte, values []string) []byte {
	first := true
	for _, v := range values {
		i := 0
		for i < len(v) {
			for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
				i++
			}
			if i == len(v) {
				break
			}
			// One member: up to a comma outside quotes.
			start, inQuote := i, false
			for i < len(v) && (inQuote || v[i] != ',') {
				switch {
				case v[i] == '\\' && inQuote && i+1 < len(v):
					i++
				case v[i] == '"':
					inQuote = !inQuote
				}
				i++
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, trimOWS(v[start:i])...)
		}
	}
	return dst
}

type langRange struct {
	tag string // as written; compared and written in lower case
	q   int    // weight in thousandths
}

// AppendAcceptLanguage appends an Accept-Language value (RFC 9110
// §12.5.4) normalized so that fields with the same meaning compare equal:
// language ranges are lower-cased; ranges with q=0 (refused) are dropped;
// a range listed twice keeps its highest weight; ranges are ordered by
// weight, highest first, and by tag among equal weights (order among
// equal weights carries no preference); weights are written only when
// below 1, without trailing zeros ("en;q=0.5"). Parameters other than q
// are dropped (none is defined); an invalid q counts as 1. A field with
// more than maxLanguages ranges is normalized by AppendListValue instead.
// It does not allocate when dst has room.
func AppendAcceptLanguage(dst []byte, values []string) []byte {
	var buf [maxLanguages]langRange
	ranges := buf[:0]
	for _, v := range values {
		for v != "" {
			var member string
			member, v = cutComma(v)
			tag, params := cutSemicolon(member)
			tag = trimOWS(tag)
			if tag == "" {
				continue
			}
			q := langQ(params)
			if q == 0 {
				continue
			}
			dup := false
			for j := range ranges {
				if asciiEqualFold(ranges[j].tag, tag) {
					ranges[j].q, dup = max(ranges[j].q, q), true
				}
			}
			if dup {
				continue
			}
			if len(ranges) == maxLanguages {
				return AppendListValue(dst, values)
			}
			ranges = append(ranges, langRange{tag: tag, q: q})
		}
	}
	// Insertion sort: few ranges, no allocation.
	for i := 1; i < len(ranges); i++ {
		for j := i; j > 0 && langLess(ranges[j], ranges[j-1]); j-- {
			ranges[j], ranges[j-1] = ranges[j-1], ranges[j]
		}
	}
	for i, r := range ranges {
		if i > 0 {
			dst = append(dst, ',')
		}
		for k := 0; k < len(r.tag); k++ {
			c := r.tag[k]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		if r.q < 1000 {
			dst = append(dst, ";q=0."...)
			d := r.q
			digits := 3
			for d%10 == 0 {
				d /= 10
				digits--
			}
			for p := digits - 1; p >= 0; p-- {
				div := 1
				for k := 0; k < p; k++ {
					div *= 10
				}
				dst = append(dst, byte('0'+d/div%10))
			}
		}
	}
	return dst
}

func langLess(a, b langRange) bool {
	if a.q != b.q {
		return a.q > b.q
	}
	for i := 0; i < len(a.tag) && i < len(b.tag); i++ {
		ca, cb := lower(a.tag[i]), lower(b.tag[i])
		if ca != cb {
			return ca < cb
		}
	}
	return len(a.tag) < len(b.tag)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func cutSemicolon(s string) (before, after string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ';' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// langQ reads the q parameter from a member's parameters (RFC 9110
// §12.4.2) as thousandths: 1000 when absent or invalid.
func langQ(params string) int {
	for params != "" {
		var p string
		p, params = cutSemicolon(params)
		p = trimOWS(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		if q, ok := parseLangQ(p[2:]); ok {
			return q
		}
		return 1000
	}
	return 1000
}

// parseLangQ parses qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
func parseLangQ(s string) (int, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	whole := int(s[0] - '0')
	if len(s) == 1 {
		return whole * 1000, true
	}
	if s[1] != '.' || len(s) > 5 {
		return 0, false
	}
	frac, scale := 0, 100
	for i := 2; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		frac += int(s[i]-'0') * scale
		scale /= 10
	}
	if whole == 1 && frac != 0 {
		return 0, false
	}
	return whole*1000 + frac, true
}
