package shardmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// shardCfgs returns config shards "name=addr", each of weight 1.
func shardCfgs(pairs ...string) []config.Shard {
	out := make([]config.Shard, len(pairs))
	for i, p := range pairs {
		name, addr, _ := strings.Cut(p, "=")
		out[i] = config.Shard{Name: name, Addr: addr, Weight: 1}
	}
	return out
}

func mustBuild(t *testing.T, cfgs []config.Shard, o Options, prev *Set, b BuildOptions) *Set {
	t.Helper()
	s, err := Build(cfgs, o, prev, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Release) // a second Release does nothing
	return s
}

// gatewayClients counts srv's client connections other than the one
// asking, waiting a moment for closed ones to leave the list.
func gatewayClients(t *testing.T, srv *valkeytest.Server) int {
	t.Helper()
	var n int
	for range 100 {
		out, err := srv.Do("CLIENT", "LIST")
		if err != nil {
			t.Fatal(err)
		}
		if n = len(strings.Split(strings.TrimSpace(out), "\n")) - 1; n == 0 {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// waitClosed waits (bounded) for sh to close its client.
func waitClosed(t *testing.T, sh *Shard) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !sh.Connected() {
			return true
		}
	}
	return false
}

// TestSharedShardClosesAfterLastRelease: three sets built one from the
// other share one client; it closes after the third release, in whatever
// order the sets are released.
func TestSharedShardClosesAfterLastRelease(t *testing.T) {
	srv := valkeytest.Start(t, 1)[0]
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			cfgs := shardCfgs("a=" + srv.Addr)
			var sets []*Set
			var prev *Set
			for range 3 {
				prev = mustBuild(t, cfgs, batchOptions(), prev, BuildOptions{Reload: prev != nil, Window: time.Minute})
				sets = append(sets, prev)
			}
			sh := sets[0].Shards()[0]
			for _, s := range sets[1:] {
				if s.Shards()[0] != sh {
					t.Fatal("an unchanged shard was dialed again")
				}
			}
			if sh.Refs() != 3 {
				t.Fatalf("refs = %d, want 3", sh.Refs())
			}
			for i, k := range order {
				sets[k].Release()
				sets[k].Release() // a second release of one set changes nothing
				left := 3 - i - 1
				if sh.Refs() != left {
					t.Fatalf("after %d releases: refs = %d, want %d", i+1, sh.Refs(), left)
				}
				if left > 0 {
					if !sh.Connected() {
						t.Fatalf("closed after %d of 3 releases", i+1)
					}
					if err := sh.Set(context.Background(), "k", []byte("v"), time.Minute); err != nil {
						t.Fatalf("held shard after %d releases: %v", i+1, err)
					}
				}
			}
			if !waitClosed(t, sh) {
				t.Fatal("still connected after the last release")
			}
			if n := gatewayClients(t, srv); n != 0 {
				t.Fatalf("%d connections left on the server after the last release", n)
			}
			if _, _, err := sh.Get(context.Background(), "k", time.Now()); !errors.Is(err, ErrDown) {
				t.Fatalf("get on a retired shard: %v, want ErrDown", err)
			}
		})
	}
}

// TestReloadReusesUnchangedShards: a reload keeps the client of a shard
// whose spec and options did not change; a changed shard gets a new client
// and the old one closes when the old set is released.
func TestReloadReusesUnchangedShards(t *testing.T) {
	srv := valkeytest.Start(t, 3)
	other := batchOptions()
	other.CommandTimeout = time.Second
	tests := []struct {
		name   string
		next   []config.Shard
		opts   Options
		reused []bool // per shard of the first set, in order: a, b
	}{
		{"unchanged", shardCfgs("a="+srv[0].Addr, "b="+srv[1].Addr), batchOptions(), []bool{true, true}},
		{"b's address changed", shardCfgs("a="+srv[0].Addr, "b="+srv[2].Addr), batchOptions(), []bool{true, false}},
		{"b reweighted", []config.Shard{{Name: "a", Addr: srv[0].Addr, Weight: 1}, {Name: "b", Addr: srv[1].Addr, Weight: 3}}, batchOptions(), []bool{true, true}},
		{"b removed", shardCfgs("a=" + srv[0].Addr), batchOptions(), []bool{true, false}},
		{"options changed", shardCfgs("a="+srv[0].Addr, "b="+srv[1].Addr), other, []bool{false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := mustBuild(t, shardCfgs("a="+srv[0].Addr, "b="+srv[1].Addr), batchOptions(), nil, BuildOptions{})
			next := mustBuild(t, tc.next, tc.opts, first, BuildOptions{Reload: true})
			for i, old := range first.Shards() {
				kept := next.has(old)
				if kept != tc.reused[i] {
					t.Fatalf("shard %s reused = %v, want %v", old.Name, kept, tc.reused[i])
				}
			}
			first.Release()
			for i, old := range first.Shards() {
				if tc.reused[i] {
					if !old.Connected() || old.Refs() != 1 {
						t.Fatalf("reused shard %s: connected %v, refs %d after the old set's release", old.Name, old.Connected(), old.Refs())
					}
				} else if !waitClosed(t, old) {
					t.Fatalf("replaced shard %s still connected after the old set's release", old.Name)
				}
			}
			for _, sh := range next.Shards() {
				if err := sh.Set(context.Background(), "k-"+sh.Name, []byte("v"), time.Minute); err != nil {
					t.Fatalf("new set's shard %s: %v", sh.Name, err)
				}
			}
		})
	}
}

// TestRebalanceWindow: after a shard joins, a key that moved is read
// from its previous owner and copied to the new one; its owners are both
// shards; after the window only the new owner is asked.
func TestRebalanceWindow(t *testing.T) {
	srv := valkeytest.Start(t, 2)
	ctx := context.Background()
	one := mustBuild(t, shardCfgs("a="+srv[0].Addr), batchOptions(), nil, BuildOptions{})
	const keys = 200
	for i := range keys {
		k := fmt.Sprintf("key%d", i)
		if err := one.Pick(k).Set(ctx, k, []byte("v-"+k), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	life := func(val []byte, now time.Time) time.Duration { return time.Minute }
	const window = 1500 * time.Millisecond
	two := mustBuild(t, shardCfgs("a="+srv[0].Addr, "b="+srv[1].Addr), batchOptions(), one, BuildOptions{Reload: true, Window: window, Life: life})
	opened := time.Now()
	a, b := two.Shards()[0], two.Shards()[1]
	moved := 0
	for i := range keys {
		k := fmt.Sprintf("key%d", i)
		owner, prev := two.Owners(k, time.Now())
		if owner != two.Pick(k) {
			t.Fatalf("%s: Owners gave %s, Pick %s", k, owner.Name, two.Pick(k).Name)
		}
		if owner == a {
			if prev != nil {
				t.Fatalf("%s stayed on a but has a previous owner %s", k, prev.Name)
			}
			continue
		}
		moved++
		if prev != a {
			t.Fatalf("%s moved to b: previous owner %v, want a", k, prev)
		}
		if _, err := b.GetDirect(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s on b before the read: %v", k, err)
		}
		val, l1, err := two.Get(ctx, k, time.Now())
		if err != nil || string(val) != "v-"+k || l1 {
			t.Fatalf("%s through the window: %q l1=%v %v", k, val, l1, err)
		}
		if got, err := b.GetDirect(ctx, k); err != nil || string(got) != "v-"+k {
			t.Fatalf("%s not copied to b: %q %v", k, got, err)
		}
	}
	if moved < keys/4 || moved > keys*3/4 {
		t.Fatalf("%d of %d keys moved to the second shard", moved, keys)
	}
	if time.Since(opened) >= window {
		t.Skip("the box is too loaded: the window ended before the reads (not a result)")
	}
	// After the window a moved key that b does not have is a miss, and a
	// is asked nothing.
	late := "late"
	for i := 0; two.Pick(late) != b; i++ {
		late = fmt.Sprintf("late%d", i)
	}
	if err := a.Set(ctx, late, []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(opened.Add(window + 100*time.Millisecond)))
	if _, _, err := two.Get(ctx, late, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the window: %v, want ErrNotFound", err)
	}
	if _, prev := two.Owners(late, time.Now()); prev != nil {
		t.Fatalf("after the window a previous owner %s", prev.Name)
	}
}

// TestWindowHoldsRemovedShard: a removed shard stays open, reached by tag
// purges, while the new set's window reads it, and closes when the window
// ends, or when the new set is released first; a window carried on by a
// reload that keeps placement holds it too.
func TestWindowHoldsRemovedShard(t *testing.T) {
	srv := valkeytest.Start(t, 2)
	cfgAB := shardCfgs("a="+srv[0].Addr, "b="+srv[1].Addr)
	cfgB := shardCfgs("b=" + srv[1].Addr)
	tests := []struct {
		name   string
		window time.Duration
		carry  bool // one more reload with the same placement during the window
		end    string
	}{
		{"window ends", 400 * time.Millisecond, false, "timer"},
		{"set released first", time.Minute, false, "release"},
		{"carried on, window ends", 600 * time.Millisecond, true, "timer"},
		{"carried on, released", time.Minute, true, "release"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := mustBuild(t, cfgAB, batchOptions(), nil, BuildOptions{})
			a := first.Shards()[0]
			last := mustBuild(t, cfgB, batchOptions(), first, BuildOptions{Reload: true, Window: tc.window})
			sets := []*Set{first, last}
			if tc.carry {
				last = mustBuild(t, cfgB, batchOptions(), last, BuildOptions{Reload: true, Window: tc.window})
				sets = append(sets, last)
			}
			if got := last.Reach(time.Now()); len(got) != 2 || got[0] != last.Shards()[0] || got[1] != a {
				t.Fatalf("reach during the window: %d shards", len(got))
			}
			for _, s := range sets[:len(sets)-1] {
				s.Release()
			}
			if !a.Connected() || a.Refs() != 1 {
				t.Fatalf("removed shard during the window: connected %v, refs %d; want open, held by the window", a.Connected(), a.Refs())
			}
			if tc.end == "release" {
				last.Release()
			}
			if !waitClosed(t, a) {
				t.Fatal("removed shard still open after its window")
			}
			if n := gatewayClients(t, srv[0]); n != 0 {
				t.Fatalf("%d connections left on the removed shard's server", n)
			}
			if tc.end == "timer" {
				if got := last.Reach(time.Now()); len(got) != 1 {
					t.Fatalf("reach after the window: %d shards", len(got))
				}
				if !last.Shards()[0].Connected() {
					t.Fatal("the window's end closed a shard of the set")
				}
			}
		})
	}
}

// TestFailedBuildHoldsNothing: a reload that adds a shard that does not
// answer fails, and the shards it would have reused keep their count.
func TestFailedBuildHoldsNothing(t *testing.T) {
	srv := valkeytest.Start(t, 1)[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	first := mustBuild(t, shardCfgs("a="+srv.Addr), batchOptions(), nil, BuildOptions{})
	_, err = Build(shardCfgs("a="+srv.Addr, "z="+dead), batchOptions(), first, BuildOptions{Reload: true, Window: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "shards[1] (z") {
		t.Fatalf("build with an unreachable new shard: %v", err)
	}
	if a := first.Shards()[0]; a.Refs() != 1 || !a.Connected() {
		t.Fatalf("after the failed build: refs %d, connected %v; want 1, true", a.Refs(), a.Connected())
	}
}

// TestSetGetHitAllocatesNothing pins a hit through Set.Get at 0
// allocations, with a rebalance window open (a hit never looks at it).
func TestSetGetHitAllocatesNothing(t *testing.T) {
	srv := valkeytest.Start(t, 2)
	o := Options{L1TTL: time.Minute, L1MinUses: 2, DialTimeout: time.Second, CommandTimeout: time.Second, BreakerFailures: 5, BreakerCooldown: time.Second}
	one := mustBuild(t, shardCfgs("a="+srv[0].Addr), o, nil, BuildOptions{})
	two := mustBuild(t, shardCfgs("a="+srv[0].Addr, "b="+srv[1].Addr), o, one, BuildOptions{Reload: true, Window: time.Minute})
	ctx := context.Background()
	for _, key := range []string{"k1", "k2", "k3", "k4"} {
		if err := two.Pick(key).Set(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		var l1 bool
		for deadline := now.Add(5 * time.Second); !l1 && time.Now().Before(deadline); {
			_, l1, _ = two.Get(ctx, key, now) // the first read fills the L1
		}
		if !l1 {
			t.Fatalf("%s: no L1 hit", key)
		}
		if n := testing.AllocsPerRun(200, func() { _, _, _ = two.Get(ctx, key, now) }); n != 0 {
			t.Errorf("%s on %s: an L1 hit through Set.Get allocates %v times", key, two.Pick(key).Name, n)
		}
	}
}

// TestReloadsUnderReads builds and releases sets (shards added, removed,
// moved, windows opened and carried on) while readers use whichever set
// is current; afterwards every shard of every set has closed and no count
// went below zero (drop panics then).
func TestReloadsUnderReads(t *testing.T) {
	srv := valkeytest.Start(t, 3)
	maps := [][]config.Shard{
		shardCfgs("a=" + srv[0].Addr),
		shardCfgs("a="+srv[0].Addr, "b="+srv[1].Addr),
		shardCfgs("a="+srv[0].Addr, "b="+srv[1].Addr), // same placement: the window goes on
		shardCfgs("b=" + srv[1].Addr),
		shardCfgs("b="+srv[2].Addr, "c="+srv[0].Addr),
	}
	var cur atomic.Pointer[Set]
	first, err := Build(maps[0], batchOptions(), nil, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Store(first)
	all := map[*Shard]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Pointer[string]
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _, err := cur.Load().Get(context.Background(), fmt.Sprintf("k%d-%d", w, i%50), time.Now())
				if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrDown) && !errors.Is(err, ErrOpen) {
					msg := err.Error()
					bad.Store(&msg)
				}
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second) // bounded on a loaded box
	for round := 0; round < 20 && time.Now().Before(deadline); round++ {
		old := cur.Load()
		for _, sh := range old.Shards() {
			all[sh] = true
		}
		next, err := Build(maps[(round+1)%len(maps)], batchOptions(), old, BuildOptions{Reload: true, Window: 30 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cur.Store(next)
		old.Release()
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	last := cur.Load()
	for _, sh := range last.Shards() {
		all[sh] = true
	}
	last.Release()
	if p := bad.Load(); p != nil {
		t.Fatalf("a reader got %s", *p)
	}
	for sh := range all {
		if !waitClosed(t, sh) || sh.Refs() != 0 {
			t.Fatalf("shard %s: connected %v, refs %d after every set was released", sh.Name, sh.Connected(), sh.Refs())
		}
	}
	for _, s := range srv {
		if n := gatewayClients(t, s); n != 0 {
			t.Fatalf("%s: %d connections left", s.Addr, n)
		}
	}
}
