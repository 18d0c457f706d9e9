// Package memstore is the embedded, in-process store that edgecache uses
// when no Valkey shard is configured: a byte-budgeted cache (otter, S3-FIFO
// eviction) that honours a TTL per entry. Values are stored as given and
// returned as views: callers must not modify them.
package memstore

import (
	"time"

	"github.com/maypok86/otter/v2"
)

// entryOverhead approximates the bytes an entry costs beyond key and value.
const entryOverhead = 64

type item struct {
	val []byte
	ttl time.Duration
}

// Store is a bounded in-process key/value store with per-entry TTLs.
type Store struct {
	c *otter.Cache[string, item]
}

// New returns a Store holding at most maxBytes of keys and values.
func New(maxBytes int64) *Store {
	c := otter.Must(&otter.Options[string, item]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(k string, v item) uint32 {
			return uint32(min(len(k)+len(v.val)+entryOverhead, 1<<32-1))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, item]) time.Duration {
			return e.Value.ttl
		}),
	})
	return &Store{c: c}
}

// Get returns the value stored under key, or false.
func (s *Store) Get(key string) ([]byte, bool) {
	it, ok := s.c.GetIfPresent(key)
	return it.val, ok
}

// Set stores val under key for ttl. The store keeps val: the caller must
// not modify it afterwards.
func (s *Store) Set(key string, val []byte, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	s.c.Set(key, item{val: val, ttl: ttl})
}

// Delete removes key.
func (s *Store) Delete(key string) { s.c.Invalidate(key) }

// Len returns the approximate number of entries.
func (s *Store) Len() int { return s.c.EstimatedSize() }

// Bytes returns the approximate weight of the entries in bytes.
func (s *Store) Bytes() uint64 { return s.c.WeightedSize() }

// Close stops the store's background goroutines.
func (s *Store) Close() { s.c.StopAllGoroutines() }

// SetMaxBytes changes the memory budget, evicting if it shrank.
func (s *Store) SetMaxBytes(n int64) { s.c.SetMaximum(uint64(n)) }

// SetIfAbsent stores val under key for ttl unless key is present, and
// reports whether it stored.
func (s *Store) SetIfAbsent(key string, val []byte, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	_, stored := s.c.SetIfAbsent(key, item{val: val, ttl: ttl})
	return stored
}

// Extend makes key live at least ttl from now.
func (s *Store) Extend(key string, ttl time.Duration) {
	if e, ok := s.c.GetEntryQuietly(key); ok && time.Until(e.ExpiresAt()) < ttl {
		s.c.SetExpiresAfter(key, ttl)
	}
}

// Replace stores val under key for the rest of the present entry's life;
// it does nothing when key is absent.
func (s *Store) Replace(key string, val []byte) {
	if e, ok := s.c.GetEntryQuietly(key); ok {
		if left := time.Until(e.ExpiresAt()); left > 0 {
			s.c.Set(key, item{val: val, ttl: left})
		}
	}
}
