package policies

import (
	"net/url"
	"strings"
)

// DefaultMiss is the built-in Miss policy: it returns the zero MissAction,
// which fetches from the route's origin and stores as the TTL policy
// decides.
type DefaultMiss struct{}

var _ Miss = DefaultMiss{}

// OnMiss implements Miss.
func (DefaultMiss) OnMiss(*Request) MissAction { return MissAction{} }

// OriginAllowed reports whether a Miss policy's OriginURL may be fetched:
// an absolute http(s) URL whose host (host[:port], lower-cased, a default
// port dropped) is one of hosts. Anything else — another host, a
// userinfo part, a relative or unparsable URL — is refused, so that a
// plugin cannot make the gateway fetch arbitrary addresses (SSRF).
func OriginAllowed(rawURL string, hosts map[string]bool) bool {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return false
	}
	return hosts[CanonicalOriginHost(u.Scheme, u.Host)]
}

// CanonicalOriginHost is host (host[:port]) lower-cased, without the
// scheme's default port.
func CanonicalOriginHost(scheme, host string) string {
	host = strings.ToLower(host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	}
	return host
}
