package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ProbeFunc checks one node; nil means healthy. It must honour ctx.
type ProbeFunc func(ctx context.Context, addr string) error

// TCPProbe is the default probe: a TCP connect.
func TCPProbe(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// State is a node's health.
type State int32

const (
	// Up nodes take traffic. New nodes start up, and the first probe
	// round runs at once.
	Up State = iota
	// Down nodes take none.
	Down
)

func (s State) String() string {
	if s == Down {
		return "down"
	}
	return "up"
}

// Options configure a Checker. Zero values take the defaults.
type Options struct {
	Cluster       string        // label for logs and metrics
	Interval      time.Duration // default 5s
	Timeout       time.Duration // default min(Interval, 2s)
	FailThreshold int           // default 3
	RiseThreshold int           // default 1
	Probe         ProbeFunc     // default TCPProbe
	Logger        *slog.Logger
	Metrics       *Metrics // may be nil
}

// Event is one change of a node's state.
type Event struct {
	Cluster string
	Addr    string
	State   State
	Err     error // the failure that took it down, if any
}

// Status is a node's entry in a Snapshot.
type Status struct {
	Addr             string        `json:"addr"`
	State            string        `json:"state"`
	LastProbe        time.Time     `json:"last_probe,omitzero"`
	LastError        string        `json:"last_error"`
	LastErrorAt      time.Time     `json:"last_error_at,omitzero"`
	ProbeLatency     time.Duration `json:"-"`
	ProbeLatencyMS   float64       `json:"probe_latency_ms"`
	ConsecutiveFails int           `json:"consecutive_failures"`
	Since            time.Time     `json:"since"`
}

// Target is one node in the map. Its Up method is one atomic load, for
// the hot path.
type Target struct {
	addr    string
	c       *Checker
	down    atomic.Bool
	fails   atomic.Int32
	removed atomic.Bool
	proven  atomic.Bool // a probe passed or a request was answered, once

	mu          sync.Mutex // guards the fields below
	rises       int
	lastProbe   time.Time
	lastErr     error
	lastErrAt   time.Time
	latency     time.Duration
	since       time.Time
	probeActive bool
}

// Addr is the node's address.
func (t *Target) Addr() string { return t.addr }

// Up reports whether the node takes traffic.
func (t *Target) Up() bool { return !t.down.Load() }

// Proven reports whether the node ever passed a probe or answered a
// request. A new node is up before its first probe (so that it takes
// traffic at once), but it proves nothing about readiness until then.
func (t *Target) Proven() bool { return t.proven.Load() }

// ReportSuccess records a request that the node answered. It resets the
// failure count; it does not bring a down node back.
func (t *Target) ReportSuccess() {
	if !t.proven.Load() {
		t.proven.Store(true)
	}
	if t.fails.Load() != 0 {
		t.fails.Store(0)
	}
}

// ReportFailure records a request the node failed (connection refused,
// reset, timeout). FailThreshold of them in a row mark it down.
func (t *Target) ReportFailure(err error) {
	n := t.fails.Add(1)
	t.mu.Lock()
	t.lastErr, t.lastErrAt = err, time.Now()
	t.rises = 0
	t.mu.Unlock()
	if int(n) >= t.c.opts.FailThreshold {
		t.setState(Down, err)
	}
}

func (t *Target) probed(err error, latency time.Duration) {
	now := time.Now()
	t.mu.Lock()
	t.lastProbe = now
	t.latency = latency
	if err != nil {
		t.lastErr, t.lastErrAt = err, now
		t.rises = 0
		t.mu.Unlock()
		t.ReportFailureProbe(err)
		return
	}
	t.rises++
	rises := t.rises
	t.mu.Unlock()
	t.proven.Store(true)
	t.fails.Store(0)
	if t.down.Load() && rises >= t.c.opts.RiseThreshold {
		t.setState(Up, nil)
	}
}

// ReportFailureProbe counts a failed probe.
func (t *Target) ReportFailureProbe(err error) {
	n := t.fails.Add(1)
	if int(n) >= t.c.opts.FailThreshold {
		t.setState(Down, err)
	}
}

func (t *Target) setState(s State, err error) {
	if t.removed.Load() {
		return
	}
	if !t.down.CompareAndSwap(s == Up, s == Down) {
		return // already in that state
	}
	t.mu.Lock()
	t.since = time.Now()
	t.mu.Unlock()
	c := t.c
	if s == Down {
		c.log.Warn("node down", "node", t.addr, "error", errString(err))
	} else {
		c.log.Info("node up", "node", t.addr)
	}
	c.opts.Metrics.setState(c.opts.Cluster, t.addr, s)
	c.publish(Event{Cluster: c.opts.Cluster, Addr: t.addr, State: s, Err: err})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Checker is the health map of one cluster.
type Checker struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	targets map[string]*Target
	subs    map[int]func(Event)
	nextSub int
	kick    chan struct{}
}

// New returns a Checker with no targets.
func New(opts Options) *Checker {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = min(opts.Interval, 2*time.Second)
	}
	if opts.FailThreshold <= 0 {
		opts.FailThreshold = 3
	}
	if opts.RiseThreshold <= 0 {
		opts.RiseThreshold = 1
	}
	if opts.Probe == nil {
		opts.Probe = TCPProbe
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checker{
		opts:    opts,
		log:     opts.Logger.With("component", "health", "cluster", opts.Cluster),
		targets: map[string]*Target{},
		subs:    map[int]func(Event){},
		kick:    make(chan struct{}, 1),
	}
}

// Options returns the effective options.
func (c *Checker) Options() Options { return c.opts }

// Target returns the node's target, adding it when new.
func (c *Checker) Target(addr string) *Target {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.targets[addr]; ok {
		return t
	}
	t := &Target{addr: addr, c: c, since: time.Now()}
	c.targets[addr] = t
	c.opts.Metrics.initState(c.opts.Cluster, addr)
	select {
	case c.kick <- struct{}{}: // probe new nodes soon
	default:
	}
	return t
}

// SetTargets makes addrs the node set: new ones are added, others removed.
func (c *Checker) SetTargets(addrs []string) []*Target {
	out := make([]*Target, len(addrs))
	keep := map[string]bool{}
	for i, a := range addrs {
		out[i] = c.Target(a)
		keep[a] = true
	}
	c.mu.Lock()
	for a, t := range c.targets {
		if !keep[a] {
			t.removed.Store(true)
			delete(c.targets, a)
			c.opts.Metrics.remove(c.opts.Cluster, a)
		}
	}
	c.mu.Unlock()
	return out
}

// Subscribe calls fn on every state change, from the goroutine that saw
// it; fn must not block. The returned func unsubscribes.
func (c *Checker) Subscribe(fn func(Event)) (cancel func()) {
	c.mu.Lock()
	id := c.nextSub
	c.nextSub++
	c.subs[id] = fn
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}
}

func (c *Checker) publish(e Event) {
	c.mu.Lock()
	fns := make([]func(Event), 0, len(c.subs))
	for _, fn := range c.subs {
		fns = append(fns, fn)
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
}

func (c *Checker) list() []*Target {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := make([]*Target, 0, len(c.targets))
	for _, t := range c.targets {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].addr < ts[j].addr })
	return ts
}

// ProbeAll probes every node once, in parallel, and returns when all are
// done.
func (c *Checker) ProbeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range c.list() {
		t.mu.Lock()
		busy := t.probeActive
		t.probeActive = true
		t.mu.Unlock()
		if busy {
			continue // a slow probe of this node is still running
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.probe(ctx, t)
			t.mu.Lock()
			t.probeActive = false
			t.mu.Unlock()
		}()
	}
	wg.Wait()
}

func (c *Checker) probe(ctx context.Context, t *Target) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	start := time.Now()
	err := c.opts.Probe(ctx, t.addr)
	lat := time.Since(start)
	if err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("probe timed out after %v: %w", c.opts.Timeout, err)
	}
	if err != nil && errors.Is(err, context.Canceled) {
		return // shutting down
	}
	c.mu.Lock() // SetTargets removes a node's metrics under c.mu
	if t.removed.Load() {
		c.mu.Unlock()
		return // removed while probed: leave no series behind
	}
	c.opts.Metrics.observeProbe(c.opts.Cluster, t.addr, lat, err)
	c.mu.Unlock()
	if err != nil {
		c.log.Debug("probe failed", "node", t.addr, "error", err)
	}
	t.probed(err, lat)
}

// Run probes every node each Interval until ctx ends. The first round
// runs at once.
func (c *Checker) Run(ctx context.Context) error {
	tick := time.NewTicker(c.opts.Interval)
	defer tick.Stop()
	for {
		c.ProbeAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-c.kick:
		}
	}
}

// Snapshot returns every node's status, sorted by address.
func (c *Checker) Snapshot() []Status {
	ts := c.list()
	out := make([]Status, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Status())
	}
	return out
}

// LastError returns the last probe or traffic error, nil when there was none.
func (t *Target) LastError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

// Status returns the node's status.
func (t *Target) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Status{
		Addr:             t.addr,
		State:            State(boolToInt(t.down.Load())).String(),
		LastProbe:        t.lastProbe,
		ProbeLatency:     t.latency,
		ProbeLatencyMS:   float64(t.latency.Microseconds()) / 1000,
		ConsecutiveFails: int(t.fails.Load()),
		Since:            t.since,
	}
	if t.lastErr != nil {
		s.LastError = t.lastErr.Error()
		s.LastErrorAt = t.lastErrAt
	}
	return s
}

func boolToInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}
