package policies

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParseCacheControl: the parser never panics, its durations are never
// negative nor above MaxDelta, a duration is set only with its flag, and
// directive names are case-insensitive. Seeds are below and in
// testdata/fuzz/FuzzParseCacheControl.
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"", "public, max-age=3600", "no-store", "no-cache", "private",
		"max-age=0, must-revalidate", "s-maxage=60, stale-while-revalidate=30, stale-if-error=86400",
		`no-cache="Set-Cookie, X-Foo", max-age=5`, `private="x`, `max-age="60"`, "max-age=abc",
		"max-stale", "max-stale=10, min-fresh=5, only-if-cached", "max-age=99999999999999999999999",
		"immutable, must-understand, no-transform, proxy-revalidate", ",,, ,", `"\`, "=,=",
		"MAX-AGE=1, Public",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cc := ParseCacheControl([]string{s})
		check := func(name string, d time.Duration, has bool) {
			if d < 0 || d > MaxDelta {
				t.Fatalf("%q: %s = %v out of range", s, name, d)
			}
			if d != 0 && !has {
				t.Fatalf("%q: %s = %v without its flag", s, name, d)
			}
		}
		check("MaxAge", cc.MaxAge, cc.HasMaxAge)
		check("SMaxAge", cc.SMaxAge, cc.HasSMaxAge)
		check("MaxStale", cc.MaxStale, cc.HasMaxStale)
		check("MinFresh", cc.MinFresh, cc.HasMinFresh)
		check("StaleWhileRevalidate", cc.StaleWhileRevalidate, cc.HasSWR)
		check("StaleIfError", cc.StaleIfError, cc.HasSIE)
		if cc.MaxStaleAny && (!cc.HasMaxStale || cc.MaxStale != 0) {
			t.Fatalf("%q: MaxStaleAny with HasMaxStale=%v MaxStale=%v", s, cc.HasMaxStale, cc.MaxStale)
		}
		if again := ParseCacheControl([]string{s}); again != cc {
			t.Fatalf("%q: not deterministic", s)
		}
		if up := ParseCacheControl([]string{asciiUpper(s)}); up != cc {
			t.Fatalf("%q: upper-casing changes the result:\n%+v\n%+v", s, cc, up)
		}
	})
}

func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// FuzzKey: DefaultKey never panics, is deterministic, appends without
// touching dst, ignores the order of query parameters, and sorting is
// idempotent (the key of a request whose query is already the sorted one
// is the same key). Seeds are below and in testdata/fuzz/FuzzKey.
func FuzzKey(f *testing.F) {
	f.Add("https", "api.example.com", "/v1/items", "b=2&a=1")
	f.Add("http", "Host.COM", "", "")
	f.Add("http", "h", "/p", "&&a&&")
	f.Add("http", "h", "/p", "?")
	f.Add("http", "h", "/p%20q", "z=%26&a=%3D&m")
	f.Add("http", "h", "/", manyParams(40, true))
	f.Fuzz(func(t *testing.T, scheme, host, path, query string) {
		var dk DefaultKey
		r := &Request{Method: "GET", Scheme: scheme, Host: host, Path: path, RawQuery: query}
		prefix := []byte("dst|")
		k := dk.AppendKey(bytes.Clone(prefix), r)
		if !bytes.HasPrefix(k, prefix) {
			t.Fatalf("dst prefix lost: %q", k)
		}
		k = k[len(prefix):]
		if k2 := dk.AppendKey(nil, r); !bytes.Equal(k, k2) {
			t.Fatalf("not deterministic: %q vs %q", k, k2)
		}
		head := scheme + "://" + asciiLower(host)
		if !bytes.HasPrefix(k, []byte(head)) {
			t.Fatalf("key %q does not start with %q", k, head)
		}

		// Reverse the parameters: same key.
		params := strings.Split(query, "&")
		slices.Reverse(params)
		rev := *r
		rev.RawQuery = strings.Join(params, "&")
		if k2 := dk.AppendKey(nil, &rev); !bytes.Equal(k, k2) {
			t.Fatalf("parameter order matters: %q vs %q", k, k2)
		}

		// Idempotent: the sorted query sorts to itself.
		sorted := *r
		sorted.RawQuery = ""
		if q := appendSortedQuery(nil, query); len(q) > 0 {
			sorted.RawQuery = string(q[1:])
			if !slices.IsSorted(strings.Split(sorted.RawQuery, "&")) {
				t.Fatalf("query %q is not sorted", sorted.RawQuery)
			}
		}
		if k2 := dk.AppendKey(nil, &sorted); !bytes.Equal(k, k2) {
			t.Fatalf("sorting is not idempotent: %q vs %q", k, k2)
		}
	})
}

func asciiLower(s string) string {
	return string(appendLower(nil, s))
}
