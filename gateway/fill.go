package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/edgecache/edgecache/internal/entry"
	"github.com/edgecache/edgecache/origins"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/shardmap"
)

// A fill is one miss of one key, made once for every request that waits
// on it: what the read path learned (the generation, the route, the
// request view, the keys, the Vary marker, the entry it could not use,
// whether the shard failed) and what the Miss policy said. Its methods are
// the miss in order, as groupcache's load → getLocally → populateCache:
//
//	run:      look once more, take the cross-gateway lock, or wait on it
//	fetch:    the one origin request, bounded in memory (fetch.go)
//	store:    the TTL policy and the privacy rules decide; SET with PX,
//	          under a Vary marker when the response varies
//
// A fill outlives the request that made it only in a background refresh
// and a streaming fill (tee.go detach), whose fetchReq is a copy: the
// fast path reuses the request, its Header and URL (internal/h1).
type fill struct {
	g        *Gateway
	gen      *Generation
	rt       *route
	req      *fetchReq
	primary  string // the request's key
	key      string // the key the entry is stored under (a variant's, through the marker)
	marker   *view  // the Vary marker at primary, if any
	stale    *view  // the stored entry that could not be used as is
	act      policies.MissAction
	shardErr bool // the shard failed the lookup: store into the fallback, if any
	// untracked is set when the lookup's "no such key" came from a round
	// trip the L1 does not remember (a key's first lookup, admit.go in
	// shardmap; or no L1): no invalidation will tell run's recheck that
	// the key was stored since, so it asks the shard only when this
	// gateway stored it.
	untracked bool
	auth      bool     // the request has Authorization: its own fill, straight to the origin
	hints     []string // the Link fields of the origin's 103 (hints.go)
	// unlock releases the cross-gateway fill lock once stored: by run,
	// or by a streaming fill's goroutine (tee.go), which takes it. lock
	// is that lock: write frees it with the entry's SET when both are on
	// one shard (one round trip), and unlock then does nothing.
	unlock func()
	lock   *shardmap.Lock
}

// newFill is the fill of the request in st.
func newFill(g *Gateway, r *http.Request, st *reqState, act policies.MissAction) *fill {
	return &fill{
		g: g, gen: st.gen, rt: st.rt, req: fromRequest(r, st.preq),
		primary: st.rec.key, key: st.stored, marker: st.marker, stale: st.found,
		act: act, shardErr: isShardErr(st.err), auth: st.auth,
		untracked: st.err == errMiss && st.tier == tierL2,
	}
}

// run is the leader's work: check the store once more (the previous
// leader, or another gateway, may have stored it meanwhile), take the
// cross-gateway lock (bounded wait), then fetch. After a tracked lookup
// the recheck reads the L1, which still holds the lookup's "no such key"
// unless an invalidation (a store) came since: no round trip. After an
// untracked one it would be a round trip every miss, so it is made only
// when this gateway stored the key a moment ago; another gateway's store
// in that moment is the lock's to find, when there are peers.
func (fl *fill) run() (*fetched, error) {
	if !fl.shardErr && !fl.act.Bypass && fl.stale == nil && !fl.auth {
		if fl.untracked && !fl.g.filled.has(fl.key, time.Now().UnixNano()) {
			// nothing to recheck
		} else if f := fl.g.recheck(fl.req.ctx, fl.gen, fl.key, false); f != nil {
			return f, nil
		}
		if fl.rt.lockWait > 0 {
			if f, done := fl.coordinate(fl.req.ctx); done {
				return f, nil
			} else if f != nil {
				fl.unlock = f.cancel // we hold the lock: release it once stored
			}
		}
	}
	f, err := fl.fetch()
	if fl.unlock != nil {
		fl.unlock()
	}
	return f, err
}

// coordinate makes one gateway fetch a cold key for all: it takes the
// key's fill lock in Valkey without waiting. The holder fetches (the
// returned fetched carries the release in cancel); the others poll the
// shard, bypassing the L1, until the entry appears or lockWait passes, and
// then fetch on their own: a holder that died or hangs delays them by
// lockWait at most. The lock lives lockWait at most, for the same reason.
func (fl *fill) coordinate(ctx context.Context) (f *fetched, done bool) {
	g, rt := fl.g, fl.rt
	lock, held, supported, err := fl.gen.store.tryLock(ctx, fl.primary, rt.lockWait)
	switch {
	case !supported:
		return nil, false
	case err != nil:
		g.log.Debug("fill lock failed; fetching", "route", rt.name, "err", err)
		return nil, false
	case held:
		fl.lock = lock
		return &fetched{cancel: lock.Release}, false
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
			if f := g.recheck(ctx, fl.gen, fl.key, true); f != nil {
				return f, true
			}
		}
	}
}

// store asks the TTL policy and the privacy rules about f and stores it
// (under a Vary marker when the response varies). originHeader is the
// origin's unfiltered header, for the policies.
func (fl *fill) store(ctx context.Context, f *fetched, originHeader http.Header) {
	now := fl.g.timeNow()
	if dec, ok := fl.decide(f, originHeader, now); ok {
		fl.keep(ctx, f, dec, now)
	}
}

// keep stores f as dec says (decided at now).
func (fl *fill) keep(ctx context.Context, f *fetched, dec policies.Decision, now time.Time) {
	tags := dec.Tags
	if tags == nil {
		tags = policies.ParseTags(f.header, fl.rt.tagHeaders)
	}
	retain := policies.Retain(&dec, f.etag != "" || f.lastMod != "", fl.rt.keep)
	if retain <= 0 {
		f.detail = policies.ReasonStaleOnArrival
		return
	}
	fl.compress(f) // encode.go
	storeKey, ok := fl.storeKey(ctx, f, retain, now)
	if !ok {
		return
	}
	fl.write(ctx, f, storeKey, &entry.Entry{
		Status: f.status, StoredAt: now, FreshUntil: now.Add(dec.TTL), InitialAge: f.initialAge,
		StaleWhileRevalidate: dec.StaleWhileRevalidate, StaleIfError: dec.StaleIfError,
		ETag: f.etag, LastModified: f.lastMod, Tags: tags, Body: f.body,
		Header: fl.rt.entryHeader(f.header, f.decided, f.hints), // targeted.go
	}, retain)
}

// decide is the storage decision: the route's TTL policy (a plugin's
// response hook), then the privacy rules, which no policy can lift, then
// the route's default stale windows. false: not stored (f.detail says
// why, when there is a why to tell).
func (fl *fill) decide(f *fetched, originHeader http.Header, now time.Time) (policies.Decision, bool) {
	rt, preq := fl.rt, &fl.req.preq
	decideHeader := fl.decideHeader(f, originHeader)
	f.decided = decideHeader
	resp := &policies.Response{Status: f.status, Header: decideHeader}
	dec := rt.ttl.Decide(preq, resp, now)
	if rt.plugins != nil {
		hookEvent(fl.req.ctx, rt, evResponseHook)
	}
	if dec.Store {
		reason := policies.Private(preq, resp, rt.privacy, now)
		if reason == "" && !rt.privacy.StoreSetCookie && len(originHeader["Set-Cookie"]) > 0 {
			reason = policies.ReasonSetCookie // a 304 that sets a cookie
		}
		if reason != "" {
			dec = policies.Decision{Reason: reason}
			f.private = true // waiters fetch on their own (miss)
		}
	}
	switch {
	case fl.act.Bypass:
		f.detail = "policy"
		return dec, false
	case f.status == http.StatusPartialContent && dec.Store:
		// A fill asks for the whole object (no Range): a 206 is a part
		// the origin sent anyway, whatever a policy says (RFC 9111 §3.3).
		f.detail = policies.ReasonStatus
		return dec, false
	case !dec.Store:
		f.detail = dec.Reason
		return dec, false
	case fl.shardErr && !fl.gen.store.hasFallback():
		return dec, false // the shard failed the lookup; don't wait on it again
	}
	cc := rt.directives(decideHeader) // targeted.go
	return policies.StaleDefaults(dec, &cc, rt.swr, rt.sie), true
}

// decideHeader is the header the storage decision reads: the origin's,
// or for a 304 the stored one updated with the 304's (RFC 9111 §4.3.4),
// with the 304's own targeted field, which the stored one no longer has.
func (fl *fill) decideHeader(f *fetched, originHeader http.Header) http.Header {
	if f.fwdStatus != http.StatusNotModified {
		return originHeader
	}
	name := fl.rt.targetedField
	if v := originHeader[name]; name != "" && len(v) > 0 {
		h := f.header.Clone()
		h[name] = v
		return h
	}
	return f.header
}

// storeKey is the key f is stored under: the fill's, a variant's under
// the marker when the response varies, or the primary when it no longer
// does (it replaces the marker).
func (fl *fill) storeKey(ctx context.Context, f *fetched, retain time.Duration, now time.Time) (string, bool) {
	names := varyNames(f.header["Vary"])
	if len(names) == 0 {
		return fl.primary, true
	}
	if fl.shardErr {
		return "", false // a variant needs the marker on the shard
	}
	// Keyed on the coding the response has (policies/encoding.go): under
	// the variant the fill asked for when it has that coding or none
	// (every client of that variant accepts it; serving checks
	// identity;q=0), else under its own.
	coding, ok := policies.VariantCoding(f.header["Content-Encoding"])
	if !ok && variesOnCoding(names) {
		f.detail = "content-encoding"
		return "", false
	}
	if asked := policies.PreferredCoding(fl.req.header["Accept-Encoding"]); coding == "" {
		coding = asked
	}
	key, ok := fl.variantKey(ctx, names, coding, retain, now)
	if !ok {
		f.detail = "store-failed"
	}
	return key, ok
}

// write stores e under key for retain: on the shard, or into the
// fallback when the shard failed the lookup.
func (fl *fill) write(ctx context.Context, f *fetched, key string, e *entry.Entry, retain time.Duration) {
	g, gen, tags := fl.g, fl.gen, e.Tags
	val := entry.Encode(make([]byte, 0, entry.Size(e)), e)
	if f.replaces {
		// This replaces an entry the L1 may still hold until Valkey's
		// invalidation push arrives: read past the L1 for a moment.
		g.recent.add(key)
	}
	if fl.shardErr {
		gen.store.setFallback(key, val, retain, tags) // without waiting on the shard again
	} else if err := gen.store.setReleasing(ctx, storeItem{key, val, retain, tags}, fl.lock); err != nil {
		f.detail = "store-failed"
		g.log.DebugContext(fl.req.ctx, "store failed", "route", fl.rt.name, "err", err)
		return
	}
	if !f.replaces {
		g.filled.add(key) // the L1 may still say "no such key" (see read)
	}
	f.stored = true
}

// variantKey returns the key a response varying on names is stored under,
// creating the marker at the primary key if needed (SET NX, so that
// gateways racing agree on one id) and extending its life to retain.
func (fl *fill) variantKey(ctx context.Context, names []string, coding string, retain time.Duration, now time.Time) (string, bool) {
	store, primary, marker := fl.gen.store, fl.primary, fl.marker
	id := ""
	if marker != nil && equalNames(marker.varyNames, names) {
		id = marker.varyID
		_ = store.extend(ctx, primary, retain)
	} else {
		val, newID := newMarker(names, now)
		// Until Valkey's invalidation push arrives, the L1 may still hold
		// what it had at primary before the marker: the old marker (read
		// past the L1) or "no such key" (a miss there is asked of the
		// shard), as for the entries write stores.
		if marker != nil { // the response now varies otherwise: a new marker
			fl.g.recent.add(primary)
			if err := store.set(ctx, primary, val, retain, nil); err != nil {
				return "", false
			}
			id = newID
		} else if ok, err := store.setNX(ctx, primary, val, retain); err != nil {
			return "", false
		} else if ok {
			fl.g.filled.add(primary)
			id = newID
		} else if raw, err := store.getDirect(ctx, primary); err == nil {
			if m := fl.g.views.get(primary, raw, false, false); m != nil && m.varyID != "" && equalNames(m.varyNames, names) {
				id = m.varyID
				_ = store.extend(ctx, primary, retain)
			}
		}
	}
	if id == "" {
		return "", false
	}
	b := []byte(primary)
	b = fl.rt.appendVariant(b, id, names, fl.req.header, coding)
	return string(b), true
}

// refreshInBackground revalidates a stale entry served under
// stale-while-revalidate: once per key at a time (singleflight), detached
// from the client's request, which has its answer already. It copies the
// header and URL it reads: the fast path reuses r, its Header and URL for
// the connection's next request once the handler returns (internal/h1's
// ownership rule; TestRefreshOutlivesRequest). Strings need no copy.
func (g *Gateway) refreshInBackground(r *http.Request, st *reqState, stale *view) {
	preq := st.preq
	preq.Header = r.Header.Clone()
	fl := &fill{
		g: g, gen: st.gen, rt: st.rt,
		req:     &fetchReq{ctx: context.Background(), method: r.Method, url: cloneURL(r.URL), header: preq.Header, preq: preq, peer: r.RemoteAddr},
		primary: st.rec.key, key: st.stored, marker: st.marker, stale: stale,
	}
	g.sf.DoChan(fl.key, func() (any, error) {
		f, err := fl.fetch()
		if f != nil && f.tee != nil {
			f.tee.detach(f.tee.lead) // nobody follows it; it goes on for the store
		}
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

// fetchContext bounds a fill's origin request by the route's origin
// timeout, not the client's context: waiters depend on it, and a client
// that hangs up must not fail them.
func (fl *fill) fetchContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(fl.req.ctx), fl.rt.originTimeout)
	if fl.rt.pool != nil {
		ctx = origins.WithKey(ctx, fl.primary) // for a hash-balanced pool
	}
	return ctx, cancel
}
