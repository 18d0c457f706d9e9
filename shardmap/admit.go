package shardmap

import (
	"sync"
	"sync/atomic"
)

// L1 admission
//
// Valkey tracks a key for a connection when it is read with client-side
// caching, and the L1 keeps the answer, "no such key" included. A key
// read once in a long while (each miss of a crawl, a long tail, distinct
// keys) pays for that and gets nothing back: the MULTI/CLIENT CACHING/
// PTTL/EXEC wrapper on the shard, an entry in Valkey's tracking table,
// an invalidation push when the fill stores it, and a slot in the L1.
// With Options.L1MinUses 2, a doorkeeper (TinyLFU's; Ristretto and
// Caffeine admit through one) remembers which keys were looked up
// lately: a key it has not seen is read with a plain GET, untracked, and
// the next lookup of a key it has seen goes through the L1. A key that
// stays hot is seen on every lookup, so it stays admitted.
//
// The doorkeeper is two generations of a bit set of doorBits bits, two
// bits per key from the key's 64-bit hash (the one that places it on the
// ring): a key is seen when the current or the previous generation has
// both its bits. After doorRotate keys new to the current generation it
// becomes the previous one and a cleared set takes its place, so a key is
// remembered for between doorRotate and twice as many other keys' first
// lookups. A false "seen" (about 5% of the keys at the end of a
// generation, from the bits others set) only tracks a key the old way.

const (
	doorLog    = 20 // 2^20 bits, 128 KiB per generation
	doorMask   = 1<<doorLog - 1
	doorRotate = 1 << 17
)

type doorBits [1 << (doorLog - 6)]atomic.Uint64

func (b *doorBits) has(i uint64) bool { return b[i>>6].Load()&(1<<(i&63)) != 0 }

func (b *doorBits) set(i uint64) {
	if !b.has(i) {
		b[i>>6].Or(1 << (i & 63))
	}
}

// doorkeeper is the admission filter of a Set's L1; nil admits every key
// on its first lookup.
type doorkeeper struct {
	cur, prev atomic.Pointer[doorBits]
	added     atomic.Int64 // keys new to cur
	mu        sync.Mutex   // rotation
}

func newDoorkeeper() *doorkeeper {
	d := &doorkeeper{}
	d.cur.Store(new(doorBits))
	return d
}

// use records a lookup of the key whose hash is h and reports whether
// the L1 may keep it: the key was looked up lately, or d is nil. It does
// not allocate; a key seen in the current generation costs two loads.
func (d *doorkeeper) use(h uint64) bool {
	if d == nil {
		return true
	}
	i, j := h&doorMask, (h>>24)&doorMask // the ring reads the top 16 bits
	cur := d.cur.Load()
	if cur.has(i) && cur.has(j) {
		return true
	}
	p := d.prev.Load()
	seen := p != nil && p.has(i) && p.has(j)
	cur.set(i)
	cur.set(j)
	if d.added.Add(1) >= doorRotate {
		d.rotate(cur)
	}
	return seen
}

func (d *doorkeeper) rotate(old *doorBits) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur.Load() != old {
		return // another lookup rotated it
	}
	d.prev.Store(old)
	d.cur.Store(new(doorBits))
	d.added.Store(0)
}
