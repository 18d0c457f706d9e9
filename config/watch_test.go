package config

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// waitCount waits until n reaches want, then checks it stays there a
// moment (no extra calls).
func waitCount(t *testing.T, n *atomic.Int32, want int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	if got := n.Load(); got != want {
		t.Fatalf("onChange called %d times, want %d", got, want)
	}
}

func startWatch(t *testing.T, path string) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := Watch(ctx, path, 50*time.Millisecond, func() { n.Add(1) }); err != nil {
		t.Fatal(err)
	}
	return &n
}

func TestWatchWriteInPlaceDebounced(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	must(t, os.WriteFile(p, []byte("a"), 0o600))
	n := startWatch(t, p)
	for i := range 5 { // a burst: one call
		must(t, os.WriteFile(p, []byte{'b', byte('0' + i)}, 0o600))
	}
	waitCount(t, n, 1)
	must(t, os.WriteFile(p, []byte("b4"), 0o600)) // same content: no call
	waitCount(t, n, 1)
}

func TestWatchRenameOver(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	must(t, os.WriteFile(p, []byte("a"), 0o600))
	n := startWatch(t, p)
	for i, content := range []string{"b", "c"} { // editor style: write a temp file, rename it over
		tmp := filepath.Join(dir, ".c.yaml.swp")
		must(t, os.WriteFile(tmp, []byte(content), 0o600))
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		waitCount(t, n, int32(i+1))
	}
	// Remove then create (another editor style) survives too.
	must(t, os.Remove(p))
	time.Sleep(100 * time.Millisecond)
	must(t, os.WriteFile(p, []byte("d"), 0o600))
	waitCount(t, n, 3)
}

func TestWatchConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	// The layout kubelet writes: c.yaml -> ..data/c.yaml, ..data -> ..v1
	mk := func(version, content string) {
		must(t, os.MkdirAll(filepath.Join(dir, version), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, version, "c.yaml"), []byte(content), 0o600))
	}
	mk("..v1", "a")
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "c.yaml"), filepath.Join(dir, "c.yaml")))
	n := startWatch(t, filepath.Join(dir, "c.yaml"))

	mk("..v2", "b")
	tmp := filepath.Join(dir, "..data_tmp")
	must(t, os.Symlink("..v2", tmp))
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil { // atomic swap
		t.Fatal(err)
	}
	must(t, os.RemoveAll(filepath.Join(dir, "..v1")))
	waitCount(t, n, 1)
}

// must fails the test on a setup step's error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
