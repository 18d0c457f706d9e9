package admin

import (
	"sync"
	"time"

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

// startSampler samples the hit ratio every historyInterval until Close.
func (a *Admin) startSampler() {
	m := a.v.Metrics()
	a.stopped.Add(1)
	go func() {
		defer a.stopped.Done()
		t := time.NewTicker(historyInterval)
		defer t.Stop()
		a.hist.sample(m, time.Now())
		for {
			select {
			case <-a.stop:
				return
			case now := <-t.C:
				a.hist.sample(m, now)
			}
		}
	}()
}

// Close stops the hit-ratio sampler and waits for it. The handler still
// answers; its chart no longer moves.
func (a *Admin) Close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	a.stopped.Wait()
}
