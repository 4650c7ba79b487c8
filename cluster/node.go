package cluster

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/ambassador-proxy/ambassador/health"
)

// NodeSpec describes one node of a cluster.
type NodeSpec struct {
	Addr   string
	Weight int    // >= 1
	Region string // optional
	Name   string // placed on the ring; default Addr
}

func (s NodeSpec) ringName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Addr
}

// Node is one backend node. Its counters are updated by the frontends
// through Begin/End.
type Node struct {
	spec    atomic.Pointer[NodeSpec] // replaced by a reload that changes the weight, region or name
	health  *health.Target
	breaker breaker

	active    atomic.Int64
	requests  atomic.Uint64
	failures  atomic.Uint64
	ewmaNs    atomic.Uint64 // float64 bits of the latency EWMA in ns; 0 = no sample
	sampledAt atomic.Int64  // unix ns of the last latency sample
	data      atomic.Pointer[any]
}

func (n *Node) sp() *NodeSpec { return n.spec.Load() }

// Addr is the node's address.
func (n *Node) Addr() string { return n.sp().Addr }

// Spec returns the node's description.
func (n *Node) Spec() NodeSpec { return *n.sp() }

// Up reports whether the health map has the node up.
func (n *Node) Up() bool { return n.health.Up() }

// Health returns the node's entry in the health map, for passive reports.
func (n *Node) Health() *health.Target { return n.health }

// Active is the number of requests (or connections) in flight.
func (n *Node) Active() int64 { return n.active.Load() }

// Latency is the EWMA of observed latency; 0 before the first sample.
func (n *Node) Latency() time.Duration {
	return time.Duration(math.Float64frombits(n.ewmaNs.Load()))
}

// eligible: up and not held open by its breaker.
func (n *Node) eligible(now int64) bool {
	return n.health.Up() && n.breaker.mayTry(now)
}

// AddActive counts n requests starting (n > 0) or ending on the node, for
// multiplexed connections that count them in batches.
func (n *Node) AddActive(d int64) { n.active.Add(d) }

// Begin counts a request (or a connection) starting on the node.
func (n *Node) Begin() { n.active.Add(1) }

// End counts it finished: latency feeds the EWMA, err the passive health
// report and the circuit breaker. Pass a nil err for a request the node
// answered, even with a protocol-level error reply.
func (n *Node) End(latency time.Duration, err error) {
	n.active.Add(-1)
	n.Observe(latency, err)
}

// Observe records a result without touching the active count (for
// multiplexed connections, where requests are not counted one by one).
func (n *Node) Observe(latency time.Duration, err error) {
	n.requests.Add(1)
	if err != nil {
		n.failures.Add(1)
		n.health.ReportFailure(err)
		n.breaker.failure(time.Now().UnixNano())
		return
	}
	n.health.ReportSuccess()
	n.breaker.success()
	if latency > 0 {
		n.observeLatency(latency)
	}
}

// ObserveSuccess records count requests the node answered at once (a
// multiplexed connection's read), with one latency sample.
func (n *Node) ObserveSuccess(count int, latency time.Duration) {
	n.requests.Add(uint64(count))
	n.health.ReportSuccess()
	n.breaker.success()
	if latency > 0 {
		n.observeLatency(latency)
	}
}

const ewmaAlpha = 0.2

func (n *Node) observeLatency(d time.Duration) {
	n.sampledAt.Store(time.Now().UnixNano())
	v := float64(d)
	for {
		old := n.ewmaNs.Load()
		cur := math.Float64frombits(old)
		next := v
		if old != 0 {
			next = cur + ewmaAlpha*(v-cur)
		}
		if n.ewmaNs.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// Status is a node's entry in the /nodes report.
type Status struct {
	health.Status
	Weight            int     `json:"weight"`
	Region            string  `json:"region,omitempty"`
	Name              string  `json:"name,omitempty"`
	ActiveConnections int64   `json:"active_connections"`
	Requests          uint64  `json:"requests"`
	Failures          uint64  `json:"failures"`
	LatencyMS         float64 `json:"latency_ms"`
	Breaker           string  `json:"circuit_breaker,omitempty"`
}

// Status returns the node's status for the admin endpoint.
func (n *Node) Status() Status {
	s := Status{
		Status:            n.health.Status(),
		Weight:            n.sp().Weight,
		Region:            n.sp().Region,
		Name:              n.sp().Name,
		ActiveConnections: n.active.Load(),
		Requests:          n.requests.Load(),
		Failures:          n.failures.Load(),
		LatencyMS:         float64(n.Latency().Microseconds()) / 1000,
	}
	if n.breaker.enabled {
		s.Breaker = n.breaker.stateName(time.Now().UnixNano())
	}
	return s
}

// Data returns the frontend's per-node state set with SetData (its
// connection pool), or nil.
func (n *Node) Data() any {
	if p := n.data.Load(); p != nil {
		return *p
	}
	return nil
}

// SetData stores the frontend's per-node state.
func (n *Node) SetData(v any) { n.data.Store(&v) }

// CompareAndSetData stores v if no state is set yet and returns the state
// in place afterwards.
func (n *Node) CompareAndSetData(v any) any {
	if n.data.CompareAndSwap(nil, &v) {
		return v
	}
	return *n.data.Load()
}
