package shardmap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
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

// TestClientOption: a spec's TLS, credentials and the cluster refresh
// reach valkey-go's options.
func TestClientOption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    Spec
		opts    Options
		check   func(t *testing.T, o valkey.ClientOption)
		wantErr string
	}{
		{"plain", Spec{Name: "a", Addr: "127.0.0.1:1"}, Options{}, func(t *testing.T, o valkey.ClientOption) {
			if o.TLSConfig != nil || o.AuthCredentialsFn != nil || !o.ForceSingleClient {
				t.Fatalf("plain shard: tls %v auth %v", o.TLSConfig, o.AuthCredentialsFn != nil)
			}
		}, ""},
		{"tls", Spec{Name: "a", Addr: "127.0.0.1:1", TLS: TLS{Enabled: true, ServerName: "cache.example", MinVersion: 0x0304}}, Options{}, func(t *testing.T, o valkey.ClientOption) {
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example" || o.TLSConfig.MinVersion != 0x0304 || o.TLSConfig.InsecureSkipVerify {
				t.Fatalf("tls config %+v", o.TLSConfig)
			}
		}, ""},
		{"tls default version", Spec{Name: "a", Addr: "127.0.0.1:1", TLS: TLS{Enabled: true}}, Options{}, func(t *testing.T, o valkey.ClientOption) {
			if o.TLSConfig.MinVersion != 0x0303 {
				t.Fatalf("min version %x, want TLS 1.2", o.TLSConfig.MinVersion)
			}
		}, ""},
		{"missing ca", Spec{Name: "a", Addr: "127.0.0.1:1", TLS: TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}}, Options{}, nil, "ca_file"},
		{"cluster refresh", Spec{Name: "c", Cluster: "127.0.0.1:1,127.0.0.1:2"}, Options{ClusterRefresh: 3 * time.Second}, func(t *testing.T, o valkey.ClientOption) {
			if o.ClusterOption.ShardsRefreshInterval != 3*time.Second || len(o.InitAddress) != 2 {
				t.Fatalf("cluster option %+v, seeds %v", o.ClusterOption, o.InitAddress)
			}
		}, ""},
		{"rotating credentials", Spec{Name: "a", Addr: "127.0.0.1:1", Auth: Auth{Username: "u", PasswordCommand: "echo p", CommandTTL: time.Minute}}, Options{AuthRefresh: time.Second}, func(t *testing.T, o valkey.ClientOption) {
			a, err := o.AuthCredentialsFn(valkey.AuthCredentialsContext{})
			if err != nil || a.Username != "u" || a.Password != "p" || time.Until(a.RefreshAfter) <= 0 || time.Until(a.RefreshAfter) > time.Second {
				t.Fatalf("credentials %+v, %v: want u/p and a refresh within 1s", a, err)
			}
		}, ""},
		{"fixed credentials", Spec{Name: "a", Addr: "127.0.0.1:1", Auth: Auth{Username: "u"}}, Options{AuthRefresh: time.Second}, func(t *testing.T, o valkey.ClientOption) {
			a, err := o.AuthCredentialsFn(valkey.AuthCredentialsContext{})
			if err != nil || a.Username != "u" || !a.RefreshAfter.IsZero() {
				t.Fatalf("credentials %+v, %v: want u and no refresh", a, err)
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Shard{Spec: tc.spec, opts: tc.opts}
			o, err := s.clientOption()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}
