package gateway

import (
	"net/url"
	"strings"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/policies"
)

// allowedOrigins is the set of hosts a miss plugin of a route may send
// its request to: the route's origin host, and each allowed_origins entry
// of the route's plugins. An entry without a scheme allows that host for
// both http and https.
func allowedOrigins(origin *url.URL, names []string, plugins []config.Plugin) map[string]bool {
	hosts := map[string]bool{policies.CanonicalOriginHost(origin.Scheme, origin.Host): true}
	for _, p := range plugins {
		if !contains(names, p.Name) {
			continue
		}
		for _, o := range p.AllowedOrigins {
			h := config.OriginHost(o)
			if i := strings.Index(o, "://"); i > 0 {
				hosts[policies.CanonicalOriginHost(o[:i], h)] = true
				continue
			}
			hosts[policies.CanonicalOriginHost("http", h)] = true
			hosts[policies.CanonicalOriginHost("https", h)] = true
		}
	}
	return hosts
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
