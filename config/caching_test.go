package config

import (
	"strings"
	"testing"
)

func TestCachingValidation(t *testing.T) {
	tests := []struct {
		name    string
		caching Caching
		want    string // "" = valid
	}{
		{"defaults", Caching{}, ""},
		{"own field", Caching{TargetedField: "Edgecache-Cache-Control"}, ""},
		{"field with space", Caching{TargetedField: "Edge Cache"}, "routes[0].caching.targeted_field: want a header field name"},
		{"field is Cache-Control", Caching{TargetedField: "cache-control"}, "routes[0].caching.targeted_field: \"cache-control\" is not an edgecache-specific field"},
		{"field is CDN-Cache-Control", Caching{TargetedField: "CDN-Cache-Control"}, "routes[0].caching.targeted_field:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Routes: []Route{{Origin: "http://127.0.0.1:1", Caching: tt.caching}}}
			err := c.EnsureDefaults().Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
