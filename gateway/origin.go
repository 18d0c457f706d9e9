package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgecache/edgecache/internal/entry"
	"github.com/edgecache/edgecache/policies"
)

// fetched is one origin response, shared read-only by the leader of a
// coalesced miss and every request that waited on it.
type fetched struct {
	status     int
	header     http.Header // filtered: no hop-by-hop, Set-Cookie or Age
	body       []byte
	stored     bool
	detail     string // why it was not stored, for Cache-Status
	initialAge time.Duration
	// setCookie is the origin's Set-Cookie: never stored, and given only
	// to the client whose request made the fetch, never to waiters.
	setCookie []string

	// large is set when the body exceeded the route's maximum: only the
	// leader streams it (body holds what was already read); waiters fetch
	// on their own.
	large  *http.Response
	cancel context.CancelFunc

	// hit is set when the entry turned up in the store after all.
	hit     *view
	hitTier tier
}

// miss answers a request the cache could not: the Miss policy first, then
// one origin fetch per key (singleflight) that stores what the TTL policy
// allows.
func (g *Gateway) miss(w http.ResponseWriter, r *http.Request, gen *Generation, rt *route, st *reqState, key, lookup string, lookupErr error) error {
	act := rt.miss.OnMiss(&st.preq)
	if act.Status != 0 {
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
	if act.Bypass {
		lookup = "bypass"
	}
	shardErr := lookupErr != nil && !errors.Is(lookupErr, errMiss)

	leader := false
	res, err, _ := g.sf.Do(key, func() (any, error) {
		leader = true
		if !shardErr && !act.Bypass {
			// A request that missed just after the previous leader stored
			// the entry must not fetch again.
			if raw, t, err := gen.store.get(r.Context(), key, time.Now()); err == nil {
				if v := g.views.get(raw); v != nil && time.Now().UnixMilli() < v.freshUntil {
					return &fetched{hit: v, hitTier: t}, nil
				}
			}
		}
		return g.fetch(gen, rt, r, &st.preq, key, act, shardErr)
	})
	if err != nil {
		g.log.Warn("origin fetch failed", "route", rt.name, "err", err)
		h := w.Header()
		h[hdrCacheStatus] = missStatus(lookup, false, "origin-error")
		h[hdrAge] = ageZero
		return echo502
	}
	f := res.(*fetched)
	if f.hit != nil {
		serveView(w, r, f.hit, f.hitTier, time.Now())
		return nil
	}
	if f.large != nil {
		if leader {
			streamLarge(w, r, f, lookup)
		} else {
			rt.proxy.ServeHTTP(w, r)
		}
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
	h[hdrAge] = ageValue(f.initialAge)
	detail := f.detail
	if shardErr && detail == "" {
		detail = "shard-unavailable"
	}
	h[hdrCacheStatus] = missStatus(lookup, f.stored, detail)
	w.WriteHeader(f.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.body)
	}
	return nil
}

// fetch makes the one origin request of a miss. It does not use the
// client's context for cancellation: waiters depend on it, and a client
// that hangs up must not fail them; the route's origin timeout bounds it.
func (g *Gateway) fetch(gen *Generation, rt *route, r *http.Request, preq *policies.Request, key string, act policies.MissAction, shardErr bool) (*fetched, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), rt.originTimeout)
	out, err := http.NewRequestWithContext(ctx, http.MethodGet, originURL(rt, r, act), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	copyRequestHeaders(out.Header, r.Header)
	for k, v := range act.Header {
		out.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := g.transport.RoundTrip(out)
	if err != nil {
		cancel()
		return nil, err
	}
	hdr := make(http.Header, len(resp.Header))
	entry.Filter(hdr, resp.Header)
	f := &fetched{status: resp.StatusCode, header: hdr, initialAge: policies.ResponseAge(resp.Header), setCookie: resp.Header["Set-Cookie"]}

	if resp.ContentLength > rt.maxBody {
		f.large, f.cancel, f.detail = resp, cancel, "too-large"
		return f, nil
	}
	f.body, err = io.ReadAll(io.LimitReader(resp.Body, rt.maxBody+1))
	if err != nil {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	if int64(len(f.body)) > rt.maxBody {
		f.large, f.cancel, f.detail = resp, cancel, "too-large"
		return f, nil
	}
	resp.Body.Close()
	defer cancel()

	now := time.Now()
	dec := rt.ttl.Decide(preq, &policies.Response{Status: resp.StatusCode, Header: resp.Header}, now)
	switch {
	case act.Bypass:
		f.detail = "policy"
	case !dec.Store:
		f.detail = dec.Reason
	case shardErr:
		// The shard failed the lookup; don't wait on it again.
	default:
		e := entry.Entry{
			Status:               f.status,
			StoredAt:             now,
			FreshUntil:           now.Add(dec.TTL),
			InitialAge:           f.initialAge,
			StaleWhileRevalidate: dec.StaleWhileRevalidate,
			StaleIfError:         dec.StaleIfError,
			ETag:                 hdr.Get("Etag"),
			LastModified:         hdr.Get("Last-Modified"),
			Header:               hdr,
			Tags:                 dec.Tags,
			Body:                 f.body,
		}
		val := entry.Encode(make([]byte, 0, len(f.body)+512), &e)
		ttl := dec.TTL + dec.StaleWhileRevalidate + dec.StaleIfError
		if err := gen.store.set(ctx, key, val, ttl); err != nil {
			f.detail = "store-failed"
			g.log.Debug("store failed", "route", rt.name, "err", err)
		} else {
			f.stored = true
		}
	}
	return f, nil
}

// streamLarge passes a response too large to store straight through.
func streamLarge(w http.ResponseWriter, r *http.Request, f *fetched, lookup string) {
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
	h[hdrCacheStatus] = missStatus(lookup, false, f.detail)
	w.WriteHeader(f.status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(f.body); err != nil {
		return
	}
	_, _ = io.Copy(w, f.large.Body)
}

// originURL is the route's origin joined with the request's path and query,
// unless the Miss policy named another URL.
func originURL(rt *route, r *http.Request, act policies.MissAction) string {
	if act.OriginURL != "" {
		return act.OriginURL
	}
	u := *rt.origin
	u.Path = strings.TrimSuffix(u.Path, "/") + r.URL.Path
	u.RawPath = strings.TrimSuffix(rt.origin.EscapedPath(), "/") + r.URL.EscapedPath()
	u.RawQuery = r.URL.RawQuery
	return u.String()
}

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1, and the
// conditional and range headers: a cache fill fetches the whole
// representation, whatever the client that caused it asked.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"If-None-Match": true, "If-Modified-Since": true, "If-Match": true, "If-Unmodified-Since": true,
	"If-Range": true, "Range": true,
}

func copyRequestHeaders(dst, src http.Header) {
	for k, v := range src {
		if !hopHeaders[k] {
			dst[k] = v
		}
	}
	for _, c := range src["Connection"] {
		for _, name := range strings.Split(c, ",") {
			delete(dst, http.CanonicalHeaderKey(strings.TrimSpace(name)))
		}
	}
	dst["Via"] = []string{"1.1 edgecache"}
}

// newProxy returns the pass-through proxy of a route: uncached methods and
// requests the cache must not answer. It streams both ways.
func newProxy(target *url.URL, transport http.RoundTripper, log *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header["Via"] = []string{"1.1 edgecache"}
		},
		Transport: transport,
		ModifyResponse: func(resp *http.Response) error {
			if inv, ok := resp.Request.Context().Value(invalidationKey{}).(invalidation); ok && resp.StatusCode < 400 {
				if err := inv.store.del(resp.Request.Context(), inv.key); err != nil {
					log.Warn("invalidation failed", "err", err)
				}
			}
			resp.Header[hdrCacheStatus] = csBypass
			if _, ok := resp.Header[hdrAge]; !ok {
				resp.Header[hdrAge] = ageZero
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("origin proxy failed", "err", err)
			w.Header()[hdrCacheStatus] = missStatus("bypass", false, "origin-error")
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}
