package shardmap

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Buckets is the number of buckets the key space is cut into. Keys are
// placed on buckets by their hash and buckets on members by rendezvous
// hashing, so a Map moves keys between members a whole bucket at a time.
const Buckets = 1 << 16

// MaxMembers is the largest number of members a Map can hold.
const MaxMembers = math.MaxUint16

// MaxWeight is the largest Member weight.
const MaxWeight = 1000

// Member is one owner of keys: a shard, named as in the configuration.
//
// Placement depends on the Name and Weight only, never on an address or on
// the position of the member in the list, so a shard that changes address
// (or moves in the list) keeps every one of its keys.
type Member struct {
	Name string
	// Weight is the member's share of the key space relative to the
	// others: a member of weight 2 owns twice as many keys as one of
	// weight 1. Zero or negative means 1; at most MaxWeight.
	Weight int
}

// Map places keys on members. It is immutable and safe for concurrent use.
//
// Build a new Map to change the members. New costs O(Buckets × members),
// off the request path: about 4 ms for 16 members of equal weight and
// 20 ms when weights differ (a logarithm per bucket and member). Pick is
// O(1) whatever the number of members: one hash of the key and one load.
type Map struct {
	members []Member
	owned   []int           // owned[i] is the number of buckets members[i] owns
	table   [Buckets]uint16 // table[bucket] indexes members
}

// New builds the Map of members. It returns an error if there are no
// members, more than MaxMembers, an empty or duplicate name, or a weight
// above MaxWeight.
func New(members []Member) (*Map, error) {
	if len(members) == 0 {
		return nil, errors.New("shardmap: no members")
	}
	if len(members) > MaxMembers {
		return nil, fmt.Errorf("shardmap: %d members, at most %d", len(members), MaxMembers)
	}
	m := &Map{
		members: make([]Member, len(members)),
		owned:   make([]int, len(members)),
	}
	seeds := make([]uint64, len(members))
	bySeed := make(map[uint64]string, len(members))
	uniform := true
	for i, mb := range members {
		if mb.Name == "" {
			return nil, fmt.Errorf("shardmap: member %d has no name", i)
		}
		if mb.Weight > MaxWeight {
			return nil, fmt.Errorf("shardmap: member %q: weight %d above %d", mb.Name, mb.Weight, MaxWeight)
		}
		if mb.Weight <= 0 {
			mb.Weight = 1
		}
		seeds[i] = sum64(mb.Name)
		if other, ok := bySeed[seeds[i]]; ok {
			if other == mb.Name {
				return nil, fmt.Errorf("shardmap: duplicate member name %q", mb.Name)
			}
			// Two names with one 64-bit hash would tie on every bucket.
			return nil, fmt.Errorf("shardmap: member names %q and %q collide", other, mb.Name)
		}
		bySeed[seeds[i]] = mb.Name
		m.members[i] = mb
		uniform = uniform && mb.Weight == m.members[0].Weight
	}
	if uniform {
		m.fillUniform(seeds)
	} else {
		m.fillWeighted(seeds)
	}
	for _, i := range m.table {
		m.owned[i]++
	}
	return m, nil
}

// score is the 53-bit rendezvous draw of the member with seed for bucket
// b, whose mix is bmix = mix64(b): uniform, independent across buckets and
// members.
func score(bmix, seed uint64) uint64 { return mix64(bmix^seed) >> 11 }

// bucketMix spreads bucket numbers over 64 bits before they meet seeds.
func bucketMix(b int) uint64 { return mix64(uint64(b+1) * 0x9e3779b97f4a7c15) }

// fillUniform places every bucket on the member with the highest draw.
// With equal weights the weighted score -w/ln(u) orders members as u
// does, so this is the weighted rule computed exactly, in integers.
func (m *Map) fillUniform(seeds []uint64) {
	for b := range m.table {
		bmix := bucketMix(b)
		best, bestScore := 0, score(bmix, seeds[0])
		for i := 1; i < len(seeds); i++ {
			s := score(bmix, seeds[i])
			if s > bestScore || s == bestScore && m.members[i].Name > m.members[best].Name {
				best, bestScore = i, s
			}
		}
		m.table[b] = uint16(best)
	}
}

// fillWeighted places every bucket on the member with the highest weighted
// score -w/ln(u), u in (0,1) being the member's draw. -ln(u) is
// exponential, so -ln(u)/w is exponential of rate w and the smallest of
// them (the highest score) belongs to member i with probability
// w_i / Σw: shares are proportional to weights.
func (m *Map) fillWeighted(seeds []uint64) {
	const unit = 1.0 / (1 << 53)
	for b := range m.table {
		bmix := bucketMix(b)
		best, bestScore := -1, 0.0
		for i, seed := range seeds {
			u := (float64(score(bmix, seed)) + 0.5) * unit
			s := float64(m.members[i].Weight) / -math.Log(u)
			if best < 0 || s > bestScore || s == bestScore && m.members[i].Name > m.members[best].Name {
				best, bestScore = i, s
			}
		}
		m.table[b] = uint16(best)
	}
}

// Pick returns the index, in the members given to New, of the member that
// owns key. It allocates nothing.
func (m *Map) Pick(key []byte) int { return int(m.table[sum64(key)>>48]) }

// PickString is Pick for a string key. It allocates nothing.
func (m *Map) PickString(key string) int { return int(m.table[sum64(key)>>48]) }

// Bucket returns the bucket of key, in [0, Buckets). It is the same for
// every Map, process and machine.
func Bucket(key []byte) int { return int(sum64(key) >> 48) }

// Owner returns the index of the member that owns bucket b.
func (m *Map) Owner(b int) int { return int(m.table[b]) }

// Len returns the number of members.
func (m *Map) Len() int { return len(m.members) }

// Members returns a copy of the members in the order given to New, with
// weights of 0 or less replaced by 1.
func (m *Map) Members() []Member { return append([]Member(nil), m.members...) }

// Share returns the fraction of the key space that member i owns.
func (m *Map) Share(i int) float64 { return float64(m.owned[i]) / Buckets }

// Moved returns the fraction of the key space whose owner, by name,
// differs between prev and m: the share of keys a switch from prev to m
// sends to a new member. A nil prev counts as everything moved.
func (m *Map) Moved(prev *Map) float64 {
	if prev == nil {
		return 1
	}
	n := 0
	for b, i := range m.table {
		if m.members[i].Name != prev.members[prev.table[b]].Name {
			n++
		}
	}
	return float64(n) / Buckets
}

// mix64 is the finalizer of SplitMix64 (Stafford's Mix13): a bijection on
// 64 bits in which every input bit flips every output bit with probability
// about 1/2.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// xxHash64 primes.
const (
	prime1 uint64 = 0x9e3779b185ebca87
	prime2 uint64 = 0xc2b2ae3d27d4eb4f
	prime3 uint64 = 0x165667b19e3779f9
	prime4 uint64 = 0x85ebca77c2b2ae63
	prime5 uint64 = 0x27d4eb2f165667c5

	v1Init uint64 = 0x60ea27eeadc0b5d6 // (prime1 + prime2) mod 2^64
	v4Init uint64 = 0x61c8864e7a143579 // (-prime1) mod 2^64
)

// sum64 is xxHash64 with seed 0: fast, well mixed, and the same in every
// process on every machine, so every gateway places a key on the same
// shard. (hash/maphash is faster to call but seeded per process.)
func sum64[T string | []byte](p T) uint64 {
	n := len(p)
	var h uint64
	if n >= 32 {
		v1 := v1Init
		v2 := prime2
		v3 := uint64(0)
		v4 := v4Init
		for len(p) >= 32 {
			v1 = round(v1, u64(p[0:8]))
			v2 = round(v2, u64(p[8:16]))
			v3 = round(v3, u64(p[16:24]))
			v4 = round(v4, u64(p[24:32]))
			p = p[32:]
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) +
			bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = mergeRound(h, v1)
		h = mergeRound(h, v2)
		h = mergeRound(h, v3)
		h = mergeRound(h, v4)
	} else {
		h = prime5
	}
	h += uint64(n)
	for ; len(p) >= 8; p = p[8:] {
		h ^= round(0, u64(p[:8]))
		h = bits.RotateLeft64(h, 27)*prime1 + prime4
	}
	if len(p) >= 4 {
		h ^= uint64(u32(p[:4])) * prime1
		h = bits.RotateLeft64(h, 23)*prime2 + prime3
		p = p[4:]
	}
	for i := 0; i < len(p); i++ {
		h ^= uint64(p[i]) * prime5
		h = bits.RotateLeft64(h, 11) * prime1
	}
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}

func round(acc, input uint64) uint64 {
	acc += input * prime2
	acc = bits.RotateLeft64(acc, 31)
	return acc * prime1
}

func mergeRound(acc, val uint64) uint64 {
	acc ^= round(0, val)
	return acc*prime1 + prime4
}

// u64 and u32 read little-endian; the compiler turns each into one load.
func u64[T string | []byte](b T) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func u32[T string | []byte](b T) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
