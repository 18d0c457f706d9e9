package admin

import (
	"math"
	"net/url"
	"time"

	"github.com/edgecache/edgecache/gateway"
	"github.com/edgecache/edgecache/internal/metrics"
	"github.com/edgecache/edgecache/origins"
)

// Status is what GET /admin/status answers and the status page shows.
type Status struct {
	Generation    uint64          `json:"generation"`
	Created       time.Time       `json:"created"` // when the generation was published
	ConfigSource  string          `json:"config_source"`
	Store         string          `json:"store"` // "valkey" or "embedded"
	UptimeSeconds float64         `json:"uptime_seconds"`
	Shards        []ShardStatus   `json:"shards"`
	Embedded      *EmbeddedStatus `json:"embedded,omitempty"`
	Routes        []RouteStatus   `json:"routes"`
	Plugins       []PluginStatus  `json:"plugins"`
	Pools         []PoolStatus    `json:"pools"` // origin pools and their servers
	LastReload    ReloadStatus    `json:"last_reload"`
	// Requests counts requests since start by cache outcome (hit, stale,
	// revalidated, miss, no-store, bypass, error, no-route); Hits by tier.
	Requests map[string]float64 `json:"requests"`
	Hits     map[string]float64 `json:"hits"`
	// HitRatio is the last minutes in intervals of a few seconds, oldest
	// first.
	HitRatio []HistoryPoint `json:"hit_ratio"`
	// Certificates are the TLS certificates served, with their expiry.
	Certificates any `json:"certificates,omitempty"`
}

// ShardStatus is one shard of the serving generation.
type ShardStatus struct {
	Name        string  `json:"name"`
	Kind        string  `json:"kind"` // standalone, sentinel, cluster
	Target      string  `json:"target"`
	Weight      int     `json:"weight"`
	KeyShare    float64 `json:"key_share"` // fraction of the key space it owns
	Healthy     bool    `json:"healthy"`   // connected, breaker closed
	Connected   bool    `json:"connected"`
	CircuitOpen bool    `json:"circuit_open"`
	InFlight    int64   `json:"in_flight"`
	TLS         bool    `json:"tls"`
	L1          bool    `json:"l1"`               // client-side caching on
	L1Off       string  `json:"l1_off,omitempty"` // why not
	Error       string  `json:"error,omitempty"`  // the last connect or command failure, until a success
}

// EmbeddedStatus is the in-process store, when no shard is configured.
type EmbeddedStatus struct {
	Entries  int    `json:"entries"`
	Bytes    uint64 `json:"bytes"`
	MaxBytes int64  `json:"max_bytes"`
}

// RouteStatus is one route.
type RouteStatus struct {
	Name       string `json:"name"`
	Host       string `json:"host,omitempty"`
	PathPrefix string `json:"path_prefix"`
	Origin     string `json:"origin"` // userinfo redacted
}

// PluginStatus is one WASM plugin.
type PluginStatus struct {
	Name     string            `json:"name"`
	Calls    map[string]uint64 `json:"calls"`    // by hook
	Faults   map[string]uint64 `json:"faults"`   // by hook
	Declined map[string]uint64 `json:"declined"` // by hook: the built-in policy decided
	// Suspensions counts suspensions after repeated faults; SuspendedCalls
	// the calls refused meanwhile (the built-in policy decided).
	Suspensions    uint64 `json:"suspensions"`
	SuspendedCalls uint64 `json:"suspended_calls"`
	// Instances are live now; InstancesCreated counts every one created
	// since the plugin was loaded (a reload that keeps it creates none).
	Instances        int    `json:"instances"`
	InstancesCreated uint64 `json:"instances_created"`
}

// ReloadStatus says how the last reload went.
type ReloadStatus struct {
	OK      bool       `json:"ok"`
	Error   string     `json:"error,omitempty"`
	ErrorAt *time.Time `json:"error_at,omitempty"`
}

// PoolStatus is one origin pool and its servers.
type PoolStatus = origins.PoolStats

// Status reports the gateway's state now, with the status page's
// hit-ratio history.
func (a *Admin) Status() Status {
	st := StatusOf(a.v)
	st.HitRatio = a.hist.Points()
	return st
}

// StatusOf reports v's state now, without a hit-ratio history (that is
// sampled by an Admin).
func StatusOf(v gateway.View) Status {
	gen := v.Generation()
	m := v.Metrics()
	st := Status{
		Generation: gen.ID, Created: gen.Created, ConfigSource: gen.Source, Store: "embedded",
		UptimeSeconds: math.Round(time.Since(v.Started()).Seconds()),
		Shards:        []ShardStatus{}, Routes: []RouteStatus{}, Plugins: []PluginStatus{},
		Requests: m.RequestsBy("cache"),
		Hits:     map[string]float64{"l1": metrics.CounterValue(m.HitsL1), "l2": metrics.CounterValue(m.HitsL2)},
		HitRatio: []HistoryPoint{},
	}
	if set := gen.Shards(); set != nil {
		st.Store = "valkey"
		sm := set.Map()
		for i, s := range set.Shards() {
			st.Shards = append(st.Shards, ShardStatus{
				Name: s.Name, Kind: s.Kind(), Target: s.Target(), Weight: sm.Members()[i].Weight, KeyShare: sm.Share(i),
				Healthy: s.Healthy(), Connected: s.Connected(), CircuitOpen: s.Open(), InFlight: s.InFlight(),
				TLS: s.TLSOn(), L1: s.L1Off() == "", L1Off: s.L1Off(), Error: s.Err(),
			})
		}
	}
	if e, ok := gen.Embedded(); ok {
		st.Embedded = &EmbeddedStatus{Entries: e.Entries, Bytes: e.Bytes, MaxBytes: e.MaxBytes}
	}
	for _, rt := range gen.Config.Routes {
		origin := rt.Origin
		if u, err := url.Parse(origin); err == nil {
			origin = u.Redacted()
		}
		st.Routes = append(st.Routes, RouteStatus{Name: rt.Name, Host: rt.Host, PathPrefix: rt.PathPrefix, Origin: origin})
	}
	st.Pools = gen.Pools()
	st.Plugins = pluginStatus(gen.PluginStates())
	at, err := v.LastReloadError()
	st.LastReload.OK = err == nil
	if err != nil {
		st.LastReload.Error = err.Error()
		st.LastReload.ErrorAt = &at
	}
	st.Certificates = v.Certificates()
	return st
}

// pluginStatus turns the plugins' counters into their status, by hook
// name.
func pluginStatus(states []metrics.PluginState) []PluginStatus {
	out := []PluginStatus{}
	for _, p := range states {
		ps := PluginStatus{Name: p.Name, Calls: map[string]uint64{}, Faults: map[string]uint64{}, Declined: map[string]uint64{},
			Suspensions: p.Stats.Suspensions, SuspendedCalls: p.Stats.Suspended,
			Instances: p.Stats.Instances, InstancesCreated: p.Stats.Instantiated}
		for i, h := range p.Stats.Hooks {
			ps.Calls[metrics.Hooks[i]], ps.Faults[metrics.Hooks[i]], ps.Declined[metrics.Hooks[i]] = h.Calls, h.Faults, h.Declined
		}
		out = append(out, ps)
	}
	return out
}
