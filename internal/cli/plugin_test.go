package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPluginCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := PluginCmd(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPluginRun(t *testing.T) {
	const td = "../../plugins/testdata/"
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"key plugin", []string{"run", "--plugin", td + "wat/minimal.wasm", "--request", "GET https://Shop.Example:443/p/1?b=2&a=1"},
			0, []string{"ABI v1, hooks: key", "request   GET https://shop.example/p/1?b=2&a=1", "key       /p/1 (plugin: replace)",
				"miss      fetch from the route's origin (built-in: not exported)"}},
		{"extend and header", []string{"run", "--plugin", td + "wat/keyparts.wasm", "--request", "https://shop.example/p?b=2&a=1", "--header", "X-Device: tv"},
			0, []string{"key       https://shop.example/p?a=1&b=2|tv (plugin: extend)"}},
		{"declined", []string{"run", "--plugin", td + "wat/keyparts.wasm", "--request", "https://shop.example/p?b=2&a=1"},
			0, []string{"key       https://shop.example/p?a=1&b=2 (declined → built-in)", "declined 1; faults 0"}},
		{"response", []string{"run", "--plugin", td + "examples/c-ttlbystatus.wasm", "--request", "https://shop.example/logo.png",
			"--response-status", "200", "--response-header", "Content-Type: image/png"},
			0, []string{"response  200: store, ttl 24h0m0s, stale-if-error 1h0m0s, tags status:200 type:image (plugin)"}},
		{"guard", []string{"run", "--plugin", td + "examples/c-ttlbystatus.wasm", "--request", "GET https://shop.example/logo.png",
			"--header", "Authorization: Bearer t", "--response-status", "200", "--response-header", "Content-Type: image/png"},
			0, []string{"response  200: do not store (authorization) (built-in: not overridable)"}},
		{"miss with config", []string{"run", "--plugin", td + "examples/assemblyscript-misspolicy.wasm",
			"--config", `{"deny_prefixes": ["/internal/"]}`, "--request", "https://shop.example/internal/x"},
			0, []string{"miss      respond 403 with 10 bytes (not cached) (plugin)"}},
		{"fault", []string{"run", "--plugin", td + "hostile/unreachable.wasm", "--request", "https://shop.example/"},
			1, []string{"key       https://shop.example/ (failed → built-in: wasm: plugin trapped"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runPluginCmd(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestPluginRunErrors(t *testing.T) {
	const td = "../../plugins/testdata/"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no args", nil, 2, "Usage"},
		{"no request", []string{"run", "--plugin", td + "wat/minimal.wasm"}, 2, "Usage"},
		{"bad request", []string{"run", "--plugin", td + "wat/minimal.wasm", "--request", "GET /relative"}, 2, "not an absolute"},
		{"bad header", []string{"run", "--plugin", td + "wat/minimal.wasm", "--request", "https://h/", "--header", "nocolon"}, 2, "Name: value"},
		{"wrong ABI", []string{"run", "--plugin", td + "hostile/wrongabi.wasm", "--request", "https://h/"}, 1, "ABI v2"},
		{"missing file", []string{"run", "--plugin", td + "nope.wasm", "--request", "https://h/"}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runPluginCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errOut, tc.want)
			}
		})
	}
}

func TestPluginCompile(t *testing.T) {
	const td = "../../plugins/testdata/"
	dir := t.TempDir()
	code, out, errOut := runPluginCmd(t, "compile", "--cache-dir", dir, td+"wat/minimal.wasm", td+"examples/c-ttlbystatus.wasm")
	if code != 0 || !strings.Contains(out, "minimal.wasm: ABI v1, hooks: key; compiled") || !strings.Contains(out, "hooks: response") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) == 0 {
		t.Fatal("the cache directory is empty")
	}
	code, _, errOut = runPluginCmd(t, "compile", "--cache-dir", dir, td+"hostile/badimport.wasm")
	if code != 1 || !strings.Contains(errOut, "env.abort") {
		t.Fatalf("bad module: exit %d, %s", code, errOut)
	}
	if code, _, _ := runPluginCmd(t, "compile", td+"wat/minimal.wasm"); code != 2 {
		t.Fatalf("without --cache-dir: exit %d, want 2", code)
	}
}

// TestPluginTestExamples runs every SDK example's table (what
// `make plugins-check` runs) and a table with a wrong expectation, which
// must exit 1 with a diff naming the field, the want and the got.
func TestPluginTestExamples(t *testing.T) {
	tables, err := filepath.Glob("../../plugins/examples/*/*/plugin_test.yaml")
	if err != nil || len(tables) < 4 {
		t.Fatalf("%d example tables (%v), want one per SDK example", len(tables), err)
	}
	for _, f := range tables {
		t.Run(f, func(t *testing.T) {
			code, out, errOut := runPluginCmd(t, "test", f)
			if code != 0 || !strings.HasPrefix(out, "ok ") {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}

	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong.yaml")
	abs, _ := filepath.Abs("../../plugins/testdata/examples/go-stripparams.wasm")
	doc := "plugin: " + abs + "\ncases:\n" +
		"  - { name: right, request: 'https://h/p?b=1&a=2', key: 'https://h/p?a=2&b=1' }\n" +
		"  - { name: wrong, request: 'https://h/p?utm_x=1&a=2', key: 'https://h/p?a=2&utm_x=1' }\n"
	if err := os.WriteFile(wrong, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runPluginCmd(t, "test", wrong)
	want := "FAIL " + wrong + ": wrong (https://h/p?utm_x=1&a=2)\n     key:\n       want https://h/p?a=2&utm_x=1\n       got  https://h/p?a=2\n"
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "1 of 2 cases") {
		t.Fatalf("exit %d, want 1 with\n%s\ngot\n%s", code, want, out)
	}

	// A typo cannot make a table pass.
	typo := filepath.Join(dir, "typo.yaml")
	if err := os.WriteFile(typo, []byte("plugin: "+abs+"\ncases:\n  - { request: 'https://h/', kye: x }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runPluginCmd(t, "test", typo); code != 2 || !strings.Contains(errOut, "unknown field(s) [kye]") {
		t.Fatalf("typo: exit %d, %s", code, errOut)
	}
}
