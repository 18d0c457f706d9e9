package shardmap

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

const numKeys = 100_000

// testKeys are cache keys shaped like the gateway's.
var testKeys = sync.OnceValue(func() []string {
	keys := make([]string, numKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("https://example.com/products/%d?q=%d", i, i%7)
	}
	return keys
})

// names returns n member names, shard-0 to shard-(n-1).
func names(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{Name: fmt.Sprintf("shard-%d", i), Weight: 1}
	}
	return ms
}

func mustNew(t testing.TB, ms []Member) *Map {
	t.Helper()
	m, err := New(ms)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// owners returns the name of the owner of every test key.
func owners(m *Map) []string {
	out := make([]string, numKeys)
	for i, k := range testKeys() {
		out[i] = m.members[m.PickString(k)].Name
	}
	return out
}

// within reports whether got is within rel (relative) of want.
func within(got, want, rel float64) bool { return math.Abs(got-want) <= rel*want }

func TestSum64(t *testing.T) {
	// xxHash64 reference values, seed 0. Placement of every key in every
	// deployment depends on them: they must never change.
	for _, tt := range []struct {
		name, in string
		want     uint64
	}{
		{"empty", "", 0xef46db3751d8e999},
		{"a", "a", 0xd24ec4f1a98c6e5b},
		{"as", "as", 0x1c330fb2d66be179},
		{"asd", "asd", 0x631c37ce72a97393},
		{"asdf", "asdf", 0x415872f599cea71e},
		{"abc", "abc", 0x44bc2cf5ad770999},
		{"len=16", "Call me Ishmael.", 0x6d04390fc9d61a90},
		{"len=31", "abcdefghijklmnopqrstuvwxyz12345", 0x467605901b01d6f6},
		{"len=32", "0123456789abcdef0123456789abcdef", 0x642a94958e71e6c5},
		{"len=46", "Some years ago--never mind how long precisely-", 0x8f26f2b986afdc52},
		{"len=63", "Call me Ishmael. Some years ago--never mind how long precisely-", 0x02a2e85470d6fd96},
		{"len=64", "Call me Ishmael.  Some years ago--never mind how long precisely-", 0x3b1137909300afa6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := sum64(tt.in); got != tt.want {
				t.Errorf("sum64(%q) = %#x, want %#x", tt.in, got, tt.want)
			}
			if got := sum64([]byte(tt.in)); got != tt.want {
				t.Errorf("sum64([]byte(%q)) = %#x, want %#x", tt.in, got, tt.want)
			}
		})
	}
}

func TestPlacementIsPinned(t *testing.T) {
	// Every gateway, of every version, must place a key on the same
	// shard: a change here moves keys in every deployment.
	for _, tt := range []struct {
		name    string
		members []Member
		want    string // owners of key-0 … key-11
	}{
		{"equal", []Member{{Name: "a"}, {Name: "b"}, {Name: "c"}},
			"a b c c c c a b a c b b"},
		{"weighted", []Member{{Name: "a"}, {Name: "b", Weight: 5}, {Name: "c", Weight: 2}},
			"a b c b c c b b b c b b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, tt.members)
			var got []string
			for i := range 12 {
				got = append(got, tt.members[m.PickString(fmt.Sprintf("key-%d", i))].Name)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("owners = %q, want %q", g, tt.want)
			}
		})
	}
}

func TestAddMember(t *testing.T) {
	for n := 3; n <= 16; n++ {
		t.Run(fmt.Sprintf("%d+1", n), func(t *testing.T) {
			before := mustNew(t, names(n))
			after := mustNew(t, names(n+1))
			added := after.members[n].Name
			was, is := owners(before), owners(after)
			moved := 0
			for i := range was {
				if was[i] == is[i] {
					continue
				}
				moved++
				if is[i] != added {
					t.Fatalf("key %q moved from %s to %s, not to the new member %s",
						testKeys()[i], was[i], is[i], added)
				}
			}
			frac, ideal := float64(moved)/numKeys, 1/float64(n+1)
			t.Logf("N=%2d→%2d moved %.2f%% of keys (buckets %.2f%%), ideal 1/(N+1) = %.2f%%",
				n, n+1, 100*frac, 100*after.Moved(before), 100*ideal)
			if frac > ideal+0.02 {
				t.Errorf("moved %.2f%% of keys, want at most %.2f%%", 100*frac, 100*(ideal+0.02))
			}
			if got := after.Moved(before); got != after.Share(n) {
				t.Errorf("Moved = %v, want the new member's share %v", got, after.Share(n))
			}
		})
	}
}

func TestRemoveMember(t *testing.T) {
	for n := 3; n <= 16; n++ {
		t.Run(fmt.Sprintf("%d-1", n), func(t *testing.T) {
			all := names(n)
			gone := all[n/2].Name
			rest := append(append([]Member(nil), all[:n/2]...), all[n/2+1:]...)
			was, is := owners(mustNew(t, all)), owners(mustNew(t, rest))
			moved := 0
			for i := range was {
				if was[i] != is[i] {
					moved++
					if was[i] != gone {
						t.Fatalf("key %q moved from %s to %s; only keys of %s may move",
							testKeys()[i], was[i], is[i], gone)
					}
				}
			}
			t.Logf("N=%2d→%2d moved %.2f%% of keys, ideal 1/N = %.2f%%",
				n, n-1, 100*float64(moved)/numKeys, 100/float64(n))
		})
	}
}

func TestBalance(t *testing.T) {
	for n := 3; n <= 16; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			m := mustNew(t, names(n))
			count := map[string]int{}
			for _, o := range owners(m) {
				count[o]++
			}
			want := float64(numKeys) / float64(n)
			worst := 0.0
			for i, mb := range m.members {
				got := float64(count[mb.Name])
				worst = max(worst, math.Abs(got-want)/want)
				if !within(got, want, 0.05) {
					t.Errorf("%s holds %.0f keys, want %.0f ±5%%", mb.Name, got, want)
				}
				if !within(m.Share(i), 1/float64(n), 0.05) {
					t.Errorf("%s owns %.4f of the buckets, want %.4f ±5%%", mb.Name, m.Share(i), 1/float64(n))
				}
			}
			t.Logf("N=%2d worst member off its share by %.2f%%", n, 100*worst)
		})
	}
}

func TestWeights(t *testing.T) {
	for _, tt := range []struct {
		name    string
		weights []int
	}{
		{"2 among 3×1", []int{1, 1, 1, 2}},
		{"2 among 7×1", []int{1, 2, 1, 1, 1, 1, 1, 1}},
		{"2 among 15×1", []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2}},
		{"1 2 3", []int{1, 2, 3}},
		{"0 means 1", []int{0, -3, 2}},
		{"10 and 1", []int{10, 1, 1, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ms := names(len(tt.weights))
			total := 0
			for i, w := range tt.weights {
				ms[i].Weight = w
				total += max(w, 1)
			}
			m := mustNew(t, ms)
			count := map[string]int{}
			for _, o := range owners(m) {
				count[o]++
			}
			for i, mb := range ms {
				share := float64(max(tt.weights[i], 1)) / float64(total)
				got := float64(count[mb.Name]) / numKeys
				t.Logf("%s weight %d: %.2f%% of keys, %.2f%% of buckets, want %.2f%%",
					mb.Name, mb.Weight, 100*got, 100*m.Share(i), 100*share)
				if !within(got, share, 0.05) {
					t.Errorf("%s (weight %d) holds %.4f of keys, want %.4f ±5%%", mb.Name, mb.Weight, got, share)
				}
			}
		})
	}
}

func TestOrderDoesNotMatter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range []struct {
		name    string
		members []Member
	}{
		{"equal", names(9)},
		{"weighted", []Member{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 1}, {"e", 5}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := owners(mustNew(t, tt.members))
			for range 3 {
				shuffled := append([]Member(nil), tt.members...)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				got := owners(mustNew(t, shuffled))
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("order %v: key %q goes to %s, want %s", shuffled, testKeys()[i], got[i], want[i])
					}
				}
			}
		})
	}
}

func TestNamesOnly(t *testing.T) {
	// Members carry no address: a shard that changes address keeps its
	// name and so every one of its keys. Two builds from equal members
	// are equal, and a uniform weight is the same as weight 1.
	a := mustNew(t, names(5))
	b := names(5)
	for i := range b {
		b[i].Weight = 7
	}
	if m := mustNew(t, b); m.table != a.table || m.Moved(a) != 0 {
		t.Errorf("weights all 7 place keys unlike weights all 1 (moved %v)", m.Moved(a))
	}
	if m := mustNew(t, names(5)); m.table != a.table {
		t.Errorf("two builds from the same members differ")
	}
}

func TestUniformIsWeightedExactly(t *testing.T) {
	// fillUniform is the shortcut of fillWeighted for equal weights.
	ms := names(6)
	seeds := make([]uint64, len(ms))
	for i, mb := range ms {
		seeds[i] = sum64(mb.Name)
	}
	u, w := &Map{members: ms}, &Map{members: ms}
	u.fillUniform(seeds)
	w.fillWeighted(seeds)
	if u.table != w.table {
		t.Errorf("equal weights: the integer and the weighted rule place buckets differently")
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	m := mustNew(t, names(8))
	s := "https://example.com/products/12345?q=3&color=blue&size=large"
	b := []byte(s)
	if n := testing.AllocsPerRun(1000, func() { _ = m.Pick(b) }); n != 0 {
		t.Errorf("Pick allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = m.PickString(s) }); n != 0 {
		t.Errorf("PickString allocates %v times", n)
	}
	if m.Pick(b) != m.PickString(s) || Bucket(b) != int(sum64(s)>>48) || m.Owner(Bucket(b)) != m.Pick(b) {
		t.Errorf("Pick, PickString, Bucket and Owner disagree")
	}
}

func TestNewErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		members []Member
		want    string
	}{
		{"nil", nil, "shardmap: no members"},
		{"empty", []Member{}, "shardmap: no members"},
		{"no name", []Member{{Name: "a"}, {Name: ""}}, "shardmap: member 1 has no name"},
		{"duplicate", []Member{{Name: "a"}, {Name: "b"}, {Name: "a", Weight: 2}}, `shardmap: duplicate member name "a"`},
		{"heavy", []Member{{Name: "a", Weight: 1001}}, `shardmap: member "a": weight 1001 above 1000`},
		{"too many", make([]Member, MaxMembers+1), "shardmap: 65536 members, at most 65535"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.members)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("New = %v, %v; want error %q", m, err, tt.want)
			}
		})
	}
	if _, err := New([]Member{{Name: "a", Weight: MaxWeight}}); err != nil {
		t.Errorf("weight %d: %v", MaxWeight, err)
	}
}

func TestMembersIsACopy(t *testing.T) {
	m := mustNew(t, []Member{{Name: "a"}, {Name: "b", Weight: 3}})
	ms := m.Members()
	if len(ms) != 2 || m.Len() != 2 || ms[0] != (Member{"a", 1}) || ms[1] != (Member{"b", 3}) {
		t.Fatalf("Members = %v, Len = %d", ms, m.Len())
	}
	ms[0].Name = "x"
	if m.Members()[0].Name != "a" {
		t.Errorf("Members shares its slice with the Map")
	}
	if got := m.Share(0) + m.Share(1); got != 1 {
		t.Errorf("shares add up to %v", got)
	}
}

func ExampleMap_PickString() {
	m, err := New([]Member{{Name: "eu-1"}, {Name: "eu-2"}, {Name: "eu-3", Weight: 2}})
	if err != nil {
		panic(err)
	}
	i := m.PickString("https://example.com/products/42")
	fmt.Println(m.Members()[i].Name)
	// Output: eu-2
}

var sink int

func BenchmarkPick(b *testing.B) {
	key := []byte("https://example.com/products/12345?q=3&color=blue&size=large")
	for _, n := range []int{3, 64} {
		b.Run(fmt.Sprintf("shards=%d", n), func(b *testing.B) {
			m := mustNew(b, names(n))
			b.SetBytes(int64(len(key)))
			b.ReportAllocs()
			for b.Loop() {
				sink += m.Pick(key)
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	for _, tt := range []struct {
		name     string
		weighted bool
	}{{"shards=16", false}, {"shards=16/weighted", true}} {
		b.Run(tt.name, func(b *testing.B) {
			ms := names(16)
			if tt.weighted {
				ms[0].Weight = 2
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(ms); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
