package config

import "time"

// Defaults, in one place. A zero value in a loaded Config means "use the
// default"; EnsureDefaults fills them in.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 90 * time.Second
	DefaultOriginTimeout     = 10 * time.Second
	DefaultMaxBodyBytes      = 8 << 20
	DefaultL1BytesPerConn    = 64 << 20
	DefaultL1TTL             = time.Hour
	DefaultL1MinUses         = 2
	DefaultDialTimeout       = time.Second
	DefaultCommandTimeout    = 500 * time.Millisecond
	DefaultBreakerFailures   = 3
	DefaultBreakerCooldown   = 5 * time.Second
	DefaultEmbeddedMaxBytes  = 256 << 20
	DefaultRebalanceWindow   = 2 * time.Minute
	DefaultMaxFlushDelay     = 200 * time.Microsecond
	DefaultFallbackTTL       = 10 * time.Second
	DefaultFallbackBytes     = 64 << 20
	DefaultNegativeTTL       = 10 * time.Second
	DefaultKeep              = 10 * time.Minute
	DefaultLockWait          = 2 * time.Second
	// DefaultIdleRelease is how long the process must be quiet before
	// the heap it freed goes back to the OS (internal/cli/release.go).
	DefaultIdleRelease = time.Second
	// MinIdleRelease is the shortest server.idle_release: each window is
	// one getrusage and one runtime/metrics read.
	MinIdleRelease = 100 * time.Millisecond
)

// EnsureDefaults fills every zero field with its default and returns c.
func (c *Config) EnsureDefaults() *Config {
	setDefault(&c.Server.Listen, DefaultListen)
	setDefault(&c.Server.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.Server.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&c.Server.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.Server.IdleRelease, DefaultIdleRelease)
	for i := range c.Routes {
		r := &c.Routes[i]
		setDefault(&r.PathPrefix, "/")
		setDefault(&r.OriginTimeout, DefaultOriginTimeout)
		setDefault(&r.MaxBodyBytes, DefaultMaxBodyBytes)
		setDefault(&r.NegativeTTL, DefaultNegativeTTL)
		setDefault(&r.Keep, DefaultKeep)
		setDefault(&r.LockWait, DefaultLockWait)
		if r.TagHeaders == nil {
			r.TagHeaders = []string{"Surrogate-Key", "Cache-Tag"}
		}
	}
	for i := range c.Shards {
		setDefault(&c.Shards[i].Weight, 1)
	}
	v := &c.Valkey
	setDefault(&v.L1BytesPerConn, DefaultL1BytesPerConn)
	setDefault(&v.L1TTL, DefaultL1TTL)
	setDefault(&v.L1MinUses, DefaultL1MinUses)
	setDefault(&v.DialTimeout, DefaultDialTimeout)
	setDefault(&v.CommandTimeout, DefaultCommandTimeout)
	setDefault(&v.BreakerFailures, DefaultBreakerFailures)
	setDefault(&v.BreakerCooldown, DefaultBreakerCooldown)
	setDefault(&v.RebalanceWindow, DefaultRebalanceWindow)
	setDefault(&v.MaxFlushDelay, DefaultMaxFlushDelay)
	setDefault(&v.FallbackTTL, DefaultFallbackTTL)
	setDefault(&v.FallbackBytes, DefaultFallbackBytes)
	setDefault(&c.Embedded.MaxBytes, DefaultEmbeddedMaxBytes)
	c.ensureShardAuthDefaults()
	c.ensureObservabilityDefaults()
	c.ensureEdgeDefaults()
	c.ensureLimitsDefaults()
	c.ensureOriginsDefaults()
	c.ensureForwardingDefaults()
	c.ensureCachingDefaults()
	c.ensureCompressDefaults()
	c.applyMemoryLimit() // last: caps the bounds filled in above
	return c
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
