package shardmap

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgecache/edgecache/config"
)

// Set is the shards of one generation and the Map that places keys on
// them. Its placement and shards never change once built; Release gives
// them up.
//
// A Set holds one reference to each of its shards, as caddy's UsagePool
// counts the users of a pooled value: Build reuses a shard of the previous
// set (the same client, connections and L1) by taking one more reference,
// and a shard closes when the last set holding it is released. No set
// needs to know which others exist.
type Set struct {
	m        *Map
	shards   []*Shard
	reach    []*Shard    // shards, then the previous set's shards that left, while the window is open
	win      *window     // nil: no rebalance window
	door     *doorkeeper // L1 admission (admit.go); nil: every key on its first lookup
	released atomic.Bool
}

// BuildOptions say how Build treats the set it replaces.
type BuildOptions struct {
	// Reload is set on a running gateway's reload: a shard dialed anew
	// that does not answer fails Build, since an unreachable address in an
	// edit is more likely a typo than an outage. At startup such a shard
	// is dialed lazily instead (its Valkey may still be booting).
	Reload bool
	// Window is how long after a change of placement a key missing on its
	// owner is read from its previous owner (valkey.rebalance_window);
	// <= 0: not at all.
	Window time.Duration
	// Life returns how long a value read from a key's previous owner is
	// copied to its new owner for (<= 0 or a nil Life: not copied). The
	// shard map does not read the entries it stores; the gateway does.
	Life func(val []byte, now time.Time) time.Duration
}

// window is a set's rebalance window: until then it reads the previous
// owner of a key that misses, and holds one reference to each of the
// previous set's shards so that they stay open that long.
type window struct {
	prev  *Set
	until int64 // unix ns
	life  func(val []byte, now time.Time) time.Duration
	held  []*Shard
	timer *time.Timer
	once  sync.Once
}

// Build returns the shard set of cfgs (defaults filled in by config),
// built from prev (nil at startup). A shard of prev (or one prev still
// reads in its window) with the same Spec and Options is reused, held by
// one more reference; the others are dialed. If placement changed and
// b.Window > 0, the new set reads previous owners for the window; if it
// did not, prev's window goes on in the new set. On error nothing is held.
func Build(cfgs []config.Shard, o Options, prev *Set, b BuildOptions) (*Set, error) {
	members := make([]Member, len(cfgs))
	for i, sc := range cfgs {
		members[i] = Member{Name: sc.Name, Weight: sc.Weight}
	}
	m, err := New(members)
	if err != nil {
		return nil, err
	}
	s := &Set{m: m, shards: make([]*Shard, len(cfgs))}
	if !o.DisableL1 && o.L1MinUses >= 2 {
		if s.door = newDoorkeeper(); prev != nil && prev.door != nil {
			s.door = prev.door // a reload keeps what the lookups taught it
		}
	}
	for i, sc := range cfgs {
		spec := SpecOf(sc)
		if s.shards[i] = prev.reuse(spec, o); s.shards[i] != nil {
			continue
		}
		sh := Dial(spec, o)
		sh.refs.Store(1)
		s.shards[i] = sh
		if b.Reload && !sh.Connected() {
			s.Release()
			return nil, fmt.Errorf("shardmap: shards[%d] (%s, %s %s) does not answer: %s", i, sc.Name, spec.Kind(), spec.Target(), sh.Err())
		}
	}
	s.openWindow(prev, b, time.Now())
	return s, nil
}

// reuse returns a shard that s reaches, dialed with spec and o, with one
// more reference taken; nil if there is none (or s is nil).
func (s *Set) reuse(spec Spec, o Options) *Shard {
	if s == nil {
		return nil
	}
	for _, x := range s.reach {
		if x.Spec == spec && x.opts == o && x.hold() {
			return x
		}
	}
	return nil
}

// openWindow starts s's rebalance window from prev when placement
// changed, or carries prev's on when it did not.
func (s *Set) openWindow(prev *Set, b BuildOptions, now time.Time) {
	s.reach = s.shards
	if prev == nil || b.Window <= 0 {
		return
	}
	from, until := prev, now.Add(b.Window).UnixNano()
	if samePlacement(prev, s) {
		if prev.win == nil || now.UnixNano() >= prev.win.until {
			return
		}
		from, until = prev.win.prev, prev.win.until // the same placement: the window goes on
	}
	w := &window{prev: from, until: until, life: b.Life}
	for _, sh := range from.shards {
		if !sh.hold() { // a carried-on window that ended meanwhile
			w.end()
			return
		}
		w.held = append(w.held, sh)
	}
	for _, sh := range from.shards {
		if !s.has(sh) {
			s.reach = append(s.reach[:len(s.reach):len(s.reach)], sh)
		}
	}
	w.timer = time.AfterFunc(time.Until(time.Unix(0, until)), w.end)
	s.win = w
}

// end gives up the window's references, once: when the window ends or
// when its set is released, whichever comes first.
func (w *window) end() {
	w.once.Do(func() {
		for _, sh := range w.held {
			sh.drop()
		}
	})
}

// samePlacement reports whether a and b place every key on the same shard.
func samePlacement(a, b *Set) bool {
	if len(a.shards) != len(b.shards) {
		return false
	}
	for i := range a.shards {
		if a.shards[i] != b.shards[i] || a.m.members[i] != b.m.members[i] {
			return false
		}
	}
	return true
}

// Release gives up the set's references: one to each of its shards, and
// those to the previous set's shards held for its rebalance window. A
// shard that no set holds any more retires: it closes once its in-flight
// calls finish. Release a set when it is replaced; calls after the first
// do nothing.
func (s *Set) Release() {
	if !s.released.CompareAndSwap(false, true) {
		return
	}
	if s.win != nil {
		s.win.timer.Stop()
		s.win.end()
	}
	for _, sh := range s.shards {
		if sh != nil { // a Build that failed half-way
			sh.drop()
		}
	}
}

// hold takes one more reference to s, unless it has none left (it
// retired): a set may reuse a shard only while another set holds it.
func (s *Shard) hold() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// drop gives up one reference; the last one retires the shard.
func (s *Shard) drop() {
	switch n := s.refs.Add(-1); {
	case n == 0:
		s.retire()
	case n < 0:
		panic("shardmap: shard " + s.Name + " released more often than held")
	}
}

// Refs returns how many sets hold the shard (0: it retired).
func (s *Shard) Refs() int { return int(s.refs.Load()) }

// Pick returns the shard that owns key. It allocates nothing.
func (s *Set) Pick(key string) *Shard { return s.shards[s.m.PickString(key)] }

// Get reads key from the shard that owns it (see Shard.Get). During the
// rebalance window a key its owner does not have is read from its
// previous owner and, when found there, copied to the owner for the rest
// of its life (BuildOptions.Life), so that a change of placement sends
// the moved keys to the old shards, not all at once to the origin. A hit
// allocates nothing.
func (s *Set) Get(ctx context.Context, key string, now time.Time) (val []byte, l1 bool, err error) {
	h := sum64(key)
	owner := s.shards[s.m.table[h>>48]]
	val, l1, err = owner.get(ctx, key, s.door.use(h), now)
	if err == ErrNotFound && s.win != nil && now.UnixNano() < s.win.until {
		if v, ok := s.win.readThrough(ctx, owner, key, now); ok {
			return v, false, nil
		}
	}
	return val, l1, err
}

// readThrough reads key from its previous owner and copies it to owner.
func (w *window) readThrough(ctx context.Context, owner *Shard, key string, now time.Time) ([]byte, bool) {
	old := w.prev.Pick(key)
	if old == owner {
		return nil, false
	}
	v, _, err := old.Get(ctx, key, now)
	if err != nil {
		return nil, false
	}
	if w.life != nil {
		if ttl := w.life(v, now); ttl > 0 {
			_ = owner.Set(ctx, key, bytes.Clone(v), ttl) // v is the L1's view
		}
	}
	return v, true
}

// Owners returns the shard that owns key and, during the rebalance
// window, its previous owner if that differs (else nil): a delete or a
// purge must reach both, or the next miss would copy the entry back.
func (s *Set) Owners(key string, now time.Time) (owner, prev *Shard) {
	owner = s.Pick(key)
	if s.win != nil && now.UnixNano() < s.win.until {
		if old := s.win.prev.Pick(key); old != owner {
			prev = old
		}
	}
	return owner, prev
}

// Reach returns every shard a key may be read from at now: the set's, and
// during the rebalance window the previous set's that left it. A tag purge
// asks each. The slice is shared: do not modify it.
func (s *Set) Reach(now time.Time) []*Shard {
	if s.win != nil && now.UnixNano() < s.win.until {
		return s.reach
	}
	return s.shards
}

// Shards returns the shards in configuration order. The slice is shared:
// do not modify it.
func (s *Set) Shards() []*Shard { return s.shards }

// Map returns the key placement.
func (s *Set) Map() *Map { return s.m }

// has reports whether sh is one of the set's shards.
func (s *Set) has(sh *Shard) bool {
	for _, x := range s.shards {
		if x == sh {
			return true
		}
	}
	return false
}
