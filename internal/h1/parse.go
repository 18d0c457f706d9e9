package h1

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// parse reads a request head (ending in "\r\n\r\n") into a request, or
// reports false for anything the fast path leaves to net/http: it accepts
// only what net/http would read the same way. That is
//
//	GET or HEAD, an origin-form target of visible ASCII, HTTP/1.1;
//	header lines "Name: value" ending in CRLF, names and values that
//	net/http's server accepts (httpguts);
//	exactly one Host, of host characters;
//	no Content-Length, Transfer-Encoding, Expect or Upgrade (no body, no
//	protocol switch).
//
// The request it builds is what net/http's server would have built:
// canonical header names, Host moved out of the header map, Pragma:
// no-cache mirrored into Cache-Control, Close from the Connection header.
// FuzzParse holds it to that against http.ReadRequest.
func (c *conn) parse(head []byte) (*http.Request, *reqCtx, bool) {
	s := c.arena.copy(head) // every string below is a slice of it
	eol := strings.Index(s, "\r\n")
	method, target, ok := requestLine(s[:eol])
	if !ok {
		return nil, nil, false
	}

	rest := s[eol+2 : len(s)-2] // header lines, each ending in CRLF
	n := strings.Count(rest, "\r\n")
	h := c.header
	clear(h)                  // the previous request's: nothing keeps it (see the package doc)
	vals := c.arena.values(n) // the values share one backing array, as in textproto
	var host string
	hosts, closeConn := 0, false
	for i := 0; len(rest) > 0; i++ {
		eol := strings.Index(rest, "\r\n")
		key, v, ok := field(rest[:eol])
		rest = rest[eol+2:]
		if !ok {
			return nil, nil, false
		}
		switch key {
		case "Host":
			host = v
			if hosts++; hosts > 1 {
				return nil, nil, false
			}
			continue // net/http keeps Host out of the header map
		case "Connection":
			closeConn = closeConn || hasToken(v, "close")
		}
		if vv, ok := h[key]; ok {
			h[key] = append(vv, v)
			continue
		}
		vals[i] = v
		h[key] = vals[i : i+1 : i+1]
	}
	if hosts != 1 {
		return nil, nil, false
	}
	if p, ok := h["Pragma"]; ok && p[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = noCache
		}
	}
	u, ok := c.parseTarget(target)
	if !ok {
		return nil, nil, false
	}

	x := c.nextCtx(c.r+len(head) < c.w)
	r := c.req
	*r = *c.proto // the connection's fields and x, with nothing of the previous request
	r.Method = method
	r.URL = u
	r.RequestURI = target
	r.Header = h
	r.Host = host
	r.Close = closeConn
	return r, x, true
}

// parseTarget reads an origin-form target into the connection's URL, as
// url.ParseRequestURI would: a target without escapes and without bytes
// that a path keeps escaped (the common one) is only cut at its '?'; any
// other is url.ParseRequestURI's, copied in.
func (c *conn) parseTarget(target string) (*url.URL, bool) {
	u := &c.url
	*u = url.URL{}
	path := target
	if strings.HasSuffix(path, "?") && strings.Count(path, "?") == 1 {
		u.ForceQuery, path = true, path[:len(path)-1]
	} else {
		path, u.RawQuery, _ = strings.Cut(path, "?")
	}
	u.Path = path
	if strings.IndexByte(path, '%') < 0 && u.EscapedPath() == path {
		return u, true // EscapedPath returns Path itself when nothing needs escaping: no allocation
	}
	v, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	*u = *v
	return u, true
}

// nextCtx is the context of the request being parsed: the previous
// request's, reset, unless something asked for its Done channel — a
// channel or a hang-up watch somebody may still hold (context.AfterFunc,
// a child context's goroutine) must stay the ended request's, so that
// request gets a new one. A hit never asks: its context is reused.
func (c *conn) nextCtx(pipelined bool) *reqCtx {
	x := c.x
	if x == nil || x.done != nil {
		x = &reqCtx{Context: c.ctx, c: c}
		c.x = x
		c.proto = c.base.WithContext(x)
	}
	// Only this goroutine has x now: no watch runs (done is nil), and
	// what may still hold it (context.WithoutCancel) reads only the
	// embedded Context, which never changes.
	x.pipelined, x.err, x.watching, x.ended = pipelined, nil, false, false
	return x
}

var noCache = []string{"no-cache"}

// requestLine splits a request line the fast path serves: GET or HEAD,
// an origin-form target of visible ASCII, HTTP/1.1.
func requestLine(line string) (method, target string, ok bool) {
	switch {
	case strings.HasPrefix(line, "GET "):
		method, line = http.MethodGet, line[4:]
	case strings.HasPrefix(line, "HEAD "):
		method, line = http.MethodHead, line[5:]
	default:
		return "", "", false
	}
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 || line[sp+1:] != "HTTP/1.1" {
		return "", "", false
	}
	target = line[:sp]
	if target[0] != '/' {
		return "", "", false
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b >= 0x7f {
			return "", "", false
		}
	}
	return method, target, true
}

// field reads a header line the fast path serves: "Name: value" with a
// name and value net/http's server accepts (httpguts), not a field that
// gives the request a body or a protocol switch, a Host of host
// characters. key is the canonical name, v the value without the
// whitespace around it.
func field(line string) (key, v string, ok bool) {
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	// The value is checked before it is trimmed: trim would also remove
	// a CR before the line's CRLF, which net/http refuses.
	name, raw := line[:colon], line[colon+1:]
	if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(raw) {
		return "", "", false
	}
	v = trim(raw)
	key = textproto.CanonicalMIMEHeaderKey(name)
	switch key {
	case "Host":
		ok = validHost(v)
	case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade":
		ok = false
	case "Connection":
		ok = !hasToken(v, "upgrade")
	default:
		ok = true
	}
	return key, v, ok
}

// ruledOut reports whether the complete lines of a head still being read,
// b, rule out the fast path: a request line or a header line that parse
// would refuse. from is where the lines not checked yet start (0, or what
// ruledOut returned before for the same head); it returns where the next
// call starts. net/http answers a malformed request line (an HTTP/0.9
// "GET /", say) the moment the line ends, so the fast path hands it over
// then rather than wait out ReadHeaderTimeout for a head end that will
// not come. It runs only when a head is incomplete after a read, never
// for a head that came whole.
func ruledOut(b []byte, from int) (int, bool) {
	end := bytes.LastIndex(b[from:], crlf)
	if end < 0 {
		return from, false
	}
	lines := string(b[from : from+end+2]) // the new complete lines, each ending in CRLF
	for first := from == 0; lines != ""; first = false {
		eol := strings.Index(lines, "\r\n")
		var ok bool
		if first {
			var target string
			if _, target, ok = requestLine(lines[:eol]); ok {
				// net/http parses the target as soon as it has the line.
				_, err := url.ParseRequestURI(target)
				ok = err == nil
			}
		} else {
			_, _, ok = field(lines[:eol])
		}
		if !ok {
			return from, true
		}
		lines = lines[eol+2:]
	}
	return from + end + 2, false
}

var crlf = []byte("\r\n")

// trim removes the optional whitespace around a header value (a value has
// no CR or LF by then).
func trim(s string) string { return textproto.TrimString(s) }

// validHost reports whether s is a plain host[:port]: letters, digits and
// ".-_:[]" (IP literals), a subset of what net/http accepts.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if !hostByte(s[i]) {
			return false
		}
	}
	return s != ""
}

// hostByte reports whether b may appear in a plain host[:port].
func hostByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
		b == '.' || b == '-' || b == '_' || b == ':' || b == '[' || b == ']'
}

// hasToken reports whether the comma-separated list v holds token
// (case-insensitive).
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(trim(t), token) {
			return true
		}
	}
	return false
}
