package cluster

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the node counters of every registered cluster at
// scrape time, so the hot path pays no metric updates of its own.
type Collector struct {
	mu       sync.Mutex
	clusters []*Cluster

	active, requests, failures, latency, breaker *prometheus.Desc
}

// NewCollector registers a Collector on reg.
func NewCollector(reg prometheus.Registerer) *Collector {
	l := []string{"cluster", "node"}
	col := &Collector{
		active:   prometheus.NewDesc("ambassador_cluster_node_active", "Requests or connections in flight on the node.", l, nil),
		requests: prometheus.NewDesc("ambassador_cluster_node_requests_total", "Requests (or batches) the node finished.", l, nil),
		failures: prometheus.NewDesc("ambassador_cluster_node_failures_total", "Requests that failed at the node (connection errors, timeouts).", l, nil),
		latency:  prometheus.NewDesc("ambassador_cluster_node_latency_ewma_seconds", "EWMA of the node's observed latency.", l, nil),
		breaker:  prometheus.NewDesc("ambassador_cluster_node_breaker_open", "1 while the node's circuit breaker is open or half-open.", l, nil),
	}
	reg.MustRegister(col)
	return col
}

// Add exports c's nodes.
func (col *Collector) Add(c *Cluster) {
	col.mu.Lock()
	col.clusters = append(col.clusters, c)
	col.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (col *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- col.active
	ch <- col.requests
	ch <- col.failures
	ch <- col.latency
	ch <- col.breaker
}

// Collect implements prometheus.Collector.
func (col *Collector) Collect(ch chan<- prometheus.Metric) {
	col.mu.Lock()
	cs := append([]*Cluster(nil), col.clusters...)
	col.mu.Unlock()
	for _, c := range cs {
		for _, n := range c.Nodes() {
			lv := []string{c.opts.Name, n.sp().Addr}
			ch <- prometheus.MustNewConstMetric(col.active, prometheus.GaugeValue, float64(n.active.Load()), lv...)
			ch <- prometheus.MustNewConstMetric(col.requests, prometheus.CounterValue, float64(n.requests.Load()), lv...)
			ch <- prometheus.MustNewConstMetric(col.failures, prometheus.CounterValue, float64(n.failures.Load()), lv...)
			ch <- prometheus.MustNewConstMetric(col.latency, prometheus.GaugeValue, n.Latency().Seconds(), lv...)
			open := 0.0
			if n.breaker.enabled && n.breaker.openUntil.Load() != 0 {
				open = 1
			}
			ch <- prometheus.MustNewConstMetric(col.breaker, prometheus.GaugeValue, open, lv...)
		}
	}
}
