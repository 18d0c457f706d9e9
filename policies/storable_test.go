package policies

import "testing"

func TestStorable(t *testing.T) {
	cc := func(s string) CacheControl { return ParseCacheControl([]string{s}) }
	tests := []struct {
		name    string
		status  int
		cc      CacheControl
		expires bool
		auth    bool
		want    string // "" = storable
	}{
		{"200 heuristic", 200, cc(""), false, false, ""},
		{"206 heuristic", 206, cc(""), false, false, ""},
		{"404 heuristic", 404, cc(""), false, false, ""},
		{"405 heuristic", 405, cc(""), false, false, ""},
		{"414 heuristic", 414, cc(""), false, false, ""},
		{"501 heuristic", 501, cc(""), false, false, ""},
		{"302 no freshness", 302, cc(""), false, false, ReasonNoFreshness},
		{"302 max-age", 302, cc("max-age=60"), false, false, ""},
		{"303 s-maxage", 303, cc("s-maxage=60"), false, false, ""},
		{"307 Expires", 307, cc(""), true, false, ""},
		{"400 max-age", 400, cc("max-age=5"), false, false, ""},
		{"500 no freshness", 500, cc(""), false, false, ReasonNoFreshness},
		{"500 max-age", 500, cc("max-age=5"), false, false, ""},
		{"503 Expires", 503, cc(""), true, false, ""},
		{"unknown 299 max-age", 299, cc("max-age=5"), false, false, ""},
		{"unknown 599 max-age", 599, cc("max-age=5"), false, false, ""},
		{"unknown 599 bare", 599, cc(""), false, false, ReasonNoFreshness},
		{"public alone", 302, cc("public"), false, false, ""},
		{"100 interim", 100, cc("max-age=5"), false, false, ReasonStatus},
		{"103 interim", 103, cc("max-age=5"), false, false, ReasonStatus},
		{"no-store", 200, cc("no-store, max-age=5"), false, false, ReasonNoStore},
		{"private", 200, cc("private, max-age=5"), false, false, ReasonPrivate},
		{"no-cache is stored", 200, cc("no-cache"), false, false, ""},
		{"must-understand known ignores no-store", 200, cc("must-understand, no-store, max-age=5"), false, false, ""},
		{"must-understand unknown", 299, cc("must-understand, max-age=5"), false, false, ReasonMustUnderstand},
		{"must-understand 206", 206, cc("must-understand, no-store"), false, false, ReasonMustUnderstand},
		{"must-understand still private", 200, cc("must-understand, private"), false, false, ReasonPrivate},
		{"auth plain", 200, cc("max-age=60"), false, true, ReasonAuthorization},
		{"auth public", 200, cc("public, max-age=60"), false, true, ""},
		{"auth s-maxage", 200, cc("s-maxage=60"), false, true, ""},
		{"auth must-revalidate", 200, cc("must-revalidate, max-age=60"), false, true, ""},
		{"auth heuristic only", 200, cc(""), false, true, ReasonAuthorization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := Storable(tt.status, &tt.cc, tt.expires, tt.auth)
			if ok != (tt.want == "") || reason != tt.want {
				t.Fatalf("Storable = %v, %q; want %q", ok, reason, tt.want)
			}
		})
	}
}

func TestHeuristicallyCacheable(t *testing.T) {
	want := map[int]bool{200: true, 203: true, 204: true, 206: true, 300: true, 301: true, 308: true, 404: true, 405: true, 410: true, 414: true, 501: true}
	for s := 100; s < 600; s++ {
		if HeuristicallyCacheable(s) != want[s] {
			t.Errorf("HeuristicallyCacheable(%d) = %v", s, !want[s])
		}
	}
}

func TestUnderstoodStatus(t *testing.T) {
	for _, tt := range []struct {
		status int
		want   bool
	}{{200, true}, {204, true}, {206, false}, {304, false}, {305, false}, {306, false}, {308, true}, {418, false},
		{429, true}, {451, true}, {500, true}, {505, true}, {506, false}, {511, true}, {599, false}, {299, false}} {
		if UnderstoodStatus(tt.status) != tt.want {
			t.Errorf("UnderstoodStatus(%d) != %v", tt.status, tt.want)
		}
	}
}
