package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgecache/edgecache/origins"
)

// Origin pool metrics, per server (labels pool and server, the server's
// URL from the configuration) or per pool.
const (
	OriginUp             = "edgecache_origin_up"
	OriginEjected        = "edgecache_origin_ejected"
	OriginInFlight       = "edgecache_origin_in_flight"
	OriginQueueLength    = "edgecache_origin_queue_length"
	OriginRequestsTotal  = "edgecache_origin_requests_total"
	OriginFailuresTotal  = "edgecache_origin_failures_total"
	OriginRetriesTotal   = "edgecache_origin_retries_total"
	OriginEjectionsTotal = "edgecache_origin_ejections_total"
	OriginLatency        = "edgecache_origin_latency_seconds"
)

var (
	serverLabels     = []string{"pool", "server"}
	descOrUp         = prometheus.NewDesc(OriginUp, "1 if the origin server passes its active health checks (always 1 without checks).", serverLabels, nil)
	descOrEjected    = prometheus.NewDesc(OriginEjected, "1 while the origin server is ejected by passive outlier detection (consecutive 5xx or connect failures).", serverLabels, nil)
	descOrInFlight   = prometheus.NewDesc(OriginInFlight, "Requests at the origin server now (until their body is read).", serverLabels, nil)
	descOrQueue      = prometheus.NewDesc(OriginQueueLength, "Requests waiting for a slot of the pool's max_concurrent.", []string{"pool"}, nil)
	descOrRequests   = prometheus.NewDesc(OriginRequestsTotal, "Attempts sent to the origin server, retries included.", serverLabels, nil)
	descOrFailures   = prometheus.NewDesc(OriginFailuresTotal, "Attempts that failed at the origin server: connect failures, resets, 5xx.", serverLabels, nil)
	descOrRetries    = prometheus.NewDesc(OriginRetriesTotal, "Attempts that were retries of a failed attempt on another server of the pool.", serverLabels, nil)
	descOrEjections  = prometheus.NewDesc(OriginEjectionsTotal, "Times the origin server was ejected.", serverLabels, nil)
	descOrLatency    = prometheus.NewDesc(OriginLatency, "Time from sending a request to the origin server to its response headers (or failure).", serverLabels, nil)
	originBucketSize = len(origins.LatencyBuckets)
)

func collectOrigins(ch chan<- prometheus.Metric, pools []origins.PoolStats) {
	for _, p := range pools {
		ch <- prometheus.MustNewConstMetric(descOrQueue, prometheus.GaugeValue, float64(p.Queued), p.Name)
		for _, s := range p.Servers {
			l := []string{p.Name, s.URL}
			ch <- prometheus.MustNewConstMetric(descOrUp, prometheus.GaugeValue, b2f(s.Up), l...)
			ch <- prometheus.MustNewConstMetric(descOrEjected, prometheus.GaugeValue, b2f(s.Ejected), l...)
			ch <- prometheus.MustNewConstMetric(descOrInFlight, prometheus.GaugeValue, float64(s.InFlight), l...)
			ch <- prometheus.MustNewConstMetric(descOrRequests, prometheus.CounterValue, float64(s.Requests), l...)
			ch <- prometheus.MustNewConstMetric(descOrFailures, prometheus.CounterValue, float64(s.Failures), l...)
			ch <- prometheus.MustNewConstMetric(descOrRetries, prometheus.CounterValue, float64(s.Retries), l...)
			ch <- prometheus.MustNewConstMetric(descOrEjections, prometheus.CounterValue, float64(s.Ejections), l...)
			buckets := make(map[float64]uint64, originBucketSize)
			for i, ub := range origins.LatencyBuckets {
				if i < len(s.LatencyCounts) {
					buckets[ub] = s.LatencyCounts[i]
				}
			}
			ch <- prometheus.MustNewConstHistogram(descOrLatency, s.LatencyCount, s.LatencySum, buckets, l...)
		}
	}
}
