package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/edgecache/edgecache/internal/compress"
)

// DefaultCompressMinBytes is the smallest body compressed (on demand: when
// a client first asks for a coding): below it a coding saves too few bytes to pay for its headers (nginx's
// gzip_min_length defaults to 20, Cloudflare's to 50; a few hundred bytes
// is where br and gzip start to save more than a packet's worth).
const DefaultCompressMinBytes = 256

// DefaultCompressCodings are the codings made on demand (when a client
// first picks one), in the server's order of preference when a client weighs several equally.
var DefaultCompressCodings = []string{"br", "zstd", "gzip"}

// Compress is which responses the cache encodes, once per coding when a
// client first asks for it. The top-level block is the default of every route; a route's block
// overrides it field by field (zero fields inherit).
type Compress struct {
	// Disabled stores responses only as the origin sent them. The
	// top-level switch disables every route.
	Disabled bool `koanf:"disabled"`
	// Types lists the media types compressed: a type ("application/json"),
	// a wildcard ("text/*") or a suffix ("*+json"). Empty:
	// compress.DefaultTypes.
	Types []string `koanf:"types"`
	// Codings lists the codings made, of br, zstd and gzip, in the order
	// the server prefers on a client's tie. Empty: br, zstd, gzip.
	Codings []string `koanf:"codings"`
	// MinBytes is the smallest body compressed.
	MinBytes int `koanf:"min_bytes"`
}

func (c *Config) ensureCompressDefaults() {
	g := &c.Compress
	if len(g.Types) == 0 {
		g.Types = slices.Clone(compress.DefaultTypes)
	}
	if len(g.Codings) == 0 {
		g.Codings = slices.Clone(DefaultCompressCodings)
	}
	setDefault(&g.MinBytes, DefaultCompressMinBytes)
	for i := range c.Routes {
		r := &c.Routes[i].Compress
		r.Disabled = r.Disabled || g.Disabled
		if len(r.Types) == 0 {
			r.Types = slices.Clone(g.Types)
		}
		if len(r.Codings) == 0 {
			r.Codings = slices.Clone(g.Codings)
		}
		setDefault(&r.MinBytes, g.MinBytes)
	}
}

func (c *Config) validateCompress(bad func(field, format string, args ...any)) {
	c.Compress.validate("compress", bad)
	for i := range c.Routes {
		c.Routes[i].Compress.validate(fmt.Sprintf("routes[%d].compress", i), bad)
	}
}

func (cc *Compress) validate(f string, bad func(field, format string, args ...any)) {
	for j, t := range cc.Types {
		if !compress.ValidType(t) {
			bad(fmt.Sprintf("%s.types[%d]", f, j), "want type/subtype, type/* or *+suffix, got %q", t)
		}
	}
	seen := map[string]bool{}
	for j, name := range cc.Codings {
		n := strings.ToLower(strings.TrimSpace(name))
		switch {
		case n != "br" && n != "zstd" && n != "gzip":
			bad(fmt.Sprintf("%s.codings[%d]", f, j), "want br, zstd or gzip, got %q", name)
		case seen[n]:
			bad(fmt.Sprintf("%s.codings[%d]", f, j), "%q is listed twice", name)
		}
		seen[n] = true
	}
	if cc.MinBytes < 0 {
		bad(f+".min_bytes", "must not be negative, got %d", cc.MinBytes)
	}
}
