package policies

import (
	"slices"
	"time"

	"github.com/edgecache/edgecache/wasm"
)

// FromPlugin returns the policies of a route that uses plugin p: for each
// hook p exports, a policy that calls it; for the others, fallback's. The
// plugin policies use fallback's too whenever a call fails (trap, timeout,
// out of memory, ABI fault, busy pool, closed plugin) — a broken plugin
// never fails a request; wasm logs and counts the failure.
//
// A nil field of fallback means the built-in policy: DefaultKey,
// DefaultTTL{} (which stores only responses with an explicit lifetime),
// DefaultMiss.
//
// The response hook starts from fallback's decision and may override it,
// except where storing would be wrong whatever the plugin says: a method
// other than GET or HEAD, Vary: *, and a request with Authorization the
// response did not mark shareable stay unstored.
//
// The returned policies hold p; they must not be used after p.Close
// (calls then fall back, but the plugin's memo may still answer keys).
func FromPlugin(p *wasm.Plugin, fallback Set) Set {
	if fallback.Key == nil {
		fallback.Key = DefaultKey{}
	}
	if fallback.TTL == nil {
		fallback.TTL = DefaultTTL{}
	}
	if fallback.Miss == nil {
		fallback.Miss = DefaultMiss{}
	}
	s := fallback
	if p.Has(wasm.HookKey) {
		s.Key = &pluginKey{p: p, fallback: fallback.Key}
	}
	if p.Has(wasm.HookResponse) {
		s.TTL = &pluginTTL{p: p, fallback: fallback.TTL}
	}
	if p.Has(wasm.HookMiss) {
		s.Miss = &pluginMiss{p: p, fallback: fallback.Miss}
	}
	return s
}

// view copies the request's fields into the wasm package's view (it
// cannot import this package). The copy lives on the caller's stack: the
// plugin copies it again into the instance for a call and keeps nothing.
func view(r *Request) wasm.Request {
	return wasm.Request{Method: r.Method, Scheme: r.Scheme, Host: r.Host, Path: r.Path, RawQuery: r.RawQuery, Header: r.Header}
}

type pluginKey struct {
	p        *wasm.Plugin
	fallback Key
}

var _ Key = (*pluginKey)(nil)

// AppendKey implements Key. A memoized request costs a memo lookup and no
// allocation (BenchmarkPluginKey).
func (k *pluginKey) AppendKey(dst []byte, r *Request) []byte {
	wr := view(r)
	start := len(dst)
	out, act, err := k.p.AppendKey(dst, &wr)
	switch {
	case err != nil || act == wasm.KeyDefault:
		return k.fallback.AppendKey(dst[:start], r)
	case act == wasm.KeyReplace:
		return out
	}
	// KeyExtend: out is dst + "|part…"; the built-in key goes first. Append
	// it, then rotate it in front of the parts, in place.
	parts := len(out)
	out = k.fallback.AppendKey(out, r)
	slices.Reverse(out[start:parts])
	slices.Reverse(out[parts:])
	slices.Reverse(out[start:])
	return out
}

type pluginTTL struct {
	p        *wasm.Plugin
	fallback TTL
}

var _ TTL = (*pluginTTL)(nil)

// Decide implements TTL.
func (t *pluginTTL) Decide(r *Request, resp *Response, now time.Time) Decision {
	base := t.fallback.Decide(r, resp, now)
	if !base.Store {
		switch base.Reason {
		case ReasonMethod, ReasonVaryStar, ReasonAuthorization:
			return base
		}
	}
	wr := view(r)
	d := wasm.Decision{
		Store: base.Store, TTL: base.TTL,
		StaleWhileRevalidate: base.StaleWhileRevalidate, StaleIfError: base.StaleIfError,
		Tags: base.Tags, Reason: base.Reason,
	}
	if err := t.p.Response(&wr, &wasm.Response{Status: resp.Status, Header: resp.Header}, &d); err != nil {
		return base
	}
	out := Decision{
		Store: d.Store, TTL: d.TTL,
		StaleWhileRevalidate: d.StaleWhileRevalidate, StaleIfError: d.StaleIfError,
		Tags: d.Tags, Reason: d.Reason,
	}
	if out.Store && out.TTL <= 0 {
		// Stored with no freshness is not stored (ttl.go, step 6).
		out.Store, out.Reason = false, ReasonExpired
	}
	if !out.Store {
		return Decision{Reason: out.Reason} // as the built-in's noStore
	}
	return out
}

type pluginMiss struct {
	p        *wasm.Plugin
	fallback Miss
}

var _ Miss = (*pluginMiss)(nil)

// OnMiss implements Miss.
func (m *pluginMiss) OnMiss(r *Request) MissAction {
	base := m.fallback.OnMiss(r)
	wr := view(r)
	a := wasm.MissAction{Bypass: base.Bypass, OriginURL: base.OriginURL, Header: base.Header, Status: base.Status, Body: base.Body}
	if err := m.p.Miss(&wr, &a); err != nil {
		return base
	}
	return MissAction{Bypass: a.Bypass, OriginURL: a.OriginURL, Header: a.Header, Status: a.Status, Body: a.Body}
}
