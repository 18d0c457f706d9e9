package h2

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bufferLimit is how much body a response holds back before its headers
// go out: a body written whole within it gets a Content-Length, as in
// net/http (whose h2 writer buffers 4 KiB; a cache hit's body fits in
// more).
const bufferLimit = 16 << 10

// responseWriter is a stream's http.ResponseWriter and http.Flusher.
type responseWriter struct {
	st        *stream
	req       *http.Request
	h         http.Header
	code      int
	wrote     bool // the final status is set
	committed bool // its HEADERS frame is out
	ended     bool
	head      bool  // a HEAD request: the body is counted, not sent
	declared  int64 // the handler's Content-Length, -1 if none
	written   int64
	buf       []byte
}

func (w *responseWriter) reset(st *stream, req *http.Request) {
	*w = responseWriter{st: st, req: req, h: make(http.Header), head: req != nil && req.Method == http.MethodHead}
}

func (w *responseWriter) Header() http.Header { return w.h }

func (w *responseWriter) WriteHeader(code int) {
	if w.wrote || code < 100 || code > 999 {
		return
	}
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote, w.code, w.declared = true, code, -1
		if v := w.h["Content-Length"]; len(v) == 1 {
			if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
				w.declared = n
			}
		}
		return
	}
	if code == http.StatusContinue {
		return
	}
	// 1xx (103 Early Hints): a HEADERS frame of its own, without END_STREAM.
	c := w.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !w.st.gone {
		w.writeHeadersLocked(code, false, -1)
		if w.st.detached {
			_ = c.flushLocked()
		}
	}
}

// continueLocked sends 100 Continue (no header fields but :status),
// unless the final response is out already.
func (w *responseWriter) continueLocked() {
	if w.committed {
		return
	}
	c := w.st.c
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: "100"})
	_ = c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: w.st.id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	_ = c.flushLocked() // a body read runs off the read loop
}

// status answers with code and no body (the 431 of a header list too
// large).
func (w *responseWriter) status(code int) { w.WriteHeader(code) }

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.code) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength // as net/http: more would be malformed
	}
	w.written += int64(len(p))
	if !w.committed && len(w.buf)+len(p) <= bufferLimit {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	c := w.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !w.committed {
		// The headers go out now, sniffed from all the body so far.
		w.buf = append(w.buf, p...)
		if err := w.commitLocked(false); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if w.head {
		return len(p), nil
	}
	if err := w.dataLocked(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *responseWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Flush sends the headers and the body so far; a streaming response
// blocks, so it leaves the read loop first.
func (w *responseWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	c := w.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detachLocked(w.st)
	if w.commitLocked(false) == nil {
		_ = c.flushLocked()
	}
}

// commitLocked sends the headers (without a Content-Length the handler
// did not set) and the body held back.
func (w *responseWriter) commitLocked(end bool) error {
	if w.st.gone {
		return errReset
	}
	if w.committed {
		return nil
	}
	w.committed = true
	w.writeHeadersLocked(w.code, false, -1)
	buf := w.buf
	w.buf = nil
	if w.head {
		buf = nil
	}
	return w.dataLocked(buf, end)
}

// endLocked ends the response when the handler returns.
func (w *responseWriter) endLocked() {
	if w.ended {
		return
	}
	w.ended = true
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	if !w.committed {
		w.committed = true
		cl := -1
		if bodyAllowed(w.code) && w.h.Get("Content-Length") == "" && w.h.Get("Transfer-Encoding") == "" && (len(w.buf) > 0 || !w.head) {
			cl = len(w.buf)
		}
		if len(w.buf) == 0 || w.head {
			w.writeHeadersLocked(w.code, true, cl)
			return
		}
		w.writeHeadersLocked(w.code, false, cl)
	}
	buf := w.buf
	w.buf = nil
	_ = w.dataLocked(buf, true)
}

// dataLocked appends DATA frames within the flow-control windows,
// waiting (off the read loop) for credit.
func (w *responseWriter) dataLocked(p []byte, end bool) error {
	c, st := w.st.c, w.st
	for len(p) > 0 || end {
		if st.gone || c.closed {
			return errReset
		}
		n := min(int64(len(p)), st.sendWindow, c.sendWindow, int64(c.peerFrame))
		if n <= 0 && len(p) > 0 {
			c.detachLocked(st)
			if c.flushLocked() != nil {
				return errClosed
			}
			c.cond.Wait()
			continue
		}
		last := end && int(n) == len(p)
		_ = c.wfr.WriteData(st.id, last, p[:n])
		st.sendWindow -= n
		c.sendWindow -= n
		p = p[n:]
		if c.wbuf.Len() >= flushAt && c.flushLocked() != nil {
			return errClosed
		}
		if last {
			return nil
		}
	}
	return nil
}

// writeHeadersLocked HPACK-encodes a response head and appends it as
// HEADERS (and CONTINUATION) frames; cl >= 0 adds that Content-Length.
func (w *responseWriter) writeHeadersLocked(code int, end bool, cl int) {
	c := w.st.c
	c.hbuf.Reset()
	enc := c.henc
	_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(code)})
	hasDate, hasType := false, false
	for k, vv := range w.h {
		lk, skip := lowerKey(k)
		if skip {
			continue
		}
		switch lk {
		case "date":
			hasDate = true
		case "content-type":
			hasType = true
		case "content-length":
			if cl >= 0 {
				continue
			}
		}
		for _, v := range vv {
			_ = enc.WriteField(hpack.HeaderField{Name: lk, Value: flatten(v)})
		}
	}
	if code >= 200 {
		if !hasType && bodyAllowed(code) && len(w.buf) > 0 {
			_ = enc.WriteField(hpack.HeaderField{Name: "content-type", Value: http.DetectContentType(w.buf)})
		}
		if !hasDate {
			_ = enc.WriteField(hpack.HeaderField{Name: "date", Value: date()})
		}
		if cl >= 0 && bodyAllowed(code) {
			_ = enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(cl)})
		}
	}
	block := c.hbuf.Bytes()
	first := true
	for len(block) > 0 || first {
		n := min(len(block), int(c.peerFrame))
		frag, rest := block[:n], block[n:]
		if first {
			_ = c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: w.st.id, BlockFragment: frag, EndStream: end, EndHeaders: len(rest) == 0})
			first = false
		} else {
			_ = c.wfr.WriteContinuation(w.st.id, len(rest) == 0, frag)
		}
		block = rest
	}
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

var statusTexts = func() (m [600]string) {
	for i := 100; i < len(m); i++ {
		m[i] = strconv.Itoa(i)
	}
	return m
}()

func statusText(code int) string {
	if code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

// lowerKey gives a header name as HTTP/2 sends it, and whether it is a
// connection-specific field HTTP/2 forbids (RFC 9113 8.2.2). The common
// names come from a table: no allocation on the hit path.
func lowerKey(k string) (string, bool) {
	if lk, ok := commonLower[k]; ok {
		return lk, false
	}
	lk := strings.ToLower(k)
	switch lk {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return lk, true
	}
	return lk, false
}

var commonLower = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Age", "Alt-Svc", "Cache-Control", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Range", "Content-Type", "Date", "Etag", "Expires", "Last-Modified",
		"Link", "Location", "Server", "Set-Cookie", "Vary", "Via", "Www-Authenticate", "X-Cache",
		"X-Cache-Status", "X-Content-Type-Options", "X-Request-Id", "Cache-Status", "Strict-Transport-Security",
		"Access-Control-Allow-Origin", "Retry-After", "Traceparent",
	} {
		m[k] = strings.ToLower(k)
	}
	return m
}()

// flatten replaces CR and LF in a value, as net/http does.
func flatten(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
}

// dateCache is the Date value, made once a second.
type dateVal struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[dateVal]

func date() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &dateVal{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}
