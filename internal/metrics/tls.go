package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the edge transport (internal/listen).
const (
	TLSHandshakesTotal   = "edgecache_tls_handshakes_total"
	TLSCertExpirySeconds = "edgecache_tls_certificate_expiry_seconds"
)

// Cert is one served certificate as the expiry gauge sees it.
type Cert struct {
	Name     string // one DNS name it covers
	Source   string // file or acme
	NotAfter time.Time
}

// TLS are the edge transport's instruments.
type TLS struct {
	// Handshakes counts TLS handshakes by version ("1.2", "1.3",
	// "unknown" for failures before one was chosen) and result (ok,
	// error).
	Handshakes *prometheus.CounterVec
	// HandshakeOK holds the ok children by tls.Version* value, resolved
	// once so that a handshake costs one atomic add.
	HandshakeOK map[uint16]prometheus.Counter
	// HandshakeError is the failure child.
	HandshakeError prometheus.Counter
}

// NewTLS registers the TLS instruments on reg (nil: unregistered, for
// tests) with certs read at scrape time.
func NewTLS(reg prometheus.Registerer, certs func() []Cert) *TLS {
	t := &TLS{Handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: TLSHandshakesTotal,
		Help: "TLS handshakes on the traffic listener by protocol version and result.",
	}, []string{"version", "result"})}
	t.HandshakeOK = map[uint16]prometheus.Counter{
		0x0303: t.Handshakes.WithLabelValues("1.2", "ok"),
		0x0304: t.Handshakes.WithLabelValues("1.3", "ok"),
	}
	t.HandshakeError = t.Handshakes.WithLabelValues("unknown", "error")
	if reg != nil {
		reg.MustRegister(t.Handshakes, &certCollector{certs: certs})
	}
	return t
}

var certExpiryDesc = prometheus.NewDesc(TLSCertExpirySeconds,
	"Seconds until a served certificate expires, per DNS name (negative: expired).",
	[]string{"name", "source"}, nil)

type certCollector struct{ certs func() []Cert }

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	seen := map[string]bool{}
	for _, cert := range c.certs() {
		if seen[cert.Name] { // the first certificate for a name is the one served
			continue
		}
		seen[cert.Name] = true
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, cert.NotAfter.Sub(now).Seconds(), cert.Name, cert.Source)
	}
}
