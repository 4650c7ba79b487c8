package frontend

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the connection metrics of every frontend of a registry.
type Metrics struct {
	active   *prometheus.GaugeVec
	total    *prometheus.CounterVec
	closedBy *prometheus.CounterVec
	rejects  *prometheus.CounterVec
	panics   *prometheus.CounterVec
}

// NewMetrics registers the connection metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ambassador_frontend_connections",
			Help: "Open client connections.",
		}, []string{"frontend"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_frontend_connections_total",
			Help: "Client connections accepted.",
		}, []string{"frontend"}),
		closedBy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_frontend_connections_closed_total",
			Help: "Client connections closed, by reason.",
		}, []string{"frontend", "reason"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_frontend_connections_rejected_total",
			Help: "Client connections refused over the connection limit.",
		}, []string{"frontend"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_frontend_panics_total",
			Help: "Connection handlers that panicked (bugs); the connection was closed.",
		}, []string{"frontend"}),
	}
	reg.MustRegister(m.active, m.total, m.closedBy, m.rejects, m.panics)
	return m
}

func (m *Metrics) opened(fe string) {
	if m == nil {
		return
	}
	m.active.WithLabelValues(fe).Inc()
	m.total.WithLabelValues(fe).Inc()
}

func (m *Metrics) closed(fe string, r CloseReason) {
	if m == nil {
		return
	}
	m.active.WithLabelValues(fe).Dec()
	m.closedBy.WithLabelValues(fe, r.String()).Inc()
}

func (m *Metrics) rejected(fe string) {
	if m != nil {
		m.rejects.WithLabelValues(fe).Inc()
	}
}

func (m *Metrics) panicked(fe string) {
	if m != nil {
		m.panics.WithLabelValues(fe).Inc()
	}
}
