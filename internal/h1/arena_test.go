package h1

import (
	"fmt"
	"strings"
	"testing"
)

// TestArenaNeverRewrites: what the arena gave a request stays as it was
// while later requests fill it, and past the end of a chunk; chunks grow
// from the least size to the full one.
func TestArenaNeverRewrites(t *testing.T) {
	var a arena
	type kept struct {
		s    string
		vals []string
		want string
	}
	var all []kept
	for i := range 300 {
		head := strings.Repeat(string(rune('a'+i%26)), 1+i%97)
		v := a.values(1 + i%5)
		for j := range v {
			v[j] = head
		}
		all = append(all, kept{s: a.copy([]byte(head)), vals: v, want: head})
	}
	for i, k := range all {
		if k.s != k.want {
			t.Fatalf("string %d is now %q, want %q", i, k.s, k.want)
		}
		for _, v := range k.vals {
			if v != k.want {
				t.Fatalf("value slot of %d is now %q, want %q", i, v, k.want)
			}
		}
	}
	if a.textSize != arenaBytes || a.valsSize != arenaValues {
		t.Fatalf("chunks of %d bytes and %d values after 300 heads, want %d and %d", a.textSize, a.valsSize, arenaBytes, arenaValues)
	}
	for _, c := range []struct{ size, need, want int }{
		{0, 10, arenaMinBytes}, {arenaMinBytes, 10, 2 * arenaMinBytes}, {arenaBytes, 10, arenaBytes}, {0, 3000, 3000},
	} {
		t.Run(fmt.Sprintf("grow %d need %d", c.size, c.need), func(t *testing.T) {
			if got := grow(c.size, arenaMinBytes, arenaBytes, c.need); got != c.want {
				t.Errorf("grow(%d, need %d) = %d, want %d", c.size, c.need, got, c.want)
			}
		})
	}
}
