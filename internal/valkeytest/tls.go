package valkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// CA is a certificate authority made for one test, with a server
// certificate for 127.0.0.1 and localhost and a client certificate, all
// written as PEM files in a temporary directory.
type CA struct {
	CAFile         string // the CA certificate: the roots a client trusts
	CertFile       string // server certificate, signed by the CA
	KeyFile        string
	ClientCertFile string // client certificate for mutual TLS, signed by the CA
	ClientKeyFile  string

	pool   *x509.CertPool
	client tls.Certificate
}

// NewCA makes a CA and its certificates (ECDSA P-256, valid for a day)
// in a temporary directory of the test.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	ca, err := MakeCA(tb.TempDir())
	if err != nil {
		tb.Fatalf("valkeytest: certificates: %v", err)
	}
	return ca
}

// MakeCA is NewCA outside a test (the benchmark's TLS shards): it writes
// the files in dir.
func MakeCA(dir string) (*CA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "valkeytest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	ca := &CA{CAFile: filepath.Join(dir, "ca.crt"), pool: x509.NewCertPool()}
	ca.pool.AddCert(caCert)
	if err := writePEM(ca.CAFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	leaf := func(serial int64, name string, usage ...x509.ExtKeyUsage) (certFile, keyFile string, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return "", "", err
		}
		certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
			return "", "", err
		}
		return certFile, keyFile, writePEM(keyFile, "EC PRIVATE KEY", kder)
	}
	// A server is a TLS client too, of its primary, of the Cluster bus
	// and (for a Sentinel) of the nodes it watches, with the same pair.
	if ca.CertFile, ca.KeyFile, err = leaf(2, "server", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	if ca.ClientCertFile, ca.ClientKeyFile, err = leaf(3, "client", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	if ca.client, err = tls.LoadX509KeyPair(ca.ClientCertFile, ca.ClientKeyFile); err != nil {
		return nil, err
	}
	return ca, nil
}

// ServerArgs are the arguments that add a TLS listener on port to a
// server that keeps its plain one (the benchmark compares both).
func (ca *CA) ServerArgs(port int) []string {
	return []string{"--tls-port", strconv.Itoa(port), "--tls-cert-file", ca.CertFile, "--tls-key-file", ca.KeyFile,
		"--tls-ca-cert-file", ca.CAFile, "--tls-auth-clients", "no"}
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

// ClientConfig is a TLS client configuration that trusts the CA and
// presents the client certificate.
func (ca *CA) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.client}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// tlsArgs are the server arguments that make it listen on port with TLS
// only (the plain port closed), and speak TLS to its primary and its
// Cluster bus too. Clients may present a certificate; they need not.
func (ca *CA) tlsArgs(port string) []string {
	return []string{
		"--port", "0", "--tls-port", port,
		"--tls-cert-file", ca.CertFile, "--tls-key-file", ca.KeyFile, "--tls-ca-cert-file", ca.CAFile,
		"--tls-auth-clients", "optional", "--tls-replication", "yes",
	}
}

// WithTLS makes every server started (data nodes and Sentinels) listen on
// TLS only, with ca's server certificate; Do speaks TLS to them.
func WithTLS(ca *CA) Option { return func(o *options) { o.tls = ca } }

// WithPassword protects the default user of every data server with
// password (requirepass; replicas use it as masterauth, Sentinels as
// auth-pass). Do authenticates with it.
func WithPassword(password string) Option { return func(o *options) { o.password = password } }

// WithSentinelPassword protects the Sentinels themselves (requirepass and
// sentinel-pass between them). Do authenticates with it on a Sentinel.
func WithSentinelPassword(password string) Option {
	return func(o *options) { o.sentinelPassword = password }
}

// WithUser adds an ACL user to every data server: name, on, >password and
// rules (for example "~*", "&*", "+@all", "-client|tracking").
func WithUser(name, password string, rules ...string) Option {
	return func(o *options) {
		o.args = append(o.args, append([]string{"--user", name, "on", ">" + password}, rules...)...)
	}
}
