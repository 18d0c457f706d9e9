package policies

import (
	"time"

	"github.com/edgecache/edgecache/hook"
)

// The views and decisions are the hook package's, so that the built-in
// policies, the plugin adapter, the wasm host and the CLI share one set of
// types (RATIONALE.md, "One set of hook types"). The caller owns every
// value it passes: a policy must not keep it, or anything reachable from
// it, after the call returns (the gateway reuses them across requests).
type (
	// Request is the read-only view of a client request (hook.Request).
	Request = hook.Request
	// Response is the read-only view of an origin response (hook.Response).
	Response = hook.Response
	// Decision is what a TTL policy says about an origin response
	// (hook.Decision).
	Decision = hook.Decision
	// MissAction is what a Miss policy says to do when the cache cannot
	// answer (hook.MissAction); the zero value fetches and stores.
	MissAction = hook.MissAction
)

// Key names the cache entry for a request.
type Key interface {
	// AppendKey appends the cache key for r to dst and returns the result.
	// It must be deterministic: the same request yields the same key.
	AppendKey(dst []byte, r *Request) []byte
}

// TTL decides whether and for how long an origin response is stored.
type TTL interface {
	Decide(r *Request, resp *Response, now time.Time) Decision
}

// Miss decides what to do when the cache has no usable entry.
type Miss interface {
	OnMiss(r *Request) MissAction
}

// Set is the policies of one route. A nil field means the built-in policy.
type Set struct {
	Key  Key
	TTL  TTL
	Miss Miss
}
