package compress

// Choose picks the coding to send for a request's Accept-Encoding (its
// lines, as http.Header holds them) among the codings an entry has
// (identity is always available):
//
//   - No Accept-Encoding: identity. RFC 9110 §12.5.3 allows any coding
//     then, but a client that sends no field rarely decodes one.
//   - Otherwise the available coding with the highest q-value wins; on a
//     tie the server's preference decides: br, then zstd, then gzip, then
//     identity. "x-gzip" is gzip (§8.4.1.3). "*" gives its weight to every
//     coding the field does not name. q=0 refuses a coding.
//   - identity is acceptable unless refused by "identity;q=0", or by
//     "*;q=0" without identity named. When it is refused and nothing else
//     is available, identity is still returned: §12.5.3 says to send the
//     response without a coding rather than fail (a 406 is allowed, not
//     required).
//
// Coding names are case-insensitive; an invalid q-value refuses the
// coding (a client that writes q=2 asks for nothing sensible). It does not
// allocate.
func Choose(acceptEncoding []string, have Set) Coding {
	if len(acceptEncoding) == 0 {
		return Identity
	}
	// q per coding in thousandths; -1 = not named.
	q := [4]int{-1, -1, -1, -1}
	star := -1
	for _, v := range acceptEncoding {
		for v != "" {
			var member string
			member, v = cut(v, ',')
			name, params := cut(member, ';')
			name = trim(name)
			if name == "" {
				continue
			}
			w := weight(params)
			switch {
			case eqFold(name, "br"):
				q[Brotli] = max(q[Brotli], w)
			case eqFold(name, "zstd"):
				q[Zstd] = max(q[Zstd], w)
			case eqFold(name, "gzip"), eqFold(name, "x-gzip"):
				q[Gzip] = max(q[Gzip], w)
			case eqFold(name, "identity"):
				q[Identity] = max(q[Identity], w)
			case name == "*":
				star = max(star, w)
			}
		}
	}
	for c := range q {
		if q[c] < 0 {
			switch {
			case star >= 0:
				q[c] = star
			case Coding(c) == Identity:
				q[c] = 1 // acceptable, but below any coding named with q > 0.001
			default:
				q[c] = 0
			}
		}
	}
	best, bestQ := Identity, q[Identity]
	for _, c := range [...]Coding{Gzip, Zstd, Brotli} {
		if have.Has(c) && q[c] > 0 && q[c] >= bestQ {
			best, bestQ = c, q[c]
		}
	}
	return best
}

// weight reads q from a member's parameters in thousandths: 1000 without
// one, 0 (refused) when invalid.
func weight(params string) int {
	for params != "" {
		var p string
		p, params = cut(params, ';')
		p = trim(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		return parseQ(p[2:])
	}
	return 1000
}

// parseQ parses RFC 9110 §12.4.2's qvalue into thousandths, 0 if invalid.
func parseQ(s string) int {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	whole := int(s[0] - '0')
	if len(s) == 1 {
		return whole * 1000
	}
	if s[1] != '.' || len(s) > 5 {
		return 0
	}
	frac, scale := 0, 100
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0
		}
		frac += int(s[i]-'0') * scale
		scale /= 10
	}
	if whole == 1 && frac != 0 {
		return 0
	}
	return whole*1000 + frac
}

func cut(s string, sep byte) (before, after string) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func trim(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func eqFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}
