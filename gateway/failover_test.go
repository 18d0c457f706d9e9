package gateway_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// failoverUnderLoad runs bounded load against base for 12 s, calls kill
// after 3 s, and reports failed requests (the budget is zero: the origin
// can always answer) and how the cache fared.
func failoverUnderLoad(t *testing.T, base string, origin *testOrigin, kill func()) {
	t.Helper()
	const keys = 100
	for i := range keys { // warm
		get(t, base+"/k/"+strconv.Itoa(i))
	}
	warm := origin.Total()
	stop := make(chan struct{})
	l := startLoad(t, base, 4, keys, stop)
	time.Sleep(3 * time.Second)
	killedAt := time.Now()
	kill()
	time.Sleep(9 * time.Second)
	close(stop)
	l.wg.Wait()
	t.Logf("failover under load: %d requests ok, %d failed, %d origin requests after warm-up, slowest request %v (killed at +3s, load 12s)",
		l.ok.Load(), l.failed.Load(), origin.Total()-warm, time.Duration(l.maxNanos.Load()).Round(time.Millisecond))
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed requests; first: %s", l.failed.Load(), l.firstErr)
	}
	// While the shard fails, what it cannot store is served from the
	// gateway's fallback (valkey.fallback_ttl, 10s: longer than the
	// outage): each key reaches the origin about once, where without the
	// fallback every request for a failing key did (thousands here).
	if n := origin.Total() - warm; n > 2*keys {
		t.Fatalf("%d origin requests during the failover for %d keys: the fallback did not hold them", n, keys)
	}
	// After the failover the cache serves again: a fresh key is stored and
	// then hit.
	_ = killedAt
	waitFor(t, "the cache stores again after failover", func() (bool, string) {
		path := "/after/" + strconv.FormatInt(time.Now().UnixNano(), 10)
		r := get(t, base+path)
		if r.cacheStatus != stored {
			return false, r.cacheStatus
		}
		r = get(t, base+path)
		return r.cacheStatus == hitL2 || r.cacheStatus == hitL1, r.cacheStatus
	})
}

func TestClusterShardFailover(t *testing.T) {
	c := valkeytest.StartCluster(t, 3)
	c.AddReplicas(t)
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{{Name: "cluster", Cluster: c.Seeds(), Weight: 1}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, base := startGateway(t, cfg)
	// Entries spread over the cluster's primaries.
	key := keyOf(t, base+"/k/7")
	victim := c.Owner(t, key)
	failoverUnderLoad(t, base, origin, func() {
		t.Logf("killing primary %s, owner of %q", victim.Addr, key)
		victim.Kill()
	})
	for i, n := range c.Nodes {
		if n == victim {
			info, _ := c.Replicas[i].Do("INFO", "replication")
			if !containsLine(info, "role:master") {
				t.Fatalf("replica of the killed primary was not promoted:\n%s", info)
			}
		}
	}
}

func TestSentinelShardFailover(t *testing.T) {
	g := valkeytest.StartSentinel(t)
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{{Name: "ha", Sentinel: &config.Sentinel{Master: g.MasterName, Addrs: g.SentinelAddrs()}, Weight: 1}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, base := startGateway(t, cfg)
	failoverUnderLoad(t, base, origin, func() {
		t.Logf("killing primary %s", g.Primary.Addr)
		g.Primary.Kill()
	})
	if addr, err := g.MasterAddr(); err != nil || addr != g.Replica.Addr {
		t.Fatalf("sentinels name %q (%v) as primary, want the replica %s", addr, err, g.Replica.Addr)
	}
}

func TestSentinelShardReadsFromReplica(t *testing.T) {
	g := valkeytest.StartSentinel(t)
	origin := newTestOrigin(t)
	cfg := testConfig(origin.URL, nil)
	cfg.Shards = []config.Shard{{Name: "ha", Sentinel: &config.Sentinel{Master: g.MasterName, Addrs: g.SentinelAddrs()}, ReadReplicas: true, Weight: 1}}
	_, base := startGateway(t, cfg)
	wantStatus(t, get(t, base+"/r"), 200, stored)
	// The write went to the primary; the replica receives it and serves the read.
	waitFor(t, "the replica serves the entry", func() (bool, string) {
		r := get(t, base+"/r")
		return r.cacheStatus == hitL2 || r.cacheStatus == hitL1, r.cacheStatus
	})
	if n := origin.Count("/r"); n != 1 {
		t.Fatalf("origin saw %d", n)
	}
	info, _ := g.Replica.Do("INFO", "stats")
	if !containsLine(info, "total_commands_processed:") {
		t.Fatal("no stats")
	}
}

func containsLine(info, prefix string) bool {
	for _, l := range splitLines(info) {
		if len(l) >= len(prefix) && l[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, trimCR(s[start:i]))
			start = i + 1
		}
	}
	return append(out, trimCR(s[start:]))
}

func trimCR(s string) string {
	if len(s) > 0 && s[len(s)-1] == '\r' {
		return s[:len(s)-1]
	}
	return s
}
