package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Defaults of the shard TLS and credential settings.
const (
	// DefaultTLSMinVersion is the oldest TLS version a shard may speak.
	DefaultTLSMinVersion = "1.2"
	// DefaultPasswordCommandTTL is how long the output of
	// password_command is reused before the command runs again: under the
	// 15 minutes an AWS IAM token for ElastiCache lives.
	DefaultPasswordCommandTTL = 10 * time.Minute
	// DefaultAuthRefreshInterval is how often live shard connections
	// re-authenticate with the current credentials from password_file or
	// password_command, so that a rotated password reaches them.
	DefaultAuthRefreshInterval = 5 * time.Second
	// DefaultClusterRefreshInterval is how often a Cluster shard scans its
	// topology (valkey-go ShardsRefreshInterval), so that replicas added
	// or removed on a managed cluster are seen without a MOVED.
	DefaultClusterRefreshInterval = 10 * time.Second
)

// TLS is how a shard (or its Sentinels) is reached over TLS. It is on when
// enabled is true or any of ca_file, cert_file, server_name and
// insecure_skip_verify is set.
type TLS struct {
	// Enabled turns TLS on with the system's roots when nothing else is set.
	Enabled bool `koanf:"enabled"`
	// CAFile is a PEM bundle of the CAs that sign the server's certificate
	// (default: the system's roots).
	CAFile string `koanf:"ca_file"`
	// CertFile and KeyFile are the client certificate and key, for mutual
	// TLS. They are read at every handshake, so a renewed pair is used by
	// the next connection.
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
	// ServerName is the name the server's certificate must carry (default:
	// the host of the address dialed).
	ServerName string `koanf:"server_name"`
	// MinVersion is the oldest TLS version accepted: "1.2" or "1.3".
	MinVersion string `koanf:"min_version"`
	// InsecureSkipVerify accepts any server certificate. For tests only;
	// the gateway logs a warning for every shard that sets it.
	InsecureSkipVerify bool `koanf:"insecure_skip_verify"`
}

// On reports whether t turns TLS on.
func (t *TLS) On() bool {
	return t != nil && (t.Enabled || t.CAFile != "" || t.CertFile != "" || t.ServerName != "" || t.InsecureSkipVerify)
}

// HasAuth reports whether any credential field of a shard is set.
func (s *Shard) HasAuth() bool {
	return s.Username != "" || s.PasswordFile != "" || s.PasswordEnv != "" || s.PasswordCommand != ""
}

// ensureShardAuthDefaults gives each shard valkey's TLS and credentials
// when it sets none of its own, and fills the TLS defaults.
func (c *Config) ensureShardAuthDefaults() {
	v := &c.Valkey
	setDefault(&v.PasswordCommandTTL, DefaultPasswordCommandTTL)
	setDefault(&v.AuthRefreshInterval, DefaultAuthRefreshInterval)
	setDefault(&v.ClusterRefreshInterval, DefaultClusterRefreshInterval)
	setDefault(&v.TLS.MinVersion, DefaultTLSMinVersion)
	for i := range c.Shards {
		s := &c.Shards[i]
		if s.TLS == nil {
			t := v.TLS
			s.TLS = &t
		}
		setDefault(&s.TLS.MinVersion, DefaultTLSMinVersion)
		if !s.HasAuth() {
			s.Username, s.PasswordFile, s.PasswordEnv = v.Username, v.PasswordFile, v.PasswordEnv
			s.PasswordCommand, s.PasswordCommandTTL = v.PasswordCommand, v.PasswordCommandTTL
		}
		setDefault(&s.PasswordCommandTTL, v.PasswordCommandTTL)
		if sn := s.Sentinel; sn != nil {
			if sn.TLS == nil {
				t := *s.TLS // the sentinels' TLS defaults to the data nodes'
				sn.TLS = &t
			}
			setDefault(&sn.TLS.MinVersion, DefaultTLSMinVersion)
		}
	}
}

// validateShardAuth checks the TLS and credential fields of valkey and of
// every shard.
func (c *Config) validateShardAuth(bad func(field, format string, args ...any)) {
	v := c.Valkey
	checkTLS(bad, "valkey.tls", &v.TLS)
	checkSecret(bad, "valkey", v.PasswordFile, v.PasswordEnv, v.PasswordCommand, v.PasswordCommandTTL)
	if v.AuthRefreshInterval < 0 {
		bad("valkey.auth_refresh_interval", "must not be negative")
	}
	for i, s := range c.Shards {
		f := fmt.Sprintf("shards[%d]", i)
		checkTLS(bad, f+".tls", s.TLS)
		checkSecret(bad, f, s.PasswordFile, s.PasswordEnv, s.PasswordCommand, s.PasswordCommandTTL)
		if sn := s.Sentinel; sn != nil {
			checkTLS(bad, f+".sentinel.tls", sn.TLS)
			checkSecret(bad, f+".sentinel", sn.PasswordFile, sn.PasswordEnv, "", 0)
		}
	}
}

func checkTLS(bad func(field, format string, args ...any), f string, t *TLS) {
	if t == nil {
		return
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		bad(f+".min_version", "want \"1.2\" or \"1.3\", got %q", t.MinVersion)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad(f+".key_file", "cert_file and key_file go together")
	}
	for _, p := range []struct{ field, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			bad(f+"."+p.field, "%v", err)
		}
	}
}

// checkSecret checks that at most one password source is set and that it
// can be read. It never puts the secret itself in an error.
func checkSecret(bad func(field, format string, args ...any), f, file, env, command string, ttl time.Duration) {
	n := 0
	for _, s := range []string{file, env, command} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		bad(f+".password_file", "set only one of password_file, password_env and password_command")
	}
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			bad(f+".password_file", "%v", err)
		}
	}
	if env != "" {
		if _, ok := os.LookupEnv(env); !ok {
			bad(f+".password_env", "environment variable %s is not set", env)
		}
	}
	if ttl < 0 {
		bad(f+".password_command_ttl", "must not be negative")
	}
}

// resolveAuthPaths makes relative TLS and password file paths relative to
// dir, the config file's directory, as plugin paths are.
func (c *Config) resolveAuthPaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	tlsPaths := func(t *TLS) {
		if t != nil {
			abs(&t.CAFile)
			abs(&t.CertFile)
			abs(&t.KeyFile)
		}
	}
	tlsPaths(&c.Valkey.TLS)
	abs(&c.Valkey.PasswordFile)
	for i := range c.Shards {
		s := &c.Shards[i]
		tlsPaths(s.TLS)
		abs(&s.PasswordFile)
		if s.Sentinel != nil {
			tlsPaths(s.Sentinel.TLS)
			abs(&s.Sentinel.PasswordFile)
		}
	}
}
