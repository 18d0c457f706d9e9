package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn is a client speaking frames to the server of p.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hb   bytes.Buffer
}

func dialRaw(t *testing.T, p *pair) *rawConn {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(p.addr, "https://"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	r := &rawConn{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	r.enc = hpack.NewEncoder(&r.hb)
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rawConn) headers(id uint32, path string, end bool, extra ...string) error {
	r.hb.Reset()
	kv := append([]string{":method", "GET", ":scheme", "https", ":authority", "x.test", ":path", path}, extra...)
	for i := 0; i+1 < len(kv); i += 2 {
		_ = r.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hb.Bytes(), EndStream: end, EndHeaders: true})
}

// frames reads until the connection closes or goes quiet for d.
func (r *rawConn) frames(d time.Duration, each func(http2.Frame)) {
	for {
		_ = r.conn.SetReadDeadline(time.Now().Add(d))
		f, err := r.fr.ReadFrame()
		if err != nil {
			return
		}
		each(f)
	}
}

// slowHandler waits 200ms or for its context, counting the handlers
// running at once.
func slowHandler(running, peak *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "done")
	}
}

// TestRapidResetGoAway: HEADERS then RST_STREAM at once, in a burst
// (CVE-2023-44487): the connection gets GOAWAY ENHANCE_YOUR_CALM once
// its resets pass the budget, and never runs more handlers than
// MaxConcurrentStreams.
func TestRapidResetGoAway(t *testing.T) {
	var running, peak atomic.Int64
	p := newPair(t, slowHandler(&running, &peak), func(s *Server) { s.MaxConcurrentStreams = 20 })
	r := dialRaw(t, p)
	sent := 0
	for i := range 2000 {
		id := uint32(2*i + 1)
		if r.headers(id, fmt.Sprintf("/slow/%d", i), true) != nil || r.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		sent++
	}
	var code http2.ErrCode = 0xff
	r.frames(3*time.Second, func(f http2.Frame) {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			code = g.ErrCode
		}
	})
	if code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("after %d HEADERS+RST_STREAM: GOAWAY code %v, want ENHANCE_YOUR_CALM", sent, code)
	}
	if pk := peak.Load(); pk > 20 {
		t.Fatalf("%d handlers at once on a connection limited to 20 streams", pk)
	}
	// The server still serves.
	if a := do(t, p.client, "GET", p.addr+"/after", ""); a.status != 200 || a.body != "done" {
		t.Fatalf("after the burst: %d %q", a.status, a.body)
	}
	t.Logf("%d HEADERS+RST_STREAM sent before GOAWAY; peak handlers %d", sent, peak.Load())
}

// TestMaxConcurrentStreams: streams above the limit get REFUSED_STREAM;
// the ones within it are answered.
func TestMaxConcurrentStreams(t *testing.T) {
	var running, peak atomic.Int64
	p := newPair(t, slowHandler(&running, &peak), func(s *Server) { s.MaxConcurrentStreams = 5 })
	r := dialRaw(t, p)
	for i := range 8 {
		if err := r.headers(uint32(2*i+1), "/slow", true); err != nil {
			t.Fatal(err)
		}
	}
	refused, answered := 0, 0
	r.frames(2*time.Second, func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.ErrCode == http2.ErrCodeRefusedStream {
				refused++
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				answered++
			}
		}
	})
	if refused != 3 || answered != 5 {
		t.Fatalf("%d refused, %d answered; want 3 and 5", refused, answered)
	}
}

// TestHeaderListTooLarge: a header list over MaxHeaderListBytes gets 431
// and the connection goes on (its HPACK state intact).
func TestHeaderListTooLarge(t *testing.T) {
	p := newPair(t, http.HandlerFunc(gatewayish), func(s *Server) { s.MaxHeaderListBytes = 2048 })
	r := dialRaw(t, p)
	// Two fields each within the string limit, over the list limit together.
	if err := r.headers(1, "/hit", true, "x-big1", strings.Repeat("a", 1200), "x-big2", strings.Repeat("b", 1200)); err != nil {
		t.Fatal(err)
	}
	if err := r.headers(3, "/hit", true); err != nil {
		t.Fatal(err)
	}
	status := map[uint32]string{}
	r.frames(2*time.Second, func(f http2.Frame) {
		if mh, ok := f.(*http2.MetaHeadersFrame); ok {
			status[mh.StreamID] = mh.PseudoValue("status")
		}
	})
	if status[1] != "431" || status[3] != "200" {
		t.Fatalf("statuses %v, want 1:431 3:200", status)
	}
}

// TestIdleAndPrefaceTimeouts: a connection that sends no preface, and
// one that stays idle after it, are closed.
func TestIdleAndPrefaceTimeouts(t *testing.T) {
	p := newPair(t, http.HandlerFunc(gatewayish), func(s *Server) {
		s.PrefaceTimeout, s.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	conn, err := tls.Dial("tcp", strings.TrimPrefix(p.addr, "https://"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, conn) // the server's SETTINGS, then EOF
	if err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("no preface: closed after %v (%v), want about 300ms", time.Since(start), err)
	}
	r := dialRaw(t, p)
	start = time.Now()
	var goaway bool
	r.frames(10*time.Second, func(f http2.Frame) { _, goaway = f.(*http2.GoAwayFrame) })
	if !goaway || time.Since(start) > 5*time.Second {
		t.Fatalf("idle: GOAWAY %v after %v, want GOAWAY after about 300ms", goaway, time.Since(start))
	}
}

// TestShutdownGraceful: Shutdown sends GOAWAY, lets the stream in flight
// finish its response, then closes the connection and returns.
func TestShutdownGraceful(t *testing.T) {
	var running, peak atomic.Int64
	p := newPair(t, slowHandler(&running, &peak), nil)
	r := dialRaw(t, p)
	if err := r.headers(1, "/slow", true); err != nil {
		t.Fatal(err)
	}
	for running.Load() == 0 { // the handler has started
		time.Sleep(time.Millisecond)
	}
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc <- p.srv.Shutdown(ctx)
	}()
	var goaway, ended bool
	var body string
	r.frames(5*time.Second, func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			goaway = !ended // before the response's end
		case *http2.DataFrame:
			body += string(f.Data())
			ended = ended || f.StreamEnded()
		}
	})
	if err := <-errc; err != nil || !goaway || !ended || body != "done" {
		t.Fatalf("Shutdown %v; GOAWAY before the end %v, stream ended %v with %q", err, goaway, ended, body)
	}
}

// TestLongStreamOutlivesPrefaceTimeout: the preface's deadline ends with
// the preface; a stream that takes longer is still answered.
func TestLongStreamOutlivesPrefaceTimeout(t *testing.T) {
	p := newPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(600 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "late")
	}), func(s *Server) { s.PrefaceTimeout = 150 * time.Millisecond })
	// A raw client (Go's would retry on a new connection) whose preface,
	// SETTINGS and HEADERS arrive in one write: the server reads the
	// HEADERS before it ever waits for input.
	conn, err := tls.Dial("tcp", strings.TrimPrefix(p.addr, "https://"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out bytes.Buffer
	r := &rawConn{t: t, conn: conn, fr: http2.NewFramer(&out, conn)}
	r.enc = hpack.NewEncoder(&r.hb)
	out.WriteString(http2.ClientPreface)
	if r.fr.WriteSettings() != nil || r.headers(1, "/", true) != nil {
		t.Fatal("framing")
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	var body string
	var goaway bool
	r.frames(2*time.Second, func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.DataFrame:
			body += string(f.Data())
		case *http2.GoAwayFrame:
			goaway = true
		}
	})
	if body != "late" || goaway {
		t.Fatalf("body %q, GOAWAY %v; want late and no GOAWAY", body, goaway)
	}
}
