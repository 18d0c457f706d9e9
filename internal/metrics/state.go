package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgecache/edgecache/hook"
	"github.com/edgecache/edgecache/origins"
)

// State is what the gateway is at the moment of a scrape: read through
// StateFunc, never counted per request.
type State struct {
	Generation uint64
	Shards     []ShardState // nil when the embedded store is in use
	Embedded   *EmbeddedState
	Plugins    []PluginState
	Origins    []origins.PoolStats // origin pools (origins.go)
}

// ShardState is one shard of the serving generation.
type ShardState struct {
	Name  string
	Up    bool    // connected and its breaker closed
	Open  bool    // its circuit breaker is open
	Share float64 // fraction of the key space it owns
	L1    bool    // client-side caching on (off: disable_l1, or no CLIENT TRACKING)
}

// EmbeddedState is the in-process store, when no shard is configured.
type EmbeddedState struct {
	Entries  int
	Bytes    uint64
	MaxBytes int64
}

// PluginState is one loaded plugin's counters.
type PluginState struct {
	Name  string
	Stats hook.PluginStats
}

// Hooks are the values of the hook label, indexed like
// hook.PluginStats.Hooks.
var Hooks = func() []string {
	var s hook.PluginStats
	names := make([]string, len(s.Hooks))
	for i := range names {
		names[i] = hook.ID(i).String()
	}
	return names
}()

var (
	descGeneration = prometheus.NewDesc(Generation, "Id of the configuration generation serving now (it grows by one per accepted reload).", nil, nil)
	descCircuit    = prometheus.NewDesc(ShardCircuitOpen, "1 while the shard's circuit breaker is open (lookups skip it and go to the origin).", []string{"shard"}, nil)
	descUp         = prometheus.NewDesc(ShardUp, "1 if the shard is connected and its breaker closed.", []string{"shard"}, nil)
	descL1         = prometheus.NewDesc(ShardL1Enabled, "1 if the shard's lookups go through client-side caching (the L1); 0 with valkey.disable_l1 or a server that refused CLIENT TRACKING.", []string{"shard"}, nil)
	descShare      = prometheus.NewDesc(ShardKeyShare, "Fraction of the key space the shard owns in the serving shard map.", []string{"shard"}, nil)
	descEmbBytes   = prometheus.NewDesc(EmbeddedStoreBytes, "Bytes held by the embedded store (0 when Valkey shards are configured).", nil, nil)
	descEmbEntries = prometheus.NewDesc(EmbeddedStoreEntries, "Entries held by the embedded store (an estimate).", nil, nil)
	descEmbMax     = prometheus.NewDesc(EmbeddedStoreMaxBytes, "Memory budget of the embedded store.", nil, nil)
	descPlCalls    = prometheus.NewDesc(PluginCallsTotal, "Guest calls of a plugin by hook (memo hits are not calls).", []string{"plugin", "hook"}, nil)
	descPlFaults   = prometheus.NewDesc(PluginFaultsTotal, "Guest calls that faulted (trap, timeout, memory, ABI violation) by plugin and hook; the built-in policy decided instead.", []string{"plugin", "hook"}, nil)
	descPlKinds    = prometheus.NewDesc(PluginFaultKindsTotal, "Plugin faults by kind: timeout, trap, memory, abi.", []string{"plugin", "kind"}, nil)
	descPlBusy     = prometheus.NewDesc(PluginBusyTotal, "Plugin calls that found no free instance in time.", []string{"plugin"}, nil)
	descPlMemoHit  = prometheus.NewDesc(PluginMemoHitsTotal, "Key-hook results answered from the plugin's memo.", []string{"plugin"}, nil)
	descPlMemoMiss = prometheus.NewDesc(PluginMemoMissesTotal, "Key-hook lookups the memo could not answer.", []string{"plugin"}, nil)
	descPlInst     = prometheus.NewDesc(PluginInstances, "Live instances of a plugin.", []string{"plugin"}, nil)
	descPlDeclined = prometheus.NewDesc(PluginDeclinedTotal, "Guest calls in which the hook declined (returned non-zero) by plugin and hook; the built-in policy decided. Not a fault.", []string{"plugin", "hook"}, nil)
	descPlSuspends = prometheus.NewDesc(PluginSuspensionsTotal, "Times a plugin was suspended after repeated consecutive faults (wasm.BreakerFaults).", []string{"plugin"}, nil)
	descPlSuspCall = prometheus.NewDesc(PluginSuspendedTotal, "Plugin calls refused while the plugin was suspended; the built-in policy decided.", []string{"plugin"}, nil)
	descPlCreated  = prometheus.NewDesc(PluginInstancesCreatedTotal, "Instances of a plugin created since it was loaded (faults and recycling replace instances; a reload that keeps the plugin creates none).", []string{"plugin"}, nil)
)

// stateCollector exports State at scrape time. It is unchecked (Describe
// sends nothing): its series come and go with shards and plugins.
type stateCollector struct{ state func() State }

// WatchState registers a collector that calls state at each scrape.
func (m *Metrics) WatchState(state func() State) {
	m.Registry.MustRegister(stateCollector{state})
}

func (stateCollector) Describe(chan<- *prometheus.Desc) {}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descGeneration, float64(st.Generation))
	for _, s := range st.Shards {
		gauge(descCircuit, b2f(s.Open), s.Name)
		gauge(descUp, b2f(s.Up), s.Name)
		gauge(descShare, s.Share, s.Name)
		gauge(descL1, b2f(s.L1), s.Name)
	}
	var emb EmbeddedState
	if st.Embedded != nil {
		emb = *st.Embedded
	}
	gauge(descEmbBytes, float64(emb.Bytes))
	gauge(descEmbEntries, float64(emb.Entries))
	gauge(descEmbMax, float64(emb.MaxBytes))
	for _, p := range st.Plugins {
		s := p.Stats
		for i, h := range s.Hooks {
			counter(descPlCalls, h.Calls, p.Name, Hooks[i])
			counter(descPlFaults, h.Faults, p.Name, Hooks[i])
			counter(descPlDeclined, h.Declined, p.Name, Hooks[i])
		}
		counter(descPlSuspends, s.Suspensions, p.Name)
		counter(descPlSuspCall, s.Suspended, p.Name)
		counter(descPlCreated, s.Instantiated, p.Name)
		counter(descPlKinds, s.Timeouts, p.Name, "timeout")
		counter(descPlKinds, s.Traps, p.Name, "trap")
		counter(descPlKinds, s.OutOfMemory, p.Name, "memory")
		counter(descPlKinds, s.ABIViolations, p.Name, "abi")
		counter(descPlBusy, s.Busy, p.Name)
		counter(descPlMemoHit, s.MemoHits, p.Name)
		counter(descPlMemoMiss, s.MemoMisses, p.Name)
		gauge(descPlInst, float64(s.Instances), p.Name)
	}
	collectOrigins(ch, st.Origins)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// PluginCall records the duration of one guest call. It resolves the
// child per call (a guest call costs microseconds; the lookup, tens of
// nanoseconds).
func (m *Metrics) PluginCall(plugin, hook string, d time.Duration) {
	m.PluginDuration.WithLabelValues(plugin, hook).Observe(d.Seconds())
}
