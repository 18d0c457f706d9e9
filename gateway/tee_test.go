package gateway_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/testutil"
)

// Streaming a fill (issue 12, tee.go): a body longer than its first piece
// reaches its clients while the origin is still sending it, read once by
// the fill, and is stored once complete.

const csStreaming = "edgecache; fwd=uri-miss; detail=streaming"

// teeBody is the body the stream origins send: distinct bytes, so that a
// reader given the wrong offset fails.
func teeBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%23)
	}
	return b
}

// halfOrigin serves path with body: the first half, flushed, then it waits
// for release before the rest. half is closed once the first half is out.
// withLength sends Content-Length, else the body is chunked.
func halfOrigin(o *testutil.Origin, path string, body []byte, withLength bool) (half, release chan struct{}) {
	half, release = make(chan struct{}), make(chan struct{})
	o.Handle(path, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		mid := len(body) / 2
		_, _ = w.Write(body[:mid])
		w.(http.Flusher).Flush()
		if n == 1 {
			close(half)
			select {
			case <-release:
			case <-time.After(20 * time.Second):
				return // the test failed; don't hold the server
			}
		}
		_, _ = w.Write(body[mid:])
	})
	return half, release
}

// framings are the two ways a body is sent: chunked, or with
// Content-Length (which the gateway sends at once).
var framings = []struct {
	name       string
	withLength bool
}{{"chunked", false}, {"content-length", true}}

// streamClient is one client connection with its response head read.
type streamClient struct {
	conn net.Conn
	resp *http.Response
}

func openStream(t *testing.T, addr, req string, readBuf int) *streamClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if readBuf > 0 {
		// A small receive buffer: the kernel does not drain the gateway
		// on a client's behalf that does not read.
		_ = conn.(*net.TCPConn).SetReadBuffer(readBuf)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
	if err != nil {
		t.Fatalf("reading the head: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &streamClient{conn: conn, resp: resp}
}

func (c *streamClient) read(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c.resp.Body, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

func (c *streamClient) rest() ([]byte, error) {
	b, err := io.ReadAll(c.resp.Body)
	return b, err
}

// waitHit GETs path until it is a hit (the store follows the body's end).
func waitHit(t *testing.T, addr, path string) rawResponse {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := rawDo(t, addr, get1(path))
		if strings.Contains(r.header.Get("Cache-Status"), "hit") {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became a hit: last %d %q", path, r.status, r.header.Get("Cache-Status"))
		}
	}
}

// A request that misses while the body streams joins the fill: it gets
// its first bytes before the origin has sent the body, and the origin is
// asked once; the entry is stored once, whole.
func TestTeeJoinerStreamsBeforeOriginEnds(t *testing.T) {
	for _, tc := range framings {
		t.Run(tc.name, func(t *testing.T) {
			o := testutil.NewOrigin(t)
			body := teeBody(512 << 10)
			half, release := halfOrigin(o, "/s", body, tc.withLength)
			addr := safeGateway(t, o, nil)

			leader := openStream(t, addr, get1("/s"), 0)
			<-half
			joiner := openStream(t, addr, get1("/s"), 0)
			for name, c := range map[string]*streamClient{"leader": leader, "joiner": joiner} {
				if cs := c.resp.Header.Get("Cache-Status"); cs != csStreaming {
					t.Errorf("%s: Cache-Status %q, want %q", name, cs, csStreaming)
				}
				if wantCL := int64(-1); tc.withLength && c.resp.ContentLength != int64(len(body)) || !tc.withLength && c.resp.ContentLength != wantCL {
					t.Errorf("%s: Content-Length %d", name, c.resp.ContentLength)
				}
				// Before the origin sends its second half.
				if got := c.read(t, len(body)/4); !bytes.Equal(got, body[:len(body)/4]) {
					t.Fatalf("%s: the first bytes differ", name)
				}
			}
			close(release)
			for name, c := range map[string]*streamClient{"leader": leader, "joiner": joiner} {
				rest, err := c.rest()
				if err != nil || !bytes.Equal(rest, body[len(body)/4:]) {
					t.Fatalf("%s: the rest: %d bytes, %v", name, len(rest), err)
				}
			}
			if r := waitHit(t, addr, "/s"); r.body != string(body) {
				t.Fatalf("the stored body differs (%d bytes)", len(r.body))
			}
			if n := o.Count("/s"); n != 1 {
				t.Fatalf("the origin was asked %d times, want 1", n)
			}
		})
	}
}

// A reader that does not read holds neither the fill nor another reader:
// the leader reads nothing while a request that joined gets the whole
// body; the leader is then served whole too.
func TestTeeReaderThatDoesNotReadDelaysNobody(t *testing.T) {
	o := testutil.NewOrigin(t)
	body := teeBody(6 << 20) // far more than the socket buffers hold
	half, release := halfOrigin(o, "/slow", body, false)
	addr := safeGateway(t, o, nil)

	stalled := openStream(t, addr, get1("/slow"), 32<<10)
	<-half
	joiner := openStream(t, addr, get1("/slow"), 0)
	close(release)
	done := make(chan error, 1)
	go func() {
		b, err := joiner.rest()
		if err == nil && !bytes.Equal(b, body) {
			err = fmt.Errorf("%d bytes, want %d", len(b), len(body))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("joiner: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the joiner did not finish while the leader did not read")
	}
	if cs := joiner.resp.Header.Get("Cache-Status"); cs != csStreaming {
		t.Errorf("joiner: Cache-Status %q", cs)
	}
	if b, err := stalled.rest(); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("the stalled leader: %d bytes, %v", len(b), err)
	}
	waitHit(t, addr, "/slow")
	if n := o.Count("/slow"); n != 1 {
		t.Fatalf("the origin was asked %d times, want 1", n)
	}
}

// The leader's client leaving (or asking HEAD) does not lose the store:
// the fill reads on for it.
func TestTeeLeaderGoneStillStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  string
	}{
		{"disconnect", get1("/gone")},
		{"head", "HEAD /gone HTTP/1.1\r\nHost: edge.example\r\nConnection: close\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testutil.NewOrigin(t)
			body := teeBody(1 << 20)
			half, release := halfOrigin(o, "/gone", body, false)
			addr := safeGateway(t, o, nil)
			leader := openStream(t, addr, tc.req, 0)
			<-half
			if cs := leader.resp.Header.Get("Cache-Status"); cs != csStreaming {
				t.Errorf("Cache-Status %q, want %q", cs, csStreaming)
			}
			leader.conn.Close()
			close(release)
			if r := waitHit(t, addr, "/gone"); r.body != string(body) {
				t.Fatalf("stored %d bytes, want %d", len(r.body), len(body))
			}
			if n := o.Count("/gone"); n != 1 {
				t.Fatalf("the origin was asked %d times, want 1", n)
			}
		})
	}
}

// An origin that fails mid-body ends the responses short (the client
// can tell), and nothing is stored.
func TestTeeOriginErrorTruncates(t *testing.T) {
	for _, tc := range framings {
		t.Run(tc.name, func(t *testing.T) {
			o := testutil.NewOrigin(t)
			body := teeBody(512 << 10)
			o.Handle("/broken", func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Cache-Control", "max-age=60")
				if tc.withLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				_, _ = w.Write(body[:200<<10])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // the origin dies mid-body
			})
			addr := safeGateway(t, o, nil)
			c := openStream(t, addr, get1("/broken"), 0)
			if cs := c.resp.Header.Get("Cache-Status"); cs != csStreaming {
				t.Errorf("Cache-Status %q, want %q", cs, csStreaming)
			}
			got, err := c.rest()
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) >= len(body) {
				t.Fatalf("read %d bytes, err %v; want a truncated body (unexpected EOF)", len(got), err)
			}
			if !bytes.Equal(got, body[:len(got)]) {
				t.Fatal("the bytes before the failure differ")
			}
			if r := rawDo(t, addr, get1("/broken")); strings.Contains(r.header.Get("Cache-Status"), "hit") {
				t.Fatalf("a truncated body was stored: %q", r.header.Get("Cache-Status"))
			}
			if n := o.Count("/broken"); n != 2 {
				t.Fatalf("the origin was asked %d times, want 2 (nothing stored)", n)
			}
		})
	}
}

// A body that crosses max_body_bytes while it streams keeps streaming to
// every reader attached, whole, and is not stored.
func TestTeeCrossesMaxBody(t *testing.T) {
	o := testutil.NewOrigin(t)
	body := teeBody(2 << 20)
	half, release := halfOrigin(o, "/big", body, false)
	addr := safeGateway(t, o, func(c *config.Config) { c.Routes[0].MaxBodyBytes = 300 << 10 })
	leader := openStream(t, addr, get1("/big"), 0)
	<-half
	// The fill crossed the bound already: a new request cannot join
	// (the start of the body is gone once written) and fetches itself.
	close(release)
	b, err := leader.rest()
	if err != nil || !bytes.Equal(b, body) {
		t.Fatalf("leader: %d bytes, %v; want %d", len(b), err, len(body))
	}
	if cs := leader.resp.Header.Get("Cache-Status"); cs != csStreaming {
		t.Errorf("Cache-Status %q, want %q", cs, csStreaming)
	}
	r := rawDo(t, addr, get1("/big"))
	if r.body != string(body) || r.header.Get("Cache-Status") != "edgecache; fwd=uri-miss; detail=streaming" {
		t.Fatalf("next: %d bytes, %q (want a miss again)", len(r.body), r.header.Get("Cache-Status"))
	}
	if n := o.Count("/big"); n != 2 {
		t.Fatalf("the origin was asked %d times, want 2 (nothing stored)", n)
	}
}

// A body that ends within the first piece is answered as before: stored,
// then answered, with its Content-Length.
func TestTeeSmallBodyAnsweredWhole(t *testing.T) {
	o := testutil.NewOrigin(t)
	o.Handle("/small", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write(teeBody(3000)) // chunked (past net/http's 2 KiB buffer)
	})
	addr := safeGateway(t, o, nil)
	r := rawDo(t, addr, get1("/small"))
	if r.header.Get("Cache-Status") != "edgecache; fwd=uri-miss; stored" || r.header.Get("Content-Length") != "3000" {
		t.Fatalf("%q, Content-Length %q", r.header.Get("Cache-Status"), r.header.Get("Content-Length"))
	}
}
