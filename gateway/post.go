package gateway

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/edgecache/edgecache/policies"
)

// Responses to POST that name their own URL
//
// RFC 9110 §9.3.3: a response to POST is cacheable when it has explicit
// freshness and a Content-Location equal to the request's target — the
// origin says "this is the representation of the resource you posted to",
// and a later GET of that URL may be answered with it (RFC 9111 §4.4
// invalidates the URL's entry first: the POST succeeded). The response
// streams to its client as any passed response does; a copy is kept,
// bounded as a fill's buffer is (route max_body_bytes, the fill budget),
// and stored under the GET key of the URL through the fill's store step,
// so that the TTL policy, the privacy rules and Vary apply unchanged. A
// body that crosses a bound, or that the client does not read to the end,
// is not stored.

// postStorable reports whether resp, the origin's answer to the POST of
// inv, may be stored for GETs of its URL: 200 or 203, explicit freshness
// (of the route's target list: policies.Directives) and a same-URL
// Content-Location.
func (inv *invalidation) postStorable(resp *http.Response, now time.Time) bool {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNonAuthoritativeInfo {
		return false
	}
	if resp.ContentLength > inv.rt.maxBody {
		return false
	}
	cc, targeted := policies.ResponseDirectives(resp.Header, inv.rt.targetedField)
	explicit := cc.HasMaxAge && cc.MaxAge > 0 || cc.HasSMaxAge && cc.SMaxAge > 0
	if !targeted && !explicit {
		explicit = policies.ExplicitFreshness(resp.Header, now)
	}
	if !explicit || cc.NoStore || cc.NoCache {
		return false
	}
	loc := resp.Header.Get("Content-Location")
	if loc == "" {
		return false
	}
	target := &url.URL{Scheme: inv.req.Scheme, Host: inv.req.Host, Path: inv.req.Path, RawQuery: inv.req.RawQuery}
	u, err := target.Parse(loc)
	return err == nil && u.Scheme == target.Scheme && policies.CanonicalHost(u.Host) == target.Host &&
		u.EscapedPath() == target.Path && u.RawQuery == target.RawQuery
}

// capture makes resp's body a tee into a buffer that is stored, as the
// GET of the POST's URL, once the client has read it whole.
func (inv *invalidation) capture(resp *http.Response) {
	rt := inv.rt
	preq := inv.req
	preq.Method, preq.Header = http.MethodGet, inv.client.Header
	fl := &fill{
		g: inv.g, gen: inv.gen, rt: rt,
		req: &fetchReq{
			ctx: context.WithoutCancel(inv.client.Context()), method: http.MethodGet, url: inv.client.URL,
			header: inv.client.Header, preq: preq, peer: inv.client.RemoteAddr,
		},
	}
	fl.primary = string(rt.key.AppendKey(nil, &preq)) // the GET's key
	fl.key = fl.primary
	resp.Body = &postTee{ReadCloser: resp.Body, fl: fl, f: fl.fetched(resp), origin: resp.Header,
		budget: &inv.g.fillBuf, limit: inv.gen.Config.Limits.FillBufferBytes}
}

// postTee keeps what the client reads of a POST's response, within the
// fill bounds, and stores it at the end of the body.
type postTee struct {
	io.ReadCloser
	fl       *fill
	f        *fetched
	origin   http.Header
	buf      []byte
	budget   *fillBudget
	limit    int64
	reserved int64
	done     bool // stored, or given up
}

func (p *postTee) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	if p.done {
		return n, err
	}
	if int64(len(p.buf)+n) > p.fl.rt.maxBody || !p.grow(n) {
		p.giveUp()
		return n, err
	}
	p.buf = append(p.buf, b[:n]...)
	if err == io.EOF {
		p.f.body = p.buf
		p.fl.store(p.fl.req.ctx, p.f, p.origin) // fill.go: the TTL policy, privacy, Vary
		p.giveUp()
	}
	return n, err
}

// grow reserves room for n more bytes from the fill budget, in fillChunk
// steps.
func (p *postTee) grow(n int) bool {
	need := int64(len(p.buf)+n) - p.reserved
	if need <= 0 {
		return true
	}
	step := max(need, fillChunk)
	if !p.budget.reserve(step, p.limit) {
		return false
	}
	p.reserved += step
	return true
}

// giveUp drops the buffer and returns its reservation.
func (p *postTee) giveUp() {
	p.done, p.buf = true, nil
	p.budget.release(p.reserved)
	p.reserved = 0
}

func (p *postTee) Close() error {
	if !p.done {
		p.giveUp() // the client did not read it all: nothing stored
	}
	return p.ReadCloser.Close()
}
