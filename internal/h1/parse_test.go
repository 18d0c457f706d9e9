package h1

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"net/http"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func testConn(head []byte) *conn {
	c := &conn{srv: &Server{}, ctx: context.Background()}
	c.base = (&http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody}).WithContext(c.ctx)
	c.w = len(head)
	return c
}

// FuzzParse holds the fast path's parser to net/http's: whatever it
// accepts, net/http's server must accept too (http.ReadRequest plus the
// checks net/http's server adds) and read as the same request. What it
// refuses costs nothing: net/http gets the connection.
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
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		i := bytes.Index(head, headEnd)
		if i < 0 {
			return
		}
		head = head[:i+len(headEnd)]
		if bareLF(head, 0) {
			return // readHead hands these over before parsing
		}
		r, x, ok := testConn(head).parse(head)
		if !ok {
			return
		}
		if x.pipelined {
			t.Fatal("pipelined with nothing after the head")
		}
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("accepted %q, which net/http refuses: %v", head, err)
		}
		// What net/http's server checks after ReadRequest (server.go
		// readRequest), and what would give the request a body.
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
	})
}

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
	// The head string, the header map (and its table), the values, the URL,
	// the context and the request.
	if allocs > 7 {
		t.Fatalf("%v allocations per head", allocs)
	}
	t.Logf("%v allocations per head", allocs)
}
