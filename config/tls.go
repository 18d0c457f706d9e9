package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ServerTLS terminates TLS on the traffic listener. It is on when Certificates
// or ACME is set; certificates from files win over ACME for the names
// they cover.
type ServerTLS struct {
	// Certificates are PEM certificate/key pairs, picked by the client's
	// SNI among the names (wildcards included) of each certificate. The
	// first is served to clients that send no or an unknown name.
	Certificates []Certificate `koanf:"certificates"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	MinVersion string `koanf:"min_version"`
	// ClientCAFile turns on client-certificate authentication: client
	// certificates must chain to a CA in this PEM file.
	ClientCAFile string `koanf:"client_ca_file"`
	// ClientAuth is "require" (every client presents a certificate) or
	// "verify_if_given"; it needs ClientCAFile.
	ClientAuth string `koanf:"client_auth"`
	// SessionTicketRotation is how often a new session-ticket key is
	// made; tickets stay valid for three rotations.
	SessionTicketRotation time.Duration `koanf:"session_ticket_rotation"`
	// ACME obtains and renews certificates automatically (certmagic).
	ACME *ACME `koanf:"acme"`
}

// Certificate is one certificate file and its key file.
type Certificate struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string `koanf:"cert_file"`
	// KeyFile is the PEM private key of the leaf.
	KeyFile string `koanf:"key_file"`
}

// ACME configures automatic certificates.
type ACME struct {
	// CA is the ACME directory URL.
	CA string `koanf:"ca"`
	// CARootFile is a PEM file of roots that the ACME server's own HTTPS
	// certificate chains to (a private CA; empty: the system roots).
	CARootFile string `koanf:"ca_root_file"`
	// Email is the account's contact address.
	Email string `koanf:"email"`
	// Domains are obtained at startup and kept renewed.
	Domains []string `koanf:"domains"`
	// OnDemand obtains a certificate at the first handshake for a name,
	// but only for names that are the host of a configured route.
	OnDemand bool `koanf:"on_demand"`
	// Storage is where certificates, keys and locks live: "file" (on
	// disk, StoragePath) or "valkey" (the first shard of the shard map,
	// so the gateways of a POP share one certificate and one issuance).
	Storage string `koanf:"storage"`
	// StoragePath is the directory of file storage.
	StoragePath string `koanf:"storage_path"`
	// DisableHTTPChallenge turns the HTTP-01 challenge off.
	DisableHTTPChallenge bool `koanf:"disable_http_challenge"`
	// DisableTLSALPNChallenge turns the TLS-ALPN-01 challenge off.
	DisableTLSALPNChallenge bool `koanf:"disable_tls_alpn_challenge"`
	// HTTPChallengePort and TLSALPNChallengePort are the ports the CA
	// connects to for its challenges (80 and 443; a test CA on loopback
	// may use others).
	HTTPChallengePort    int `koanf:"http_challenge_port"`
	TLSALPNChallengePort int `koanf:"tls_alpn_challenge_port"`
	// RenewWindow is the fraction of a certificate's lifetime left when
	// it is renewed.
	RenewWindow float64 `koanf:"renew_window"`
}

// HTTP2 bounds what one HTTP/2 connection may ask of the gateway.
type HTTP2 struct {
	// MaxConcurrentStreams is the number of streams a client may open at
	// once on one connection.
	MaxConcurrentStreams int `koanf:"max_concurrent_streams"`
	// MaxHeaderListBytes bounds the decoded header list of one request.
	MaxHeaderListBytes int `koanf:"max_header_list_bytes"`
	// Server is the HTTP/2 server of h2 and h2c connections: "inline"
	// (internal/h2) or "std" (net/http's).
	Server string `koanf:"server"`
}

// ProxyProtocol reads the client's address from a PROXY protocol (v1 or
// v2) header sent by an L4 load balancer.
type ProxyProtocol struct {
	// TrustedCIDRs are the load balancers' networks; the header is
	// required from them and refused from everyone else. Empty: off.
	TrustedCIDRs []string `koanf:"trusted_cidrs"`
	// HeaderTimeout bounds how long a trusted peer takes to send it.
	HeaderTimeout time.Duration `koanf:"header_timeout"`
}

// Defaults of the edge transport.
const (
	DefaultServerTLSMinVersion   = "1.2"
	DefaultSessionTicketRotation = 12 * time.Hour
	DefaultACMECA                = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultACMEStorage           = "file"
	DefaultACMEStoragePath       = "/var/lib/edgecache/acme"
	DefaultHTTPChallengePort     = 80
	DefaultTLSALPNChallengePort  = 443
	DefaultACMERenewWindow       = 1.0 / 3
	DefaultHTTP2MaxStreams       = 250
	DefaultHTTP2MaxHeaderList    = 64 << 10
	DefaultProxyHeaderTimeout    = 5 * time.Second
)

// PortEnv is the variable serverless platforms (Cloud Run, Knative,
// Heroku, Fly) set to the port to listen on; without server.listen the
// gateway listens on 0.0.0.0:$PORT.
const PortEnv = "PORT"

// Enabled reports whether the traffic listener terminates TLS.
func (t *ServerTLS) Enabled() bool { return len(t.Certificates) > 0 || t.ACME != nil }

func (c *Config) ensureEdgeDefaults() {
	s := &c.Server
	setDefault(&s.TLS.MinVersion, DefaultServerTLSMinVersion)
	setDefault(&s.TLS.SessionTicketRotation, DefaultSessionTicketRotation)
	if a := s.TLS.ACME; a != nil {
		setDefault(&a.CA, DefaultACMECA)
		setDefault(&a.Storage, DefaultACMEStorage)
		setDefault(&a.StoragePath, DefaultACMEStoragePath)
		setDefault(&a.HTTPChallengePort, DefaultHTTPChallengePort)
		setDefault(&a.TLSALPNChallengePort, DefaultTLSALPNChallengePort)
		setDefault(&a.RenewWindow, DefaultACMERenewWindow)
	}
	setDefault(&s.HTTP2.MaxConcurrentStreams, DefaultHTTP2MaxStreams)
	setDefault(&s.HTTP2.MaxHeaderListBytes, DefaultHTTP2MaxHeaderList)
	setDefault(&s.HTTP2.Server, DefaultHTTP2Server)
	setDefault(&s.ProxyProtocol.HeaderTimeout, DefaultProxyHeaderTimeout)
}

func (c *Config) validateEdge(bad func(field, format string, args ...any)) {
	s := &c.Server
	t := &s.TLS
	for i, cf := range t.Certificates {
		f := fmt.Sprintf("server.tls.certificates[%d]", i)
		if _, err := LoadCertificate(cf, time.Now()); err != nil {
			bad(err.(*FieldError).prefixed(f))
		}
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		bad("server.tls.min_version", `want "1.2" or "1.3", got %q`, t.MinVersion)
	}
	switch t.ClientAuth {
	case "":
		if t.ClientCAFile != "" {
			bad("server.tls.client_auth", `want "require" or "verify_if_given" with client_ca_file`)
		}
	case "require", "verify_if_given":
		if t.ClientCAFile == "" {
			bad("server.tls.client_ca_file", "missing: client_auth needs the CA that signs client certificates")
		} else if _, err := LoadCertPool(t.ClientCAFile); err != nil {
			bad("server.tls.client_ca_file", "%v", err)
		}
	default:
		bad("server.tls.client_auth", `want "require" or "verify_if_given", got %q`, t.ClientAuth)
	}
	if t.SessionTicketRotation < time.Minute {
		bad("server.tls.session_ticket_rotation", "at least 1m, got %v", t.SessionTicketRotation)
	}
	if a := t.ACME; a != nil {
		if u, err := url.Parse(a.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("server.tls.acme.ca", "want an https directory URL, got %q", a.CA)
		}
		if a.CARootFile != "" {
			if _, err := LoadCertPool(a.CARootFile); err != nil {
				bad("server.tls.acme.ca_root_file", "%v", err)
			}
		}
		if len(a.Domains) == 0 && !a.OnDemand {
			bad("server.tls.acme.domains", "set domains, or on_demand for the hosts of the routes")
		}
		for j, d := range a.Domains {
			if d == "" || strings.ContainsAny(d, " /:") {
				bad(fmt.Sprintf("server.tls.acme.domains[%d]", j), "want a host name, got %q", d)
			}
		}
		switch a.Storage {
		case "file":
		case "valkey":
			if len(c.Shards) == 0 {
				bad("server.tls.acme.storage", `"valkey" needs a shard map (shards)`)
			}
		default:
			bad("server.tls.acme.storage", `want "file" or "valkey", got %q`, a.Storage)
		}
		if a.DisableHTTPChallenge && a.DisableTLSALPNChallenge {
			bad("server.tls.acme", "both challenges are disabled")
		}
		for _, p := range []struct {
			field string
			v     int
		}{{"server.tls.acme.http_challenge_port", a.HTTPChallengePort}, {"server.tls.acme.tls_alpn_challenge_port", a.TLSALPNChallengePort}} {
			if p.v < 1 || p.v > 65535 {
				bad(p.field, "want a port, got %d", p.v)
			}
		}
		if a.RenewWindow <= 0 || a.RenewWindow >= 1 {
			bad("server.tls.acme.renew_window", "want a fraction between 0 and 1, got %v", a.RenewWindow)
		}
	}
	if s.HTTP3 && !t.Enabled() {
		bad("server.http3", "HTTP/3 needs TLS (server.tls.certificates or server.tls.acme)")
	}
	if s.RedirectListen != "" {
		if err := checkHostPort(s.RedirectListen); err != nil {
			bad("server.redirect_listen", "%v", err)
		} else if !t.Enabled() {
			bad("server.redirect_listen", "redirects to HTTPS need TLS on server.listen")
		}
	}
	if s.HTTP2.MaxConcurrentStreams < 1 {
		bad("server.http2.max_concurrent_streams", "must be at least 1")
	}
	if s.HTTP2.MaxHeaderListBytes < 1024 {
		bad("server.http2.max_header_list_bytes", "at least 1024, got %d", s.HTTP2.MaxHeaderListBytes)
	}
	if v := s.HTTP2.Server; v != HTTP2ServerInline && v != HTTP2ServerStd {
		bad("server.http2.server", "want %q or %q, got %q", HTTP2ServerInline, HTTP2ServerStd, v)
	}
	for i, cidr := range s.ProxyProtocol.TrustedCIDRs {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			bad(fmt.Sprintf("server.proxy_protocol.trusted_cidrs[%d]", i), "want a CIDR such as 10.0.0.0/8, got %q", cidr)
		}
	}
	if s.ProxyProtocol.HeaderTimeout < 0 {
		bad("server.proxy_protocol.header_timeout", "must not be negative")
	}
}

func (e *FieldError) prefixed(prefix string) (field, format, msg string) {
	return prefix + "." + e.Field, "%s", e.Msg
}

// resolvePaths makes the file paths relative to the config file's
// directory, as plugin paths are.
func (t *ServerTLS) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range t.Certificates {
		abs(&t.Certificates[i].CertFile)
		abs(&t.Certificates[i].KeyFile)
	}
	abs(&t.ClientCAFile)
	if t.ACME != nil {
		abs(&t.ACME.CARootFile)
		abs(&t.ACME.StoragePath)
	}
}

// LoadCertificate reads one certificate/key pair and checks that it can
// serve at now: readable, the key matches, not expired. The error is a
// *FieldError naming "cert_file" or "key_file".
func LoadCertificate(cf Certificate, now time.Time) (tls.Certificate, error) {
	if cf.CertFile == "" {
		return tls.Certificate{}, &FieldError{Field: "cert_file", Msg: "missing"}
	}
	if cf.KeyFile == "" {
		return tls.Certificate{}, &FieldError{Field: "key_file", Msg: "missing"}
	}
	certPEM, err := os.ReadFile(cf.CertFile)
	if err != nil {
		return tls.Certificate{}, &FieldError{Field: "cert_file", Msg: err.Error()}
	}
	keyPEM, err := os.ReadFile(cf.KeyFile)
	if err != nil {
		return tls.Certificate{}, &FieldError{Field: "key_file", Msg: err.Error()}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		field := "key_file" // a mismatch or a bad key
		if strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "does not match") {
			field = "cert_file"
		}
		return tls.Certificate{}, &FieldError{Field: field, Msg: err.Error()}
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, &FieldError{Field: "cert_file", Msg: err.Error()}
		}
		cert.Leaf = leaf
	}
	if now.After(leaf.NotAfter) {
		return tls.Certificate{}, &FieldError{Field: "cert_file", Msg: fmt.Sprintf("certificate %q expired at %s", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	if now.Before(leaf.NotBefore) {
		return tls.Certificate{}, &FieldError{Field: "cert_file", Msg: fmt.Sprintf("certificate %q is valid only from %s", leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))}
	}
	return cert, nil
}

// LoadCertPool reads a PEM file of CA certificates.
func LoadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}
