package wasm

import (
	"net/http"
	"time"
)

// Hook names a function a plugin may export. A plugin need not export
// every hook: one it does not export is the built-in policy's job.
type Hook uint8

const (
	// HookKey names the cache entry of a request ("key" export).
	HookKey Hook = iota
	// HookResponse decides whether and how long an origin response is
	// stored ("response" export).
	HookResponse
	// HookMiss decides what to do when the cache has no usable entry
	// ("miss" export).
	HookMiss
	// HookInit receives the plugin's config once per instance ("init"
	// export).
	HookInit

	numHooks = 4
)

var hookNames = [numHooks]string{"key", "response", "miss", "init"}

// String returns the hook's export name.
func (h Hook) String() string {
	if int(h) < len(hookNames) {
		return hookNames[h]
	}
	return "hook?"
}

// Request is the read-only view of a client request that hooks read through
// the ABI. It mirrors policies.Request field for field (the wasm package
// cannot import policies). The host copies it by value into the instance
// for the duration of a call and clears it afterwards: it keeps no
// reference past the call, so a caller may reuse it.
type Request struct {
	Method   string
	Scheme   string
	Host     string
	Path     string
	RawQuery string
	Header   http.Header
}

// Response is the read-only view of an origin response given to the
// response hook.
type Response struct {
	Status int
	Header http.Header
}

// Decision is a storage decision. The caller passes the built-in policy's
// decision to Plugin.Response; the plugin changes what it sets and leaves
// the rest (see ABI.md, "response").
type Decision struct {
	Store                bool
	TTL                  time.Duration
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	Tags                 []string
	Reason               string
}

// MissAction is what a miss decision says; the zero value means "fetch
// from the route's origin and store as usual". The caller passes the
// built-in policy's action to Plugin.Miss; the plugin changes what it
// sets.
type MissAction struct {
	Bypass    bool
	OriginURL string
	Header    http.Header
	Status    int
	Body      []byte
}

// KeyAction says how the key hook named the entry.
type KeyAction uint8

const (
	// KeyDefault: the hook set nothing (or declined): use the built-in key.
	KeyDefault KeyAction = iota
	// KeyReplace: the appended bytes are the whole cache key (set_key).
	KeyReplace
	// KeyExtend: the built-in key followed by the appended bytes
	// (add_key_part); the caller puts the built-in key first.
	KeyExtend
)

// String returns "default", "replace" or "extend".
func (a KeyAction) String() string {
	switch a {
	case KeyReplace:
		return "replace"
	case KeyExtend:
		return "extend"
	}
	return "default"
}
