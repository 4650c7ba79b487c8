package redis

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Redis frontend's Prometheus metrics. Command counts are
// plain atomics exported at scrape time.
type metrics struct {
	latency        *prometheus.HistogramVec
	clients        prometheus.Gauge
	protocolErrors prometheus.Counter
	authFailures   prometheus.Counter

	calls []atomic.Uint64                       // by route id
	obs   []atomic.Pointer[prometheus.Observer] // by route id
}

func (m *metrics) count(rt *route) { m.calls[rt.id].Add(1) }

func newMetrics() *metrics {
	return &metrics{
		calls: make([]atomic.Uint64, len(allRoutes)),
		obs:   make([]atomic.Pointer[prometheus.Observer], len(allRoutes)),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ambassador_redis_command_duration_seconds",
			Help:    "Time from reading a command to writing its reply (its pipelined batch), by command.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"command"}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ambassador_redis_clients",
			Help: "Connected Redis clients.",
		}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ambassador_redis_protocol_errors_total",
			Help: "Clients closed for breaking the protocol.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ambassador_redis_auth_failures_total",
			Help: "Failed AUTH and HELLO AUTH attempts.",
		}),
	}
}

func (m *metrics) register(reg prometheus.Registerer, f *Frontend) {
	reg.MustRegister(m.latency, m.clients, m.protocolErrors, m.authFailures, &collector{f: f})
}

// observe records the latency of one command.
func (m *metrics) observe(rt *route, d time.Duration) {
	o := m.obs[rt.id].Load()
	if o == nil {
		obs := m.latency.WithLabelValues(rt.name)
		m.obs[rt.id].Store(&obs)
		o = &obs
	}
	(*o).Observe(d.Seconds())
}

// collector exports command counts and per-node in-flight requests.
type collector struct{ f *Frontend }

var (
	descCalls    = prometheus.NewDesc("ambassador_redis_commands_total", "Commands run, by command.", []string{"command"}, nil)
	descInflight = prometheus.NewDesc("ambassador_redis_node_inflight_requests", "Requests sent to a node and not yet answered.", []string{"node"}, nil)
	descConns    = prometheus.NewDesc("ambassador_redis_node_connections", "Open backend connections to a node (shared and dedicated).", []string{"node"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCalls
	ch <- descInflight
	ch <- descConns
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, rt := range allRoutes {
		if n := c.f.metrics.calls[rt.id].Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(n), rt.name)
		}
	}
	for _, n := range c.f.cl.Nodes() {
		p, ok := n.Data().(*nodePool)
		if !ok {
			continue
		}
		inflight, conns := p.stats()
		ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(inflight), n.Addr())
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(conns), n.Addr())
	}
}

func (p *nodePool) stats() (inflight, conns int) {
	p.mu.Lock()
	var all []*backendConn
	for _, s := range p.shared {
		all = append(all, s...)
	}
	all = append(all, p.idle...)
	p.mu.Unlock()
	for _, bc := range all {
		bc.mu.Lock()
		inflight += len(bc.pending)
		if bc.conn != nil {
			conns++
		}
		bc.mu.Unlock()
	}
	return inflight, conns
}
