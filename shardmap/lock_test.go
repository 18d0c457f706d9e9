package shardmap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/valkeytest"
)

// TestSetReleasing: a fill lock's holder stores its entry and frees the
// lock in one call; a later Release is a no-op that leaves the next
// holder's lock alone, and a lock taken over by another holder (ours
// expired) is not freed by our store. Standalone (one pipeline) and
// Cluster (Set, then Release).
func TestSetReleasing(t *testing.T) {
	for _, kind := range []string{"standalone", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			spec := Spec{Name: "a"}
			var node func(key string) *valkeytest.Server
			if kind == "standalone" {
				srv := valkeytest.Start(t, 1)[0]
				spec.Addr, node = srv.Addr, func(string) *valkeytest.Server { return srv }
			} else {
				c := valkeytest.StartCluster(t, 3)
				spec.Cluster = strings.Join(c.Seeds(), ",")
				node = func(key string) *valkeytest.Server { return c.Owner(t, key) }
			}
			s := Dial(spec, batchOptions())
			defer s.Close()
			lockVal := func(name string) string {
				t.Helper()
				v, err := node(LockPrefix+name).Do("GET", LockPrefix+name)
				if err != nil && !errors.Is(err, valkeytest.ErrNil) {
					t.Fatal(err)
				}
				return v
			}
			entry := func(key, want string) {
				t.Helper()
				if v, err := s.GetDirect(ctx, key); err != nil || string(v) != want {
					t.Fatalf("%s: got %q, %v; want %q", key, v, err, want)
				}
			}

			a, ok, err := s.TryLock(ctx, "k1", time.Minute)
			if err != nil || !ok || a.Shard() != s {
				t.Fatalf("TryLock: %v, %v", ok, err)
			}
			if err := a.SetReleasing(ctx, "k1", []byte("v1"), time.Minute, "tag1"); err != nil {
				t.Fatal(err)
			}
			entry("k1", "v1")
			if v := lockVal("k1"); v != "" {
				t.Fatalf("lock still held after SetReleasing: %q", v)
			}
			if n, err := s.PurgeTag(ctx, "tag1", false, 0, nil); err != nil || n != 1 {
				t.Fatalf("the tags went with the SET: purged %d, %v", n, err)
			}
			const short = 100 * time.Millisecond
			b, ok, err := s.TryLock(ctx, "k1", short)
			if err != nil || !ok {
				t.Fatalf("TryLock after release: %v, %v", ok, err)
			}
			a.Release() // already released: must not free b's lock
			if v := lockVal("k1"); v != b.token {
				t.Fatalf("a's late Release touched b's lock: %q, want %q", v, b.token)
			}

			// b's lock expires and another holder takes it: b's store
			// (past its validity: the script) must leave the new
			// holder's lock alone.
			waitGone(t, func() bool { return lockVal("k1") == "" }, 10*short)
			if _, err := node(LockPrefix+"k1").Do("SET", LockPrefix+"k1", "other"); err != nil {
				t.Fatal(err)
			}
			if err := b.SetReleasing(ctx, "k1", []byte("v2"), time.Minute); err != nil {
				t.Fatal(err)
			}
			entry("k1", "v2")
			if v := lockVal("k1"); v != "other" {
				t.Fatalf("b's store freed another holder's lock: %q", v)
			}
		})
	}
}

// waitGone polls cond every 5 ms until it holds, failing after limit.
func waitGone(t *testing.T, cond func() bool, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not done within %v", limit)
		}
	}
}

// TestReleaseCommand: a lock freed within half its ttl of being taken is
// freed with a plain DEL (the SET NX reached Valkey after TryLock read
// the clock, so it cannot have expired), by SetReleasing and by Release;
// later, with the token-checking script (TestSetReleasing pins that it
// leaves another holder's lock alone). Counted on the server (INFO
// commandstats).
func TestReleaseCommand(t *testing.T) {
	ctx := context.Background()
	srv := valkeytest.Start(t, 1)[0]
	s := Dial(Spec{Name: "a", Addr: srv.Addr}, batchOptions())
	defer s.Close()
	calls := func(cmd string) int { t.Helper(); return commandCalls(t, srv, cmd) }
	const ttl = 200 * time.Millisecond
	tests := []struct {
		name   string
		wait   time.Duration // between TryLock and the release
		store  bool          // SetReleasing, else Release
		script bool          // freed by the script, else by one DEL alone
	}{
		{"store, within validity", 0, true, false},
		{"release, within validity", 0, false, false},
		{"store, past validity", ttl * 3 / 4, true, true},
		{"release, past validity", ttl * 3 / 4, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok, err := s.TryLock(ctx, "k", ttl)
			if err != nil || !ok {
				t.Fatalf("TryLock: %v, %v", ok, err)
			}
			time.Sleep(tt.wait)
			del0, ev0 := calls("del"), calls("evalsha")+calls("eval")
			if tt.store {
				err = l.SetReleasing(ctx, "k", []byte("v"), time.Minute)
			} else {
				l.Release()
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, err := srv.Do("GET", LockPrefix+"k"); !errors.Is(err, valkeytest.ErrNil) {
				t.Fatalf("lock still there: %q, %v", v, err)
			}
			// The script's own DEL counts too; a first EVALSHA on a
			// server without the script fails (NOSCRIPT) and is counted.
			del, ev := calls("del")-del0, calls("evalsha")+calls("eval")-ev0
			if del != 1 || (ev > 0) != tt.script {
				t.Fatalf("DEL %d, EVAL/EVALSHA %d; want 1 DEL, script %v", del, ev, tt.script)
			}
		})
	}
}
