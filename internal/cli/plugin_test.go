package cli

import (
	"bytes"
	"context"
	"os"
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
