package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgecache/edgecache/config"
	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/internal/memstore"
	"github.com/edgecache/edgecache/origins"
	"github.com/edgecache/edgecache/policies"
	"github.com/edgecache/edgecache/shardmap"
)

// Generation is everything one configuration produced: routes with their
// policies and the store with its clients. It is immutable once built;
// the gateway swaps whole generations.
type Generation struct {
	ID      uint64
	Config  *config.Config
	Source  string    // where Config came from
	Created time.Time // when the generation was published
	routes  []*route  // host-specific first, then the longest path prefix
	store   store
	shards  *shardmap.Set // nil when the embedded store is in use
	plugins map[string]hook.Plugin
	// pluginIDs fingerprint each plugin's module bytes and configuration:
	// a reload reuses a plugin whose fingerprint did not change.
	pluginIDs map[string][32]byte
	mem       *memstore.Store
	memTags   *tagIndex
	fb        *fallback // shards only; nil when off
	pools     pools     // origin pools by name (pools.go)
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
	plugins       []string // names of the plugins whose hooks it uses

	transport  http.RoundTripper // the pool, or the gateway's transport (pools.go)
	pool       *origins.Pool     // nil: origin is a URL
	originHost string            // routes[].origin_host
	retryAfter []string          // Retry-After of a 503 when the pool refuses

	swr, sie            time.Duration // stale windows when the origin sends none
	targetedField       string        // the route's own targeted cache-control field (canonical), or ""
	keep                time.Duration
	ignoreClientNoCache bool
	varyNormalize       map[string]bool
	tagHeaders          []string
	lockWait            time.Duration // <= 0: no cross-gateway lock

	methods      uint8    // methodBit of each accepted method, with methodsListed; 0: every method
	otherMethods []string // the extension methods of the route's list
	allow        []string // the Allow header of the route's 405

	fwd            *forwarding             // the generation's forwarding section (forward.go)
	privacy        policies.PrivacyOptions // the route's opt-outs of policies.Private
	allowedOrigins map[string]bool         // hosts a miss plugin may send the request to (miss.go)
	compress       *compression            // nil: never compressed (encode.go)
}

// build turns a validated config into the next generation, published
// by the caller. Plugins and pools that did not change are shared with
// prev; so are shards with the same address and options, with their
// clients (and L1); new ones are dialed. If the key placement changed,
// the store reads the previous owner of a key on a miss during the
// rebalance window. A generation is complete when build returns: nothing
// sets a field of it afterwards.
func (gw *Gateway) build(cfg *config.Config, prev *Generation, source string) (*Generation, error) {
	g := &Generation{ID: gw.nextID.Add(1), Config: cfg, Source: source, Created: time.Now()}
	plugins, ids, err := loadPlugins(gw.host, cfg.Plugins, gw.pluginCall, prev)
	if err != nil {
		return nil, err
	}
	g.plugins, g.pluginIDs = plugins, ids
	ok := false
	defer func() {
		if !ok {
			g.closePlugins(prev) // not those prev still serves with
		}
	}()
	if g.pools, err = buildPools(cfg, prev); err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			g.pools.closeExcept(prev)
		}
	}()
	fwd := newForwarding(&cfg.Forwarding)
	for i, rc := range cfg.Routes {
		rt, err := g.newRoute(i, rc, gw.transport, gw.log, fwd)
		if err != nil {
			return nil, err
		}
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
		g.useEmbedded(prev)
	} else if err := g.useShards(prev, gw.log, gw.member); err != nil {
		return nil, err
	}
	ok = true
	return g, nil
}

// newRoute resolves routes[i] of g's config.
func (g *Generation) newRoute(i int, rc config.Route, transport http.RoundTripper, log *slog.Logger, fwd *forwarding) (*route, error) {
	u, err := url.Parse(rc.Origin)
	if err != nil {
		return nil, fmt.Errorf("gateway: routes[%d].origin: %w", i, err)
	}
	name := rc.Name
	if name == "" {
		name = fmt.Sprintf("route%d", i)
	}
	rt := &route{
		name: name, host: strings.ToLower(rc.Host), prefix: rc.PathPrefix, origin: u,
		originTimeout: rc.OriginTimeout, maxBody: rc.MaxBodyBytes,
		swr: rc.StaleWhileRevalidate, sie: rc.StaleIfError, targetedField: http.CanonicalHeaderKey(rc.Caching.TargetedField), keep: max(rc.Keep, 0),
		ignoreClientNoCache: !rc.HonorClientNoCache, varyNormalize: map[string]bool{},
		lockWait: rc.LockWait, originHost: rc.OriginHost, fwd: fwd,
		privacy:  policies.PrivacyOptions{StoreSetCookie: rc.CacheSetCookie, StoreWithCookie: rc.CacheWithCookie, DeceptionArmor: rc.DeceptionArmor},
		compress: newCompression(rc.Compress),
	}
	rt.usePool(g.pools, rc.Origin, transport)
	builtin := RoutePolicies(rc)
	rt.key, rt.ttl, rt.miss = builtin.Key, builtin.TTL, builtin.Miss
	rt.methods, rt.otherMethods, rt.allow = routeMethods(rc.Methods)
	if err := rt.applyPlugins(rc.Plugins, g.plugins); err != nil {
		return nil, fmt.Errorf("gateway: routes[%d]: %w", i, err)
	}
	for _, h := range rc.VaryNormalize {
		rt.varyNormalize[http.CanonicalHeaderKey(h)] = true
	}
	for _, h := range rc.TagHeaders {
		rt.tagHeaders = append(rt.tagHeaders, http.CanonicalHeaderKey(h))
	}
	rt.allowedOrigins = allowedOrigins(rt.origin, rc.Plugins, g.Config.Plugins) // a pool: its placeholder URL
	rt.proxy = newProxy(rt, log)
	return rt, nil
}

// useEmbedded makes the in-process store g's L2, keeping prev's contents.
func (g *Generation) useEmbedded(prev *Generation) {
	ms := newMemStore(nil)
	if prev != nil && prev.mem != nil {
		ms = memStore{prev.mem, prev.memTags} // keep the contents across reloads
		ms.m.SetMaxBytes(g.Config.Embedded.MaxBytes)
	} else {
		ms.m = memstore.New(g.Config.Embedded.MaxBytes)
	}
	g.mem, g.memTags, g.store = ms.m, ms.tags, ms
}

// useShards makes the configured shards g's L2 and keeps the fallback
// store. shardmap builds the set from prev's: unchanged shards keep their
// clients and L1, new ones are dialed, and a change of placement opens
// the rebalance window. member is the gateway's name on the shards' roll
// of the gateways that use them (shardmap/peers.go).
func (g *Generation) useShards(prev *Generation, log *slog.Logger, member string) error {
	v := g.Config.Valkey
	var from *shardmap.Set
	if prev != nil {
		from = prev.shards
	}
	o := shardmap.OptionsOf(v, log)
	o.Member = member
	set, err := shardmap.Build(g.Config.Shards, o, from,
		shardmap.BuildOptions{Reload: prev != nil, Window: v.RebalanceWindow, Life: entryLife})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.shards = set
	if v.FallbackTTL > 0 {
		g.fb = &fallback{ttl: v.FallbackTTL}
		if prev != nil && prev.fb != nil {
			g.fb.memStore = prev.fb.memStore // keep what it holds across reloads
			g.fb.m.SetMaxBytes(v.FallbackBytes)
		} else {
			g.fb.memStore = newMemStore(memstore.New(v.FallbackBytes))
		}
	}
	g.store = shardStore{shards: set, fb: g.fb}
	return nil
}

// loadPlugins compiles (or takes from the compilation cache) and
// instantiates the configured plugins, up to GOMAXPROCS at a time: a
// generation waits for its slowest plugin, not for the sum. A plugin that
// fails to load rejects the configuration whole.
//
// A plugin of prev with the same name, module bytes and configuration
// (pluginID) is reused as it is — compiled module, pool, memo, counters —
// so that a reload that does not touch a plugin creates no instance; a
// changed one is loaded anew and swapped in with the generation.
//
// The loader returns once one instance is ready and fills the rest of
// the pool in the background. At startup (no prev) that is enough:
// nothing serves yet, and the pools fill while the gateway comes up. On a
// reload each new pool must be full before the generation is published,
// so that the new generation starts with the instances the old one had,
// and an instance that fails its init rejects the reload as it always did.
func loadPlugins(host hook.Loader, cfgs []config.Plugin, onCall pluginCallFunc, prev *Generation) (map[string]hook.Plugin, map[string][32]byte, error) {
	if len(cfgs) > 0 && host == nil {
		return nil, nil, errors.New("gateway: plugins are configured but the gateway has no plugin loader (Options.Plugins)")
	}
	loaded := make([]hook.Plugin, len(cfgs))
	ids := make([][32]byte, len(cfgs))
	errs := make([]error, len(cfgs))
	reused := make([]bool, len(cfgs))
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, pc := range cfgs {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			code, id, err := pluginID(pc)
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = id
			if prev != nil && prev.plugins[pc.Name] != nil && prev.pluginIDs[pc.Name] == id {
				loaded[i], reused[i] = prev.plugins[pc.Name], true
				return
			}
			loaded[i], errs[i] = loadPlugin(host, pc, code, onCall)
			if errs[i] == nil && prev != nil {
				errs[i] = loaded[i].WaitFull(context.Background())
			}
		})
	}
	wg.Wait()
	out := make(map[string]hook.Plugin, len(cfgs))
	outIDs := make(map[string][32]byte, len(cfgs))
	for i, p := range loaded {
		if p != nil {
			out[cfgs[i].Name], outIDs[cfgs[i].Name] = p, ids[i]
		}
	}
	for i, err := range errs {
		if err != nil {
			for j, p := range loaded {
				if p != nil && !reused[j] {
					_ = p.Close(context.Background())
				}
			}
			return nil, nil, fmt.Errorf("gateway: plugins[%d] (%s): %w", i, cfgs[i].Name, err)
		}
	}
	return out, outIDs, nil
}

// pluginID reads a plugin's module and fingerprints it with everything
// that configures the loaded plugin: two equal IDs load the same plugin.
func pluginID(pc config.Plugin) ([]byte, [32]byte, error) {
	code, err := os.ReadFile(pc.Path)
	if err != nil {
		return nil, [32]byte{}, err
	}
	opts, err := json.Marshal(pc) // name, path, config, pool, limits
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("config: %w", err)
	}
	h := sha256.New()
	h.Write(code)
	h.Write([]byte{0})
	h.Write(opts)
	var id [32]byte
	h.Sum(id[:0])
	return code, id, nil
}

// pluginCallFunc is told the duration of each guest call of a plugin.
type pluginCallFunc func(plugin string, h hook.ID, d time.Duration)

func loadPlugin(host hook.Loader, pc config.Plugin, code []byte, onCall pluginCallFunc) (hook.Plugin, error) {
	var conf []byte
	if pc.Config != nil {
		var err error
		if conf, err = json.Marshal(pc.Config); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return policies.LoadPlugin(context.Background(), host, code, hook.PluginOptions{
		Name:                pc.Name,
		Config:              conf,
		PoolSize:            pc.PoolSize,
		Timeout:             pc.Timeout,
		InitTimeout:         pc.InitTimeout,
		MemoryLimitPages:    uint32((pc.MemoryLimitBytes + 65535) / 65536),
		MaxCallsPerInstance: pc.MaxCallsPerInstance,
		MemoEntries:         pc.MemoEntries,
		Observe: func(h hook.ID, d time.Duration) {
			if onCall != nil {
				onCall(pc.Name, h, d)
			}
		},
	})
}

// applyPlugins replaces the route's built-in policies with the hooks of
// the named plugins; two plugins may not export the same hook.
func (rt *route) applyPlugins(names []string, plugins map[string]hook.Plugin) error {
	set := policies.Set{Key: rt.key, TTL: rt.ttl, Miss: rt.miss}
	owner := map[hook.ID]string{}
	for _, n := range names {
		p := plugins[n]
		if p == nil {
			return fmt.Errorf("no plugin named %q", n)
		}
		for _, h := range []hook.ID{hook.KeyHook, hook.ResponseHook, hook.MissHook} {
			if !p.Has(h) {
				continue
			}
			if o, dup := owner[h]; dup {
				return fmt.Errorf("plugins %q and %q both export the %s hook", o, n, h)
			}
			owner[h] = n
		}
		set = policies.FromPlugin(p, set)
	}
	rt.key, rt.ttl, rt.miss = set.Key, set.TTL, set.Miss
	rt.plugins = names
	return nil
}

// RoutePolicies returns the built-in policies of a route as configured by
// rc, before its plugins (the fallback the plugin adapter is given):
// `edgecache plugin run/test` build theirs with it, so a plugin author sees
// what the gateway does.
func RoutePolicies(rc config.Route) policies.Set {
	return policies.Set{
		Key: policies.DefaultKey{},
		TTL: policies.DefaultTTL{Default: rc.DefaultTTL, Negative: max(rc.NegativeTTL, 0), Heuristic: rc.HeuristicFreshness,
			TargetedField: http.CanonicalHeaderKey(rc.Caching.TargetedField)},
		Miss: policies.DefaultMiss{},
	}
}

// Explanation is what the policies of a route decide for one request.
type Explanation struct {
	Route    string
	Key      string
	Miss     policies.MissAction
	Decision policies.Decision // with a response only
}

// Explain runs the policies of the route that r matches in the serving
// generation, as the read path does — the request view (reqState.fill),
// the key, the miss action and, when resp is not nil, the TTL decision —
// without any I/O. Tests compare `edgecache plugin run` against it.
func (g *Gateway) Explain(r *http.Request, resp *policies.Response, now time.Time) (Explanation, error) {
	gen := g.gen.Load()
	rt := gen.match(r.Host, r.URL.Path)
	if rt == nil {
		return Explanation{}, fmt.Errorf("gateway: no route for %s%s", r.Host, r.URL.Path)
	}
	var st reqState
	st.request(r)
	e := Explanation{Route: rt.name, Key: string(rt.key.AppendKey(nil, &st.preq)), Miss: rt.miss.OnMiss(&st.preq)}
	if resp != nil {
		e.Decision = rt.ttl.Decide(&st.preq, resp, now)
	}
	return e, nil
}

// closePlugins closes the generation's plugins that none of keep holds
// (a reload reuses unchanged plugins); each waits for its in-flight calls,
// and later calls fall back to the built-in policies.
func (g *Generation) closePlugins(keep ...*Generation) {
	for name, p := range g.plugins {
		kept := false
		for _, k := range keep {
			kept = kept || k != nil && k.plugins[name] == p
		}
		if !kept {
			go func() { _ = p.Close(context.Background()) }()
		}
	}
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

// retire releases what g holds that keep does not hold too (no keep:
// everything). g's shard set gives up its references: a shard closes when
// no set holds it any more, once its in-flight calls finish, and the
// shards that keep's set reads during its rebalance window are held by
// that set until the window ends.
func (g *Generation) retire(keep ...*Generation) {
	memKept, fbKept := false, false
	for _, k := range keep {
		if k != nil {
			memKept = memKept || k.mem == g.mem
			fbKept = fbKept || g.fb != nil && k.fb != nil && k.fb.m == g.fb.m
		}
	}
	if g.mem != nil && !memKept {
		g.mem.Close()
	}
	if g.fb != nil && !fbKept {
		g.fb.m.Close()
	}
	if g.shards != nil {
		g.shards.Release()
	}
	g.closePlugins(keep...) // an unchanged plugin is shared with the next generation
	g.pools.closeExcept(keep...)
}

// canonicalHost is policies.CanonicalHost: the request view's host.
func canonicalHost(h string) string { return policies.CanonicalHost(h) }

// hostOnly is canonicalHost without any port, for matching routes.
func hostOnly(h string) string {
	h = canonicalHost(h)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// Plugin returns the generation's plugin named name, or nil.
func (g *Generation) Plugin(name string) hook.Plugin { return g.plugins[name] }

// PluginNames returns the names of the generation's plugins.
func (g *Generation) PluginNames() []string {
	names := make([]string, 0, len(g.plugins))
	for n := range g.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
