package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/edgecache/edgecache/policies"
)

// The pass-through proxy: requests the cache does not answer (unsafe
// methods, Authorization, codings a client cannot take, a Range of a body
// too large to store) stream to the origin and back. A successful unsafe
// request invalidates what it changed (RFC 9111 §4.4).

// pass proxies a request the cache does not answer. An unsafe method
// (any but the safe ones of safeMethod, extension methods included)
// invalidates the entry of its URL, and of same-host Location and
// Content-Location, when the origin answers with a non-error status;
// deleting them in Valkey drops them from every gateway's L1 too.
func (g *Gateway) pass(w http.ResponseWriter, r *http.Request, st *reqState) {
	st.rec.outcome = outBypass
	proxy := st.rt.proxy
	if !safeMethod(r.Method) {
		st.request(r)
		inv := &invalidation{g: g, gen: st.gen, rt: st.rt, req: st.preq, key: string(st.rt.key.AppendKey(nil, &st.preq)), client: r}
		inv.req.Header = nil
		proxy = inv.proxy(proxy)
	}
	sw := statusWriter{ResponseWriter: w, req: r}
	proxy.ServeHTTP(&sw, r)
	st.rec.status = sw.status
}

// safeMethod reports whether m is safe (RFC 9110 §9.2.1): GET, HEAD,
// OPTIONS, TRACE and the safe extension methods registered with IANA
// (PROPFIND, REPORT, SEARCH, QUERY). Any other method, an unknown one
// included, may change what it targets: its success invalidates.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		"PROPFIND", "REPORT", "SEARCH", "QUERY":
		return true
	}
	return false
}

// invalidation is what a successful unsafe request removes from the cache.
type invalidation struct {
	g   *Gateway
	gen *Generation
	rt  *route
	req policies.Request
	key string
	// client is the request, for a POST's response stored for GETs
	// (post.go); used only while the proxy serves it.
	client *http.Request
}

// proxy returns a copy of the route's proxy that runs the invalidation
// when the origin's answer is not an error, before the client sees it.
// The copy is a struct copy (a ReverseProxy holds no state of its own).
func (inv *invalidation) proxy(base *httputil.ReverseProxy) *httputil.ReverseProxy {
	p := *base
	p.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode < 400 {
			if err := inv.run(resp.Request.Context(), resp.Header); err != nil {
				inv.g.log.WarnContext(resp.Request.Context(), "invalidation failed", "err", err)
			}
			if inv.client.Method == http.MethodPost && inv.postStorable(resp, time.Now()) {
				inv.capture(resp) // post.go
			}
		}
		return base.ModifyResponse(resp)
	}
	return &p
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
	inv.g.recent.add(keys...)
	return inv.gen.store.del(ctx, keys...)
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	req    *http.Request
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// An interim response the proxy relays (its fields are in the
		// header map, and the proxy clears them after): not the status.
		writeInterim(w.ResponseWriter, w.req, code, nil) // hints.go
		return
	}
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
