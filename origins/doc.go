// Package origins holds origin pools: the servers behind one origin name,
// and how requests are spread over them and kept away from the bad ones.
//
// A Pool is an http.RoundTripper. A request to it names the pool, not a
// server: RoundTrip picks a server, rewrites the request's scheme and host
// to it and sends it on the pool's own transport (TLS, connection pool): a
// Transport, which carries plain-HTTP GET and HEAD requests on the
// caller's goroutine and the rest through net/http's.
//
// # How a request travels
//
//  1. Admission: at most Options.MaxConcurrent requests are at the
//     pool's servers at once. Past that a request waits in a bounded queue
//     for at most Options.QueueTimeout; a full queue or a wait that times
//     out returns ErrOverloaded at once, so a caller can serve something
//     stale or answer 503 instead of piling more load on the origin.
//  2. Pick: among the servers that are up (active health check) and not
//     ejected (passive outlier detection), by the pool's Balance: weighted
//     round robin, least requests (power of two random choices), or
//     rendezvous hashing of the cache key passed with WithKey, so that an
//     origin with caches of its own sees each key on one server. If no
//     server is available the pool tries them all (fail open): a check
//     that is wrong must not take the whole origin away.
//  3. Send. A connect failure, or a connection reset before any response
//     byte, of an idempotent request is tried once more on another server,
//     if the retry budget (a share of recent requests) allows. A request
//     whose response had begun is never retried.
//  4. The admission slot and the server's in-flight count are held until
//     the response body is closed (or read to its end): the origin is busy
//     until then.
//
// # Invariants
//
// The ejected servers never exceed Options.Outlier.MaxEjectedPercent of
// the pool (at least one may be ejected in a pool of two or more, never
// all). A closed pool keeps answering the requests that reach it (a
// request of a generation being retired); Close only stops the health
// checkers and drops idle connections once no request is in flight.
package origins
