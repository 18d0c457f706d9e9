package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgecache/edgecache/internal/entry"
	"github.com/edgecache/edgecache/origins"
	"github.com/edgecache/edgecache/policies"
)

// fetched is one origin response, shared read-only by the leader of a
// coalesced miss and every request that waited on it.
type fetched struct {
	status     int
	header     http.Header // filtered: no hop-by-hop, Set-Cookie or Age
	body       []byte
	stored     bool
	detail     string // why it was not stored, or how it was served
	initialAge time.Duration
	etag       string
	lastMod    string
	// setCookie is the origin's Set-Cookie: never stored, and given only
	// to the client whose request made the fetch, never to waiters.
	setCookie []string
	fwdStatus int // the origin's status when it differs from status (a 304 revalidation)

	// large is set when the body exceeded the route's maximum: only the
	// leader streams it (body holds what was already read); waiters fetch
	// on their own.
	large  *http.Response
	cancel context.CancelFunc

	// hit is set when the entry turned up in the store after all (another
	// request, or another gateway, stored it); stale when the origin
	// failed and the stale entry is served (stale-if-error).
	hit     *view
	hitTier tier
	stale   *view

	replaces bool // the fetch refreshes a stored entry
	// upstream is the origin's Cache-Status (a shield edgecache): given
	// with this response, before ours, never stored (pools.go).
	upstream []string
	// release returns the body's buffer to the fill budget (fillbuf.go):
	// called once the leader's client has its answer; nil when none was
	// reserved.
	release func()
	// parts are the pieces of a large body read before it stopped
	// buffering (fillbuf.go): only the leader streams them, releasing
	// each from hold once written.
	parts [][]byte
	hold  *fillHold
	// private is set when the response was not stored because it may be
	// one user's page (policies.Private): only the request that made the
	// fetch gets it; waiters fetch on their own.
	private bool
}

// fetchReq is what a fetch needs of the client request. For a background
// refresh it is a copy that outlives the request.
type fetchReq struct {
	ctx    context.Context
	method string
	url    *url.URL
	header http.Header
	preq   policies.Request
	peer   string // the client's address (RemoteAddr)
}

func fromRequest(r *http.Request, preq policies.Request) *fetchReq {
	return &fetchReq{ctx: r.Context(), method: r.Method, url: r.URL, header: r.Header, preq: preq, peer: r.RemoteAddr}
}

// miss answers a request the cache could not: the Miss policy first, then
// one origin fetch per key (singleflight; across gateways a short lock in
// Valkey) that stores what the TTL policy allows. stale is the stored
// entry that could not be used as is: its validators make the fetch
// conditional, and it is served if the origin fails within its
// stale-if-error window.
func (g *Gateway) miss(w http.ResponseWriter, r *http.Request, gen *Generation, rt *route, st *reqState, primary, key string, stale *view, lookupErr error) error {
	act := rt.miss.OnMiss(&st.preq)
	if rt.plugins != nil {
		hookEvent(r.Context(), rt, evMissHook)
	}
	if act.OriginURL != "" && !policies.OriginAllowed(act.OriginURL, rt.allowedOrigins) {
		// A plugin may redirect a fill only to allowed origins (SSRF):
		// the built-in behaviour instead, as for a faulting plugin.
		g.log.WarnContext(r.Context(), "miss plugin named an origin not allowed; using the route's", "route", rt.name, "origin_url", act.OriginURL)
		act = policies.MissAction{}
	}
	if act.Status != 0 {
		st.rec.outcome, st.rec.status = outBypass, act.Status
		h := w.Header()
		h[hdrCacheStatus] = missStatus("bypass", false, "policy")
		h[hdrAge] = ageZero
		h[hdrContentLength] = []string{strconv.Itoa(len(act.Body))}
		w.WriteHeader(act.Status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(act.Body)
		}
		return nil
	}
	fwd := "uri-miss"
	switch {
	case act.Bypass:
		fwd = "bypass"
	case stale != nil:
		fwd = "stale"
		if st.dir.noCache {
			fwd = "request"
		}
	}
	shardErr := lookupErr != nil && !errors.Is(lookupErr, errMiss)
	if shardErr {
		st.rec.shard = gen.store.owner(key)
	}

	fr := fromRequest(r, st.preq)
	leader := false
	res, err, shared := g.sf.Do(key, func() (any, error) {
		leader = true
		return g.fill(gen, rt, fr, primary, key, st.marker, stale, act, shardErr)
	})
	if shared && !leader {
		g.coalesced()
	}
	if err != nil {
		g.log.WarnContext(r.Context(), "origin fetch failed", "route", rt.name, "err", err)
		if refused(err) { // the pool is at its cap or has no server (pools.go)
			st.rec.outcome, st.rec.status = outError, http.StatusServiceUnavailable
			writeRefused(w, rt, missStatus(fwd, false, "origin-unavailable"))
			return nil
		}
		st.rec.outcome, st.rec.status = outError, http.StatusBadGateway
		h := w.Header()
		h[hdrCacheStatus] = missStatus(fwd, false, "origin-error")
		h[hdrAge] = ageZero
		w.WriteHeader(http.StatusBadGateway)
		return nil
	}
	f := res.(*fetched)
	if leader && f.release != nil {
		defer f.release()
	}
	if !leader && f.private || !acceptsFetched(r, f) {
		// Not the waiter's to see (one user's page), or coded in a way
		// its request did not accept: it asks the origin itself.
		if f.large != nil && leader {
			f.large.Body.Close()
			f.cancel()
		}
		g.pass(w, r, gen, rt, st)
		return nil
	}
	now := time.Now()
	switch {
	case f.hit != nil:
		st.rec.outcome, st.rec.tier = outHit, f.hitTier
		serveView(w, r, f.hit, hitStatus(f.hitTier), now, &st.rec)
		return nil
	case f.stale != nil:
		st.rec.outcome = outStale
		serveView(w, r, f.stale, csStaleIfError, now, &st.rec)
		return nil
	case f.large != nil:
		if !leader {
			g.pass(w, r, gen, rt, st)
			return nil
		}
		st.rec.outcome = outNoStore
		streamLarge(w, r, f, fwd)
		st.rec.status = f.status
		return nil
	}
	switch {
	case f.fwdStatus == http.StatusNotModified:
		st.rec.outcome = outRevalidate
	case f.stored:
		st.rec.outcome = outMiss
	default:
		st.rec.outcome = outNoStore
	}
	detail := f.detail
	if shardErr && detail == "" {
		detail = "shard-unavailable"
	}
	cs := missStatus(fwd, f.stored, detail)
	if f.fwdStatus != 0 {
		cs = []string{cs[0] + "; fwd-status=" + strconv.Itoa(f.fwdStatus)}
	}
	cs = withUpstream(f.upstream, cs) // a shield's entry (pools.go)
	age := ageValue(f.initialAge)
	if notModified(r, f.status, f.etag, f.lastMod) {
		writeNotModified(w, f.header, age, cs)
		st.rec.status = http.StatusNotModified
		return nil
	}
	h := w.Header()
	for k, v := range f.header {
		h[k] = v
	}
	if leader && f.setCookie != nil {
		h["Set-Cookie"] = f.setCookie
	}
	h[hdrContentLength] = []string{strconv.Itoa(len(f.body))}
	h[hdrAge] = age
	h[hdrCacheStatus] = cs
	w.WriteHeader(f.status)
	st.rec.status = f.status
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.body)
	}
	return nil
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

// fill is the leader's work for one key: check the store once more (the
// previous leader, or another gateway, may have stored it meanwhile), take
// the cross-gateway lock (bounded wait), then fetch.
func (g *Gateway) fill(gen *Generation, rt *route, fr *fetchReq, primary, key string, marker, stale *view, act policies.MissAction, shardErr bool) (*fetched, error) {
	if !shardErr && !act.Bypass && stale == nil {
		if f := g.recheck(fr.ctx, gen, key, false); f != nil {
			return f, nil
		}
		if rt.lockWait > 0 {
			if f, done := g.coordinate(fr.ctx, gen, rt, primary, key); done {
				return f, nil
			} else if f != nil {
				defer f.cancel() // we hold the lock: release it once stored
			}
		}
	}
	return g.fetch(gen, rt, fr, primary, key, marker, stale, act, shardErr)
}

// coordinate makes one gateway fetch a cold key for all: it takes the
// key's fill lock in Valkey without waiting. The holder fetches (the
// returned fetched carries the release in cancel); the others poll the
// shard, bypassing the L1, until the entry appears or lockWait passes, and
// then fetch on their own: a holder that died or hangs delays them by
// lockWait at most. The lock lives lockWait at most, for the same reason.
func (g *Gateway) coordinate(ctx context.Context, gen *Generation, rt *route, primary, key string) (f *fetched, done bool) {
	release, held, supported, err := gen.store.tryLock(ctx, primary, rt.lockWait)
	switch {
	case !supported:
		return nil, false
	case err != nil:
		g.log.Debug("fill lock failed; fetching", "route", rt.name, "err", err)
		return nil, false
	case held:
		return &fetched{cancel: release}, false
	}
	deadline := time.NewTimer(rt.lockWait)
	defer deadline.Stop()
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			g.log.Debug("fill lock holder too slow; fetching", "route", rt.name)
			return nil, false
		case <-tick.C:
			if f := g.recheck(ctx, gen, key, true); f != nil {
				return f, true
			}
		}
	}
}

// lockPoll is how often a gateway waiting on another's fill looks for the
// entry.
const lockPoll = 20 * time.Millisecond

// recheck looks for a fresh entry under key; direct skips the L1.
func (g *Gateway) recheck(ctx context.Context, gen *Generation, key string, direct bool) *fetched {
	var (
		raw []byte
		t   tier
		err error
	)
	if direct {
		raw, err = gen.store.getDirect(ctx, key)
		t = tierL2
	} else {
		raw, t, err = g.read(ctx, gen, key, time.Now())
	}
	if err != nil {
		return nil
	}
	if v := g.views.get(key, raw, t.local(), false); v != nil && v.varyID == "" && !v.noCache && time.Now().UnixMilli() < v.freshUntil {
		return &fetched{hit: v, hitTier: t}
	}
	return nil
}

// fetch makes the one origin request of a miss or a refresh, and stores
// what it may. It does not use the client's context for cancellation:
// waiters depend on it, and a client that hangs up must not fail them; the
// route's origin timeout bounds it.
func (g *Gateway) fetch(gen *Generation, rt *route, fr *fetchReq, primary, key string, marker, stale *view, act policies.MissAction, shardErr bool) (*fetched, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(fr.ctx), rt.originTimeout)
	if rt.pool != nil {
		ctx = origins.WithKey(ctx, primary) // for a hash-balanced pool
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodGet, originURL(rt, fr.url, act), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if h := rt.outHost(fr.preq.Host); h != "" {
		out.Host = h
	}
	rt.fwd.copyRequestHeaders(out.Header, fr.header, fr.peer, fr.preq.Scheme, fr.preq.Host) // forward.go
	for k, v := range act.Header {
		out.Header[http.CanonicalHeaderKey(k)] = v
	}
	if stale != nil && !act.Bypass {
		if stale.etag != "" {
			out.Header["If-None-Match"] = []string{stale.etag}
		}
		if stale.lastMod != "" {
			out.Header["If-Modified-Since"] = []string{stale.lastMod}
		}
	}
	start := time.Now()
	resp, err := rt.transport.RoundTrip(out)
	g.originDone(rt, time.Since(start))
	if err != nil {
		cancel()
		if f := staleIfError(stale); f != nil {
			return f, nil
		}
		return nil, err
	}
	if resp.StatusCode >= 500 {
		if f := staleIfError(stale); f != nil {
			resp.Body.Close()
			cancel()
			return f, nil
		}
	}
	hdr := make(http.Header, len(resp.Header))
	entry.Filter(hdr, resp.Header)
	stripInternal(hdr)
	upstream := hdr[hdrCacheStatus]
	delete(hdr, hdrCacheStatus)
	f := &fetched{
		status: resp.StatusCode, header: hdr, initialAge: policies.ResponseAge(resp.Header),
		setCookie: resp.Header["Set-Cookie"], etag: hdr.Get("Etag"), lastMod: hdr.Get("Last-Modified"),
		replaces: stale != nil,
	}
	f.upstream = upstream

	if resp.StatusCode == http.StatusNotModified && stale != nil {
		// Revalidated: the stored body with the 304's header fields
		// (RFC 9111 §4.3.4), stored again with the new freshness.
		resp.Body.Close()
		defer cancel()
		merged := make(http.Header, len(stale.header)+len(hdr))
		for k, v := range stale.header {
			merged[k] = v
		}
		for k, v := range hdr {
			merged[k] = v
		}
		delete(merged, hdrContentLength)
		f.status, f.header, f.body, f.fwdStatus = stale.status, merged, stale.body, http.StatusNotModified
		f.etag, f.lastMod = merged.Get("Etag"), merged.Get("Last-Modified")
		f.setCookie = nil
		g.store(ctx, gen, rt, fr, primary, key, marker, f, resp.Header, act, shardErr)
		return f, nil
	}

	if resp.ContentLength > rt.maxBody {
		f.large, f.cancel, f.detail = resp, cancel, detailTooLarge
		return f, nil
	}
	// Bounded per fill and over all fills (fillbuf.go).
	body, parts, stopped, hold, err := readBody(resp.Body, resp.ContentLength, rt.maxBody, &g.fillBuf, gen.Config.Limits.FillBufferBytes)
	f.body, f.parts, f.hold, f.release = body, parts, hold, hold.release
	if err != nil {
		resp.Body.Close()
		cancel()
		f.release()
		if f := staleIfError(stale); f != nil {
			return f, nil
		}
		return nil, err
	}
	if stopped != "" {
		f.large, f.cancel, f.detail = resp, cancel, stopped
		return f, nil
	}
	resp.Body.Close()
	defer cancel()
	g.store(ctx, gen, rt, fr, primary, key, marker, f, resp.Header, act, shardErr)
	return f, nil
}

// staleIfError returns the stale entry to serve when the origin failed, if
// its stale-if-error window allows.
func staleIfError(stale *view) *fetched {
	if stale == nil || stale.varyID != "" {
		return nil
	}
	if now := time.Now().UnixMilli(); now < stale.freshUntil+stale.sie {
		return &fetched{stale: stale}
	}
	return nil
}

// store asks the TTL policy about f and stores it (under a Vary marker
// when the response varies). originHeader is the origin's unfiltered
// header, for the policy.
func (g *Gateway) store(ctx context.Context, gen *Generation, rt *route, fr *fetchReq, primary, key string, marker *view, f *fetched, originHeader http.Header, act policies.MissAction, shardErr bool) {
	now := time.Now()
	decideHeader := originHeader
	if f.fwdStatus == http.StatusNotModified {
		decideHeader = f.header
	}
	dec := rt.ttl.Decide(&fr.preq, &policies.Response{Status: f.status, Header: decideHeader}, now)
	if rt.plugins != nil {
		hookEvent(fr.ctx, rt, evResponseHook)
	}
	if dec.Store {
		reason := policies.Private(&fr.preq, &policies.Response{Status: f.status, Header: decideHeader}, rt.privacy, now)
		if reason == "" && !rt.privacy.StoreSetCookie && len(originHeader["Set-Cookie"]) > 0 {
			reason = policies.ReasonSetCookie // a 304 that sets a cookie
		}
		if reason != "" {
			dec = policies.Decision{Reason: reason}
			f.private = true // waiters fetch on their own (miss)
		}
	}
	switch {
	case act.Bypass:
		f.detail = "policy"
		return
	case !dec.Store:
		f.detail = dec.Reason
		return
	case shardErr && !gen.store.hasFallback():
		return // the shard failed the lookup; don't wait on it again
	}
	cc := policies.ParseCacheControl(decideHeader["Cache-Control"])
	if !cc.HasSWR && !cc.MustRevalidate && !cc.ProxyRevalidate {
		dec.StaleWhileRevalidate = rt.swr
	}
	if !cc.HasSIE && !cc.MustRevalidate && !cc.ProxyRevalidate {
		dec.StaleIfError = rt.sie
	}
	tags := dec.Tags
	if tags == nil {
		tags = parseTags(f.header, rt.tagHeaders)
	}
	retain := dec.TTL + max(dec.StaleWhileRevalidate, dec.StaleIfError)
	if f.etag != "" || f.lastMod != "" {
		retain += rt.keep
	}
	if retain <= 0 {
		f.detail = policies.ReasonStaleOnArrival
		return
	}
	e := entry.Entry{
		Status:               f.status,
		StoredAt:             now,
		FreshUntil:           now.Add(dec.TTL),
		InitialAge:           f.initialAge,
		StaleWhileRevalidate: dec.StaleWhileRevalidate,
		StaleIfError:         dec.StaleIfError,
		ETag:                 f.etag,
		LastModified:         f.lastMod,
		Header:               f.header,
		Tags:                 tags,
		Body:                 f.body,
	}
	storeKey := key
	if names := varyNames(f.header["Vary"]); len(names) > 0 {
		if shardErr {
			return // a variant needs the marker on the shard
		}
		// Keyed on the coding the response has (policies/encoding.go):
		// under the variant the fill asked for when it has that coding or
		// none (every client of that variant accepts it; serving checks
		// identity;q=0), else under its own.
		coding, ok := policies.VariantCoding(f.header["Content-Encoding"])
		if !ok && variesOnCoding(names) {
			f.detail = "content-encoding"
			return
		}
		if asked := policies.PreferredCoding(fr.header["Accept-Encoding"]); coding == "" {
			coding = asked
		}
		if storeKey, ok = g.variantKey(ctx, gen, rt, fr, primary, marker, names, coding, retain, now); !ok {
			f.detail = "store-failed"
			return
		}
	} else if key != primary {
		// The response no longer varies: it replaces the marker.
		storeKey = primary
	}
	val := entry.Encode(make([]byte, 0, entry.Size(&e)), &e)
	if f.replaces {
		// This replaces an entry the L1 may still hold until Valkey's
		// invalidation push arrives: read past the L1 for a moment.
		g.recent.add(storeKey)
	}
	if shardErr {
		// The shard failed the lookup: into the fallback, without
		// waiting on the shard again.
		gen.store.setFallback(storeKey, val, retain, tags)
	} else if err := gen.store.set(ctx, storeKey, val, retain, tags); err != nil {
		f.detail = "store-failed"
		g.log.DebugContext(fr.ctx, "store failed", "route", rt.name, "err", err)
		return
	}
	if !f.replaces {
		g.filled.add(storeKey) // the L1 may still say "no such key" (see read)
	}
	f.stored = true
}

// variantKey returns the key a response varying on names is stored under,
// creating the marker at the primary key if needed (SET NX, so that
// gateways racing agree on one id) and extending its life to retain.
func (g *Gateway) variantKey(ctx context.Context, gen *Generation, rt *route, fr *fetchReq, primary string, marker *view, names []string, coding string, retain time.Duration, now time.Time) (string, bool) {
	id := ""
	if marker != nil && equalNames(marker.varyNames, names) {
		id = marker.varyID
		_ = gen.store.extend(ctx, primary, retain)
	} else {
		val, newID := newMarker(names, now)
		if marker != nil { // the response now varies otherwise: a new marker
			if err := gen.store.set(ctx, primary, val, retain, nil); err != nil {
				return "", false
			}
			id = newID
		} else if ok, err := gen.store.setNX(ctx, primary, val, retain); err != nil {
			return "", false
		} else if ok {
			id = newID
		} else if raw, err := gen.store.getDirect(ctx, primary); err == nil {
			if m := g.views.get(primary, raw, false, false); m != nil && m.varyID != "" && equalNames(m.varyNames, names) {
				id = m.varyID
				_ = gen.store.extend(ctx, primary, retain)
			}
		}
	}
	if id == "" {
		return "", false
	}
	b := []byte(primary)
	b = rt.appendVariant(b, id, names, fr.header, coding)
	return string(b), true
}

func equalNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parseTags reads surrogate keys from the tag headers: Surrogate-Key is
// space-separated, Cache-Tag comma-separated; both separators are
// accepted in either.
func parseTags(h http.Header, names []string) []string {
	var tags []string
	for _, n := range names {
		for _, v := range h[n] {
			tags = append(tags, strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })...)
		}
	}
	return tags
}

// refreshInBackground revalidates a stale entry served under
// stale-while-revalidate: once per key at a time (singleflight), detached
// from the client's request, which has its answer already.
func (g *Gateway) refreshInBackground(gen *Generation, rt *route, r *http.Request, st *reqState, primary, key string, stale *view) {
	preq := st.preq
	preq.Header = r.Header.Clone()
	fr := &fetchReq{ctx: context.Background(), method: r.Method, url: cloneURL(r.URL), header: preq.Header, preq: preq, peer: r.RemoteAddr}
	marker := st.marker
	g.sf.DoChan(key, func() (any, error) {
		f, err := g.fetch(gen, rt, fr, primary, key, marker, stale, policies.MissAction{}, false)
		if f != nil && f.large != nil {
			// Nobody streams a background refresh: drop it.
			f.large.Body.Close()
			f.cancel()
		}
		if f != nil && f.release != nil {
			f.release() // stored (or not): no client holds the buffer
		}
		return f, err
	})
}

func cloneURL(u *url.URL) *url.URL {
	c := *u
	return &c
}

// streamLarge passes a response too large to store straight through.
func streamLarge(w http.ResponseWriter, r *http.Request, f *fetched, fwd string) {
	defer f.cancel()
	defer f.large.Body.Close()
	h := w.Header()
	for k, v := range f.header {
		h[k] = v
	}
	if f.setCookie != nil {
		h["Set-Cookie"] = f.setCookie
	}
	if f.large.ContentLength >= 0 {
		h[hdrContentLength] = []string{strconv.FormatInt(f.large.ContentLength, 10)}
	}
	h[hdrAge] = ageValue(f.initialAge)
	h[hdrCacheStatus] = withUpstream(f.upstream, missStatus(fwd, false, f.detail))
	w.WriteHeader(f.status)
	if r.Method == http.MethodHead {
		return
	}
	for i, p := range f.parts {
		_, err := w.Write(p)
		f.parts[i] = nil
		f.hold.releasePart(int64(cap(p)))
		if err != nil {
			return
		}
	}
	// Flush as the origin sends: a large body may be slow or endless (a
	// stream), and the client should see it as it comes.
	fl := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := f.large.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the client went away: stop reading the origin
			}
			if ferr := fl.Flush(); ferr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// originURL is the route's origin joined with the request's path and query,
// unless the Miss policy named another URL.
func originURL(rt *route, u *url.URL, act policies.MissAction) string {
	if act.OriginURL != "" {
		return act.OriginURL
	}
	o := *rt.origin
	o.Path = strings.TrimSuffix(o.Path, "/") + u.Path
	o.RawPath = strings.TrimSuffix(rt.origin.EscapedPath(), "/") + u.EscapedPath()
	o.RawQuery = u.RawQuery
	return o.String()
}

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1, and the
// conditional and range headers: a cache fill fetches the whole
// representation, whatever the client that caused it asked.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"If-None-Match": true, "If-Modified-Since": true, "If-Match": true, "If-Unmodified-Since": true,
	"If-Range": true, "Range": true, "Cache-Control": true, "Pragma": true,
}

// newProxy returns the pass-through proxy of a route: uncached methods and
// requests the cache must not answer. It streams both ways.
func newProxy(rt *route, log *slog.Logger) *httputil.ReverseProxy {
	target := rt.origin
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			rt.fwd.rewritePass(pr.Out.Header, pr.In) // forward.go
			if h := rt.outHost(pr.In.Host); h != "" {
				pr.Out.Host = h
			}
		},
		Transport: rt.transport,
		ModifyResponse: func(resp *http.Response) error {
			if inv, ok := resp.Request.Context().Value(invalidationKey{}).(*invalidation); ok && resp.StatusCode < 400 {
				if err := inv.run(resp.Request.Context(), resp.Header); err != nil {
					log.WarnContext(resp.Request.Context(), "invalidation failed", "err", err)
				}
			}
			resp.Header[hdrCacheStatus] = withUpstream(resp.Header[hdrCacheStatus], csBypass)
			if _, ok := resp.Header[hdrAge]; !ok {
				resp.Header[hdrAge] = ageZero
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if code := clientBodyError(err); code != 0 { // limits.go: the client's body, not the origin
				w.WriteHeader(code)
				return
			}
			log.WarnContext(r.Context(), "origin proxy failed", "err", err)
			if refused(err) {
				writeRefused(w, rt, missStatus("bypass", false, "origin-unavailable"))
				return
			}
			w.Header()[hdrCacheStatus] = missStatus("bypass", false, "origin-error")
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}

// run deletes the request URL's entry and those of same-host Location and
// Content-Location.
func (inv *invalidation) run(ctx context.Context, h http.Header) error {
	keys := []string{inv.key}
	base := &url.URL{Scheme: inv.req.Scheme, Host: inv.req.Host, Path: inv.req.Path}
	for _, name := range []string{"Location", "Content-Location"} {
		v := h.Get(name)
		if v == "" {
			continue
		}
		u, err := base.Parse(v)
		if err != nil || !strings.EqualFold(u.Host, inv.req.Host) {
			continue // another host: not ours to invalidate (RFC 9111 §4.4)
		}
		r := policies.Request{Method: http.MethodGet, Scheme: inv.req.Scheme, Host: inv.req.Host, Path: u.EscapedPath(), RawQuery: u.RawQuery}
		keys = append(keys, string(inv.rt.key.AppendKey(nil, &r)))
	}
	inv.recent.add(keys...)
	return inv.gen.store.del(ctx, keys...)
}
