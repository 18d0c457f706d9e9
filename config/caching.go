package config

import (
	"fmt"
	"net/textproto"
	"slices"

	"github.com/edgecache/edgecache/internal/compress"
)

// Caching holds a route's HTTP caching extensions: targeted cache control
// (RFC 9213) and compression at fill time. The read path does not use them
// yet (policies.SelectTargeted and internal/compress implement them).
type Caching struct {
	// TargetedField names an edgecache-specific targeted cache-control
	// field (RFC 9213), tried before CDN-Cache-Control. Empty: only
	// CDN-Cache-Control.
	TargetedField string `koanf:"targeted_field"`
	// CompressTypes lists the media types compressed at fill time: a type
	// ("application/json"), a wildcard ("text/*") or a suffix ("*+json").
	// Empty: compress.DefaultTypes.
	CompressTypes []string `koanf:"compress_types"`
}

func (c *Config) ensureCachingDefaults() {
	for i := range c.Routes {
		if len(c.Routes[i].Caching.CompressTypes) == 0 {
			c.Routes[i].Caching.CompressTypes = slices.Clone(compress.DefaultTypes)
		}
	}
}

func (c *Config) validateCaching(bad func(field, format string, args ...any)) {
	for i, r := range c.Routes {
		f := fmt.Sprintf("routes[%d].caching", i)
		if name := r.Caching.TargetedField; name != "" {
			canon := textproto.CanonicalMIMEHeaderKey(name)
			switch {
			case !validFieldName(name):
				bad(f+".targeted_field", "want a header field name, got %q", name)
			case canon == "Cache-Control" || canon == "Cdn-Cache-Control":
				bad(f+".targeted_field", "%q is not an edgecache-specific field", name)
			}
		}
		for j, t := range r.Caching.CompressTypes {
			if !compress.ValidType(t) {
				bad(fmt.Sprintf("%s.compress_types[%d]", f, j), "want type/subtype, type/* or *+suffix, got %q", t)
			}
		}
	}
}

// validFieldName reports whether s is an RFC 9110 field name (a token).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' || c == '+' ||
			c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}
