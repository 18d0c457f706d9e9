package config

import (
	"slices"
	"strings"
)

// Limits bound what a client may send; requests beyond them get a 4xx.
type Limits struct {
	// MaxURIBytes bounds the request target (414 URI Too Long).
	MaxURIBytes int `koanf:"max_uri_bytes"`
	// MaxHeaderBytes bounds the request header section (431).
	MaxHeaderBytes int `koanf:"max_header_bytes"`
	// MaxRequestBodyBytes bounds request bodies proxied to the origin (413).
	MaxRequestBodyBytes int64 `koanf:"max_request_body_bytes"`
	// FillBufferBytes caps the bytes of origin bodies buffered at once for
	// fills in flight, over all requests; past it, responses stream to
	// their clients uncached.
	FillBufferBytes int64 `koanf:"fill_buffer_bytes"`
}

// Defaults of the limits.
const (
	DefaultMaxURIBytes         = 8 << 10
	DefaultMaxHeaderBytes      = 32 << 10
	DefaultMaxRequestBodyBytes = 16 << 20
	DefaultFillBufferBytes     = 256 << 20
)

func (c *Config) ensureLimitsDefaults() {
	setDefault(&c.Limits.MaxURIBytes, DefaultMaxURIBytes)
	setDefault(&c.Limits.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&c.Limits.MaxRequestBodyBytes, DefaultMaxRequestBodyBytes)
	setDefault(&c.Limits.FillBufferBytes, DefaultFillBufferBytes)
}

func (c *Config) validateLimits(bad func(field, format string, args ...any)) {
	if c.Limits.MaxURIBytes < 0 {
		bad("limits.max_uri_bytes", "must not be negative")
	}
	if c.Limits.MaxHeaderBytes < 0 {
		bad("limits.max_header_bytes", "must not be negative")
	}
	if c.Limits.MaxRequestBodyBytes < 0 {
		bad("limits.max_request_body_bytes", "must not be negative")
	}
	if c.Limits.FillBufferBytes < 0 {
		bad("limits.fill_buffer_bytes", "must not be negative")
	}
}

// KnownMethods are the request methods of RFC 9110 that the gateway serves,
// listed in the Allow of a 405 on a route without a methods list.
// Extension methods (RFC 9110 §16.1: WebDAV's PROPFIND, UPnP's M-SEARCH)
// are served too: they go to the origin uncached.
var KnownMethods = []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}

// RefusedMethods are answered 405 on every route: CONNECT because the
// gateway is not a tunnel, TRACE because it reflects the request's
// credentials back to a script (cross-site tracing); nginx refuses both.
var RefusedMethods = []string{"CONNECT", "TRACE"}

// KnownMethod reports whether m is one of KnownMethods.
func KnownMethod(m string) bool { return slices.Contains(KnownMethods, m) }

// ValidMethod reports whether m may name a method of a route: an RFC 9110
// token (§9.1, case-sensitive) that is not one of RefusedMethods, nor a
// known or refused method in another case ("post" is a typo far more often
// than the extension method it would be).
func ValidMethod(m string) bool {
	if m == "" || slices.Contains(RefusedMethods, m) {
		return false
	}
	for _, list := range [][]string{KnownMethods, RefusedMethods} {
		for _, k := range list {
			if m != k && strings.EqualFold(m, k) {
				return false
			}
		}
	}
	for i := 0; i < len(m); i++ {
		if !isTokenChar(m[i]) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c is a tchar (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
