package policies

import (
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   CacheControl
	}{
		{"none", nil, CacheControl{}},
		{"empty", []string{"", " , ,, "}, CacheControl{}},
		{"public-max-age", []string{"public, max-age=3600"}, CacheControl{Public: true, HasMaxAge: true, MaxAge: time.Hour}},
		{"no-store", []string{"no-store"}, CacheControl{NoStore: true}},
		{"case-insensitive", []string{"No-Store, MAX-AGE=60, S-MaxAge=10"}, CacheControl{NoStore: true, HasMaxAge: true, MaxAge: time.Minute, HasSMaxAge: true, SMaxAge: 10 * time.Second}},
		{"all-flags", []string{"no-cache, private, public, must-revalidate, proxy-revalidate, must-understand, no-transform, immutable, only-if-cached"},
			CacheControl{NoCache: true, Private: true, Public: true, MustRevalidate: true, ProxyRevalidate: true, MustUnderstand: true, NoTransform: true, Immutable: true, OnlyIfCached: true}},
		{"multiple-lines", []string{"public", "max-age=5", "stale-while-revalidate=30"}, CacheControl{Public: true, HasMaxAge: true, MaxAge: 5 * time.Second, HasSWR: true, StaleWhileRevalidate: 30 * time.Second}},
		{"whitespace", []string{"  max-age = 7 ,\tpublic\t"}, CacheControl{Public: true, HasMaxAge: true, MaxAge: 7 * time.Second}},
		{"quoted-number", []string{`max-age="60", s-maxage="5"`}, CacheControl{HasMaxAge: true, MaxAge: time.Minute, HasSMaxAge: true, SMaxAge: 5 * time.Second}},
		{"qualified-no-cache", []string{`no-cache="Set-Cookie, X-Foo", max-age=5`}, CacheControl{NoCache: true, HasMaxAge: true, MaxAge: 5 * time.Second}},
		{"qualified-private", []string{`private="X-User", public`}, CacheControl{Private: true, Public: true}},
		{"quoted-escapes", []string{`no-cache="a\"b, c", max-age=1`}, CacheControl{NoCache: true, HasMaxAge: true, MaxAge: time.Second}},
		{"unterminated-quote", []string{`private="x, max-age=5`}, CacheControl{Private: true}},
		{"junk-after-quote", []string{`private="x" junk, max-age=5`}, CacheControl{Private: true, HasMaxAge: true, MaxAge: 5 * time.Second}},
		{"invalid-max-age-is-stale", []string{"max-age=abc, s-maxage=-1"}, CacheControl{HasMaxAge: true, HasSMaxAge: true}},
		{"max-age-without-value", []string{"max-age, public"}, CacheControl{HasMaxAge: true, Public: true}},
		{"max-age-empty-value", []string{"max-age="}, CacheControl{HasMaxAge: true}},
		{"max-age-fraction", []string{"max-age=1.5"}, CacheControl{HasMaxAge: true}},
		{"max-age-plus", []string{"max-age=+5"}, CacheControl{HasMaxAge: true}},
		{"first-occurrence-wins", []string{"max-age=10, max-age=20", "max-age=30"}, CacheControl{HasMaxAge: true, MaxAge: 10 * time.Second}},
		{"first-invalid-wins", []string{"max-age=x, max-age=20"}, CacheControl{HasMaxAge: true}},
		{"huge-clamped", []string{"max-age=99999999999999999999999999, stale-if-error=2147483649"}, CacheControl{HasMaxAge: true, MaxAge: MaxDelta, HasSIE: true, StaleIfError: MaxDelta}},
		{"at-clamp", []string{"max-age=2147483647"}, CacheControl{HasMaxAge: true, MaxAge: MaxDelta - time.Second}},
		{"leading-zeros", []string{"max-age=0000000000000000000000000042"}, CacheControl{HasMaxAge: true, MaxAge: 42 * time.Second}},
		{"max-stale-any", []string{"max-stale"}, CacheControl{HasMaxStale: true, MaxStaleAny: true}},
		{"max-stale-value", []string{"max-stale=30, min-fresh=10"}, CacheControl{HasMaxStale: true, MaxStale: 30 * time.Second, HasMinFresh: true, MinFresh: 10 * time.Second}},
		{"invalid-stale-dropped", []string{"max-stale=x, min-fresh=, stale-while-revalidate=-1, stale-if-error=y"}, CacheControl{}},
		{"invalid-then-valid-swr", []string{"stale-while-revalidate=x, stale-while-revalidate=9"}, CacheControl{HasSWR: true, StaleWhileRevalidate: 9 * time.Second}},
		{"unknown-ignored", []string{"community=\"UCI\", foo, bar=baz, public"}, CacheControl{Public: true}},
		{"long-unknown-name", []string{"this-is-a-very-long-unknown-directive-name=1, public"}, CacheControl{Public: true}},
		{"not-a-prefix", []string{"no-stored, publicly, max-ages=5"}, CacheControl{}},
		{"value-on-flag", []string{"no-store=1"}, CacheControl{NoStore: true}},
		{"zero", []string{"max-age=0"}, CacheControl{HasMaxAge: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseCacheControl(tt.values); got != tt.want {
				t.Errorf("ParseCacheControl(%q)\n got %+v\nwant %+v", tt.values, got, tt.want)
			}
		})
	}
}

func TestParseCacheControlAllocs(t *testing.T) {
	for _, v := range [][]string{
		{"public, max-age=3600"},
		{"no-store"},
		{"Private, No-Cache, MAX-AGE=0"},
		{`max-age="60", stale-while-revalidate=30, stale-if-error=86400`},
	} {
		if n := testing.AllocsPerRun(100, func() { _ = ParseCacheControl(v) }); n != 0 {
			t.Errorf("ParseCacheControl(%q): %v allocs, want 0", v, n)
		}
	}
}
