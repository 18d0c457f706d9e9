package shardmap_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/edgecache/edgecache/internal/valkeytest"
	"github.com/edgecache/edgecache/shardmap"
)

func TestCertStorage(t *testing.T) {
	srv := valkeytest.Start(t, 1)[0]
	ctx := context.Background()
	open := func() *shardmap.CertStorage {
		s, err := shardmap.NewCertStorage(shardmap.Spec{Name: "a", Addr: srv.Addr}, shardmap.Options{DialTimeout: time.Second, CommandTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	a, b := open(), open()

	t.Run("store-load-list-stat-delete", func(t *testing.T) {
		for _, k := range []string{"certs/ca/x.test/x.test.crt", "certs/ca/x.test/x.test.key", "certs/ca/y.test/y.test.crt", "acme/account.json"} {
			if err := a.Store(ctx, k, []byte("value of "+k)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := b.Load(ctx, "certs/ca/x.test/x.test.key")
		if err != nil || string(got) != "value of certs/ca/x.test/x.test.key" {
			t.Fatalf("Load from the other gateway: %q, %v", got, err)
		}
		if _, err := b.Load(ctx, "certs/none"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
		}
		children, _ := b.List(ctx, "certs/ca", false)
		if !slices.Equal(children, []string{"certs/ca/x.test", "certs/ca/y.test"}) {
			t.Fatalf("List non-recursive = %v", children)
		}
		all, _ := b.List(ctx, "certs", true)
		if len(all) != 3 {
			t.Fatalf("List recursive = %v", all)
		}
		if ki, err := b.Stat(ctx, "certs/ca/y.test/y.test.crt"); err != nil || !ki.IsTerminal || ki.Size != int64(len("value of certs/ca/y.test/y.test.crt")) || time.Since(ki.Modified) > time.Minute {
			t.Fatalf("Stat = %+v, %v", ki, err)
		}
		if ki, err := b.Stat(ctx, "certs/ca"); err != nil || ki.IsTerminal {
			t.Fatalf("Stat of a directory = %+v, %v", ki, err)
		}
		if !b.Exists(ctx, "acme/account.json") || b.Exists(ctx, "acme/none") {
			t.Fatal("Exists wrong")
		}
		if err := a.Delete(ctx, "certs/ca/x.test"); err != nil {
			t.Fatal(err)
		}
		if b.Exists(ctx, "certs/ca/x.test/x.test.crt") {
			t.Fatal("Delete of a directory left a key below it")
		}
		if all, _ := b.List(ctx, "certs", true); !slices.Equal(all, []string{"certs/ca/y.test/y.test.crt"}) {
			t.Fatalf("List after Delete = %v", all)
		}
	})

	t.Run("lock-excludes-other-gateway", func(t *testing.T) {
		if err := a.Lock(ctx, "issue_cert_x.test"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.TryLock(ctx, "issue_cert_x.test"); ok || err != nil {
			t.Fatalf("TryLock of a held lock: %v, %v", ok, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
		defer cancel()
		if err := b.Lock(wctx, "issue_cert_x.test"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock while held: %v, want the deadline", err)
		}
		if err := b.Unlock(ctx, "issue_cert_x.test"); err == nil {
			t.Fatal("Unlock by a gateway that does not hold the lock succeeded")
		}
		got := make(chan error, 1)
		go func() { got <- b.Lock(ctx, "issue_cert_x.test") }()
		time.Sleep(100 * time.Millisecond)
		if err := a.Unlock(ctx, "issue_cert_x.test"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the waiting gateway did not get the lock after Unlock")
		}
		if err := b.Unlock(ctx, "issue_cert_x.test"); err != nil {
			t.Fatal(err)
		}
	})
}
