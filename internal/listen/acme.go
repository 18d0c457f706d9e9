package listen

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/edgecache/edgecache/config"
)

// acmeTLSALPN is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const acmeTLSALPN = "acme-tls/1"

// acme obtains and renews certificates through certmagic. certmagic keeps
// them in its own cache (consulted by getCertificate) and in storage: on
// disk, or in Valkey so that the gateways of a POP share them and their
// issuance locks.
type acme struct {
	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	domains []string
	hosts   atomic.Pointer[map[string]bool] // route hosts: where on-demand may issue
	log     *slog.Logger
}

func newACME(cfg *config.Config, o Options, log *slog.Logger) (*acme, error) {
	a := cfg.Server.TLS.ACME
	ac := &acme{domains: a.Domains, log: log}
	var storage certmagic.Storage = &certmagic.FileStorage{Path: a.StoragePath}
	if a.Storage == "valkey" {
		if o.ACMEStorage == nil {
			return nil, fmt.Errorf("listen: server.tls.acme.storage: valkey storage not provided")
		}
		storage = o.ACMEStorage
	}
	nop := zap.NewNop()
	var magic *certmagic.Config
	ac.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: o.ACMERenewCheck,
		Logger:             nop,
	})
	tmpl := certmagic.Config{
		RenewalWindowRatio: a.RenewWindow,
		Storage:            storage,
		Logger:             nop,
		DisableARI:         true, // renew by RenewWindow: predictable, and test CAs' ARI windows differ
		OnEvent: func(ctx context.Context, event string, data map[string]any) error {
			switch event {
			case "cert_obtained":
				ac.log.Info("certificate obtained", "name", data["identifier"], "renewal", data["renewal"])
			case "cert_failed":
				ac.log.Error("certificate not obtained", "name", data["identifier"], "renewal", data["renewal"], "err", data["error"])
			}
			if o.OnACMEEvent != nil {
				o.OnACMEEvent(event)
			}
			return nil
		},
	}
	if a.OnDemand {
		tmpl.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: ac.allowed}
	}
	magic = certmagic.New(ac.cache, tmpl)
	issuer := certmagic.ACMEIssuer{
		CA:                      a.CA,
		Email:                   a.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    a.DisableHTTPChallenge,
		DisableTLSALPNChallenge: a.DisableTLSALPNChallenge,
		AltHTTPPort:             a.HTTPChallengePort,
		AltTLSALPNPort:          a.TLSALPNChallengePort,
		Logger:                  nop,
	}
	if a.CARootFile != "" {
		pool, err := config.LoadCertPool(a.CARootFile)
		if err != nil {
			return nil, fmt.Errorf("listen: server.tls.acme.ca_root_file: %w", err)
		}
		issuer.TrustedRoots = pool
	}
	ac.issuer = certmagic.NewACMEIssuer(magic, issuer)
	magic.Issuers = []certmagic.Issuer{ac.issuer}
	ac.magic = magic
	return ac, nil
}

// setHosts records the route hosts: on-demand issuance is limited to them.
func (a *acme) setHosts(cfg *config.Config) {
	hosts := map[string]bool{}
	for _, r := range cfg.Routes {
		if r.Host != "" {
			h := r.Host
			if hh, _, err := net.SplitHostPort(h); err == nil {
				h = hh
			}
			hosts[strings.ToLower(h)] = true
		}
	}
	a.hosts.Store(&hosts)
}

func (a *acme) allowed(_ context.Context, name string) error {
	if (*a.hosts.Load())[strings.ToLower(name)] {
		return nil
	}
	return fmt.Errorf("listen: %q is not the host of a route", name)
}

// start obtains (or loads from storage) the configured domains in the
// background and keeps them renewed until ctx is done.
func (a *acme) start(ctx context.Context, cfg *config.Config) error {
	go func() {
		<-ctx.Done()
		a.cache.Stop()
	}()
	if len(a.domains) == 0 {
		return nil
	}
	if err := a.magic.ManageAsync(ctx, a.domains); err != nil {
		return fmt.Errorf("listen: server.tls.acme.domains: %w", err)
	}
	return nil
}

func (a *acme) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// handleHTTP answers an HTTP-01 challenge, reporting whether r was one.
func (a *acme) handleHTTP(w http.ResponseWriter, r *http.Request) bool {
	return a.issuer.HandleHTTPChallenge(w, r)
}

func (a *acme) infos() []CertInfo {
	names := append([]string(nil), a.domains...)
	for h := range *a.hosts.Load() {
		names = append(names, h)
	}
	var out []CertInfo
	seen := map[string]bool{}
	for _, n := range names {
		for _, c := range a.cache.AllMatchingCertificates(n) {
			if c.Leaf == nil || seen[c.Hash()] {
				continue
			}
			seen[c.Hash()] = true
			out = append(out, CertInfo{Names: c.Names, Source: "acme", NotAfter: c.Leaf.NotAfter})
		}
	}
	return out
}
