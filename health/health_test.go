package health_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ambassador-proxy/ambassador/health"
)

// fakeProbe answers each node's probes with the error set for it.
type fakeProbe struct {
	mu    sync.Mutex
	errs  map[string]error
	calls map[string]int
}

func newFakeProbe() *fakeProbe {
	return &fakeProbe{errs: map[string]error{}, calls: map[string]int{}}
}

func (f *fakeProbe) set(addr string, err error) {
	f.mu.Lock()
	f.errs[addr] = err
	f.mu.Unlock()
}

func (f *fakeProbe) count(addr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[addr]
}

func (f *fakeProbe) probe(_ context.Context, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[addr]++
	return f.errs[addr]
}

// events collects the events a subscriber gets.
type events struct {
	mu  sync.Mutex
	got []health.Event
	ch  chan health.Event
}

func subscribe(c *health.Checker) *events {
	e := &events{ch: make(chan health.Event, 100)}
	c.Subscribe(func(ev health.Event) {
		e.mu.Lock()
		e.got = append(e.got, ev)
		e.mu.Unlock()
		e.ch <- ev
	})
	return e
}

func (e *events) list() []health.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]health.Event(nil), e.got...)
}

var errRefused = errors.New("connect: connection refused")

func TestProbeFailuresMarkDownAndRiseBringsUp(t *testing.T) {
	fp := newFakeProbe()
	c := health.New(health.Options{Cluster: "redis", FailThreshold: 3, RiseThreshold: 2, Probe: fp.probe, Interval: time.Hour})
	a, b := c.Target("a:1"), c.Target("b:1")
	ev := subscribe(c)
	ev2 := subscribe(c)
	ctx := context.Background()

	if !a.Up() || !b.Up() {
		t.Fatal("new targets should start up")
	}
	fp.set("a:1", errRefused)
	for i := 1; i <= 2; i++ {
		c.ProbeAll(ctx)
		if !a.Up() {
			t.Fatalf("a is down after %d failed probes; threshold is 3", i)
		}
		if got := a.Status().ConsecutiveFails; got != i {
			t.Errorf("consecutive failures = %d, want %d", got, i)
		}
	}
	c.ProbeAll(ctx)
	if a.Up() {
		t.Fatal("a still up after 3 failed probes")
	}
	if !b.Up() {
		t.Fatal("b went down with a")
	}
	for _, e := range []*events{ev, ev2} {
		got := e.list()
		if len(got) != 1 || got[0].Addr != "a:1" || got[0].State != health.Down || got[0].Cluster != "redis" ||
			!errors.Is(got[0].Err, errRefused) {
			t.Fatalf("events = %+v, want one down event for a:1 with its error", got)
		}
	}
	st := a.Status()
	if st.State != "down" || !strings.Contains(st.LastError, "connection refused") || st.LastErrorAt.IsZero() {
		t.Errorf("status = %+v", st)
	}
	// more failures: no more events
	c.ProbeAll(ctx)
	if n := len(ev.list()); n != 1 {
		t.Errorf("%d events after another failure of a down node, want 1", n)
	}

	// rise: 2 passing probes
	fp.set("a:1", nil)
	c.ProbeAll(ctx)
	if a.Up() {
		t.Fatal("a up after 1 passing probe; rise threshold is 2")
	}
	fp.set("a:1", errRefused) // a failure in between restarts the count
	c.ProbeAll(ctx)
	fp.set("a:1", nil)
	c.ProbeAll(ctx)
	if a.Up() {
		t.Fatal("a up after fail, pass: the rise count should restart after a failure")
	}
	c.ProbeAll(ctx)
	if !a.Up() {
		t.Fatal("a still down after 2 passing probes in a row")
	}
	got := ev.list()
	if len(got) != 2 || got[1].State != health.Up || got[1].Addr != "a:1" || got[1].Err != nil {
		t.Fatalf("events = %+v, want down then up", got)
	}
	if st := a.Status(); st.State != "up" || st.ConsecutiveFails != 0 {
		t.Errorf("status after recovery = %+v", st)
	}
}

func TestPassiveReports(t *testing.T) {
	fp := newFakeProbe()
	c := health.New(health.Options{FailThreshold: 3, Probe: fp.probe, Interval: time.Hour})
	tg := c.Target("a:1")
	ev := subscribe(c)
	tg.ReportFailure(errRefused)
	tg.ReportFailure(errRefused)
	tg.ReportSuccess() // a success in between resets the count
	tg.ReportFailure(errRefused)
	tg.ReportFailure(errRefused)
	if !tg.Up() {
		t.Fatal("down after 2 consecutive failures; threshold is 3")
	}
	tg.ReportFailure(errors.New("read: connection reset by peer"))
	if tg.Up() {
		t.Fatal("still up after 3 consecutive traffic failures")
	}
	select {
	case e := <-ev.ch:
		if e.State != health.Down || !strings.Contains(e.Err.Error(), "reset") {
			t.Errorf("event %+v", e)
		}
	default:
		t.Fatal("no event for a passive down")
	}
	for range 10 {
		tg.ReportSuccess()
	}
	if tg.Up() {
		t.Fatal("traffic successes brought a down node back; only probes may")
	}
	if st := tg.Status(); !strings.Contains(st.LastError, "reset") {
		t.Errorf("last_error = %q, want the traffic error", st.LastError)
	}
	c.ProbeAll(context.Background()) // probe passes
	if !tg.Up() {
		t.Fatal("a passing probe did not bring the node back")
	}
}

// TestProbeTimeout: a probe that hangs until its context ends is cut off
// at Timeout and counted as a failure that says so.
func TestProbeTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	hang := func(ctx context.Context, addr string) error {
		if addr == "fast:1" {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	}
	c := health.New(health.Options{FailThreshold: 1, Timeout: timeout, Interval: time.Hour, Probe: hang})
	slow, fast := c.Target("slow:1"), c.Target("fast:1")
	start := time.Now()
	c.ProbeAll(context.Background())
	took := time.Since(start)
	if took < timeout || took > timeout+400*time.Millisecond {
		t.Errorf("ProbeAll took %v with a probe timeout of %v", took, timeout)
	}
	if slow.Up() || !fast.Up() {
		t.Errorf("slow up=%v fast up=%v; want the hanging node down, the other up", slow.Up(), fast.Up())
	}
	if st := slow.Status(); !strings.Contains(st.LastError, "timed out") || !strings.Contains(st.LastError, "100ms") {
		t.Errorf("last_error = %q, want it to say the probe timed out after 100ms", st.LastError)
	}
	// the default timeout is bounded by the interval
	if got := health.New(health.Options{Interval: 500 * time.Millisecond}).Options().Timeout; got != 500*time.Millisecond {
		t.Errorf("default timeout with a 500ms interval = %v", got)
	}
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := health.TCPProbe(ctx, addr); err != nil {
		t.Errorf("TCPProbe of a listening port: %v", err)
	}
	ln.Close()
	if err := health.TCPProbe(ctx, addr); err == nil {
		t.Error("TCPProbe of a closed port passed")
	}
}

func TestSetTargets(t *testing.T) {
	fp := newFakeProbe()
	reg := prometheus.NewRegistry()
	c := health.New(health.Options{Cluster: "kafka", FailThreshold: 1, Probe: fp.probe, Interval: time.Hour, Metrics: health.NewMetrics(reg)})
	ts := c.SetTargets([]string{"a:1", "b:1", "c:1"})
	if len(ts) != 3 || ts[1].Addr() != "b:1" {
		t.Fatalf("SetTargets returned %v", ts)
	}
	fp.set("b:1", errRefused)
	c.ProbeAll(context.Background())
	if ts[1].Up() {
		t.Fatal("b should be down")
	}
	ev := subscribe(c)
	// b survives with its state; a goes; d comes
	ts2 := c.SetTargets([]string{"b:1", "c:1", "d:1"})
	if ts2[0] != ts[1] || ts2[1] != ts[2] {
		t.Error("surviving targets were replaced")
	}
	if ts2[0].Up() {
		t.Error("b lost its down state across SetTargets")
	}
	var addrs []string
	for _, s := range c.Snapshot() {
		addrs = append(addrs, s.Addr)
	}
	if strings.Join(addrs, ",") != "b:1,c:1,d:1" {
		t.Errorf("snapshot addrs = %v", addrs)
	}
	// a removed target reports nothing any more
	ts[0].ReportFailure(errRefused)
	if n := len(ev.list()); n != 0 {
		t.Errorf("a removed target published %d events", n)
	}
	c.ProbeAll(context.Background())
	if fp.count("a:1") != 1 {
		t.Errorf("a removed target was probed again (%d probes)", fp.count("a:1"))
	}
	if got := seriesOf(t, reg, "a:1"); len(got) != 0 {
		t.Errorf("the removed node a:1 is still exported in %v", got)
	}
	if v, ok := nodeGauge(t, reg, "ambassador_health_node_up", "b:1"); !ok || v != 0 {
		t.Errorf("ambassador_health_node_up{node=b:1} = %v (exported %v), want 0", v, ok)
	}
	if v, ok := nodeGauge(t, reg, "ambassador_health_node_up", "d:1"); !ok || v != 1 {
		t.Errorf("ambassador_health_node_up{node=d:1} = %v (exported %v), want 1", v, ok)
	}
	// a node's creation is not a transition: c went through none, b one (down)
	for node, want := range map[string]int{"c:1": 0, "b:1": 1} {
		n := 0
		for _, s := range seriesOf(t, reg, node) {
			if strings.HasPrefix(s, "ambassador_health_transitions_total") {
				n++
			}
		}
		if n != want {
			t.Errorf("%s: %d transition series, want %d: %v", node, n, want, seriesOf(t, reg, node))
		}
	}
}

// nodeGauge returns the gauge name{node=node} and whether it is exported.
func nodeGauge(t *testing.T, reg *prometheus.Registry, name, node string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "node" && l.GetValue() == node {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// seriesOf lists the metric families that have a series for node.
func seriesOf(t *testing.T, reg *prometheus.Registry, node string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "node" && l.GetValue() == node {
					out = append(out, mf.GetName())
				}
			}
		}
	}
	return out
}

// TestRemovedDuringProbe: a node removed while its probe runs leaves no
// metrics behind once the probe ends.
func TestRemovedDuringProbe(t *testing.T) {
	reg := prometheus.NewRegistry()
	started, release := make(chan struct{}), make(chan struct{})
	probe := func(ctx context.Context, addr string) error {
		if addr == "a:1" {
			close(started)
			<-release
			return errRefused
		}
		return nil
	}
	c := health.New(health.Options{Cluster: "redis", FailThreshold: 1, Probe: probe, Interval: time.Hour, Timeout: 5 * time.Second, Metrics: health.NewMetrics(reg)})
	c.Target("a:1")
	c.Target("b:1")
	done := make(chan struct{})
	go func() { c.ProbeAll(context.Background()); close(done) }()
	<-started
	c.SetTargets([]string{"b:1"})
	close(release)
	<-done
	if got := seriesOf(t, reg, "a:1"); len(got) != 0 {
		t.Errorf("the node a:1, removed while probed, is still exported in %v", got)
	}
	if v, ok := nodeGauge(t, reg, "ambassador_health_node_up", "b:1"); !ok || v != 1 {
		t.Errorf("ambassador_health_node_up{node=b:1} = %v (exported %v), want 1", v, ok)
	}
}

func TestSnapshot(t *testing.T) {
	fp := newFakeProbe()
	c := health.New(health.Options{FailThreshold: 1, Probe: fp.probe, Interval: time.Hour})
	c.SetTargets([]string{"z:1", "a:1"})
	fp.set("z:1", errRefused)
	before := time.Now()
	c.ProbeAll(context.Background())
	snap := c.Snapshot()
	if len(snap) != 2 || snap[0].Addr != "a:1" || snap[1].Addr != "z:1" {
		t.Fatalf("snapshot not sorted by address: %+v", snap)
	}
	a, z := snap[0], snap[1]
	if a.State != "up" || a.LastError != "" || a.LastProbe.Before(before) {
		t.Errorf("a = %+v", a)
	}
	if z.State != "down" || z.LastError != errRefused.Error() || z.ConsecutiveFails != 1 || z.Since.Before(before) {
		t.Errorf("z = %+v", z)
	}
	if a.ProbeLatencyMS < 0 || a.ProbeLatency < 0 {
		t.Errorf("negative latency %+v", a)
	}
}

// TestRun: Run probes at once, then every interval, probes new targets
// soon after they are added, and returns when its context ends.
func TestRun(t *testing.T) {
	fp := newFakeProbe()
	const interval = 50 * time.Millisecond
	c := health.New(health.Options{FailThreshold: 2, Probe: fp.probe, Interval: interval})
	a := c.Target("a:1")
	fp.set("a:1", errRefused)
	ev := subscribe(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Run(ctx) }()

	select {
	case e := <-ev.ch:
		// down after 2 failed probes: the first at once, the second one
		// interval later
		if e.Addr != "a:1" || e.State != health.Down {
			t.Errorf("event %+v", e)
		}
		if took := time.Since(start); took > 2*interval+500*time.Millisecond {
			t.Errorf("down after %v; want about one interval (%v)", took, interval)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no down event from Run")
	}
	if a.Up() {
		t.Error("a up after the down event")
	}
	c.Target("b:1") // a new target is probed soon, not only at the next tick
	deadline := time.Now().Add(time.Second)
	for fp.count("b:1") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if fp.count("b:1") == 0 {
		t.Error("b:1 never probed")
	}
	fp.set("a:1", nil)
	select {
	case e := <-ev.ch:
		if e.State != health.Up {
			t.Errorf("event %+v, want up", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a never came back up")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	n := fp.count("a:1")
	time.Sleep(3 * interval)
	if fp.count("a:1") != n {
		t.Error("probes went on after Run returned")
	}
}

// TestRunCancelDuringProbe: Run returns promptly even while a probe that
// honours its context is in flight, and that probe does not count as a
// failure.
func TestRunCancelDuringProbe(t *testing.T) {
	started := make(chan struct{}, 1)
	probe := func(ctx context.Context, _ string) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	c := health.New(health.Options{FailThreshold: 1, Probe: probe, Interval: time.Hour, Timeout: time.Hour})
	a := c.Target("a:1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-started
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run did not return")
	}
	if !a.Up() || a.Status().LastError != "" {
		t.Errorf("a probe cancelled by shutdown counted as a failure: %+v", a.Status())
	}
}

// TestConcurrentReports exercises the hot path under -race.
func TestConcurrentReports(t *testing.T) {
	fp := newFakeProbe()
	c := health.New(health.Options{FailThreshold: 5, Probe: fp.probe, Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	ts := c.SetTargets([]string{"a:1", "b:1"})
	for i := range 8 {
		wg.Go(func() {
			for j := range 500 {
				tg := ts[(i+j)%2]
				if j%3 == 0 {
					tg.ReportFailure(errRefused)
				} else {
					tg.ReportSuccess()
				}
				_ = tg.Up()
				_ = c.Snapshot()
			}
		})
	}
	wg.Go(func() {
		for j := range 50 {
			if j%2 == 0 {
				c.SetTargets([]string{"a:1", "b:1", "c:1"})
			} else {
				c.SetTargets([]string{"a:1", "b:1"})
			}
		}
	})
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
}
