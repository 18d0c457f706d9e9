package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/edgecache/edgecache/internal/entry"
	"github.com/edgecache/edgecache/policies"
)

// Vary
//
// A response with Vary is stored under a variant key; the primary key
// holds a marker: a small entry naming the request headers that select
// the variant, and a random id. A lookup that finds a marker builds the
// variant key from the request's values of those headers and reads it.
// Deleting the marker (a purge by URL, an invalidation) orphans every
// variant at once, and the id keeps orphans from coming back under a new
// marker. A soft purge of the marker sets its fresh-until, and variants
// stored before that instant count as stale.

// hdrVaryMarker is the marker's internal header; origin responses never
// carry it into the cache (stripInternal).
const hdrVaryMarker = "Edgecache-Vary-Marker"

// markerFresh is the fresh-until of a marker that was never soft-purged.
var markerFresh = entry.MaxTime

// varyNames returns the canonical header names a Vary field lists, sorted
// and deduplicated, or nil.
func varyNames(values []string) []string {
	var names []string
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				names = append(names, http.CanonicalHeaderKey(f))
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// appendVariant appends to dst the suffix that selects the variant of
// names for request header h: the marker id, then each header's
// normalized value. Only the fields a fill forwards count (forwarding.
// forwards): one the origin never saw cannot select its answer. The
// Accept-Encoding variant is coding, the content coding of the response
// ("" for none; policies.PreferredCoding of the request on lookups).
func (rt *route) appendVariant(dst []byte, id string, names []string, h http.Header, coding string) []byte {
	dst = append(dst, "\x00v:"...)
	dst = append(dst, id...)
	for _, n := range names {
		dst = append(dst, 0)
		dst = append(dst, n...)
		dst = append(dst, '=')
		switch {
		case n == "Accept-Encoding":
			dst = append(dst, coding...)
		case rt.fwd.forwards(n, h):
			dst = policies.AppendVariantValue(dst, n, h[n], rt.varyNormalize[n])
		}
	}
	return dst
}

// variesOnCoding reports whether names lists Accept-Encoding.
func variesOnCoding(names []string) bool {
	for _, n := range names {
		if n == "Accept-Encoding" {
			return true
		}
	}
	return false
}

// newMarker encodes a marker for names with a new random id.
func newMarker(names []string, now time.Time) (val []byte, id string) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id = hex.EncodeToString(b[:])
	e := entry.Entry{
		Status:     200,
		StoredAt:   now,
		FreshUntil: markerFresh,
		Header:     http.Header{"Vary": names, hdrVaryMarker: {id}},
	}
	return entry.Encode(nil, &e), id
}

// stripInternal removes internal headers an origin must not smuggle into
// the cache.
func stripInternal(h http.Header) {
	delete(h, hdrVaryMarker)
	delete(h, hdrRevalidate)
	delete(h, hdrEarlyHints)
	delete(h, hdrCodings)
}
