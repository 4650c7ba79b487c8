package health

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the health map's Prometheus metrics, shared by every cluster
// of a registry (labelled by cluster and node).
type Metrics struct {
	up          *prometheus.GaugeVec
	probe       *prometheus.HistogramVec
	probeErrors *prometheus.CounterVec
	transitions *prometheus.CounterVec
}

// NewMetrics registers the health metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ambassador_health_node_up",
			Help: "1 when the node takes traffic, 0 when it is down.",
		}, []string{"cluster", "node"}),
		probe: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ambassador_health_probe_duration_seconds",
			Help:    "Duration of active health probes.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"cluster", "node"}),
		probeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_health_probe_failures_total",
			Help: "Failed active health probes.",
		}, []string{"cluster", "node"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_health_transitions_total",
			Help: "Node state changes, by the state entered.",
		}, []string{"cluster", "node", "state"}),
	}
	reg.MustRegister(m.up, m.probe, m.probeErrors, m.transitions)
	return m
}

func (m *Metrics) setState(cluster, node string, s State) {
	if m == nil {
		return
	}
	v := 1.0
	if s == Down {
		v = 0
	}
	m.up.WithLabelValues(cluster, node).Set(v)
	m.transitions.WithLabelValues(cluster, node, s.String()).Inc()
}

// initState exports a new node's gauge (up, as nodes start) without
// counting a transition: none happened.
func (m *Metrics) initState(cluster, node string) {
	if m == nil {
		return
	}
	m.up.WithLabelValues(cluster, node).Set(1)
}

func (m *Metrics) remove(cluster, node string) {
	if m == nil {
		return
	}
	m.up.DeleteLabelValues(cluster, node)
	m.probe.DeleteLabelValues(cluster, node)
	m.probeErrors.DeleteLabelValues(cluster, node)
	m.transitions.DeletePartialMatch(prometheus.Labels{"cluster": cluster, "node": node})
}

func (m *Metrics) observeProbe(cluster, node string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.probe.WithLabelValues(cluster, node).Observe(d.Seconds())
	if err != nil {
		m.probeErrors.WithLabelValues(cluster, node).Inc()
	}
}
