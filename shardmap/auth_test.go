package shardmap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("SHARDMAP_TEST_PW", "from-env")
	for _, tc := range []struct {
		name    string
		auth    Auth
		want    Credentials
		rotates bool
		err     string
	}{
		{"file", Auth{Username: "u", PasswordFile: write("pw", "s3cret\n")}, Credentials{"u", "s3cret"}, true, ""},
		{"json file", Auth{Username: "old", PasswordFile: write("pw.json", `{"username":"new","password":"p"}`)}, Credentials{"new", "p"}, true, ""},
		{"json file without user", Auth{Username: "u", PasswordFile: write("pw2.json", ` {"password":"p"}`)}, Credentials{"u", "p"}, true, ""},
		{"broken json", Auth{PasswordFile: write("bad.json", `{"password":"hunter2`)}, Credentials{}, true, "not a JSON object"},
		{"missing file", Auth{PasswordFile: filepath.Join(dir, "nope")}, Credentials{}, true, "no such file"},
		{"env", Auth{Username: "u", PasswordEnv: "SHARDMAP_TEST_PW"}, Credentials{"u", "from-env"}, false, ""},
		{"command", Auth{Username: "u", PasswordCommand: "echo token-1", CommandTTL: time.Minute}, Credentials{"u", "token-1"}, true, ""},
		{"failing command", Auth{PasswordCommand: "echo oops >&2; exit 3"}, Credentials{}, true, "oops"},
		{"user only", Auth{Username: "u"}, Credentials{"u", ""}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, rotates, err := NewSource(tc.auth)
			if err != nil {
				t.Fatal(err)
			}
			if rotates != tc.rotates {
				t.Fatalf("rotates %v, want %v", rotates, tc.rotates)
			}
			got, err := src.Credentials(context.Background())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, _, err := NewSource(Auth{PasswordEnv: "SHARDMAP_TEST_UNSET"}); err == nil {
		t.Fatal("an unset variable gave a source")
	}
}

// TestCommandSourceCaches: the command runs once per TTL, and a failed
// run after a success keeps the last token.
func TestCommandSourceCaches(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	fail := filepath.Join(dir, "fail")
	c := &CommandSource{Command: `test -e ` + fail + ` && exit 1; echo x >> ` + count + `; echo token-$(wc -l < ` + count + `)`, TTL: 300 * time.Millisecond}
	ctx := context.Background()
	get := func() string {
		t.Helper()
		cr, err := c.Credentials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(cr.Password)
	}
	if a, b := get(), get(); a != "token-1" || b != "token-1" {
		t.Fatalf("within the TTL: %q then %q, want token-1 twice", a, b)
	}
	time.Sleep(350 * time.Millisecond)
	if got := get(); got != "token-2" {
		t.Fatalf("after the TTL: %q, want token-2", got)
	}
	if err := os.WriteFile(fail, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond)
	if got := get(); got != "token-2" {
		t.Fatalf("after a failed run: %q, want the last token", got)
	}
}
