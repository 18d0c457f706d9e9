package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgecache/edgecache/internal/h1"
	"github.com/edgecache/edgecache/policies"
)

// Range requests (RFC 9110 §14) are answered from a complete
// representation the gateway holds: a stored 200 on a hit, or the whole
// body a fill fetched (the fill never forwards Range, forward.go). The
// representation is the stored one: when it has a Content-Encoding, the
// ranges are of the coded bytes (RFC 9110 §14.1.1), as the origin would
// answer for that coding. Everything about how a Range applies is
// rangeOf's, given the body and its header, so that a coding chosen at
// fill time changes nothing here.
//
// A single range on the HTTP/1 fast path is one prepared write of the
// stored fields (without their Content-Length) plus Content-Length and
// Content-Range: no allocation. Through a header map the two values are
// strings; the last range served from an entry keeps them (view.lastRange)
// so that a hot range costs no allocation either.

// acceptRangesBytes is Accept-Ranges on every 200 the gateway answers
// ranges of (RFC 9110 §14.3).
var acceptRangesBytes = []string{"bytes"}

// zeroLength is the Content-Length of a 416.
var zeroLength = []string{"0"}

// rangeHeader is Content-Length and Content-Range of one range of an
// entry, kept by the entry's view for the next request for that range.
type rangeHeader struct {
	r             policies.ByteRange
	spec          string // the Range field it was asked by, "" when not one line
	contentLength []string
	contentRange  []string
}

// rangeSet is what a Range asks of a representation: the ranges of a
// satisfiable one, or that it is unsatisfiable, or to be ignored.
type rangeSet struct {
	ranges []policies.ByteRange
	res    policies.RangeResult
}

// hitFields are the fields a hit adds to the stored ones.
type hitFields struct{ age, cacheStatus []string }

// rangeOf decides how r's Range (its lines rv, nil for none) applies to
// a 200 (only a 200 has ranges: the callers check) whose header is h
// (canonical keys) and body size bytes. If-Range (strong entity-tag, or a
// date equal to a strong Last-Modified; policies.IfRange) must match, or
// the whole 200 is sent.
// Several ranges of a coded representation are sent whole too: a
// multipart body cannot say that its parts, not itself, are coded.
func rangeOf(dst []policies.ByteRange, r *http.Request, rv []string, h http.Header, size int) rangeSet {
	if rv == nil {
		return rangeSet{}
	}
	if ir, ok := r.Header["If-Range"]; ok {
		v := policies.ValidatorsOf(h, time.Time{})
		if !policies.IfRange(ir, &v) {
			return rangeSet{}
		}
	}
	dst, res := policies.ParseRange(dst, rv, int64(size))
	if res == policies.RangeSatisfiable && len(dst) > 1 && len(h["Content-Encoding"]) > 0 {
		return rangeSet{}
	}
	return rangeSet{dst, res}
}

// serveViewRange answers r's Range from the stored entry v when one
// applies (206 or 416), and reports whether it did; false: serve v whole.
// It is small enough to inline: a hit without Range pays one map lookup.
func serveViewRange(w http.ResponseWriter, r *http.Request, st *reqState, v *view, hf hitFields) bool {
	_, ok := r.Header["Range"]
	return ok && serveRanges(w, r, st, v, hf)
}

// serveRanges is serveViewRange for a request with Range.
func serveRanges(w http.ResponseWriter, r *http.Request, st *reqState, v *view, hf hitFields) bool {
	if v.status != http.StatusOK {
		return false
	}
	rv := r.Header["Range"]
	var buf [1]policies.ByteRange
	rs, ok := keptRange(buf[:0], r, rv, v)
	if !ok {
		rs = rangeOf(buf[:0], r, rv, v.header, len(v.body))
	}
	if rs.res == policies.RangeIgnore {
		return false
	}
	if rs.res == policies.RangeSatisfiable && len(rs.ranges) == 1 && writePreparedRange(w, v, rs.ranges[0], hf) {
		st.rec.status = http.StatusPartialContent
		return true
	}
	h := w.Header()
	v.copyHeader(h)
	h[hdrAge] = hf.age
	h[hdrCacheStatus] = hf.cacheStatus
	st.rec.status = writeRange(w, r, v.body, rs, v.lastRange)
	return true
}

// keptRange is the range set of Range rv when it is the one the entry's
// last single range was asked by (view.lastRange) and no If-Range
// applies: a hot range is not parsed again.
func keptRange(dst []policies.ByteRange, r *http.Request, rv []string, v *view) (rangeSet, bool) {
	if len(rv) != 1 || v.lastRange == nil {
		return rangeSet{}, false
	}
	if _, ok := r.Header["If-Range"]; ok {
		return rangeSet{}, false
	}
	rh := v.lastRange.Load()
	if rh == nil || rh.spec == "" || rh.spec != rv[0] {
		return rangeSet{}, false
	}
	return rangeSet{append(dst, rh.r), policies.RangeSatisfiable}, true
}

// writePreparedRange writes one range of v on the fast path's writer:
// the stored fields but Content-Length, then Content-Length and
// Content-Range of the part. false: w is not the fast path's, or the
// response was started; nothing was written.
func writePreparedRange(w http.ResponseWriter, v *view, br policies.ByteRange, hf hitFields) bool {
	hw := preparedWriter(w)
	if hw == nil || v.fields == nil || len(w.Header()) != 0 {
		return false
	}
	var buf [256]byte
	extra := append(buf[:0], "Content-Length: "...)
	extra = strconv.AppendInt(extra, br.Length, 10)
	extra = append(extra, "\r\nContent-Range: "...)
	extra = policies.AppendContentRange(extra, br, int64(len(v.body)))
	extra = append(extra, "\r\n"...)
	extra = h1.AppendField(extra, hdrAge, hf.age)
	extra = h1.AppendField(extra, hdrCacheStatus, hf.cacheStatus)
	return hw.WritePrepared(http.StatusPartialContent, v.fields[:v.clAt], extra, v.body[br.Start:br.Start+br.Length], v.hasDate)
}

// fetchedRange answers r's Range from the whole body a fill fetched,
// whose header w.Header() holds as for a 200 (written by writeFetched).
// It returns the status written, or 0 when no range applies and the
// caller sends the 200 (with Accept-Ranges, set here).
func fetchedRange(w http.ResponseWriter, r *http.Request, f *fetched) int {
	if f.status != http.StatusOK {
		return 0
	}
	w.Header()["Accept-Ranges"] = acceptRangesBytes
	var buf [1]policies.ByteRange
	rs := rangeOf(buf[:0], r, r.Header["Range"], f.header, len(f.body))
	if rs.res == policies.RangeIgnore {
		return 0
	}
	return writeRange(w, r, f.body, rs, nil)
}

// rangeKept are the fields a 416 keeps of the representation's: the
// validators and what the gateway adds. Not Cache-Control: a cache
// downstream must not store the 416 for the URL.
var rangeKept = map[string]bool{
	"Date": true, "Etag": true, "Last-Modified": true, "Vary": true,
	hdrAge: true, hdrCacheStatus: true, "Set-Cookie": true,
}

// writeRange writes the answer to a satisfiable or unsatisfiable Range
// of body, w.Header() holding the fields of the whole 200: 206 with one
// part, 206 multipart/byteranges, or 416 with Content-Range: bytes */len
// (RFC 9110 §14.4, §14.6, §15.5.17). HEAD gets the header alone. kept,
// when not nil, remembers a single range's field values for the next
// request for it. It returns the status written.
func writeRange(w http.ResponseWriter, r *http.Request, body []byte, rs rangeSet, kept *atomic.Pointer[rangeHeader]) int {
	h, size, ranges := w.Header(), int64(len(body)), rs.ranges
	if rs.res == policies.RangeUnsatisfiable {
		for k := range h {
			if !rangeKept[k] {
				delete(h, k)
			}
		}
		h[hdrContentLength] = zeroLength
		h["Content-Range"] = []string{string(policies.AppendUnsatisfiedRange(nil, size))}
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return http.StatusRequestedRangeNotSatisfiable
	}
	if len(ranges) == 1 {
		rh := singleRange(ranges[0], size, kept, r.Header["Range"])
		h[hdrContentLength], h["Content-Range"] = rh.contentLength, rh.contentRange
		w.WriteHeader(http.StatusPartialContent)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body[rh.r.Start : rh.r.Start+rh.r.Length])
		}
		return http.StatusPartialContent
	}
	ct := ""
	if v := h["Content-Type"]; len(v) > 0 {
		ct = v[0]
	}
	// A copy: the layout keeps its ranges, and the caller's may be on its
	// stack (a single range must not allocate).
	mp := policies.NewMultipart(slices.Clone(ranges), ct, size)
	h["Content-Type"] = []string{mp.ContentType}
	h[hdrContentLength] = []string{strconv.FormatInt(mp.Length, 10)}
	w.WriteHeader(http.StatusPartialContent)
	if r.Method != http.MethodHead {
		_, _ = mp.WriteTo(w, body) // a failed write is the client's hang-up
	}
	return http.StatusPartialContent
}

// singleRange returns the field values of br, from kept when it holds
// them (an entry's last range), else new ones, then kept.
func singleRange(br policies.ByteRange, size int64, kept *atomic.Pointer[rangeHeader], rv []string) *rangeHeader {
	if kept != nil {
		if rh := kept.Load(); rh != nil && rh.r == br {
			return rh
		}
	}
	rh := &rangeHeader{
		r:             br,
		spec:          oneLine(rv),
		contentLength: []string{strconv.FormatInt(br.Length, 10)},
		contentRange:  []string{string(policies.AppendContentRange(nil, br, size))},
	}
	if kept != nil {
		kept.Store(rh)
	}
	return rh
}

// oneLine is a copy of rv's only line (the request's strings are not the
// entry's to keep, internal/h1), or "" when it has several.
func oneLine(rv []string) string {
	if len(rv) != 1 {
		return ""
	}
	return strings.Clone(rv[0])
}

// ranged reports whether r asks for a range.
func ranged(r *http.Request) bool {
	_, ok := r.Header["Range"]
	return ok
}
