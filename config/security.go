package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Safe defaults
//
// What a fill forwards and what it stores are chosen as nginx, Varnish and
// the CDNs ship them (RATIONALE.md, "Safe by default"): a response with
// Set-Cookie is not stored (routes[].cache_set_cookie opts in), a response
// to a request with Cookie is stored only under the origin's explicit
// freshness (routes[].cache_with_cookie), request header names with an
// underscore are dropped (forwarding.allow_underscores_in_headers), the
// X-Forwarded-* and Forwarded fields are the gateway's own unless the peer
// is a trusted proxy (forwarding.trusted_proxies), and a client's no-cache
// is ignored (routes[].honor_client_no_cache).

// Forwarding is what the gateway tells origins about a request, and how
// it recognizes a request that came back to it (a proxy loop).
type Forwarding struct {
	// TrustedProxies lists the CIDR prefixes (or single addresses) of
	// proxies in front of the gateway whose X-Forwarded-For, Forwarded,
	// X-Forwarded-Proto and X-Forwarded-Host are kept (the gateway's own
	// entry appended). From any other peer they are replaced.
	TrustedProxies []string `koanf:"trusted_proxies"`
	// AllowUnderscoresInHeaders forwards request header fields whose name
	// has an underscore; by default they are dropped (nginx's
	// underscores_in_headers off), since CGI-style origins fold "_" and "-"
	// into one name.
	AllowUnderscoresInHeaders bool `koanf:"allow_underscores_in_headers"`
	// CDNLoop is the gateway's name in the CDN-Loop field it adds to
	// origin requests (RFC 8586).
	CDNLoop string `koanf:"cdn_loop"`
	// MaxLoops is how many times a request may already name this gateway
	// in CDN-Loop; more is answered 508 Loop Detected. Negative refuses
	// any request that names it.
	MaxLoops int `koanf:"max_loops"`
}

// Defaults of the forwarding section.
const (
	DefaultCDNLoop  = "edgecache"
	DefaultMaxLoops = 1
)

func (c *Config) ensureForwardingDefaults() {
	setDefault(&c.Forwarding.CDNLoop, DefaultCDNLoop)
	setDefault(&c.Forwarding.MaxLoops, DefaultMaxLoops)
}

func (c *Config) validateForwarding(bad func(field, format string, args ...any)) {
	for i, p := range c.Forwarding.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("forwarding.trusted_proxies[%d]", i), "%v", err)
		}
	}
	if n := c.Forwarding.CDNLoop; strings.ContainsAny(n, " \t,;\"") {
		bad("forwarding.cdn_loop", "want a token (no spaces, commas, semicolons or quotes), got %q", n)
	}
	for i, p := range c.Plugins {
		for j, o := range p.AllowedOrigins {
			if OriginHost(o) == "" {
				bad(fmt.Sprintf("plugins[%d].allowed_origins[%d]", i, j), "want a host, host:port or http(s) URL, got %q", o)
			}
		}
	}
	for i, r := range c.Routes {
		if r.IgnoreClientNoCache && r.HonorClientNoCache {
			bad(fmt.Sprintf("routes[%d].honor_client_no_cache", i), "contradicts ignore_client_no_cache: set only one")
		}
	}
}

// ParsePrefix reads a CIDR prefix, or a single address as a full-length
// prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("config: want a CIDR prefix or an address: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("config: want a CIDR prefix or an address: %w", err)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// OriginHost returns the lower-cased host (with its port, if any) an
// allowed_origins entry names: a URL's host, or the entry itself; "" if
// it names none.
func OriginHost(s string) string {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return ""
		}
		return strings.ToLower(u.Host)
	}
	if s == "" || strings.ContainsAny(s, "/?# \t") {
		return ""
	}
	return strings.ToLower(s)
}
