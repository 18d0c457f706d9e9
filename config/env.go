package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment variable that configures edgecache.
const EnvPrefix = "EDGECACHE_"

// Environment variables name a config path in upper case with '_' between
// the parts, list indexes included:
//
//	EDGECACHE_SERVER_LISTEN=0.0.0.0:8080          server.listen
//	EDGECACHE_VALKEY_COMMAND_TIMEOUT=250ms        valkey.command_timeout
//	EDGECACHE_ROUTES_0_ORIGIN=http://origin:9000  routes[0].origin
//	EDGECACHE_SHARDS_1_ADDR=10.0.0.2:6379         shards[1].addr
//
// Field names contain '_' too; the mapping is resolved against the config
// struct, so it is unambiguous. A variable that names no field is an error,
// like an unknown field in the file. EDGECACHE_ADMIN_TOKEN and other
// variables listed in envIgnored are read elsewhere and skipped here.
var envIgnored = map[string]bool{"ADMIN_TOKEN": true, "CONFIG": true}

// envPath resolves the part of a variable name after the prefix to a
// dotted config path ("routes.0.origin"), or returns an error. list
// reports a list of values (routes[0].methods): its value is given as one
// comma-separated string.
func envPath(name string) (path string, list bool, err error) {
	parts := strings.Split(strings.ToLower(name), "_")
	p, leaf, err := resolve(reflect.TypeFor[Config](), parts)
	if err != nil {
		return "", false, fmt.Errorf("%s%s: %w", EnvPrefix, name, err)
	}
	return strings.Join(p, "."), leaf.Kind() == reflect.Slice, nil
}

// resolve maps parts to the path of a field of t and returns the field's
// type.
func resolve(t reflect.Type, parts []string) ([]string, reflect.Type, error) {
	if len(parts) == 0 {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Struct || t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
			return nil, nil, fmt.Errorf("names a section, not a field")
		}
		return nil, t, nil
	}
	switch t.Kind() {
	case reflect.Pointer: // an optional section: shards[].sentinel
		return resolve(t.Elem(), parts)
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Struct {
			return nil, nil, fmt.Errorf("list values are given as one comma-separated value")
		}
		i, err := strconv.Atoi(parts[0])
		if err != nil || i < 0 || i > 1000 {
			return nil, nil, fmt.Errorf("want a list index, got %q", parts[0])
		}
		rest, leaf, err := resolve(t.Elem(), parts[1:])
		return append([]string{parts[0]}, rest...), leaf, err
	case reflect.Struct:
		// Longest tag first: "shutdown_timeout" before a field "shutdown".
		for n := len(parts); n >= 1; n-- {
			tag := strings.Join(parts[:n], "_")
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				if f.Tag.Get("koanf") != tag {
					continue
				}
				if rest, leaf, err := resolve(f.Type, parts[n:]); err == nil {
					return append([]string{tag}, rest...), leaf, nil
				}
			}
		}
		return nil, nil, fmt.Errorf("no such field %q", strings.Join(parts, "_"))
	default:
		return nil, nil, fmt.Errorf("%q is past a value", strings.Join(parts, "_"))
	}
}

// applyEnv sets each EDGECACHE_ variable of environ into the raw config
// tree (maps and lists as a YAML file gives them).
func applyEnv(tree map[string]any, environ []string) error {
	var errs []error
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		name = strings.TrimPrefix(name, EnvPrefix)
		if envIgnored[name] {
			continue
		}
		path, list, err := envPath(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		setPath(tree, strings.Split(path, "."), envValue(val, list))
	}
	return joinErrs(errs)
}

// Set applies "path=value" overrides (command-line --set) to the tree.
func applySets(tree map[string]any, sets []string) error {
	var errs []error
	for _, s := range sets {
		path, val, ok := strings.Cut(s, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("--set %q: want path=value", s))
			continue
		}
		envName := strings.ToUpper(strings.NewReplacer(".", "_", "[", "_", "]", "").Replace(path))
		p, list, err := envPath(envName)
		if err != nil {
			errs = append(errs, fmt.Errorf("--set %s: %w", path, err))
			continue
		}
		setPath(tree, strings.Split(p, "."), envValue(val, list))
	}
	return joinErrs(errs)
}

// envValue is a variable's value as the tree holds it: a list of values is
// split on commas, each trimmed ("GET, POST"); an empty string is an empty
// list.
func envValue(val string, list bool) any {
	if !list {
		return val
	}
	l := []any{}
	for v := range strings.SplitSeq(val, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l = append(l, v)
		}
	}
	return l
}

// setPath sets tree[path] = val, creating maps, and lists for numeric parts.
func setPath(tree map[string]any, path []string, val any) {
	var cur any = tree
	for i, p := range path {
		last := i == len(path)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p] = val
				return
			}
			next, ok := c[p]
			if !ok || !isContainer(next) {
				next = newContainer(path[i+1])
				c[p] = next
			}
			if l, ok := next.([]any); ok {
				next = growList(l, path[i+1])
				c[p] = next
			}
			cur = next
		case []any:
			idx, _ := strconv.Atoi(p)
			if last {
				c[idx] = val
				return
			}
			next := c[idx]
			if !isContainer(next) {
				next = newContainer(path[i+1])
				c[idx] = next
			}
			cur = next
		}
	}
}

func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

func newContainer(nextPart string) any {
	if _, err := strconv.Atoi(nextPart); err == nil {
		return []any{}
	}
	return map[string]any{}
}

func growList(l []any, idxPart string) []any {
	idx, _ := strconv.Atoi(idxPart)
	for len(l) <= idx {
		l = append(l, map[string]any{})
	}
	return l
}
