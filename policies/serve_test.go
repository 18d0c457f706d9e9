package policies

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// serveNow is the time (unix ms) of every decision in testdata/serve.
const serveNow = int64(1_741_964_400_000)

type serveCase struct {
	name          string
	line          int
	stored        Stored
	header        http.Header
	ignoreNoCache bool
	want          string
	onError       string
}

// readServeCases parses testdata/serve (its header says the format).
func readServeCases(t *testing.T) []serveCase {
	t.Helper()
	var cases []serveCase
	var c *serveCase
	ms := func(n int, s string) int64 {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("testdata/serve:%d: %v", n, err)
		}
		return d.Milliseconds()
	}
	var purged []func()
	readCaseFile(t, "testdata/serve", func(n int, name string) {
		cases = append(cases, serveCase{name: name, line: n, header: http.Header{},
			stored: Stored{StoredAt: serveNow, FreshUntil: serveNow}})
		c = &cases[len(cases)-1]
	}, func(n int, field, val string) {
		switch field {
		case "left":
			c.stored.FreshUntil = serveNow + ms(n, val)
		case "age":
			c.stored.StoredAt = serveNow - ms(n, val)
		case "initial-age":
			c.stored.InitialAge = ms(n, val)
		case "swr":
			c.stored.SWR = ms(n, val)
		case "sie":
			c.stored.SIE = ms(n, val)
		case "stored":
			switch val {
			case "no-cache":
				c.stored.NoCache = true
			case "must-revalidate":
				c.stored.MustRevalidate = true
			default:
				t.Fatalf("testdata/serve:%d: unknown stored %q", n, val)
			}
		case "req":
			k, v, _ := strings.Cut(val, ":")
			c.header.Add(k, strings.TrimSpace(v))
		case "ignore-no-cache":
			c.ignoreNoCache = val == "true"
		case "purged":
			at, i := serveNow+ms(n, val), len(cases)-1
			// After the case's other lines: the purge compares with StoredAt.
			purged = append(purged, func() { cases[i].stored.SoftPurged(at) })
		case "want":
			c.want = val
		case "on-error":
			c.onError = val
		default:
			t.Fatalf("testdata/serve:%d: unknown field %q", n, field)
		}
	})
	for _, p := range purged {
		p()
	}
	return cases
}

var useNames = map[Use]string{UseNone: "none", UseFresh: "fresh", UseStale: "stale", UseStaleRefresh: "refresh"}

func TestServeData(t *testing.T) {
	cases := readServeCases(t)
	if len(cases) < 40 {
		t.Fatalf("read only %d cases", len(cases))
	}
	for _, c := range cases {
		if !slices.Contains([]string{"none", "fresh", "stale", "refresh"}, c.want) {
			t.Fatalf("testdata/serve:%d: case %q: bad want %q", c.line, c.name, c.want)
		}
		t.Run(c.name, func(t *testing.T) {
			d := ParseDirectives(c.header, c.ignoreNoCache)
			if got := useNames[Serve(&c.stored, &d, serveNow)]; got != c.want {
				t.Errorf("testdata/serve:%d: Serve = %s, want %s (stored %+v, directives %+v)", c.line, got, c.want, c.stored, d)
			}
			switch c.onError {
			case "":
			case "yes", "no":
				if got := ServeOnError(&c.stored, serveNow); got != (c.onError == "yes") {
					t.Errorf("testdata/serve:%d: ServeOnError = %v, want %s", c.line, got, c.onError)
				}
			default:
				t.Fatalf("testdata/serve:%d: bad on-error %q", c.line, c.onError)
			}
		})
	}
}

func TestParseDirectives(t *testing.T) {
	for _, c := range []struct {
		name   string
		h      http.Header
		ignore bool
		want   Directives
	}{
		{"none", http.Header{}, false, Directives{}},
		{"nil header", nil, false, Directives{}},
		{"max-age", http.Header{"Cache-Control": {"max-age=5"}}, false, Directives{HasMaxAge: true, MaxAge: 5000}},
		{"max-age=0", http.Header{"Cache-Control": {"max-age=0"}}, false, Directives{NoCache: true, HasMaxAge: true}},
		{"max-age=0 ignored", http.Header{"Cache-Control": {"max-age=0"}}, true, Directives{}},
		{"max-stale any", http.Header{"Cache-Control": {"max-stale"}}, false, Directives{HasMaxStale: true, MaxStaleAny: true}},
		{"max-stale", http.Header{"Cache-Control": {"max-stale=7"}}, false, Directives{HasMaxStale: true, MaxStale: 7000}},
		{"min-fresh", http.Header{"Cache-Control": {"min-fresh=2"}}, false, Directives{HasMinFresh: true, MinFresh: 2000}},
		{"only-if-cached", http.Header{"Cache-Control": {"only-if-cached"}}, true, Directives{OnlyIfCached: true}},
		{"two lines", http.Header{"Cache-Control": {"no-cache", "max-stale=1"}}, false, Directives{NoCache: true, HasMaxStale: true, MaxStale: 1000}},
		{"Pragma", http.Header{"Pragma": {"no-cache"}}, false, Directives{NoCache: true}},
		{"Pragma ignored", http.Header{"Pragma": {"no-cache"}}, true, Directives{}},
		{"Pragma under Cache-Control", http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"public"}}, false, Directives{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseDirectives(c.h, c.ignore); got != c.want {
				t.Errorf("ParseDirectives(%v, %v) = %+v, want %+v", c.h, c.ignore, got, c.want)
			}
		})
	}
}

func TestServeAllocs(t *testing.T) {
	h := http.Header{"Cache-Control": {"max-age=60, max-stale=5, min-fresh=1"}}
	s := Stored{StoredAt: serveNow - 1000, FreshUntil: serveNow + 10_000, SWR: 5000}
	var u Use
	allocs := testing.AllocsPerRun(100, func() {
		d := ParseDirectives(h, false)
		u = Serve(&s, &d, serveNow)
	})
	if allocs != 0 || u != UseFresh {
		t.Errorf("ParseDirectives+Serve: %v allocs, %v; want 0, fresh", allocs, u)
	}
}

func TestStaleDefaults(t *testing.T) {
	const swr, sie = 10 * time.Second, time.Minute
	for _, c := range []struct {
		name     string
		cc       string
		swr, sie time.Duration
	}{
		{"none stated", "max-age=5", swr, sie},
		{"own swr", "max-age=5, stale-while-revalidate=3", 3 * time.Second, sie},
		{"own sie", "max-age=5, stale-if-error=4", swr, 4 * time.Second},
		{"must-revalidate", "max-age=5, must-revalidate", 0, 0},
		{"proxy-revalidate", "max-age=5, proxy-revalidate", 0, 0},
		{"invalid swr is none stated", "max-age=5, stale-while-revalidate=x", swr, sie},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc := ParseCacheControl([]string{c.cc})
			dec := Decision{Store: true, TTL: 5 * time.Second, StaleWhileRevalidate: cc.StaleWhileRevalidate, StaleIfError: cc.StaleIfError}
			got := StaleDefaults(dec, &cc, swr, sie)
			if got.StaleWhileRevalidate != c.swr || got.StaleIfError != c.sie || got.TTL != dec.TTL || !got.Store {
				t.Errorf("StaleDefaults(%q) = %+v, want swr %v sie %v", c.cc, got, c.swr, c.sie)
			}
		})
	}
}

func TestRetain(t *testing.T) {
	for _, c := range []struct {
		name      string
		dec       Decision
		validator bool
		keep      time.Duration
		want      time.Duration
	}{
		{"ttl only", Decision{TTL: time.Minute}, false, time.Hour, time.Minute},
		{"longer window swr", Decision{TTL: time.Minute, StaleWhileRevalidate: 2 * time.Minute, StaleIfError: time.Minute}, false, 0, 3 * time.Minute},
		{"longer window sie", Decision{TTL: time.Minute, StaleWhileRevalidate: time.Second, StaleIfError: time.Hour}, false, 0, 61 * time.Minute},
		{"keep with a validator", Decision{TTL: time.Minute}, true, time.Hour, 61 * time.Minute},
		{"stale on arrival", Decision{}, false, time.Hour, 0},
		{"stale on arrival kept to revalidate", Decision{}, true, time.Hour, time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Retain(&c.dec, c.validator, c.keep); got != c.want {
				t.Errorf("Retain = %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	names := []string{"Surrogate-Key", "Cache-Tag"}
	for _, c := range []struct {
		name string
		h    http.Header
		want []string
	}{
		{"none", http.Header{}, nil},
		{"surrogate keys", http.Header{"Surrogate-Key": {"a b  c"}}, []string{"a", "b", "c"}},
		{"cache tags", http.Header{"Cache-Tag": {"a,b, c"}}, []string{"a", "b", "c"}},
		{"both, in name order", http.Header{"Cache-Tag": {"y"}, "Surrogate-Key": {"x"}}, []string{"x", "y"}},
		{"either separator, tabs", http.Header{"Surrogate-Key": {"a,b\tc d"}}, []string{"a", "b", "c", "d"}},
		{"several lines", http.Header{"Surrogate-Key": {"a", "b"}}, []string{"a", "b"}},
		{"other fields ignored", http.Header{"X-Tag": {"a"}}, nil},
		{"only separators", http.Header{"Cache-Tag": {" , "}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseTags(c.h, names); !slices.Equal(got, c.want) {
				t.Errorf("ParseTags(%v) = %q, want %q", c.h, got, c.want)
			}
		})
	}
}

// hdrFor is the field a TestAppendVariantValue case reads.
func hdrFor(name string) string {
	if strings.HasPrefix(name, "Accept-Language") {
		return "Accept-Language"
	}
	return "X-Other"
}

func TestAppendVariantValue(t *testing.T) {
	for _, c := range []struct {
		name  string
		vals  []string
		first bool
		want  string
	}{
		{"none", nil, false, ""},
		{"none, first member", nil, true, ""},
		{"a list, whitespace around members removed", []string{" a , B "}, false, "a,B"},
		{"lines joined", []string{"a", " b"}, false, "a,b"},
		{"Accept-Language as a weighted set", []string{"FR;q=0.5, en"}, false, "en,fr;q=0.5"},
		{"first member lower-cased", []string{" EN-us;q=0.9, fr"}, true, "en-us"},
		{"first member of the first line", []string{"De", "fr"}, true, "de"},
		{"first member without parameters", []string{"GZIP ; q=1"}, true, "gzip"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendVariantValue([]byte("k="), hdrFor(c.name), c.vals, c.first)); got != "k="+c.want {
				t.Errorf("AppendVariantValue(%q, %v) = %q, want %q", c.vals, c.first, got, "k="+c.want)
			}
		})
	}
	buf := make([]byte, 0, 64)
	vals := []string{"EN-US, fr"}
	if allocs := testing.AllocsPerRun(100, func() { buf = AppendVariantValue(buf[:0], "Accept-Language", vals, true) }); allocs != 0 {
		t.Errorf("AppendVariantValue allocates %v times", allocs)
	}
}
