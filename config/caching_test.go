package config

import (
	"strings"
	"testing"

	"github.com/edgecache/edgecache/internal/compress"
)

func TestCachingValidation(t *testing.T) {
	tests := []struct {
		name    string
		caching Caching
		want    string // "" = valid
	}{
		{"defaults", Caching{}, ""},
		{"own field", Caching{TargetedField: "Edgecache-Cache-Control"}, ""},
		{"custom types", Caching{CompressTypes: []string{"text/*", "*+json", "application/x-thing"}}, ""},
		{"field with space", Caching{TargetedField: "Edge Cache"}, "routes[0].caching.targeted_field: want a header field name"},
		{"field is Cache-Control", Caching{TargetedField: "cache-control"}, "routes[0].caching.targeted_field: \"cache-control\" is not an edgecache-specific field"},
		{"field is CDN-Cache-Control", Caching{TargetedField: "CDN-Cache-Control"}, "routes[0].caching.targeted_field:"},
		{"bad type", Caching{CompressTypes: []string{"text/html", "*/*"}}, "routes[0].caching.compress_types[1]: want type/subtype"},
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

func TestCachingDefaults(t *testing.T) {
	c := (&Config{Routes: []Route{{Origin: "http://127.0.0.1:1"}}}).EnsureDefaults()
	got := c.Routes[0].Caching.CompressTypes
	if strings.Join(got, ",") != strings.Join(compress.DefaultTypes, ",") {
		t.Fatalf("CompressTypes = %v", got)
	}
	got[0] = "changed"
	if compress.DefaultTypes[0] == "changed" {
		t.Fatal("the default list is shared with the config")
	}
}
