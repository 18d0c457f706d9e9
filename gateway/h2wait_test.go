package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/h2"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// TestH2ShardWaitFreesTheConnection: over one HTTP/2 connection
// (internal/h2, h2c with prior knowledge, Go's client), a stream whose key
// needs an L2 read from a frozen shard (SIGSTOP, its port open) waits out
// the shard's command timeout on its own: an L1 hit on another stream of
// the same connection is answered meanwhile. Without the lookup's
// announcement (h2.WithoutCancel in lookup) the hit waits behind the
// frozen read for about the command timeout.
func TestH2ShardWaitFreesTheConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Valkey server")
	}
	const timeout = 2 * time.Second // the frozen read's wait; the hit's bound is half of it
	servers := valkeytest.Start(t, 1)
	origin := newTestOrigin(t)
	g, ln := newGatewayListenerWith(t, faultConfig(origin.URL, addrsOf(servers), timeout), gateway.Options{})
	srv, accepted := serveH2(t, g, ln)
	c := h2cClient(t)
	base := "http://" + ln.Addr().String()

	hot := base + "/hot"
	waitForLong(t, "an L1 hit over h2", 5*time.Second, func() (bool, string) {
		st, cs, err := h2Get(c, hot)
		return err == nil && st == http.StatusOK && cs == hitL1, cs
	})

	servers[0].Freeze()
	defer servers[0].Thaw()
	opened := srv.Stats().Streams.Load()
	cold := make(chan error, 1)
	go func() {
		st, _, err := h2Get(c, base+"/cold")
		if err == nil && st != http.StatusOK {
			err = &statusError{st}
		}
		cold <- err
	}()
	// The server has read the cold stream's HEADERS: its handler runs
	// before the loop reads the next frame.
	waitForLong(t, "the cold stream", 5*time.Second, func() (bool, string) {
		return srv.Stats().Streams.Load() > opened, ""
	})

	start := time.Now()
	st, cs, err := h2Get(c, hot)
	took := time.Since(start)
	if took > timeout/2 {
		// Once the frozen read times out, valkey-go drops the connection
		// and its L1: the late request is then no hit either.
		t.Fatalf("the hot request took %v behind a frozen shard's read on the same connection (command timeout %v): %d %q %v",
			took, timeout, st, cs, err)
	}
	if err != nil || st != http.StatusOK || cs != hitL1 {
		t.Fatalf("hot: %d %q %v, want an L1 hit", st, cs, err)
	}
	select {
	case err := <-cold:
		t.Fatalf("the cold read finished (%v) before the hit: the shard did not hold it, the test shows nothing", err)
	default:
	}
	if err := <-cold; err != nil { // fails open to the origin after the timeout
		t.Errorf("cold: %v", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections, want the streams on one", n)
	}
	t.Logf("L1 hit beside a frozen read: %v", took)
}

type statusError struct{ status int }

func (e *statusError) Error() string { return http.StatusText(e.status) }

// serveH2 serves g's traffic handler with internal/h2 on ln (h2c, prior
// knowledge) and counts the connections accepted.
func serveH2(t testing.TB, g *gateway.Gateway, ln net.Listener) (*h2.Server, *atomic.Int64) {
	t.Helper()
	srv := &h2.Server{Handler: g.Handler()}
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go srv.ServeConn(conn)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		g.Close()
	})
	return srv, &accepted
}

// h2cClient is Go's client speaking HTTP/2 without TLS (prior knowledge):
// its requests share one connection.
func h2cClient(t testing.TB) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func h2Get(c *http.Client, url string) (status int, cacheStatus string, err error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", err
	}
	if resp.ProtoMajor != 2 {
		return 0, "", &statusError{http.StatusHTTPVersionNotSupported}
	}
	return resp.StatusCode, resp.Header.Get("Cache-Status"), nil
}

// BenchmarkServeHitH2 is an L1 hit over one HTTP/2 connection on
// internal/h2 (h2c, Go's client in the same process): ns/op is a round
// trip and allocs/op are mostly the client's; compare runs, not to h1.
func BenchmarkServeHitH2(b *testing.B) {
	origin := newTestOrigin(b)
	origin.body = func(string) string { return string(make([]byte, 1024)) }
	g, ln := newGatewayListenerWith(b, testConfig(origin.URL, valkeytest.Start(b, 1)), gateway.Options{})
	serveH2(b, g, ln)
	c := h2cClient(b)
	url := "http://" + ln.Addr().String() + "/products/12345"
	for range 50 { // miss, the fill's re-checks, then L1 hits
		if _, cs, err := h2Get(c, url); err != nil {
			b.Fatal(err)
		} else if cs == hitL1 {
			break
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if st, cs, err := h2Get(c, url); err != nil || st != http.StatusOK || cs != hitL1 {
			b.Fatalf("%d %q %v, want an L1 hit", st, cs, err)
		}
	}
}
