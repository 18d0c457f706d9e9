package config

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

// KnownMethods are the request methods the gateway serves; any other is
// answered 405 before routing, and a route's methods list picks from these.
var KnownMethods = []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}

// KnownMethod reports whether m is one of KnownMethods.
func KnownMethod(m string) bool {
	for _, k := range KnownMethods {
		if m == k {
			return true
		}
	}
	return false
}
