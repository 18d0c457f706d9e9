package gateway

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"

	"github.com/labstack/echo/v4"
)

// Interim responses (RFC 9110 §15.2) and Early Hints (RFC 8297)
//
// A 1xx from the origin is passed on to the client it answers and is never
// the stored response: the pass-through proxy relays them (through
// statusWriter), and a fill relays them to its leader's client while the
// final response is still on its way. The Link fields of a 103 a fill saw
// are stored with the entry (hdrEarlyHints, at most maxHints of them) and
// sent as a 103 before every hit, as Cloudflare's Early Hints does: the
// client starts fetching the hinted assets before the hit's own bytes
// arrive. Clients of HTTP/1.0 get no 1xx (§15.2).
//
// echo's Response commits on the first WriteHeader, whatever the code, so
// a 1xx goes to the writer beneath it (writeInterim).

// hdrEarlyHints holds, in a stored entry, the Link fields of the 103 Early
// Hints the origin sent before it.
const hdrEarlyHints = "Edgecache-Early-Hints"

// maxHints bounds the Link fields kept per entry.
const maxHints = 16

// writeInterim sends the 1xx code with the fields in w's header map, then
// removes them from it, so that the final response carries only its own.
func writeInterim(w http.ResponseWriter, r *http.Request, code int, fields http.Header) {
	if !r.ProtoAtLeast(1, 1) {
		return
	}
	h := w.Header()
	for k, v := range fields {
		h[k] = v
	}
	if er, ok := w.(*echo.Response); ok {
		w = er.Writer
	}
	w.WriteHeader(code)
	for k := range fields {
		delete(h, k)
	}
}

// earlyHints sends a hit's stored Early Hints, if it has any.
func earlyHints(w http.ResponseWriter, r *http.Request, v *view) {
	if v.hints != nil {
		writeInterim(w, r, http.StatusEarlyHints, http.Header{"Link": v.hints})
	}
}

// interimTrace returns ctx with a trace that records the Link fields of a
// 103 into fl.hints and relays every 1xx but 100 (the transport's own) to
// the leader's client through relay, if not nil.
func (fl *fill) interimTrace(ctx context.Context) context.Context {
	relay := fl.req.interim
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if code == http.StatusEarlyHints {
				for _, l := range h["Link"] {
					if len(fl.hints) < maxHints {
						fl.hints = append(fl.hints, l)
					}
				}
			}
			if relay != nil && code != http.StatusContinue {
				relay(code, http.Header(h))
			}
			return nil
		},
	})
}

// relayInterim is a fill leader's relay of 1xx responses to its client.
// The transport calls it while the leader's goroutine waits in the round
// trip, so the writes do not race the final response's.
func relayInterim(w http.ResponseWriter, r *http.Request) func(int, http.Header) {
	return func(code int, h http.Header) {
		fields := make(http.Header, len(h))
		for k, v := range h {
			if !hopHeaders[k] {
				fields[k] = v
			}
		}
		writeInterim(w, r, code, fields)
	}
}

// withHints is h with the hints stored (a copy when it must add them).
func withHints(h http.Header, copied bool, hints []string) http.Header {
	if len(hints) == 0 {
		return h
	}
	if !copied {
		h = h.Clone()
	}
	h[hdrEarlyHints] = hints
	return h
}
