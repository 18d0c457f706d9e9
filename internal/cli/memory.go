package cli

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/edgecache/edgecache/config"
)

// memoryLimit applies server.memory_limit to the runtime, at start and on
// every reload. A GOMEMLIMIT environment variable wins: the runtime read
// it at start, and an operator who set it meant it; the caches are still
// capped by server.memory_limit (config/memory.go).
type memoryLimit struct {
	env  bool         // GOMEMLIMIT was set
	set  bool         // this process set a limit
	idle atomic.Int64 // server.idle_release (release.go)
}

func newMemoryLimit() *memoryLimit { return &memoryLimit{env: os.Getenv("GOMEMLIMIT") != ""} }

func (m *memoryLimit) apply(cfg *config.Config, log *slog.Logger) {
	m.idle.Store(int64(cfg.Server.IdleRelease))
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
// the scavenger return over minutes. One forced GC off the request path
// costs a few ms of CPU: at start it runs on its own goroutine once the
// listener serves (the first request does not wait for it: −5 to −15 ms
// of exec-to-first-200 without plugins), on a reload after the swap.
func (m *memoryLimit) settle() { debug.FreeOSMemory() }

// idleRelease is the current server.idle_release.
func (m *memoryLimit) idleRelease() time.Duration { return time.Duration(m.idle.Load()) }

// DefaultTrimDelay is how long after the listeners open the executable's
// startup pages are unmapped (trimExecutable): long enough for the work
// that follows the start in the background (file watches, the admin
// listener, the shard clients' first round trips) to be done, so that
// only what serving uses comes back.
const DefaultTrimDelay = time.Second

// trim unmaps the executable's read-only pages (trim_linux.go), off the
// request path; a failure only costs memory, so it is logged at debug.
func trim(log *slog.Logger) {
	n, err := trimExecutable()
	if err != nil {
		log.Debug("cannot trim the executable's pages", "err", err)
		return
	}
	log.Debug("trimmed the executable's startup pages", "bytes", n)
}

// trimAfter calls trim once after delay, unless ctx ends first.
func trimAfter(ctx context.Context, delay time.Duration, log *slog.Logger) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		trim(log)
	}
}
