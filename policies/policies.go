package policies

import (
	"net/http"
	"time"
)

// Request is the read-only view of a client request that policies decide on.
// The gateway owns it and reuses it across requests: a policy must not keep
// it, or anything reachable from it, after the call returns.
type Request struct {
	Method   string
	Scheme   string // "http" or "https", as the client used it
	Host     string // lower-cased, without a default port
	Path     string // the escaped path as the client sent it
	RawQuery string // without the leading '?'
	Header   http.Header
}

// Response is the read-only view of an origin response given to the TTL
// policy. Header is the origin's, before any filtering.
type Response struct {
	Status int
	Header http.Header
}

// Decision is what a TTL policy says about an origin response.
type Decision struct {
	// Store reports whether the response may be stored at all.
	Store bool
	// TTL is the freshness lifetime counted from the moment of storage,
	// already reduced by the response's Age.
	TTL time.Duration
	// StaleWhileRevalidate and StaleIfError extend how long the stored
	// entry may be used after TTL (RFC 5861).
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	// Tags are surrogate keys that a purge by tag removes.
	Tags []string
	// Reason says why Store is false, for logs and the Cache-Status detail.
	Reason string
}

// MissAction is what a Miss policy says to do when the cache cannot answer.
// The zero value means: fetch from the route's origin and store as the TTL
// policy decides.
type MissAction struct {
	// Bypass fetches from the origin without storing the response.
	Bypass bool
	// OriginURL replaces the origin URL of the request ("" keeps it).
	OriginURL string
	// Header is set on the origin request (replacing values of the same name).
	Header http.Header
	// Status, when not zero, answers the client directly with Status and
	// Body, without contacting the origin.
	Status int
	Body   []byte
}

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
