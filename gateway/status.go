package gateway

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgecache/edgecache/internal/metrics"
)

// The status page's hit-ratio chart: one sample every historyInterval,
// historySize of them (ten minutes).
const (
	historyInterval = 5 * time.Second
	historySize     = 120
)

// history is a ring of hit-ratio samples, taken off the request path from
// the request and hit counters.
type history struct {
	mu     sync.Mutex
	points []HistoryPoint // ring, oldest at next once full
	next   int
	full   bool
	last   counts // cumulative counts at the previous sample
	primed bool
}

// counts are cumulative request counts, read from the metrics.
type counts struct{ l1, l2, lookups float64 }

// HistoryPoint is one interval of the hit-ratio chart: requests that the
// cache could answer (every outcome but bypass and no-route) and how many
// of them each tier served.
type HistoryPoint struct {
	At       time.Time `json:"at"`
	Requests float64   `json:"requests"`
	HitsL1   float64   `json:"hits_l1"`
	HitsL2   float64   `json:"hits_l2"`
}

func newHistory(n int) *history { return &history{points: make([]HistoryPoint, n)} }

// cacheableOutcomes are the cache label values counted as lookups.
var cacheableOutcomes = []string{"hit", "stale", "revalidated", "miss", "no-store", "error"}

func readCounts(m *metrics.Metrics) counts {
	by := m.RequestsBy("cache")
	c := counts{l1: metrics.CounterValue(m.HitsL1), l2: metrics.CounterValue(m.HitsL2)}
	for _, o := range cacheableOutcomes {
		c.lookups += by[o]
	}
	return c
}

// sample records the interval since the previous sample.
func (h *history) sample(m *metrics.Metrics, now time.Time) {
	c := readCounts(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.primed {
		h.last, h.primed = c, true
		return
	}
	h.points[h.next] = HistoryPoint{At: now, Requests: c.lookups - h.last.lookups, HitsL1: c.l1 - h.last.l1, HitsL2: c.l2 - h.last.l2}
	h.last = c
	h.next = (h.next + 1) % len(h.points)
	h.full = h.full || h.next == 0
}

// Points returns the samples, oldest first.
func (h *history) Points() []HistoryPoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]HistoryPoint{}, h.points[:h.next]...)
	}
	return append(append([]HistoryPoint{}, h.points[h.next:]...), h.points[:h.next]...)
}

// metricsState is what the scrape-time collector exports.
func (g *Gateway) metricsState() metrics.State {
	gen := g.gen.Load()
	if gen == nil {
		return metrics.State{}
	}
	st := metrics.State{Generation: gen.ID, Plugins: g.pluginStates(gen), Origins: gen.poolStats()}
	if gen.shards != nil {
		m := gen.shards.Map()
		for i, s := range gen.shards.Shards() {
			st.Shards = append(st.Shards, metrics.ShardState{Name: s.Name, Up: s.Healthy(), Open: s.Open(), Share: m.Share(i), L1: s.L1Off() == ""})
		}
	}
	if gen.mem != nil {
		st.Embedded = &metrics.EmbeddedState{Entries: gen.mem.Len(), Bytes: gen.mem.Bytes(), MaxBytes: gen.Config.Embedded.MaxBytes}
	}
	return st
}

// pluginStates returns the counters of gen's WASM plugins, by name.
func (g *Gateway) pluginStates(gen *Generation) []metrics.PluginState {
	out := make([]metrics.PluginState, 0, len(gen.plugins))
	for name, p := range gen.plugins {
		out = append(out, metrics.PluginState{Name: name, Stats: p.Stats()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// readyz answers the traffic listener's readiness probe: 200 when a
// generation is loaded and either the embedded store is in use or at
// least one shard answers (connected, breaker closed); 503 otherwise.
// A gateway with some shards down still serves every request (those keys
// go to the origin), so taking it out of rotation would only move load;
// with every shard down it would send all traffic to the origins, and a
// load balancer should prefer another gateway.
func (g *Gateway) readyz(c echo.Context) error {
	gen := g.gen.Load()
	if gen == nil {
		return c.String(http.StatusServiceUnavailable, "not ready: no configuration loaded\n")
	}
	if gen.shards == nil {
		return c.String(http.StatusOK, "ready: embedded store\n")
	}
	var down []string
	for _, s := range gen.shards.Shards() {
		if !s.Healthy() {
			down = append(down, s.Name)
		}
	}
	n := len(gen.shards.Shards())
	if len(down) == n {
		return c.String(http.StatusServiceUnavailable, "not ready: no shard answers\n")
	}
	if len(down) > 0 {
		sort.Strings(down)
		return c.String(http.StatusOK, "ready: shards down: "+joinNames(down)+"\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

func joinNames(s []string) string {
	out := ""
	for i, n := range s {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
