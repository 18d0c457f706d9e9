package policies

import "strings"

// LoopCount returns how many members of the CDN-Loop field values vals
// (RFC 8586: cdn-id [; parameters], comma-separated) name the CDN name,
// compared case-insensitively. It does not allocate.
func LoopCount(vals []string, name string) int {
	n := 0
	for _, v := range vals {
		for v != "" {
			var member string
			member, v, _ = strings.Cut(v, ",")
			id, _, _ := strings.Cut(member, ";")
			if strings.EqualFold(trimOWS(id), name) {
				n++
			}
		}
	}
	return n
}
