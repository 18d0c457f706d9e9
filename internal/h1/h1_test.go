package h1_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/h1"
)

// dumpHandler answers with what it was asked (method, target, host,
// headers in order, Close) and, by path, in one of the ways a handler can
// answer: the table below drives both servers through each.
func dumpHandler(t testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s host=%q close=%v proto=%s\n", r.Method, r.RequestURI, r.URL.String(), r.Host, r.Close, r.Proto)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%q\n", k, r.Header[k])
		}
		if r.Body != nil {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(&b, "body=%q\n", body)
		}
		dump := b.String()
		h := w.Header()
		switch r.URL.Path {
		case "/cl":
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Length", fmt.Sprint(len(dump)))
			answer(w, dump)
		case "/auto":
			answer(w, dump) // sniffed type, computed length
		case "/big": // past the held-back buffer: chunked
			h.Set("Content-Type", "text/plain")
			answer(w, dump)
			w.Write(bytes.Repeat([]byte("b"), 10000))
		case "/flush":
			h.Set("Content-Type", "text/plain")
			answer(w, "first ")
			w.(http.Flusher).Flush()
			answer(w, dump)
		case "/304":
			h.Set("ETag", `"x"`)
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Length", "10")
			w.WriteHeader(http.StatusNotModified)
		case "/204":
			h.Set("Content-Length", "10")
			w.WriteHeader(http.StatusNoContent)
			if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Errorf("write on 204: %v", err)
			}
		case "/short": // declares more than it writes: the connection must close
			h.Set("Content-Length", "100")
			answer(w, "short")
		case "/over":
			h.Set("Content-Length", "3")
			if _, err := io.WriteString(w, "four"); !errors.Is(err, http.ErrContentLength) {
				t.Errorf("write past Content-Length: %v", err)
			}
			answer(w, "abc")
		case "/trailer":
			h.Set("Trailer", "X-Sum")
			w.WriteHeader(200)
			answer(w, dump)
			w.(http.Flusher).Flush()
			h.Set("X-Sum", "42")
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "/split": // a header value trying to add a header of its own
			h["X-Evil"] = []string{"a\r\nSet-Cookie: pwned=1"}
			h["Bad Name"] = []string{"dropped"}
			answer(w, "ok")
		case "/hints":
			h.Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			h.Set("Content-Type", "text/plain")
			answer(w, dump)
		case "/close":
			h.Set("Connection", "close")
			answer(w, dump)
		case "/status":
			w.WriteHeader(299)
			answer(w, dump)
		default:
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Length", fmt.Sprint(len(dump)))
			answer(w, dump)
		}
	})
}

// servers starts the handler behind net/http alone and behind h1 (with
// net/http as its fallback), and returns both addresses.
func servers(t testing.TB, h http.Handler) (std, fast string, srv *h1.Server) {
	t.Helper()
	lstd, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lfast, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	srv = &h1.Server{Handler: h, Fallback: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	serveStd(t, hs, lstd)
	serve(t, srv, lfast)
	return lstd.Addr().String(), lfast.Addr().String(), srv
}

// exchange writes raw on a new connection and reads every response until
// the server closes or goes quiet.
func exchange(t testing.TB, addr, raw string, methods ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	expect := strings.Count(raw, " HTTP/1.") // request lines: stop at as many answers
	for i := 0; i < expect; i++ {
		readWithin(t, c, 2*time.Second)
		req := &http.Request{Method: "GET"}
		if i < len(methods) {
			req.Method = methods[i]
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			if len(out) == 0 {
				out = append(out, "error: "+err.Error())
			}
			return out
		}
		out = append(out, normalize(t, resp))
		if resp.StatusCode < 200 {
			i-- // informational: the final answer follows
		}
		if resp.Close {
			if _, err := br.Peek(1); err == nil {
				out = append(out, "bytes after a closing response")
			}
			return out
		}
	}
	return out
}

// normalize renders a response with its Date removed (it differs by
// time, not by server) and everything else as the client saw it.
func normalize(t testing.TB, resp *http.Response) string {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Date") != "" {
		resp.Header.Set("Date", "(present)")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s close=%v te=%v cl=%d err=%v\n", resp.Status, resp.Close, resp.TransferEncoding, resp.ContentLength, err)
	for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
		fmt.Fprintf(&b, "%s: %q\n", k, resp.Header[k])
	}
	for _, k := range slices.Sorted(maps.Keys(resp.Trailer)) {
		fmt.Fprintf(&b, "trailer %s: %q\n", k, resp.Trailer[k])
	}
	fmt.Fprintf(&b, "body %q", body)
	return b.String()
}

// answer writes s as a handler's body. Its error has nowhere to go: the
// test's client then reads a short or missing answer and fails there.
func answer(w io.Writer, s string) { _, _ = io.WriteString(w, s) }

// send writes s to the server, failing the test if it cannot.
func send(t testing.TB, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// readWithin sets c's read deadline d from now.
func readWithin(t testing.TB, c net.Conn, d time.Duration) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
}

// serve runs srv on ln until the test ends, then shuts it down and wants
// Serve to have returned ErrServerClosed.
func serve(t testing.TB, srv *h1.Server, ln net.Listener) {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
}

// serveStd runs the net/http server hs on ln until the test ends. It is
// the reference, not under test: its Serve returns ErrServerClosed once
// closed, and closing it is best effort.
func serveStd(t testing.TB, hs *http.Server, ln net.Listener) {
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
}

// TestParity sends the same bytes to net/http and to h1 and wants the same
// responses back, byte for byte once parsed: requests h1 serves itself and
// requests it hands over alike.
func TestParity(t *testing.T) {
	std, fast, srv := servers(t, dumpHandler(t))
	get := func(path string, extra ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n" + strings.Join(extra, "") + "\r\n"
	}
	cases := []struct {
		name, raw string
		methods   []string
		handover  bool
	}{
		{name: "plain", raw: get("/", "User-Agent: t\r\nAccept: */*\r\n")},
		{name: "query and escapes", raw: get("/a%2Fb/c?x=1&y=%20z#frag")},
		{name: "lower-case names, duplicates, spaces", raw: get("/", "x-forwarded-for: 1.2.3.4\r\nX-Forwarded-For:  5.6.7.8 \r\naccept-encoding:gzip\r\n")},
		{name: "pragma", raw: get("/", "Pragma: no-cache\r\n")},
		{name: "pragma with cache-control", raw: get("/", "Pragma: no-cache\r\nCache-Control: max-age=5\r\n")},
		{name: "obs-text value", raw: get("/", "X-Name: caf\xc3\xa9\r\n")},
		{name: "connection close", raw: get("/", "Connection: close\r\n")},
		{name: "connection list", raw: get("/", "Connection: keep-alive, Close\r\n")},
		{name: "HEAD", raw: "HEAD /cl HTTP/1.1\r\nHost: h\r\n\r\n", methods: []string{"HEAD"}},
		{name: "HEAD auto", raw: "HEAD /auto HTTP/1.1\r\nHost: h\r\n\r\n", methods: []string{"HEAD"}},
		{name: "auto length and sniffing", raw: get("/auto")},
		{name: "chunked", raw: get("/big")},
		{name: "flush", raw: get("/flush")},
		{name: "304", raw: get("/304")},
		{name: "204", raw: get("/204")},
		{name: "short body closes", raw: get("/short") + get("/")},
		{name: "write past length", raw: get("/over")},
		{name: "trailers", raw: get("/trailer")},
		{name: "response splitting", raw: get("/split")},
		{name: "early hints", raw: get("/hints")},
		{name: "handler closes", raw: get("/close") + get("/")},
		{name: "unknown status", raw: get("/status")},
		{name: "pipelined", raw: get("/") + get("/cl") + "HEAD /auto HTTP/1.1\r\nHost: h\r\n\r\n" + get("/big"), methods: []string{"GET", "GET", "HEAD", "GET"}},
		// Handed to net/http: it answers as if alone.
		{name: "POST", raw: "POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" + get("/"), handover: true},
		{name: "GET then POST then GET", raw: get("/") + "POST /cl HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get("/cl"), handover: true},
		{name: "HTTP/1.0", raw: "GET / HTTP/1.0\r\n\r\n", handover: true},
		{name: "absolute form", raw: "GET http://other.example/x HTTP/1.1\r\nHost: example.com\r\n\r\n", handover: true},
		{name: "no host", raw: "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", handover: true},
		{name: "two hosts", raw: get("/", "Host: b.example\r\n"), handover: true},
		{name: "bad host", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", handover: true},
		{name: "space before colon", raw: get("/", "X-A : b\r\n"), handover: true},
		{name: "obs-fold", raw: get("/", "X-A: b\r\n c\r\n"), handover: true},
		{name: "control character", raw: get("/", "X-A: b\x01c\r\n"), handover: true},
		{name: "CR before the line's CRLF", raw: get("/", "X-A: b\r\r\n"), handover: true}, // found by FuzzParse
		{name: "bare LF", raw: "GET / HTTP/1.1\nHost: h\n\n", handover: true},
		{name: "GET with a body", raw: "GET /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", handover: true},
		{name: "expect", raw: get("/", "Expect: 100-continue\r\n"), handover: true},
		{name: "upgrade", raw: get("/", "Connection: Upgrade\r\nUpgrade: websocket\r\n"), handover: true},
		{name: "huge head", raw: get("/", "X-Big: "+strings.Repeat("a", 6000)+"\r\n"), handover: true},
		{name: "bad method", raw: "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", handover: true},
		{name: "bad version", raw: "GET / HTTP/1.7\r\nHost: h\r\n\r\n", handover: true},
		{name: "non-ASCII target", raw: get("/caf\xc3\xa9"), handover: true},
		{name: "OPTIONS *", raw: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", handover: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().HandedOver.Load()
			want := exchange(t, std, tc.raw, tc.methods...)
			got := exchange(t, fast, tc.raw, tc.methods...)
			if !slices.Equal(got, want) {
				t.Errorf("h1 answered\n%s\nnet/http answered\n%s", strings.Join(got, "\n---\n"), strings.Join(want, "\n---\n"))
			}
			if handed := srv.Stats().HandedOver.Load() > before; handed != tc.handover {
				t.Errorf("handed over: %v, want %v", handed, tc.handover)
			}
		})
	}
}

// TestHangUp: a handler waiting on its context sees the client go away;
// one that never asks costs no watch.
func TestHangUp(t *testing.T) {
	canceled := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			select {
			case <-r.Context().Done():
				canceled <- r.Context().Err()
			case <-time.After(5 * time.Second):
				canceled <- errors.New("not canceled after 5s")
			}
			return
		}
		answer(w, "hit")
	})
	_, fast, srv := servers(t, h)
	for range 3 {
		if got := exchange(t, fast, "GET /hit HTTP/1.1\r\nHost: h\r\n\r\n"); len(got) != 1 || !strings.Contains(got[0], `"hit"`) {
			t.Fatal(got)
		}
	}
	if n := srv.Stats().Watches.Load(); n != 0 {
		t.Fatalf("%d watches for handlers that never waited on the context", n)
	}
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("context: %v", err)
	}
	if srv.Stats().Watches.Load() != 1 || srv.Stats().HungUp.Load() != 1 {
		t.Fatalf("watches %d, hang-ups %d", srv.Stats().Watches.Load(), srv.Stats().HungUp.Load())
	}
}

// TestWatchKeepsPipelinedByte: the hang-up watch may read the first byte
// of the next request; it must not be lost.
func TestWatchKeepsPipelinedByte(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			_ = r.Context().Done()             // start the watch
			time.Sleep(200 * time.Millisecond) // while the next request arrives
		}
		answer(w, r.URL.Path)
	})
	_, fast, srv := servers(t, h)
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, c, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	send(t, c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/wait", "/next"} {
		readWithin(t, c, 2*time.Second)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != want {
			t.Fatalf("got %q (%v), want %q", b, err, want)
		}
	}
	if srv.Stats().Watches.Load() != 1 || srv.Stats().HungUp.Load() != 0 {
		t.Fatalf("watches %d, hang-ups %d", srv.Stats().Watches.Load(), srv.Stats().HungUp.Load())
	}
}

// TestShutdown: idle connections close, the request in flight finishes,
// a handed-over connection is shut down by the fallback, Serve returns.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		answer(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: h, Fallback: &http.Server{Handler: h}, IdleTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	dial := func(raw string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		send(t, c, raw)
		return c
	}
	idle := dial("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	slow := dial("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	handed := dial("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	for _, c := range []net.Conn{idle, handed} {
		readWithin(t, c, 2*time.Second)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatal(resp)
		}
	}
	time.Sleep(50 * time.Millisecond) // the slow request is in its handler

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	for _, c := range []net.Conn{idle, handed} {
		readWithin(t, c, 2*time.Second)
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("an idle connection was not closed: %d %v", n, err)
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	readWithin(t, slow, 2*time.Second)
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("in-flight request: %v", resp)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// TestHeadTimeout: a client that starts a head and stalls, or that sends
// nothing at all, is cut off after ReadHeaderTimeout, as net/http does; a
// kept-alive one waits up to IdleTimeout for its next request (issue 12:
// a silent connection waited IdleTimeout).
func TestHeadTimeout(t *testing.T) {
	const head, idle = 200 * time.Millisecond, 2 * time.Second
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer(w, "x") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: h, Fallback: &http.Server{Handler: h}, ReadHeaderTimeout: head, IdleTimeout: idle}
	serve(t, srv, ln)
	for _, tc := range []struct {
		name, first, sent string // first: a request answered before sent
		min, max          time.Duration
	}{
		{"silent", "", "", head / 2, head + time.Second},
		{"partial head", "", "GET / HTTP/1.1\r\nHost: h\r\n", head / 2, head + time.Second},
		{"idle after a request", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "", idle / 2, idle + time.Second},
		{"partial head after a request", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET / HTTP/1.1\r\n", head / 2, head + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			readWithin(t, c, idle+3*time.Second)
			br := bufio.NewReader(c)
			if tc.first != "" {
				send(t, c, tc.first)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			send(t, c, tc.sent)
			_, err = br.ReadByte()
			if el := time.Since(start); err != io.EOF || el < tc.min || el > tc.max {
				t.Errorf("closed after %v (%v), want EOF between %v and %v", el, err, tc.min, tc.max)
			}
		})
	}
}

// TestPipelinedAfterSlow: each request's header deadline starts with that
// request. A request pipelined behind one whose handler outlasts
// ReadHeaderTimeout is served, as net/http serves it, whether its bytes
// came with the slow request, during it (read by the hang-up watch) or
// partly after it (issue 12: its deadline was counted from the slow
// request's first byte, and the connection closed).
func TestPipelinedAfterSlow(t *testing.T) {
	const head = 300 * time.Millisecond
	const slow = 3 * head
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			if r.URL.Query().Has("watch") {
				_ = r.Context().Done() // as an origin fetch does: the watch reads ahead
			}
			time.Sleep(slow)
		}
		answer(w, r.URL.Path)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: h, Fallback: &http.Server{Handler: h}, ReadHeaderTimeout: head, IdleTimeout: 10 * time.Second}
	serve(t, srv, ln)
	std, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveStd(t, &http.Server{Handler: h, ReadHeaderTimeout: head, IdleTimeout: 10 * time.Second}, std)

	req := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n" }
	type part struct {
		at time.Duration // after the first write
		b  string
	}
	// A part sent after the slow answer comes half a header timeout after
	// it: within its own deadline, well past the slow request's.
	after := slow + head/2
	for _, tc := range []struct {
		name  string
		parts []part
	}{
		{"whole, with the slow one", []part{{0, req("/slow") + req("/next")}}},
		{"during the slow one, watched", []part{{0, req("/slow?watch")}, {head / 2, req("/next")}}},
		{"during the slow one, split", []part{{0, req("/slow?watch")}, {head / 2, "GET /ne"}, {head, "xt HTTP/1.1\r\nHost: h\r\n\r\n"}}},
		{"started with the slow one, ended after it", []part{{0, req("/slow") + "GET /next HTTP/1.1\r\n"}, {after, "Host: h\r\n\r\n"}}},
		{"started during the slow one, ended after it", []part{{0, req("/slow?watch")}, {3 * head / 2, "GET /next HTTP/1.1\r\n"}, {after, "Host: h\r\n\r\n"}}},
	} {
		for _, addr := range []string{std.Addr().String(), ln.Addr().String()} {
			server := map[bool]string{true: "net/http", false: "h1"}[addr == std.Addr().String()]
			t.Run(tc.name+"/"+server, func(t *testing.T) {
				before := srv.Stats().HandedOver.Load()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				// The sender reports on sent (buffered: it never waits
				// for a test that has already failed).
				sent := make(chan error, 1)
				go func() {
					start := time.Now()
					for _, p := range tc.parts {
						time.Sleep(time.Until(start.Add(p.at)))
						if _, err := io.WriteString(c, p.b); err != nil {
							sent <- fmt.Errorf("sending %q: %w", p.b, err)
							return
						}
					}
					sent <- nil
				}()
				br := bufio.NewReader(c)
				readWithin(t, c, 5*time.Second)
				for _, want := range []string{"/slow", "/next"} {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("waiting for %s: %v", want, err)
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || string(b) != want {
						t.Fatalf("answered %q (%v), want %q", b, err, want)
					}
				}
				if err := <-sent; err != nil {
					t.Error(err)
				}
				if srv.Stats().HandedOver.Load() != before {
					t.Error("handed over to net/http")
				}
			})
		}
	}
}

// TestAnswerBeforeNextHead: the answer to a request goes out before the
// fast path waits for the rest of a pipelined head behind it (net/http
// flushes after every response); it was held back until that head was
// complete, so a client that waits for it before sending more waited out
// the header timeout.
func TestAnswerBeforeNextHead(t *testing.T) {
	std, fast, _ := servers(t, dumpHandler(t)) // ReadHeaderTimeout 5s
	for _, addr := range []string{std, fast} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		send(t, c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\n")
		for _, rest := range []string{"Host: h\r\n\r\n", ""} {
			readWithin(t, c, 2*time.Second)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			send(t, c, rest)
		}
	}
}

// TestEarlyHandOver: a head whose complete lines already rule the fast
// path out goes to net/http at once, not when its end arrives: an HTTP/0.9
// request line (no version) is answered 400 at once, byte for byte as
// net/http answers it, where the fast path waited for the header timeout
// (issue 12).
func TestEarlyHandOver(t *testing.T) {
	std, fast, srv := servers(t, dumpHandler(t)) // ReadHeaderTimeout 5s
	for _, raw := range []string{"GET /\r\n", "GET /index.html\r\n", "HEAD /\r\n", "GET / HTTP/1.1 x\r\n", "GET /%zz HTTP/1.1\r\n"} {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			var answers []string
			for _, addr := range []string{std, fast} {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				readWithin(t, c, 3*time.Second)
				start := time.Now()
				send(t, c, raw)
				got, err := io.ReadAll(c)
				if el := time.Since(start); err != nil || el > time.Second {
					t.Fatalf("%s: %q after %v (%v), want an answer at once", addr, got, el, err)
				}
				answers = append(answers, string(got))
			}
			if answers[0] != answers[1] || !strings.HasPrefix(answers[0], "HTTP/1.1 400 ") {
				t.Errorf("h1 answered %q, net/http %q", answers[1], answers[0])
			}
		})
	}
	// Header lines net/http would refuse: handed over as soon as they are
	// complete (net/http then answers as it would have).
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nNo colon\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 5\r\n",
		"POST / HTTP/1.1\r\n",
	} {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			before := srv.Stats().HandedOver.Load()
			c, err := net.Dial("tcp", fast)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			send(t, c, raw)
			for start := time.Now(); srv.Stats().HandedOver.Load() == before; time.Sleep(5 * time.Millisecond) {
				if time.Since(start) > 2*time.Second {
					t.Fatal("not handed over while the head is incomplete")
				}
			}
		})
	}
	// A head that may still be served is waited for.
	before := srv.Stats().HandedOver.Load()
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, c, "GET /x HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n")
	time.Sleep(100 * time.Millisecond)
	send(t, c, "X-A: b\r\n\r\n")
	readWithin(t, c, 2*time.Second)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("split head: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("split head: %v", resp)
	}
	if srv.Stats().HandedOver.Load() != before {
		t.Error("a head the fast path serves was handed over")
	}
}

// TestProxyThroughH1 runs httputil.ReverseProxy (as the gateway's pass
// path does) on the fast path: streaming, trailers and all.
func TestProxyThroughH1(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Checksum", "abc")
	})
	ol, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveStd(t, &http.Server{Handler: origin}, ol)
	target, err := url.Parse("http://" + ol.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	std, fast, _ := servers(t, proxy)
	raw := "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
	want, got := exchange(t, std, raw), exchange(t, fast, raw)
	if !slices.Equal(got, want) || !strings.Contains(got[0], "trailer X-Checksum") {
		t.Fatalf("h1\n%s\nnet/http\n%s", got, want)
	}
}

// TestConcurrentClients: many keep-alive clients through net/http's own
// client, with the race detector watching the connection loop.
func TestConcurrentClients(t *testing.T) {
	_, fast, srv := servers(t, dumpHandler(t))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				path := []string{"/", "/auto", "/big", "/flush"}[j%4]
				resp, err := client.Get(fmt.Sprintf("http://%s%s?c=%d&r=%d", fast, path, i, j))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(b), fmt.Sprintf("c=%d&r=%d", i, j)) {
					errs <- fmt.Errorf("%s: answered %q", path, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.Stats().Requests.Load(); n != 16*50 {
		t.Errorf("fast path served %d of %d", n, 16*50)
	}
}
