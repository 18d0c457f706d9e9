package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgecache/edgecache/policies"
)

// reqState is the per-request scratch space of the read path, pooled.
// Ownership: taken at the start of handle, returned when handle returns;
// nothing may keep a reference to it (or to its Request) past that.
type reqState struct {
	preq policies.Request
	key  []byte
}

var statePool = sync.Pool{New: func() any { return &reqState{key: make([]byte, 0, 256)} }}

// handle is the read path for every request on the traffic listener.
func (g *Gateway) handle(c echo.Context) error {
	r := c.Request()
	w := c.Response()
	gen := g.gen.Load()
	rt := gen.match(r.Host, r.URL.Path)
	if rt == nil {
		return echo.NewHTTPError(http.StatusNotFound, "edgecache: no route for this host and path")
	}
	if !cacheableRequest(r) {
		g.pass(w, r, gen, rt)
		return nil
	}

	st := statePool.Get().(*reqState)
	defer statePool.Put(st)
	st.fill(r)
	st.key = rt.key.AppendKey(st.key[:0], &st.preq)
	key := g.keys.intern(st.key)

	now := time.Now()
	raw, t, err := gen.store.get(r.Context(), key, now)
	lookup := "uri-miss"
	if err == nil {
		if v := g.views.get(raw); v != nil {
			if now.UnixMilli() < v.freshUntil {
				serveView(w, r, v, t, now)
				return nil
			}
			lookup = "stale"
		}
	}
	return g.miss(w, r, gen, rt, st, key, lookup, err)
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
	store store
	key   string
}

type invalidationKey struct{}

// pass proxies a request the cache does not answer. An unsafe method
// (anything but GET, HEAD, OPTIONS, TRACE) invalidates the entry of its
// URL when the origin answers with a non-error status (RFC 9111 §4.4);
// deleting it in Valkey drops it from every gateway's L1 too.
func (g *Gateway) pass(w http.ResponseWriter, r *http.Request, gen *Generation, rt *route) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
	default:
		var st reqState
		st.fill(r)
		key := string(rt.key.AppendKey(nil, &st.preq))
		r = r.WithContext(context.WithValue(r.Context(), invalidationKey{}, invalidation{gen.store, key}))
	}
	rt.proxy.ServeHTTP(w, r)
}

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

// serveView writes a fresh entry: headers assigned from pre-built values,
// one write of the body, no flush.
func serveView(w http.ResponseWriter, r *http.Request, v *view, t tier, now time.Time) {
	h := w.Header()
	for k, vals := range v.header {
		h[k] = vals
	}
	age := time.Duration(now.UnixMilli()-v.storedAt+v.initialAge) * time.Millisecond
	h[hdrAge] = ageValue(age)
	if t == tierL1 {
		h[hdrCacheStatus] = csHitL1
	} else {
		h[hdrCacheStatus] = csHitL2
	}
	w.WriteHeader(v.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(v.body)
	}
}
