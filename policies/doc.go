// Package policies holds the decisions of the read path — how a request is
// named in the cache (Key), whether and how long a response is stored (TTL),
// and what to do on a miss (Miss) — and their built-in implementations, which
// follow RFC 9111 for a shared cache.
//
// Policies are pure: a request (and response) view in, a decision out, no
// I/O. The gateway calls them on every request, so the built-in ones
// allocate nothing on the hit path; a WASM plugin is adapted to the same
// interfaces by the wasm package's host.
package policies
