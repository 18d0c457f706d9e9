package gateway

import "github.com/prometheus/client_golang/prometheus"

// SetCertificates gives the admin status the list of TLS certificates
// served (internal/listen's Certificates), read at each status request.
func (g *Gateway) SetCertificates(f func() any) { g.certs.Store(&f) }

// Certificates returns the TLS certificates served (see SetCertificates).
func (g *Gateway) Certificates() any {
	if f := g.certs.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// Registry is the registry of the gateway's metrics, served on the admin
// listener; the traffic listener adds its TLS metrics to it.
func (g *Gateway) Registry() *prometheus.Registry { return g.obs.Metrics().Registry }
