package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/edgecache/edgecache/internal/metrics"
	"github.com/edgecache/edgecache/internal/telemetry"
	"github.com/edgecache/edgecache/shardmap"
)

// ScopeName is the instrumentation scope of the gateway's spans.
const ScopeName = "github.com/edgecache/edgecache/gateway"

// Attribute keys of the cache decision on a request's server span. The
// key itself is never recorded (it may hold a token from a query string):
// only a hash of it, enough to find every request of one entry.
const (
	AttrRoute   = attribute.Key("edgecache.route")
	AttrOutcome = attribute.Key("edgecache.cache.outcome") // hit, stale, revalidated, miss, no-store, bypass, error, no-route
	AttrTier    = attribute.Key("edgecache.cache.tier")    // l1, l2, fallback, origin
	AttrShard   = attribute.Key("edgecache.shard")
	AttrKeyHash = attribute.Key("edgecache.cache.key_hash") // FNV-1a 64 of the key, hex
)

// observer is what the gateway reports with: metrics always, spans when
// tracing is on, access-log lines when log.access is. Everything the hit
// path touches is resolved in advance.
type observer struct {
	m      *metrics.Metrics
	shards *metrics.Shards
	hooks  *shardmap.Hooks
	log    *slog.Logger

	routes  atomic.Pointer[map[*route]*metrics.RouteCounters]
	noRoute *metrics.RouteCounters

	tracing bool
	tracer  trace.Tracer
	tp      trace.TracerProvider // for origin pools' client spans
	prop    propagation.TextMapPropagator

	access atomic.Bool

	hist    *history
	stop    chan struct{}
	stopped sync.WaitGroup
}

func newObserver(o Options, log *slog.Logger) *observer {
	ob := &observer{m: metrics.New(), log: log, stop: make(chan struct{})}
	ob.shards = ob.m.Shards()
	ob.noRoute = ob.m.Route("none", outcomeNames[:])
	if t := o.Tracing; t != nil && t.Enabled {
		ob.tracing = true
		ob.tracer = t.Provider.Tracer(ScopeName)
		ob.tp = t.Provider
		ob.prop = t.Propagator
	}
	ob.hooks = &shardmap.Hooks{Command: ob.shardCommand}
	ob.hist = newHistory(historySize)
	return ob
}

// start registers the scrape-time collectors of g and starts sampling
// the hit ratio for the status page.
func (o *observer) start(g *Gateway) {
	o.m.WatchState(g.metricsState)
	o.stopped.Add(1)
	go func() {
		defer o.stopped.Done()
		t := time.NewTicker(historyInterval)
		defer t.Stop()
		o.hist.sample(o.m, time.Now())
		for {
			select {
			case <-o.stop:
				return
			case now := <-t.C:
				o.hist.sample(o.m, now)
			}
		}
	}()
}

// close stops the sampler and waits for it.
func (o *observer) close() {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	o.stopped.Wait()
}

// instrument prepares gen before it is published: the counters of its
// routes, the hooks of its shards, the access-log switch.
func (o *observer) instrument(gen *Generation) {
	m := make(map[*route]*metrics.RouteCounters, len(gen.routes))
	for _, rt := range gen.routes {
		rc := o.m.Route(rt.name, outcomeNames[:])
		rc.Prepare(http.MethodGet, uint8(outHit), http.StatusOK)
		rc.Prepare(http.MethodGet, uint8(outMiss), http.StatusOK)
		m[rt] = rc
		if rt.pool != nil && o.tracing {
			// A pool is the route's own transport: it gets the client
			// spans and the trace context the gateway's transport has.
			rt.transport = o.wrapTransport(rt.pool, o.tp)
			rt.proxy.Transport = rt.transport
		}
	}
	o.routes.Store(&m)
	if gen.shards != nil {
		for _, s := range gen.shards.Shards() {
			s.SetHooks(o.hooks)
		}
	}
	o.access.Store(gen.Config.Log.Access)
}

// route returns rt's counters: resolved when its generation was
// instrumented, or (a request of a generation already replaced) by name.
func (o *observer) route(rt *route) *metrics.RouteCounters {
	if rt == nil {
		return o.noRoute
	}
	if rc := (*o.routes.Load())[rt]; rc != nil {
		return rc
	}
	return o.m.Route(rt.name, outcomeNames[:])
}

// wrapTransport makes origin requests client spans that carry W3C trace
// context to the origin. Without tracing it returns t unchanged.
func (o *observer) wrapTransport(t http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	if !o.tracing {
		return t
	}
	return otelhttp.NewTransport(t,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(o.prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus'
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "origin " + r.Method }),
	)
}

// shardCommand is the shards' Command hook: a histogram sample, and a
// client span when the request is traced (started after the fact, at the
// command's start).
func (o *observer) shardCommand(ctx context.Context, shard, cmd string, start time.Time, err error) {
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

// wrap returns the traffic handler h with the server-span middleware when
// tracing is on, h itself otherwise. It wraps once, here: echo's e.Use and
// route-level middleware chain closures per request.
func (o *observer) wrap(h echo.HandlerFunc) echo.HandlerFunc {
	if !o.tracing {
		return h
	}
	return o.traceMiddleware(h)
}

// traceMiddleware starts the server span of a request on the traffic
// listener, modelled on OpenTelemetry contrib's otelecho: trace context
// extracted from the request, HTTP semantic-convention attributes, the
// status set from the response. The cache decision is added by observe.
// Attributes are built only for a recording (sampled) span, and the
// propagator runs only when the request carries trace context (its
// header lookups allocate).
func (o *observer) traceMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		ctx := r.Context()
		if len(r.Header["Traceparent"])+len(r.Header["Baggage"]) > 0 {
			ctx = o.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		ctx, span := o.tracer.Start(ctx, spanMethod(r.Method), serverStart...)
		defer span.End()
		c.SetRequest(r.WithContext(ctx))
		if span.IsRecording() {
			span.SetAttributes(serverAttrs(r)...)
		}
		err := next(c)
		if err != nil {
			c.Error(err) // write the error response now, so that its status is known
		}
		if span.IsRecording() {
			status := c.Response().Status
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			if status >= 500 {
				span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
				span.SetStatus(codes.Error, "")
			}
		}
		return nil
	}
}

// serverStart are the server span's start options, built once: a
// variadic argument built per call escapes through the Tracer interface.
var serverStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// spanMethod is the span name's method: a known method, or "HTTP".
func spanMethod(m string) string {
	if metrics.MethodIndex(m) == uint8(len(metrics.Methods)-1) {
		return "HTTP"
	}
	return m
}

// serverAttrs are the HTTP server span attributes of r (semantic
// conventions 1.43). The query is left out: it may carry credentials.
func serverAttrs(r *http.Request) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 10)
	if i := metrics.MethodIndex(r.Method); i == uint8(len(metrics.Methods)-1) {
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String("_OTHER"), semconv.HTTPRequestMethodOriginal(r.Method))
	} else {
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(r.Method))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs, semconv.URLScheme(scheme), semconv.URLPath(r.URL.Path))
	if host, port, err := net.SplitHostPort(r.Host); err == nil {
		attrs = append(attrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	} else if r.Host != "" {
		attrs = append(attrs, semconv.ServerAddress(r.Host))
	}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, semconv.ClientAddress(host), semconv.NetworkPeerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.NetworkPeerPort(p))
		}
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	switch r.ProtoMajor {
	case 1:
		attrs = append(attrs, semconv.NetworkProtocolVersion("1."+strconv.Itoa(r.ProtoMinor)))
	case 2:
		attrs = append(attrs, semconv.NetworkProtocolVersion("2"))
	}
	return attrs
}

// annotate adds the cache decision to the request's server span.
func (o *observer) annotate(g *Gateway, r *http.Request, rec *record) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, AttrOutcome.String(rec.outcome.String()), AttrTier.String(tierName(rec)))
	if rt := rec.route; rt != nil {
		httpRoute := rt.prefix + "*"
		span.SetName(spanMethod(r.Method) + " " + httpRoute)
		attrs = append(attrs, AttrRoute.String(rt.name), semconv.HTTPRoute(httpRoute))
	}
	shard := rec.shard
	if rec.key != "" {
		attrs = append(attrs, AttrKeyHash.String(keyHash(rec.key)))
		if shard == "" {
			if gen := g.gen.Load(); gen != nil && gen.store != nil {
				shard = gen.store.owner(rec.key)
			}
		}
	}
	if shard != "" {
		attrs = append(attrs, AttrShard.String(shard))
	}
	span.SetAttributes(attrs...)
}

// tierName says where the response came from: l1, l2, fallback, or
// origin.
func tierName(rec *record) string {
	switch rec.outcome {
	case outHit, outStale:
		switch rec.tier {
		case tierL2:
			return "l2"
		case tierFallback:
			return "fallback"
		}
		return "l1"
	case outNoRoute:
		return "none"
	}
	return "origin"
}

// keyHash is a stable, non-reversible name of a cache key for spans and
// logs: FNV-1a 64, hex. It is the same on every gateway.
func keyHash(key string) string {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	return strconv.FormatUint(h, 16)
}

// accessLog writes one line for a finished request, with its request and
// trace ids (through the logger's context handler).
func (o *observer) accessLog(r *http.Request, rec *record) {
	route := ""
	if rec.route != nil {
		route = rec.route.name
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.String("route", route),
		slog.String("cache", rec.outcome.String()),
		slog.String("tier", tierName(rec)),
		slog.String("remote", r.RemoteAddr),
	}
	if rec.shard != "" {
		attrs = append(attrs, slog.String("shard", rec.shard))
	}
	if rec.key != "" {
		attrs = append(attrs, slog.String("key_hash", keyHash(rec.key)))
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		attrs = append(attrs, slog.String("client_request_id", id))
	}
	o.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// connContext gives each traffic connection its request-id slot.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return telemetry.ConnContext(ctx, c)
}
