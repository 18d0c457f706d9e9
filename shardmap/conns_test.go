package shardmap

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/valkeytest"
)

// TestConnsPerNode: the connections valkey-go opens to a node, each with
// an L1 of its own, are as many as config.ValkeyConnsPerNode says, which
// is what server.memory_limit's accounting of the L1 multiplies by.
func TestConnsPerNode(t *testing.T) {
	srv := valkeytest.Start(t, 1)[0]
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 4, 8} {
		t.Run(fmt.Sprint("GOMAXPROCS=", procs), func(t *testing.T) {
			runtime.GOMAXPROCS(procs)
			want := config.ValkeyConnsPerNode()
			if n := gatewayClients(t, srv); n != 0 { // the previous case's connections are gone
				t.Fatalf("%d connections left from the previous case", n)
			}
			opts := batchOptions()
			opts.DisableL1, opts.L1BytesPerConn = false, 1<<20
			s := Dial(Spec{Name: "a", Addr: srv.Addr}, opts)
			defer func() {
				s.Close()
				waitClosed(t, s)
			}()
			ctx := context.Background()
			// Lookups go out on the connection their key's slot picks,
			// plain commands on any: 200 keys of each reach every one.
			for i := range 200 {
				key := fmt.Sprintf("conns-%d", i)
				if err := s.Set(ctx, key, []byte("v"), time.Minute); err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.Get(ctx, key, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			out, err := srv.Do("CLIENT", "LIST")
			if err != nil {
				t.Fatal(err)
			}
			got := int64(len(strings.Split(strings.TrimSpace(out), "\n")) - 1) // less this test's own
			if got != want {
				t.Fatalf("valkey-go opened %d connections with GOMAXPROCS=%d; config.ValkeyConnsPerNode says %d", got, procs, want)
			}
		})
	}
}
