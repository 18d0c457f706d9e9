package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edgecache/edgecache/internal/h1"
	"github.com/edgecache/edgecache/policies"
)

// reqState is the per-request scratch space of the read path, pooled.
// Ownership: taken at the start of handle, returned when handle returns;
// nothing may keep a reference to it (or to its Request) past that.
type reqState struct {
	gen  *Generation // read once per request
	rt   *route
	now  time.Time
	preq policies.Request
	key  []byte
	rec  record
	dir  directives

	// What the lookup found (lookup).
	marker *view  // the Vary marker at the primary key, if any
	found  *view  // the entry, nil if none
	stored string // the key it is (or would be) stored under
	tier   tier   // where it came from
	err    error  // the lookup's error: errMiss, or the shard's

	lookupCtx detached
}

// detached is a request's context without its cancellation (values only).
// It lives in the pooled reqState: nothing may keep it past the call it
// is passed to.
type detached struct{ parent context.Context }

func (d *detached) Deadline() (time.Time, bool) { return time.Time{}, false }
func (d *detached) Done() <-chan struct{}       { return nil }
func (d *detached) Err() error                  { return nil }
func (d *detached) Value(key any) any           { return d.parent.Value(key) }

var statePool = sync.Pool{New: func() any { return &reqState{key: make([]byte, 0, 256)} }}

// handle is the read path for every request on the traffic listener, in
// the order of DESIGN.md: route, key, owner and lookup, serve, or fill.
func (g *Gateway) handle(c echo.Context) error {
	r, w := c.Request(), c.Response()
	st := statePool.Get().(*reqState)
	defer statePool.Put(st)
	st.gen, st.rt, st.rec, st.marker, st.found = g.gen.Load(), nil, record{}, nil, nil
	defer g.observe(r, &st.rec)

	if ok, err := g.route(w, r, st); !ok { // 1. route (limits.go, forward.go)
		return err
	}
	if !cacheableRequest(r) {
		g.pass(w, r, st) // proxy.go
		return nil
	}
	primary := g.cacheKey(r, st) // 2. key
	st.now = time.Now()
	g.lookup(r, st, primary)    // 3, 4. owner and lookup
	if g.serveFound(w, r, st) { // 5. serve
		return nil
	}
	if st.dir.onlyIfCached {
		st.rec.outcome, st.rec.status = outError, http.StatusGatewayTimeout
		h := w.Header()
		h[hdrCacheStatus] = csOnlyIfCached
		h[hdrAge] = ageZero
		w.WriteHeader(http.StatusGatewayTimeout)
		return nil
	}
	st.rec.tier = st.tier   // where a stale entry served by stale-if-error came from
	return g.miss(w, r, st) // 6. fill (miss.go)
}

// route selects the request's route and screens the request against the
// limits, the route's methods and loops; false means it has been answered
// (or err is echo's to render).
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, st *reqState) (bool, error) {
	if !screen(w, r, &st.gen.Config.Limits, &st.rec) { // limits.go
		return false, nil
	}
	rt := st.gen.match(r.Host, r.URL.Path)
	if rt == nil {
		st.rec.outcome, st.rec.status = outNoRoute, http.StatusNotFound
		return false, echo.NewHTTPError(http.StatusNotFound, "edgecache: no route for this host and path")
	}
	st.rt, st.rec.route = rt, rt
	if !allowedOn(w, r, rt, &st.rec) { // limits.go
		return false, nil
	}
	if rt.fwd.loops(r) { // forward.go
		st.rec.outcome, st.rec.status = outError, http.StatusLoopDetected
		w.Header()["Content-Type"] = textPlain
		w.WriteHeader(http.StatusLoopDetected)
		_, _ = w.Write(loopBody)
		return false, nil
	}
	return true, nil
}

var loopBody = []byte("edgecache: loop detected (CDN-Loop)\n")

// cacheKey names the request's entry with the route's Key policy and
// interns it, so that a hot key costs no allocation.
func (g *Gateway) cacheKey(r *http.Request, st *reqState) string {
	st.request(r)
	st.dir = parseDirectives(r.Header, st.rt.ignoreClientNoCache)
	st.key = st.rt.key.AppendKey(st.key[:0], &st.preq)
	if st.rt.plugins != nil {
		hookEvent(r.Context(), st.rt, evKeyHook)
	}
	primary := g.keys.intern(st.key)
	st.rec.key = primary
	return primary
}

// lookup reads the entry for the request into st: the primary key, and
// through a Vary marker the variant. A lookup is bounded by the shard's
// command timeout, not by the client: waiting on the request's Done would
// start the fast path's hang-up watch on every L2 read (internal/h1).
func (g *Gateway) lookup(r *http.Request, st *reqState, primary string) {
	st.lookupCtx.parent = r.Context()
	defer func() { st.lookupCtx.parent = nil }()
	ctx, gen := &st.lookupCtx, st.gen
	st.stored = primary
	raw, t, err := g.read(ctx, gen, primary, st.now)
	st.tier, st.err = t, err
	if err != nil {
		return
	}
	l1Off := gen.Config.Valkey.DisableL1
	v := g.views.get(primary, raw, t.local(), l1Off)
	if v == nil || v.varyID == "" {
		st.found = v
		return
	}
	st.marker = v
	coding := policies.PreferredCoding(st.preq.Header["Accept-Encoding"])
	st.key = st.rt.appendVariant(st.key, v.varyID, v.varyNames, st.preq.Header, coding)
	st.stored = g.keys.intern(st.key)
	raw, st.tier, st.err = g.read(ctx, gen, st.stored, st.now)
	if st.err == nil {
		st.found = g.views.get(st.stored, raw, st.tier.local(), l1Off)
	}
}

// serveFound answers from the entry the lookup found when it may
// (usable); false sends the request to the fill. An entry in a coding the
// client did not accept is never served: the request is passed.
func (g *Gateway) serveFound(w http.ResponseWriter, r *http.Request, st *reqState) bool {
	v := st.found
	if v == nil {
		return false
	}
	if v.contentCoding != "" && !policies.AcceptsContentCoding(r.Header["Accept-Encoding"], v.contentCoding) {
		// Stored without Vary: Accept-Encoding (or under a variant it
		// should not be).
		g.pass(w, r, st)
		return true
	}
	switch g.usable(v, st, st.now.UnixMilli()) {
	case useFresh:
		st.rec.outcome, st.rec.tier = outHit, st.tier
		serveView(w, r, st, v, hitStatus(st.tier))
	case useStale:
		st.rec.outcome, st.rec.tier = outStale, st.tier
		serveView(w, r, st, v, csStale)
	case useStaleRefresh:
		st.rec.outcome, st.rec.tier = outStale, st.tier
		g.refreshInBackground(r, st, v) // fill.go
		serveView(w, r, st, v, csStaleRevalidate)
	default:
		return false
	}
	return true
}

// read gets key's entry through the L1, or straight from its shard when
// this gateway invalidated, purged or refreshed key a moment ago: the L1
// may not have heard yet, and what the shard now holds (a soft-purged
// entry, say) must be what the next request sees.
//
// A miss from the L1 for a key this gateway stored a moment ago is not
// trusted either: the L1 may still hold the "no such key" it learned
// before the fill, until Valkey's invalidation push arrives. The shard is
// asked; hits keep coming from the L1.
func (g *Gateway) read(ctx context.Context, gen *Generation, key string, now time.Time) ([]byte, tier, error) {
	if g.recent.has(key, now.UnixNano()) {
		raw, err := gen.store.getDirect(ctx, key)
		return raw, tierL2, err
	}
	raw, t, err := gen.store.get(ctx, key, now)
	if err == errMiss && g.filled.has(key, now.UnixNano()) {
		raw, err = gen.store.getDirect(ctx, key)
		t = tierL2
	}
	return raw, t, err
}

// use says how a stored entry may answer a request.
type use uint8

const (
	useNone         use = iota // go to the origin (revalidating when possible)
	useFresh                   // fresh: serve
	useStale                   // stale, but the client accepts it (max-stale)
	useStaleRefresh            // stale within stale-while-revalidate: serve, refresh in the background
)

// usable decides, at now (unix ms), between serving v and going to the
// origin, from the entry's freshness and the request's directives
// (RFC 9111 §4.2, §5.2.1; RFC 5861).
func (g *Gateway) usable(v *view, st *reqState, now int64) use {
	if v.varyID != "" || v.status == 0 {
		return useNone
	}
	freshUntil := v.freshUntil
	if m := st.marker; m != nil && m.freshUntil < markerFresh.UnixMilli() && v.storedAt <= m.freshUntil {
		freshUntil = min(freshUntil, m.freshUntil) // soft-purged through the marker
	}
	d := &st.dir
	left := freshUntil - now
	fresh := left > 0 && !v.noCache
	if fresh && !d.noCache && (!d.hasMinFresh || left >= d.minFresh) && (!d.hasMaxAge || v.age(now) <= d.maxAge) {
		return useFresh
	}
	if d.noCache || v.noCache || v.mustRevalidate && !fresh {
		return useNone
	}
	staleBy := max(-left, 0)
	if d.hasMaxStale && (d.maxStaleAny || staleBy <= d.maxStale) && !fresh {
		return useStale
	}
	if !fresh && staleBy < v.swr {
		return useStaleRefresh
	}
	return useNone
}

// directives are the request's Cache-Control directives that the read
// path honours, in ms.
type directives struct {
	noCache, onlyIfCached, hasMaxAge, hasMaxStale, maxStaleAny, hasMinFresh bool
	maxAge, maxStale, minFresh                                              int64
}

// parseDirectives reads Cache-Control (and Pragma: no-cache without
// Cache-Control, RFC 9111 §5.4). max-age=0 asks for revalidation like
// no-cache. With ignoreNoCache (a per-route switch, as CDNs offer) the
// client cannot force revalidation.
func parseDirectives(h http.Header, ignoreNoCache bool) directives {
	cc, ok := h["Cache-Control"]
	if !ok {
		if p := h["Pragma"]; len(p) > 0 && !ignoreNoCache {
			return directives{noCache: p[0] == "no-cache"}
		}
		return directives{}
	}
	c := policies.ParseCacheControl(cc)
	d := directives{
		noCache:      (c.NoCache || c.HasMaxAge && c.MaxAge == 0) && !ignoreNoCache,
		onlyIfCached: c.OnlyIfCached,
		hasMaxAge:    c.HasMaxAge && !ignoreNoCache,
		maxAge:       c.MaxAge.Milliseconds(),
		hasMaxStale:  c.HasMaxStale || c.MaxStaleAny,
		maxStale:     c.MaxStale.Milliseconds(),
		maxStaleAny:  c.MaxStaleAny,
		hasMinFresh:  c.HasMinFresh,
		minFresh:     c.MinFresh.Milliseconds(),
	}
	return d
}

// cacheableRequest reports whether the cache may answer r. Requests with
// Authorization are never answered from a shared cache here (RFC 9111
// §3.5 allows it only for responses marked public, which a stored entry
// does not record). Range requests are answered from the whole
// representation (ranges.go).
func cacheableRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if _, ok := r.Header["Authorization"]; ok {
		return false
	}
	return true
}

// request fills in the request view the policies read.
func (st *reqState) request(r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	st.preq = policies.Request{
		Method:   r.Method,
		Scheme:   scheme,
		Host:     canonicalHost(r.Host),
		Path:     r.URL.EscapedPath(),
		RawQuery: r.URL.RawQuery,
		Header:   r.Header,
	}
}

// serveView writes a stored entry as of st.now: headers assigned from pre-built values,
// one write of the body, no flush. A conditional request that the entry
// satisfies gets 304.
func serveView(w http.ResponseWriter, r *http.Request, st *reqState, v *view, cacheStatus []string) {
	h := w.Header()
	rec := &st.rec
	age := ageValue(time.Duration(v.age(st.now.UnixMilli())) * time.Millisecond)
	if notModified(r, v.status, v.etag, v.lastMod) {
		writeNotModified(w, v.header, age, cacheStatus)
		rec.status = http.StatusNotModified
		return
	}
	if serveViewRange(w, r, st, v, hitFields{age, cacheStatus}) { // ranges.go
		return
	}
	if hw := preparedWriter(w); hw != nil && v.fields != nil && len(h) == 0 {
		// The fast path's writer takes the stored fields as serialized
		// when the entry was decoded: no header map on a hit.
		var buf [128]byte
		extra := h1.AppendField(buf[:0], hdrAge, age)
		extra = h1.AppendField(extra, hdrCacheStatus, cacheStatus)
		if hw.WritePrepared(v.status, v.fields, extra, v.body, v.hasDate) {
			rec.status = v.status
			return
		}
	}
	for k, vals := range v.header {
		h[k] = vals
	}
	h[hdrAge] = age
	h[hdrCacheStatus] = cacheStatus
	w.WriteHeader(v.status)
	rec.status = v.status
	if r.Method != http.MethodHead {
		_, _ = w.Write(v.body)
	}
}

// preparedWriter returns the fast path's writer under echo's response,
// or nil when w is anything else (net/http's, or wrapped by tracing).
func preparedWriter(w http.ResponseWriter) *h1.ResponseWriter {
	if er, ok := w.(*echo.Response); ok {
		if hw, ok := er.Writer.(*h1.ResponseWriter); ok {
			return hw
		}
	}
	return nil
}

// notModified evaluates the client's If-None-Match, or else
// If-Modified-Since, against a 200 response's validators (RFC 9110
// §13.1.2, §13.1.3; weak comparison for If-None-Match).
func notModified(r *http.Request, status int, etag, lastMod string) bool {
	if status != http.StatusOK {
		return false
	}
	if inm, ok := r.Header["If-None-Match"]; ok {
		return etag != "" && etagMatch(inm, etag)
	}
	ims, ok := r.Header["If-Modified-Since"]
	if !ok || lastMod == "" || len(ims) == 0 {
		return false
	}
	since, err := http.ParseTime(ims[0])
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(lastMod)
	return err == nil && !lm.After(since)
}

// etagMatch is the weak comparison of etag with an If-None-Match list.
func etagMatch(list []string, etag string) bool {
	weak := func(s string) string {
		if len(s) > 2 && s[0] == 'W' && s[1] == '/' {
			return s[2:]
		}
		return s
	}
	e := weak(etag)
	for _, l := range list {
		for len(l) > 0 {
			var tok string
			tok, l = cutComma(l)
			if tok == "*" || weak(tok) == e {
				return true
			}
		}
	}
	return false
}

func cutComma(s string) (tok, rest string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return trimSpace(s[:i]), s[i+1:]
		}
	}
	return trimSpace(s), ""
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// notModifiedFields are the fields a 304 carries (RFC 9110 §15.4.5).
var notModifiedFields = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary"}

func writeNotModified(w http.ResponseWriter, stored http.Header, age, cacheStatus []string) {
	h := w.Header()
	for _, k := range notModifiedFields {
		if v, ok := stored[k]; ok {
			h[k] = v
		}
	}
	h[hdrAge] = age
	h[hdrCacheStatus] = cacheStatus
	w.WriteHeader(http.StatusNotModified)
}

// Span events for plugin hooks: a route with plugins marks each policy
// decision on the request's span (when it records), naming the plugins.
const (
	evKeyHook      = "edgecache.plugin.key"
	evResponseHook = "edgecache.plugin.response"
	evMissHook     = "edgecache.plugin.miss"
)

func hookEvent(ctx context.Context, rt *route, name string) {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		sp.AddEvent(name, trace.WithAttributes(attribute.StringSlice("edgecache.plugins", rt.plugins)))
	}
}
