package origins

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"time"
)

// check is s's active health checker: one request every interval, until
// the pool closes. Only this goroutine counts s's check results.
func (p *Pool) check(s *server) {
	defer p.checkers.Done()
	h := p.opts.Health
	t := time.NewTicker(h.Interval)
	defer t.Stop()
	okRun, failRun := 0, 0
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		if p.probe(s) {
			okRun, failRun = okRun+1, 0
			if !s.up.Load() && okRun >= h.HealthyThreshold {
				s.up.Store(true)
			}
		} else {
			okRun, failRun = 0, failRun+1
			if s.up.Load() && failRun >= h.UnhealthyThreshold {
				s.up.Store(false)
			}
		}
	}
}

// probe makes one health check of s: an answer within the timeout with
// an expected status.
func (p *Pool) probe(s *server) bool {
	h := p.opts.Health
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	u := *s.url
	u.Path = h.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false
	}
	if h.Host != "" {
		req.Host = h.Host
	}
	req.Header["User-Agent"] = []string{"edgecache-health-check"}
	resp, err := p.tr.RoundTrip(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return slices.Contains(h.ExpectedStatus, resp.StatusCode)
}

// failed counts a 5xx response or a connect failure of s, and ejects s
// when they reach the threshold in a row, unless the pool already has its
// share of ejected servers.
func (p *Pool) failed(s *server) {
	o := p.opts.Outlier
	if o.ConsecutiveFailures < 0 || s.fails.Add(1) < int64(o.ConsecutiveFailures) {
		return
	}
	p.ejectMu.Lock()
	defer p.ejectMu.Unlock()
	now := time.Now()
	if s.ejectedUntil.Load() > now.UnixNano() {
		return // already out
	}
	ejected := 0
	for _, x := range p.servers {
		if x.ejectedUntil.Load() > now.UnixNano() {
			ejected++
		}
	}
	if ejected+1 > p.maxEjected() {
		return
	}
	// The ejection time grows with repeats; a server that stayed in for
	// MaxEjectionTime since its last ejection starts over.
	n := s.ejections.Load()
	if last := s.ejectedUntil.Load(); last != 0 && now.Sub(time.Unix(0, last)) > o.MaxEjectionTime {
		n = 0
	}
	n++
	s.ejections.Store(n)
	d := min(time.Duration(n)*o.BaseEjectionTime, o.MaxEjectionTime)
	s.ejectedUntil.Store(now.Add(d).UnixNano())
	s.fails.Store(0)
	s.ejectTotal.Add(1)
}

// maxEjected is how many servers may be ejected at once: the configured
// share, at least one of two or more, never all.
func (p *Pool) maxEjected() int {
	n := len(p.servers)
	if n < 2 {
		return 0
	}
	m := n * p.opts.Outlier.MaxEjectedPercent / 100
	return min(max(m, 1), n-1)
}

// LatencyBuckets are the upper bounds, in seconds, of the latency
// histogram of each server (time to response headers): a fast API (1 ms)
// to a timeout (10 s).
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// latency is a histogram over LatencyBuckets, counted with atomics.
type latency struct {
	counts [14]atomic.Uint64 // one per bucket, and +Inf
	sumNs  atomic.Int64
}

func (l *latency) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNs.Add(int64(d))
}

// PoolStats is a pool at one moment, for metrics and the status page.
type PoolStats struct {
	Name     string        `json:"name"`
	Balance  string        `json:"balance"`
	InFlight int64         `json:"in_flight"`
	Queued   int64         `json:"queued"`
	Max      int           `json:"max_concurrent"`
	Servers  []ServerStats `json:"servers"`
}

// ServerStats is one server of a pool.
type ServerStats struct {
	URL       string `json:"url"`
	Weight    int    `json:"weight"`
	Up        bool   `json:"up"`      // the active check's verdict (always true without checks)
	Ejected   bool   `json:"ejected"` // passively ejected now
	InFlight  int64  `json:"in_flight"`
	Requests  uint64 `json:"requests"` // attempts, retries included
	Failures  uint64 `json:"failures"` // connect failures, resets and 5xx
	Retries   uint64 `json:"retries"`  // attempts that were retries
	Ejections uint64 `json:"ejections"`
	// LatencyCounts are cumulative counts per LatencyBuckets bound (the
	// Prometheus histogram form); LatencyCount and LatencySum the total.
	LatencyCounts []uint64 `json:"-"`
	LatencyCount  uint64   `json:"-"`
	LatencySum    float64  `json:"-"`
}

// Stats returns the pool's state now.
func (p *Pool) Stats() PoolStats {
	st := PoolStats{Name: p.name, Balance: p.opts.Balance, InFlight: p.inflight.Load(), Queued: p.waiting.Load(), Max: p.opts.MaxConcurrent}
	now := time.Now().UnixNano()
	for _, s := range p.servers {
		ss := ServerStats{
			URL: s.url.String(), Weight: s.weight, Up: s.up.Load(), Ejected: s.ejectedUntil.Load() > now,
			InFlight: s.inflight.Load(), Requests: s.requests.Load(), Failures: s.failures.Load(),
			Retries: s.retries.Load(), Ejections: s.ejectTotal.Load(),
			LatencyCounts: make([]uint64, len(LatencyBuckets)),
			LatencySum:    time.Duration(s.lat.sumNs.Load()).Seconds(),
		}
		var cum uint64
		for i := range s.lat.counts {
			cum += s.lat.counts[i].Load()
			if i < len(LatencyBuckets) {
				ss.LatencyCounts[i] = cum
			}
		}
		ss.LatencyCount = cum
		st.Servers = append(st.Servers, ss)
	}
	return st
}
