package config

import (
	"fmt"
	"net/textproto"
)

// Caching holds a route's HTTP caching extensions: targeted cache control
// (RFC 9213). The read path does not use them yet (policies.SelectTargeted
// implements them). Compression is the compress block (compress.go).
type Caching struct {
	// TargetedField names an edgecache-specific targeted cache-control
	// field (RFC 9213), tried before CDN-Cache-Control. Empty: only
	// CDN-Cache-Control.
	TargetedField string `koanf:"targeted_field"`
}

func (c *Config) ensureCachingDefaults() {}

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
