package policies

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func key(scheme, host, path, query string) string {
	return string(DefaultKey{}.AppendKey(nil, &Request{Method: "GET", Scheme: scheme, Host: host, Path: path, RawQuery: query}))
}

func TestDefaultKey(t *testing.T) {
	tests := []struct {
		name                      string
		scheme, host, path, query string
		want                      string
	}{
		{"plain", "https", "api.example.com", "/v1/items", "", "https://api.example.com/v1/items"},
		{"sorted", "http", "h", "/p", "b=2&a=1", "http://h/p?a=1&b=2"},
		{"already-sorted", "http", "h", "/p", "a=1&b=2", "http://h/p?a=1&b=2"},
		{"empty-pieces", "http", "h", "/p", "&a=1&&b=2&", "http://h/p?a=1&b=2"},
		{"only-ampersands", "http", "h", "/p", "&&&", "http://h/p"},
		{"host-case", "http", "API.Example.COM", "/P", "", "http://api.example.com/P"},
		{"empty-path", "http", "h", "", "", "http://h/"},
		{"raw-not-decoded", "http", "h", "/p", "q=%41&q=A", "http://h/p?q=%41&q=A"},
		{"duplicates-kept", "http", "h", "/p", "a=2&a=1&a=2", "http://h/p?a=2&a=1&a=2"},
		{"no-value", "http", "h", "/p", "z&a=", "http://h/p?a=&z"},
		{"semicolon-not-separator", "http", "h", "/p", "b=1;a=2", "http://h/p?b=1;a=2"},
		{"escaped-path", "http", "h", "/a%2Fb", "", "http://h/a%2Fb"},
		{"many-params", "http", "h", "/", manyParams(40, true), "http://h/?" + manyParams(40, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := key(tt.scheme, tt.host, tt.path, tt.query); got != tt.want {
				t.Errorf("key = %q, want %q", got, tt.want)
			}
		})
	}
}

// manyParams returns n parameters p00..p(n-1), reversed or sorted.
func manyParams(n int, reversed bool) string {
	ps := make([]string, n)
	for i := range ps {
		j := i
		if reversed {
			j = n - 1 - i
		}
		ps[i] = "p" + strconv.Itoa(100+j) + "=" + strconv.Itoa(j)
	}
	return strings.Join(ps, "&")
}

func TestDefaultKeyEquivalence(t *testing.T) {
	same := [][2]string{
		{"?b=2&a=1", "?a=1&b=2"},
		{"?", ""},
		{"?a=1&&b=2", "?a=1&b=2"},
		{"?c&b&a", "?a&b&c"},
	}
	for _, p := range same {
		a, b := key("http", "h", "/p", p[0][min(1, len(p[0])):]), key("http", "h", "/p", p[1][min(1, len(p[1])):])
		if a != b {
			t.Errorf("%q and %q: keys %q and %q differ", p[0], p[1], a, b)
		}
	}
	differ := [][2][4]string{
		{{"http", "h", "/a", ""}, {"http", "h", "/b", ""}},
		{{"http", "h", "/a", ""}, {"https", "h", "/a", ""}},
		{{"http", "h", "/a", ""}, {"http", "g", "/a", ""}},
		{{"http", "h", "/a", "x=1"}, {"http", "h", "/a", "x=2"}},
		{{"http", "h", "/a", "x=1&x=1"}, {"http", "h", "/a", "x=1"}},
		{{"http", "h", "/A", ""}, {"http", "h", "/a", ""}},
	}
	for _, d := range differ {
		a, b := key(d[0][0], d[0][1], d[0][2], d[0][3]), key(d[1][0], d[1][1], d[1][2], d[1][3])
		if a == b {
			t.Errorf("%v and %v share key %q", d[0], d[1], a)
		}
	}
}

func TestDefaultKeyAppends(t *testing.T) {
	got := DefaultKey{}.AppendKey([]byte("prefix|"), &Request{Scheme: "http", Host: "h", Path: "/"})
	if string(got) != "prefix|http://h/" {
		t.Errorf("AppendKey = %q", got)
	}
}

func TestDefaultKeyAllocs(t *testing.T) {
	r := &Request{Method: "GET", Scheme: "https", Host: "Api.Example.com", Path: "/v1/products/42", RawQuery: manyParams(maxStackParams, true)}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = DefaultKey{}.AppendKey(buf[:0], r) }); n != 0 {
		t.Errorf("AppendKey with %d params: %v allocs, want 0", maxStackParams, n)
	}
}

// TestBuiltinKeyABIExamples pins the examples of plugins/ABI.md ("The
// built-in key, byte for byte"): the request view as the gateway fills it
// (CanonicalHost, the escaped path, the raw query), then DefaultKey.
func TestBuiltinKeyABIExamples(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://Shop.Example:443/p?b=2&a=1", "https://shop.example/p?a=1&b=2"},
		{"http://shop.example/p?a=1&a=0", "http://shop.example/p?a=1&a=0"},
		{"http://shop.example/p?z=1&a=0&z=0", "http://shop.example/p?a=0&z=1&z=0"},
		{"http://shop.example:8080", "http://shop.example:8080/"},
		{"https://shop.example/caf%C3%A9/x?q=%41%26b&q=A", "https://shop.example/caf%C3%A9/x?q=%41%26b&q=A"},
		{"https://shop.example/p?b=&a&&c=3", "https://shop.example/p?a&b=&c=3"},
		{"https://shop.example/p?&", "https://shop.example/p"},
		{"https://shop.example/p?B=1&a=2&a_b=3", "https://shop.example/p?B=1&a=2&a_b=3"},
		{"http://shop.example:443/a%2Fb", "http://shop.example/a%2Fb"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			r := &Request{Method: "GET", Scheme: u.Scheme, Host: CanonicalHost(u.Host), Path: u.EscapedPath(), RawQuery: u.RawQuery}
			if got := string(DefaultKey{}.AppendKey(nil, r)); got != tc.want {
				t.Errorf("key %q, want %q", got, tc.want)
			}
		})
	}
}
