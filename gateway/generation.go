package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/internal/memstore"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/shardmap"
)

// Generation is everything one configuration produced: routes with their
// policies and the store with its clients. It is immutable once built;
// the gateway swaps whole generations.
type Generation struct {
	ID     uint64
	Config *config.Config
	routes []*route // longest path prefix first; host-specific before any-host
	store  store
	shards *shardmap.Set // nil when the embedded store is in use
}

// route is one configured route, resolved.
type route struct {
	name          string
	host          string // lower-case, no port; "" matches any host
	prefix        string
	origin        *url.URL
	originTimeout time.Duration
	maxBody       int64
	key           policies.Key
	ttl           policies.TTL
	miss          policies.Miss
	proxy         *httputil.ReverseProxy
}

// build turns a validated config into a generation. It dials the shards.
func build(id uint64, cfg *config.Config, transport http.RoundTripper, log *slog.Logger) (*Generation, error) {
	g := &Generation{ID: id, Config: cfg}
	for i, rc := range cfg.Routes {
		u, err := url.Parse(rc.Origin)
		if err != nil {
			return nil, fmt.Errorf("gateway: routes[%d].origin: %w", i, err)
		}
		name := rc.Name
		if name == "" {
			name = fmt.Sprintf("route%d", i)
		}
		rt := &route{
			name:          name,
			host:          strings.ToLower(rc.Host),
			prefix:        rc.PathPrefix,
			origin:        u,
			originTimeout: rc.OriginTimeout,
			maxBody:       rc.MaxBodyBytes,
			key:           policies.DefaultKey{},
			ttl:           policies.DefaultTTL{Default: rc.DefaultTTL},
			miss:          policies.DefaultMiss{},
		}
		rt.proxy = newProxy(u, transport, log)
		g.routes = append(g.routes, rt)
	}
	sort.SliceStable(g.routes, func(i, j int) bool {
		a, b := g.routes[i], g.routes[j]
		if (a.host != "") != (b.host != "") {
			return a.host != ""
		}
		return len(a.prefix) > len(b.prefix)
	})

	if len(cfg.Shards) == 0 {
		g.store = memStore{memstore.New(cfg.Embedded.MaxBytes)}
		return g, nil
	}
	v := cfg.Valkey
	opts := shardmap.Options{
		L1BytesPerConn: v.L1BytesPerConn, DisableL1: v.DisableL1, L1TTL: v.L1TTL,
		DialTimeout: v.DialTimeout, CommandTimeout: v.CommandTimeout,
		BreakerFailures: v.BreakerFailures, BreakerCooldown: v.BreakerCooldown,
	}
	shards := make([]*shardmap.Shard, len(cfg.Shards))
	for i, sc := range cfg.Shards {
		shards[i] = shardmap.Dial(shardmap.Spec{Name: sc.Name, Addr: sc.Addr, Weight: sc.Weight}, opts)
	}
	set, err := shardmap.NewSet(shards)
	if err != nil {
		for _, s := range shards {
			s.Close()
		}
		return nil, err
	}
	g.shards = set
	g.store = shardStore{set}
	return g, nil
}

// match returns the route for host and path, or nil.
func (g *Generation) match(host, path string) *route {
	host = hostOnly(host)
	for _, rt := range g.routes {
		if rt.host != "" && rt.host != host {
			continue
		}
		if strings.HasPrefix(path, rt.prefix) {
			return rt
		}
	}
	return nil
}

// Shards returns the generation's shard set, or nil for the embedded store.
func (g *Generation) Shards() *shardmap.Set { return g.shards }

func (g *Generation) close() { g.store.close() }

// canonicalHost lower-cases host and drops a default port (":80",
// ":443"), without allocating when there is nothing to change. Other ports
// stay: they can be other sites.
func canonicalHost(h string) string {
	if strings.HasSuffix(h, ":80") {
		h = h[:len(h)-3]
	} else if strings.HasSuffix(h, ":443") {
		h = h[:len(h)-4]
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// hostOnly is canonicalHost without any port, for matching routes.
func hostOnly(h string) string {
	h = canonicalHost(h)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}
