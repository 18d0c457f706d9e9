package policies

import (
	"strings"
	"testing"
)

func TestAcceptEncoding(t *testing.T) {
	none := []string(nil)
	for _, tc := range []struct {
		name      string
		ae        []string
		preferred string
		accepts   map[string]bool
	}{
		{"absent: identity only", none, "", map[string]bool{"": true, "gzip": false, "br": false}},
		{"empty field: identity only", []string{""}, "", map[string]bool{"": true, "gzip": false}},
		{"browser", []string{"gzip, deflate, br, zstd"}, "br", map[string]bool{"gzip": true, "deflate": true, "br": true, "zstd": true, "": true}},
		{"zstd only", []string{"zstd"}, "zstd", map[string]bool{"zstd": true, "gzip": false, "": true}},
		{"unknown codings are not br", []string{"zstd, xbr"}, "zstd", map[string]bool{"br": false, "xbr": true}},
		{"substring is not a match", []string{"gzipx, brotli"}, "", map[string]bool{"gzip": false, "br": false}},
		{"q-values order", []string{"br;q=0.5, gzip;q=0.9"}, "gzip", map[string]bool{"br": true, "gzip": true}},
		{"q=0 excludes", []string{"br;q=0, gzip"}, "gzip", map[string]bool{"br": false}},
		{"q=0.000 excludes", []string{"gzip;q=0.000"}, "", map[string]bool{"gzip": false, "": true}},
		{"spaces and case", []string{" GZIP ; Q=0.3 , Br ; q=0.2"}, "gzip", map[string]bool{"gzip": true, "br": true}},
		{"bad q-value excludes", []string{"br;q=2, gzip;q=abc, zstd;q=0.5"}, "zstd", map[string]bool{"br": false, "gzip": false}},
		{"wildcard", []string{"*"}, "br", map[string]bool{"deflate": true, "": true}},
		{"wildcard with exclusion", []string{"*;q=0.5, br;q=0"}, "zstd", map[string]bool{"br": false, "gzip": true}},
		{"identity;q=0", []string{"gzip, identity;q=0"}, "gzip", map[string]bool{"": false}},
		{"*;q=0 excludes identity", []string{"*;q=0"}, "", map[string]bool{"": false, "gzip": false}},
		{"*;q=0 with identity listed", []string{"*;q=0, identity"}, "", map[string]bool{"": true}},
		{"identity preferred", []string{"identity, gzip;q=0.5"}, "", map[string]bool{"": true, "gzip": true}},
		{"x-gzip alias", []string{"x-gzip"}, "gzip", map[string]bool{"gzip": true}},
		{"several field lines", []string{"deflate", "br"}, "br", map[string]bool{"br": true, "deflate": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PreferredCoding(tc.ae); got != tc.preferred {
				t.Errorf("PreferredCoding(%q) = %q, want %q", tc.ae, got, tc.preferred)
			}
			for c, want := range tc.accepts {
				if got := AcceptsCoding(tc.ae, c); got != want {
					t.Errorf("AcceptsCoding(%q, %q) = %v, want %v", tc.ae, c, got, want)
				}
			}
		})
	}
}

func TestAcceptsContentCoding(t *testing.T) {
	ae := []string{"gzip, br"}
	for ce, want := range map[string]bool{"": true, "gzip": true, "gzip, br": true, "gzip, zstd": false, "zstd": false} {
		if got := AcceptsContentCoding(ae, ce); got != want {
			t.Errorf("AcceptsContentCoding(%q, %q) = %v, want %v", ae, ce, got, want)
		}
	}
}

func TestVariantCoding(t *testing.T) {
	for _, tc := range []struct {
		ce   []string
		want string
		ok   bool
	}{
		{nil, "", true}, {[]string{"identity"}, "", true}, {[]string{"GZIP"}, "gzip", true},
		{[]string{"x-gzip"}, "gzip", true}, {[]string{"br"}, "br", true}, {[]string{"zstd"}, "zstd", true},
		{[]string{"deflate"}, "", false}, {[]string{"gzip, br"}, "", false}, {[]string{"gzip", "br"}, "", false},
	} {
		got, ok := VariantCoding(tc.ce)
		if got != tc.want || ok != tc.ok {
			t.Errorf("VariantCoding(%q) = %q, %v; want %q, %v", tc.ce, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzAcceptEncoding: whatever the field, the preferred coding is one the
// request accepts, a coding excluded by q=0 is never preferred, and
// nothing panics.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"", "gzip, deflate, br", "zstd, xbr", "*;q=0", "br;q=0.5, gzip;q=0.9", "identity;q=0, *", "gzip;q=1.000", "br;q=1.001", ";;,,q=", "x-gzip;Q=0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vals := strings.Split(s, "\n")
		p := PreferredCoding(vals)
		if p != "" && !AcceptsCoding(vals, p) {
			t.Fatalf("preferred %q is not accepted by %q", p, s)
		}
		if p != "" {
			if _, ok := VariantCoding([]string{p}); !ok {
				t.Fatalf("preferred %q is not a variant coding", p)
			}
		}
		_ = AcceptsContentCoding(vals, s)
	})
}
