package policies

import (
	"net/http"
	"testing"
)

// TestDefaultTTLTargetedField: the route's own targeted field is tried
// before CDN-Cache-Control, and an invalid one falls back to it.
func TestDefaultTTLTargetedField(t *testing.T) {
	req := &Request{Method: "GET", Header: http.Header{}}
	p := DefaultTTL{TargetedField: "Edgecache-Cache-Control"}
	tests := []struct {
		name string
		h    http.Header
		want Decision
	}{
		{"own wins", http.Header{"Edgecache-Cache-Control": {"max-age=5"}, CDNCacheControl: {"max-age=50"}, "Cache-Control": {"max-age=500"}}, Decision{Store: true, TTL: 5e9}},
		{"own invalid, CDN next", http.Header{"Edgecache-Cache-Control": {"max-age=5,"}, CDNCacheControl: {"max-age=50"}}, Decision{Store: true, TTL: 50e9}},
		{"own no-store", http.Header{"Edgecache-Cache-Control": {"no-store"}, "Cache-Control": {"max-age=500"}}, Decision{Reason: ReasonNoStore}},
		{"neither", http.Header{"Cache-Control": {"max-age=500"}}, Decision{Store: true, TTL: 500e9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Decide(req, &Response{Status: 200, Header: tt.h}, ttlNow)
			if got.Store != tt.want.Store || got.TTL != tt.want.TTL || got.Reason != tt.want.Reason {
				t.Fatalf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
	resp := &Response{Status: 200, Header: http.Header{"Edgecache-Cache-Control": {"max-age=5"}, "Age": {"1"}}}
	if n := testing.AllocsPerRun(100, func() { p.Decide(req, resp, ttlNow) }); n != 0 {
		t.Fatalf("Decide with a targeted field: %v allocs", n)
	}
}
