package entry

import (
	"net/http"
	"strings"
)

// Filter copies the header fields of src that may be stored into dst, under
// canonical names. It drops:
//
//   - the hop-by-hop fields (RFC 9110 §7.6.1): Connection, Keep-Alive,
//     Proxy-Connection, Proxy-Authenticate, Proxy-Authentication-Info,
//     Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade, and
//     every field named in Connection;
//   - Set-Cookie and Set-Cookie2: one client's cookies are never served to
//     another;
//   - Age: the gateway computes it on every response;
//   - Content-Length: the gateway sets it from the stored body.
//
// Date and the validators (ETag, Last-Modified) are kept. The values are
// copied into one new slice, so dst shares no backing array with src;
// fields of src already in dst are appended to dst's values. Fields with no
// value are skipped.
func Filter(dst http.Header, src http.Header) {
	conn := src["Connection"]
	n := 0
	for k, vs := range src {
		if len(vs) > 0 && keep(http.CanonicalHeaderKey(k), conn) {
			n += len(vs)
		}
	}
	if n == 0 {
		return
	}
	vals := make([]string, 0, n)
	for k, vs := range src {
		if len(vs) == 0 {
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		if !keep(ck, conn) {
			continue
		}
		i := len(vals)
		vals = append(vals, vs...)
		if old, ok := dst[ck]; ok {
			dst[ck] = append(old[:len(old):len(old)], vals[i:]...)
		} else {
			dst[ck] = vals[i:len(vals):len(vals)]
		}
	}
}

// keep reports whether the field named k (canonical) may be stored, given
// the values of the response's Connection field.
func keep(k string, conn []string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authentication-Info", "Proxy-Authorization", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade",
		"Set-Cookie", "Set-Cookie2", "Age", "Content-Length":
		return false
	}
	for _, v := range conn {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), k) {
				return false
			}
		}
	}
	return true
}
