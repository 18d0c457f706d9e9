// Package gateway is the HTTP face of edgecache: an echo server whose read
// path answers GET and HEAD from a two-tier cache and goes to the origin
// only on a miss.
//
// # How a GET travels
//
//  1. Route: the request's host and path select a route (origin, policies).
//     Other methods, and requests the cache must not answer (Authorization),
//     are proxied to the origin uncached. A Range is answered from the
//     whole representation, stored or just fetched (ranges.go).
//  2. Key: the route's Key policy names the entry; the key's bytes are
//     interned so that a hot key costs no allocation.
//  3. Shard: the current generation's shard map picks the shard that owns
//     the key (or the embedded store when no shard is configured).
//  4. Lookup: a GET through valkey-go client-side caching. An L1 hit costs
//     no round trip; Valkey's tracking invalidates the L1 of every gateway
//     when the key changes anywhere.
//  5. Serve or load: a fresh entry is served from a decoded view memoized
//     by the address of the cached bytes (never with a Content-Encoding
//     the request does not accept); otherwise one origin request per key
//     per gateway (singleflight) fetches with the headers forward.go
//     allows, into a buffer bounded per fill and over all fills
//     (fillbuf.go), the TTL policy decides, policies.Private may veto, and
//     the entry is SET with PX. A body longer than its first piece is
//     sent to every client of the fill as it arrives (tee.go).
//  6. Respond with Age and Cache-Status (RFC 9211, cache name "edgecache").
//
// # Where each step lives
//
// handler.go is steps 1 to 5 in order (handle: route, cacheKey, lookup,
// serveFound, miss). A miss is a fill (fill.go): one value per key that
// the singleflight leader runs — run (recheck, the cross-gateway lock),
// fetch (fetch.go: the origin request, the first piece of the body within
// its bounds), store (decide, keep: storeKey, write) — and whose result
// miss.go writes to the leader and to every waiter. A longer body is read
// on by the fill's own goroutine into a tee (tee.go) that the leader, the
// waiters and requests that miss meanwhile (Gateway.busy) follow at their
// own pace; it is stored once complete. encode.go compresses what the
// fill stores (once, into every coding) and picks the coding a hit sends.
// proxy.go is the pass-through proxy and the
// invalidation of unsafe methods. generation.go builds what a config
// means (routes, plugins, pools, the store); gateway.go publishes and
// retires generations.
//
// What is not the read path lives elsewhere: observe.go hands each
// request's record to internal/observe (counters, spans, access log) and
// gives a generation its route counters and shard hooks; the admin API
// and status page are internal/admin, which sees the gateway only through
// View (view.go), and the CLI mounts it on the admin listener. readyz.go
// is the traffic listener's readiness probe.
//
// # Invariants
//
// The bytes returned by a lookup are a view into the L1 (or the embedded
// store) and are never modified. A generation is immutable once published;
// requests read it through one atomic pointer. A shard that fails is
// skipped (circuit breaker) and the request goes to the origin: a cache
// failure never fails a request that the origin can answer.
package gateway
