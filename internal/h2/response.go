package h2

import (
	"net/http"
	"net/textproto"
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

// reset readies w for st; c.mu is held.
func (w *responseWriter) reset(st *stream, req *http.Request) {
	*w = responseWriter{st: st, req: req, h: make(http.Header), head: req != nil && req.Method == http.MethodHead,
		buf: st.c.spare}
	st.c.spare = nil
}

// keepSpareLocked keeps a response's body buffer, once its bytes are in
// the connection's write buffer, for the conn's next response: a hit's
// body is held back whole before its HEADERS (bufferLimit), and a buffer
// per response was a third of the bytes an HTTP/2 hit allocated.
func (c *conn) keepSpareLocked(buf []byte) {
	if cap(buf) > 0 && cap(buf) <= 2*bufferLimit {
		c.spare = buf[:0]
	}
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
	c.hencUpdate = false // henc starts this head with a pending size update
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
		w.st.c.keepSpareLocked(buf)
		buf = nil
	}
	err := w.dataLocked(buf, end)
	w.st.c.keepSpareLocked(buf) // dataLocked copied it into wbuf
	return err
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
			w.st.c.keepSpareLocked(w.buf)
			w.buf = nil
			return
		}
		w.writeHeadersLocked(w.code, false, cl)
	}
	buf := w.buf
	w.buf = nil
	_ = w.dataLocked(buf, true)
	w.st.c.keepSpareLocked(buf) // dataLocked copied it into wbuf
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
//
// The head is encoded as nginx does: :status from the static table where
// it is there, every other field a literal without indexing (its name
// from the static table when listed), no Huffman. The dynamic table
// bought a few bytes per response and cost most of the head's CPU: a
// cache's Age, Date, Cache-Status and ETag change from one response to
// the next, so each was searched for, inserted and evicted again
// (x/net's Encoder.WriteField was 13% of an HTTP/2 hit). The encoder
// (henc) is kept for the one thing it must do: the table size update
// the client asks for by lowering SETTINGS_HEADER_TABLE_SIZE, which
// starts the next head.
func (w *responseWriter) writeHeadersLocked(code int, end bool, cl int) {
	c := w.st.c
	c.hbuf.Reset()
	if c.hencUpdate {
		c.hencUpdate = false
		_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(code)})
	} else {
		c.hbuf.Write(appendStatus(c.hbuf.AvailableBuffer(), code))
	}
	hasDate, hasType := false, false
	for k, vv := range w.h {
		lk, idx, skip := headerName(k)
		if skip {
			continue
		}
		switch idx {
		case staticDate:
			hasDate = true
		case staticContentType:
			hasType = true
		case staticContentLength:
			if cl >= 0 {
				continue
			}
		}
		for _, v := range vv {
			c.hbuf.Write(appendLiteral(c.hbuf.AvailableBuffer(), idx, lk, flatten(v)))
		}
	}
	if code >= 200 {
		if !hasType && bodyAllowed(code) && len(w.buf) > 0 {
			c.hbuf.Write(appendLiteral(c.hbuf.AvailableBuffer(), staticContentType, "", http.DetectContentType(w.buf)))
		}
		if !hasDate {
			c.hbuf.Write(appendLiteral(c.hbuf.AvailableBuffer(), staticDate, "", date()))
		}
		if cl >= 0 && bodyAllowed(code) {
			b := appendLiteralHead(c.hbuf.AvailableBuffer(), staticContentLength, "")
			var digits [20]byte
			v := strconv.AppendInt(digits[:0], int64(cl), 10)
			b = append(append(b, byte(len(v))), v...) // < 127: a one-byte length
			c.hbuf.Write(b)
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

// The static table's indices (RFC 7541 Appendix A) of the names a
// response head uses most; 0 is none.
const (
	staticStatus        = 8 // :status 200
	staticContentLength = 28
	staticContentType   = 31
	staticDate          = 33
)

// headerName gives a header name as HTTP/2 sends it, its index in the
// static table (0 if none), and whether it is a connection-specific field
// HTTP/2 forbids (RFC 9113 8.2.2). The common names come from a table:
// no allocation on the hit path.
func headerName(k string) (lk string, idx uint64, skip bool) {
	if n, ok := commonNames[k]; ok {
		return n.lower, n.static, false
	}
	lk = strings.ToLower(k)
	switch lk {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return lk, 0, true
	}
	if n, ok := commonNames[textproto.CanonicalMIMEHeaderKey(k)]; ok { // set without canonicalizing
		return lk, n.static, false
	}
	return lk, 0, false
}

type headerNameInfo struct {
	lower  string
	static uint64 // RFC 7541 Appendix A; 0: not in the static table
}

var commonNames = func() map[string]headerNameInfo {
	m := map[string]headerNameInfo{}
	for name, idx := range map[string]uint64{
		"Accept-Ranges": 18, "Access-Control-Allow-Origin": 20, "Age": 21, "Allow": 22,
		"Cache-Control": 24, "Content-Disposition": 25, "Content-Encoding": 26, "Content-Language": 27,
		"Content-Length": staticContentLength, "Content-Location": 29, "Content-Range": 30,
		"Content-Type": staticContentType, "Date": staticDate, "Etag": 34, "Expires": 36,
		"Last-Modified": 44, "Link": 45, "Location": 46, "Retry-After": 53, "Server": 54,
		"Set-Cookie": 55, "Strict-Transport-Security": 56, "Vary": 59, "Via": 60, "Www-Authenticate": 61,
		"Alt-Svc": 0, "Cache-Status": 0, "Traceparent": 0, "X-Cache": 0, "X-Cache-Status": 0,
		"X-Content-Type-Options": 0, "X-Request-Id": 0,
	} {
		m[name] = headerNameInfo{strings.ToLower(name), idx}
	}
	return m
}()

// statusIndex are the statuses the static table lists (RFC 7541
// Appendix A), by index.
var statusIndex = [...]struct {
	code int
	idx  byte
}{{200, 8}, {204, 9}, {206, 10}, {304, 11}, {400, 12}, {404, 13}, {500, 14}}

// appendStatus appends :status: the static table's entry for the codes
// it lists (one byte), else a literal with its name indexed.
func appendStatus(b []byte, code int) []byte {
	for _, s := range statusIndex {
		if s.code == code {
			return append(b, 0x80|s.idx)
		}
	}
	return appendLiteral(b, staticStatus, "", statusText(code))
}

// appendLiteral appends a literal header field without indexing (RFC
// 7541 6.2.2): the name as static index idx, or as a string if idx is 0,
// then the value, neither Huffman-coded.
func appendLiteral(b []byte, idx uint64, name, value string) []byte {
	b = appendLiteralHead(b, idx, name)
	b = appendInt(b, 7, 0, uint64(len(value)))
	return append(b, value...)
}

func appendLiteralHead(b []byte, idx uint64, name string) []byte {
	if idx != 0 {
		return appendInt(b, 4, 0, idx)
	}
	b = append(b, 0)
	b = appendInt(b, 7, 0, uint64(len(name)))
	return append(b, name...)
}

// appendInt appends i as an HPACK integer with an n-bit prefix (RFC 7541
// 5.1), the byte's other bits set to first.
func appendInt(b []byte, n uint, first byte, i uint64) []byte {
	k := uint64(1)<<n - 1
	if i < k {
		return append(b, first|byte(i))
	}
	b = append(b, first|byte(k))
	i -= k
	for ; i >= 128; i >>= 7 {
		b = append(b, byte(0x80|(i&0x7f)))
	}
	return append(b, byte(i))
}

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
