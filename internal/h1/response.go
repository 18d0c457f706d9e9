package h1

import (
	"bufio"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// ResponseWriter is the http.ResponseWriter of a fast-path request, reused
// by its connection. It follows net/http's rules for what goes on the wire
// (Content-Length set from a body written whole, chunked otherwise; no
// body or body headers for 1xx, 204 and 304; Content-Type sniffed when
// missing; Date added; values with CR or LF flattened), with one copy of
// the body into the connection's buffer when Content-Length is known.
type ResponseWriter struct {
	c      *conn
	req    *http.Request
	header http.Header
	head   bool // HEAD: the body is counted, not sent

	status      int
	wroteHeader bool  // the status is decided
	committed   bool  // the head is in the connection's buffer
	cl          int64 // the declared Content-Length, or -1
	written     int64 // body bytes the handler wrote
	chunked     bool
	trailers    []string // declared in the Trailer header, sent after a chunked body
	pending     []byte   // body held back before the head, to size it
	closeAfter  bool
	err         error // a write to the connection failed
}

// pendingMax is how much body is held back to compute a Content-Length
// before the response goes chunked, as net/http's 2 KiB buffer does.
const pendingMax = 2048

func (w *ResponseWriter) reset(req *http.Request) {
	clear(w.header)
	*w = ResponseWriter{c: w.c, header: w.header, pending: w.pending[:0], trailers: w.trailers[:0],
		req: req, head: req.Method == http.MethodHead, cl: -1, closeAfter: req.Close}
}

func (w *ResponseWriter) Header() http.Header { return w.header }

func (w *ResponseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return // net/http logs a superfluous call; the first status stands
	}
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl, ok := w.header["Content-Length"]; ok {
		v, err := strconv.ParseInt(first(cl), 10, 64)
		if err == nil && v >= 0 {
			w.cl = v
		} else {
			w.c.srv.logf("h1: invalid Content-Length of %q", first(cl))
			delete(w.header, "Content-Length")
		}
	}
}

// informational sends a 1xx response (103 Early Hints) at once.
func (w *ResponseWriter) informational(code int) {
	bw := w.c.bw
	writeStatusLine(bw, code)
	for k, vv := range w.header {
		if k == "Content-Length" || k == "Transfer-Encoding" {
			continue
		}
		writeField(bw, k, vv)
	}
	bw.WriteString("\r\n")
	w.fail(bw.Flush())
}

func (w *ResponseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.cl >= 0 && w.written > w.cl {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.committed {
		if w.cl < 0 && len(w.pending)+len(p) <= pendingMax {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	w.body(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *ResponseWriter) WriteString(s string) (int, error) {
	// Through Write; io.WriteString on a response is rare off the hit path.
	return w.Write([]byte(s))
}

// Flush sends what was written so far (http.Flusher).
func (w *ResponseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error (http.ResponseController).
func (w *ResponseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	w.fail(w.c.bw.Flush())
	return w.err
}

// commit writes the status line and the header section into the
// connection's buffer, then any body held back. final means the handler
// has returned: a body held back whole gets its Content-Length. next is
// the write that made the commit, for sniffing when nothing was held.
func (w *ResponseWriter) commit(final bool, next []byte) {
	w.committed = true
	h, code := w.header, w.status
	hasBody := bodyAllowed(code)
	p := w.pending
	w.pending = p[:0]
	sniff := p
	if len(sniff) == 0 {
		sniff = next
	}

	te, hasTE := h["Transfer-Encoding"]
	skipCL, skipTE, skipCT := false, false, false
	for _, v := range h["Trailer"] {
		w.trailers = appendTokens(w.trailers, v)
	}
	trailers := len(w.trailers) > 0
	if final && !trailers && !hasTE && hasBody && w.cl < 0 && (!w.head || len(p) > 0) {
		w.cl = int64(len(p))
		h["Content-Length"] = []string{strconv.Itoa(len(p))}
	}
	if h.Get("Connection") == "close" || w.c.srv.inShutdown.Load() {
		w.closeAfter = true
	}
	var contentType string
	if hasBody {
		if _, ok := h["Content-Type"]; !ok && !hasTE && len(sniff) > 0 && h.Get("Content-Encoding") == "" {
			contentType = http.DetectContentType(sniff)
		}
	} else {
		skipCL, skipCT = true, code == http.StatusNotModified // and the switch below skips TE
	}
	if w.cl >= 0 && hasTE && first(te) != "identity" {
		skipCL, w.cl = true, -1
	}
	var teChunked bool
	switch {
	case w.head || !hasBody:
		skipTE = true
	case w.cl >= 0:
		skipTE = true
	case hasTE && first(te) == "identity":
		skipTE, w.closeAfter = true, true // the body ends when the connection does
	default:
		w.chunked, teChunked, skipTE = true, true, true
	}

	bw := w.c.bw
	writeStatusLine(bw, code)
	for k, vv := range h {
		switch {
		case k == "Content-Length" && skipCL, k == "Transfer-Encoding" && skipTE,
			k == "Content-Type" && skipCT, strings.HasPrefix(k, http.TrailerPrefix):
			continue
		}
		writeField(bw, k, vv)
	}
	if contentType != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(contentType)
		bw.WriteString("\r\n")
	}
	if w.closeAfter {
		if _, ok := h["Connection"]; !ok {
			bw.WriteString("Connection: close\r\n")
		}
	}
	if teChunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(w.c.date.get())
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	if len(p) > 0 {
		w.body(p)
	}
}

// body sends body bytes: dropped for HEAD, framed when chunked.
func (w *ResponseWriter) body(p []byte) {
	if w.head || len(p) == 0 || w.err != nil {
		return
	}
	bw := w.c.bw
	if !w.chunked {
		_, err := bw.Write(p)
		w.fail(err)
		return
	}
	var hex [16]byte
	bw.Write(strconv.AppendUint(hex[:0], uint64(len(p)), 16))
	bw.WriteString("\r\n")
	bw.Write(p)
	_, err := bw.WriteString("\r\n")
	w.fail(err)
}

// finish completes the response after the handler returned.
func (w *ResponseWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true, nil)
	}
	if w.chunked && !w.head {
		bw := w.c.bw
		bw.WriteString("0\r\n")
		for _, k := range w.trailers {
			if vv, ok := w.header[k]; ok && httpguts.ValidHeaderFieldName(k) {
				writeField(bw, k, vv)
			}
		}
		for k, vv := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidHeaderFieldName(name) {
				writeField(bw, name, vv)
			}
		}
		_, err := bw.WriteString("\r\n")
		w.fail(err)
	}
	if !w.head && w.cl >= 0 && w.written != w.cl && bodyAllowed(w.status) {
		w.closeAfter = true // short of its Content-Length: the stream is out of step
	}
}

func (w *ResponseWriter) fail(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

func first(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	return vv[0]
}

// appendTokens appends the names of a comma-separated list, canonical.
func appendTokens(dst []string, v string) []string {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if t = trim(t); t != "" {
			dst = append(dst, http.CanonicalHeaderKey(t))
		}
	}
	return dst
}

// statusLines are the status lines of the common codes, ready to write.
var statusLines = func() map[int]string {
	m := make(map[int]string)
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			m[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return m
}()

func writeStatusLine(bw *bufio.Writer, code int) {
	if l, ok := statusLines[code]; ok {
		bw.WriteString(l)
		return
	}
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteString(" status code ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteString("\r\n")
}

func writeField(bw *bufio.Writer, k string, vv []string) {
	_, _ = bw.Write(AppendField(bw.AvailableBuffer(), k, vv))
}

// AppendField appends k's "Name: value" lines to dst as net/http writes
// them: a name that is not a token is dropped, CR and LF in a value become
// spaces (no header injection, no response splitting), and the value is
// trimmed.
func AppendField(dst []byte, k string, vv []string) []byte {
	if !httpguts.ValidHeaderFieldName(k) {
		return dst
	}
	for _, v := range vv {
		dst = append(dst, k...)
		dst = append(dst, ": "...)
		if strings.ContainsAny(v, "\r\n") {
			v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
		}
		dst = append(dst, textproto.TrimString(v)...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// WritePrepared writes a whole response whose header fields were
// serialized before (with AppendField, Content-Length matching body when
// the status allows a body) plus extra fields serialized the same way, and
// body (not sent for HEAD). It adds Date unless fields have one
// (hasDate), and Connection: close as needed; the header map is not
// consulted. This is the cache-hit write: a stored
// response's fields are serialized once, not on every request. It reports
// false, writing nothing, if the response was already started.
func (w *ResponseWriter) WritePrepared(status int, fields, extra, body []byte, hasDate bool) bool {
	if w.wroteHeader || status < 200 {
		return false
	}
	w.wroteHeader, w.committed, w.status = true, true, status
	hasBody := bodyAllowed(status)
	if hasBody {
		w.cl, w.written = int64(len(body)), int64(len(body))
	}
	if w.c.srv.inShutdown.Load() {
		w.closeAfter = true
	}
	bw := w.c.bw
	writeStatusLine(bw, status)
	bw.Write(fields)
	bw.Write(append(bw.AvailableBuffer(), extra...)) // a copy: extra may live on the caller's stack
	if !hasDate {
		bw.WriteString("Date: ")
		bw.Write(w.c.date.get())
		bw.WriteString("\r\n")
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if hasBody && !w.head {
		_, err := bw.Write(body)
		w.fail(err)
	}
	return true
}

// dateCache is the Date header value, formatted once per second.
type dateCache struct {
	sec int64
	buf [len(http.TimeFormat)]byte
}

func (d *dateCache) get() []byte {
	now := time.Now()
	if s := now.Unix(); s != d.sec {
		d.sec = s
		now.UTC().AppendFormat(d.buf[:0], http.TimeFormat)
	}
	return d.buf[:]
}
