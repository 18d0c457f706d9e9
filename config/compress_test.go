package config

import (
	"strings"
	"testing"

	"github.com/edgecache/edgecache/internal/compress"
)

func TestCompressValidation(t *testing.T) {
	tests := []struct {
		name          string
		global, route Compress
		want          string // "" = valid
	}{
		{"defaults", Compress{}, Compress{}, ""},
		{"custom", Compress{Types: []string{"text/*", "*+json"}, Codings: []string{"gzip"}}, Compress{Codings: []string{"zstd", "BR"}, MinBytes: 1}, ""},
		{"bad type", Compress{}, Compress{Types: []string{"text/html", "*/*"}}, "routes[0].compress.types[1]: want type/subtype"},
		{"bad global type", Compress{Types: []string{"html"}}, Compress{}, "compress.types[0]: want type/subtype"},
		{"unknown coding", Compress{}, Compress{Codings: []string{"br", "deflate"}}, "routes[0].compress.codings[1]: want br, zstd or gzip"},
		{"identity is no coding", Compress{Codings: []string{"identity"}}, Compress{}, "compress.codings[0]: want br, zstd or gzip"},
		{"twice", Compress{}, Compress{Codings: []string{"gzip", "GZIP"}}, "routes[0].compress.codings[1]: \"GZIP\" is listed twice"},
		{"negative min", Compress{}, Compress{MinBytes: -1}, "routes[0].compress.min_bytes: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Compress: tt.global, Routes: []Route{{Origin: "http://127.0.0.1:1", Compress: tt.route}}}
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

func TestCompressDefaults(t *testing.T) {
	c := (&Config{
		Compress: Compress{MinBytes: 1000, Codings: []string{"gzip"}},
		Routes:   []Route{{Origin: "http://a"}, {Origin: "http://b", Compress: Compress{Codings: []string{"br"}}}},
	}).EnsureDefaults()
	r0, r1 := c.Routes[0].Compress, c.Routes[1].Compress
	if strings.Join(r0.Types, ",") != strings.Join(compress.DefaultTypes, ",") || r0.MinBytes != 1000 || strings.Join(r0.Codings, ",") != "gzip" {
		t.Errorf("route 0 did not inherit: %+v", r0)
	}
	if strings.Join(r1.Codings, ",") != "br" || r1.MinBytes != 1000 {
		t.Errorf("route 1 override lost: %+v", r1)
	}
	r0.Types[0] = "changed"
	if compress.DefaultTypes[0] == "changed" || c.Compress.Types[0] == "changed" {
		t.Fatal("the type list is shared")
	}
	d := (&Config{Compress: Compress{Disabled: true}, Routes: []Route{{Origin: "http://a"}}}).EnsureDefaults()
	if !d.Routes[0].Compress.Disabled {
		t.Error("the top-level switch did not disable the route")
	}
	if got := strings.Join((&Config{}).EnsureDefaults().Compress.Codings, ","); got != "br,zstd,gzip" {
		t.Errorf("default codings %q", got)
	}
}
