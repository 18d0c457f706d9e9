package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodDoc = `
routes:
  - origin: http://127.0.0.1:9000
shards:
  - { name: a, addr: 127.0.0.1:7001 }
  - { name: b, addr: 127.0.0.1:7002 }
  - { name: c, addr: 127.0.0.1:7003 }
`

func TestConfigCheck(t *testing.T) {
	code, out, _ := run("config", "check", writeConfig(t, goodDoc))
	if code != 0 || !strings.Contains(out, ": ok") {
		t.Fatalf("good file: exit %d, %q", code, out)
	}
	bad := strings.Replace(goodDoc, "127.0.0.1:7003", "127.0.0.1", 1) + "unknown: 1\n"
	code, _, errOut := run("config", "check", writeConfig(t, bad))
	if code != 1 || !strings.Contains(errOut, "shards[2].addr: missing port") || !strings.Contains(errOut, "unknown") {
		t.Fatalf("bad file: exit %d, %q", code, errOut)
	}
	code, _, errOut = run("config", "check", "/nonexistent.yaml")
	if code != 1 || !strings.Contains(errOut, "nonexistent") {
		t.Fatalf("missing file: exit %d, %q", code, errOut)
	}
	// A plugin that is not a valid module fails the check.
	notWasm := writeConfig(t, "not wasm")
	code, _, errOut = run("config", "check", writeConfig(t, goodDoc+"plugins:\n  - { name: p, path: "+notWasm+" }\n"))
	if code != 1 || !strings.Contains(errOut, "plugins[0] (p)") {
		t.Fatalf("bad plugin: exit %d, %q", code, errOut)
	}
}

func TestShardmapPlan(t *testing.T) {
	old := writeConfig(t, goodDoc)
	added := writeConfig(t, "shards:\n  - { name: a, addr: 127.0.0.1:7001 }\n  - { name: b, addr: 127.0.0.1:7002 }\n  - { name: c, addr: 127.0.0.1:7003 }\n  - { name: d, addr: 127.0.0.1:7004 }\n")
	code, out, errOut := run("shardmap", "plan", old, added)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("\n%s", out)
	// Adding one shard to three moves about a quarter of the keys, all to d.
	last := out[strings.Index(out, "moves "):]
	var pct float64
	if _, err := fmtSscanf(last, "moves %f%%", &pct); err != nil || pct < 23 || pct > 27 {
		t.Fatalf("moved %v%% (%v) in %q", pct, err, last)
	}
	code, out, _ = run("shardmap", "plan", old, old, "--sample", "1000")
	if code != 0 || !strings.Contains(out, "moves 0.00% of 1000 sampled keys") {
		t.Fatalf("identical maps: %d %q", code, out)
	}
	if code, _, _ := run("shardmap", "plan", old); code != 2 {
		t.Fatalf("one file: exit %d, want usage (2)", code)
	}
	if code, _, errOut := run("shardmap", "plan", old, writeConfig(t, "routes: []\n")); code != 1 || !strings.Contains(errOut, "shards") {
		t.Fatalf("no shards: exit %d %q", code, errOut)
	}
}

func fmtSscanf(s, format string, args ...any) (int, error) { return fmt.Sscanf(s, format, args...) }

// TestConfigCheckShowsNoSecret: a shard's password lives in a file or a
// variable; config check names them, valid or not, but never prints what
// they hold.
func TestConfigCheckShowsNoSecret(t *testing.T) {
	const secret = "check-Secret-5e9a"
	pw := writeConfig(t, secret+"\n")
	t.Setenv("EDGECACHE_TEST_SHARD_PW", secret)
	for _, tc := range []struct{ name, shard string }{
		{"password_file", "password_file: " + pw},
		{"password_env", "password_env: EDGECACHE_TEST_SHARD_PW"},
		{"two sources", "password_file: " + pw + ", password_env: EDGECACHE_TEST_SHARD_PW"},
		{"bad tls", "password_file: " + pw + ", tls: { ca_file: /nonexistent/ca.pem, min_version: '1.1' }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "routes:\n  - origin: http://127.0.0.1:9000\nshards:\n  - { name: a, addr: 127.0.0.1:7001, username: gw, " + tc.shard + " }\n"
			code, out, errOut := run("config", "check", writeConfig(t, doc))
			t.Logf("exit %d\n%s%s", code, out, errOut)
			if strings.Contains(out+errOut, secret) {
				t.Fatalf("config check printed the secret")
			}
			if tc.name == "two sources" && (code != 1 || !strings.Contains(errOut, "shards[0].password_file: set only one")) {
				t.Fatalf("two password sources: exit %d, %q", code, errOut)
			}
			if tc.name == "bad tls" && (code != 1 || !strings.Contains(errOut, "shards[0].tls.ca_file") || !strings.Contains(errOut, "shards[0].tls.min_version")) {
				t.Fatalf("bad tls: exit %d, %q", code, errOut)
			}
		})
	}
}
