package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is a tracer provider and how to stop it.
type Tracing struct {
	// Provider creates the gateway's tracers. It is a no-op provider when
	// Enabled is false.
	Provider trace.TracerProvider
	// Propagator reads and writes W3C trace context (and baggage).
	Propagator propagation.TextMapPropagator
	// Enabled reports whether spans are exported. When false the gateway
	// installs no tracing at all.
	Enabled bool

	shutdown func(context.Context) error
}

// Propagator is the W3C trace-context and baggage propagator the gateway
// uses on both sides: extracting from clients, injecting to origins.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Off is tracing disabled: a no-op provider.
func Off() *Tracing {
	return &Tracing{Provider: noop.NewTracerProvider(), Propagator: Propagator}
}

// Export says where and how spans are exported: the plain values of the
// configuration's telemetry section (the caller copies them, so that this
// package does not depend on the config package).
type Export struct {
	// Endpoint is the OTLP URL; empty: no exporter (Off).
	Endpoint string
	// Protocol is "grpc" ("" too) or "http".
	Protocol string
	// Headers are sent with every export.
	Headers map[string]string
	// SampleRatio is the parent-based sampling ratio.
	SampleRatio float64
	// ServiceName is the service.name resource attribute.
	ServiceName string
	// ResourceAttributes are added to the resource.
	ResourceAttributes map[string]string
}

// NewTracing builds the tracer provider that c describes: an OTLP exporter
// (gRPC or HTTP) behind a batch span processor, parent-based sampling at
// c.SampleRatio, and a resource with service.name, the configured
// attributes and OTEL_RESOURCE_ATTRIBUTES. No endpoint: Off. version is the
// service.version attribute ("" for none).
func NewTracing(ctx context.Context, c Export, version string) (*Tracing, error) {
	if c.Endpoint == "" {
		return Off(), nil
	}
	exp, err := newExporter(ctx, c)
	if err != nil {
		return nil, err
	}
	res, err := newResource(ctx, c, version)
	if err != nil {
		return nil, err
	}
	return NewTracingWith(exp, res, c.SampleRatio, false), nil
}

// NewTracingWith is NewTracing with a given exporter (tests use tracetest's
// in-memory exporter). ratio is the parent-based sampling ratio. sync
// exports each span when it ends instead of in batches: for tests only.
func NewTracingWith(exp sdktrace.SpanExporter, res *resource.Resource, ratio float64, sync bool) *Tracing {
	// Only the processor used is created: a batch processor starts its
	// goroutine at once, and one made and dropped leaks it (goleak found
	// one per traced test).
	var sp sdktrace.SpanProcessor
	if sync {
		sp = sdktrace.NewSimpleSpanProcessor(exp)
	} else {
		sp = sdktrace.NewBatchSpanProcessor(exp)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSpanProcessor(sp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}
	if res != nil {
		opts = append(opts, sdktrace.WithResource(res))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{Provider: tp, Propagator: Propagator, Enabled: true, shutdown: tp.Shutdown}
}

// Shutdown flushes the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

func newExporter(ctx context.Context, c Export) (*otlptrace.Exporter, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("telemetry: otlp_endpoint: want an http(s) URL, got %q", c.Endpoint)
	}
	var exp *otlptrace.Exporter
	switch c.Protocol {
	case "http":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(c.Endpoint)}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case "grpc", "":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(c.Endpoint)}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(c.Headers))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("telemetry: otlp_protocol: want grpc or http, got %q", c.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp exporter %s: %w", c.Endpoint, err)
	}
	return exp, nil
}

func newResource(ctx context.Context, c Export, version string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(c.ServiceName)}
	if version != "" {
		attrs = append(attrs, semconv.ServiceVersion(version))
	}
	keys := make([]string, 0, len(c.ResourceAttributes))
	for k := range c.ResourceAttributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, attribute.String(k, c.ResourceAttributes[k]))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(attrs...), // the config file wins over the environment
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}
