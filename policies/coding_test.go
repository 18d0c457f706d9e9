package policies

import "testing"

func TestPreferredOf(t *testing.T) {
	all := []string{"br", "zstd", "gzip"}
	tests := []struct {
		name string
		ae   []string
		have []string
		want string
	}{
		{"no field", nil, all, ""},
		{"empty field", []string{""}, all, ""},
		{"browser", []string{"gzip, deflate, br, zstd"}, all, "br"},
		{"gzip only", []string{"gzip"}, all, "gzip"},
		{"x-gzip", []string{"x-gzip"}, all, "gzip"},
		{"q-values", []string{"br;q=0.5, gzip;q=0.8, zstd;q=0.1"}, all, "gzip"},
		{"tie goes to server order", []string{"gzip, zstd"}, all, "zstd"},
		{"q=0 excludes", []string{"br;q=0, gzip"}, all, "gzip"},
		{"star", []string{"*"}, all, "br"},
		{"star with exclusion", []string{"*, br;q=0"}, all, "zstd"},
		{"identity preferred", []string{"identity, gzip;q=0.5"}, all, ""},
		{"identity refused, nothing else", []string{"identity;q=0"}, all, ""},
		{"star refused", []string{"*;q=0"}, all, ""},
		{"unknown codings only", []string{"xbr, compress, deflate"}, all, ""},
		{"hostile near-misses", []string{"zstd, xbr"}, []string{"br", "gzip"}, ""},
		{"not stored", []string{"br"}, []string{"gzip"}, ""},
		{"bad q refuses", []string{"br;q=2, gzip;q=0.9"}, all, "gzip"},
		{"case and spaces", []string{" GZIP ; Q=0.5 , Br;q=0.4"}, all, "gzip"},
		{"several lines", []string{"gzip;q=0.1", "br"}, all, "br"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PreferredOf(tt.ae, tt.have); got != tt.want {
				t.Errorf("PreferredOf(%q, %q) = %q, want %q", tt.ae, tt.have, got, tt.want)
			}
			if got := PreferredOf(tt.ae, tt.have); got != "" && !AcceptsCoding(tt.ae, got) {
				t.Errorf("PreferredOf chose %q, which the request does not accept", got)
			}
		})
	}
}

func TestPreferredOfAllocs(t *testing.T) {
	ae, have := []string{"gzip, deflate, br;q=0.9, zstd"}, []string{"br", "zstd", "gzip"}
	if n := testing.AllocsPerRun(100, func() { _ = PreferredOf(ae, have) }); n != 0 {
		t.Errorf("PreferredOf allocates %.1f times", n)
	}
}

// FuzzPreferredOf: never panics, never picks a coding the entry lacks or
// one the field does not accept.
func FuzzPreferredOf(f *testing.F) {
	for _, s := range []string{"br, gzip", "*;q=0", "identity;q=0", "gzip;q=0.5, br;q=0.5", ";;,,", "x-gzip;Q=1.000", "zstd, xbr"} {
		f.Add(s)
	}
	have := []string{"br", "zstd", "gzip"}
	f.Fuzz(func(t *testing.T, ae string) {
		for n := range len(have) + 1 {
			c := PreferredOf([]string{ae}, have[:n])
			if c == "" {
				continue
			}
			found := false
			for _, h := range have[:n] {
				found = found || h == c
			}
			if !found || !AcceptsCoding([]string{ae}, c) {
				t.Fatalf("%q among %q: chose %q", ae, have[:n], c)
			}
			if ref := preferredOfRef([]string{ae}, have[:n]); ref != c {
				t.Fatalf("%q among %q: chose %q, the per-coding reading %q", ae, have[:n], c, ref)
			}
		}
	})
}

// preferredOfRef is PreferredOf read one coding at a time (qOf), as
// AcceptsCoding reads the field: the fuzzer holds the one-pass reading to
// it.
func preferredOfRef(vals []string, have []string) string {
	if vals == nil {
		return ""
	}
	best, bestQ := "", 0
	for _, c := range have {
		q, ok := qOf(vals, c)
		if !ok {
			if q, ok = qOf(vals, "*"); !ok {
				continue
			}
		}
		if q > bestQ {
			best, bestQ = c, q
		}
	}
	if iq, ok := qOf(vals, "identity"); ok && iq > bestQ {
		return ""
	}
	return best
}
