package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// shardYAML renders a config file for origin with the given shards, each
// "name=addr[*weight]".
func shardYAML(origin string, shards ...string) string {
	var b strings.Builder
	// cache_set_cookie: the test origin sets a cookie on every response.
	fmt.Fprintf(&b, "routes:\n  - name: t\n    origin: %s\n    default_ttl: 1m\n    cache_set_cookie: true\n", origin)
	b.WriteString("valkey:\n  command_timeout: 300ms\n  dial_timeout: 300ms\n  breaker_cooldown: 1s\n")
	if len(shards) > 0 {
		b.WriteString("shards:\n")
	}
	for _, s := range shards {
		name, rest, _ := strings.Cut(s, "=")
		addr, w, _ := strings.Cut(rest, "*")
		if w == "" {
			w = "1"
		}
		fmt.Fprintf(&b, "  - { name: %s, addr: %q, weight: %s }\n", name, addr, w)
	}
	return b.String()
}

// fileGateway serves a gateway whose config lives in a file that the test
// edits; config.Watch reloads it, as `edgecache serve` does.
func fileGateway(t *testing.T, doc string) (*gateway.Gateway, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edgecache.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	src := config.Source{File: path}
	cfg, err := src.Load()
	if err != nil {
		t.Fatal(err)
	}
	g, base := startGatewayWith(t, cfg, gateway.Options{Source: src})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := config.Watch(ctx, path, 20*time.Millisecond, func() { _ = g.ReloadSource() }); err != nil {
		t.Fatal(err)
	}
	return g, base, path
}

// writeAndWait writes doc and waits until the gateway published a new
// generation (or, when wantReject, recorded a reload error).
func writeAndWait(t *testing.T, g *gateway.Gateway, path, doc string, wantReject bool) {
	t.Helper()
	before := g.Generation().ID
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if wantReject {
			if _, err := g.LastReloadError(); err != nil {
				if g.Generation().ID != before {
					t.Fatalf("a rejected config replaced generation %d", before)
				}
				return
			}
		} else if g.Generation().ID != before {
			if _, err := g.LastReloadError(); err != nil {
				t.Fatalf("reload error after success: %v", err)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no reload within 5s (reject=%v)", wantReject)
}

// load runs bounded GET load until stop is closed, counting failures and
// wrong bodies.
type load struct {
	ok, failed atomic.Int64
	maxNanos   atomic.Int64 // slowest request
	mu         sync.Mutex
	firstErr   string
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, base string, workers, keys int, stop <-chan struct{}) *load {
	l := &load{}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := "/k/" + strconv.Itoa(i%keys)
				start := time.Now()
				resp, err := client.Get(base + path)
				msg := ""
				if err != nil {
					msg = err.Error()
				} else {
					b := make([]byte, 128)
					n, _ := resp.Body.Read(b)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b[:n]) != "body of "+path {
						msg = fmt.Sprintf("%s: %d %q (%s)", path, resp.StatusCode, b[:n], resp.Header.Get("Cache-Status"))
					}
				}
				if el := int64(time.Since(start)); el > l.maxNanos.Load() {
					l.maxNanos.Store(el) // racy max: good enough for a report
				}
				if msg != "" {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == "" {
						l.firstErr = msg
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func TestReloadUnderLoad(t *testing.T) {
	s := valkeytest.Start(t, 5)
	origin := newTestOrigin(t)
	a := func(i int) string { return s[i].Addr }
	edits := []struct {
		what   string
		shards []string
	}{
		{"start", []string{"s0=" + a(0), "s1=" + a(1), "s2=" + a(2)}},
		{"add s3", []string{"s0=" + a(0), "s1=" + a(1), "s2=" + a(2), "s3=" + a(3)}},
		{"reweight s0", []string{"s0=" + a(0) + "*3", "s1=" + a(1), "s2=" + a(2), "s3=" + a(3)}},
		{"remove s1", []string{"s0=" + a(0) + "*3", "s2=" + a(2), "s3=" + a(3)}},
		{"swap s2's address", []string{"s0=" + a(0) + "*3", "s2=" + a(4), "s3=" + a(3)}},
		{"add s1 back", []string{"s0=" + a(0) + "*3", "s1=" + a(1), "s2=" + a(4), "s3=" + a(3)}},
		{"reweight s3", []string{"s0=" + a(0) + "*3", "s1=" + a(1), "s2=" + a(4), "s3=" + a(3) + "*2"}},
		{"remove s0", []string{"s1=" + a(1), "s2=" + a(4), "s3=" + a(3) + "*2"}},
		{"swap s3's address", []string{"s1=" + a(1), "s2=" + a(4), "s3=" + a(0)}},
		{"add s4", []string{"s1=" + a(1), "s2=" + a(4), "s3=" + a(0), "s4=" + a(2)}},
		{"back to three", []string{"s0=" + a(0), "s1=" + a(1), "s2=" + a(2)}},
	}
	g, base, path := fileGateway(t, shardYAML(origin.URL, edits[0].shards...))
	stop := make(chan struct{})
	l := startLoad(t, base, 4, 300, stop)
	deadline := time.Now().Add(20 * time.Second) // bounded load
	interval := 20 * time.Second / time.Duration(len(edits))
	for _, e := range edits[1:] {
		time.Sleep(interval)
		writeAndWait(t, g, path, shardYAML(origin.URL, e.shards...), false)
		t.Logf("edit %-18s → generation %d", e.what, g.Generation().ID)
	}
	time.Sleep(time.Until(deadline))
	close(stop)
	l.wg.Wait()
	t.Logf("reload under load: %d requests ok, %d failed, %d origin requests", l.ok.Load(), l.failed.Load(), origin.Total())
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed requests; first: %s", l.failed.Load(), l.firstErr)
	}
	if l.ok.Load() < 1000 {
		t.Fatalf("only %d requests in 20s", l.ok.Load())
	}
}

func TestBrokenEditRejectedOldServes(t *testing.T) {
	s := valkeytest.Start(t, 2)
	origin := newTestOrigin(t)
	good := shardYAML(origin.URL, "s0="+s[0].Addr, "s1="+s[1].Addr)
	g, base, path := fileGateway(t, good)
	stop := make(chan struct{})
	l := startLoad(t, base, 2, 50, stop)
	get(t, base+"/k/1")
	get(t, base+"/k/1")
	gen := g.Generation().ID
	dead := freeAddr(t)
	for _, tc := range []struct{ name, doc string }{
		{"bad yaml", "routes: [\n  - {"},
		{"unknown field", good + "\nfrobnicate: true\n"},
		{"unreachable new shard", shardYAML(origin.URL, "s0="+s[0].Addr, "s1="+s[1].Addr, "s2="+dead)},
		{"invalid address", shardYAML(origin.URL, "s0="+s[0].Addr, "s1=127.0.0.1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeAndWait(t, g, path, tc.doc, true)
			_, err := g.LastReloadError()
			t.Logf("rejected: %v", err)
			if g.Generation().ID != gen {
				t.Fatal("generation changed")
			}
			if r := get(t, base+"/k/1"); r.status != 200 || r.body != "body of /k/1" || !strings.HasPrefix(r.cacheStatus, "edgecache; hit") {
				t.Fatalf("old generation: %d %q %q", r.status, r.body, r.cacheStatus)
			}
			// Restore the good file so the next case's error is its own.
			writeAndWait(t, g, path, good+"\n# "+tc.name+"\n", false)
			gen = g.Generation().ID
		})
	}
	close(stop)
	l.wg.Wait()
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed requests; first: %s", l.failed.Load(), l.firstErr)
	}
}

func TestRebalanceWindowSparesOrigin(t *testing.T) {
	s := valkeytest.Start(t, 4)
	const keys = 1000
	counts := map[string]int64{}
	for _, window := range []string{"2m", "-1s"} {
		t.Run("window="+window, func(t *testing.T) {
			for _, srv := range s {
				if _, err := srv.Do("FLUSHALL"); err != nil {
					t.Fatal(err)
				}
			}
			origin := newTestOrigin(t)
			three := strings.Replace(shardYAML(origin.URL, "s0="+s[0].Addr, "s1="+s[1].Addr, "s2="+s[2].Addr),
				"valkey:\n", "valkey:\n  rebalance_window: "+window+"\n", 1)
			g, base, path := fileGateway(t, three)
			for i := range keys {
				get(t, base+"/k/"+strconv.Itoa(i))
			}
			warm := origin.Total()
			four := strings.Replace(three, "shards:\n", "shards:\n  - { name: s3, addr: \""+s[3].Addr+"\", weight: 1 }\n", 1)
			writeAndWait(t, g, path, four, false)
			for i := range keys {
				r := get(t, base+"/k/"+strconv.Itoa(i))
				if r.status != 200 || r.body != "body of /k/"+strconv.Itoa(i) {
					t.Fatalf("key %d: %d %q", i, r.status, r.body)
				}
			}
			counts[window] = origin.Total() - warm
			t.Logf("rebalance_window=%s: %d of %d keys went to the origin after adding a 4th shard", window, counts[window], keys)
		})
	}
	if counts["2m"] != 0 {
		t.Errorf("with the window, %d origin requests; want 0", counts["2m"])
	}
	if counts["-1s"] < keys/8 {
		t.Errorf("without the window only %d origin requests; the 4th shard should own ~%d keys", counts["-1s"], keys/4)
	}
}

func TestNoLeaksAcrossReloads(t *testing.T) {
	s := valkeytest.Start(t, 3)
	origin := newTestOrigin(t)
	settle := func() int {
		var n int
		for range 50 {
			runtime.GC()
			n = runtime.NumGoroutine()
			time.Sleep(20 * time.Millisecond)
		}
		return n
	}
	base0 := settle()
	func() {
		cfg, err := config.Parse([]byte(shardYAML(origin.URL, "s0="+s[0].Addr)))
		if err != nil {
			t.Fatal(err)
		}
		g, err := gateway.New(cfg, gateway.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		sets := [][]string{
			{"s0=" + s[0].Addr, "s1=" + s[1].Addr},
			{"s0=" + s[0].Addr, "s1=" + s[1].Addr, "s2=" + s[2].Addr},
			{"s1=" + s[1].Addr},
			{"s1=" + s[2].Addr},
		}
		for round := range 5 {
			for _, sh := range sets {
				doc := shardYAML(origin.URL, sh...)
				doc = strings.Replace(doc, "valkey:\n", "valkey:\n  rebalance_window: -1s\n", 1)
				cfg, err := config.Parse([]byte(doc))
				if err != nil {
					t.Fatal(err)
				}
				if err := g.Reload(cfg, fmt.Sprint("round ", round)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, sh := range g.Generation().Shards().Shards() {
			if !sh.Connected() {
				t.Fatalf("current shard %s closed", sh.Name)
			}
		}
		// The last map has only s[2]: the removed shards' connections are
		// closed already, before Close.
		for _, srv := range s[:2] {
			if n := otherClients(t, srv); n != 0 {
				t.Errorf("removed shard %s still has %d gateway connections", srv.Addr, n)
			}
		}
		if n := otherClients(t, s[2]); n == 0 {
			t.Errorf("current shard %s has no gateway connection", s[2].Addr)
		}
	}()
	after := settle()
	if after > base0+2 {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines: %d before, %d after 20 reloads and Close\n%s", base0, after, buf[:n])
	}
	// Connections: every shard server is back to no gateway connection.
	for _, srv := range s {
		if n := otherClients(t, srv); n != 0 {
			t.Errorf("%s still has %d gateway connections after Close", srv.Addr, n)
		}
	}
}

// otherClients counts srv's client connections other than the one asking.
func otherClients(t *testing.T, srv *valkeytest.Server) int {
	t.Helper()
	var n int
	for range 50 { // a closed connection leaves the server's list promptly, not instantly
		out, err := srv.Do("CLIENT", "LIST")
		if err != nil {
			t.Fatal(err)
		}
		n = len(strings.Split(strings.TrimSpace(out), "\n")) - 1
		if n == 0 {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// TestPurgeDuringRebalanceWindow: a key that moved to a new shard is
// purged on its previous owner too, or the next miss would copy it back.
func TestPurgeDuringRebalanceWindow(t *testing.T) {
	s := valkeytest.Start(t, 2)
	origin := newTestOrigin(t)
	one := strings.Replace(shardYAML(origin.URL, "s0="+s[0].Addr), "valkey:\n", "valkey:\n  rebalance_window: 2m\n", 1)
	g, base, path := fileGateway(t, one)
	const keys = 40
	for i := range keys {
		get(t, base+"/k/"+strconv.Itoa(i))
	}
	two := strings.Replace(shardYAML(origin.URL, "s0="+s[0].Addr, "s1="+s[1].Addr), "valkey:\n", "valkey:\n  rebalance_window: 2m\n", 1)
	writeAndWait(t, g, path, two, false)
	for i := range keys {
		res, err := g.Purge(context.Background(), gateway.PurgeRequest{URL: base + "/k/" + strconv.Itoa(i)})
		if err != nil || res.Keys != 1 {
			t.Fatalf("purge /k/%d: %+v %v", i, res, err)
		}
	}
	for i := range keys {
		if r := get(t, base+"/k/"+strconv.Itoa(i)); r.cacheStatus != stored {
			t.Fatalf("/k/%d after purge: %q (copied back from its previous owner?)", i, r.cacheStatus)
		}
	}
}

// TestRemovedShardClosesAfterWindow: a shard removed by a reload that
// moves keys stays connected while the new generation may read it (its
// rebalance window), and closes when the window ends — or at Close, if
// that comes first. Nothing but the shard set's references decides it.
func TestRemovedShardClosesAfterWindow(t *testing.T) {
	s := valkeytest.Start(t, 2)
	origin := newTestOrigin(t)
	doc := func(window string, shards ...string) *config.Config {
		cfg, err := config.Parse([]byte(strings.Replace(shardYAML(origin.URL, shards...), "valkey:\n", "valkey:\n  rebalance_window: "+window+"\n", 1)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	connected := func(srv *valkeytest.Server) int { // now, without waiting
		out, err := srv.Do("CLIENT", "LIST")
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Split(strings.TrimSpace(out), "\n")) - 1
	}
	for _, tc := range []struct {
		name   string
		window time.Duration
		close  bool // Close the gateway during the window
	}{
		{"window ends", 1500 * time.Millisecond, false},
		{"closed during the window", time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := gateway.New(doc(tc.window.String(), "s0="+s[0].Addr, "s1="+s[1].Addr), gateway.Options{})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					g.Close()
				}
			}()
			if err := g.Reload(doc(tc.window.String(), "s1="+s[1].Addr), "remove s0"); err != nil {
				t.Fatal(err)
			}
			reloaded := time.Now()
			time.Sleep(200 * time.Millisecond) // a retired shard would close at once
			if n := connected(s[0]); n == 0 {
				t.Fatal("the removed shard closed inside the rebalance window")
			}
			if tc.close {
				g.Close()
				closed = true
			}
			if n := otherClients(t, s[0]); n != 0 {
				deadline := time.Now().Add(tc.window + 5*time.Second) // the loaded box's margin
				for n != 0 && time.Now().Before(deadline) {
					n = otherClients(t, s[0])
				}
				if n != 0 {
					t.Fatalf("removed shard still has %d connections %v after the reload", n, time.Since(reloaded))
				}
			}
			if el := time.Since(reloaded); !tc.close && el < tc.window-50*time.Millisecond {
				t.Fatalf("removed shard closed %v after the reload, before its %v window ended", el, tc.window)
			}
			if n := connected(s[1]); !tc.close && n == 0 {
				t.Fatal("the kept shard closed with the window")
			}
		})
	}
}
