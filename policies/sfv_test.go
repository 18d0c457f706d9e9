package policies

import (
	"reflect"
	"testing"
	"time"
)

func TestParseDictionary(t *testing.T) {
	tr := Item{Kind: KindBoolean, Bool: true}
	tests := []struct {
		name string
		in   []string
		want []Member // nil with ok=false: invalid
		ok   bool
	}{
		{"integer", []string{"max-age=60"}, []Member{{Key: "max-age", Item: Item{Kind: KindInteger, Int: 60}}}, true},
		{"negative integer", []string{"a=-5"}, []Member{{Key: "a", Item: Item{Kind: KindInteger, Int: -5}}}, true},
		{"decimal", []string{"a=1.5"}, []Member{{Key: "a", Item: Item{Kind: KindDecimal, Decimal: 1.5}}}, true},
		{"decimal 3 digits", []string{"a=-0.125"}, []Member{{Key: "a", Item: Item{Kind: KindDecimal, Decimal: -0.125}}}, true},
		{"string", []string{`a="x y"`}, []Member{{Key: "a", Item: Item{Kind: KindString, String: "x y"}}}, true},
		{"string escapes", []string{`a="q\"b\\s"`}, []Member{{Key: "a", Item: Item{Kind: KindString, String: `q"b\s`}}}, true},
		{"token", []string{"a=foo/bar:1"}, []Member{{Key: "a", Item: Item{Kind: KindToken, String: "foo/bar:1"}}}, true},
		{"byte sequence", []string{"a=:aGk=:"}, []Member{{Key: "a", Item: Item{Kind: KindByteSequence, String: "aGk="}}}, true},
		{"booleans", []string{"a=?0, b=?1, c"}, []Member{
			{Key: "a", Item: Item{Kind: KindBoolean}}, {Key: "b", Item: tr}, {Key: "c", Item: tr}}, true},
		{"params", []string{"a=1;x;y=2"}, []Member{{Key: "a", Item: Item{Kind: KindInteger, Int: 1},
			Params: []Param{{Key: "x", Value: tr}, {Key: "y", Value: Item{Kind: KindInteger, Int: 2}}}}}, true},
		{"param duplicate last wins", []string{"a;x=1;x=2"}, []Member{{Key: "a", Item: tr,
			Params: []Param{{Key: "x", Value: Item{Kind: KindInteger, Int: 2}}}}}, true},
		{"inner list", []string{`a=(1 "b";p) ;q`}, []Member{{Key: "a", IsInnerList: true,
			Inner:  []Item{{Kind: KindInteger, Int: 1}, {Kind: KindString, String: "b", Params: []Param{{Key: "p", Value: tr}}}},
			Params: nil}}, false},
		{"inner list with params", []string{`a=(1 "b";p);q`}, []Member{{Key: "a", IsInnerList: true,
			Inner:  []Item{{Kind: KindInteger, Int: 1}, {Kind: KindString, String: "b", Params: []Param{{Key: "p", Value: tr}}}},
			Params: []Param{{Key: "q", Value: tr}}}}, true},
		{"empty inner list", []string{"a=()"}, []Member{{Key: "a", IsInnerList: true}}, true},
		{"duplicate key last value first place", []string{"a=1, b, a=2"}, []Member{
			{Key: "a", Item: Item{Kind: KindInteger, Int: 2}}, {Key: "b", Item: tr}}, true},
		{"OWS around commas", []string{" a=1 ,\tb=2 "}, []Member{
			{Key: "a", Item: Item{Kind: KindInteger, Int: 1}}, {Key: "b", Item: Item{Kind: KindInteger, Int: 2}}}, true},
		{"two lines", []string{"a=1", "b=2"}, []Member{
			{Key: "a", Item: Item{Kind: KindInteger, Int: 1}}, {Key: "b", Item: Item{Kind: KindInteger, Int: 2}}}, true},
		{"star key", []string{"*a.b_c-1"}, []Member{{Key: "*a.b_c-1", Item: tr}}, true},
		{"empty", []string{""}, nil, true},

		{"upper-case key", []string{"Max-Age=60"}, nil, false},
		{"trailing comma", []string{"a=1,"}, nil, false},
		{"leading comma", []string{",a=1"}, nil, false},
		{"double comma", []string{"a=1,,b"}, nil, false},
		{"space before =", []string{"a =1"}, nil, false},
		{"space after =", []string{"a= 1"}, nil, false},
		{"16-digit integer", []string{"a=1234567890123456"}, nil, false},
		{"4 fraction digits", []string{"a=1.2345"}, nil, false},
		{"13 integer digits in decimal", []string{"a=1234567890123.5"}, nil, false},
		{"dot without fraction", []string{"a=1."}, nil, false},
		{"lone minus", []string{"a=-"}, nil, false},
		{"unterminated string", []string{`a="x`}, nil, false},
		{"bad escape", []string{`a="\n"`}, nil, false},
		{"non-ascii string", []string{"a=\"\xc3\xa9\""}, nil, false},
		{"bad boolean", []string{"a=?2"}, nil, false},
		{"unterminated bytes", []string{"a=:aGk="}, nil, false},
		{"bad base64 char", []string{"a=:a*k=:"}, nil, false},
		{"unterminated inner list", []string{"a=(1 2"}, nil, false},
		{"inner list no space", []string{"a=(1\"x\")"}, nil, false},
		{"garbage after item", []string{"a=1x"}, nil, false},
		{"empty line joins to invalid", []string{"a=1", ""}, nil, false},
		{"tab before member", []string{"\ta=1"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDictionary(nil, tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				if len(got) != 0 {
					t.Fatalf("invalid field returned %+v", got)
				}
				return
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseDictionaryKeepsDst(t *testing.T) {
	dst := []Member{{Key: "x"}}
	got, err := ParseDictionary(dst, []string{"a=1,"})
	if err == nil || len(got) != 1 || got[0].Key != "x" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestParseTargeted(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want CacheControl
		ok   bool
	}{
		{"max-age", []string{"max-age=60"}, CacheControl{MaxAge: time.Minute, HasMaxAge: true}, true},
		{"all required", []string{"max-age=1, must-revalidate, no-store, no-cache, private"},
			CacheControl{MaxAge: time.Second, HasMaxAge: true, MustRevalidate: true, NoStore: true, NoCache: true, Private: true}, true},
		{"stale directives", []string{"max-age=10, stale-while-revalidate=30, stale-if-error=600"},
			CacheControl{MaxAge: 10 * time.Second, HasMaxAge: true, StaleWhileRevalidate: 30 * time.Second, HasSWR: true,
				StaleIfError: 10 * time.Minute, HasSIE: true}, true},
		{"s-maxage public", []string{"s-maxage=5, public"}, CacheControl{SMaxAge: 5 * time.Second, HasSMaxAge: true, Public: true}, true},
		{"others", []string{"proxy-revalidate, must-understand, no-transform, immutable"},
			CacheControl{ProxyRevalidate: true, MustUnderstand: true, NoTransform: true, Immutable: true}, true},
		{"unknown only overrides", []string{"none"}, CacheControl{}, true},
		{"no-cache with field list", []string{`no-cache="set-cookie"`}, CacheControl{NoCache: true}, true},
		{"private inner list", []string{`private=("a" "b")`}, CacheControl{Private: true}, true},
		{"boolean false", []string{"no-store=?0"}, CacheControl{}, true},
		{"decimal max-age not consumed", []string{"max-age=1.5, no-cache"}, CacheControl{NoCache: true}, true},
		{"string max-age not consumed", []string{`max-age="60"`}, CacheControl{}, true},
		{"negative max-age not consumed", []string{"max-age=-1"}, CacheControl{}, true},
		{"duplicate last wins", []string{"max-age=60, max-age=5"}, CacheControl{MaxAge: 5 * time.Second, HasMaxAge: true}, true},
		{"duplicate last invalid drops", []string{"max-age=60, max-age=1.5"}, CacheControl{}, true},
		{"params ignored", []string{"max-age=60;foo=bar"}, CacheControl{MaxAge: time.Minute, HasMaxAge: true}, true},
		{"huge clamps", []string{"max-age=999999999999999"}, CacheControl{MaxAge: MaxDelta, HasMaxAge: true}, true},
		{"two lines", []string{"max-age=60", "private"}, CacheControl{MaxAge: time.Minute, HasMaxAge: true, Private: true}, true},
		{"only-if-cached is a request directive", []string{"only-if-cached"}, CacheControl{}, true},

		{"absent", nil, CacheControl{}, false},
		{"empty", []string{""}, CacheControl{}, false},
		{"spaces", []string{"   "}, CacheControl{}, false},
		{"upper case invalid", []string{"MAX-AGE=60"}, CacheControl{}, false},
		{"trailing comma invalid", []string{"max-age=60,"}, CacheControl{}, false},
		{"Cache-Control syntax invalid", []string{`max-age=60, private="a, b`}, CacheControl{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseTargeted(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("ParseTargeted(%q) = %+v, %v\nwant %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSelectTargeted(t *testing.T) {
	fields := []string{"Edgecache-Cache-Control", CDNCacheControl}
	tests := []struct {
		name    string
		h       map[string][]string
		wantIdx int
		wantAge time.Duration
	}{
		{"own field first", map[string][]string{"Edgecache-Cache-Control": {"max-age=1"}, CDNCacheControl: {"max-age=2"}}, 0, time.Second},
		{"own invalid falls to CDN", map[string][]string{"Edgecache-Cache-Control": {"max-age=1,"}, CDNCacheControl: {"max-age=2"}}, 1, 2 * time.Second},
		{"own empty falls to CDN", map[string][]string{"Edgecache-Cache-Control": {""}, CDNCacheControl: {"max-age=2"}}, 1, 2 * time.Second},
		{"none", map[string][]string{"Cache-Control": {"max-age=3"}}, -1, 0},
		{"all invalid", map[string][]string{CDNCacheControl: {"Max-Age=2"}}, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, i, ok := SelectTargeted(fields, func(k string) []string { return tt.h[k] })
			if i != tt.wantIdx || ok != (tt.wantIdx >= 0) || cc.MaxAge != tt.wantAge {
				t.Fatalf("got %+v, %d, %v", cc, i, ok)
			}
		})
	}
	if !TargetedForwarded(CDNCacheControl) || TargetedForwarded("Edgecache-Cache-Control") {
		t.Fatal("TargetedForwarded")
	}
}

func TestParseTargetedAllocs(t *testing.T) {
	v := []string{"max-age=60, stale-while-revalidate=30, private"}
	if n := testing.AllocsPerRun(100, func() { ParseTargeted(v) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// FuzzParseDictionary: never panics; a field either fails whole or its
// members have valid keys and unique names; ParseTargeted accepts exactly
// the non-empty valid fields.
func FuzzParseDictionary(f *testing.F) {
	for _, s := range []string{"max-age=60", `a=(1 "b";p);q`, "a=:aGk=:, b=?0", `a="\""`, "a=1.,", "MAX-AGE=1", "a=-0.125;x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseDictionary(nil, []string{s})
		seen := map[string]bool{}
		for _, m := range ms {
			if _, ok := (&sfParser{s: m.Key}).key(); !ok || seen[m.Key] {
				t.Fatalf("%q: bad or duplicate key %q", s, m.Key)
			}
			seen[m.Key] = true
		}
		_, ok := ParseTargeted([]string{s})
		if ok != (err == nil && len(ms) > 0) {
			t.Fatalf("%q: ParseTargeted ok=%v, ParseDictionary err=%v n=%d", s, ok, err, len(ms))
		}
	})
}
