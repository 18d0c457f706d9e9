package cli

import (
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/edgecache/edgecache/config"
)

// TestMemoryLimitApplied: server.memory_limit becomes the runtime's limit,
// a reload that removes it restores none, and with GOMEMLIMIT set the
// config does not override it.
func TestMemoryLimitApplied(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := func(n config.ByteSize) *config.Config {
		c := &config.Config{}
		c.Server.MemoryLimit = n
		return c
	}
	m := &memoryLimit{}
	steps := []struct {
		name  string
		limit config.ByteSize
		want  int64
	}{
		{"start with 256MiB", 256 << 20, 256 << 20},
		{"reload to 1GiB", 1 << 30, 1 << 30},
		{"reload without it", 0, math.MaxInt64},
		{"reload with 64MiB", 64 << 20, 64 << 20},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			m.apply(cfg(s.limit), log)
			if got := debug.SetMemoryLimit(-1); got != s.want {
				t.Fatalf("runtime limit %d, want %d", got, s.want)
			}
		})
	}
	t.Run("GOMEMLIMIT wins", func(t *testing.T) {
		debug.SetMemoryLimit(512 << 20) // as the runtime would have from GOMEMLIMIT=512MiB
		env := &memoryLimit{env: true}
		env.apply(cfg(128<<20), log)
		if got := debug.SetMemoryLimit(-1); got != 512<<20 {
			t.Fatalf("runtime limit %d, want GOMEMLIMIT's %d", got, 512<<20)
		}
	})
}
