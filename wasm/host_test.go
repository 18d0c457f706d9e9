package wasm_test

import (
	"testing"

	"github.com/edgecache/edgecache/wasm"
)

// TestKeyHook is the smallest round trip: a key hook reads the path and
// sets it as the key; the first call reaches the guest, the rest the memo.
func TestKeyHook(t *testing.T) {
	h := newHost(t)
	p := load(t, h, "wat/minimal.wasm", wasm.PluginOptions{PoolSize: 2})
	for i := range 3 {
		out, act, err := p.AppendKey([]byte("x:"), request("/a/b", "q=1"))
		if err != nil || act != wasm.KeyReplace || string(out) != "x:/a/b" {
			t.Fatalf("call %d: %q %v %v", i, out, act, err)
		}
	}
	s := p.Stats()
	if s.Hooks[wasm.HookKey].Calls != 1 || s.MemoHits != 2 || s.Instances != 2 || s.MemoryBytes != 2*65536 {
		t.Errorf("stats %+v", s)
	}
	// Declined: a path longer than the guest's buffer.
	long := make([]byte, 2000)
	for i := range long {
		long[i] = 'a'
	}
	out, act, err := p.AppendKey(nil, request("/"+string(long), ""))
	if err != nil || act != wasm.KeyDefault || len(out) != 0 {
		t.Fatalf("declined: %q %v %v", out, act, err)
	}
	if s := p.Stats(); s.Hooks[wasm.HookKey].Declined != 1 {
		t.Errorf("declined not counted: %+v", s)
	}
}
