package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/testutil"
)

// TestRefreshOutlivesRequest: the fast path (internal/h1) reuses a
// connection's *http.Request, header map and URL for its next request,
// so work that outlives a request must have copied what it reads. A
// background refresh started by a stale hit reads the request's fields
// after the origin answers (the Vary variant it stores under is the
// request's X-Req); by then the same connection has served a pipelined
// request with other fields. The refresh must still store under the
// first request's variant and have asked the origin for its URL.
func TestRefreshOutlivesRequest(t *testing.T) {
	o := testutil.NewOrigin(t)
	asked, gate := make(chan struct{}), make(chan struct{})
	o.Handle("/swr", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 2 { // the refresh: held until the connection has moved on
			close(asked)
			select {
			case <-gate:
			case <-time.After(10 * time.Second):
			}
		}
		testutil.Reply(w, 200, "v"+string(rune('0'+n)), "Cache-Control", "max-age=1, stale-while-revalidate=30", "Vary", "X-Req")
	})
	o.Respond("/other", 200, "other", "Cache-Control", "max-age=60")
	_, base, clk := clockedGateway(t, o, 1, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	swrA := "GET /swr?a=1 HTTP/1.1\r\nHost: gw\r\nX-Req: A\r\n\r\n"
	other := "GET /other?b=2 HTTP/1.1\r\nHost: gw\r\nX-Req: B\r\nX-Extra: 1\r\n\r\n"

	wantBodies(t, c, br, swrA, "v1")
	clk.Advance(1100 * time.Millisecond) // stale, within stale-while-revalidate
	wantBodies(t, c, br, swrA+other, "v1", "other")
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("no background refresh reached the origin")
	}
	close(gate)

	if r := o.Requests("/swr")[1]; r.Header.Get("X-Req") != "A" || r.URL.RawQuery != "a=1" {
		t.Fatalf("the refresh asked the origin for %s with X-Req %q, want /swr?a=1 with A", r.URL, r.Header.Get("X-Req"))
	}
	// On the same connection: a client's Accept-Encoding is part of the
	// variant too. The clock is the real one plus the advance, so the
	// refreshed entry (max-age=1) is fresh for a second of real time: on a
	// slow machine it may be stale again by the time it is read, and be
	// refreshed once more. Any refreshed value (v2 or later) shows that a
	// refresh stored under X-Req: A.
	var refreshed string
	waitFor(t, "a refresh stored under X-Req: A", func() (bool, string) {
		body, cs := rawGet(t, c, br, swrA)
		refreshed = body
		return body != "v1", body + " " + cs
	})
	// X-Req: B never had a variant of /swr: its lookup is a miss. Had the
	// refresh stored under the pipelined request's X-Req (B), this would
	// be a hit on it.
	if body, cs := rawGet(t, c, br, strings.Replace(swrA, "X-Req: A", "X-Req: B", 1)); strings.Contains(cs, "hit") || body == "v1" || body == refreshed {
		t.Fatalf("X-Req: B got %s (%s), a stored variant (A's is %s): the refresh was stored under the next request's field", body, cs, refreshed)
	}
}

// rawGet writes the request raw on c and returns the answer's body and
// Cache-Status.
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader, raw string) (string, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.Header.Get("Cache-Status")
}

// wantBodies writes raw (one or more pipelined requests) on c in one
// write and wants the answers' bodies, in order.
func wantBodies(t *testing.T, c net.Conn, br *bufio.Reader, raw string, bodies ...string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	for _, want := range bodies {
		if body, cs := rawGet(t, c, br, ""); body != want {
			t.Fatalf("got %q (%s), want %q", body, cs, want)
		}
	}
}
