package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func testConn(head []byte) *conn {
	c := &conn{srv: &Server{}, ctx: context.Background()}
	c.base = (&http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody}).WithContext(c.ctx)
	c.req, c.header = new(http.Request), make(http.Header, headerHint)
	c.w = len(head)
	return c
}

// FuzzParse holds the fast path's parser to net/http's. The input is a
// stream, as a pipelining client sends it: each head in it that the fast
// path accepts, net/http's server must accept too (http.ReadRequest plus
// the checks net/http's server adds) and read from the same stream as the
// same request; what it refuses costs nothing (net/http gets the
// connection). What is left without a head end is a head still being
// read: the fast path may wait for more of it only where net/http would
// wait too, and must hand it over where net/http would answer already
// (checkPartial).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"HEAD /a/b?c=d HTTP/1.1\r\nhost: h:80\r\nAccept: */*\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"GET /%2e%2E/x HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\nPragma: no-cache\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET http://a/b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: \t v \t\r\n\r\n",
		"GET //x HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /?q=%zz HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
		// HTTP/0.9 lines, whole or with more after them.
		"GET /\r\n",
		"GET /\r\n\r\n",
		"HEAD /index.html\r\nHost: h\r\n",
		"GET / HTTP/0.9\r\n",
		// Pipelined heads, the last one whole or not.
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHo",
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
		// Silent and partial heads.
		"",
		"G",
		"GET / HTTP/1.1",
		"GET / HTTP/1.1\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nNo colon\r\n",
		"GET / HTTP/1.1\r\n X: folded\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n b\r\nHost",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if bareLF(in, 0) {
			return // readHead hands these over before parsing
		}
		br := bufio.NewReader(bytes.NewReader(in)) // net/http's view of the stream
		c := testConn(in)                          // one connection: each head reuses what the one before it had
		for off := 0; ; {
			rest := in[off:]
			i := bytes.Index(rest, headEnd)
			if i < 0 {
				checkPartial(t, rest)
				return
			}
			head := rest[:i+len(headEnd)]
			c.r = off
			r, x, ok := c.parse(head)
			if !ok {
				return
			}
			off += len(head)
			if x.pipelined != (off < len(in)) {
				t.Fatalf("%q: pipelined %v with %d bytes after the head", in, x.pipelined, len(in)-off)
			}
			std, err := http.ReadRequest(br)
			if err != nil {
				t.Fatalf("accepted %q, which net/http refuses: %v", head, err)
			}
			sameRequest(t, head, r, std)
			c.endRequest(x)
		}
	})
}

// sameRequest fails t unless the fast path read head as r, the request
// net/http's server reads (std, plus the checks it makes after
// ReadRequest: server.go readRequest).
func sameRequest(t *testing.T, head []byte, r, std *http.Request) {
	t.Helper()
	if std.Host == "" || !httpguts.ValidHostHeader(std.Host) {
		t.Fatalf("accepted %q: net/http's server refuses its Host %q", head, std.Host)
	}
	for k, vv := range std.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			t.Fatalf("accepted %q: invalid header name %q", head, k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("accepted %q: invalid header value %q", head, v)
			}
		}
	}
	if std.ContentLength != 0 || len(std.TransferEncoding) > 0 || std.URL.Host != "" {
		t.Fatalf("accepted %q: net/http reads a body or an absolute target", head)
	}
	if r.Method != std.Method || r.RequestURI != std.RequestURI || r.URL.String() != std.URL.String() ||
		*r.URL != *std.URL || r.Host != std.Host || r.Close != std.Close || r.Proto != std.Proto {
		t.Fatalf("%q read as\n%s %s %+v host=%q close=%v\nnet/http:\n%s %s %+v host=%q close=%v", head,
			r.Method, r.RequestURI, *r.URL, r.Host, r.Close, std.Method, std.RequestURI, *std.URL, std.Host, std.Close)
	}
	if !maps.EqualFunc(r.Header, std.Header, func(a, b []string) bool { return bytes.Equal([]byte(fmtVals(a)), []byte(fmtVals(b))) }) {
		t.Fatalf("%q headers\n%q\nnet/http:\n%q", head, r.Header, std.Header)
	}
}

// checkPartial holds the fast path's decision on b, a head without its
// end yet (no bare LF), to net/http's. If its complete lines rule the fast
// path out, no ending of them makes a head parse accepts. If not, the
// fast path waits for more, and so must net/http: reading those lines
// from a connection that then has nothing more to give, it must be
// waiting for the next byte (errStall), not answering already. Checking
// the lines in two calls, as readHead does across reads, decides the same.
func checkPartial(t *testing.T, b []byte) {
	t.Helper()
	_, out := ruledOut(b, 0)
	if half := len(b) / 2; !out {
		if from, o := ruledOut(b[:half], 0); o {
			t.Fatalf("%q: its first %d bytes are ruled out, the whole is not", b, half)
		} else if _, o := ruledOut(b, from); o {
			t.Fatalf("%q: ruled out when checked from %d on, not whole", b, from)
		}
	}
	complete := b[:0]
	if i := bytes.LastIndex(b, crlf); i >= 0 {
		complete = b[:i+len(crlf)]
	}
	if out {
		head := append(bytes.Clone(complete), crlf...)
		if _, _, ok := testConn(head).parse(head); ok {
			t.Fatalf("%q ruled out, but parse accepts %q", b, head)
		}
		return
	}
	_, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(complete), stall{})))
	if !errors.Is(err, errStall) {
		t.Fatalf("the fast path waits for more of %q, which net/http answers already: %v", b, err)
	}
}

// stall is a connection with nothing more to read yet.
type stall struct{}

var errStall = errors.New("stalled: waiting for the client")

func (stall) Read([]byte) (int, error) { return 0, errStall }

func fmtVals(vv []string) string {
	var b bytes.Buffer
	for _, v := range vv {
		b.WriteString(v)
		b.WriteByte(0)
	}
	return b.String()
}

// TestParseAllocs pins the cost of reading a typical head.
func TestParseAllocs(t *testing.T) {
	head := []byte("GET /products/12345?color=red HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: wrk\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n")
	c := testConn(head)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, ok := c.parse(head); !ok {
			t.Fatal("not parsed")
		}
	})
	// None: the request, its header map, URL and context are the
	// connection's, reused; the head and the values come from its arena,
	// a chunk every few dozen heads (less than one per run on average).
	if allocs != 0 {
		t.Fatalf("%v allocations per head", allocs)
	}
	t.Logf("%v allocations per head", allocs)
}

// TestParseReuse: heads parsed one after another on one connection (as
// pipelined or kept-alive requests are) each read as net/http reads them
// alone — nothing of the previous request's header, URL or context is
// left in the reused request — and a context whose Done was asked for
// is left to its holders: it stays canceled, and the next request gets
// another.
func TestParseReuse(t *testing.T) {
	heads := []string{
		"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nPragma: no-cache\r\nConnection: close\r\n\r\n",
		"GET /b? HTTP/1.1\r\nHost: h2\r\n\r\n",
		"HEAD /%7Ec/d%2Fe HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
		"GET /f HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
	}
	var stream []byte
	for _, h := range heads {
		stream = append(stream, h...)
	}
	c := testConn(stream)
	var asked *reqCtx // a context whose Done was called
	for i, h := range heads {
		t.Run(fmt.Sprintf("head %d", i), func(t *testing.T) {
			r, x, ok := c.parse([]byte(h))
			if !ok {
				t.Fatalf("%q not parsed", h)
			}
			c.r += len(h)
			std, err := http.ReadRequest(bufio.NewReader(strings.NewReader(h)))
			if err != nil {
				t.Fatal(err)
			}
			sameRequest(t, []byte(h), r, std)
			if x == asked {
				t.Fatal("a context whose Done was asked for was reused")
			}
			if i == 1 {
				_ = x.Done() // pipelined: no watch starts
				asked = x
			}
			c.endRequest(x)
		})
	}
	if asked == nil || asked.Err() == nil {
		t.Fatal("the context whose Done was asked for is not canceled after its request")
	}
	select {
	case <-asked.Done():
	default:
		t.Fatal("its Done channel is open")
	}
}
