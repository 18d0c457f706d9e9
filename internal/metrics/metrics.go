// Package metrics holds the gateway's Prometheus metrics: their names and
// help in one place, a registry of their own (never the global one), and
// collectors that read state at scrape time (shards, plugins) instead of
// counting on the request path.
//
// # Cost on the request path
//
// A counter increment is one atomic add on a child resolved in advance:
// nothing on the request path calls WithLabelValues, which hashes the
// label values and takes a lock. The gateway resolves the children of a
// route when it first sees the route (RouteCounters), shard children when
// a shard first reports a round trip. Gauges of state (generation, store
// size, breaker, plugin counters) are computed when Prometheus scrapes.
//
// # Label cardinality
//
// Labels take values from the configuration (route, shard and plugin
// names), from closed sets (method, cache outcome, tier, hook, command,
// result) or from the status code. No label carries a path, a host or a
// key.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metric names. The Grafana dashboard and the alerts match on them: change
// them only with those.
const (
	RequestsTotal               = "edgecache_requests_total"
	CacheHitsTotal              = "edgecache_cache_hits_total"
	OriginDuration              = "edgecache_origin_request_duration_seconds"
	CoalescedWaitersTotal       = "edgecache_coalesced_waiters_total"
	ShardCommandDuration        = "edgecache_shard_command_duration_seconds"
	ShardErrorsTotal            = "edgecache_shard_errors_total"
	ShardCircuitOpen            = "edgecache_shard_circuit_open"
	ShardUp                     = "edgecache_shard_up"
	ShardKeyShare               = "edgecache_shard_key_share"
	ShardL1Enabled              = "edgecache_shard_l1_enabled"
	PluginCallDuration          = "edgecache_plugin_call_duration_seconds"
	PluginCallsTotal            = "edgecache_plugin_calls_total"
	PluginFaultsTotal           = "edgecache_plugin_faults_total"
	PluginFaultKindsTotal       = "edgecache_plugin_fault_kinds_total"
	PluginBusyTotal             = "edgecache_plugin_busy_total"
	PluginMemoHitsTotal         = "edgecache_plugin_memo_hits_total"
	PluginMemoMissesTotal       = "edgecache_plugin_memo_misses_total"
	PluginInstances             = "edgecache_plugin_instances"
	PluginDeclinedTotal         = "edgecache_plugin_declined_total"
	PluginSuspensionsTotal      = "edgecache_plugin_suspensions_total"
	PluginSuspendedTotal        = "edgecache_plugin_suspended_calls_total"
	PluginInstancesCreatedTotal = "edgecache_plugin_instances_created_total"
	ReloadsTotal                = "edgecache_reloads_total"
	LastReloadSuccessful        = "edgecache_config_last_reload_successful"
	Generation                  = "edgecache_generation"
	EmbeddedStoreBytes          = "edgecache_embedded_store_bytes"
	EmbeddedStoreEntries        = "edgecache_embedded_store_entries"
	EmbeddedStoreMaxBytes       = "edgecache_embedded_store_max_bytes"
)

// Histogram buckets, in seconds.
var (
	// OriginBuckets span a fast API (1 ms) to a timeout (10 s).
	OriginBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// ShardBuckets span a loopback round trip (100 µs) to a command
	// timeout (1 s).
	ShardBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	// PluginBuckets span a guest call (10 µs) to a plugin timeout (100 ms).
	PluginBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1}
)

// Metrics are the gateway's instruments and their registry.
type Metrics struct {
	Registry *prometheus.Registry

	Requests       *prometheus.CounterVec   // route, method, code, cache
	CacheHits      *prometheus.CounterVec   // tier
	OriginDuration *prometheus.HistogramVec // route
	Coalesced      prometheus.Counter
	ShardDuration  *prometheus.HistogramVec // shard, command
	ShardErrors    *prometheus.CounterVec   // shard
	PluginDuration *prometheus.HistogramVec // plugin, hook
	Reloads        *prometheus.CounterVec   // result
	ReloadOK       prometheus.Gauge

	// Hits are CacheHits' children, resolved.
	HitsL1, HitsL2, HitsFallback prometheus.Counter

	routes cow[string, *RouteCounters]
}

// New returns the metrics in a registry of their own, with the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RequestsTotal,
			Help: "Requests on the traffic listener by route, method, status code and cache outcome (hit, stale, revalidated, miss, no-store, bypass, error, no-route).",
		}, []string{"route", "method", "code", "cache"}),
		CacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: CacheHitsTotal,
			Help: "Responses served from the cache (fresh or stale) by the tier that answered: l1 (in-process), l2 (a Valkey round trip) or fallback (in-process, for a shard that failed: valkey.fallback_ttl).",
		}, []string{"tier"}),
		OriginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    OriginDuration,
			Help:    "Time from sending an origin request to its response headers, by route.",
			Buckets: OriginBuckets,
		}, []string{"route"}),
		Coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: CoalescedWaitersTotal,
			Help: "Requests that waited for another request's origin fetch of the same key instead of fetching (singleflight).",
		}),
		ShardDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    ShardCommandDuration,
			Help:    "Round-trip time of Valkey commands by shard and command (L1 hits make no round trip and are not counted).",
			Buckets: ShardBuckets,
		}, []string{"shard", "command"}),
		ShardErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ShardErrorsTotal,
			Help: "Valkey commands that failed (not a missing key), by shard.",
		}, []string{"shard"}),
		PluginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    PluginCallDuration,
			Help:    "Duration of WASM plugin guest calls by plugin and hook (memo hits are not calls).",
			Buckets: PluginBuckets,
		}, []string{"plugin", "hook"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ReloadsTotal,
			Help: "Configuration reloads by result: ok (a new generation serves) or error (rejected whole; the previous one keeps serving).",
		}, []string{"result"}),
		ReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: LastReloadSuccessful,
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if it was rejected.",
		}),
	}
	m.HitsL1 = m.CacheHits.WithLabelValues("l1")
	m.HitsL2 = m.CacheHits.WithLabelValues("l2")
	m.HitsFallback = m.CacheHits.WithLabelValues("fallback")
	m.Reloads.WithLabelValues("ok")
	m.Reloads.WithLabelValues("error")
	m.ReloadOK.Set(1)
	m.Registry.MustRegister(
		m.Requests, m.CacheHits, m.OriginDuration, m.Coalesced,
		m.ShardDuration, m.ShardErrors, m.PluginDuration, m.Reloads, m.ReloadOK,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Reload counts a reload's result.
func (m *Metrics) Reload(err error) {
	if err != nil {
		m.Reloads.WithLabelValues("error").Inc()
		m.ReloadOK.Set(0)
		return
	}
	m.Reloads.WithLabelValues("ok").Inc()
	m.ReloadOK.Set(1)
}

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry, EnableOpenMetrics: true})
}

// GaugeFunc registers a gauge whose value f computes at scrape time.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// CounterValue reads a counter (for the status page, not the request path).
func CounterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	return d.GetCounter().GetValue()
}

// RequestsBy sums the request counter by the value of one of its labels
// (route, method, code or cache).
func (m *Metrics) RequestsBy(label string) map[string]float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		m.Requests.Collect(ch)
		close(ch)
	}()
	out := map[string]float64{}
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil {
			continue
		}
		for _, lp := range d.GetLabel() {
			if lp.GetName() == label {
				out[lp.GetValue()] += d.GetCounter().GetValue()
			}
		}
	}
	return out
}
