package shardmap

// PlanResult is what moving from one Map to another costs: per shard
// name, the keys held before and after, lost and gained. Counts are of
// buckets (Plan: the whole key space, Total is Buckets) or of the keys a
// Planner was given.
type PlanResult struct {
	Shards []PlanShard `json:"shards"` // old members in order, then new ones
	Total  int         `json:"total"`
	Moved  int         `json:"moved"`
}

// PlanShard is one shard's line of a plan. A weight of 0 means the shard
// is not in that map.
type PlanShard struct {
	Name      string `json:"name"`
	Weight    int    `json:"weight"`
	NewWeight int    `json:"new_weight"`
	Before    int    `json:"before"`
	After     int    `json:"after"`
	Lost      int    `json:"lost"`
	Gained    int    `json:"gained"`
}

// MovedFraction is Moved/Total (0 for an empty plan).
func (p PlanResult) MovedFraction() float64 {
	if p.Total == 0 {
		return 0
	}
	return float64(p.Moved) / float64(p.Total)
}

// Plan computes, exactly over every bucket, what moving from old to new
// costs. It contacts no server.
func Plan(old, new *Map) PlanResult {
	p := NewPlanner(old, new)
	for b := range Buckets {
		p.AddBucket(b, 1)
	}
	return p.Result()
}

// Planner counts a plan over chosen keys (a sample, or a file of real
// keys) instead of the whole key space.
type Planner struct {
	old, new *Map
	res      PlanResult
	idx      map[string]int // name → index in res.Shards
	oldIdx   []int          // old member → index in res.Shards
	newIdx   []int
}

// NewPlanner returns an empty plan from old to new.
func NewPlanner(old, new *Map) *Planner {
	p := &Planner{old: old, new: new, idx: map[string]int{}}
	row := func(name string) int {
		i, ok := p.idx[name]
		if !ok {
			i = len(p.res.Shards)
			p.idx[name] = i
			p.res.Shards = append(p.res.Shards, PlanShard{Name: name})
		}
		return i
	}
	for _, m := range old.members {
		i := row(m.Name)
		p.res.Shards[i].Weight = m.Weight
		p.oldIdx = append(p.oldIdx, i)
	}
	for _, m := range new.members {
		i := row(m.Name)
		p.res.Shards[i].NewWeight = m.Weight
		p.newIdx = append(p.newIdx, i)
	}
	return p
}

// AddBucket counts n keys of bucket b (see Bucket).
func (p *Planner) AddBucket(b, n int) {
	from := &p.res.Shards[p.oldIdx[p.old.Owner(b)]]
	to := &p.res.Shards[p.newIdx[p.new.Owner(b)]]
	p.res.Total += n
	from.Before += n
	to.After += n
	if from != to {
		p.res.Moved += n
		from.Lost += n
		to.Gained += n
	}
}

// AddKey counts one key.
func (p *Planner) AddKey(key []byte) { p.AddBucket(Bucket(key), 1) }

// Result returns the plan counted so far.
func (p *Planner) Result() PlanResult {
	r := p.res
	r.Shards = append([]PlanShard(nil), p.res.Shards...)
	return r
}
