package wasm_test

import (
	"errors"
	"testing"

	"github.com/edgecache/edgecache/hook"
)

// TestKeyHook is the smallest round trip: a key hook reads the path and
// sets it as the key; the first call reaches the guest, the rest the memo.
func TestKeyHook(t *testing.T) {
	h := newHost(t)
	p := load(t, h, "wat/minimal.wasm", hook.PluginOptions{PoolSize: 2})
	for i := range 3 {
		out, act, err := p.AppendKey([]byte("x:"), request("/a/b", "q=1"))
		if err != nil || act != hook.KeyReplace || string(out) != "x:/a/b" {
			t.Fatalf("call %d: %q %v %v", i, out, act, err)
		}
	}
	s := p.Stats()
	if s.Hooks[hook.KeyHook].Calls != 1 || s.MemoHits != 2 || s.Instances != 2 || s.MemoryBytes != 2*65536 {
		t.Errorf("stats %+v", s)
	}
	// Declined: a path longer than the guest's buffer.
	long := make([]byte, 2000)
	for i := range long {
		long[i] = 'a'
	}
	out, act, err := p.AppendKey(nil, request("/"+string(long), ""))
	if !errors.Is(err, hook.ErrDeclined) || act != hook.KeyDefault || len(out) != 0 {
		t.Fatalf("declined: %q %v %v, want ErrDeclined", out, act, err)
	}
	if s := p.Stats(); s.Hooks[hook.KeyHook].Declined != 1 {
		t.Errorf("declined not counted: %+v", s)
	}
}
