package policies

import (
	"slices"
	"strings"
)

// DefaultKey is the built-in Key policy:
//
//	scheme "://" host path ["?" sorted query]
//
// The host is lower-cased (the gateway already does; this costs a scan).
// An empty path is "/", as RFC 9110 §4.2.3 makes them equivalent; the path
// is otherwise kept as sent, escaped. The query is split on '&', empty
// parameters are dropped and the rest sorted byte-wise by name, stably
// (a repeated name keeps its values in the order sent: origins commonly
// read the first), in their raw, escaped form (no decoding: "a=%41" and
// "a=A" stay different keys) and joined with '&'; a query with no parameter left adds no '?'. So
// "?b=2&a=1", "?a=1&b=2" and "?a=1&&b=2" name one entry, and "?" names the
// same entry as no query. The fragment never reaches the gateway.
//
// It allocates nothing beyond growing dst for queries of up to
// maxStackParams parameters.
type DefaultKey struct{}

var _ Key = DefaultKey{}

// maxStackParams is how many query parameters DefaultKey sorts without
// allocating.
const maxStackParams = 32

// AppendKey implements Key.
func (DefaultKey) AppendKey(dst []byte, r *Request) []byte {
	dst = append(dst, r.Scheme...)
	dst = append(dst, "://"...)
	dst = appendLower(dst, r.Host)
	if r.Path == "" {
		dst = append(dst, '/')
	} else {
		dst = append(dst, r.Path...)
	}
	return appendSortedQuery(dst, r.RawQuery)
}

// appendLower appends s lower-cased (ASCII only).
func appendLower(dst []byte, s string) []byte {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	dst = append(dst, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendSortedQuery appends "?" and the non-empty '&'-separated pieces of
// q, sorted, or nothing when q has none.
func appendSortedQuery(dst []byte, q string) []byte {
	var arr [maxStackParams]string
	params := arr[:0]
	for q != "" {
		var p string
		p, q, _ = strings.Cut(q, "&")
		if p != "" {
			params = append(params, p) // moves to the heap past the array
		}
	}
	if len(params) == 0 {
		return dst
	}
	// Sorted by name only, stably: a repeated name keeps its values in the
	// order sent, since origins commonly read the first ("?q=1&q=2" and
	// "?q=2&q=1" are different requests).
	if len(params) <= maxStackParams {
		insertionSort(params)
	} else {
		slices.SortStableFunc(params, func(a, b string) int { return strings.Compare(paramName(a), paramName(b)) })
	}
	dst = append(dst, '?')
	for i, p := range params {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p...)
	}
	return dst
}

// insertionSort sorts query pieces by name, stably.
func insertionSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && paramName(s[j]) < paramName(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// paramName is the name part of a raw "name=value" query piece.
func paramName(p string) string {
	if i := strings.IndexByte(p, '='); i >= 0 {
		return p[:i]
	}
	return p
}

// CanonicalHost is the host of the request view (Request.Host), as the
// gateway fills it from the Host header and `edgecache plugin run/test`
// from a URL: lower-cased, a default port (":80" or ":443", whatever the
// scheme) dropped; other ports stay, as they can be other sites. It does
// not allocate when there is nothing to change.
func CanonicalHost(h string) string {
	if strings.HasSuffix(h, ":80") {
		h = h[:len(h)-3]
	} else if strings.HasSuffix(h, ":443") {
		h = h[:len(h)-4]
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
