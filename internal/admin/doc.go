// Package admin is edgecache's admin API and status page: status JSON,
// purge, reload, shard-map plans and Prometheus metrics, on a listener
// apart from traffic. It works over a gateway.View, the gateway's
// read-only face (plus reload and purge), and reaches no further into the
// gateway; the CLI builds it beside the gateway and serves it.
//
// # Endpoints
//
// The admin listener (admin.listen, loopback by default) is apart from
// traffic, and every endpoint requires the bearer token:
//
//	GET  /admin/status          JSON: generation, config source, shards, plugins, last reload, hit ratio
//	POST /admin/purge           {"key"|"url"|"tag": "...", "soft": bool} → {"keys": n}
//	POST /admin/reload          re-read the config source → {"generation": n} or 422 {"error": ...}
//	GET  /admin/shardmap/plan   what reloading the config source would move
//	POST /admin/shardmap/plan   what the posted config (YAML) would move
//	GET  /metrics               Prometheus (scrape with authorization: credentials_file)
//	GET  /admin/                the status page (HTML)
//	POST /admin/login           exchange the token for a session cookie (the page's login)
//
// The token travels in "Authorization: Bearer TOKEN", is compared in
// constant time (as SHA-256 digests, so that its length does not leak
// either) and is never logged. A browser cannot send that header when it
// navigates, so the status page alone also accepts a session cookie: the
// page's login form (or, for a bookmark or a test, a token in the URL
// fragment, which browsers never send to the server) posts the token to
// /admin/login, which answers with an HttpOnly, SameSite=Strict cookie
// that names no token: a random session id the Admin keeps (in memory,
// for SessionTTL) until the session expires or logs out, so that a
// cookie replayed after /admin/logout opens nothing. The cookie is
// accepted only by the GET endpoints, so a forged cross-site POST cannot
// purge or reload.
//
// A client address that presents wrong tokens (on the login form, the
// bearer login or any endpoint) is held to LoginBurst failures, then
// to one attempt per LoginInterval: its attempts are answered 429
// with Retry-After, whatever the token, so that a guess is never
// confirmed while the address is held. Other addresses are not affected.
//
// # The status page
//
// GET /admin/ renders Status as HTML (templates in statuspage/), with an
// SVG chart of the hit ratio by tier over the last minutes: an Admin
// samples the request and hit counters every few seconds off the request
// path (history.go) until Close.
package admin
