package shardmap

import (
	"math"
	"strconv"
	"testing"
)

func TestPlan(t *testing.T) {
	mk := func(ms ...Member) *Map {
		m, err := New(ms)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	three := mk(Member{Name: "a"}, Member{Name: "b"}, Member{Name: "c"})
	four := mk(Member{Name: "a"}, Member{Name: "b"}, Member{Name: "c"}, Member{Name: "d", Weight: 2})

	if p := Plan(three, three); p.Moved != 0 || p.Total != Buckets || len(p.Shards) != 3 {
		t.Fatalf("same map: %+v", p)
	}
	p := Plan(three, four)
	if math.Abs(p.MovedFraction()-four.Moved(three)) > 1e-12 {
		t.Errorf("Plan moves %v, Map.Moved says %v", p.MovedFraction(), four.Moved(three))
	}
	d := p.Shards[3]
	if d.Name != "d" || d.Weight != 0 || d.NewWeight != 2 || d.Before != 0 || d.Gained != p.Moved || d.Lost != 0 {
		t.Errorf("new shard %+v (moved %d)", d, p.Moved)
	}
	sum := 0
	for _, s := range p.Shards[:3] {
		if s.Gained != 0 || s.Before-s.Lost != s.After {
			t.Errorf("old shard %+v", s)
		}
		sum += s.Lost
	}
	if sum != p.Moved {
		t.Errorf("lost %d, moved %d", sum, p.Moved)
	}

	// Counting keys agrees with counting buckets, in the limit.
	pl := NewPlanner(three, four)
	for i := range 20000 {
		pl.AddKey([]byte("k" + strconv.Itoa(i)))
	}
	if r := pl.Result(); r.Total != 20000 || math.Abs(r.MovedFraction()-p.MovedFraction()) > 0.02 {
		t.Errorf("sampled %+v, exact moves %v", r, p.MovedFraction())
	}
}
