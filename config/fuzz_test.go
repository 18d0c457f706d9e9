package config

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzLoad holds the loader's promise for any YAML document, environment
// variable and --set override: a configuration or an error, never a panic;
// a configuration that loads is valid, has its defaults filled (filling
// them again changes nothing), and loads the same the second time; an
// error says it comes from the config package.
//
// Seeds are in testdata/fuzz/FuzzLoad (go test runs them as a normal
// test); `make fuzz` explores from them.
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte, env, set string) {
		if len(doc) > 64<<10 || len(env) > 1<<10 || len(set) > 1<<10 {
			t.Skip("a config is not that large")
		}
		src := Source{Default: doc}
		if env != "" {
			src.Environ = []string{env}
		}
		if set != "" {
			src.Sets = []string{set}
		}
		c, err := src.Load()
		if err != nil {
			if c != nil {
				t.Fatalf("config and error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without the package prefix: %q", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load returned an invalid config: %v", err)
		}
		c2, err := src.Load()
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("a second load differs: %v\n%+v\n%+v", err, c, c2)
		}
		c2.EnsureDefaults()
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("EnsureDefaults is not idempotent:\n%+v\n%+v", c, c2)
		}
	})
}
