package origins

import (
	"net/http"
	"time"
)

// Balance names how a pool spreads requests over its servers.
const (
	// RoundRobin cycles through the servers in proportion to their
	// weights (smooth weighted round robin, as nginx does).
	RoundRobin = "round_robin"
	// LeastRequests picks two servers at random and sends to the one with
	// fewer requests in flight per unit of weight (power of two choices).
	LeastRequests = "least_requests"
	// Hash sends each cache key (WithKey) to one server by weighted
	// rendezvous hashing: for origins that have caches of their own.
	// Removing a server moves only its keys. Requests without a key go
	// round robin.
	Hash = "hash"
)

// Defaults. A zero field of Options means its default; config's
// EnsureDefaults fills the same values in, so that the documented
// defaults are these.
const (
	DefaultBalance            = RoundRobin
	DefaultQueueTimeout       = time.Second
	DefaultRetryBudget        = 0.2
	DefaultRetryAfter         = 5 * time.Second
	DefaultHealthInterval     = 5 * time.Second
	DefaultHealthTimeout      = time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
	DefaultConsecutiveFails   = 5
	DefaultBaseEjectionTime   = 30 * time.Second
	DefaultMaxEjectionTime    = 5 * time.Minute
	DefaultMaxEjectedPercent  = 50
	DefaultDialTimeout        = 2 * time.Second
	DefaultMaxIdleConns       = 256
	DefaultIdleConnTimeout    = 90 * time.Second
)

// minRetryTokens is the retry budget's burst: this many retries are
// allowed even before enough requests paid for them, so that a pool with
// little traffic still retries a dead server's connect failures.
const minRetryTokens = 10

// Options describe a pool. Zero values mean the defaults above; a zero
// MaxConcurrent means no cap, a zero Health.Path no active checks and a
// negative Outlier.ConsecutiveFailures no passive ejection.
type Options struct {
	// Name identifies the pool in errors, metrics and the status page.
	Name string
	// Servers are the pool's members.
	Servers []Server
	// Balance is RoundRobin, LeastRequests or Hash.
	Balance string
	// MaxConcurrent caps the requests at the pool's servers at once
	// (retries included); 0: no cap.
	MaxConcurrent int
	// MaxQueue bounds the requests waiting for a slot when MaxConcurrent
	// is reached (default: MaxConcurrent).
	MaxQueue int
	// QueueTimeout bounds the wait for a slot.
	QueueTimeout time.Duration
	// RetryBudget is the share of requests that may be retries (0.2: one
	// retry per five requests, besides a small burst); negative: none.
	RetryBudget float64
	// RetryAfter is what a caller should tell clients refused with
	// ErrOverloaded or ErrUnavailable (the Retry-After header).
	RetryAfter time.Duration
	// Health configures active checks.
	Health Health
	// Outlier configures passive ejection.
	Outlier Outlier
	// TLS configures connections to https servers.
	TLS TLS
	// DialTimeout bounds connecting to a server.
	DialTimeout time.Duration
	// MaxIdleConnsPerServer bounds the idle keep-alive connections kept
	// to each server.
	MaxIdleConnsPerServer int
	// MaxConnsPerServer bounds all connections to each server (0: no
	// bound; MaxConcurrent is the usual cap).
	MaxConnsPerServer int
	// IdleConnTimeout closes keep-alive connections idle for longer.
	IdleConnTimeout time.Duration
	// Transport replaces the pool's own transport (tests, tracing); TLS
	// and the connection options are then the caller's.
	Transport http.RoundTripper
}

// Server is one member of a pool.
type Server struct {
	// URL is scheme://host[:port]; a path is not allowed (the request's
	// path is kept as is).
	URL string
	// Weight is the server's relative share of requests (default 1).
	Weight int
}

// Health configures active health checks: each server is asked for Path
// every Interval; UnhealthyThreshold failures in a row take it out,
// HealthyThreshold successes in a row bring it back. A server starts up.
type Health struct {
	Path               string
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	// ExpectedStatus lists the statuses that mean healthy (default 200).
	ExpectedStatus []int
	// Host is the Host header of a check (default: the server's).
	Host string
}

// Outlier configures passive outlier ejection: ConsecutiveFailures
// responses with a 5xx status or connect failures in a row eject a
// server for BaseEjectionTime times the number of its ejections (capped
// at MaxEjectionTime); at most MaxEjectedPercent of the pool is ejected
// at once.
type Outlier struct {
	ConsecutiveFailures int
	BaseEjectionTime    time.Duration
	MaxEjectionTime     time.Duration
	MaxEjectedPercent   int
}

// TLS configures connections to https servers.
type TLS struct {
	// CAFile is a PEM bundle of the CAs that sign the servers'
	// certificates (default: the system's).
	CAFile string
	// ServerName is the name sent in SNI and checked in the server's
	// certificate (default: the server URL's host).
	ServerName string
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile string
	KeyFile  string
}

// withDefaults returns o with every zero field at its default.
func (o Options) withDefaults() Options {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if o.Balance == "" {
		o.Balance = DefaultBalance
	}
	def(&o.MaxQueue, o.MaxConcurrent)
	defD(&o.QueueTimeout, DefaultQueueTimeout)
	if o.RetryBudget == 0 {
		o.RetryBudget = DefaultRetryBudget
	}
	defD(&o.RetryAfter, DefaultRetryAfter)
	defD(&o.Health.Interval, DefaultHealthInterval)
	defD(&o.Health.Timeout, DefaultHealthTimeout)
	def(&o.Health.HealthyThreshold, DefaultHealthyThreshold)
	def(&o.Health.UnhealthyThreshold, DefaultUnhealthyThreshold)
	if len(o.Health.ExpectedStatus) == 0 {
		o.Health.ExpectedStatus = []int{http.StatusOK}
	}
	def(&o.Outlier.ConsecutiveFailures, DefaultConsecutiveFails)
	defD(&o.Outlier.BaseEjectionTime, DefaultBaseEjectionTime)
	defD(&o.Outlier.MaxEjectionTime, DefaultMaxEjectionTime)
	def(&o.Outlier.MaxEjectedPercent, DefaultMaxEjectedPercent)
	defD(&o.DialTimeout, DefaultDialTimeout)
	def(&o.MaxIdleConnsPerServer, DefaultMaxIdleConns)
	defD(&o.IdleConnTimeout, DefaultIdleConnTimeout)
	return o
}
