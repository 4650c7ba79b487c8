package kafka

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxKey bounds the per-key metric arrays; kmsg knows keys below it.
const maxKey = 128

// metrics are the Kafka frontend's Prometheus metrics. Per-key children
// are resolved once, so the hot path pays no label lookups.
type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	brokers   prometheus.Gauge
	partsOut  *prometheus.CounterVec
	partErrs  *prometheus.CounterVec
	reauths   *prometheus.CounterVec

	perKey [maxKey]keyMetrics
	bytesClientIn, bytesClientOut,
	bytesBackendIn, bytesBackendOut prometheus.Counter
}

type keyMetrics struct {
	requests prometheus.Counter
	parts    prometheus.Counter
	latency  prometheus.Observer
}

func apiName(key int16) string {
	if n := kmsg.NameForKey(key); n != "" && n != "Unknown" {
		return n
	}
	return "key" + strconv.Itoa(int(key))
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_kafka_requests_total",
			Help: "Client requests, by API.",
		}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ambassador_kafka_request_duration_seconds",
			Help:    "Time from reading a client request to its response being ready, by API.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_kafka_errors_total",
			Help: "Failures, by API and reason: backend (a broker connection failed), protocol (a client broke the protocol), unsupported (an API or version the ambassador does not handle), routing (no leader or coordinator known).",
		}, []string{"api", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_kafka_bytes_total",
			Help: "Bytes read and written, by side (client, backend) and direction (in: read by the ambassador, out: written by it).",
		}, []string{"side", "direction"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_kafka_metadata_refreshes_total",
			Help: "Backend metadata refreshes, by result.",
		}, []string{"result"}),
		brokers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ambassador_kafka_backend_brokers",
			Help: "Brokers in the last backend metadata.",
		}),
		partErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_kafka_partition_errors_total",
			Help: "Partition errors passed to clients in produce and fetch responses, by API and Kafka error (NOT_LEADER_OR_FOLLOWER after a leader moved, and so on).",
		}, []string{"api", "error"}),
		partsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_kafka_backend_requests_total",
			Help: "Requests sent to backend brokers (a split client request counts once per part), by API.",
		}, []string{"api"}),
		reauths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_kafka_backend_sasl_renewals_total",
			Help: "SASL sessions renewed on backend connections before the lifetime the broker gave them ended (KIP-368), by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.latency, m.errors, m.bytes, m.refreshes, m.brokers, m.partsOut, m.partErrs, m.reauths)
	for k := range m.perKey {
		if kmsg.RequestForKey(int16(k)) == nil {
			continue
		}
		name := apiName(int16(k))
		m.perKey[k] = keyMetrics{
			requests: m.requests.WithLabelValues(name),
			parts:    m.partsOut.WithLabelValues(name),
			latency:  m.latency.WithLabelValues(name),
		}
	}
	m.bytesClientIn = m.bytes.WithLabelValues("client", "in")
	m.bytesClientOut = m.bytes.WithLabelValues("client", "out")
	m.bytesBackendIn = m.bytes.WithLabelValues("backend", "in")
	m.bytesBackendOut = m.bytes.WithLabelValues("backend", "out")
	return m
}

func (m *metrics) key(k int16) *keyMetrics {
	if k < 0 || int(k) >= maxKey || m.perKey[k].requests == nil {
		return nil
	}
	return &m.perKey[k]
}

func (m *metrics) errorf(key int16, reason string) {
	m.errors.WithLabelValues(metricAPI(key), reason).Inc()
}

// metricAPI is an API's metric label: its name, "none" before a request
// is known (-1), "unknown" for a key kmsg does not know, so that a client
// sending made-up keys cannot mint label values.
func metricAPI(key int16) string {
	switch n := kmsg.NameForKey(key); {
	case key == -1:
		return "none"
	case n == "" || n == "Unknown":
		return "unknown"
	default:
		return n
	}
}

// partitionError counts a partition error passed to a client.
func (m *metrics) partitionError(key, code int16) {
	name := "UNKNOWN"
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			name = ke.Message
		}
	}
	m.partErrs.WithLabelValues(metricAPI(key), name).Inc()
}
