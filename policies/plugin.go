package policies

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/edgecache/edgecache/hook"
)

// LoadPlugin loads a plugin through l (the gateway's and the CLI's one
// way to load one), with the built-in key wired in for the ABI's
// get_builtin_key: DefaultKey, which the wasm host cannot import.
func LoadPlugin(ctx context.Context, l hook.Loader, code []byte, o hook.PluginOptions) (hook.Plugin, error) {
	if o.BuiltinKey == nil {
		o.BuiltinKey = DefaultKey{}.AppendKey
	}
	return l.LoadPlugin(ctx, code, o)
}

// FromPlugin returns the policies of a route that uses plugin p: for each
// hook p exports, a policy that calls it; for the others, fallback's. The
// plugin policies use fallback's too whenever a call fails (trap, timeout,
// out of memory, ABI fault, busy pool, closed plugin) or the hook
// declines — a broken plugin never fails a request; the host logs and
// counts the failure.
//
// A nil field of fallback means the built-in policy: DefaultKey,
// DefaultTTL{} (which stores only responses with an explicit lifetime),
// DefaultMiss.
//
// The response hook starts from fallback's decision and may override it,
// except where storing would be wrong whatever the plugin says: a method
// other than GET or HEAD, Vary: *, and a request with Authorization the
// response did not mark shareable stay unstored (the hook is not called).
// A decision to store with no freshness (TTL <= 0) is not stored.
//
// The returned policies hold p; they must not be used after p.Close
// (calls then fall back, but the plugin's memo may still answer keys).
// The gateway's read path and `edgecache plugin run/test` call exactly
// these policies; TraceKey, TraceTTL and TraceMiss say how the plugin
// took part.
func FromPlugin(p hook.Plugin, fallback Set) Set {
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
	if p.Has(hook.KeyHook) {
		s.Key = &pluginKey{p: p, fallback: fallback.Key}
	}
	if p.Has(hook.ResponseHook) {
		s.TTL = &pluginTTL{p: p, fallback: fallback.TTL}
	}
	if p.Has(hook.MissHook) {
		s.Miss = &pluginMiss{p: p, fallback: fallback.Miss}
	}
	return s
}

// Outcome says how a plugin took part in one decision.
type Outcome uint8

const (
	// OutcomeBuiltin: no plugin hook is involved; the built-in (or
	// fallback) policy decided.
	OutcomeBuiltin Outcome = iota
	// OutcomePlugin: the plugin's hook decided.
	OutcomePlugin
	// OutcomeDeclined: the hook returned non-zero (or, for the key hook,
	// set nothing); the built-in policy decided.
	OutcomeDeclined
	// OutcomeFailed: the call failed (fault, busy pool, suspension,
	// closed plugin); the built-in policy decided.
	OutcomeFailed
	// OutcomeGuarded: the built-in policy's refusal to store stands
	// whatever a plugin says (method, Vary: *, Authorization); the hook
	// was not called.
	OutcomeGuarded
)

// String returns a short description for `plugin run`.
func (o Outcome) String() string {
	switch o {
	case OutcomePlugin:
		return "plugin"
	case OutcomeDeclined:
		return "declined → built-in"
	case OutcomeFailed:
		return "failed → built-in"
	case OutcomeGuarded:
		return "built-in: not overridable"
	}
	return "built-in"
}

// Trace is how a plugin took part in one decision.
type Trace struct {
	Outcome Outcome
	Action  hook.KeyAction // the key hook's, with OutcomePlugin
	Err     error          // the call's error, with OutcomeFailed
}

// outcome classifies a hook call's error.
func outcome(err error) Trace {
	switch {
	case err == nil:
		return Trace{Outcome: OutcomePlugin}
	case errors.Is(err, hook.ErrDeclined):
		return Trace{Outcome: OutcomeDeclined}
	}
	return Trace{Outcome: OutcomeFailed, Err: err}
}

// TraceKey is k.AppendKey, also saying how a plugin took part.
func TraceKey(k Key, dst []byte, r *Request) ([]byte, Trace) {
	if pk, ok := k.(*pluginKey); ok {
		return pk.appendKey(dst, r)
	}
	return k.AppendKey(dst, r), Trace{}
}

// TraceTTL is t.Decide, also saying how a plugin took part.
func TraceTTL(t TTL, r *Request, resp *Response, now time.Time) (Decision, Trace) {
	if pt, ok := t.(*pluginTTL); ok {
		return pt.decide(r, resp, now)
	}
	return t.Decide(r, resp, now), Trace{}
}

// TraceMiss is m.OnMiss, also saying how a plugin took part.
func TraceMiss(m Miss, r *Request) (MissAction, Trace) {
	if pm, ok := m.(*pluginMiss); ok {
		return pm.onMiss(r)
	}
	return m.OnMiss(r), Trace{}
}

type pluginKey struct {
	p        hook.Plugin
	fallback Key
}

var _ Key = (*pluginKey)(nil)

// AppendKey implements Key. A memoized request costs a memo lookup and no
// allocation (BenchmarkPluginKey).
func (k *pluginKey) AppendKey(dst []byte, r *Request) []byte {
	out, _ := k.appendKey(dst, r)
	return out
}

func (k *pluginKey) appendKey(dst []byte, r *Request) ([]byte, Trace) {
	start := len(dst)
	out, act, err := k.p.AppendKey(dst, r)
	switch {
	case err != nil:
		return k.fallback.AppendKey(dst[:start], r), outcome(err)
	case act == hook.KeyDefault:
		return k.fallback.AppendKey(dst[:start], r), Trace{Outcome: OutcomeDeclined}
	case act == hook.KeyReplace:
		return out, Trace{Outcome: OutcomePlugin, Action: act}
	}
	// KeyExtend: out is dst + "|part…"; the built-in key goes first. Append
	// it, then rotate it in front of the parts, in place.
	parts := len(out)
	out = k.fallback.AppendKey(out, r)
	slices.Reverse(out[start:parts])
	slices.Reverse(out[parts:])
	slices.Reverse(out[start:])
	return out, Trace{Outcome: OutcomePlugin, Action: act}
}

type pluginTTL struct {
	p        hook.Plugin
	fallback TTL
}

var _ TTL = (*pluginTTL)(nil)

// Decide implements TTL.
func (t *pluginTTL) Decide(r *Request, resp *Response, now time.Time) Decision {
	d, _ := t.decide(r, resp, now)
	return d
}

func (t *pluginTTL) decide(r *Request, resp *Response, now time.Time) (Decision, Trace) {
	base := t.fallback.Decide(r, resp, now)
	if !base.Store {
		switch base.Reason {
		case ReasonMethod, ReasonVaryStar, ReasonAuthorization:
			return base, Trace{Outcome: OutcomeGuarded}
		}
	}
	d := base // the host never appends into base.Tags' array
	if err := t.p.Response(r, resp, &d); err != nil {
		return base, outcome(err)
	}
	if d.Store && d.TTL <= 0 {
		// Stored with no freshness is not stored (ttl.go, step 6).
		d.Store, d.Reason = false, ReasonExpired
	}
	if !d.Store {
		return Decision{Reason: d.Reason}, Trace{Outcome: OutcomePlugin} // as the built-in's noStore
	}
	return d, Trace{Outcome: OutcomePlugin}
}

type pluginMiss struct {
	p        hook.Plugin
	fallback Miss
}

var _ Miss = (*pluginMiss)(nil)

// OnMiss implements Miss.
func (m *pluginMiss) OnMiss(r *Request) MissAction {
	a, _ := m.onMiss(r)
	return a
}

func (m *pluginMiss) onMiss(r *Request) (MissAction, Trace) {
	base := m.fallback.OnMiss(r)
	a := base
	if err := m.p.Miss(r, &a); err != nil {
		return base, outcome(err)
	}
	return a, Trace{Outcome: OutcomePlugin}
}
