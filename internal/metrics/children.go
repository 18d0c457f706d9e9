package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Methods are the values of the method label: the methods of RFC 9110 and
// PATCH; anything else is counted as "_OTHER" (the OpenTelemetry
// convention), so that a client cannot mint label values.
var Methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "_OTHER"}

// MethodIndex returns the index of method in Methods.
func MethodIndex(method string) uint8 {
	switch method {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	case "TRACE":
		return 7
	case "CONNECT":
		return 8
	}
	return 9
}

// cow is a map read without locks and written by copying: for children
// that are created once and then read on every request.
type cow[K comparable, V any] struct {
	mu sync.Mutex
	p  atomic.Pointer[map[K]V]
}

func (c *cow[K, V]) get(k K, create func() V) V {
	if m := c.p.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.p.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	v := create()
	next[k] = v
	c.p.Store(&next)
	return v
}

func lenOf[K comparable, V any](m *map[K]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// RouteCounters are one route's children of the request counter and
// origin histogram. Inc costs two map loads and an atomic add once the
// (method, outcome, code) combination has been seen.
type RouteCounters struct {
	m        *Metrics
	route    string
	outcomes []string

	// Origin is the route's child of the origin histogram.
	Origin prometheus.Observer

	reqs cow[reqKey, prometheus.Counter]
}

type reqKey struct {
	method, outcome uint8
	code            uint16
}

// Route returns the counters of the route named route, the same for
// every call with that name; outcomes names the values of the cache label
// by index (the first call's is kept).
func (m *Metrics) Route(route string, outcomes []string) *RouteCounters {
	return m.routes.get(route, func() *RouteCounters {
		return &RouteCounters{m: m, route: route, outcomes: outcomes, Origin: m.OriginDuration.WithLabelValues(route)}
	})
}

// Name returns the route's label value.
func (rc *RouteCounters) Name() string { return rc.route }

// Inc counts one request.
func (rc *RouteCounters) Inc(method string, outcome uint8, code int) {
	k := reqKey{MethodIndex(method), outcome, uint16(min(max(code, 0), 999))}
	rc.reqs.get(k, func() prometheus.Counter {
		return rc.m.Requests.WithLabelValues(rc.route, Methods[k.method], strconv.Itoa(int(k.code)), rc.outcomes[k.outcome])
	}).Inc()
}

// Prepare creates the children of (method, outcome, code) so that they
// are exported, at zero, before the first such request.
func (rc *RouteCounters) Prepare(method string, outcome uint8, code int) {
	k := reqKey{MethodIndex(method), outcome, uint16(code)}
	rc.reqs.get(k, func() prometheus.Counter {
		return rc.m.Requests.WithLabelValues(rc.route, Methods[k.method], strconv.Itoa(code), rc.outcomes[k.outcome])
	})
}

// shardKey names one shard command's children.
type shardKey struct{ shard, cmd string }

type shardChildren struct {
	dur  prometheus.Observer
	errs prometheus.Counter
}

// Shards records Valkey round trips by shard and command.
type Shards struct {
	m  *Metrics
	ch cow[shardKey, shardChildren]
}

// Shards returns the recorder of shard round trips.
func (m *Metrics) Shards() *Shards { return &Shards{m: m} }

// Command records one round trip; a non-nil err counts a shard error.
func (s *Shards) Command(shard, cmd string, d time.Duration, err error) {
	c := s.ch.get(shardKey{shard, cmd}, func() shardChildren {
		return shardChildren{s.m.ShardDuration.WithLabelValues(shard, cmd), s.m.ShardErrors.WithLabelValues(shard)}
	})
	c.dur.Observe(d.Seconds())
	if err != nil {
		c.errs.Inc()
	}
}
