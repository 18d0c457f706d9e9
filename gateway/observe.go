package gateway

import (
	"context"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/edgecache/edgecache/internal/metrics"
	"github.com/edgecache/edgecache/internal/observe"
	"github.com/edgecache/edgecache/internal/telemetry"
)

// The read path's report of a request, and the wiring of
// internal/observe: which route counters, shard hooks and transports a
// generation gets, and what the scrape-time collectors read.

// outcome is what the read path did with one request.
type outcome = observe.Outcome

const (
	outHit        = observe.Hit         // served from the cache, fresh
	outStale      = observe.Stale       // served a stale entry (stale-while-revalidate, stale-if-error)
	outRevalidate = observe.Revalidated // revalidated with the origin (304), served from the cache
	outMiss       = observe.Miss        // fetched from the origin and stored
	outNoStore    = observe.NoStore     // fetched from the origin, not stored
	outBypass     = observe.Bypass      // the cache does not answer this request: proxied
	outError      = observe.Error       // the origin failed and nothing usable was cached
	outNoRoute    = observe.NoRoute     // no route matched
)

// record is what observe reports about one request. It lives in the
// pooled reqState: observe must not keep it.
type record struct {
	route   *route // nil for outNoRoute
	outcome outcome
	tier    tier   // for outHit and outStale
	status  int    // the status written to the client
	key     string // the cache key ("" when none was built)
	shard   string // the owning shard's name ("" for the embedded store)
}

// observe is called once per request on the traffic listener, after the
// response was written (see observe.Observer.Done for its cost).
func (g *Gateway) observe(r *http.Request, rec *record) {
	ev := observe.Event{Outcome: rec.outcome, Tier: tierOf(rec), Status: rec.status, Key: rec.key, Shard: rec.shard}
	if rt := rec.route; rt != nil {
		ev.Counters, ev.Route, ev.Prefix = g.counters(rt), rt.name, rt.prefix
	}
	g.obs.Done(r, &ev)
}

// counters returns rt's counters: resolved when its generation was
// instrumented, or (a request of a generation already replaced) by name.
func (g *Gateway) counters(rt *route) *observe.RouteCounters {
	if rc := (*g.routes.Load())[rt]; rc != nil {
		return rc
	}
	return g.obs.Counters(rt.name)
}

// tierOf says where the response came from.
func tierOf(rec *record) observe.Tier {
	switch rec.outcome {
	case outHit, outStale:
		switch rec.tier {
		case tierL2:
			return observe.L2
		case tierFallback:
			return observe.Fallback
		}
		return observe.L1
	case outNoRoute:
		return observe.None
	}
	return observe.Origin
}

// instrument prepares gen before it is published: the counters of its
// routes, the hooks of its shards, the access-log switch.
func (g *Gateway) instrument(gen *Generation) {
	m := make(map[*route]*observe.RouteCounters, len(gen.routes))
	for _, rt := range gen.routes {
		m[rt] = g.obs.Route(rt.name)
		if rt.pool != nil && g.obs.Tracing() {
			// A pool is the route's own transport: it gets the client
			// spans and the trace context the gateway's transport has.
			rt.transport = g.obs.WrapTransport(rt.pool)
			rt.proxy.Transport = rt.transport
		}
	}
	g.routes.Store(&m)
	if gen.shards != nil {
		for _, s := range gen.shards.Shards() {
			s.SetHooks(g.obs.ShardHooks())
		}
	}
	g.obs.SetAccess(gen.Config.Log.Access)
}

// owner names the shard of key in the serving generation, for spans.
func (g *Gateway) owner(key string) string {
	if gen := g.gen.Load(); gen != nil && gen.store != nil {
		return gen.store.owner(key)
	}
	return ""
}

// coalesced counts a request that waited on another's origin fetch.
func (g *Gateway) coalesced() { g.obs.Coalesced() }

// originDone records an origin fetch's duration.
func (g *Gateway) originDone(rt *route, d time.Duration) {
	var rc *observe.RouteCounters
	if rt != nil {
		rc = g.counters(rt)
	}
	g.obs.OriginDone(rc, d)
}

// metricsState is what the scrape-time collector exports.
func (g *Gateway) metricsState() metrics.State {
	gen := g.gen.Load()
	if gen == nil {
		return metrics.State{}
	}
	st := metrics.State{Generation: gen.ID, Plugins: gen.PluginStates(), Origins: gen.poolStats()}
	if gen.shards != nil {
		m := gen.shards.Map()
		for i, s := range gen.shards.Shards() {
			st.Shards = append(st.Shards, metrics.ShardState{Name: s.Name, Up: s.Healthy(), Open: s.Open(), Share: m.Share(i), L1: s.L1Off() == ""})
		}
	}
	if gen.mem != nil {
		st.Embedded = &metrics.EmbeddedState{Entries: gen.mem.Len(), Bytes: gen.mem.Bytes(), MaxBytes: gen.Config.Embedded.MaxBytes}
	}
	return st
}

// PluginStates returns the counters of the generation's WASM plugins, by
// name.
func (gen *Generation) PluginStates() []metrics.PluginState {
	out := make([]metrics.PluginState, 0, len(gen.plugins))
	for name, p := range gen.plugins {
		out = append(out, metrics.PluginState{Name: name, Stats: p.Stats()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// connContext gives each traffic connection its request-id slot.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return telemetry.ConnContext(ctx, c)
}
