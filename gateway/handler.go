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
	preq policies.Request
	key  []byte
	rec  record
	dir  directives

	// The Vary marker found at the primary key, if any.
	marker *view

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

// handle is the read path for every request on the traffic listener.
func (g *Gateway) handle(c echo.Context) error {
	r := c.Request()
	w := c.Response()
	st := statePool.Get().(*reqState)
	defer statePool.Put(st)
	st.rec, st.marker = record{}, nil
	defer g.observe(r, &st.rec)

	gen := g.gen.Load()
	if !screen(w, r, &gen.Config.Limits, &st.rec) { // limits.go
		return nil
	}
	rt := gen.match(r.Host, r.URL.Path)
	if rt == nil {
		st.rec.outcome, st.rec.status = outNoRoute, http.StatusNotFound
		return echo.NewHTTPError(http.StatusNotFound, "edgecache: no route for this host and path")
	}
	st.rec.route = rt
	if !allowedOn(w, r, rt, &st.rec) { // limits.go
		return nil
	}
	if rt.fwd.loops(r) { // forward.go
		st.rec.outcome, st.rec.status = outError, http.StatusLoopDetected
		h := w.Header()
		h["Content-Type"] = textPlain
		w.WriteHeader(http.StatusLoopDetected)
		_, _ = w.Write(loopBody)
		return nil
	}
	if !cacheableRequest(r) {
		g.pass(w, r, gen, rt, st)
		return nil
	}
	st.fill(r)
	st.dir = parseDirectives(r.Header, rt.ignoreClientNoCache)
	st.key = rt.key.AppendKey(st.key[:0], &st.preq)
	if rt.plugins != nil {
		hookEvent(r.Context(), rt, evKeyHook)
	}
	primary := g.keys.intern(st.key)
	st.rec.key = primary

	now := time.Now()
	// A lookup is bounded by the shard's command timeout, not by the
	// client: waiting on the request's Done would start the fast path's
	// hang-up watch on every L2 read (internal/h1).
	st.lookupCtx.parent = r.Context()
	v, key, t, err := g.lookup(&st.lookupCtx, gen, rt, st, primary, now)
	st.lookupCtx.parent = nil
	if v != nil && v.contentCoding != "" && !policies.AcceptsContentCoding(r.Header["Accept-Encoding"], v.contentCoding) {
		// Stored without Vary: Accept-Encoding (or under a variant it
		// should not be): never serve a coding the client did not accept.
		g.pass(w, r, gen, rt, st)
		return nil
	}
	if v != nil {
		switch g.usable(v, st, now.UnixMilli()) {
		case useFresh:
			st.rec.outcome, st.rec.tier = outHit, t
			serveView(w, r, v, hitStatus(t), now, &st.rec)
			return nil
		case useStale:
			st.rec.outcome, st.rec.tier = outStale, t
			serveView(w, r, v, csStale, now, &st.rec)
			return nil
		case useStaleRefresh:
			st.rec.outcome, st.rec.tier = outStale, t
			g.refreshInBackground(gen, rt, r, st, primary, key, v)
			serveView(w, r, v, csStaleRevalidate, now, &st.rec)
			return nil
		}
	}
	if st.dir.onlyIfCached {
		st.rec.outcome, st.rec.status = outError, http.StatusGatewayTimeout
		h := w.Header()
		h[hdrCacheStatus] = csOnlyIfCached
		h[hdrAge] = ageZero
		w.WriteHeader(http.StatusGatewayTimeout)
		return nil
	}
	st.rec.tier = t // where a stale entry served by stale-if-error came from
	return g.miss(w, r, gen, rt, st, primary, key, v, err)
}

var loopBody = []byte("edgecache: loop detected (CDN-Loop)\n")

// lookup reads the entry for the request: the primary key, and through a
// Vary marker the variant. It returns the entry (nil if none), the key it
// is (or would be) stored under, and where it came from.
func (g *Gateway) lookup(ctx context.Context, gen *Generation, rt *route, st *reqState, primary string, now time.Time) (*view, string, tier, error) {
	raw, t, err := g.read(ctx, gen, primary, now)
	if err != nil {
		return nil, primary, t, err
	}
	l1Off := gen.Config.Valkey.DisableL1
	v := g.views.get(primary, raw, t.local(), l1Off)
	if v == nil || v.varyID == "" {
		return v, primary, t, nil
	}
	st.marker = v
	coding := policies.PreferredCoding(st.preq.Header["Accept-Encoding"])
	st.key = rt.appendVariant(st.key, v.varyID, v.varyNames, st.preq.Header, coding)
	key := g.keys.intern(st.key)
	raw, t, err = g.read(ctx, gen, key, now)
	if err != nil {
		return nil, key, t, err
	}
	return g.views.get(key, raw, t.local(), l1Off), key, t, nil
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
// does not record); Range requests go to the origin whole.
func cacheableRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if _, ok := r.Header["Authorization"]; ok {
		return false
	}
	if _, ok := r.Header["Range"]; ok {
		return false
	}
	return true
}

// invalidation is what a successful unsafe request removes from the cache.
type invalidation struct {
	gen    *Generation
	rt     *route
	req    policies.Request
	key    string
	recent *recentKeys
}

type invalidationKey struct{}

// pass proxies a request the cache does not answer. An unsafe method
// (anything but GET, HEAD, OPTIONS, TRACE) invalidates the entry of its
// URL, and of same-host Location and Content-Location, when the origin
// answers with a non-error status (RFC 9111 §4.4); deleting them in
// Valkey drops them from every gateway's L1 too.
func (g *Gateway) pass(w http.ResponseWriter, r *http.Request, gen *Generation, rt *route, st *reqState) {
	st.rec.outcome = outBypass
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
	default:
		st.fill(r)
		key := string(rt.key.AppendKey(nil, &st.preq))
		preq := st.preq
		preq.Header = nil
		r = r.WithContext(context.WithValue(r.Context(), invalidationKey{}, &invalidation{gen: gen, rt: rt, req: preq, key: key, recent: &g.recent}))
	}
	sw := statusWriter{ResponseWriter: w}
	rt.proxy.ServeHTTP(&sw, r)
	st.rec.status = sw.status
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (st *reqState) fill(r *http.Request) {
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

// serveView writes a stored entry: headers assigned from pre-built values,
// one write of the body, no flush. A conditional request that the entry
// satisfies gets 304.
func serveView(w http.ResponseWriter, r *http.Request, v *view, cacheStatus []string, now time.Time, rec *record) {
	h := w.Header()
	age := ageValue(time.Duration(v.age(now.UnixMilli())) * time.Millisecond)
	if notModified(r, v.status, v.etag, v.lastMod) {
		writeNotModified(w, v.header, age, cacheStatus)
		rec.status = http.StatusNotModified
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
