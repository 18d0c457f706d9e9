package shardmap

// Set is the shards of one generation and the Map that places keys on
// them. It is immutable once built.
type Set struct {
	m      *Map
	shards []*Shard
}

// NewSet places keys on shards by their names and weights.
func NewSet(shards []*Shard) (*Set, error) {
	members := make([]Member, len(shards))
	for i, s := range shards {
		members[i] = Member{Name: s.Name, Weight: s.Weight}
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

// Close closes every shard's client.
func (s *Set) Close() {
	for _, sh := range s.shards {
		sh.Close()
	}
}
