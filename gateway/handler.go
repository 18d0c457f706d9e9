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
	"github.com/edgecache/edgecache/internal/h2"
	"github.com/edgecache/edgecache/policies"
)

// reqState is the per-request scratch space of the read path, pooled.
// Ownership: taken at the start of handle, returned when handle returns;
// nothing may keep a reference to it (or to its Request) past that.
type reqState struct {
	gen  *Generation // read once per request
	rt   *route
	now  time.Time // freshness is judged at now (Options.Now)
	wall time.Time // the shards' and the L1's time (time.Now)
	preq policies.Request
	key  []byte
	rec  record
	dir  policies.Directives
	auth bool // the request has Authorization: served only entries with withAuth, never coalesced

	// What the lookup found (lookup).
	marker *view  // the Vary marker at the primary key, if any
	found  *view  // the entry, nil if none
	stored string // the key it is (or would be) stored under
	tier   tier   // where it came from
	err    error  // the lookup's error: errMiss, or the shard's

	lookupCtx detached
}

// detached is a request's context without its cancellation (values only),
// for requests not on internal/h2 (lookupContext). It lives in the pooled
// reqState: nothing may keep it past the call it is passed to.
type detached struct{ parent context.Context }

func (d *detached) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done is nil: a shard read is bounded by the shard's command timeout,
// not by the client. It must not read parent: contexts that valkey-go
// derives from this one (its command timeouts) ask their parent for Done
// again when their timers fire, after this pooled value was reset or
// reused. That is why an h2 request's lookup does not use it.
func (d *detached) Done() <-chan struct{} { return nil }

func (d *detached) Err() error        { return nil }
func (d *detached) Value(key any) any { return d.parent.Value(key) }

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
	_, st.auth = r.Header["Authorization"]
	primary := g.cacheKey(r, st) // 2. key
	st.now, st.wall = g.clock()
	g.lookup(r, st, primary)    // 3, 4. owner and lookup
	if g.serveFound(w, r, st) { // 5. serve
		return nil
	}
	if st.dir.OnlyIfCached {
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
	st.dir = policies.ParseDirectives(r.Header, st.rt.ignoreClientNoCache)
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
	ctx, gen := st.lookupContext(r), st.gen
	defer func() { st.lookupCtx.parent = nil }()
	st.stored = primary
	raw, t, err := g.read(ctx, gen, primary, st.wall)
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
	raw, st.tier, st.err = g.read(ctx, gen, st.stored, st.wall)
	if st.err == nil {
		st.found = g.views.get(st.stored, raw, st.tier.local(), l1Off)
	}
}

// lookupContext is r's context without its cancellation, for the lookup.
// On internal/h2 it is the stream's own (h2.WithoutCancel): valkey-go asks
// it for Done before a round trip (an L2 read, a wait on a frozen shard),
// never on an L1 hit, and that ask moves the handler off the connection's
// read loop, so the wait holds this stream only, not the connection's
// others; it stays valid after the request, which the pooled detached
// does not (see its Done). Elsewhere it is the pooled detached: the
// HTTP/1 hit path allocates nothing for it.
func (st *reqState) lookupContext(r *http.Request) context.Context {
	if r.ProtoMajor == 2 {
		if ctx := h2.WithoutCancel(r.Context()); ctx != nil {
			return ctx
		}
	}
	st.lookupCtx.parent = r.Context()
	return &st.lookupCtx
}

// serveFound answers from the entry the lookup found when it may
// (usable); false sends the request to the fill. An entry in a coding the
// client did not accept is never served: the request is passed.
func (g *Gateway) serveFound(w http.ResponseWriter, r *http.Request, st *reqState) bool {
	v := st.found
	if v == nil {
		return false
	}
	if st.auth && !v.withAuth {
		st.found = nil // not for this request (RFC 9111 §3.5): the origin answers it
		return false
	}
	if v.contentCoding != "" && !policies.AcceptsContentCoding(r.Header["Accept-Encoding"], v.contentCoding) {
		// Stored without Vary: Accept-Encoding (or under a variant it
		// should not be).
		g.pass(w, r, st)
		return true
	}
	switch usable(v, st, st.now.UnixMilli()) {
	case policies.UseFresh:
		st.rec.outcome, st.rec.tier = outHit, st.tier
		serveView(w, r, st, v, hitStatus(st.tier))
	case policies.UseStale:
		st.rec.outcome, st.rec.tier = outStale, st.tier
		serveView(w, r, st, v, csStale)
	case policies.UseStaleRefresh:
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

// usable is policies.Serve for v at now (unix ms), with the request's
// directives; a variant stored before its Vary marker's soft purge is
// stale from then on.
func usable(v *view, st *reqState, now int64) policies.Use {
	if v.varyID != "" || v.status == 0 {
		return policies.UseNone
	}
	s := v.stored()
	if m := st.marker; m != nil && m.freshUntil < markerFresh.UnixMilli() {
		s.SoftPurged(m.freshUntil)
	}
	return policies.Serve(&s, &st.dir, now)
}

// cacheableRequest reports whether the cache may answer r. Range
// requests are answered from the whole representation (ranges.go); a
// request with Authorization by an entry that says so (view.withAuth).
func cacheableRequest(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead
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
// one write of the body, no flush. A conditional request gets 304 or 412
// when the entry decides it (conditional).
func serveView(w http.ResponseWriter, r *http.Request, st *reqState, v *view, cacheStatus []string) {
	earlyHints(w, r, v)                          // hints.go
	v = v.represent(r.Header["Accept-Encoding"]) // a compressed entry's coding (encode.go)
	h := w.Header()
	rec := &st.rec
	age := ageValue(time.Duration(v.age(st.now.UnixMilli())) * time.Millisecond)
	if code := conditional(r, v.status, v.header, time.UnixMilli(v.storedAt)); code != 0 {
		writeConditional(w, code, v.header, age, cacheStatus)
		rec.status = code
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
	v.copyHeader(h)
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

// conditional evaluates the request's preconditions against a stored (or
// fetched) 200 with header h, stored at stored (RFC 9110 §13.2.2,
// policies.Evaluate): 304, 412, or 0 to serve it. A request without
// conditional fields costs four map lookups.
func conditional(r *http.Request, status int, h http.Header, stored time.Time) int {
	if status != http.StatusOK {
		return 0
	}
	_, inm := r.Header["If-None-Match"]
	_, ims := r.Header["If-Modified-Since"]
	_, im := r.Header["If-Match"]
	_, ius := r.Header["If-Unmodified-Since"]
	if !inm && !ims && !im && !ius {
		return 0
	}
	v := policies.ValidatorsOf(h, stored)
	switch policies.Evaluate(r.Method, r.Header, &v) {
	case policies.NotModified:
		return http.StatusNotModified
	case policies.PreconditionFailed:
		return http.StatusPreconditionFailed
	}
	return 0
}

var contentLengthZero = []string{"0"}

// notModifiedFields are the fields a 304 carries (RFC 9110 §15.4.5).
var notModifiedFields = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary"}

// writeConditional answers a request whose preconditions decided (code
// from conditional): a 304 with the fields it carries, or an empty 412.
func writeConditional(w http.ResponseWriter, code int, stored http.Header, age, cacheStatus []string) {
	h := w.Header()
	if code == http.StatusNotModified {
		for _, k := range notModifiedFields {
			if v, ok := stored[k]; ok {
				h[k] = v
			}
		}
	} else {
		h[hdrContentLength] = contentLengthZero
	}
	h[hdrAge] = age
	h[hdrCacheStatus] = cacheStatus
	w.WriteHeader(code)
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
