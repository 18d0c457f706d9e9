package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// FieldError is one invalid field: Field is its path in the document
// ("shards[2].addr"), Msg says what was expected.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks c (defaults already filled) and returns every problem
// found, joined, or nil.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if err := checkHostPort(c.Server.Listen); err != nil {
		bad("server.listen", "%v", err)
	}
	if len(c.Routes) == 0 {
		bad("routes", "at least one route is required")
	}
	seenRoute := map[string]bool{}
	for i, r := range c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		if r.Name != "" {
			if seenRoute[r.Name] {
				bad(f+".name", "duplicate route name %q", r.Name)
			}
			seenRoute[r.Name] = true
		}
		if !strings.HasPrefix(r.PathPrefix, "/") {
			bad(f+".path_prefix", "must start with '/', got %q", r.PathPrefix)
		}
		if r.Origin == "" {
			bad(f+".origin", "missing origin URL or pool name")
		} else if c.Pool(r.Origin) != nil {
			// a pool (origins.go)
		} else if !strings.Contains(r.Origin, "://") && poolName.MatchString(r.Origin) {
			bad(f+".origin", "no pool named %q in origins (or give an absolute http(s) URL)", r.Origin)
		} else if u, err := url.Parse(r.Origin); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(f+".origin", "want an absolute http(s) URL, got %q", r.Origin)
		} else if u.RawQuery != "" || u.Fragment != "" {
			bad(f+".origin", "must not carry a query or fragment, got %q", r.Origin)
		}
		for j, m := range r.Methods {
			if !ValidMethod(m) {
				bad(fmt.Sprintf("%s.methods[%d]", f, j), "want one of %s or an extension method token (methods are case-sensitive; not %s), got %q", strings.Join(KnownMethods, ", "), strings.Join(RefusedMethods, " or "), m)
			}
		}
		if r.DefaultTTL < 0 {
			bad(f+".default_ttl", "must not be negative")
		}
		if r.OriginTimeout < 0 {
			bad(f+".origin_timeout", "must not be negative")
		}
		if r.MaxBodyBytes < 0 {
			bad(f+".max_body_bytes", "must not be negative")
		}
	}
	names := map[string]bool{}
	addrs := map[string]int{}
	for i, s := range c.Shards {
		f := fmt.Sprintf("shards[%d]", i)
		switch {
		case s.Name == "":
			bad(f+".name", "missing shard name")
		case names[s.Name]:
			bad(f+".name", "duplicate shard name %q", s.Name)
		}
		names[s.Name] = true
		kinds := 0
		for _, set := range []bool{s.Addr != "", s.Sentinel != nil, len(s.Cluster) > 0} {
			if set {
				kinds++
			}
		}
		switch {
		case kinds == 0:
			bad(f+".addr", "missing address (host:port), or a sentinel or cluster section")
		case kinds > 1:
			bad(f, "set only one of addr, sentinel and cluster")
		case s.Addr != "":
			if err := checkHostPort(s.Addr); err != nil {
				bad(f+".addr", "%v", err)
			} else if j, dup := addrs[s.Addr]; dup {
				bad(f+".addr", "same address as shards[%d]", j)
			} else {
				addrs[s.Addr] = i
			}
			if s.ReadReplicas {
				bad(f+".read_replicas", "only for sentinel and cluster shards")
			}
		case s.Sentinel != nil:
			if s.Sentinel.Master == "" {
				bad(f+".sentinel.master", "missing the monitored primary's name")
			}
			if len(s.Sentinel.Addrs) == 0 {
				bad(f+".sentinel.addrs", "at least one sentinel address is required")
			}
			for j, a := range s.Sentinel.Addrs {
				if err := checkHostPort(a); err != nil {
					bad(fmt.Sprintf("%s.sentinel.addrs[%d]", f, j), "%v", err)
				}
			}
		default:
			for j, a := range s.Cluster {
				if err := checkHostPort(a); err != nil {
					bad(fmt.Sprintf("%s.cluster[%d]", f, j), "%v", err)
				}
			}
		}
		if s.Weight < 1 || s.Weight > 1000 {
			bad(f+".weight", "must be between 1 and 1000, got %d", s.Weight)
		}
	}
	plugins := map[string]bool{}
	for i, p := range c.Plugins {
		f := fmt.Sprintf("plugins[%d]", i)
		switch {
		case p.Name == "":
			bad(f+".name", "missing plugin name")
		case plugins[p.Name]:
			bad(f+".name", "duplicate plugin name %q", p.Name)
		}
		plugins[p.Name] = true
		if p.Path == "" {
			bad(f+".path", "missing the .wasm file")
		} else if st, err := os.Stat(p.Path); err != nil {
			bad(f+".path", "%v", err)
		} else if st.IsDir() {
			bad(f+".path", "%s is a directory", p.Path)
		}
		if p.PoolSize < 0 || p.PoolSize > 64 {
			bad(f+".pool_size", "must be between 1 and 64, got %d", p.PoolSize)
		}
		if p.Timeout < 0 || p.InitTimeout < 0 || p.MemoryLimitBytes < 0 || p.MaxCallsPerInstance < 0 {
			bad(f, "timeouts and limits must not be negative")
		}
		if p.MemoryLimitBytes > 4<<30 {
			bad(f+".memory_limit_bytes", "at most 4 GiB (the wasm32 address space)")
		}
	}
	for i, r := range c.Routes {
		for j, name := range r.Plugins {
			if !plugins[name] {
				bad(fmt.Sprintf("routes[%d].plugins[%d]", i, j), "no plugin named %q in plugins", name)
			}
		}
	}
	if d := c.Server.IdleRelease; d > 0 && d < MinIdleRelease {
		bad("server.idle_release", "at least %v, or negative to turn it off; got %v", MinIdleRelease, d)
	}
	v := c.Valkey
	if v.L1BytesPerConn < 0 {
		bad("valkey.l1_bytes_per_conn", "must not be negative")
	}
	if v.L1MinUses != 1 && v.L1MinUses != 2 {
		bad("valkey.l1_min_uses", "1 (the L1 keeps a key from its first lookup) or 2 (from its second); got %d", v.L1MinUses)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"valkey.l1_ttl", v.L1TTL}, {"valkey.dial_timeout", v.DialTimeout},
		{"valkey.command_timeout", v.CommandTimeout}, {"valkey.breaker_cooldown", v.BreakerCooldown},
	} {
		if d.v < 0 {
			bad(d.field, "must not be negative")
		}
	}
	if v.MaxFlushDelay > 10*time.Millisecond {
		bad("valkey.max_flush_delay", "at most 10ms, got %v (it delays round trips under load)", v.MaxFlushDelay)
	}
	if v.FallbackBytes < 0 {
		bad("valkey.fallback_bytes", "must not be negative")
	}
	if c.Embedded.MaxBytes < 0 {
		bad("embedded.max_bytes", "must not be negative")
	}
	c.validateShardAuth(bad)
	c.validateObservability(bad)
	c.validateEdge(bad)
	c.validateLimits(bad)
	c.validateMemory(bad)
	c.validateOrigins(bad)
	c.validateForwarding(bad)
	c.validateCaching(bad)
	c.validateCompress(bad)
	return errors.Join(errs...)
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return fmt.Errorf("missing port in %q", addr)
		}
		return fmt.Errorf("want host:port, got %q", addr)
	}
	_ = host
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port %q", port)
	}
	return nil
}
