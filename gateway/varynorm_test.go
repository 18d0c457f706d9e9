package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestVaryNormalization: variants are selected by the normalized value of
// each Vary field (RFC 9111 §4.1): Accept-Language as a weighted language
// set — order among equal weights, case and whitespace ignored, q=0
// dropped, a different preference a different variant — and any other
// field after list whitespace normalization.
func TestVaryNormalization(t *testing.T) {
	var n atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Vary", "Accept-Language, X-Flavour")
		_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language")+" flavour="+r.Header.Get("X-Flavour"))
	}))
	defer origin.Close()
	cfg := testConfig(origin.URL, nil)
	_, base := startGateway(t, cfg)
	send := func(lang, flavour string) result {
		return getWith(t, base+"/page", "Accept-Language", lang, "X-Flavour", flavour)
	}
	send("fr, en;q=0.5", "a,b") // stored
	for _, tc := range []struct {
		lang, flavour string
		hit           bool
	}{
		{"fr, en;q=0.5", "a,b", true},
		{"FR,EN;q=0.50", "a , b", true},
		{"en;q=0.5, fr;q=1", " a,b ", true},
		{"fr, en;q=0.5, de;q=0", "a,b", true}, // q=0: refused, as if absent
		{"en, fr;q=0.5", "a,b", false},        // another preference
		{"fr", "a,b", false},
		{"fr, en;q=0.5", "b,a", false}, // an unknown field's order may matter
	} {
		before := n.Load()
		r := send(tc.lang, tc.flavour)
		hit := strings.HasPrefix(r.cacheStatus, "edgecache; hit")
		if hit != tc.hit || hit && n.Load() != before {
			t.Errorf("Accept-Language %q X-Flavour %q: %q, want hit=%v", tc.lang, tc.flavour, r.cacheStatus, tc.hit)
		}
	}
}
