package shardmap

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
)

// DefaultCommandTimeout bounds one run of a password command.
const DefaultCommandTimeout = 10 * time.Second

// TLS is how a shard is reached over TLS; the zero value is plain TCP.
// Files are named, not loaded, so that a TLS is comparable and a shard
// whose settings did not change is kept across a reload.
type TLS struct {
	Enabled    bool
	CAFile     string // PEM roots; "" is the system's
	CertFile   string // client certificate for mutual TLS, read at each handshake
	KeyFile    string
	ServerName string // "" is the host dialed
	MinVersion uint16 // tls.VersionTLS12 when zero
	Insecure   bool   // skip verification (tests only)
}

// Config builds the tls.Config, or nil when t is off. It reads the CA
// file now; the client certificate is read at every handshake, so a
// renewed certificate is picked up by the next connection.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{ServerName: t.ServerName, MinVersion: max(t.MinVersion, tls.VersionTLS12), InsecureSkipVerify: t.Insecure} //nolint:gosec // insecure only when asked for, and logged
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("shardmap: tls ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("shardmap: tls ca_file %s: no PEM certificate in it", t.CAFile)
		}
	}
	if t.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return nil, fmt.Errorf("shardmap: tls cert_file/key_file: %w", err)
		}
		certFile, keyFile := t.CertFile, t.KeyFile
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("shardmap: tls client certificate: %w", err)
			}
			return &pair, nil
		}
	}
	return c, nil
}

// Auth names where a shard's credentials come from. Like TLS it holds
// names, never the secret, so it can be compared, logged and shown.
type Auth struct {
	Username        string
	PasswordFile    string        // read at every (re)authentication
	PasswordEnv     string        // read once, when the shard is dialed
	PasswordCommand string        // run by sh -c; its output is the password
	CommandTTL      time.Duration // how long a command's output is reused
}

// Set reports whether any credential is configured.
func (a Auth) Set() bool {
	return a.Username != "" || a.PasswordFile != "" || a.PasswordEnv != "" || a.PasswordCommand != ""
}

// Credentials are what a connection authenticates with.
type Credentials struct {
	Username string
	Password string
}

// CredentialSource supplies the credentials of a shard's connections. It
// is asked at every new connection and, for sources whose credentials
// change (files, commands), at every re-authentication of a live one, so
// it must be safe for concurrent use and should answer from memory most
// of the time.
type CredentialSource interface {
	Credentials(ctx context.Context) (Credentials, error)
}

// Interface guards.
var (
	_ CredentialSource = staticSource{}
	_ CredentialSource = fileSource{}
	_ CredentialSource = (*CommandSource)(nil)
)

// NewSource returns the source that a's fields describe, and whether its
// credentials can change while the gateway runs (a file or a command).
func NewSource(a Auth) (src CredentialSource, rotates bool, err error) {
	switch {
	case a.PasswordFile != "":
		return fileSource{user: a.Username, path: a.PasswordFile}, true, nil
	case a.PasswordCommand != "":
		return &CommandSource{Username: a.Username, Command: a.PasswordCommand, TTL: a.CommandTTL}, true, nil
	case a.PasswordEnv != "":
		pw, ok := os.LookupEnv(a.PasswordEnv)
		if !ok {
			return nil, false, fmt.Errorf("shardmap: password_env: %s is not set", a.PasswordEnv)
		}
		return staticSource{user: a.Username, pass: pw}, false, nil
	}
	return staticSource{user: a.Username}, false, nil
}

type staticSource struct{ user, pass string }

func (s staticSource) Credentials(context.Context) (Credentials, error) {
	return Credentials{s.user, s.pass}, nil
}

// fileSource reads the password from a file each time it is asked: a
// few hundred bytes read once per connection per refresh interval, which
// sees a Kubernetes Secret's symlink swap or an editor's rename as
// reliably as the file's content and needs no watcher to leak.
type fileSource struct{ user, path string }

// A file that holds a JSON object, {"username": "…", "password": "…"}
// (the shape AWS Secrets Manager keeps ElastiCache users in), gives the
// user too: a rotation to a new user is then one atomic file change.
func (s fileSource) Credentials(context.Context) (Credentials, error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return Credentials{}, fmt.Errorf("shardmap: password_file: %w", err)
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var j struct{ Username, Password string }
		if err := json.Unmarshal(t, &j); err != nil {
			// Not %w: a JSON syntax error may quote the secret.
			return Credentials{}, fmt.Errorf("shardmap: password_file %s: not a JSON object with username and password", s.path)
		}
		return Credentials{cmp.Or(j.Username, s.user), j.Password}, nil
	}
	return Credentials{s.user, strings.TrimRight(string(b), "\r\n")}, nil
}

// CommandSource runs Command (with sh -c) for a password or token and
// reuses its output for TTL: enough for a cloud CLI that prints an IAM
// token or a sidecar that writes one. A failed run keeps the last
// password if there is one (a token usually outlives the TTL that
// refreshes it), so a flaky CLI does not drop live connections.
type CommandSource struct {
	Username string
	Command  string
	TTL      time.Duration

	mu      sync.Mutex
	pass    string
	expires time.Time
}

// Credentials returns the cached output, running the command when it has
// expired.
func (c *CommandSource) Credentials(ctx context.Context) (Credentials, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Before(c.expires) {
		return Credentials{c.Username, c.pass}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Command)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, firstLine(ee.Stderr))
		}
		if c.pass != "" {
			return Credentials{c.Username, c.pass}, nil
		}
		return Credentials{}, fmt.Errorf("shardmap: password_command: %w", err)
	}
	c.pass = strings.TrimSpace(string(out))
	c.expires = now.Add(c.TTL)
	return Credentials{c.Username, c.pass}, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// authFn adapts a source to valkey-go's AuthCredentialsFn. For a source
// that rotates, valkey-go calls it again every refresh on each live
// connection and sends AUTH with what it returns: that is how a rotated
// password or a new user reaches connections opened before the change.
func authFn(src CredentialSource, rotates bool, refresh time.Duration, sentinels *sentinelCreds) func(valkey.AuthCredentialsContext) (valkey.AuthCredentials, error) {
	return func(ac valkey.AuthCredentialsContext) (valkey.AuthCredentials, error) {
		if sentinels != nil && ac.Address != nil && sentinels.addrs[ac.Address.String()] {
			return valkey.AuthCredentials{Username: sentinels.creds.Username, Password: sentinels.creds.Password}, nil
		}
		cr, err := src.Credentials(context.Background())
		if err != nil {
			return valkey.AuthCredentials{}, err
		}
		a := valkey.AuthCredentials{Username: cr.Username, Password: cr.Password}
		if rotates && refresh > 0 {
			a.RefreshAfter = time.Now().Add(refresh)
		}
		return a, nil
	}
}

// sentinelCreds are the credentials of a Sentinel shard's sentinels, and
// their addresses as a connection's remote address names them.
type sentinelCreds struct {
	addrs map[string]bool // ip:port
	creds Credentials
}

// sentinelAddrs resolves the sentinels' host:port addresses to every
// ip:port they may be dialed at. A name that does not resolve now is kept
// as written.
func sentinelAddrs(addrs []string) map[string]bool {
	m := map[string]bool{}
	for _, a := range addrs {
		m[a] = true
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		ips, err := net.LookupHost(host)
		if err != nil {
			continue
		}
		for _, ip := range ips {
			m[net.JoinHostPort(ip, port)] = true
		}
	}
	return m
}
