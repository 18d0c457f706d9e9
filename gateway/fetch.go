package gateway

import (
	"context"
	"net/http"
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
	// hints are the Link fields of the origin's 103 Early Hints (hints.go).
	hints []string
	// decided is the header the storage decision read (fill.decide): the
	// entry records what its targeted field said (targeted.go).
	decided http.Header
	// tee is set when the body was still coming when the fill answered
	// (tee.go): each client follows it.
	tee *tee
	// coded is set when the body is a compressed entry's (encode.go): each
	// client gets the coding it accepts.
	coded *codings
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
	// interim relays the origin's 1xx responses to the client (a fill's
	// leader only; hints.go).
	interim func(code int, h http.Header)
}

func fromRequest(r *http.Request, preq policies.Request) *fetchReq {
	return &fetchReq{ctx: r.Context(), method: r.Method, url: r.URL, header: r.Header, preq: preq, peer: r.RemoteAddr}
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
	if v := g.views.get(key, raw, t.local(), false); v != nil && v.varyID == "" && fresh(v, g.timeNow().UnixMilli()) {
		return &fetched{hit: v, hitTier: t}
	}
	return nil
}

// fetch makes the one origin request of a miss or a refresh, and stores
// what it may. Its body is bounded per fill and over all fills
// (fillbuf.go); a body past either bound streams to the leader's client
// uncached.
func (fl *fill) fetch() (*fetched, error) {
	ctx, cancel := fl.fetchContext()
	out, err := fl.originRequest(fl.interimTrace(ctx)) // hints.go
	if err != nil {
		cancel()
		return nil, err
	}
	start := time.Now()
	resp, err := fl.rt.transport.RoundTrip(out)
	fl.g.originDone(fl.rt, time.Since(start))
	if err != nil {
		cancel()
		if f := fl.staleIfError(); f != nil {
			return f, nil
		}
		return nil, err
	}
	if resp.StatusCode >= 500 {
		if f := fl.staleIfError(); f != nil {
			resp.Body.Close()
			cancel()
			return f, nil
		}
	}
	f := fl.fetched(resp)
	if resp.StatusCode == http.StatusNotModified && fl.stale != nil {
		resp.Body.Close()
		defer cancel()
		fl.revalidated(f)
		fl.store(ctx, f, resp.Header)
		return f, nil
	}
	if resp.ContentLength > fl.rt.maxBody {
		f.large, f.cancel, f.detail = resp, cancel, detailTooLarge
		return f, nil
	}
	return fl.readAndStore(ctx, cancel, f, resp)
}

// originRequest is the fill's GET to the origin: the route's origin (or
// the Miss policy's URL) with the request's path and query, the
// forwarded request fields (forward.go), the policy's fields, and the
// stale entry's validators.
func (fl *fill) originRequest(ctx context.Context) (*http.Request, error) {
	rt, fr, act := fl.rt, fl.req, fl.act
	out, err := http.NewRequestWithContext(ctx, http.MethodGet, originURL(rt, fr.url, act), nil)
	if err != nil {
		return nil, err
	}
	if h := rt.outHost(fr.preq.Host); h != "" {
		out.Host = h
	}
	rt.fwd.copyRequestHeaders(out.Header, fr.header, fr.peer, fr.preq.Scheme, fr.preq.Host) // forward.go
	for k, v := range act.Header {
		out.Header[http.CanonicalHeaderKey(k)] = v
	}
	if stale := fl.stale; stale != nil && !act.Bypass {
		if stale.etag != "" {
			out.Header["If-None-Match"] = []string{stale.etag}
		}
		if stale.lastMod != "" {
			out.Header["If-Modified-Since"] = []string{stale.lastMod}
		}
	}
	return out, nil
}

// fetched is the origin's response head as the fill keeps it: filtered
// fields (no hop-by-hop, Set-Cookie, Age or internal ones), the shield's
// Cache-Status apart.
func (fl *fill) fetched(resp *http.Response) *fetched {
	hdr := make(http.Header, len(resp.Header))
	entry.Filter(hdr, resp.Header)
	stripInternal(hdr)
	if name := fl.rt.targetedField; name != "" && !policies.TargetedForwarded(name) {
		delete(hdr, name) // edgecache's own: not for clients (targeted.go)
	}
	upstream := hdr[hdrCacheStatus]
	delete(hdr, hdrCacheStatus)
	return &fetched{
		status: resp.StatusCode, header: hdr, initialAge: policies.ResponseAge(resp.Header),
		setCookie: resp.Header["Set-Cookie"], etag: hdr.Get("Etag"), lastMod: hdr.Get("Last-Modified"),
		replaces: fl.stale != nil, upstream: upstream, hints: fl.hints,
	}
}

// revalidated turns a 304 into the stored body with the 304's header
// fields (RFC 9111 §4.3.4), to be stored again with the new freshness.
func (fl *fill) revalidated(f *fetched) {
	stale := fl.stale
	merged := make(http.Header, len(stale.header)+len(f.header))
	for k, v := range stale.header {
		merged[k] = v
	}
	for k, v := range f.header {
		merged[k] = v
	}
	delete(merged, hdrContentLength)
	f.status, f.header, f.body, f.fwdStatus = stale.status, merged, stale.body, http.StatusNotModified
	f.etag, f.lastMod = merged.Get("Etag"), merged.Get("Last-Modified")
	f.setCookie = nil
	fl.recode(f) // a compressed entry (encode.go)
}

// readAndStore reads the first piece of the body within the fill's
// bounds (fillbuf.go): a body that ends there is stored, then answered; a
// longer one is answered as it streams (tee.go); past a bound the
// response is the leader's to stream.
func (fl *fill) readAndStore(ctx context.Context, cancel context.CancelFunc, f *fetched, resp *http.Response) (*fetched, error) {
	t := newTee(resp.Body, resp.ContentLength, fl.rt.maxBody, &fl.g.fillBuf, fl.gen.Config.Limits.FillBufferBytes)
	t.readHead()
	f.hold, f.release = t.hold, t.hold.release
	switch {
	case t.err != nil:
		resp.Body.Close()
		cancel()
		f.release()
		if f := fl.staleIfError(); f != nil {
			return f, nil
		}
		return nil, t.err
	case t.pass != "":
		f.parts, f.large, f.cancel, f.detail = t.parts(), resp, cancel, t.pass
		return f, nil
	case !t.ended:
		f.release = nil // the tee's readers release it
		return fl.stream(ctx, cancel, f, resp, t), nil
	}
	f.body = t.whole()
	resp.Body.Close()
	defer cancel()
	fl.store(ctx, f, resp.Header)
	return f, nil
}

// staleIfError returns the stale entry to serve when the origin failed, if
// its stale-if-error window allows.
func (fl *fill) staleIfError() *fetched {
	stale := fl.stale
	if stale == nil || stale.varyID != "" {
		return nil
	}
	if s := stale.stored(); policies.ServeOnError(&s, fl.g.timeNow().UnixMilli()) {
		return &fetched{stale: stale}
	}
	return nil
}

// fresh reports whether v may answer a request without directives at now
// (unix ms).
func fresh(v *view, now int64) bool {
	s := v.stored()
	return policies.Serve(&s, &policies.Directives{}, now) == policies.UseFresh
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
