package origins_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/origins"
)

// countingServer is a real origin that counts the connections it accepts
// and those that have closed.
type countingServer struct {
	*httptest.Server
	opened, closed atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newTestTransport(t *testing.T, tune func(*http.Transport)) *origins.Transport {
	t.Helper()
	ht := http.DefaultTransport.(*http.Transport).Clone()
	if tune != nil {
		tune(ht)
	}
	tr := origins.NewTransport(ht)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// answer is what fetch read of a response.
type answer struct {
	status int
	length int64 // Content-Length, -1 when unknown
}

// fetch sends one request and reads its body to the end.
func fetch(t *testing.T, tr http.RoundTripper, method, url string) (answer, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	resp.Body.Close()
	return answer{resp.StatusCode, resp.ContentLength}, string(b)
}

func TestTransportReusesOneConnection(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			_, _ = io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "fixed")
		}
	})
	tr := newTestTransport(t, nil)
	for i := range 5 {
		if _, b := fetch(t, tr, http.MethodGet, s.URL+"/fixed"); b != "fixed" {
			t.Fatalf("round %d: body %q", i, b)
		}
		if resp, b := fetch(t, tr, http.MethodGet, s.URL+"/chunked"); b != "part one, part two" || resp.length != -1 {
			t.Fatalf("round %d: chunked body %q, length %d", i, b, resp.length)
		}
		if resp, b := fetch(t, tr, http.MethodHead, s.URL+"/fixed"); b != "" || resp.length != 5 {
			t.Fatalf("round %d: HEAD body %q, length %d", i, b, resp.length)
		}
		if resp, _ := fetch(t, tr, http.MethodGet, s.URL+"/empty"); resp.status != http.StatusNoContent {
			t.Fatalf("round %d: status %d", i, resp.status)
		}
		// A bodiless response gives its connection back without a Read.
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/304", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusNotModified {
			t.Fatalf("round %d: 304: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	if n := s.opened.Load(); n != 1 {
		t.Fatalf("25 sequential requests opened %d connections, want 1", n)
	}
}

func TestTransportBodyClosedEarlyClosesItsConnection(t *testing.T) {
	chunk := strings.Repeat("x", 64<<10)
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		for range 1 << 14 { // 1 GiB: nobody should read it all
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	tr := newTestTransport(t, nil)
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/big", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp.Body.Close()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Close took %v: it drained the body", d)
	}
	if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Fatalf("Read after Close: %v", err)
	}
	waitFor(t, 2*time.Second, "the server to see its connection closed", func() bool { return s.closed.Load() == 1 })
	if _, b := fetch(t, tr, http.MethodGet, s.URL+"/small"); b != "ok" {
		t.Fatalf("body %q", b)
	}
	if n := s.opened.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the early-closed one is not reused)", n)
	}
}

// rawServer answers each connection with serve, on a real listener.
func rawServer(t *testing.T, serve func(n int, c net.Conn)) (url string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(accepted.Add(1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(n, c)
			}()
		}
	}()
	return "http://" + ln.Addr().String(), accepted
}

// readRequest reads one request head off c.
func readRequest(br *bufio.Reader) error {
	tp := textproto.NewReader(br)
	for {
		l, err := tp.ReadLine()
		if err != nil || l == "" {
			return err
		}
	}
}

func TestTransportRetriesAStaleIdleConnection(t *testing.T) {
	// Each connection answers one request as keep-alive, then the server
	// closes it: what an origin's idle timeout does between two requests.
	url, accepted := rawServer(t, func(n int, c net.Conn) {
		if readRequest(bufio.NewReader(c)) == nil {
			_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n%02d", n)
		}
	})
	tr := newTestTransport(t, nil)
	if _, b := fetch(t, tr, http.MethodGet, url+"/"); b != "01" {
		t.Fatalf("first body %q", b)
	}
	time.Sleep(20 * time.Millisecond) // the server's close reaches us
	if _, b := fetch(t, tr, http.MethodGet, url+"/"); b != "02" {
		t.Fatalf("second body %q, want the answer of a second connection", b)
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestTransportInformationalResponses(t *testing.T) {
	url, _ := rawServer(t, func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		for readRequest(br) == nil {
			hints := 1
			if n > 1 { // the second connection gets too many
				hints = 6
			}
			for range hints {
				_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
		}
	})
	tr := newTestTransport(t, nil)
	var got []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body" || len(got) != 1 || got[0] != "103 </style.css>; rel=preload" {
		t.Fatalf("body %q, 1xx seen %q", b, got)
	}
	tr.CloseIdleConnections()
	req, _ = http.NewRequest(http.MethodGet, url+"/", nil)
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("six 1xx responses in a row were accepted")
	}
}

func TestTransportBoundsTheResponseHead(t *testing.T) {
	url, _ := rawServer(t, func(_ int, c net.Conn) {
		if readRequest(bufio.NewReader(c)) != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		for range 16 { // 1 MiB of header in a few long fields, or until we are cut off
			if _, err := io.WriteString(c, "X-Filler: "+strings.Repeat("f", 64<<10)+"\r\n"); err != nil {
				return
			}
		}
		_, _ = io.WriteString(c, "Content-Length: 0\r\n\r\n")
	})
	tr := newTestTransport(t, func(ht *http.Transport) { ht.MaxResponseHeaderBytes = 16 << 10 })
	req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a 1 MiB response head was read with a 16 KiB bound")
	}
}

func TestTransportContextEndsABlockedBodyRead(t *testing.T) {
	release := make(chan struct{})
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release
	})
	defer close(release)
	tr := newTestTransport(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("%q %v", buf, err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = resp.Body.Read(buf)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked Read ended with %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the cancel took %v to end the Read", d)
	}
	resp.Body.Close()
}

func TestTransportConnectionClose(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	})
	tr := newTestTransport(t, nil)
	for range 3 {
		if _, b := fetch(t, tr, http.MethodGet, s.URL+"/"); b != "bye" {
			t.Fatalf("body %q", b)
		}
	}
	if n := s.opened.Load(); n != 3 {
		t.Fatalf("%d connections for 3 Connection: close answers, want 3", n)
	}
}

func TestTransportClosesIdleConnectionsAfterTheirTimeout(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	tr := newTestTransport(t, func(ht *http.Transport) { ht.IdleConnTimeout = 100 * time.Millisecond })
	fetch(t, tr, http.MethodGet, s.URL+"/")
	waitFor(t, 2*time.Second, "the idle connection to be closed with no request after it", func() bool { return s.closed.Load() == 1 })
}

func TestTransportKeepsAtMostMaxIdlePerHost(t *testing.T) {
	release := make(chan struct{})
	var inside sync.WaitGroup
	inside.Add(4)
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		inside.Done()
		<-release
		_, _ = io.WriteString(w, "ok")
	})
	tr := newTestTransport(t, func(ht *http.Transport) { ht.MaxIdleConnsPerHost = 2 })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { fetch(t, tr, http.MethodGet, s.URL+"/") })
	}
	inside.Wait() // four connections at once
	close(release)
	wg.Wait()
	waitFor(t, 2*time.Second, "the two idle connections past the bound to be closed", func() bool { return s.closed.Load() == 2 })
}

func TestTransportLeavesTheRestToNetHTTP(t *testing.T) {
	h := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s %s %s", r.Proto, r.Method, b)
	}
	tls := httptest.NewUnstartedServer(http.HandlerFunc(h))
	tls.EnableHTTP2 = true
	tls.StartTLS()
	defer tls.Close()
	plain := newCountingServer(t, h)
	tr := newTestTransport(t, func(ht *http.Transport) {
		ht.TLSClientConfig = tls.Client().Transport.(*http.Transport).TLSClientConfig
	})
	if _, b := fetch(t, tr, http.MethodGet, tls.URL+"/"); b != "HTTP/2.0 GET " {
		t.Fatalf("https: %q, want HTTP/2 through net/http", b)
	}
	req, _ := http.NewRequest(http.MethodPost, plain.URL+"/", strings.NewReader("payload"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/1.1 POST payload" {
		t.Fatalf("POST: %q", b)
	}
}

func TestTransportConcurrentRequests(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.URL.Path) })
	tr := newTestTransport(t, func(ht *http.Transport) { ht.MaxIdleConnsPerHost = 16 })
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				p := fmt.Sprintf("/%d/%d", g, i)
				req, _ := http.NewRequest(http.MethodGet, s.URL+p, nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != p {
					t.Errorf("%s: body %q, %v", p, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := s.opened.Load(); n > 16 {
		t.Fatalf("%d connections for 16 concurrent clients", n)
	}
}
