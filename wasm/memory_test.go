package wasm

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/edgecache/edgecache/hook"
)

// TestInstanceMemoryAllocatedOnce: an instance's linear memory starts
// with the capacity its init needs, so creating one allocates about its
// memory once. A Rust guest grows its memory by a page in init; with
// wazero's exact-size allocation that copied the whole memory into a new
// one, more than twice the memory in all.
func TestInstanceMemoryAllocatedOnce(t *testing.T) {
	ctx := context.Background()
	h, err := NewHost(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	bin, err := os.ReadFile("../plugins/testdata/examples/rust-pathttl.wasm")
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Load(ctx, bin, hook.PluginOptions{Name: "rust", PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if err := p.WaitFull(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 4
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var linear uint64
	for range n {
		in, err := p.newInstance(ctx)
		if err != nil {
			t.Fatal(err)
		}
		linear += uint64(in.mem.Size())
		p.discard(in)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d instances: %d KiB of linear memory, %d KiB allocated", n, linear>>10, allocated>>10)
	if allocated > linear*3/2 {
		t.Errorf("allocated %d KiB for %d KiB of linear memory: the memory was copied", allocated>>10, linear>>10)
	}
}
