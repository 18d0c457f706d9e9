package shardmap

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/valkeytest"
)

// TestDoorkeeper: a key is admitted from its second use; it is still
// remembered one rotation later and forgotten two rotations later, and a
// key used in every generation stays admitted.
func TestDoorkeeper(t *testing.T) {
	d := newDoorkeeper()
	h := func(s string) uint64 { return sum64(s) }
	if d.use(h("a")) {
		t.Fatal("a first use was admitted")
	}
	for use := 2; use <= 3; use++ {
		if !d.use(h("a")) {
			t.Fatalf("use %d of a was not admitted", use)
		}
	}
	d.use(h("old"))
	fill := func(gen int) { // doorRotate other keys, each new: one rotation
		for i := range doorRotate {
			d.use(h("k" + strconv.Itoa(gen) + "/" + strconv.Itoa(i)))
			if i%1000 == 0 {
				d.use(h("hot"))
			}
		}
	}
	d.use(h("hot"))
	fill(1)
	if !d.use(h("old")) {
		t.Error("a key used one generation ago was forgotten")
	}
	fill(2)
	fill(3)
	if d.use(h("old")) { // sum64 is fixed: not a false positive that comes and goes
		t.Error("a key unused for two generations was still admitted")
	}
	if !d.use(h("hot")) {
		t.Error("a key used in every generation was not admitted")
	}
	false1 := 0
	for i := range 10000 {
		if d.use(h("fresh/" + strconv.Itoa(i))) {
			false1++
		}
	}
	if false1 > 1500 {
		t.Errorf("%d of 10000 new keys admitted on their first use", false1)
	}
	var nilDoor *doorkeeper
	if !nilDoor.use(1) {
		t.Error("a nil doorkeeper refused a key")
	}
}

// TestDoorkeeperConcurrent: uses from many goroutines, through rotations
// (for -race).
func TestDoorkeeperConcurrent(t *testing.T) {
	d := newDoorkeeper()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range doorRotate {
				d.use(sum64("w" + strconv.Itoa(w) + "/" + strconv.Itoa(i)))
			}
		})
	}
	wg.Wait()
	if d.prev.Load() == nil {
		t.Error("4×doorRotate new keys and no rotation")
	}
}

// TestL1MinUses: with l1_min_uses 2 a key's first lookup is a plain GET
// that Valkey does not track (no client-side caching wrapper, nothing in
// its tracking table), and it says so with a miss too; the second is
// tracked and the third an L1 hit. With 1, the first is tracked.
func TestL1MinUses(t *testing.T) {
	servers := valkeytest.Start(t, 2)
	ctx := context.Background()
	for i, uses := range []int{1, 2} {
		t.Run(strconv.Itoa(uses), func(t *testing.T) {
			srv := servers[i] // its own tracking table
			o := Options{L1TTL: time.Minute, L1MinUses: uses, DialTimeout: time.Second, CommandTimeout: time.Second, BreakerFailures: 5, BreakerCooldown: time.Second}
			s := mustBuild(t, shardCfgs("a="+srv.Addr), o, nil, BuildOptions{})
			key, absent := "present-"+strconv.Itoa(uses), "absent-"+strconv.Itoa(uses)
			if err := s.Pick(key).Set(ctx, key, []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Do("CONFIG", "RESETSTAT"); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			val, l1, err := s.Get(ctx, key, now)
			if err != nil || string(val) != "v" || l1 {
				t.Fatalf("first lookup: %q, l1 %v, %v", val, l1, err)
			}
			wantTracked := 0
			if uses == 1 {
				wantTracked = 1
			}
			if n := commandCalls(t, srv, "exec"); n != wantTracked {
				t.Errorf("first lookup: %d tracked reads (MULTI … EXEC), want %d", n, wantTracked)
			}
			if n := trackedKeys(t, srv); n != wantTracked {
				t.Errorf("first lookup: %d keys in Valkey's tracking table, want %d", n, wantTracked)
			}
			if uses == 2 {
				if _, l1, err = s.Get(ctx, key, now); err != nil || l1 {
					t.Fatalf("second lookup: l1 %v, %v; want a tracked round trip", l1, err)
				}
				if n := commandCalls(t, srv, "exec"); n != 1 {
					t.Errorf("second lookup: %d tracked reads, want 1", n)
				}
			}
			if _, l1, err = s.Get(ctx, key, now); err != nil || !l1 {
				t.Errorf("lookup after the tracked one: l1 %v, %v; want an L1 hit", l1, err)
			}
			if _, l1, err = s.Get(ctx, absent, now); err != ErrNotFound || l1 != (uses == 1) {
				t.Errorf("first lookup of a missing key: %v, l1 (held by the L1) %v", err, l1)
			}
			if _, l1, err = s.Get(ctx, absent, now); err != ErrNotFound || !l1 {
				t.Errorf("second lookup of a missing key: %v, l1 %v; want it tracked", err, l1)
			}
		})
	}
}

// trackedKeys is the size of srv's tracking table.
func trackedKeys(t *testing.T, srv *valkeytest.Server) int {
	t.Helper()
	out, err := srv.Do("INFO", "stats")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(out, "tracking_total_keys:")
	if !ok {
		t.Fatal("no tracking_total_keys in INFO stats")
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
