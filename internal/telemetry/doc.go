// Package telemetry builds what the gateway reports with: the
// OpenTelemetry tracer provider (OTLP over gRPC or HTTP when an endpoint
// is configured, a no-op provider otherwise) and the slog logger, whose
// request-scoped lines carry the request id and the trace id.
//
// # Request ids without a per-request allocation
//
// The hit path allocates nothing, so a request id cannot be a context
// value set per request (context.WithValue and Request.WithContext
// allocate). Instead ConnContext, installed as http.Server.ConnContext,
// puts one mutable slot per connection in the connection's context, which
// every request on it inherits. An HTTP/1.x connection carries one request
// at a time, so the slot names the request in flight: the connection's id
// and how many requests finished on it before ("3fa9b2c1-17-4" is the 4th
// request of connection 17 of process 3fa9b2c1). EndRequest, called once
// per request when it is done, moves the slot on. Nothing is formatted
// until a line is logged. The traffic listener serves HTTP/1.x only; if it
// ever serves HTTP/2, streams share a connection and the id must become a
// per-request context value (the server span middleware's context would do).
//
// # Invariants
//
// With no OTLP endpoint, the provider is a no-op and Enabled is false: the
// gateway installs no tracing middleware and no client-span transport, so
// tracing off costs the hit path nothing. The logger never sees the admin
// token or a raw cache key.
package telemetry
