package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/edgecache/edgecache/policies"
)

// miss answers a request the cache could not: the Miss policy first, then
// one fill per key (singleflight; across gateways a short lock in Valkey,
// fill.go) that stores what the TTL policy allows, then the answer. The
// entry the lookup found but could not use (st.found) is the fill's stale
// entry: its validators make the fetch conditional, and it is served if
// the origin fails within its stale-if-error window.
func (g *Gateway) miss(w http.ResponseWriter, r *http.Request, st *reqState) error {
	act, answered := g.missAction(w, r, st)
	if answered {
		return nil
	}
	fl := newFill(g, r, st, act)
	fl.req.interim = relayInterim(w, r) // hints.go: the leader's client gets the origin's 1xx
	if fl.shardErr {
		st.rec.shard = st.gen.store.owner(fl.key)
	}
	a := answer{fwd: forwardedAs(act, st), shardErr: fl.shardErr}
	if t, ok := g.busy.Load(fl.key); ok && !fl.auth {
		// The body of this key is streaming into a fill that means to
		// store it: follow it rather than fetch again (tee.go).
		g.coalesced()
		a.f = t.(*tee).f
		g.respond(w, r, st, &a)
		return nil
	}
	res, err := g.coalesce(fl, &a)
	if err != nil {
		g.originFailed(w, r, st, a.fwd, err)
		return nil
	}
	a.f = res.(*fetched)
	if a.leader && a.f.release != nil {
		defer a.f.release()
	}
	g.respond(w, r, st, &a)
	return nil
}

// coalesce runs fl once for every request of its key (singleflight). A
// request with Authorization runs its own: what the origin answers one
// user is not another's, unless it is stored (RFC 9111 §3.5).
func (g *Gateway) coalesce(fl *fill, a *answer) (any, error) {
	if fl.auth {
		a.leader = true
		return fl.run()
	}
	res, err, shared := g.sf.Do(fl.key, func() (any, error) {
		a.leader = true
		return fl.run()
	})
	if shared && !a.leader {
		g.coalesced()
	}
	return res, err
}

// missAction asks the route's Miss policy what to do. A plugin may send a
// fill only to allowed origins (SSRF): otherwise the built-in behaviour,
// as for a faulting plugin. answered is set when the policy answered the
// request itself (respond: never stored).
func (g *Gateway) missAction(w http.ResponseWriter, r *http.Request, st *reqState) (act policies.MissAction, answered bool) {
	rt := st.rt
	act = rt.miss.OnMiss(&st.preq)
	if rt.plugins != nil {
		hookEvent(r.Context(), rt, evMissHook)
	}
	if act.OriginURL != "" && !policies.OriginAllowed(act.OriginURL, rt.allowedOrigins) {
		g.log.WarnContext(r.Context(), "miss plugin named an origin not allowed; using the route's", "route", rt.name, "origin_url", act.OriginURL)
		act = policies.MissAction{}
	}
	if act.Status == 0 {
		return act, false
	}
	st.rec.outcome, st.rec.status = outBypass, act.Status
	h := w.Header()
	h[hdrCacheStatus] = missStatus("bypass", false, "policy")
	h[hdrAge] = ageZero
	h[hdrContentLength] = []string{strconv.Itoa(len(act.Body))}
	w.WriteHeader(act.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(act.Body)
	}
	return act, true
}

// forwardedAs is the Cache-Status fwd parameter of a miss (RFC 9211).
func forwardedAs(act policies.MissAction, st *reqState) string {
	switch {
	case act.Bypass:
		return "bypass"
	case st.found != nil && st.dir.NoCache:
		return "request"
	case st.found != nil:
		return "stale"
	}
	return "uri-miss"
}

// originFailed answers a fill that failed: 503 with Retry-After when the
// origin pool refused (pools.go), else 502.
func (g *Gateway) originFailed(w http.ResponseWriter, r *http.Request, st *reqState, fwd string, err error) {
	g.log.WarnContext(r.Context(), "origin fetch failed", "route", st.rt.name, "err", err)
	if refused(err) {
		st.rec.outcome, st.rec.status = outError, http.StatusServiceUnavailable
		writeRefused(w, st.rt, missStatus(fwd, false, "origin-unavailable"))
		return
	}
	st.rec.outcome, st.rec.status = outError, http.StatusBadGateway
	h := w.Header()
	h[hdrCacheStatus] = missStatus(fwd, false, "origin-error")
	h[hdrAge] = ageZero
	w.WriteHeader(http.StatusBadGateway)
}

// answer is what a fill gave one of the requests it served.
type answer struct {
	f        *fetched
	leader   bool   // this request made the fill (it alone gets Set-Cookie, a private page, a stream)
	fwd      string // Cache-Status fwd
	shardErr bool   // the shard failed the lookup
	whole    bool   // f.body is the whole body: a Range is answered from it (ranges.go)
}

// respond writes what the fill gave: an entry that turned up after all, a
// stale one (stale-if-error), a stream too large to store, or the origin's
// response, whole or as it streams (tee.go). A waiter that may not see it
// (one user's page, a coding it did not accept, a stream only the leader
// reads, or one it joined too late) asks the origin itself, as does a
// Range request whose fill was too large to store: the origin answers the
// range (ranges.go answers the others from the whole body).
func (g *Gateway) respond(w http.ResponseWriter, r *http.Request, st *reqState, a *answer) {
	f := a.f
	if !a.leader && f.private || !acceptsFetched(r, f) || (f.large != nil || f.tee != nil) && ranged(r) || f.large != nil && !a.leader {
		if f.large != nil && a.leader {
			f.large.Body.Close()
			f.cancel()
		}
		if f.tee != nil && a.leader {
			f.tee.detach(f.tee.lead)
		}
		g.pass(w, r, st)
		return
	}
	st.now, st.wall = g.clock()
	switch {
	case f.hit != nil:
		st.rec.outcome, st.rec.tier = outHit, f.hitTier
		serveView(w, r, st, f.hit, hitStatus(f.hitTier))
	case f.stale != nil:
		st.rec.outcome = outStale
		serveView(w, r, st, f.stale, csStaleIfError)
	case f.large != nil:
		st.rec.outcome = outNoStore
		streamLarge(w, r, f, a.fwd)
		st.rec.status = f.status
	case f.tee != nil:
		if !writeTee(w, r, st, a) {
			g.pass(w, r, st)
		}
	default:
		writeFetched(w, r, st, a)
	}
}

// writeFetched writes the origin's response of a fill, whole.
func writeFetched(w http.ResponseWriter, r *http.Request, st *reqState, a *answer) {
	rep := *a
	rep.f = a.f.represent(r.Header["Accept-Encoding"]) // a compressed entry's coding (encode.go)
	rep.whole = true                                   // a Range is answered from it (ranges.go)
	f := rep.f
	if writeFetchedHead(w, r, st, &rep, int64(len(f.body))) && r.Method != http.MethodHead {
		_, _ = w.Write(f.body)
	}
}

// writeFetchedHead writes the head of the origin's response of a fill,
// with Content-Length when known (>= 0). false: it answered a
// conditional request with 304, and no body follows.
func writeFetchedHead(w http.ResponseWriter, r *http.Request, st *reqState, a *answer, contentLength int64) bool {
	f := a.f
	switch {
	case f.fwdStatus == http.StatusNotModified:
		st.rec.outcome = outRevalidate
	case f.stored, f.detail == detailStreaming:
		st.rec.outcome = outMiss
	default:
		st.rec.outcome = outNoStore
	}
	detail := f.detail
	if a.shardErr && detail == "" {
		detail = "shard-unavailable"
	}
	cs := missStatus(a.fwd, f.stored, detail) // shared: never modified
	if f.fwdStatus != 0 {
		cs = []string{cs[0] + "; fwd-status=" + strconv.Itoa(f.fwdStatus)}
	}
	cs = withUpstream(f.upstream, cs) // a shield's entry (pools.go)
	age := ageValue(f.initialAge)
	if code := conditional(r, f.status, f.header, st.now); code != 0 {
		writeConditional(w, code, f.header, age, cs)
		st.rec.status = code
		return false
	}
	h := w.Header()
	for k, v := range f.header {
		h[k] = v
	}
	if a.leader && f.setCookie != nil {
		h["Set-Cookie"] = f.setCookie
	}
	if contentLength >= 0 {
		h[hdrContentLength] = []string{strconv.FormatInt(contentLength, 10)}
	}
	h[hdrAge] = age
	h[hdrCacheStatus] = cs
	if a.whole {
		if status := fetchedRange(w, r, f); status != 0 { // ranges.go
			st.rec.status = status
			return false
		}
	}
	w.WriteHeader(f.status)
	st.rec.status = f.status
	return true
}

// acceptsFetched reports whether r accepts the content coding of what a
// fill returned.
func acceptsFetched(r *http.Request, f *fetched) bool {
	ce := ""
	switch {
	case f.hit != nil:
		ce = f.hit.contentCoding
	case f.stale != nil:
		ce = f.stale.contentCoding
	case len(f.header["Content-Encoding"]) > 0:
		ce = strings.Join(f.header["Content-Encoding"], ",")
	}
	return ce == "" || policies.AcceptsContentCoding(r.Header["Accept-Encoding"], ce)
}

// isShardErr reports whether a lookup error is the shard's (not a miss).
func isShardErr(err error) bool { return err != nil && !errors.Is(err, errMiss) }
