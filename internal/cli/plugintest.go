package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/wasm"
)

// testFile is one `plugin test` table (plugins/README.md, "Testing a
// plugin"). Paths are relative to the file.
type testFile struct {
	Plugin string         `yaml:"plugin"`
	Config any            `yaml:"config"` // given to init as JSON
	Route  testRoute      `yaml:"route"`
	Cases  []testCase     `yaml:"cases"`
	Extra  map[string]any `yaml:",inline"`
}

// testRoute are the route settings the built-in policies read.
type testRoute struct {
	DefaultTTL         time.Duration  `yaml:"default_ttl"`
	NegativeTTL        *time.Duration `yaml:"negative_ttl"` // nil: config.DefaultNegativeTTL
	HeuristicFreshness bool           `yaml:"heuristic_freshness"`
}

type testCase struct {
	Name     string            `yaml:"name"`
	Request  string            `yaml:"request"` // 'METHOD URL' or 'URL'
	Headers  map[string]string `yaml:"headers"`
	Response *testResponse     `yaml:"response"` // runs the TTL policy

	// Expectations; an absent one is not checked.
	Key      *string        `yaml:"key"`
	Miss     *testMiss      `yaml:"miss"`
	Decision *testDecision  `yaml:"decision"`
	Extra    map[string]any `yaml:",inline"`
}

type testResponse struct {
	Status  int               `yaml:"status"`
	Headers map[string]string `yaml:"headers"`
}

// testMiss is an expected MissAction; the whole action is compared.
type testMiss struct {
	Bypass    bool              `yaml:"bypass"`
	OriginURL string            `yaml:"origin_url"`
	Headers   map[string]string `yaml:"headers"`
	Status    int               `yaml:"status"`
	Body      string            `yaml:"body"`
}

// testDecision is an expected Decision; the whole decision is compared.
type testDecision struct {
	Store                bool          `yaml:"store"`
	TTL                  time.Duration `yaml:"ttl"`
	StaleWhileRevalidate time.Duration `yaml:"stale_while_revalidate"`
	StaleIfError         time.Duration `yaml:"stale_if_error"`
	Tags                 []string      `yaml:"tags"`
	Reason               string        `yaml:"reason"`
}

func pluginTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, pluginUsage)
		return 2
	}
	code := 0
	for _, file := range args {
		c := runTestFile(ctx, file, stdout, stderr)
		code = max(code, c)
	}
	return code
}

// runTestFile returns 0 when every case passed, 1 on a mismatch or a
// plugin that does not load, 2 for a file that cannot be read.
func runTestFile(ctx context.Context, file string, stdout, stderr io.Writer) int {
	raw, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	var tf testFile
	if err := yaml.Unmarshal(raw, &tf); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 2
	}
	if err := tf.check(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 2
	}
	var conf []byte
	if tf.Config != nil {
		if conf, err = json.Marshal(tf.Config); err != nil {
			fmt.Fprintf(stderr, "%s: config: %v\n", file, err)
			return 2
		}
	}
	rc := config.Route{DefaultTTL: tf.Route.DefaultTTL, NegativeTTL: config.DefaultNegativeTTL, HeuristicFreshness: tf.Route.HeuristicFreshness}
	if tf.Route.NegativeTTL != nil {
		rc.NegativeTTL = *tf.Route.NegativeTTL
	}
	path := tf.Plugin
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(file), path)
	}
	l, err := loadRoute(ctx, path, conf, wasm.DefaultTimeout, rc, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 1
	}
	defer l.close(ctx)

	failed := 0
	for i, tc := range tf.Cases {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("case %d", i+1)
		}
		diffs, err := l.runCase(tc)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %s\n     %v\n", file, name, err)
		case len(diffs) > 0:
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %s (%s)\n", file, name, tc.Request)
			for _, d := range diffs {
				fmt.Fprint(stdout, d)
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "FAIL %s: %d of %d cases\n", file, failed, len(tf.Cases))
		return 1
	}
	fmt.Fprintf(stdout, "ok   %s: %d cases\n", file, len(tf.Cases))
	return 0
}

// check rejects unknown fields and cases that check nothing, so that a
// typo cannot make a table pass.
func (tf *testFile) check() error {
	if tf.Plugin == "" {
		return fmt.Errorf("plugin: missing")
	}
	if len(tf.Extra) > 0 {
		return fmt.Errorf("unknown field(s) %v", mapKeys(tf.Extra))
	}
	if len(tf.Cases) == 0 {
		return fmt.Errorf("cases: none")
	}
	for i, tc := range tf.Cases {
		switch {
		case len(tc.Extra) > 0:
			return fmt.Errorf("cases[%d]: unknown field(s) %v", i, mapKeys(tc.Extra))
		case tc.Request == "":
			return fmt.Errorf("cases[%d].request: missing", i)
		case tc.Key == nil && tc.Miss == nil && tc.Decision == nil:
			return fmt.Errorf("cases[%d]: expects nothing (key, miss or decision)", i)
		case tc.Decision != nil && tc.Response == nil:
			return fmt.Errorf("cases[%d].decision: needs a response", i)
		}
	}
	return nil
}

func mapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// runCase runs one case and returns its mismatches, each a "want/got"
// block.
func (l *loaded) runCase(tc testCase) ([]string, error) {
	hdr := http.Header{}
	for k, v := range tc.Headers {
		hdr.Set(k, v)
	}
	r, err := parseRequest(tc.Request, hdr)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	var resp *policies.Response
	if tc.Response != nil {
		rh := http.Header{}
		for k, v := range tc.Response.Headers {
			rh.Set(k, v)
		}
		resp = &policies.Response{Status: tc.Response.Status, Header: rh}
	}
	o := l.decide(r, resp, time.Now())
	var diffs []string
	diff := func(what, want, got string) {
		if want != got {
			diffs = append(diffs, fmt.Sprintf("     %s:\n       want %s\n       got  %s\n", what, want, got))
		}
	}
	if tc.Key != nil {
		diff("key", *tc.Key, o.key)
	}
	if tc.Miss != nil {
		m := tc.Miss
		want := policies.MissAction{Bypass: m.Bypass, OriginURL: m.OriginURL, Status: m.Status}
		if m.Body != "" {
			want.Body = []byte(m.Body)
		}
		if len(m.Headers) > 0 {
			want.Header = http.Header{}
			for k, v := range m.Headers {
				want.Header.Set(k, v)
			}
		}
		diff("miss", formatMiss(want), formatMiss(o.miss))
	}
	if tc.Decision != nil {
		d := tc.Decision
		want := policies.Decision{Store: d.Store, TTL: d.TTL, StaleWhileRevalidate: d.StaleWhileRevalidate,
			StaleIfError: d.StaleIfError, Tags: d.Tags, Reason: d.Reason}
		diff("decision", formatDecision(want), formatDecision(o.dec))
	}
	return diffs, nil
}

// formatMiss and formatDecision print every field, in a fixed order, so
// that two values compare as their strings and a diff shows the field.
func formatMiss(a policies.MissAction) string {
	var hdr []string
	for k, v := range a.Header {
		hdr = append(hdr, k+": "+strings.Join(v, ", "))
	}
	slices.Sort(hdr)
	return fmt.Sprintf("bypass=%t origin_url=%q status=%d body=%q headers=%q", a.Bypass, a.OriginURL, a.Status, a.Body, hdr)
}

func formatDecision(d policies.Decision) string {
	tags := d.Tags
	if len(tags) == 0 {
		tags = nil
	}
	return fmt.Sprintf("store=%t ttl=%v stale_while_revalidate=%v stale_if_error=%v tags=%q reason=%q",
		d.Store, d.TTL, d.StaleWhileRevalidate, d.StaleIfError, tags, d.Reason)
}
