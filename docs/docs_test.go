package docs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/wasm"
)

// field is one leaf of config.Config: its documented path
// ("routes[].origin"), environment variable (list index 0) and default.
type field struct {
	path string
	env  string
	typ  reflect.Type
	def  reflect.Value // after EnsureDefaults
}

// fields walks config.Config by its koanf tags. Lists of structs are
// walked through their first element, pointers to structs through their
// target: the defaults of a list element come from a config with one
// element of each list.
func fields() []field {
	// One element in every list of structs, and every pointer to a struct
	// set, so that EnsureDefaults fills in their defaults too.
	c := &config.Config{}
	var grow func(v reflect.Value)
	grow = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			switch {
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
				f.Set(reflect.MakeSlice(f.Type(), 1, 1))
				grow(f.Index(0))
			case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Struct:
				f.Set(reflect.New(f.Type().Elem()))
				grow(f.Elem())
			case f.Kind() == reflect.Struct:
				grow(f)
			}
		}
	}
	grow(reflect.ValueOf(c).Elem())
	c.EnsureDefaults()
	var out []field
	var walk func(t reflect.Type, v reflect.Value, path, env string)
	walk = func(t reflect.Type, v reflect.Value, path, env string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("koanf")
			if tag == "" || tag == "-" {
				continue
			}
			p, e := path+tag, env+strings.ToUpper(tag)
			ft, fv := f.Type, v.Field(i)
			if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
				ft, fv = ft.Elem(), fv.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]():
				walk(ft, fv, p+".", e+"_")
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), fv.Index(0), p+"[].", e+"_0_")
			default:
				out = append(out, field{path: p, env: e, typ: ft, def: fv})
			}
		}
	}
	walk(reflect.TypeOf(*c), reflect.ValueOf(*c), "", config.EnvPrefix)
	return out
}

// row is one documented field: a table row "| `path` | type | default |
// env | meaning |".
type row struct {
	line               int
	typ, def, env, doc string
}

var (
	rowStart = regexp.MustCompile("^\\| `([a-z0-9_.\\[\\]]+)` \\|")
	codeSpan = regexp.MustCompile("`([^`]*)`")
)

func readRows(t *testing.T, path string) map[string]row {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]row{}
	for i, line := range strings.Split(string(b), "\n") {
		m := rowStart.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 5 {
			t.Errorf("%s:%d: want 5 cells (field, type, default, environment, meaning), got %d", path, i+1, len(cells))
			continue
		}
		if _, dup := rows[m[1]]; dup {
			t.Errorf("%s:%d: %s documented twice", path, i+1, m[1])
		}
		rows[m[1]] = row{line: i + 1, typ: cells[1], def: cells[2], env: cells[3], doc: cells[4]}
	}
	return rows
}

// TestConfigurationReference checks docs/configuration.md against
// config.Config: every field has a row and every row a field; the type
// column names the field's kind; the default column is the default
// EnsureDefaults fills in; the environment column is the variable that
// sets the field — and that variable works — or "—" where none does.
func TestConfigurationReference(t *testing.T) {
	const doc = "configuration.md"
	rows := readRows(t, doc)
	known := map[string]bool{}
	for _, f := range fields() {
		known[f.path] = true
		r, ok := rows[f.path]
		if !ok {
			t.Errorf("%s: no row for `%s` (%s): document it", doc, f.path, f.typ)
			continue
		}
		where := fmt.Sprintf("%s:%d: %s", doc, r.line, f.path)
		if err := checkType(f.typ, r.typ); err != nil {
			t.Errorf("%s: type %q: %v", where, r.typ, err)
		}
		if err := checkDefault(f.def, r.def); err != nil {
			t.Errorf("%s: default %s: %v", where, r.def, err)
		}
		if strings.TrimSpace(r.doc) == "" {
			t.Errorf("%s: no meaning", where)
		}
		works := envWorks(f)
		switch {
		case r.env == "—" && works:
			t.Errorf("%s: %s works now: write it in the environment column", where, f.env)
		case r.env != "—" && r.env != "`"+f.env+"`":
			t.Errorf("%s: environment %s, want `%s`", where, r.env, f.env)
		case r.env != "—" && !works:
			t.Errorf("%s: %s is documented but does not set the field: write — or fix config/env.go", where, f.env)
		}
	}
	for path, r := range rows {
		if !known[path] {
			t.Errorf("%s:%d: `%s` is not a field of config.Config", doc, r.line, path)
		}
	}
}

// hostDefaults are defaults the plugin host fills in rather than the config
// loader: their rows say — in the default column and "Default `X`" in the
// meaning, and X must be the host's constant.
var hostDefaults = map[string]any{
	"plugins[].pool_size":              wasm.DefaultPoolSize,
	"plugins[].timeout":                wasm.DefaultTimeout,
	"plugins[].init_timeout":           wasm.DefaultInitTimeout,
	"plugins[].memory_limit_bytes":     int64(wasm.DefaultMemoryLimitPages) * 65536,
	"plugins[].max_calls_per_instance": wasm.DefaultMaxCallsPerInstance,
	"plugins[].memo_entries":           wasm.DefaultMemoEntries,
}

var meaningDefault = regexp.MustCompile("Default `([^`]*)`")

// TestHostDefaults checks the defaults the meaning column states for
// fields the plugin host fills in.
func TestHostDefaults(t *testing.T) {
	rows := readRows(t, "configuration.md")
	for path, want := range hostDefaults {
		r, ok := rows[path]
		if !ok {
			t.Errorf("no row for %s", path)
			continue
		}
		m := meaningDefault.FindStringSubmatch(r.doc)
		if m == nil {
			t.Errorf("%s: the meaning states no \"Default `X`\"", path)
			continue
		}
		if err := checkDefault(reflect.ValueOf(want), "`"+m[1]+"`"); err != nil {
			t.Errorf("%s: Default `%s`: %v", path, m[1], err)
		}
	}
}

// checkType checks that the type column names the Go type's kind.
func checkType(t reflect.Type, cell string) error {
	var want string
	switch {
	case t == reflect.TypeFor[time.Duration]():
		want = "duration"
	case t.Kind() == reflect.String:
		want = "string"
	case t.Kind() == reflect.Bool:
		want = "bool"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		want = "integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		want = "number"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		want = "list of strings"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Int:
		want = "list of integers"
	case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.String:
		want = "map of strings"
	case t.Kind() == reflect.Map:
		want = "map"
	default:
		return fmt.Errorf("the test does not know %s", t)
	}
	if !strings.HasPrefix(cell, want) {
		return fmt.Errorf("want it to start with %q", want)
	}
	return nil
}

// checkDefault checks the default column against the filled-in default:
// "—" for a zero value (no default), else a code span holding the value.
func checkDefault(def reflect.Value, cell string) error {
	if cell == "—" {
		empty := def.IsZero()
		if k := def.Kind(); k == reflect.Slice || k == reflect.Map {
			empty = def.Len() == 0
		}
		if !empty {
			return fmt.Errorf("the default is %v", def.Interface())
		}
		return nil
	}
	m := codeSpan.FindStringSubmatch(cell)
	if m == nil {
		return fmt.Errorf("want — or the value in a code span")
	}
	s := m[1]
	var got any
	var err error
	switch v := def.Interface().(type) {
	case time.Duration:
		got, err = time.ParseDuration(s)
	case string:
		got = s
	case bool:
		got, err = strconv.ParseBool(s)
	case int:
		got, err = strconv.Atoi(s)
	case int64:
		got, err = strconv.ParseInt(s, 10, 64)
	case float64:
		got, err = strconv.ParseFloat(s, 64)
	case []string:
		var l []string
		if err := yaml.Unmarshal([]byte(s), &l); err != nil {
			return err
		}
		if !slices.Equal(l, v) {
			return fmt.Errorf("the default is %q", v)
		}
		return nil
	case []int:
		var l []int
		err = yaml.Unmarshal([]byte(s), &l)
		if err == nil && !slices.Equal(l, v) {
			return fmt.Errorf("the default is %v", v)
		}
		return err
	default:
		return fmt.Errorf("the test does not know %T", v)
	}
	if err != nil {
		return err
	}
	if got != def.Interface() {
		return fmt.Errorf("the default is %v", def.Interface())
	}
	return nil
}

// sample is a value of t's kind for an environment variable.
func sample(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "1s"
	case t.Kind() == reflect.Bool:
		return "true"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Int:
		return "1"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		return "1"
	}
	return "x"
}

// envWorks reports whether f's environment variable sets f: the
// configuration loads with the variable set to a sample value and the
// field holds it, or it fails only validation (the sample is not a valid
// value there, but it reached the field). A variable that names no field,
// or a value the decoder cannot put in the field, does not work.
func envWorks(f field) bool {
	val := sample(f.typ)
	src := config.Source{
		Default: []byte("routes:\n  - origin: http://127.0.0.1:9000\n"),
		Environ: []string{f.env + "=" + val},
	}
	c, err := src.Load()
	if err != nil {
		for _, e := range leaves(err) {
			var fe *config.FieldError
			if !errors.As(e, &fe) {
				return false
			}
		}
		return true
	}
	got, ok := lookup(reflect.ValueOf(*c), f.path)
	return ok && fmt.Sprint(got) == fmt.Sprint(want(f.typ, val))
}

// want is the value a field of type t holds when set to s.
func want(t reflect.Type, s string) any {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		d, _ := time.ParseDuration(s)
		return d
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Int:
		n, _ := strconv.Atoi(s)
		return []int{n}
	case t.Kind() == reflect.Slice:
		return []string{s}
	}
	return s
}

// lookup returns the field of c at a documented path (lists at index 0).
func lookup(v reflect.Value, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		list := strings.HasSuffix(part, "[]")
		part = strings.TrimSuffix(part, "[]")
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil, false
			}
			v = v.Elem()
		}
		found := false
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("koanf") == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return nil, false
		}
		if list {
			if v.Len() == 0 {
				return nil, false
			}
			v = v.Index(0)
		}
	}
	return v.Interface(), true
}

// leaves flattens joined and wrapped errors.
func leaves(err error) []error {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, x := range e.Unwrap() {
			out = append(out, leaves(x)...)
		}
		return out
	case interface{ Unwrap() error }:
		if in := e.Unwrap(); in != nil {
			return leaves(in)
		}
	}
	return []error{err}
}

// TestEnvWorksCanFail makes sure envWorks tells a working variable from
// one that names no field.
func TestEnvWorksCanFail(t *testing.T) {
	if !envWorks(field{env: "EDGECACHE_SERVER_LISTEN", typ: reflect.TypeFor[string]()}) {
		t.Error("EDGECACHE_SERVER_LISTEN reported as not working")
	}
	if envWorks(field{env: "EDGECACHE_SERVER_LISTN", typ: reflect.TypeFor[string]()}) {
		t.Error("EDGECACHE_SERVER_LISTN reported as working")
	}
}

// TestConfigurationExamples loads every YAML block of configuration.md
// that has routes (a whole configuration): each must be valid.
func TestConfigurationExamples(t *testing.T) {
	b, err := os.ReadFile("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	n := 0
	for _, m := range blocks {
		if !strings.Contains(m[1], "\nroutes:") && !strings.HasPrefix(m[1], "routes:") {
			continue
		}
		n++
		if _, err := config.Parse([]byte(m[1])); err != nil {
			t.Errorf("configuration.md example %d: %v\n%s", n, err, m[1])
		}
	}
	if n == 0 {
		t.Error("configuration.md has no complete example")
	}
}
