package gateway

import (
	"net/http"
	"time"

	"github.com/edgecache/edgecache/internal/telemetry"
)

// outcome is what the read path did with one request.
type outcome uint8

const (
	outHit        outcome = iota // served from the cache, fresh
	outStale                     // served a stale entry (stale-while-revalidate, stale-if-error)
	outRevalidate                // revalidated with the origin (304), served from the cache
	outMiss                      // fetched from the origin and stored
	outNoStore                   // fetched from the origin, not stored
	outBypass                    // the cache does not answer this request: proxied
	outError                     // the origin failed and nothing usable was cached
	outNoRoute                   // no route matched
)

var outcomeNames = [...]string{"hit", "stale", "revalidated", "miss", "no-store", "bypass", "error", "no-route"}

func (o outcome) String() string { return outcomeNames[o] }

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
// response was written. It must cost nothing measurable on the hit path
// when tracing is off: there it is two map loads and two atomic adds
// (the request counter, the tier's hit counter) and the move of the
// connection's request-id slot.
func (g *Gateway) observe(r *http.Request, rec *record) {
	o := g.obs
	o.route(rec.route).Inc(r.Method, uint8(rec.outcome), rec.status)
	if rec.outcome == outHit || rec.outcome == outStale {
		switch rec.tier {
		case tierL1:
			o.m.HitsL1.Inc()
		case tierL2:
			o.m.HitsL2.Inc()
		default:
			o.m.HitsFallback.Inc()
		}
	}
	if o.tracing {
		o.annotate(g, r, rec)
	}
	if o.access.Load() {
		o.accessLog(r, rec)
	}
	telemetry.EndRequest(r.Context())
}

// coalesced counts a request that waited on another's origin fetch.
func (g *Gateway) coalesced() { g.obs.m.Coalesced.Inc() }

// originDone records an origin fetch's duration.
func (g *Gateway) originDone(rt *route, d time.Duration) {
	g.obs.route(rt).Origin.Observe(d.Seconds())
}
