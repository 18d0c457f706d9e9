// Package policies holds the decisions of the read path — how a request is
// named in the cache (Key), whether and how long a response is stored (TTL),
// and what to do on a miss (Miss) — and their built-in implementations, which
// follow RFC 9111 for a shared cache.
//
// Policies are pure: a request (and response) view in, a decision out, no
// I/O. The gateway calls them on every request, so the built-in ones
// allocate nothing on the hit path. The views and decisions are the hook
// package's types, shared with the WASM host and the CLI.
//
// # Plugins
//
// LoadPlugin loads a WASM plugin through a hook.Loader (the wasm package's
// Host; policies does not import it) and FromPlugin turns it into a Set:
// each exported hook becomes a policy that calls it and falls back to the
// route's built-in policy when the call fails or declines. The gateway and
// `edgecache plugin run/test` use exactly these; TraceKey, TraceTTL and
// TraceMiss also say how the plugin took part. CanonicalHost is the
// request view's host, for both.
//
// # Built-in policies
//
//   - DefaultKey: scheme, host, path and the query with its parameters
//     sorted (raw, not decoded) and empty ones dropped.
//   - DefaultTTL: RFC 9111 storage and freshness for a shared cache
//     (s-maxage, max-age, Expires, Age, Authorization, Vary: *), with the
//     route's default lifetime when the origin states none; the Reason*
//     constants say why a response was not stored.
//   - DefaultMiss: fetch from the origin and store.
//
// Vetoes and field decisions the gateway applies whatever the policies:
//
//   - Private: a response with Set-Cookie, or one to a request with Cookie
//     that the origin gave no explicit freshness, or (with deception
//     armor) whose Content-Type disagrees with the path's extension, is
//     not stored (PrivacyOptions are a route's opt-outs).
//   - PreferredCoding, AcceptsCoding, AcceptsContentCoding, VariantCoding:
//     Accept-Encoding with q-values (RFC 9110 §12.5.3), and the coding a
//     variant is stored under.
//   - LoopCount (CDN-Loop, RFC 8586) and OriginAllowed (a miss policy's
//     origin URL against an allow-list).
//
// ParseCacheControl and ResponseAge are the field parsers they share with
// the gateway. The choices RFC 9111 leaves open (invalid max-age, qualified
// private and no-cache, duplicate directives) are documented on
// CacheControl and DefaultTTL; the TTL cases are in testdata/ttl.
//
// # HTTP decisions for the read path
//
// Pure functions the gateway calls around a lookup; those a hit may call
// do not allocate (each has an AllocsPerRun pin and a benchmark):
//
//   - Storable, HeuristicallyCacheable, UnderstoodStatus: RFC 9111 §3.
//   - ParseTargeted, SelectTargeted, TargetedForwarded (RFC 9213), over
//     ParseDictionary (RFC 8941).
//   - ParseHTTPDate, ParseHTTPDateField: RFC 9110 §5.6.7, strictly.
//   - Evaluate, IfRange, StrongMatch, WeakMatch, MatchList: conditional
//     requests (RFC 9110 §13).
//   - ParseRange, AppendContentRange, AppendUnsatisfiedRange, Multipart:
//     range requests (RFC 9110 §14); the cases are in testdata/range.
//   - AppendVaryValue, AppendAcceptLanguage, AppendListValue,
//     AppendVariantValue: variant keys.
//   - ParseDirectives, Serve, ServeOnError: whether a stored response
//     answers a request fresh, stale (max-stale, stale-while-revalidate,
//     stale-if-error) or not at all (RFC 9111 §4.2, §5.2.1; RFC 5861);
//     the cases are in testdata/serve.
//   - StaleDefaults, Retain, ParseTags: what a fill stores, for how long,
//     under which surrogate keys.
//
// docs/conformance.md maps each RFC requirement to them.
package policies
