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
			b, ok, err := s.TryLock(ctx, "k1", time.Minute)
			if err != nil || !ok {
				t.Fatalf("TryLock after release: %v, %v", ok, err)
			}
			a.Release() // already released: must not free b's lock
			if v := lockVal("k1"); v != b.token {
				t.Fatalf("a's late Release touched b's lock: %q, want %q", v, b.token)
			}

			// b's lock expires and another holder takes it: b's store
			// must leave the new holder's lock alone.
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
