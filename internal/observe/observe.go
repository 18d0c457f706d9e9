package observe

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/edgecache/edgecache/internal/metrics"
	"github.com/edgecache/edgecache/internal/telemetry"
	"github.com/edgecache/edgecache/shardmap"
)

// Outcome is what the read path did with one request.
type Outcome uint8

// The outcomes, in the order of their metric label values (Outcomes).
const (
	Hit         Outcome = iota // served from the cache, fresh
	Stale                      // served a stale entry (stale-while-revalidate, stale-if-error)
	Revalidated                // revalidated with the origin (304), served from the cache
	Miss                       // fetched from the origin and stored
	NoStore                    // fetched from the origin, not stored
	Bypass                     // the cache does not answer this request: proxied
	Error                      // the origin failed and nothing usable was cached
	NoRoute                    // no route matched
)

// outcomeNames are the cache label values of the outcomes.
var outcomeNames = [...]string{"hit", "stale", "revalidated", "miss", "no-store", "bypass", "error", "no-route"}

func (o Outcome) String() string { return outcomeNames[o] }

// Tier says where a response came from.
type Tier uint8

// The tiers.
const (
	L1       Tier = iota // in-process: the client-side cache or the embedded store
	L2                   // a round trip to the shard
	Fallback             // in-process, standing in for a shard that failed
	Origin               // the origin
	None                 // no route: nowhere
)

var tierNames = [...]string{"l1", "l2", "fallback", "origin", "none"}

func (t Tier) String() string { return tierNames[t] }

// Event is what the gateway reports about one finished request. It may
// live in pooled request state: the Observer does not keep it.
type Event struct {
	Counters *RouteCounters // the route's counters (Route); nil: no route
	Route    string         // the route's name ("" for none)
	Prefix   string         // the route's path prefix
	Outcome  Outcome
	Tier     Tier
	Status   int    // the status written to the client
	Key      string // the cache key ("" when none was built)
	Shard    string // the owning shard's name ("" for the embedded store or when unknown)
}

// RouteCounters are a route's request counters and origin histogram.
type RouteCounters = metrics.RouteCounters

// Observer reports requests, origin fetches and shard round trips.
type Observer struct {
	m       *metrics.Metrics
	shards  *metrics.Shards
	hooks   *shardmap.Hooks
	log     *slog.Logger
	noRoute *RouteCounters

	tracing bool
	tracer  trace.Tracer
	tp      trace.TracerProvider // for the origin transports' client spans
	prop    propagation.TextMapPropagator

	access atomic.Bool

	// owner names the shard that owns a key, for a span whose event
	// names none; set once before serving (nil: none).
	owner func(key string) string
}

// New returns an Observer with metrics of its own; spans are made when t
// is not nil and Enabled, through log the access log is written.
func New(t *telemetry.Tracing, log *slog.Logger) *Observer {
	o := &Observer{m: metrics.New(), log: log}
	o.shards = o.m.Shards()
	o.noRoute = o.m.Route("none", outcomeNames[:])
	if t != nil {
		o.tp, o.prop = t.Provider, t.Propagator
		if t.Enabled {
			o.tracing = true
			o.tracer = t.Provider.Tracer(ScopeName)
		}
	}
	o.hooks = &shardmap.Hooks{Command: o.shardCommand}
	return o
}

// Metrics returns the metrics reported to.
func (o *Observer) Metrics() *metrics.Metrics { return o.m }

// Tracing reports whether spans are made.
func (o *Observer) Tracing() bool { return o.tracing }

// SetAccess turns the access log on or off.
func (o *Observer) SetAccess(on bool) { o.access.Store(on) }

// SetOwner sets how a span names the shard of a key when the event names
// none. Call it before serving.
func (o *Observer) SetOwner(owner func(key string) string) { o.owner = owner }

// ShardHooks are the hooks to set on every shard: a histogram sample per
// command and, on a traced request, a client span.
func (o *Observer) ShardHooks() *shardmap.Hooks { return o.hooks }

// Route returns the counters of route name, with the children of the
// common outcomes created so that they are exported, at zero, before the
// first request.
func (o *Observer) Route(name string) *RouteCounters {
	rc := o.Counters(name)
	rc.Prepare(http.MethodGet, uint8(Hit), http.StatusOK)
	rc.Prepare(http.MethodGet, uint8(Miss), http.StatusOK)
	return rc
}

// Counters returns the counters of route name, as they are.
func (o *Observer) Counters(name string) *RouteCounters {
	return o.m.Route(name, outcomeNames[:])
}

// Done reports a finished request. It must cost nothing measurable on the
// hit path when tracing and the access log are off: two atomic adds and
// the move of the connection's request-id slot.
func (o *Observer) Done(r *http.Request, ev *Event) {
	rc := ev.Counters
	if rc == nil {
		rc = o.noRoute
	}
	rc.Inc(r.Method, uint8(ev.Outcome), ev.Status)
	if ev.Outcome == Hit || ev.Outcome == Stale {
		switch ev.Tier {
		case L1:
			o.m.HitsL1.Inc()
		case L2:
			o.m.HitsL2.Inc()
		default:
			o.m.HitsFallback.Inc()
		}
	}
	if o.tracing {
		o.annotate(r, ev)
	}
	if o.access.Load() {
		o.accessLog(r, ev)
	}
	telemetry.EndRequest(r.Context())
}

// Coalesced counts a request that waited on another's origin fetch.
func (o *Observer) Coalesced() { o.m.Coalesced.Inc() }

// OriginDone records an origin fetch's duration on rc (nil: no route).
func (o *Observer) OriginDone(rc *RouteCounters, d time.Duration) {
	if rc == nil {
		rc = o.noRoute
	}
	rc.Origin.Observe(d.Seconds())
}

// shardCommand is the shards' Command hook: a histogram sample, and a
// client span when the request is traced (started after the fact, at the
// command's start).
func (o *Observer) shardCommand(ctx context.Context, shard, cmd string, start time.Time, err error) {
	end := time.Now()
	o.shards.Command(shard, cmd, end.Sub(start), err)
	if !o.tracing {
		return
	}
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		return
	}
	_, span := o.tracer.Start(ctx, "valkey "+cmd, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.DBSystemNameKey.String("valkey"), semconv.DBOperationName(cmd), AttrShard.String(shard)))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End(trace.WithTimestamp(end))
}

// accessLog writes one line for a finished request, with its request and
// trace ids (through the logger's context handler).
func (o *Observer) accessLog(r *http.Request, ev *Event) {
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", ev.Status),
		slog.String("route", ev.Route),
		slog.String("cache", ev.Outcome.String()),
		slog.String("tier", ev.Tier.String()),
		slog.String("remote", r.RemoteAddr),
	}
	if ev.Shard != "" {
		attrs = append(attrs, slog.String("shard", ev.Shard))
	}
	if ev.Key != "" {
		attrs = append(attrs, slog.String("key_hash", KeyHash(ev.Key)))
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		attrs = append(attrs, slog.String("client_request_id", id))
	}
	o.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// KeyHash is a stable, non-reversible name of a cache key for spans and
// logs: FNV-1a 64, hex. It is the same on every gateway.
func KeyHash(key string) string {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	return strconv.FormatUint(h, 16)
}
