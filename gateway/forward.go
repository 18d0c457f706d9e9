package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/policies"
)

// Forwarded headers
//
// What reaches the origin from a client's header section is decided here,
// once, for fills, passes and Vary alike: a variant is keyed on exactly
// the request fields a fill forwards (forwards), so a field the origin
// never saw cannot select what it answered.
//
//   - hop-by-hop fields, the fields named in Connection, and the
//     conditional and range fields a fill replaces are not forwarded;
//   - field names with an underscore are dropped (nginx's
//     underscores_in_headers off): CGI and Rack fold "_" and "-" alike
//     into HTTP_X_FORWARDED_HOST, so X_Forwarded_Host would pass as the
//     X-Forwarded-Host the gateway removed;
//   - on fills, the fields origins trust to rewrite the URL, host, scheme
//     or method (fillDropped) are dropped, since the response is stored for
//     every client with the same key;
//   - X-Forwarded-For, -Proto, -Host and Forwarded (RFC 7239) are the
//     gateway's, from the connection; a client's chain is kept (ours
//     appended) only when the peer is a trusted proxy;
//   - Expect goes with a body only (a fill has none);
//   - CDN-Loop (RFC 8586) gets the gateway's name appended, and a request
//     that names it more than max_loops times is refused with 508.

// forwarding is a generation's forwarding section, resolved.
type forwarding struct {
	trusted     []netip.Prefix
	underscores bool // forward names with '_'
	name        string
	nameVal     string   // name as a CDN-Loop member
	loop        []string // the CDN-Loop of a request that had none
	maxLoops    int
}

func newForwarding(c *config.Forwarding) *forwarding {
	f := &forwarding{underscores: c.AllowUnderscoresInHeaders, name: c.CDNLoop, nameVal: c.CDNLoop, loop: []string{c.CDNLoop}, maxLoops: c.MaxLoops}
	for _, p := range c.TrustedProxies {
		if pfx, err := config.ParsePrefix(p); err == nil { // validated
			f.trusted = append(f.trusted, pfx)
		}
	}
	return f
}

// forwards reports whether a fill forwards request field name of h (a
// canonical key). It does not allocate: Vary lookups call it on hits.
func (f *forwarding) forwards(name string, h http.Header) bool {
	if hopHeaders[name] || fillDropped[name] || name == "Expect" {
		return false
	}
	if !f.underscores && strings.IndexByte(name, '_') >= 0 {
		return false
	}
	return !nominated(name, h["Connection"])
}

// nominated reports whether a Connection field lists name.
func nominated(name string, conn []string) bool {
	for _, c := range conn {
		for c != "" {
			var tok string
			tok, c, _ = strings.Cut(c, ",")
			if strings.EqualFold(trimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

// loops reports whether r already named this gateway in CDN-Loop more
// often than allowed.
func (f *forwarding) loops(r *http.Request) bool {
	v, ok := r.Header["Cdn-Loop"]
	if !ok {
		return false
	}
	return policies.LoopCount(v, f.name) > max(f.maxLoops, 0) // negative: > 0, any mention
}

// copyRequestHeaders copies to dst what a fill forwards of the client's
// header src, then adds the gateway's own fields: Via, CDN-Loop and the
// forwarded chain of peer (the client's address, host:port).
func (f *forwarding) copyRequestHeaders(dst, src http.Header, peer, scheme, host string) {
	for k, v := range src {
		if f.forwards(k, src) {
			dst[k] = v
		}
	}
	if ae := policies.PreferredCoding(src["Accept-Encoding"]); ae != "" {
		dst["Accept-Encoding"] = []string{ae}
	} else {
		dst["Accept-Encoding"] = identity
	}
	f.setForwarded(dst, src, peer, scheme, host)
	dst["Via"] = via
}

var (
	via      = []string{"1.1 edgecache"}
	identity = []string{"identity"}
)

// setForwarded sets X-Forwarded-For, -Proto, -Host, Forwarded and
// CDN-Loop on dst (an origin request) for a client request with header
// in from peer.
func (f *forwarding) setForwarded(dst, in http.Header, peer, scheme, host string) {
	ip := peerIP(peer)
	trusted := f.trusts(ip)
	client := "unknown"
	if ip.IsValid() {
		client = ip.String()
	}
	xff, fwd := client, forwardedElem(ip, client, host, scheme)
	if trusted {
		if prior := strings.Join(in["X-Forwarded-For"], ", "); prior != "" {
			xff = prior + ", " + xff
		}
		if prior := strings.Join(in["Forwarded"], ", "); prior != "" {
			fwd = prior + ", " + fwd
		}
	}
	proto, xhost := scheme, host
	if trusted {
		if v := in["X-Forwarded-Proto"]; len(v) > 0 {
			proto = v[0]
		}
		if v := in["X-Forwarded-Host"]; len(v) > 0 {
			xhost = v[0]
		}
	}
	vals := []string{xff, fwd, proto, xhost} // one allocation for the four fields
	dst["X-Forwarded-For"], dst["Forwarded"] = vals[0:1:1], vals[1:2:2]
	dst["X-Forwarded-Proto"], dst["X-Forwarded-Host"] = vals[2:3:3], vals[3:4:4]
	if prior := in["Cdn-Loop"]; len(prior) > 0 {
		dst["Cdn-Loop"] = append(slices.Clip(prior), f.nameVal)
	} else {
		dst["Cdn-Loop"] = f.loop // shared: a header is never written in place
	}
}

func (f *forwarding) trusts(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range f.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// peerIP is the address of a RemoteAddr (host:port), unmapped.
func peerIP(remote string) netip.Addr {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		h = remote
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// forwardedElem is one RFC 7239 forwarded-element: for (ip, whose text
// is addr), host, proto. Values that are not tokens (IPv6, host:port) are
// quoted.
func forwardedElem(ip netip.Addr, addr, host, scheme string) string {
	var b strings.Builder
	b.Grow(len("for=\"[]\";host=\"\";proto=") + len(addr) + len(host) + len(scheme))
	b.WriteString("for=")
	switch {
	case !ip.IsValid():
		b.WriteString("unknown")
	case ip.Is6():
		b.WriteString(`"[`)
		b.WriteString(addr)
		b.WriteString(`]"`)
	default:
		b.WriteString(addr)
	}
	if host != "" {
		b.WriteString(";host=")
		if strings.ContainsAny(host, ":[]") {
			b.WriteString(`"` + strings.ReplaceAll(host, `"`, "") + `"`)
		} else {
			b.WriteString(host)
		}
	}
	b.WriteString(";proto=")
	b.WriteString(scheme)
	return b.String()
}

// rewritePass is the pass path's share of the rules: what the reverse
// proxy forwards of the client's header (it already removes hop-by-hop
// and Connection-nominated fields, and the X-Forwarded ones).
func (f *forwarding) rewritePass(out http.Header, in *http.Request) {
	if !f.underscores {
		for k := range out {
			if strings.IndexByte(k, '_') >= 0 {
				delete(out, k)
			}
		}
	}
	if in.ContentLength == 0 && len(in.TransferEncoding) == 0 {
		delete(out, "Expect")
	}
	scheme := "http"
	if in.TLS != nil {
		scheme = "https"
	}
	delete(out, "Forwarded")
	f.setForwarded(out, in.Header, in.RemoteAddr, scheme, in.Host)
	out["Via"] = via
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
