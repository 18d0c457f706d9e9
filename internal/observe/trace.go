package observe

import (
	"net"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/edgecache/edgecache/internal/metrics"
)

// ScopeName is the instrumentation scope of the gateway's spans (the
// gateway's import path: the spans are the gateway's, wherever this
// package lives).
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

// WrapTransport makes origin requests client spans that carry W3C trace
// context to the origin. Without tracing it returns t unchanged.
func (o *Observer) WrapTransport(t http.RoundTripper) http.RoundTripper {
	if !o.tracing {
		return t
	}
	return otelhttp.NewTransport(t,
		otelhttp.WithTracerProvider(o.tp),
		otelhttp.WithPropagators(o.prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus'
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "origin " + r.Method }),
	)
}

// Wrap returns the traffic handler h with the server-span middleware when
// tracing is on, h itself otherwise. It wraps once, here: echo's e.Use and
// route-level middleware chain closures per request.
func (o *Observer) Wrap(h echo.HandlerFunc) echo.HandlerFunc {
	if !o.tracing {
		return h
	}
	return o.traceMiddleware(h)
}

// traceMiddleware starts the server span of a request on the traffic
// listener, modelled on OpenTelemetry contrib's otelecho: trace context
// extracted from the request, HTTP semantic-convention attributes, the
// status set from the response. The cache decision is added by Done.
// Attributes are built only for a recording (sampled) span, and the
// propagator runs only when the request carries trace context (its
// header lookups allocate).
func (o *Observer) traceMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
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
func (o *Observer) annotate(r *http.Request, ev *Event) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, AttrOutcome.String(ev.Outcome.String()), AttrTier.String(ev.Tier.String()))
	if ev.Counters != nil {
		httpRoute := ev.Prefix + "*"
		span.SetName(spanMethod(r.Method) + " " + httpRoute)
		attrs = append(attrs, AttrRoute.String(ev.Route), semconv.HTTPRoute(httpRoute))
	}
	shard := ev.Shard
	if ev.Key != "" {
		attrs = append(attrs, AttrKeyHash.String(KeyHash(ev.Key)))
		if shard == "" && o.owner != nil {
			shard = o.owner(ev.Key)
		}
	}
	if shard != "" {
		attrs = append(attrs, AttrShard.String(shard))
	}
	span.SetAttributes(attrs...)
}
