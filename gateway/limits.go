package gateway

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/edgecache/edgecache/config"
)

// Request screening
//
// Before a request is routed, screen holds it against the limits section of
// the configuration and against what no route should accept:
//
//	method outside GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE   405 (Allow lists them)
//	request target longer than limits.max_uri_bytes               414
//	header section larger than limits.max_header_bytes            431
//	Content-Length above limits.max_request_body_bytes            413
//	a chunked body that grows past it                             413 (pass path)
//	a dot-segment ("." or "..", raw or %2e-encoded) in the path   400
//
// and, once the request is routed, a method outside the route's methods
// list is answered 405 with the route's list in Allow (allowedOn).
//
// net/http reads the request line and the header section before the
// gateway sees them; Serve sets the server's MaxHeaderBytes to
// max_uri_bytes + max_header_bytes, so that anything within both limits
// reaches screen and gets its precise status, and anything beyond both is
// answered 431 by net/http itself (it allows 4 KiB of slack). That bound is
// fixed when Serve starts; the limits screen applies are the current
// generation's.
//
// Dot-segments are refused rather than resolved: routes match path
// prefixes, and "/public/../private" would otherwise be routed (and
// keyed) as /public/ while an origin that resolves dot-segments serves
// /private. Clients remove dot-segments before sending (RFC 3986 §5.2.4),
// so only a crafted request has them.
//
// The hit path pays a method switch, two length comparisons and one walk
// over the header map, with no allocation (BenchmarkHit pins it).

// allowedMethods is the Allow header of a 405.
var allowedMethods = []string{strings.Join(config.KnownMethods, ", ")}

// methodBit is m's bit in a route's method set (the index in
// config.KnownMethods); 0 for any other method.
func methodBit(m string) uint8 {
	switch m {
	case http.MethodGet:
		return 1 << 0
	case http.MethodHead:
		return 1 << 1
	case http.MethodOptions:
		return 1 << 2
	case http.MethodPost:
		return 1 << 3
	case http.MethodPut:
		return 1 << 4
	case http.MethodPatch:
		return 1 << 5
	case http.MethodDelete:
		return 1 << 6
	}
	return 0
}

// methodsListed marks a route's method set as restricted to its list.
const methodsListed uint8 = 1 << 7

// routeMethods turns a route's methods list (validated) into its bit set,
// its extension methods and its Allow header. GET brings HEAD, as in
// nginx's limit_except: a HEAD is a GET without the body. An empty list
// accepts every method but config.RefusedMethods.
func routeMethods(list []string) (set uint8, other, allow []string) {
	if len(list) == 0 {
		return 0, nil, allowedMethods
	}
	set = methodsListed
	for _, m := range list {
		set |= methodBit(m)
		if m == http.MethodGet {
			set |= methodBit(http.MethodHead)
		}
		if methodBit(m) == 0 && !slices.Contains(other, m) {
			other = append(other, m)
		}
	}
	var names []string
	for _, m := range config.KnownMethods {
		if set&methodBit(m) != 0 {
			names = append(names, m)
		}
	}
	return set, other, []string{strings.Join(append(names, other...), ", ")}
}

// allowedOn reports whether rt accepts r's method; if not, it has written
// the 405 with rt's Allow and noted it in rec.
func allowedOn(w http.ResponseWriter, r *http.Request, rt *route, rec *record) bool {
	if b := methodBit(r.Method); rt.methods == 0 || rt.methods&b != 0 || b == 0 && slices.Contains(rt.otherMethods, r.Method) {
		return true
	}
	rec.outcome, rec.status = outError, http.StatusMethodNotAllowed
	h := w.Header()
	h["Allow"] = rt.allow
	h["Content-Type"] = textPlain
	w.WriteHeader(http.StatusMethodNotAllowed)
	_, _ = w.Write(rejectBody(http.StatusMethodNotAllowed))
	return false
}

var connectionClose = []string{"close"}

// screen reports whether r passes; if not, it has written the rejection
// and noted it in rec.
func screen(w http.ResponseWriter, r *http.Request, lim *config.Limits, rec *record) bool {
	code := check(r, lim)
	if code == 0 {
		if r.Body != nil && r.Body != http.NoBody {
			guardBody(w, r, lim.MaxRequestBodyBytes)
		}
		return true
	}
	rec.outcome, rec.status = outError, code
	h := w.Header()
	switch code {
	case http.StatusMethodNotAllowed:
		h["Allow"] = allowedMethods
	case http.StatusRequestEntityTooLarge:
		h["Connection"] = connectionClose // the body is not read: don't keep the connection
	}
	h["Content-Type"] = textPlain
	w.WriteHeader(code)
	_, _ = w.Write(rejectBody(code))
	return false
}

var textPlain = []string{"text/plain; charset=utf-8"}

func rejectBody(code int) []byte {
	switch code {
	case http.StatusMethodNotAllowed:
		return []byte("edgecache: method not allowed\n")
	case http.StatusRequestURITooLong:
		return []byte("edgecache: request target too long\n")
	case http.StatusRequestHeaderFieldsTooLarge:
		return []byte("edgecache: request header fields too large\n")
	case http.StatusRequestEntityTooLarge:
		return []byte("edgecache: request body too large\n")
	}
	return []byte("edgecache: bad request\n")
}

// check returns the status r is rejected with, or 0.
func check(r *http.Request, lim *config.Limits) int {
	if methodBit(r.Method) == 0 && !config.ValidMethod(r.Method) {
		return http.StatusMethodNotAllowed // CONNECT, TRACE, or "get" for GET (config.ValidMethod)
	}
	if lim.MaxURIBytes > 0 && len(r.RequestURI) > lim.MaxURIBytes {
		return http.StatusRequestURITooLong
	}
	if lim.MaxHeaderBytes > 0 && headerBytes(r) > lim.MaxHeaderBytes {
		return http.StatusRequestHeaderFieldsTooLarge
	}
	if lim.MaxRequestBodyBytes > 0 && r.ContentLength > lim.MaxRequestBodyBytes {
		return http.StatusRequestEntityTooLarge
	}
	if hasDotSegment(r.URL.Path) {
		return http.StatusBadRequest
	}
	return 0
}

// headerBytes is the size of r's header section as sent: each field as
// "Name: value\r\n", Host included.
func headerBytes(r *http.Request) int {
	n := len("Host: \r\n") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// hasDotSegment reports whether the (decoded) path has a "." or ".."
// segment.
func hasDotSegment(p string) bool {
	for {
		i := strings.Index(p, "/.")
		if i < 0 {
			return false
		}
		p = p[i+1:] // starts with '.'
		switch {
		case len(p) == 1 || p[1] == '/':
			return true // "." segment
		case p[1] == '.' && (len(p) == 2 || p[2] == '/'):
			return true // ".." segment
		}
	}
}

// maxHeaderBytes is the http.Server's bound on the request line and header
// section: both limits, so that screen sees (and answers precisely) every
// request within them. Zero leaves net/http's default (1 MiB).
func maxHeaderBytes(lim *config.Limits) int {
	if lim.MaxURIBytes <= 0 || lim.MaxHeaderBytes <= 0 {
		return 0
	}
	return lim.MaxURIBytes + lim.MaxHeaderBytes
}

// clientBody is a request body read through the limit. Its read errors
// are marked (bodyError), so that a pass that fails on them is answered
// as the client's fault (400, 413), not the origin's (502): the transport
// returns the body's error when sending it fails.
type clientBody struct{ io.ReadCloser }

func (b clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = bodyError{err}
	}
	return n, err
}

// bodyError is an error reading the client's request body.
type bodyError struct{ err error }

func (e bodyError) Error() string { return "edgecache: reading the request body: " + e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

// guardBody wraps r's body (there is one: a request with a body goes to
// the pass path). A chunked body also closes the connection after the
// response: Transfer-Encoding overrides a Content-Length sent alongside,
// and a front end that framed by Content-Length would otherwise see
// what follows as a request of its own (RFC 9112 §6.3: the connection
// MUST be closed; net/http does not).
func guardBody(w http.ResponseWriter, r *http.Request, limit int64) {
	rc := r.Body
	if limit > 0 {
		rc = http.MaxBytesReader(w, rc, limit)
	}
	r.Body = clientBody{rc}
	if len(r.TransferEncoding) > 0 {
		w.Header()["Connection"] = connectionClose
	}
}

// clientBodyError returns the status of a pass that failed with err
// because of the client's body: 413 past the limit, 400 for a body that
// is malformed or cut short; 0 when the body is not to blame.
func clientBodyError(err error) int {
	var be bodyError
	if !errors.As(err, &be) {
		return 0
	}
	var tooLarge *http.MaxBytesError
	if errors.As(be.err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// fillDropped are request headers a cache fill does not forward. A fill
// is stored for every client whose request has the same key; these
// headers are not part of the key, and origins commonly trust them to
// build absolute URLs, pick the scheme, or rewrite the path or the method
// (IIS, Symfony, Rails, Express middlewares): forwarded, they would let
// one client shape what everyone is served (web cache poisoning). The
// gateway sets X-Forwarded-For/-Host/-Proto and Forwarded itself on fills
// and passes (forward.go).
var fillDropped = map[string]bool{
	"X-Forwarded-Uri": true, "X-Forwarded-Path": true, "X-Forwarded-Url": true,
	"X-Original-Uri": true, "X-Original-Path": true, "X-Envoy-Original-Path": true, "X-Envoy-Original-Url": true,
	"X-Http-Host-Override": true, "X-Forwarded-Uri-Prefix": true, "X-Proxy-Url": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Forwarded-Port": true, "X-Forwarded-Prefix": true, "X-Forwarded-Server": true,
	"X-Forwarded-Scheme": true, "X-Forwarded-Ssl": true, "Front-End-Https": true, "X-Url-Scheme": true,
	"X-Real-Ip": true, "X-Client-Ip": true, "True-Client-Ip": true,
	"X-Original-Url": true, "X-Rewrite-Url": true, "X-Original-Host": true, "X-Host": true,
	"X-Http-Method-Override": true, "X-Http-Method": true, "X-Method-Override": true,
}
