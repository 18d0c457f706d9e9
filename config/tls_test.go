package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a self-signed P-256 certificate for name, valid from
// nb to na, and its key; it returns the two paths.
func selfSigned(t *testing.T, dir, name string, nb, na time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}, NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestTLSValidation(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	goodC, goodK := selfSigned(t, dir, "good.test", now.Add(-time.Hour), now.Add(time.Hour))
	_, otherK := selfSigned(t, dir, "other.test", now.Add(-time.Hour), now.Add(time.Hour))
	oldC, oldK := selfSigned(t, dir, "old.test", now.Add(-2*time.Hour), now.Add(-time.Hour))
	route := "routes:\n  - origin: http://127.0.0.1:9000\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"good", "server:\n  tls:\n    certificates:\n      - {cert_file: " + goodC + ", key_file: " + goodK + "}\n  http3: true\n", ""},
		{"key-mismatch", "server:\n  tls:\n    certificates:\n      - {cert_file: " + goodC + ", key_file: " + otherK + "}\n", "server.tls.certificates[0].key_file: "},
		{"expired", "server:\n  tls:\n    certificates:\n      - {cert_file: " + goodC + ", key_file: " + goodK + "}\n      - {cert_file: " + oldC + ", key_file: " + oldK + "}\n", "server.tls.certificates[1].cert_file: certificate \"old.test\" expired"},
		{"unreadable", "server:\n  tls:\n    certificates:\n      - {cert_file: " + dir + "/missing.crt, key_file: " + goodK + "}\n", "server.tls.certificates[0].cert_file: "},
		{"min-version", "server:\n  tls:\n    min_version: \"1.1\"\n    certificates:\n      - {cert_file: " + goodC + ", key_file: " + goodK + "}\n", "server.tls.min_version: "},
		{"client-auth-without-ca", "server:\n  tls:\n    client_auth: require\n    certificates:\n      - {cert_file: " + goodC + ", key_file: " + goodK + "}\n", "server.tls.client_ca_file: missing"},
		{"http3-without-tls", "server:\n  http3: true\n", "server.http3: HTTP/3 needs TLS"},
		{"redirect-without-tls", "server:\n  redirect_listen: 127.0.0.1:80\n", "server.redirect_listen: redirects to HTTPS need TLS"},
		{"bad-cidr", "server:\n  proxy_protocol:\n    trusted_cidrs: [10.0.0.0/33]\n", "server.proxy_protocol.trusted_cidrs[0]: "},
		{"http2-server-std", "server:\n  http2:\n    server: std\n", ""},
		{"http2-server-unknown", "server:\n  http2:\n    server: fast\n", "server.http2.server: want \"inline\" or \"std\""},
		{"acme-no-domains", "server:\n  tls:\n    acme: {email: a@b.test}\n", "server.tls.acme.domains: "},
		{"acme-valkey-no-shards", "server:\n  tls:\n    acme: {domains: [a.test], storage: valkey}\n", "server.tls.acme.storage: "},
		{"acme-http-ca", "server:\n  tls:\n    acme: {domains: [a.test], ca: \"http://ca.test/dir\"}\n", "server.tls.acme.ca: "},
		{"acme-good", "server:\n  tls:\n    acme: {domains: [a.test], on_demand: true}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml + route))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			case tc.want == "" && c.Server.TLS.ACME != nil && c.Server.TLS.ACME.Storage != DefaultACMEStorage:
				t.Fatalf("acme storage default %q", c.Server.TLS.ACME.Storage)
			case tc.want == "" && tc.name != "http2-server-std" && c.Server.HTTP2.Server != DefaultHTTP2Server:
				t.Fatalf("server.http2.server default %q", c.Server.HTTP2.Server)
			}
		})
	}
}

func TestPortEnv(t *testing.T) {
	dir := t.TempDir()
	withListen := filepath.Join(dir, "listen.yaml")
	without := filepath.Join(dir, "plain.yaml")
	route := "routes:\n  - origin: http://127.0.0.1:9000\n"
	if err := os.WriteFile(withListen, []byte("server:\n  listen: 127.0.0.1:7000\n"+route), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(without, []byte(route), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  Source
		want string
	}{
		{"file-without-listen", Source{File: without, Environ: []string{"PORT=8443"}}, "0.0.0.0:8443"},
		{"file-with-listen", Source{File: withListen, Environ: []string{"PORT=8443"}}, "127.0.0.1:7000"},
		{"embedded-default", Source{Default: DefaultYAML, Environ: []string{"PORT=9999"}}, "0.0.0.0:9999"},
		{"env-listen-wins", Source{File: without, Environ: []string{"PORT=8443", EnvPrefix + "SERVER_LISTEN=127.0.0.1:1234"}}, "127.0.0.1:1234"},
		{"no-port", Source{File: without}, DefaultListen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.src.Load()
			if err != nil {
				t.Fatal(err)
			}
			if c.Server.Listen != tc.want {
				t.Fatalf("listen %q, want %q", c.Server.Listen, tc.want)
			}
		})
	}
}
