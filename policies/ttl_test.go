package policies

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ttlNow is the time of every decision in testdata/ttl.
var ttlNow = time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)

type ttlCase struct {
	name    string
	line    int
	req     Request
	resp    Response
	policy  DefaultTTL
	want    Decision
	hasWant bool
}

// readTTLCases parses testdata/ttl (its header says the format).
func readTTLCases(t *testing.T) []ttlCase {
	t.Helper()
	var cases []ttlCase
	var c *ttlCase
	var err error
	readCaseFile(t, "testdata/ttl", func(n int, name string) {
		cases = append(cases, ttlCase{
			name: name, line: n,
			req:  Request{Method: http.MethodGet, Scheme: "http", Host: "h", Path: "/", Header: http.Header{}},
			resp: Response{Status: 200, Header: http.Header{}},
		})
		c = &cases[len(cases)-1]
	}, func(n int, field, val string) {
		switch field {
		case "method":
			c.req.Method = val
		case "status":
			if c.resp.Status, err = strconv.Atoi(val); err != nil {
				t.Fatalf("testdata/ttl:%d: %v", n, err)
			}
		case "req", "resp":
			k, v, _ := strings.Cut(val, ":")
			h := c.req.Header
			if field == "resp" {
				h = c.resp.Header
			}
			h.Add(k, strings.TrimSpace(v))
		case "default":
			if c.policy.Default, err = time.ParseDuration(val); err != nil {
				t.Fatalf("testdata/ttl:%d: %v", n, err)
			}
		case "negative":
			if c.policy.Negative, err = time.ParseDuration(val); err != nil {
				t.Fatalf("testdata/ttl:%d: %v", n, err)
			}
		case "heuristic":
			c.policy.Heuristic = val == "true"
		case "want":
			c.hasWant = true
			words := strings.Fields(val)
			switch {
			case len(words) == 2 && words[0] == "skip":
				c.want = Decision{Reason: words[1]}
			case len(words) >= 2 && words[0] == "store":
				c.want = Decision{Store: true}
				for _, w := range words[1:] {
					k, v, _ := strings.Cut(w, "=")
					d, err := time.ParseDuration(v)
					if err != nil {
						t.Fatalf("testdata/ttl:%d: %v", n, err)
					}
					switch k {
					case "ttl":
						c.want.TTL = d
					case "swr":
						c.want.StaleWhileRevalidate = d
					case "sie":
						c.want.StaleIfError = d
					default:
						t.Fatalf("testdata/ttl:%d: unknown %q", n, k)
					}
				}
			default:
				t.Fatalf("testdata/ttl:%d: bad want %q", n, val)
			}
		default:
			t.Fatalf("testdata/ttl:%d: unknown field %q", n, field)
		}
	})
	return cases
}

func TestDefaultTTLData(t *testing.T) {
	cases := readTTLCases(t)
	if len(cases) < 50 {
		t.Fatalf("read only %d cases", len(cases))
	}
	for _, c := range cases {
		if !c.hasWant {
			t.Fatalf("testdata/ttl:%d: case %q has no want", c.line, c.name)
		}
		t.Run(c.name, func(t *testing.T) {
			got := c.policy.Decide(&c.req, &c.resp, ttlNow)
			if !equalDecision(got, c.want) {
				t.Errorf("testdata/ttl:%d: Decide\n got %+v\nwant %+v", c.line, got, c.want)
			}
		})
	}
}

func equalDecision(a, b Decision) bool {
	return a.Store == b.Store && a.TTL == b.TTL && a.StaleWhileRevalidate == b.StaleWhileRevalidate &&
		a.StaleIfError == b.StaleIfError && a.Reason == b.Reason && len(a.Tags) == len(b.Tags)
}

func TestDefaultTTLNilHeaders(t *testing.T) {
	d := DefaultTTL{Default: time.Minute}.Decide(&Request{Method: "GET"}, &Response{Status: 200}, ttlNow)
	if !d.Store || d.TTL != time.Minute {
		t.Errorf("Decide with nil headers = %+v", d)
	}
}

func TestDefaultTTLAllocs(t *testing.T) {
	req := &Request{Method: "GET", Header: http.Header{"Accept": {"*/*"}}}
	for _, cc := range []string{"public, max-age=3600, stale-while-revalidate=30", "s-maxage=60", "no-store", "private"} {
		resp := &Response{Status: 200, Header: http.Header{"Cache-Control": {cc}, "Age": {"5"}, "Vary": {"Accept-Encoding"}}}
		if n := testing.AllocsPerRun(100, func() { _ = DefaultTTL{}.Decide(req, resp, ttlNow) }); n != 0 {
			t.Errorf("Decide with %q: %v allocs, want 0", cc, n)
		}
	}
}

func TestResponseAge(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   time.Duration
	}{
		{"absent", nil, 0},
		{"zero", []string{"0"}, 0},
		{"seconds", []string{"42"}, 42 * time.Second},
		{"spaces", []string{" 42 "}, 42 * time.Second},
		{"list", []string{"10, 20"}, 10 * time.Second},
		{"two-lines", []string{"10", "20"}, 10 * time.Second},
		{"negative", []string{"-1"}, 0},
		{"fraction", []string{"1.5"}, 0},
		{"empty", []string{""}, 0},
		{"huge", []string{"99999999999999999999"}, MaxDelta},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.values != nil {
				h["Age"] = tt.values
			}
			if got := ResponseAge(h); got != tt.want {
				t.Errorf("ResponseAge(%q) = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
	h := http.Header{"Age": {"5, 6"}}
	if n := testing.AllocsPerRun(100, func() { _ = ResponseAge(h) }); n != 0 {
		t.Errorf("ResponseAge: %v allocs, want 0", n)
	}
}
