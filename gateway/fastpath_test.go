package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/testutil"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// TestFastPathMatchesNetHTTP: a gateway on the HTTP/1 fast path (hits
// written from fields serialized once per entry) answers byte for byte
// what one on net/http alone answers — hits, HEAD, 304s, misses, passes —
// with one Date header, the origin's when it sent one.
func TestFastPathMatchesNetHTTP(t *testing.T) {
	servers := valkeytest.Start(t, 1)
	origin := testutil.NewOrigin(t)
	var mu sync.Mutex
	var sentDate string
	origin.Handle("/p", func(w http.ResponseWriter, r *http.Request, n int) {
		h := w.Header()
		mu.Lock()
		sentDate = time.Now().UTC().Format(http.TimeFormat)
		h.Set("Date", sentDate)
		mu.Unlock()
		h["Link"] = []string{"</a.css>; rel=preload", "</b.js>; rel=preload"}
		h["X-Odd-CASE"] = []string{"v"}
		h.Set("ETag", `"v1"`)
		testutil.Reply(w, 200, `{"id":1}`, "Cache-Control", "max-age=60")
	})
	origin.Handle("/nodate", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header()["Date"] = nil // net/http sends no Date when the map holds nil
		testutil.Reply(w, 404, "gone", "Cache-Control", "max-age=60")
	})
	fastCfg := testConfig(origin.URL, servers)
	stdCfg := testConfig(origin.URL, servers)
	stdCfg.Server.DisableFastPath = true
	_, fast := startGateway(t, fastCfg)
	_, std := startGateway(t, stdCfg)

	exchange := func(base, raw string) string {
		t.Helper()
		resp := rawExchange(t, base, raw)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := len(resp.Header["Date"]); n != 1 {
			t.Errorf("%s %q: %d Date headers", base, raw, n)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s cl=%d te=%v\n", resp.Status, resp.ContentLength, resp.TransferEncoding)
		for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
			v := resp.Header[k]
			switch k {
			case "Date", "Age": // the clock's, not the server's
				v = []string{"(present)"}
			}
			fmt.Fprintf(&b, "%s: %q\n", k, v)
		}
		fmt.Fprintf(&b, "body %q", body)
		return b.String()
	}
	req := func(method, path string, extra ...string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: shop.example\r\n" + strings.Join(extra, "") + "\r\n"
	}
	for _, path := range []string{"/p", "/nodate"} {
		// Fill through one gateway; the other reads the same shard.
		exchange(std, req("GET", path))
		for _, raw := range []string{
			req("GET", path), req("GET", path), // L2, then L1
			req("HEAD", path),
			req("GET", path, "If-None-Match: \"v1\"\r\n"),
			req("GET", path, "Connection: close\r\n"),
		} {
			want, got := exchange(std, raw), exchange(fast, raw)
			want = strings.ReplaceAll(want, "detail=l2", "detail=l1") // the L1s fill at different moments
			got = strings.ReplaceAll(got, "detail=l2", "detail=l1")
			if got != want {
				t.Errorf("%q\nfast path:\n%s\nnet/http:\n%s", raw, got, want)
			}
		}
	}
	// The origin's Date is the one a hit carries.
	mu.Lock()
	origDate := sentDate
	mu.Unlock()
	resp := rawExchange(t, fast, req("GET", "/p"))
	resp.Body.Close()
	if got := resp.Header.Get("Date"); got != origDate {
		t.Errorf("hit Date %q, origin sent %q", got, origDate)
	}
}

// rawExchange sends raw on a new connection and reads one response.
func rawExchange(t *testing.T, base, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: strings.Fields(raw)[0]})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestL1OffReadsWhatTheShardHolds: with client-side caching off, a view
// remembered for a key's bytes is reused only while the shard returns the
// same bytes; a purge, a soft purge or a new entry is seen on the next read.
func TestL1OffReadsWhatTheShardHolds(t *testing.T) {
	servers := valkeytest.Start(t, 1)
	origin := testutil.NewOrigin(t)
	origin.Handle("/v", func(w http.ResponseWriter, r *http.Request, n int) {
		testutil.Reply(w, 200, fmt.Sprintf("v%d", n), "Cache-Control", "max-age=60, stale-if-error=60")
	})
	cfg := testConfig(origin.URL, servers)
	cfg.Valkey.DisableL1 = true
	g, base := startGateway(t, cfg)
	for i, want := range []string{"v1", "v1", "v1"} {
		if r := get(t, base+"/v"); r.body != want || (i > 0 && r.cacheStatus != hitL2) {
			t.Fatalf("read %d: %q %q", i, r.body, r.cacheStatus)
		}
	}
	if _, err := g.Purge(t.Context(), gateway.PurgeRequest{URL: base + "/v", Soft: true}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, base+"/v"); r.body != "v2" || r.cacheStatus != "edgecache; fwd=stale; stored" {
		t.Fatalf("after a soft purge: %q %q", r.body, r.cacheStatus)
	}
	if r := get(t, base+"/v"); r.body != "v2" || r.cacheStatus != hitL2 {
		t.Fatalf("after the refill: %q %q", r.body, r.cacheStatus)
	}
	if _, err := g.Purge(t.Context(), gateway.PurgeRequest{URL: base + "/v"}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, base+"/v"); r.body != "v3" || r.cacheStatus != "edgecache; fwd=uri-miss; stored" {
		t.Fatalf("after a purge: %q %q", r.body, r.cacheStatus)
	}
}

// connTimeoutConfig is a gateway config with short connection timeouts:
// the head must come within head, a kept-alive connection may wait idle.
func connTimeoutConfig(origin string, head, idle time.Duration) *config.Config {
	cfg := testConfig(origin, nil)
	cfg.Server.ReadHeaderTimeout, cfg.Server.IdleTimeout = head, idle
	return cfg
}

// dialRaw opens a connection to base (http://host:port) and closes it at
// the end of the test.
func dialRaw(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// writeRaw sends s on c; a failed write fails the test.
func writeRaw(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// TestFastPathClosesSilentConnections: a connection that sends nothing is
// closed once server.read_header_timeout has passed, as net/http does;
// idle_timeout is the wait between the requests of a kept-alive
// connection, not a grace period for one that never spoke (issue 12,
// finding 5: the fast path kept 100 silent connections for 90s, not 10s).
func TestFastPathClosesSilentConnections(t *testing.T) {
	origin := newTestOrigin(t)
	const head, idle = 300 * time.Millisecond, 4 * time.Second
	for _, fast := range []bool{true, false} {
		name := map[bool]string{true: "fast path", false: "net/http"}[fast]
		t.Run(name, func(t *testing.T) {
			cfg := connTimeoutConfig(origin.URL, head, idle)
			cfg.Server.DisableFastPath = !fast
			_, base := startGateway(t, cfg)
			// One connection kept alive after a request, then 20 silent ones.
			kept := dialRaw(t, base)
			if err := kept.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			writeRaw(t, kept, "GET /kept HTTP/1.1\r\nHost: shop.example\r\n\r\n")
			keptBr := bufio.NewReader(kept)
			resp, err := http.ReadResponse(keptBr, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("reading the first response's body: %v", err)
			}
			answered := time.Now()

			const n = 20
			start := time.Now()
			silent := make([]net.Conn, n)
			for i := range silent {
				silent[i] = dialRaw(t, base)
			}
			for i, c := range silent {
				if err := c.SetReadDeadline(start.Add(idle + 2*time.Second)); err != nil {
					t.Fatal(err)
				}
				k, err := c.Read(make([]byte, 1))
				el := time.Since(start)
				// Closed without an answer, within the header timeout (with a
				// margin for a loaded machine), well before the idle timeout.
				if k != 0 || err != io.EOF || el > head+1500*time.Millisecond {
					t.Fatalf("silent connection %d: read %d bytes, %v after %v; want EOF after about %v (idle_timeout %v)", i, k, err, el, head, idle)
				}
			}
			// The kept-alive connection waited longer than the header timeout
			// and is still served.
			if d := 3*head - time.Since(answered); d > 0 {
				time.Sleep(d)
			}
			writeRaw(t, kept, "GET /kept HTTP/1.1\r\nHost: shop.example\r\n\r\n")
			resp, err = http.ReadResponse(keptBr, nil)
			if err != nil {
				t.Fatalf("a kept-alive connection idle for %v (under idle_timeout %v): %v", time.Since(answered), idle, err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("reading the second response's body: %v", err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("second request on the kept-alive connection: %d", resp.StatusCode)
			}
		})
	}
}

// TestFastPathPipelinedAfterSlowRequest: each request's header deadline
// starts with that request, not with the one before it on the
// connection; a pipelined request behind one that took longer than
// server.read_header_timeout is served, as net/http serves it (issue 12,
// finding 7).
func TestFastPathPipelinedAfterSlowRequest(t *testing.T) {
	const head = 300 * time.Millisecond
	origin := newTestOrigin(t)
	origin.SetDelay(3 * head) // every miss outlasts a header timeout
	req := func(path string, extra ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: shop.example\r\n" + strings.Join(extra, "") + "\r\n"
	}
	for _, fast := range []bool{true, false} {
		cfg := connTimeoutConfig(origin.URL, head, 10*time.Second)
		cfg.Server.DisableFastPath = !fast
		_, base := startGateway(t, cfg)
		for _, tc := range []struct {
			name string
			send func(t *testing.T, c net.Conn, br *bufio.Reader, i int) []int // the statuses
		}{
			// The next request's start comes with the slow one, its end
			// after the slow answer.
			{"rest of the next head after the slow answer", func(t *testing.T, c net.Conn, br *bufio.Reader, i int) []int {
				next := req(fmt.Sprintf("/next-a%d", i))
				writeRaw(t, c, req(fmt.Sprintf("/slow-a%d", i))+next[:20])
				first := readStatus(t, br)
				writeRaw(t, c, next[20:])
				return []int{first, readStatus(t, br)}
			}},
			// The whole next request comes while the slow one is served;
			// the slow one is passed through (credentials), so the fast path
			// watches the connection for a hang-up while it waits and reads
			// the next request's first byte.
			{"next request sent during the slow one", func(t *testing.T, c net.Conn, br *bufio.Reader, i int) []int {
				writeRaw(t, c, req(fmt.Sprintf("/slow-b%d", i), "Authorization: Bearer x\r\n"))
				time.Sleep(head / 2)
				writeRaw(t, c, req(fmt.Sprintf("/next-b%d", i)))
				return []int{readStatus(t, br), readStatus(t, br)}
			}},
		} {
			name := map[bool]string{true: "fast path", false: "net/http"}[fast] + "/" + tc.name
			t.Run(name, func(t *testing.T) {
				c := dialRaw(t, base)
				if err := c.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
					t.Fatal(err)
				}
				for i, status := range tc.send(t, c, bufio.NewReader(c), len(name)) {
					if status != 200 {
						t.Fatalf("response %d: status %d (0: none read)", i+1, status)
					}
				}
			})
		}
	}
}

// readStatus reads one response and its body and returns its status; 0
// if none came or its body was cut short.
func readStatus(t *testing.T, br *bufio.Reader) int {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Logf("reading a response: %v", err)
		return 0
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Logf("reading a response's body: %v", err)
		return 0
	}
	return resp.StatusCode
}

// TestFastPathHTTP09: an HTTP/0.9 request line ("GET /" and no version)
// is answered 400 at once, as net/http answers it, not after the header
// timeout (issue 12, finding 8).
func TestFastPathHTTP09(t *testing.T) {
	origin := newTestOrigin(t)
	const head = 5 * time.Second
	answers := map[bool]string{}
	for _, fast := range []bool{false, true} {
		cfg := connTimeoutConfig(origin.URL, head, 10*time.Second)
		cfg.Server.DisableFastPath = !fast
		_, base := startGateway(t, cfg)
		for _, line := range []string{"GET /\r\n", "GET /index.html\r\n", "HEAD /\r\n"} {
			c := dialRaw(t, base)
			start := time.Now()
			if err := c.SetDeadline(start.Add(head - time.Second)); err != nil {
				t.Fatal(err)
			}
			writeRaw(t, c, line)
			got, err := io.ReadAll(c) // the server closes after its answer
			el := time.Since(start)
			if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 400 ") || el > 2*time.Second {
				t.Fatalf("fast path %v: %q answered %q (%v) after %v; want 400 at once", fast, line, got, err, el)
			}
			answers[fast] += line + string(got)
		}
	}
	if answers[true] != answers[false] {
		t.Errorf("fast path answered\n%s\nnet/http answered\n%s", answers[true], answers[false])
	}
}
