package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/origins"
)

// pools are a generation's origin pools by name, with the config each
// was built from (to reuse an unchanged pool across a reload).
type pools map[string]*pool

type pool struct {
	*origins.Pool
	cfg config.Origin
}

// buildPools builds cfg's pools. A pool whose config did not change is
// taken from prev as it is, with its connections and health state; the
// others are new.
func buildPools(cfg *config.Config, prev *Generation) (pools, error) {
	out := make(pools, len(cfg.Origins))
	for i, oc := range cfg.Origins {
		if prev != nil {
			if old := prev.pools[oc.Name]; old != nil && reflect.DeepEqual(old.cfg, oc) {
				out[oc.Name] = old
				continue
			}
		}
		p, err := origins.New(oc.PoolOptions())
		if err != nil {
			out.closeExcept(prev)
			return nil, fmt.Errorf("gateway: origins[%d]: %w", i, err)
		}
		out[oc.Name] = &pool{Pool: p, cfg: oc}
	}
	return out, nil
}

// closeExcept closes the pools that none of keep has. A closed pool
// keeps serving the requests that still reach it.
func (ps pools) closeExcept(keep ...*Generation) {
	for name, p := range ps {
		kept := false
		for _, k := range keep {
			kept = kept || k != nil && k.pools[name] == p
		}
		if !kept {
			p.Close()
		}
	}
}

// usePool points rt at the pool its origin names, if it names one: the
// origin URL is then a placeholder whose host the pool replaces.
func (rt *route) usePool(ps pools, origin string, transport http.RoundTripper) {
	rt.transport = transport
	if p := ps[origin]; p != nil {
		rt.pool, rt.transport = p.Pool, p.Pool
		rt.origin = poolURL(origin)
		rt.retryAfter = []string{strconv.Itoa(max(int(p.RetryAfter().Seconds()), 1))}
	}
}

func poolURL(name string) *url.URL { return &url.URL{Scheme: "http", Host: name} }

// originHost is the Host of an origin request for a client's Host:
// routes[].origin_host.
func (rt *route) outHost(client string) string {
	switch rt.originHost {
	case config.OriginHostServer:
		return ""
	case config.OriginHostPreserve:
		return client
	}
	return rt.originHost
}

// refused reports whether err means the origin pool refused or could not
// reach a server: the client gets 503 with Retry-After, not 502.
func refused(err error) bool {
	return errors.Is(err, origins.ErrOverloaded) || errors.Is(err, origins.ErrUnavailable)
}

// writeRefused answers 503 with the pool's Retry-After.
func writeRefused(w http.ResponseWriter, rt *route, cs []string) {
	h := w.Header()
	h[hdrCacheStatus] = cs
	h[hdrAge] = ageZero
	h["Retry-After"] = rt.retryAfter
	w.WriteHeader(http.StatusServiceUnavailable)
}

// withUpstream puts the Cache-Status of an upstream cache (a shield
// edgecache) before ours: RFC 9211 §2 lists the cache closest to the
// origin first and the one closest to the user last.
func withUpstream(upstream, ours []string) []string {
	if len(upstream) == 0 {
		return ours
	}
	return []string{strings.Join(upstream, ", ") + ", " + strings.Join(ours, ", ")}
}

// PoolStatus is one origin pool and its servers in the admin status.
type PoolStatus = origins.PoolStats

// poolStats returns the stats of gen's pools, by name.
func (gen *Generation) poolStats() []origins.PoolStats {
	out := make([]origins.PoolStats, 0, len(gen.pools))
	for _, p := range gen.pools {
		out = append(out, p.Stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
