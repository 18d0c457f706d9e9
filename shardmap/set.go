package shardmap

// Set is the shards of one generation and the Map that places keys on
// them. It is immutable once built.
type Set struct {
	m      *Map
	shards []*Shard
}

// NewSet places keys on shards by their names and weights (weights[i] is
// shards[i]'s; nil means all 1).
func NewSet(shards []*Shard, weights []int) (*Set, error) {
	members := make([]Member, len(shards))
	for i, s := range shards {
		members[i] = Member{Name: s.Name, Weight: 1}
		if weights != nil {
			members[i].Weight = weights[i]
		}
	}
	m, err := New(members)
	if err != nil {
		return nil, err
	}
	return &Set{m: m, shards: shards}, nil
}

// Pick returns the shard that owns key. It allocates nothing.
func (s *Set) Pick(key string) *Shard { return s.shards[s.m.PickString(key)] }

// Shards returns the shards in configuration order. The slice is shared:
// do not modify it.
func (s *Set) Shards() []*Shard { return s.shards }

// Map returns the key placement.
func (s *Set) Map() *Map { return s.m }

// Retire retires every shard of s that none of keep holds too: each
// closes once its in-flight calls finish.
func (s *Set) Retire(keep ...*Set) {
	for _, sh := range s.shards {
		kept := false
		for _, k := range keep {
			kept = kept || k != nil && k.Has(sh)
		}
		if !kept {
			sh.Retire()
		}
	}
}

// Has reports whether sh is one of the set's shards.
func (s *Set) Has(sh *Shard) bool {
	for _, x := range s.shards {
		if x == sh {
			return true
		}
	}
	return false
}

// Find returns the shard of s dialed with spec and o, or nil.
func (s *Set) Find(spec Spec, o Options) *Shard {
	for _, x := range s.shards {
		if x.Spec == spec && x.opts == o && !x.retired.Load() {
			return x
		}
	}
	return nil
}
