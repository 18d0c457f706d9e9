package listen

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgecache/edgecache/config"
)

// CertInfo describes one certificate served, for the admin status and the
// expiry metric.
type CertInfo struct {
	// Names are the DNS names (and wildcards) the certificate covers.
	Names []string `json:"names"`
	// Source is "file" (with File) or "acme".
	Source   string    `json:"source"`
	File     string    `json:"file,omitempty"`
	NotAfter time.Time `json:"not_after"`
}

// certSet is one immutable generation of file certificates.
type certSet struct {
	exact map[string]*tls.Certificate
	wild  map[string]*tls.Certificate // "example.com" for "*.example.com"
	def   *tls.Certificate
	infos []CertInfo
	files []string // watched for changes
}

// loadCerts loads and checks every pair; any error rejects the whole set
// and names the field.
func loadCerts(certs []config.Certificate, now time.Time) (*certSet, error) {
	s := &certSet{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for i, cf := range certs {
		c, err := config.LoadCertificate(cf, now)
		if err != nil {
			if fe, ok := err.(*config.FieldError); ok {
				return nil, fmt.Errorf("listen: server.tls.certificates[%d].%s: %s", i, fe.Field, fe.Msg)
			}
			return nil, fmt.Errorf("listen: server.tls.certificates[%d]: %w", i, err)
		}
		cert := &c
		names := slices.Clone(cert.Leaf.DNSNames)
		if len(names) == 0 && cert.Leaf.Subject.CommonName != "" {
			names = []string{cert.Leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			m, key := s.exact, n
			if base, ok := strings.CutPrefix(n, "*."); ok {
				m, key = s.wild, base
			}
			if _, dup := m[key]; !dup { // the first certificate for a name wins
				m[key] = cert
			}
		}
		if s.def == nil {
			s.def = cert
		}
		s.infos = append(s.infos, CertInfo{Names: names, Source: "file", File: cf.CertFile, NotAfter: cert.Leaf.NotAfter})
		s.files = append(s.files, cf.CertFile, cf.KeyFile)
	}
	return s, nil
}

// lookup returns the certificate for an SNI name: exact, then the
// wildcard one label up, or nil.
func (s *certSet) lookup(name string) *tls.Certificate {
	if s == nil || name == "" {
		return nil
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if c := s.exact[name]; c != nil {
		return c
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		return s.wild[parent]
	}
	return nil
}
