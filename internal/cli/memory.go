package cli

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/edgecache/edgecache/config"
)

// memoryLimit applies server.memory_limit to the runtime, at start and on
// every reload. A GOMEMLIMIT environment variable wins: the runtime read
// it at start, and an operator who set it meant it; the caches are still
// capped by server.memory_limit (config/memory.go).
type memoryLimit struct {
	env bool // GOMEMLIMIT was set
	set bool // this process set a limit
}

func newMemoryLimit() *memoryLimit { return &memoryLimit{env: os.Getenv("GOMEMLIMIT") != ""} }

func (m *memoryLimit) apply(cfg *config.Config, log *slog.Logger) {
	limit := int64(cfg.Server.MemoryLimit)
	switch {
	case m.env:
		if limit > 0 {
			log.Warn("GOMEMLIMIT is set: it, not server.memory_limit, is the runtime's memory limit", "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"), "memory_limit", cfg.Server.MemoryLimit.String())
		}
	case limit > 0:
		debug.SetMemoryLimit(limit)
		m.set = true
	case m.set: // the limit was removed from the config
		debug.SetMemoryLimit(math.MaxInt64)
		m.set = false
	}
}

// settle returns the garbage of a startup or reload to the OS at once:
// compiling plugins (wazero) leaves tens of MiB of it (a Go guest: ~30
// MiB), which the next GC would collect only once the heap doubled and
// the scavenger return over minutes. One forced GC off the request path,
// after the generation is built, costs a few ms of CPU.
func (m *memoryLimit) settle() { debug.FreeOSMemory() }
