package plugins_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/wasm"
)

// TestABIWATExamples compiles every ```wat block of ABI.md with wat2wasm
// and loads it through the host, so that the examples a plugin author
// copies work: each exports the hook its text says, and a call of it does
// not fault.
func TestABIWATExamples(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wat2wasm not found (scripts/deps-plugins.sh installs wabt)")
		}
		t.Skip("wat2wasm not found (scripts/deps-plugins.sh installs wabt)")
	}
	doc, err := os.ReadFile("ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```wat\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 4 {
		t.Fatalf("%d wat blocks in ABI.md, want one per hook", len(blocks))
	}
	h, err := wasm.NewHost(context.Background(), wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	dir := t.TempDir()
	seen := map[hook.ID]bool{}
	for i, b := range blocks {
		src, out := filepath.Join(dir, "ex.wat"), filepath.Join(dir, "ex.wasm")
		if err := os.WriteFile(src, b[1], 0o600); err != nil {
			t.Fatal(err)
		}
		if msg, err := exec.Command(wat2wasm, src, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("block %d: wat2wasm: %v\n%s", i, err, msg)
		}
		bin, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policies.LoadPlugin(context.Background(), h, bin, hook.PluginOptions{Name: "abi-example", PoolSize: 1})
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		r := &hook.Request{Method: "GET", Scheme: "https", Host: "h", Path: "/p", Header: map[string][]string{"Authorization": {"x"}}}
		for _, id := range []hook.ID{hook.KeyHook, hook.ResponseHook, hook.MissHook} {
			if !p.Has(id) {
				continue
			}
			seen[id] = true
			switch id {
			case hook.KeyHook:
				_, _, err = p.AppendKey(nil, r)
			case hook.ResponseHook:
				d := hook.Decision{Store: true, TTL: 60_000_000_000}
				err = p.Response(r, &hook.Response{Status: 200}, &d)
			case hook.MissHook:
				var a hook.MissAction
				err = p.Miss(r, &a)
			}
			if err != nil && err != hook.ErrDeclined {
				t.Errorf("block %d, %s hook: %v", i, id, err)
			}
		}
		_ = p.Close(context.Background())
	}
	for _, id := range []hook.ID{hook.KeyHook, hook.ResponseHook, hook.MissHook} {
		if !seen[id] {
			t.Errorf("no example exports the %s hook", id)
		}
	}
}
