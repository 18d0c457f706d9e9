package gateway

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Extension methods
//
// echo's router knows the methods it registers for Any (those of RFC 9110
// plus PROPFIND and REPORT) and answers 405 to every other one before any
// handler runs. HTTP's method set is open (RFC 9110 §16.1: WebDAV's MKCOL
// and LOCK, UPnP's M-SEARCH), and a gateway in front of an origin must
// pass them on, as nginx and Varnish do. extensionMethods sends those
// straight to the traffic handler, with an echo context of its own; the
// methods echo knows take the router as before, so the hit path is
// unchanged (the fast path serves GET and HEAD without it).
type extensionMethods struct {
	echo *echo.Echo
	h    echo.HandlerFunc
}

func (x extensionMethods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if echoMethod(r.Method) {
		x.echo.ServeHTTP(w, r)
		return
	}
	c := x.echo.AcquireContext()
	defer x.echo.ReleaseContext(c)
	c.Reset(r, w)
	if err := x.h(c); err != nil {
		x.echo.HTTPErrorHandler(err, c)
	}
}

// echoMethod reports whether echo's router has a route for m (Any).
func echoMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace, echo.PROPFIND, echo.REPORT:
		return true
	}
	return false
}
