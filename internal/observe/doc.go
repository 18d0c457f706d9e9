// Package observe is what the gateway reports with: Prometheus metrics
// (internal/metrics) always, OpenTelemetry spans when tracing is on, and
// an access-log line per request when log.access is on.
//
// # How a request is reported
//
// The traffic handler fills an Event as it goes (route, outcome, tier,
// status, key, shard) and calls Observer.Done once, after the response
// was written. The server span, when tracing is on, was started before by
// the middleware of Wrap; Done adds the cache decision to it. Origin
// requests become client spans through WrapTransport; shard round trips
// through the shardmap.Hooks of ShardHooks.
//
// # Invariants
//
// Everything the hit path touches is resolved in advance: a route's
// counters when its generation is instrumented (Route), the shard hooks
// once. With tracing off and no access log, Done is two atomic adds (the
// request counter, the tier's hit counter) and the move of the
// connection's request-id slot; it allocates nothing. A cache key is
// never recorded, only its hash (KeyHash).
package observe
