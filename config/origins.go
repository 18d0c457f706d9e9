package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/edgecache/edgecache/origins"
)

// Origin is a pool of origin servers that routes name in their origin
// field instead of a URL (see the origins package).
type Origin struct {
	// Name is what routes[].origin says to use the pool; letters, digits,
	// '.', '-' and '_'.
	Name string `koanf:"name"`
	// Servers are the pool's members.
	Servers []OriginServer `koanf:"servers"`
	// Balance is round_robin, least_requests or hash (by cache key).
	Balance string `koanf:"balance"`
	// MaxConcurrent caps the requests at the pool's servers at once; 0:
	// no cap.
	MaxConcurrent int `koanf:"max_concurrent"`
	// MaxQueue bounds the requests waiting for a slot (0: max_concurrent).
	MaxQueue int `koanf:"max_queue"`
	// QueueTimeout bounds the wait for a slot.
	QueueTimeout time.Duration `koanf:"queue_timeout"`
	// RetryBudget is the share of requests that may be retries; negative:
	// no retries.
	RetryBudget float64 `koanf:"retry_budget"`
	// RetryAfter is the Retry-After of a 503 for an overloaded or
	// unreachable pool.
	RetryAfter time.Duration `koanf:"retry_after"`
	// Health configures active health checks.
	Health OriginHealth `koanf:"health"`
	// Outlier configures passive outlier ejection.
	Outlier OriginOutlier `koanf:"outlier"`
	// TLS configures connections to https servers.
	TLS OriginTLS `koanf:"tls"`
	// DialTimeout bounds connecting to a server.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// MaxIdleConnsPerServer bounds the idle connections kept per server.
	MaxIdleConnsPerServer int `koanf:"max_idle_conns_per_server"`
	// MaxConnsPerServer bounds all connections per server; 0: no bound.
	MaxConnsPerServer int `koanf:"max_conns_per_server"`
	// IdleConnTimeout closes connections idle for longer.
	IdleConnTimeout time.Duration `koanf:"idle_conn_timeout"`
}

// OriginServer is one member of a pool.
type OriginServer struct {
	// URL is scheme://host[:port], no path.
	URL string `koanf:"url"`
	// Weight is the server's relative share of requests.
	Weight int `koanf:"weight"`
}

// OriginHealth configures active health checks; off without a path.
type OriginHealth struct {
	Path               string        `koanf:"path"`
	Interval           time.Duration `koanf:"interval"`
	Timeout            time.Duration `koanf:"timeout"`
	HealthyThreshold   int           `koanf:"healthy_threshold"`
	UnhealthyThreshold int           `koanf:"unhealthy_threshold"`
	ExpectedStatus     []int         `koanf:"expected_status"`
	Host               string        `koanf:"host"`
}

// OriginOutlier configures passive outlier ejection.
type OriginOutlier struct {
	// ConsecutiveFailures (5xx or connect failures in a row) eject a
	// server; negative: never.
	ConsecutiveFailures int           `koanf:"consecutive_failures"`
	BaseEjectionTime    time.Duration `koanf:"base_ejection_time"`
	MaxEjectionTime     time.Duration `koanf:"max_ejection_time"`
	MaxEjectedPercent   int           `koanf:"max_ejected_percent"`
}

// OriginTLS configures TLS to a pool's https servers.
type OriginTLS struct {
	CAFile     string `koanf:"ca_file"`
	ServerName string `koanf:"server_name"`
	CertFile   string `koanf:"cert_file"`
	KeyFile    string `koanf:"key_file"`
}

// Host header choices of routes[].origin_host besides a literal host.
const (
	// OriginHostServer sends the origin server's host (the default).
	OriginHostServer = ""
	// OriginHostPreserve sends the client's Host.
	OriginHostPreserve = "preserve"
)

// Pool returns the pool named name, or nil.
func (c *Config) Pool(name string) *Origin {
	for i := range c.Origins {
		if c.Origins[i].Name == name {
			return &c.Origins[i]
		}
	}
	return nil
}

// PoolOptions converts o into the origins package's options.
func (o *Origin) PoolOptions() origins.Options {
	opts := origins.Options{
		Name: o.Name, Balance: o.Balance,
		MaxConcurrent: o.MaxConcurrent, MaxQueue: o.MaxQueue, QueueTimeout: o.QueueTimeout,
		RetryBudget: o.RetryBudget, RetryAfter: o.RetryAfter,
		Health: origins.Health{
			Path: o.Health.Path, Interval: o.Health.Interval, Timeout: o.Health.Timeout,
			HealthyThreshold: o.Health.HealthyThreshold, UnhealthyThreshold: o.Health.UnhealthyThreshold,
			ExpectedStatus: o.Health.ExpectedStatus, Host: o.Health.Host,
		},
		Outlier: origins.Outlier{
			ConsecutiveFailures: o.Outlier.ConsecutiveFailures, BaseEjectionTime: o.Outlier.BaseEjectionTime,
			MaxEjectionTime: o.Outlier.MaxEjectionTime, MaxEjectedPercent: o.Outlier.MaxEjectedPercent,
		},
		TLS:         origins.TLS{CAFile: o.TLS.CAFile, ServerName: o.TLS.ServerName, CertFile: o.TLS.CertFile, KeyFile: o.TLS.KeyFile},
		DialTimeout: o.DialTimeout, MaxIdleConnsPerServer: o.MaxIdleConnsPerServer,
		MaxConnsPerServer: o.MaxConnsPerServer, IdleConnTimeout: o.IdleConnTimeout,
	}
	for _, s := range o.Servers {
		opts.Servers = append(opts.Servers, origins.Server{URL: s.URL, Weight: s.Weight})
	}
	return opts
}

// ensureOriginsDefaults fills the pools' defaults (origins.Default*).
func (c *Config) ensureOriginsDefaults() {
	for i := range c.Origins {
		o := &c.Origins[i]
		setDefault(&o.Balance, origins.DefaultBalance)
		setDefault(&o.MaxQueue, o.MaxConcurrent)
		setDefault(&o.QueueTimeout, origins.DefaultQueueTimeout)
		setDefault(&o.RetryBudget, origins.DefaultRetryBudget)
		setDefault(&o.RetryAfter, origins.DefaultRetryAfter)
		setDefault(&o.Health.Interval, origins.DefaultHealthInterval)
		setDefault(&o.Health.Timeout, origins.DefaultHealthTimeout)
		setDefault(&o.Health.HealthyThreshold, origins.DefaultHealthyThreshold)
		setDefault(&o.Health.UnhealthyThreshold, origins.DefaultUnhealthyThreshold)
		if len(o.Health.ExpectedStatus) == 0 {
			o.Health.ExpectedStatus = []int{200}
		}
		setDefault(&o.Outlier.ConsecutiveFailures, origins.DefaultConsecutiveFails)
		setDefault(&o.Outlier.BaseEjectionTime, origins.DefaultBaseEjectionTime)
		setDefault(&o.Outlier.MaxEjectionTime, origins.DefaultMaxEjectionTime)
		setDefault(&o.Outlier.MaxEjectedPercent, origins.DefaultMaxEjectedPercent)
		setDefault(&o.DialTimeout, origins.DefaultDialTimeout)
		setDefault(&o.MaxIdleConnsPerServer, origins.DefaultMaxIdleConns)
		setDefault(&o.IdleConnTimeout, origins.DefaultIdleConnTimeout)
		for j := range o.Servers {
			setDefault(&o.Servers[j].Weight, 1)
		}
	}
}

// resolveOriginFiles makes the pools' relative TLS file paths relative
// to dir, the config file's directory, as plugin paths are.
func (c *Config) resolveOriginFiles(dir string) {
	for i := range c.Origins {
		t := &c.Origins[i].TLS
		for _, p := range []*string{&t.CAFile, &t.CertFile, &t.KeyFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
}

var poolName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// validateOrigins checks the pools.
func (c *Config) validateOrigins(bad func(field, format string, args ...any)) {
	for i, r := range c.Routes {
		if h := r.OriginHost; h != OriginHostServer && h != OriginHostPreserve && strings.ContainsAny(h, "/ \t@?#") {
			bad(fmt.Sprintf("routes[%d].origin_host", i), "want \"preserve\" or a host[:port], got %q", h)
		}
	}
	seen := map[string]bool{}
	for i, o := range c.Origins {
		f := fmt.Sprintf("origins[%d]", i)
		switch {
		case o.Name == "":
			bad(f+".name", "missing pool name")
		case !poolName.MatchString(o.Name):
			bad(f+".name", "want letters, digits, '.', '-' and '_', got %q", o.Name)
		case seen[o.Name]:
			bad(f+".name", "duplicate pool name %q", o.Name)
		}
		seen[o.Name] = true
		if len(o.Servers) == 0 {
			bad(f+".servers", "at least one server is required")
		}
		for j, s := range o.Servers {
			sf := fmt.Sprintf("%s.servers[%d]", f, j)
			if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(sf+".url", "want http(s)://host[:port], got %q", s.URL)
			} else if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
				bad(sf+".url", "must not carry a path, query or fragment (the request's path is sent as is), got %q", s.URL)
			}
			if s.Weight < 1 || s.Weight > 100 {
				bad(sf+".weight", "must be between 1 and 100, got %d", s.Weight)
			}
		}
		switch o.Balance {
		case origins.RoundRobin, origins.LeastRequests, origins.Hash:
		default:
			bad(f+".balance", "want %s, %s or %s, got %q", origins.RoundRobin, origins.LeastRequests, origins.Hash, o.Balance)
		}
		if o.MaxConcurrent < 0 {
			bad(f+".max_concurrent", "must not be negative")
		}
		if o.MaxQueue < 0 {
			bad(f+".max_queue", "must not be negative")
		}
		if o.RetryBudget > 1 {
			bad(f+".retry_budget", "at most 1 (a retry per request), got %v", o.RetryBudget)
		}
		for _, d := range []struct {
			field string
			v     time.Duration
		}{
			{"queue_timeout", o.QueueTimeout}, {"retry_after", o.RetryAfter},
			{"health.interval", o.Health.Interval}, {"health.timeout", o.Health.Timeout},
			{"outlier.base_ejection_time", o.Outlier.BaseEjectionTime}, {"outlier.max_ejection_time", o.Outlier.MaxEjectionTime},
			{"dial_timeout", o.DialTimeout}, {"idle_conn_timeout", o.IdleConnTimeout},
		} {
			if d.v < 0 {
				bad(f+"."+d.field, "must not be negative")
			}
		}
		h := o.Health
		if h.Path != "" && h.Path[0] != '/' {
			bad(f+".health.path", "must start with '/', got %q", h.Path)
		}
		if h.HealthyThreshold < 1 || h.UnhealthyThreshold < 1 {
			bad(f+".health", "healthy_threshold and unhealthy_threshold must be at least 1")
		}
		for j, s := range h.ExpectedStatus {
			if s < 100 || s > 599 {
				bad(fmt.Sprintf("%s.health.expected_status[%d]", f, j), "not an HTTP status: %d", s)
			}
		}
		if p := o.Outlier.MaxEjectedPercent; p < 0 || p > 100 {
			bad(f+".outlier.max_ejected_percent", "must be between 0 and 100, got %d", p)
		}
		for _, file := range []struct{ field, path string }{
			{"tls.ca_file", o.TLS.CAFile}, {"tls.cert_file", o.TLS.CertFile}, {"tls.key_file", o.TLS.KeyFile},
		} {
			if file.path == "" {
				continue
			}
			if _, err := os.Stat(file.path); err != nil {
				bad(f+"."+file.field, "%v", err)
			}
		}
		if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
			bad(f+".tls", "set both cert_file and key_file for a client certificate, or neither")
		}
	}
}
