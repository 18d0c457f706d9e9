package config

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes written as GOMEMLIMIT is: an integer with an
// optional unit B, KiB, MiB, GiB or TiB ("256MiB", "1GiB", "268435456").
// In YAML a bare number is bytes too.
type ByteSize int64

// byteUnits are GOMEMLIMIT's suffixes, longest first so "B" matches last.
var byteUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// UnmarshalText parses s as GOMEMLIMIT does. A negative size parses, so
// that validation can name the field.
func (b *ByteSize) UnmarshalText(s []byte) error {
	text := strings.TrimSpace(string(s))
	num, shift := text, uint(0)
	for _, u := range byteUnits {
		if strings.HasSuffix(text, u.suffix) {
			num, shift = strings.TrimSpace(text[:len(text)-len(u.suffix)]), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return fmt.Errorf("config: size %q: want an integer with an optional unit B, KiB, MiB, GiB or TiB", text)
	}
	if n > (1<<63-1)>>shift || n < -(1<<63-1)>>shift {
		return fmt.Errorf("config: size %q overflows", text)
	}
	*b = ByteSize(n << shift)
	return nil
}

// String formats b in the largest unit that divides it.
func (b ByteSize) String() string {
	for _, u := range byteUnits {
		if u.shift > 0 && b != 0 && int64(b)%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(b)>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// The memory limit's share for the caches (server.memory_limit).
const (
	// CacheMemoryShare is the fraction, in percent, of server.memory_limit
	// that the caches' bounds may add up to: the L1 of every shard
	// connection, the view memo, the fallback or embedded store and the
	// fill buffer. The other half is for what is not a cache (goroutine
	// stacks, connection buffers, plugin instances, the runtime) and for
	// the GC: a heap at half the limit leaves the collector the headroom
	// GOGC=100 gives it, so the limit does not turn into back-to-back GCs.
	CacheMemoryShare = 50
	// MinCacheBytes is the least a capped cache bound goes down to.
	MinCacheBytes = 1 << 20
	// MinMemoryLimit is the smallest server.memory_limit accepted: the
	// gateway idles at 10–20 MiB (RATIONALE.md, "Footprint"); a limit
	// below that makes the GC run without pause.
	MinMemoryLimit = 32 << 20
)

// CacheBounds are the memory bounds of the caches, after
// server.memory_limit capped them (capCaches).
type CacheBounds struct {
	L1BytesPerConn int
	ViewMemoBytes  int64
	FallbackBytes  int64
	EmbeddedBytes  int64
	FillBytes      int64
}

// l1Conns is how many L1 caches the shards hold: one per connection,
// ValkeyConnsPerNode per shard (a Cluster shard counts as one node: its
// nodes are not known here).
func (c *Config) l1Conns() int64 {
	if c.Valkey.DisableL1 {
		return 0
	}
	return int64(len(c.Shards)) * ValkeyConnsPerNode()
}

// ValkeyConnsPerNode is how many pipelined connections valkey-go opens to
// each node, each with an L1 of its own (CacheSizeEachConn):
// 2^⌊log2 GOMAXPROCS⌋, at most 4 (valkey-go v1.0.79's
// singleClientMultiplex, PipelineMultiplex 0): 1 on one core, 2 on two or
// three, 4 from four. shardmap's TestConnsPerNode counts them on a real
// server, so that a valkey-go that changes this fails a test.
func ValkeyConnsPerNode() int64 {
	n := 0
	for p := runtime.GOMAXPROCS(0); p >= 2 && n < 2; p >>= 1 {
		n++
	}
	return 1 << n
}

// capCaches returns the cache bounds of c with viewMemo the view memo's
// uncapped bound: when server.memory_limit is set and their sum exceeds
// CacheMemoryShare percent of it, every bound is scaled down by the same
// factor (to at least MinCacheBytes). Bounds of stores this config does
// not use (the embedded store with shards, the fallback without) count
// nothing and are left as they are.
func (c *Config) capCaches(viewMemo int64) CacheBounds {
	b := CacheBounds{
		L1BytesPerConn: c.Valkey.L1BytesPerConn, ViewMemoBytes: viewMemo,
		FallbackBytes: c.Valkey.FallbackBytes, EmbeddedBytes: c.Embedded.MaxBytes,
		FillBytes: c.Limits.FillBufferBytes,
	}
	limit := int64(c.Server.MemoryLimit)
	if limit <= 0 {
		return b
	}
	budget := limit / 100 * CacheMemoryShare
	l1 := int64(b.L1BytesPerConn) * c.l1Conns()
	store := b.EmbeddedBytes
	if len(c.Shards) > 0 {
		store = 0
		if c.Valkey.FallbackTTL > 0 {
			store = b.FallbackBytes
		}
	}
	total := l1 + b.ViewMemoBytes + store + b.FillBytes
	if total <= budget {
		return b
	}
	scale := func(n int64) int64 { return max(MinCacheBytes, int64(float64(n)*float64(budget)/float64(total))) }
	if l1 > 0 {
		b.L1BytesPerConn = int(scale(int64(b.L1BytesPerConn)))
	}
	b.ViewMemoBytes, b.FillBytes = scale(b.ViewMemoBytes), scale(b.FillBytes)
	if len(c.Shards) > 0 {
		b.FallbackBytes = scale(b.FallbackBytes)
	} else {
		b.EmbeddedBytes = scale(b.EmbeddedBytes)
	}
	return b
}

// DefaultViewMemoBytes bounds the gateway's decoded-entry memo by the
// bytes of the entries it keeps alive (gateway.DefaultViewMemoBytes).
const DefaultViewMemoBytes = 256 << 20

// applyMemoryLimit caps the cache bounds of c to server.memory_limit
// (capCaches); it runs last in EnsureDefaults. The view memo's bound is
// not a config field: ViewMemoBytes returns it.
func (c *Config) applyMemoryLimit() {
	b := c.capCaches(DefaultViewMemoBytes)
	c.Valkey.L1BytesPerConn, c.Valkey.FallbackBytes = b.L1BytesPerConn, b.FallbackBytes
	c.Embedded.MaxBytes, c.Limits.FillBufferBytes = b.EmbeddedBytes, b.FillBytes
	c.Server.viewMemoBytes = b.ViewMemoBytes
}

// ViewMemoBytes returns the bound of the gateway's view memo:
// DefaultViewMemoBytes, or less when server.memory_limit capped it.
func (c *Config) ViewMemoBytes() int64 {
	if c.Server.viewMemoBytes > 0 {
		return c.Server.viewMemoBytes
	}
	return DefaultViewMemoBytes
}

func (c *Config) validateMemory(bad func(field, format string, args ...any)) {
	if c.Server.MemoryLimit < 0 {
		bad("server.memory_limit", "must not be negative")
	} else if c.Server.MemoryLimit > 0 && c.Server.MemoryLimit < MinMemoryLimit {
		bad("server.memory_limit", "%v is below the %v the gateway needs to run", c.Server.MemoryLimit, ByteSize(MinMemoryLimit))
	}
}
