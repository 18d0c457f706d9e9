package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestShardAuthDefaults: valkey's TLS and credentials are the defaults of
// a shard that sets none of its own; relative paths are relative to the
// config file; the sentinels' TLS defaults to the shard's.
func TestShardAuthDefaults(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ca.pem", "pw", "own-pw", "sentinel-pw"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := `routes:
  - origin: http://127.0.0.1:9000
valkey:
  tls: { ca_file: ca.pem }
  username: gw
  password_file: pw
shards:
  - { name: inherits, addr: 127.0.0.1:7001 }
  - { name: own, addr: 127.0.0.1:7002, username: me, password_file: own-pw, tls: { enabled: false } }
  - name: ha
    sentinel: { master: m, addrs: [127.0.0.1:26379], password_file: sentinel-pw }
`
	path := filepath.Join(dir, "edgecache.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Source{File: path}.Load()
	if err != nil {
		t.Fatal(err)
	}
	abs := func(f string) string { return filepath.Join(dir, f) }
	for _, tc := range []struct {
		name      string
		s         Shard
		tlsOn     bool
		ca, user  string
		pwFile    string
		commandTT time.Duration
	}{
		{"inherits", c.Shards[0], true, abs("ca.pem"), "gw", abs("pw"), DefaultPasswordCommandTTL},
		{"own", c.Shards[1], false, "", "me", abs("own-pw"), DefaultPasswordCommandTTL},
		{"ha", c.Shards[2], true, abs("ca.pem"), "gw", abs("pw"), DefaultPasswordCommandTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			if s.TLS.On() != tc.tlsOn || s.TLS.CAFile != tc.ca || s.TLS.MinVersion != DefaultTLSMinVersion {
				t.Fatalf("tls %+v, want on=%v ca %q", s.TLS, tc.tlsOn, tc.ca)
			}
			if s.Username != tc.user || s.PasswordFile != tc.pwFile || s.PasswordCommandTTL != tc.commandTT {
				t.Fatalf("credentials %q %q %v", s.Username, s.PasswordFile, s.PasswordCommandTTL)
			}
		})
	}
	sn := c.Shards[2].Sentinel
	if !sn.TLS.On() || sn.TLS.CAFile != abs("ca.pem") || sn.PasswordFile != abs("sentinel-pw") {
		t.Fatalf("sentinel %+v, tls %+v", sn, sn.TLS)
	}
	if c.Valkey.AuthRefreshInterval != DefaultAuthRefreshInterval || c.Valkey.ClusterRefreshInterval != DefaultClusterRefreshInterval {
		t.Fatalf("refresh intervals %v %v", c.Valkey.AuthRefreshInterval, c.Valkey.ClusterRefreshInterval)
	}
}
