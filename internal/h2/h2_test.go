package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// pair is the same handler behind net/http's h2 server (ref) and ours
// (addr), with one certificate and one client for both.
type pair struct {
	ref    *httptest.Server
	addr   string
	srv    *Server
	client *http.Client
}

func newPair(t *testing.T, h http.Handler, tune func(*Server)) *pair {
	t.Helper()
	ref := httptest.NewUnstartedServer(h)
	ref.EnableHTTP2 = true
	ref.Config.ErrorLog = log.New(io.Discard, "", 0) // the abuse tests make it complain
	ref.StartTLS()
	t.Cleanup(ref.Close)
	conf := ref.TLS.Clone()
	conf.NextProtos = []string{"h2"}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: h}
	if tune != nil {
		tune(srv)
	}
	go serveListener(srv, ln)
	t.Cleanup(func() {
		_ = ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	c := ref.Client()
	c.Timeout = 20 * time.Second
	return &pair{ref: ref, addr: "https://" + ln.Addr().String(), srv: srv, client: c}
}

func serveListener(srv *Server, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			tc := c.(*tls.Conn)
			if tc.Handshake() != nil {
				_ = tc.Close()
				return
			}
			srv.ServeConn(tc)
		}()
	}
}

type answer struct {
	status int
	proto  string
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, url, body string, kv ...string) answer {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rb)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	resp.Header.Del("Date")
	return answer{resp.StatusCode, resp.Proto, resp.Header, string(b)}
}

var modTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// gatewayish answers like the gateway's cases: a hit with prebuilt
// headers, a miss that waits (on the context, as an origin fetch does),
// conditional and range requests, a POST echoed, Early Hints, a body
// larger than every window, a streamed response.
func gatewayish(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/hit":
		h := w.Header()
		h["Cache-Control"] = []string{"max-age=60"}
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"5"}
		h["Age"] = []string{"3"}
		_, _ = w.Write([]byte("hello"))
	case "/miss":
		select {
		case <-time.After(20 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "fetched %s", r.URL.RawQuery)
	case "/file":
		w.Header().Set("Etag", `"v1"`)
		http.ServeContent(w, r, "f.txt", modTime, strings.NewReader("0123456789abcdefghij"))
	case "/echo":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Len", fmt.Sprint(len(b)))
		_, _ = w.Write(b)
	case "/hints":
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = w.Write([]byte("after hints"))
	case "/big":
		_, _ = w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16)) // 1 MiB
	case "/stream":
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
		}
	case "/overlong":
		w.Header().Set("Content-Length", "3")
		_, err := w.Write([]byte("abcdef"))
		w.Header().Set("X-Err", fmt.Sprint(err)) // too late to be sent: the head is out with the body
		_, _ = w.Write([]byte("abc"))
	case "/nocontent":
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// TestDifferential sends the same requests through Go's h2 client to
// net/http's h2 server and to ours: same status, headers and body.
func TestDifferential(t *testing.T) {
	p := newPair(t, http.HandlerFunc(gatewayish), nil)
	big := strings.Repeat("x", 300<<10) // beyond the 64 KiB stream window
	for _, tc := range []struct {
		name, method, path, body string
		kv                       []string
	}{
		{"hit", "GET", "/hit", "", nil},
		{"hit HEAD", "HEAD", "/hit", "", nil},
		{"miss", "GET", "/miss?a=1", "", nil},
		{"304", "GET", "/file", "", []string{"If-None-Match", `"v1"`}},
		{"HEAD file", "HEAD", "/file", "", nil},
		{"range", "GET", "/file", "", []string{"Range", "bytes=2-5"}},
		{"multi range", "GET", "/file", "", []string{"Range", "bytes=0-1,4-5"}},
		{"POST small", "POST", "/echo", "ping", nil},
		{"POST large", "POST", "/echo", big, nil},
		{"103", "GET", "/hints", "", nil},
		{"1 MiB body", "GET", "/big", "", nil},
		{"stream", "GET", "/stream", "", nil},
		{"204", "GET", "/nocontent", "", nil},
		{"404", "GET", "/nope", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := do(t, p.client, tc.method, p.ref.URL+tc.path, tc.body, tc.kv...)
			got := do(t, p.client, tc.method, p.addr+tc.path, tc.body, tc.kv...)
			if got.proto != "HTTP/2.0" || want.proto != "HTTP/2.0" {
				t.Fatalf("protocols %s and %s, want HTTP/2.0", want.proto, got.proto)
			}
			got.body = unboundary(got.header, got.body)
			want.body = unboundary(want.header, want.body)
			if got.status != want.status || got.body != want.body {
				t.Fatalf("ours %d %.80q, net/http %d %.80q", got.status, got.body, want.status, want.body)
			}
			if !sameHeader(got.header, want.header) {
				t.Fatalf("headers:\nours     %v\nnet/http %v", got.header, want.header)
			}
		})
	}
}

// unboundary blanks a multipart body's random boundary, in the body and
// its Content-Type.
func unboundary(h http.Header, body string) string {
	ct := h.Get("Content-Type")
	_, b, ok := strings.Cut(ct, "boundary=")
	if !ok {
		return body
	}
	h.Set("Content-Type", strings.ReplaceAll(ct, b, "B"))
	return strings.ReplaceAll(body, b, "B")
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestEarlyHints sees the 103 itself, before the final response.
func TestEarlyHints(t *testing.T) {
	p := newPair(t, http.HandlerFunc(gatewayish), nil)
	var got []int
	var mu sync.Mutex
	ctx := httptraceCtx(func(code int) { mu.Lock(); got = append(got, code); mu.Unlock() })
	req, _ := http.NewRequestWithContext(ctx, "GET", p.addr+"/hints", nil)
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []int{103}) || resp.StatusCode != 200 {
		t.Fatalf("1xx %v then %d, want [103] then 200", got, resp.StatusCode)
	}
}

// TestConcurrentStreams runs many streams of each kind at once on one
// connection: hits inline, misses and bodies off the loop.
func TestConcurrentStreams(t *testing.T) {
	p := newPair(t, http.HandlerFunc(gatewayish), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, body, want := "/hit", "", "hello"
			switch i % 3 {
			case 1:
				path, want = fmt.Sprintf("/miss?%d", i), fmt.Sprintf("fetched %d", i)
			case 2:
				path, body = "/echo", strings.Repeat("b", i*100)
				want = body
			}
			method := "GET"
			if body != "" {
				method = "POST"
			}
			req, _ := http.NewRequest(method, p.addr+path, strings.NewReader(body))
			resp, err := p.client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != want {
				errs <- fmt.Errorf("%s: %v %.40q want %.40q", path, err, b, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := p.srv.Stats()
	if st.Streams.Load() != 300 || st.Detached.Load() < 200 {
		t.Fatalf("streams %d, detached %d: want 300 and at least the 200 misses and bodies", st.Streams.Load(), st.Detached.Load())
	}
	if st.Detached.Load() == 300 {
		t.Fatalf("every stream left the read loop: the hits were not served inline")
	}
}

// TestExpectContinue: a client that waits for 100 Continue gets it when
// the handler reads the body, not after its own timeout.
func TestExpectContinue(t *testing.T) {
	p := newPair(t, http.HandlerFunc(gatewayish), nil)
	tr := p.client.Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 10 * time.Second
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	start := time.Now()
	a := do(t, c, "POST", p.addr+"/echo", "waited", "Expect", "100-continue")
	if a.status != 200 || a.body != "waited" || time.Since(start) > 5*time.Second {
		t.Fatalf("%d %q after %v, want the echo well before the client's 10s", a.status, a.body, time.Since(start))
	}
}

// TestWriteBeyondContentLength: a Write past the Content-Length the
// handler set fails (net/http's server sends it while the head is
// buffered, and the client refuses the response), the rest is served.
func TestWriteBeyondContentLength(t *testing.T) {
	p := newPair(t, http.HandlerFunc(gatewayish), nil)
	if a := do(t, p.client, "GET", p.addr+"/overlong", ""); a.status != 200 || a.body != "abc" || a.header.Get("Content-Length") != "3" {
		t.Fatalf("%d %q %v, want 200 abc with Content-Length 3", a.status, a.body, a.header)
	}
}

// TestMayBlockFreesTheLoop: a handler that announces a wait that does not
// go through the request's Done (MayBlock, under a context with values of
// its own on top; or asking Done of WithoutCancel's context, as valkey-go
// does before a round trip) leaves the read loop first, so another stream
// on the same connection is answered while it waits. Without the
// announcement the other stream waits behind it: the case shows the test
// can tell.
func TestMayBlockFreesTheLoop(t *testing.T) {
	type key struct{}
	const hold = 600 * time.Millisecond
	for _, tc := range []struct {
		name     string
		announce func(r *http.Request)
	}{
		{"MayBlock", func(r *http.Request) { MayBlock(context.WithValue(r.Context(), key{}, 1)) }},
		{"WithoutCancel.Done", func(r *http.Request) {
			if WithoutCancel(context.WithValue(r.Context(), key{}, 1)).Done() != nil {
				panic("WithoutCancel's Done is not nil")
			}
		}},
		{"none", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					if tc.announce != nil {
						tc.announce(r)
					}
					started <- struct{}{}
					time.Sleep(hold) // a wait the server cannot see
				}
				_, _ = io.WriteString(w, "ok")
			})
			p := newPair(t, h, nil)
			if err := p.get("/warm"); err != nil { // one connection, then reused
				t.Fatal(err)
			}
			slow := make(chan error, 1)
			go func() { slow <- p.get("/slow") }()
			<-started
			start := time.Now()
			if err := p.get("/fast"); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if err := <-slow; err != nil {
				t.Fatal(err)
			}
			if tc.announce != nil && took > hold/2 {
				t.Errorf("the other stream took %v while the announced wait held the loop", took)
			}
			if tc.announce == nil && took < hold/2 {
				t.Errorf("the other stream took %v: without MayBlock it should have waited behind the handler", took)
			}
		})
	}
}

func (p *pair) get(path string) error {
	resp, err := p.client.Get(p.addr + path)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

// TestWithoutCancelAfterTheRequest: WithoutCancel's context outlives its
// request, as the gateway's lookup needs (valkey-go's timeout contexts ask
// their parent for Done when their timer fires, maybe after the request):
// a context derived from it whose timer fires after the response, and
// Done, Err and Value asked from another goroutine then, neither fail nor
// race (-race) nor hand a loop on; the values stay the handler's. A
// second call in one request gets a context of its own.
func TestWithoutCancelAfterTheRequest(t *testing.T) {
	type key struct{}
	type kept struct {
		first, second context.Context
		timed         context.Context
		cancel        context.CancelFunc
	}
	got := make(chan kept, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var k kept
		k.first = WithoutCancel(context.WithValue(r.Context(), key{}, "first"))
		k.second = WithoutCancel(context.WithValue(r.Context(), key{}, "second"))
		k.timed, k.cancel = context.WithTimeout(k.first, 100*time.Millisecond)
		got <- k
		_, _ = io.WriteString(w, "ok")
	})
	p := newPair(t, h, nil)
	if err := p.get("/"); err != nil {
		t.Fatal(err)
	}
	k := <-got
	defer k.cancel()
	detached := p.srv.Stats().Detached.Load()
	<-k.timed.Done() // the timer fires after the response: removeChild asks k.first for Done
	if k.timed.Err() != context.DeadlineExceeded {
		t.Errorf("derived context: %v, want the deadline", k.timed.Err())
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if k.first.Done() != nil || k.first.Err() != nil {
				t.Error("WithoutCancel's context is canceled")
			}
		})
	}
	wg.Wait()
	if v1, v2 := k.first.Value(key{}), k.second.Value(key{}); v1 != "first" || v2 != "second" {
		t.Errorf("values %v, %v; want first, second", v1, v2)
	}
	if n := p.srv.Stats().Detached.Load(); n != detached {
		t.Errorf("Done after the request handed a loop on (%d detached, was %d)", n, detached)
	}
	if WithoutCancel(context.Background()) != nil {
		t.Error("WithoutCancel outside a request of this package is not nil")
	}
}
