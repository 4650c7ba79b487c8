package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambassador-proxy/ambassador/hashring"
	"github.com/ambassador-proxy/ambassador/health"
)

// ErrNoNode means no node of the cluster is available.
var ErrNoNode = errors.New("cluster: no available node")

// UnavailableError is returned by PickKey when the node that owns the key
// is down (and auto-eject is off) or its breaker is open.
type UnavailableError struct {
	Addr   string
	Reason string // "down" (with the node's last error) or "circuit breaker open"
}

func (e *UnavailableError) Error() string {
	return "node " + e.Addr + " is unavailable (" + e.Reason + ")"
}

// Policy names.
const (
	RoundRobin       = "round_robin"
	LeastConnections = "least_connections"
	LatencyBased     = "latency_based"
)

// BreakerOptions configure the per-node circuit breaker.
type BreakerOptions struct {
	Enabled          bool
	FailureThreshold int
	OpenTimeout      time.Duration
}

// Options configure a Cluster.
type Options struct {
	Name             string // "redis", "kafka", ...
	Policy           string // default round_robin
	RegionPreference []string
	Breaker          BreakerOptions
	Ring             hashring.Config
	// AutoEject rehashes the keys of down nodes onto the up ones.
	AutoEject bool
	Health    health.Options
	Logger    *slog.Logger
}

// Cluster is the node set of one backend cluster.
type Cluster struct {
	opts    Options
	log     *slog.Logger
	checker *health.Checker

	mu    sync.Mutex // serialises Update and live-ring rebuilds
	state atomic.Pointer[state]
	live  atomic.Pointer[liveRing]

	subMu sync.Mutex
	subs  []func(added, removed []*Node)

	gen     atomic.Uint64 // see Generation
	genMu   sync.Mutex
	changed chan struct{} // closed at the next generation (see Changed)
}

type state struct {
	nodes []*Node
	ring  *hashring.Ring
	tiers []tier
}

// tier is the nodes of one preferred region (or all the rest), with a
// weighted round-robin sequence over them.
type tier struct {
	nodes []*Node
	seq   []*Node
	rr    *atomic.Uint64 // the tier's own round-robin position
}

type liveRing struct {
	ring  *hashring.Ring
	nodes []*Node
}

// New builds a cluster of the given nodes. It does not probe them until
// Run.
func New(specs []NodeSpec, opts Options) (*Cluster, error) {
	switch opts.Policy {
	case "":
		opts.Policy = RoundRobin
	case RoundRobin, LeastConnections, LatencyBased:
	default:
		return nil, fmt.Errorf("cluster %s: unknown policy %q", opts.Name, opts.Policy)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Health.Cluster = opts.Name
	if opts.Health.Logger == nil {
		opts.Health.Logger = opts.Logger
	}
	c := &Cluster{
		opts:    opts,
		log:     opts.Logger.With("component", "cluster", "cluster", opts.Name),
		checker: health.New(opts.Health),
	}
	if err := c.Update(specs); err != nil {
		return nil, err
	}
	c.checker.Subscribe(func(health.Event) { c.rebuildLive() })
	return c, nil
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.opts.Name }

// Policy is the balancing policy of Pick.
func (c *Cluster) Policy() string { return c.opts.Policy }

// Health returns the cluster's health map.
func (c *Cluster) Health() *health.Checker { return c.checker }

// Run probes the nodes until ctx ends.
func (c *Cluster) Run(ctx context.Context) error { return c.checker.Run(ctx) }

// Update replaces the node set: nodes with an unchanged address keep their
// state and counters. The new set, ring and tiers are built completely and
// swapped in at once; on error the old set stays.
func (c *Cluster) Update(specs []NodeSpec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.state.Load()
	byAddr := map[string]*Node{}
	if old != nil {
		for _, n := range old.nodes {
			byAddr[n.sp().Addr] = n
		}
	}
	seen := map[string]bool{}
	nodes := make([]*Node, 0, len(specs))
	ringNodes := make([]hashring.Node, 0, len(specs))
	for _, s := range specs {
		if s.Weight <= 0 {
			s.Weight = 1
		}
		if seen[s.Addr] {
			return fmt.Errorf("cluster %s: node %s listed twice", c.opts.Name, s.Addr)
		}
		seen[s.Addr] = true
		n := byAddr[s.Addr]
		if n == nil {
			n = &Node{}
			sp := s
			n.spec.Store(&sp)
			n.breaker.init(c.opts.Breaker.Enabled, c.opts.Breaker.FailureThreshold, c.opts.Breaker.OpenTimeout)
		} else if *n.sp() != s {
			// Same address, new weight, region or name: the same node, so
			// that its frontend data (which points back at it), breaker,
			// counters and latency carry over.
			sp := s
			n.spec.Store(&sp)
		}
		nodes = append(nodes, n)
		ringNodes = append(ringNodes, hashring.Node{Name: s.ringName(), Weight: s.Weight})
	}
	ring, err := hashring.New(ringNodes, c.opts.Ring)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.opts.Name, err)
	}
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.sp().Addr
	}
	targets := c.checker.SetTargets(addrs)
	for i, n := range nodes {
		if n.health == nil { // new: surviving nodes keep theirs, read by Pick
			n.health = targets[i]
		}
	}
	st := &state{nodes: nodes, ring: ring, tiers: buildTiers(nodes, c.opts.RegionPreference)}
	c.state.Store(st)
	c.rebuildLiveLocked()
	c.nextGeneration()

	// Added and removed go by address: a node whose weight, region or
	// name changed is neither, since its data (the frontend's pool) and
	// health carry over to its new Node.
	var added, removed []*Node
	if old != nil {
		for _, n := range old.nodes {
			if !seen[n.sp().Addr] {
				removed = append(removed, n)
			}
		}
		for _, n := range nodes {
			if byAddr[n.sp().Addr] == nil {
				added = append(added, n)
			}
		}
		if len(added)+len(removed) > 0 {
			c.log.Info("node set updated", "nodes", len(nodes), "added", len(added), "removed", len(removed))
		}
	}
	c.subMu.Lock()
	subs := append([]func(added, removed []*Node){}, c.subs...)
	c.subMu.Unlock()
	for _, fn := range subs {
		fn(added, removed)
	}
	return nil
}

// OnUpdate calls fn after every Update that changes the node set, with the
// nodes added and removed (a frontend closes the pools of removed nodes).
func (c *Cluster) OnUpdate(fn func(added, removed []*Node)) {
	c.subMu.Lock()
	c.subs = append(c.subs, fn)
	c.subMu.Unlock()
}

func buildTiers(nodes []*Node, prefs []string) []tier {
	var tiers []tier
	used := map[*Node]bool{}
	for _, region := range prefs {
		var in []*Node
		for _, n := range nodes {
			if n.sp().Region == region && !used[n] {
				in = append(in, n)
				used[n] = true
			}
		}
		if len(in) > 0 {
			tiers = append(tiers, tier{nodes: in, seq: weightedSeq(in), rr: new(atomic.Uint64)})
		}
	}
	var rest []*Node
	for _, n := range nodes {
		if !used[n] {
			rest = append(rest, n)
		}
	}
	if len(rest) > 0 {
		tiers = append(tiers, tier{nodes: rest, seq: weightedSeq(rest), rr: new(atomic.Uint64)})
	}
	return tiers
}

// weightedSeq interleaves nodes by weight with smooth weighted round
// robin (as nginx does): weights 5,1,1 give a a b a c a a, not a a a a a b c.
func weightedSeq(nodes []*Node) []*Node {
	g := 0
	for _, n := range nodes {
		g = gcd(g, n.sp().Weight)
	}
	total := 0
	w := make([]int, len(nodes))
	for i, n := range nodes {
		w[i] = n.sp().Weight / g
		total += w[i]
	}
	const maxSeq = 4096
	if total > maxSeq { // scale down, keeping every node at least once
		scaled := 0
		for i := range w {
			w[i] = max(1, w[i]*maxSeq/total)
			scaled += w[i]
		}
		total = scaled
	}
	cur := make([]int, len(nodes))
	seq := make([]*Node, 0, total)
	for range total {
		best := 0
		for i := range nodes {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, nodes[best])
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (c *Cluster) rebuildLive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rebuildLiveLocked()
}

func (c *Cluster) rebuildLiveLocked() {
	if !c.opts.AutoEject {
		return
	}
	st := c.state.Load()
	var up []*Node
	var rn []hashring.Node
	for _, n := range st.nodes {
		if n.health.Up() {
			up = append(up, n)
			rn = append(rn, hashring.Node{Name: n.sp().ringName(), Weight: n.sp().Weight})
		}
	}
	r, err := hashring.New(rn, c.opts.Ring)
	if err != nil { // cannot happen: the same config built the full ring
		c.log.Error("rebuild live ring", "error", err)
		return
	}
	c.live.Store(&liveRing{ring: r, nodes: up})
	c.nextGeneration()
}

func (c *Cluster) nextGeneration() {
	c.genMu.Lock()
	c.gen.Add(1)
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	c.genMu.Unlock()
}

// Changed returns a channel closed at the next change of Generation.
func (c *Cluster) Changed() <-chan struct{} {
	c.genMu.Lock()
	defer c.genMu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// Generation changes whenever the node set or the placement of keys may
// have changed (an Update; with AutoEject, a node going down or up): what
// was placed by an earlier generation may belong elsewhere now.
func (c *Cluster) Generation() uint64 { return c.gen.Load() }

// Nodes returns the current node set, in configured order.
func (c *Cluster) Nodes() []*Node { return c.state.Load().nodes }

// PickKey returns the node the ring places key on. When that node is down
// (or its breaker open) the error is an *UnavailableError naming it, and
// the node is returned too; with AutoEject the key goes to the ring of the
// up nodes instead.
func (c *Cluster) PickKey(key []byte) (*Node, error) {
	if c.opts.AutoEject {
		lr := c.live.Load()
		i := lr.ring.Pick(key)
		if i < 0 {
			return nil, ErrNoNode
		}
		n := lr.nodes[i]
		// The breaker holds keyed commands too (it does not move keys:
		// only the health checks eject a node).
		if n.breaker.enabled && !n.breaker.admit(time.Now().UnixNano(), trialWindow) {
			return n, &UnavailableError{Addr: n.sp().Addr, Reason: "circuit breaker open"}
		}
		return n, nil
	}
	st := c.state.Load()
	i := st.ring.Pick(key)
	if i < 0 {
		return nil, ErrNoNode
	}
	n := st.nodes[i]
	if !n.health.Up() {
		reason := "down"
		if err := n.health.LastError(); err != nil {
			reason += ": " + err.Error() // why, for the client's error reply
		}
		return n, &UnavailableError{Addr: n.sp().Addr, Reason: reason}
	}
	if n.breaker.enabled && !n.breaker.admit(time.Now().UnixNano(), trialWindow) {
		return n, &UnavailableError{Addr: n.sp().Addr, Reason: "circuit breaker open"}
	}
	return n, nil
}

// Pick returns a node chosen by the balancing policy among the available
// nodes of the most preferred region that has one.
func (c *Cluster) Pick() (*Node, error) {
	st := c.state.Load()
	now := time.Now().UnixNano()
	for i := range st.tiers {
		if n := c.pickIn(&st.tiers[i], now); n != nil {
			return n, nil
		}
	}
	return nil, ErrNoNode
}

func (c *Cluster) pickIn(t *tier, now int64) *Node {
	switch c.opts.Policy {
	case LeastConnections:
		if n := leastLoaded(t.nodes, now, t.rr.Add(1)); n != nil && n.breaker.admit(now, 0) {
			return n
		}
	case LatencyBased:
		if n := powerOfTwo(t.nodes, now); n != nil && n.breaker.admit(now, 0) {
			return n
		}
	}
	// round robin, and the fallback of the others. A slot of a node that
	// cannot take the request is skipped by drawing the next slot from
	// the tier's counter, so that its share is spread over the others by
	// weight rather than handed to the node after it.
	seq := t.seq
	l := uint64(len(seq))
	for range l {
		n := seq[t.rr.Add(1)%l]
		if n.eligible(now) && n.breaker.admit(now, 0) {
			return n
		}
	}
	return nil
}

// leastLoaded returns the eligible node with the fewest active requests
// per unit of weight; ties (an idle cluster: all at 0) go to one of them
// at random in proportion to its weight, so that weights hold there too.
func leastLoaded(nodes []*Node, now int64, start uint64) *Node {
	var best *Node
	var bestScore float64
	tiedWeight := 0
	l := uint64(len(nodes))
	for i := range l {
		n := nodes[(start+i)%l]
		if !n.eligible(now) {
			continue
		}
		w := n.sp().Weight
		score := float64(n.active.Load()) / float64(w)
		switch {
		case best == nil || score < bestScore:
			best, bestScore, tiedWeight = n, score, w
		case score == bestScore:
			// weighted reservoir choice among the tied
			tiedWeight += w
			if rand.IntN(tiedWeight) < w {
				best = n
			}
		}
	}
	return best
}

// powerOfTwo draws two eligible nodes at random and returns the one with
// the lower cost: latency EWMA times (active+1), per unit of weight. A
// node with no sample yet costs 0, so new nodes get measured.
func powerOfTwo(nodes []*Node, now int64) *Node {
	l := len(nodes)
	if l == 0 {
		return nil
	}
	if l == 1 {
		if nodes[0].eligible(now) {
			return nodes[0]
		}
		return nil
	}
	var a, b *Node
	for range 4 { // a few random draws, then a scan
		i, j := rand.IntN(l), rand.IntN(l-1)
		if j >= i {
			j++
		}
		if nodes[i].eligible(now) {
			a = nodes[i]
		}
		if nodes[j].eligible(now) {
			b = nodes[j]
		}
		if a != nil && b != nil {
			break
		}
	}
	if a == nil && b == nil {
		for _, n := range nodes {
			if n.eligible(now) {
				return n
			}
		}
		return nil
	}
	if a == nil {
		return b
	}
	if b == nil || a == b {
		return a
	}
	if cost(b, now) < cost(a, now) {
		return b
	}
	return a
}

// latencyHalfLife: a node's latency counts half as much for each half
// second without a new sample, after the first. A node that was slow once loses every draw, so
// gets no request that would measure it again: without the decay it was
// never picked again for keyless commands; with it, it is tried again
// within seconds, and a node still slow is measured slow and left again.
const latencyHalfLife = float64(500 * time.Millisecond)

func cost(n *Node, now int64) float64 {
	lat := float64(n.Latency())
	if age := float64(now - n.sampledAt.Load()); age > latencyHalfLife && lat > 0 {
		lat *= math.Exp2(-(age - latencyHalfLife) / latencyHalfLife)
	}
	return lat * float64(n.active.Load()+1) / float64(n.sp().Weight)
}

// Ready returns nil when at least one node is up and has passed a probe
// (or answered a request): nodes start up, so that they take traffic
// before their first probe, but an unreachable node must not make the
// cluster ready until it fails enough probes to be marked down.
func (c *Cluster) Ready() error {
	unproven := false
	for _, n := range c.state.Load().nodes {
		if n.health.Up() {
			if n.health.Proven() {
				return nil
			}
			unproven = true
		}
	}
	if unproven {
		return fmt.Errorf("cluster %s: no node has passed a health probe yet", c.opts.Name)
	}
	return fmt.Errorf("cluster %s: no healthy node", c.opts.Name)
}

// Snapshot returns every node's status, in configured order.
func (c *Cluster) Snapshot() []Status {
	nodes := c.state.Load().nodes
	out := make([]Status, len(nodes))
	for i, n := range nodes {
		out[i] = n.Status()
	}
	return out
}
