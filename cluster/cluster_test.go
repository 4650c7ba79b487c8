package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/health"
)

// probes is a controllable health probe: nodes in down fail.
type probes struct {
	mu   sync.Mutex
	down map[string]bool
}

func (p *probes) probe(_ context.Context, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[addr] {
		return errors.New("connection refused")
	}
	return nil
}

func (p *probes) set(addr string, down bool) {
	p.mu.Lock()
	if p.down == nil {
		p.down = map[string]bool{}
	}
	p.down[addr] = down
	p.mu.Unlock()
}

// fixture is a cluster whose nodes tests take down and up by hand.
type fixture struct {
	t  *testing.T
	c  *cluster.Cluster
	pr *probes
}

func newCluster(t *testing.T, specs []cluster.NodeSpec, opts cluster.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, pr: &probes{}}
	if opts.Name == "" {
		opts.Name = "test"
	}
	opts.Health.Probe = f.pr.probe
	opts.Health.Interval = time.Hour
	if opts.Health.FailThreshold == 0 {
		opts.Health.FailThreshold = 1
	}
	c, err := cluster.New(specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	return f
}

func (f *fixture) node(addr string) *cluster.Node {
	for _, n := range f.c.Nodes() {
		if n.Addr() == addr {
			return n
		}
	}
	f.t.Fatalf("no node %s", addr)
	return nil
}

// down marks nodes down as the health map would after failed probes.
func (f *fixture) down(addrs ...string) {
	f.t.Helper()
	for _, a := range addrs {
		f.pr.set(a, true)
	}
	f.c.Health().ProbeAll(context.Background())
	for _, a := range addrs {
		if f.node(a).Up() {
			f.t.Fatalf("%s still up", a)
		}
	}
}

// up brings nodes back with a passing probe.
func (f *fixture) up(addrs ...string) {
	f.t.Helper()
	for _, a := range addrs {
		f.pr.set(a, false)
	}
	f.c.Health().ProbeAll(context.Background())
	for _, a := range addrs {
		if !f.node(a).Up() {
			f.t.Fatalf("%s still down", a)
		}
	}
}

// picks picks n times (ending each request at once) and counts by address.
func (f *fixture) picks(n int) map[string]int {
	f.t.Helper()
	got := map[string]int{}
	for range n {
		nd, err := f.c.Pick()
		if err != nil {
			f.t.Fatalf("Pick: %v", err)
		}
		got[nd.Addr()]++
	}
	return got
}

func specs(addrs ...string) []cluster.NodeSpec {
	out := make([]cluster.NodeSpec, len(addrs))
	for i, a := range addrs {
		out[i] = cluster.NodeSpec{Addr: a, Weight: 1}
	}
	return out
}

var policies = []string{cluster.RoundRobin, cluster.LeastConnections, cluster.LatencyBased}

func TestNewRefusesUnknownPolicy(t *testing.T) {
	_, err := cluster.New(specs("a:1"), cluster.Options{Name: "redis", Policy: "random"})
	if err == nil || !strings.Contains(err.Error(), `"random"`) || !strings.Contains(err.Error(), "redis") {
		t.Errorf("New with policy random: %v", err)
	}
	_, err = cluster.New(specs("a:1", "b:1", "a:1"), cluster.Options{Name: "redis"})
	if err == nil || !strings.Contains(err.Error(), "a:1") {
		t.Errorf("New with a duplicate node: %v", err)
	}
}

func TestRoundRobinWeights(t *testing.T) {
	f := newCluster(t, []cluster.NodeSpec{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 2}, {Addr: "c:1", Weight: 3}},
		cluster.Options{Policy: cluster.RoundRobin})
	var seq []string
	counts := map[string]int{}
	for range 6000 {
		n, err := f.c.Pick()
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, n.Addr())
		counts[n.Addr()]++
	}
	if counts["a:1"] != 1000 || counts["b:1"] != 2000 || counts["c:1"] != 3000 {
		t.Errorf("weights 1,2,3 over 6000 picks gave %v, want 1000/2000/3000", counts)
	}
	// interleaved: every window of 6 picks holds each node by its weight,
	// and no node gets more than 2 picks in a row
	for i := 0; i+6 <= len(seq); i += 6 {
		w := map[string]int{}
		for _, a := range seq[i : i+6] {
			w[a]++
		}
		if w["a:1"] != 1 || w["b:1"] != 2 || w["c:1"] != 3 {
			t.Fatalf("picks %d-%d = %v, not interleaved by weight", i, i+6, seq[i:i+6])
		}
	}
	run := 1
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			run++
			if run > 2 {
				t.Fatalf("%s picked %d times in a row at %d: %v", seq[i], run, i, seq[max(0, i-8):i+1])
			}
		} else {
			run = 1
		}
	}
}

// TestRoundRobinDownNodeShares: a down node's share is spread over the
// others by their weights, not handed to one neighbour.
func TestRoundRobinDownNodeShares(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1", "c:1", "d:1"), cluster.Options{Policy: cluster.RoundRobin})
	f.down("c:1")
	got := f.picks(3000)
	for _, a := range []string{"a:1", "b:1", "d:1"} {
		if got[a] != 1000 {
			t.Errorf("with c down, equal weights: %v, want 1000 each for a, b, d", got)
			break
		}
	}
	f2 := newCluster(t, []cluster.NodeSpec{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 2}, {Addr: "c:1", Weight: 3}},
		cluster.Options{Policy: cluster.RoundRobin})
	f2.down("c:1")
	got = f2.picks(3000)
	if got["a:1"] != 1000 || got["b:1"] != 2000 {
		t.Errorf("weights 1,2,(3 down) gave %v, want a 1000, b 2000", got)
	}
}

func TestLeastConnections(t *testing.T) {
	f := newCluster(t, []cluster.NodeSpec{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 2}, {Addr: "c:1", Weight: 3}},
		cluster.Options{Policy: cluster.LeastConnections})
	// connections held open spread by weight
	var held []*cluster.Node
	counts := map[string]int{}
	for range 60 {
		n, err := f.c.Pick()
		if err != nil {
			t.Fatal(err)
		}
		n.Begin()
		held = append(held, n)
		counts[n.Addr()]++
	}
	if counts["a:1"] != 10 || counts["b:1"] != 20 || counts["c:1"] != 30 {
		t.Errorf("60 open connections over weights 1,2,3: %v, want 10/20/30", counts)
	}
	// ending a's connections shifts the next picks to a
	for _, n := range held {
		if n.Addr() == "a:1" {
			n.End(time.Millisecond, nil)
		}
	}
	if a := f.node("a:1").Active(); a != 0 {
		t.Fatalf("a active = %d after ending its connections", a)
	}
	for i := range 5 {
		n, _ := f.c.Pick()
		if n.Addr() != "a:1" {
			t.Fatalf("pick %d after a drained went to %s, want a:1 (least loaded)", i, n.Addr())
		}
		n.Begin()
	}
	// equal load: ties are spread, not all on the first node
	g := newCluster(t, specs("a:1", "b:1", "c:1"), cluster.Options{Policy: cluster.LeastConnections})
	got := g.picks(300)
	for _, a := range []string{"a:1", "b:1", "c:1"} {
		if got[a] < 50 {
			t.Errorf("idle nodes with equal weights: %v; ties should be spread", got)
			break
		}
	}
}

func TestLatencyBased(t *testing.T) {
	f := newCluster(t, specs("slow:1", "fast1:1", "fast2:1"), cluster.Options{Policy: cluster.LatencyBased})
	for range 20 {
		for _, a := range []string{"slow:1", "fast1:1", "fast2:1"} {
			n := f.node(a)
			n.Begin()
			lat := time.Millisecond
			if a == "slow:1" {
				lat = 20 * time.Millisecond
			}
			n.End(lat, nil)
		}
	}
	if l := f.node("slow:1").Latency(); l < 15*time.Millisecond || l > 21*time.Millisecond {
		t.Errorf("slow EWMA = %v, want about 20ms", l)
	}
	got := f.picks(3000)
	if got["slow:1"] > 150 || got["fast1:1"] < 1000 || got["fast2:1"] < 1000 {
		t.Errorf("picks %v: the node with 20x the latency should get few", got)
	}
	// a fresh node, never measured, gets tried
	sp := append(specs("slow:1", "fast1:1", "fast2:1"), cluster.NodeSpec{Addr: "new:1", Weight: 1})
	if err := f.c.Update(sp); err != nil {
		t.Fatal(err)
	}
	got = f.picks(300)
	if got["new:1"] < 30 {
		t.Errorf("picks after adding a node: %v; the new node should be tried", got)
	}
	// the slow node stays slow after the update (its EWMA survives)
	if f.node("slow:1").Latency() < 15*time.Millisecond {
		t.Error("Update reset the latency of a surviving node")
	}
	// in-flight requests count: a fast node loaded with many requests
	// loses to an idle one of similar latency
	for range 50 {
		f.node("fast1:1").Begin()
	}
	f.node("new:1").Begin()
	f.node("new:1").End(time.Millisecond, nil)
	got = f.picks(1000)
	if got["fast1:1"] > got["fast2:1"]/4 {
		t.Errorf("picks %v: fast1 has 50 requests in flight and should get few", got)
	}
}

func TestPoliciesSkipDownNodes(t *testing.T) {
	for _, p := range policies {
		t.Run(p, func(t *testing.T) {
			f := newCluster(t, specs("a:1", "b:1", "c:1"), cluster.Options{Policy: p})
			f.down("a:1", "b:1")
			got := f.picks(100)
			if got["c:1"] != 100 {
				t.Errorf("with a and b down: %v, want all on c", got)
			}
			if err := f.c.Ready(); err != nil {
				t.Errorf("Ready with c up: %v", err)
			}
			f.down("c:1")
			if n, err := f.c.Pick(); !errors.Is(err, cluster.ErrNoNode) {
				t.Errorf("Pick with every node down = %v, %v; want ErrNoNode", n, err)
			}
			if err := f.c.Ready(); err == nil || !strings.Contains(err.Error(), "test") {
				t.Errorf("Ready with every node down = %v, want an error naming the cluster", err)
			}
			f.up("b:1")
			got = f.picks(50)
			if got["b:1"] != 50 {
				t.Errorf("after b came back: %v", got)
			}
		})
	}
}

func TestEmptyCluster(t *testing.T) {
	f := newCluster(t, nil, cluster.Options{})
	if _, err := f.c.Pick(); !errors.Is(err, cluster.ErrNoNode) {
		t.Errorf("Pick on an empty cluster: %v", err)
	}
	if _, err := f.c.PickKey([]byte("k")); !errors.Is(err, cluster.ErrNoNode) {
		t.Errorf("PickKey on an empty cluster: %v", err)
	}
	if f.c.Ready() == nil {
		t.Error("an empty cluster is ready")
	}
}

func TestRegionPreference(t *testing.T) {
	for _, p := range policies {
		t.Run(p, func(t *testing.T) {
			f := newCluster(t, []cluster.NodeSpec{
				{Addr: "us1:1", Weight: 1, Region: "us"},
				{Addr: "eu1:1", Weight: 1, Region: "eu"},
				{Addr: "none:1", Weight: 1},
				{Addr: "eu2:1", Weight: 1, Region: "eu"},
				{Addr: "ap1:1", Weight: 1, Region: "ap"},
			}, cluster.Options{Policy: p, RegionPreference: []string{"eu", "us"}})
			got := f.picks(200)
			if got["eu1:1"]+got["eu2:1"] != 200 || got["eu1:1"] < 40 || got["eu2:1"] < 40 {
				t.Errorf("preferring eu: %v, want all on eu1 and eu2, both used", got)
			}
			f.down("eu1:1")
			if got := f.picks(50); got["eu2:1"] != 50 {
				t.Errorf("eu1 down: %v, want all on eu2", got)
			}
			f.down("eu2:1")
			if got := f.picks(50); got["us1:1"] != 50 {
				t.Errorf("eu down: %v, want all on us1", got)
			}
			f.down("us1:1")
			got = f.picks(100)
			if got["none:1"]+got["ap1:1"] != 100 || got["none:1"] == 0 || got["ap1:1"] == 0 {
				t.Errorf("eu and us down: %v, want the rest (none, ap1)", got)
			}
			f.down("none:1", "ap1:1")
			if _, err := f.c.Pick(); !errors.Is(err, cluster.ErrNoNode) {
				t.Errorf("all down: %v", err)
			}
			f.up("eu2:1", "none:1")
			if got := f.picks(50); got["eu2:1"] != 50 {
				t.Errorf("eu2 back: %v, want all on eu2", got)
			}
		})
	}
}

func TestCircuitBreaker(t *testing.T) {
	const openFor = 200 * time.Millisecond
	errTimeout := errors.New("i/o timeout")
	for _, p := range policies {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			f := newCluster(t, specs("a:1", "b:1"), cluster.Options{
				Policy:  p,
				Breaker: cluster.BreakerOptions{Enabled: true, FailureThreshold: 3, OpenTimeout: openFor},
				Health:  health.Options{FailThreshold: 1000}, // keep the health map out of it
			})
			a := f.node("a:1")
			fail := func() { a.Begin(); a.End(time.Millisecond, errTimeout) }
			fail()
			fail()
			if got := f.picks(40); got["a:1"] == 0 {
				t.Fatalf("a skipped after 2 failures (threshold 3): %v", got)
			}
			fail()
			opened := time.Now()
			if s := a.Status().Breaker; s != "open" {
				t.Errorf("breaker state %q after 3 failures, want open", s)
			}
			if got := f.picks(40); got["a:1"] != 0 {
				t.Fatalf("open breaker: a still picked: %v", got)
			}
			if !a.Up() {
				t.Error("the breaker must not mark the node down in the health map")
			}
			for time.Since(opened) < openFor+10*time.Millisecond {
				time.Sleep(5 * time.Millisecond)
			}
			// half-open: exactly one trial request goes to a
			var trial *cluster.Node
			got := map[string]int{}
			for range 40 {
				n, err := f.c.Pick()
				if err != nil {
					t.Fatal(err)
				}
				got[n.Addr()]++
				if n == a {
					trial = n
				}
			}
			if got["a:1"] != 1 {
				t.Fatalf("half-open: a picked %d times, want exactly 1 trial: %v", got["a:1"], got)
			}
			// the trial fails: open again
			trial.Begin()
			trial.End(time.Millisecond, errTimeout)
			reopened := time.Now()
			if got := f.picks(40); got["a:1"] != 0 {
				t.Fatalf("after a failed trial a is picked again at once: %v", got)
			}
			for time.Since(reopened) < openFor+10*time.Millisecond {
				time.Sleep(5 * time.Millisecond)
			}
			got = f.picks(40)
			if got["a:1"] != 1 {
				t.Fatalf("second half-open: %v, want one trial", got)
			}
			// the trial succeeds: closed, a back in rotation (b gets the
			// same latency, for the latency based policy)
			a.Begin()
			a.End(time.Millisecond, nil)
			b := f.node("b:1")
			b.Begin()
			b.End(time.Millisecond, nil)
			if s := a.Status().Breaker; s != "closed" {
				t.Errorf("breaker %q after a good trial, want closed", s)
			}
			if got := f.picks(40); got["a:1"] < 10 {
				t.Errorf("closed breaker: a picked %d of 40", got["a:1"])
			}
		})
	}
}

func TestBreakerDisabled(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1"), cluster.Options{Health: health.Options{FailThreshold: 1000}})
	a := f.node("a:1")
	for range 20 {
		a.Begin()
		a.End(0, errors.New("boom"))
	}
	if got := f.picks(10); got["a:1"] != 5 {
		t.Errorf("breaker disabled: a picked %d of 10", got["a:1"])
	}
	if a.Status().Breaker != "" {
		t.Errorf("breaker state %q shown while disabled", a.Status().Breaker)
	}
}

// keyOn finds a key the ring places on addr.
func keyOn(t *testing.T, c *cluster.Cluster, addr string) []byte {
	t.Helper()
	for i := range 10000 {
		k := []byte(fmt.Sprintf("key:%d", i))
		if n, err := c.PickKey(k); err == nil && n.Addr() == addr {
			return k
		}
	}
	t.Fatalf("no key on %s", addr)
	return nil
}

func TestPickKeyDownNode(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1", "c:1"), cluster.Options{})
	kb, ka := keyOn(t, f.c, "b:1"), keyOn(t, f.c, "a:1")
	f.down("b:1")
	n, err := f.c.PickKey(kb)
	var ue *cluster.UnavailableError
	if !errors.As(err, &ue) || ue.Addr != "b:1" || ue.Reason != "down: connection refused" {
		t.Fatalf("PickKey of b's key with b down = %v, %v; want an UnavailableError naming b:1, down with its last error", n, err)
	}
	if n == nil || n.Addr() != "b:1" {
		t.Errorf("PickKey returned node %v with the error, want b:1", n)
	}
	if !strings.Contains(err.Error(), "b:1") {
		t.Errorf("error %q does not name the node", err)
	}
	if n, err := f.c.PickKey(ka); err != nil || n.Addr() != "a:1" {
		t.Errorf("a's key moved when b went down: %v, %v", n, err)
	}
	f.up("b:1")
	if n, err := f.c.PickKey(kb); err != nil || n.Addr() != "b:1" {
		t.Errorf("b's key after b came back: %v, %v", n, err)
	}
}

func TestPickKeyBreakerOpen(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1"), cluster.Options{
		Breaker: cluster.BreakerOptions{Enabled: true, FailureThreshold: 1, OpenTimeout: time.Hour},
		Health:  health.Options{FailThreshold: 1000},
	})
	kb := keyOn(t, f.c, "b:1")
	b := f.node("b:1")
	b.Begin()
	b.End(0, errors.New("timeout"))
	_, err := f.c.PickKey(kb)
	var ue *cluster.UnavailableError
	if !errors.As(err, &ue) || ue.Addr != "b:1" || !strings.Contains(ue.Reason, "breaker") {
		t.Errorf("PickKey with b's breaker open: %v", err)
	}
}

func TestPickKeyAutoEject(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1", "c:1"), cluster.Options{AutoEject: true})
	// remember where 1000 keys live
	home := map[string]string{}
	for i := range 1000 {
		k := fmt.Sprintf("key:%d", i)
		n, err := f.c.PickKey([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		home[k] = n.Addr()
	}
	f.down("b:1")
	moved := 0
	for k, was := range home {
		n, err := f.c.PickKey([]byte(k))
		if err != nil {
			t.Fatalf("PickKey(%s) with b down and auto-eject: %v", k, err)
		}
		if n.Addr() == "b:1" {
			t.Fatalf("key %s still on the down node", k)
		}
		if was != "b:1" && n.Addr() != was {
			t.Errorf("key %s moved from %s to %s though its node is up", k, was, n.Addr())
		}
		if was == "b:1" {
			moved++
		}
	}
	if moved < 150 {
		t.Errorf("only %d of 1000 keys were on b", moved)
	}
	f.up("b:1")
	for k, was := range home {
		if n, _ := f.c.PickKey([]byte(k)); n.Addr() != was {
			t.Fatalf("key %s on %s after b came back, want %s", k, n.Addr(), was)
		}
	}
	f.down("a:1", "b:1", "c:1")
	if _, err := f.c.PickKey([]byte("x")); !errors.Is(err, cluster.ErrNoNode) {
		t.Errorf("auto-eject with every node down: %v, want ErrNoNode", err)
	}
}

// TestGeneration: it changes with every Update and, with auto-eject, with
// every node going down or up (what a subscriber's placement depends on);
// without auto-eject a node's health does not move keys.
func TestGeneration(t *testing.T) {
	for _, eject := range []bool{false, true} {
		f := newCluster(t, specs("a:1", "b:1"), cluster.Options{AutoEject: eject})
		g := f.c.Generation()
		ch := f.c.Changed()
		f.down("b:1")
		select {
		case <-ch:
			if !eject {
				t.Errorf("no auto-eject: Changed fired for a node going down")
			}
		default:
			if eject {
				t.Errorf("auto-eject: Changed did not fire for a node going down")
			}
		}
		if moved := f.c.Generation() != g; moved != eject {
			t.Errorf("auto-eject %v: a node going down changed the generation: %v", eject, moved)
		}
		g = f.c.Generation()
		f.up("b:1")
		if moved := f.c.Generation() != g; moved != eject {
			t.Errorf("auto-eject %v: a node coming up changed the generation: %v", eject, moved)
		}
		g = f.c.Generation()
		if err := f.c.Update(specs("a:1", "b:1", "c:1")); err != nil {
			t.Fatal(err)
		}
		if f.c.Generation() == g {
			t.Errorf("auto-eject %v: Update left the generation as it was", eject)
		}
	}
}

func TestUpdate(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1", "c:1"), cluster.Options{})
	type change struct{ added, removed []string }
	var changes []change
	f.c.OnUpdate(func(added, removed []*cluster.Node) {
		var ch change
		for _, n := range added {
			ch.added = append(ch.added, n.Addr())
		}
		for _, n := range removed {
			ch.removed = append(ch.removed, n.Addr())
		}
		changes = append(changes, ch)
	})
	a := f.node("a:1")
	a.Begin()
	a.Begin()
	a.End(5*time.Millisecond, nil)
	a.SetData("pool-a")
	f.down("b:1")

	if err := f.c.Update(specs("a:1", "b:1", "d:1")); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || strings.Join(changes[0].added, ",") != "d:1" || strings.Join(changes[0].removed, ",") != "c:1" {
		t.Fatalf("OnUpdate calls %+v, want added [d:1] removed [c:1]", changes)
	}
	if f.node("a:1") != a || a.Active() != 1 || a.Data() != "pool-a" || a.Status().Requests != 1 || a.Latency() == 0 {
		t.Errorf("a lost its state: active %d data %v status %+v", a.Active(), a.Data(), a.Status())
	}
	if f.node("b:1").Up() {
		t.Error("b came back up through Update")
	}
	var addrs []string
	for _, s := range f.c.Snapshot() {
		addrs = append(addrs, s.Addr)
	}
	if strings.Join(addrs, ",") != "a:1,b:1,d:1" {
		t.Errorf("snapshot %v", addrs)
	}
	if got := f.picks(100); got["c:1"] != 0 || got["d:1"] == 0 {
		t.Errorf("picks after update: %v", got)
	}
	if len(f.c.Health().Snapshot()) != 3 {
		t.Errorf("health map has %d nodes, want 3", len(f.c.Health().Snapshot()))
	}

	// a new weight keeps the node's data and health, and is neither added
	// nor removed (a frontend must not close the pool it still uses)
	changes = nil
	if err := f.c.Update([]cluster.NodeSpec{{Addr: "a:1", Weight: 3}, {Addr: "b:1", Weight: 1}, {Addr: "d:1", Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	a2 := f.node("a:1")
	if a2.Spec().Weight != 3 || a2.Data() != "pool-a" {
		t.Errorf("reweighted a: weight %d data %v", a2.Spec().Weight, a2.Data())
	}
	for _, ch := range changes {
		if len(ch.added)+len(ch.removed) != 0 {
			t.Errorf("reweighting a reported added %v removed %v; its pool would be closed while in use", ch.added, ch.removed)
		}
	}
	f.up("b:1")
	if got := f.picks(500); got["a:1"] != 300 {
		t.Errorf("weights 3,1,1: %v, want a 300", got)
	}

	// a bad update keeps the old set
	if err := f.c.Update(specs("x:1", "x:1")); err == nil || !strings.Contains(err.Error(), "x:1") {
		t.Errorf("Update with a duplicate: %v", err)
	}
	if len(f.c.Nodes()) != 3 || f.node("a:1") != a2 {
		t.Error("a failed Update changed the node set")
	}
}

// TestConcurrent runs picks, request accounting, health changes and
// updates at once, for -race.
func TestConcurrent(t *testing.T) {
	for _, p := range policies {
		t.Run(p, func(t *testing.T) {
			f := newCluster(t, specs("a:1", "b:1", "c:1"), cluster.Options{
				Policy: p, AutoEject: true, RegionPreference: []string{"eu"},
				Breaker: cluster.BreakerOptions{Enabled: true, FailureThreshold: 5, OpenTimeout: time.Millisecond},
				Health:  health.Options{FailThreshold: 3},
			})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Go(func() {
					for j := 0; ctx.Err() == nil; j++ {
						n, err := f.c.Pick()
						if err != nil {
							continue
						}
						n.Begin()
						var e error
						if (i+j)%7 == 0 {
							e = errors.New("boom")
						}
						n.End(time.Duration(j%5)*time.Microsecond, e)
						_, _ = f.c.PickKey([]byte(fmt.Sprint(j)))
						n.SetData(j)
						_ = n.Status()
					}
				})
			}
			wg.Go(func() {
				for j := 0; ctx.Err() == nil; j++ {
					f.c.Health().ProbeAll(ctx)
					f.pr.set("b:1", j%2 == 0)
					if j%3 == 0 {
						_ = f.c.Update(specs("a:1", "b:1", "c:1", "d:1"))
					} else {
						_ = f.c.Update([]cluster.NodeSpec{{Addr: "a:1", Weight: 2, Region: "eu"}, {Addr: "b:1"}, {Addr: "c:1"}})
					}
					_ = f.c.Snapshot()
				}
			})
			time.Sleep(200 * time.Millisecond)
			cancel()
			wg.Wait()
		})
	}
}

// Nodes start up (they take traffic before their first probe), but the
// cluster is ready only once one of them passed a probe: an unreachable
// node list must not read ready until enough probes failed.
func TestReadyNeedsAPassedProbe(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1"), cluster.Options{Health: health.Options{FailThreshold: 3}})
	if err := f.c.Ready(); err == nil || !strings.Contains(err.Error(), "passed a health probe") {
		t.Errorf("Ready before any probe = %v; want not ready", err)
	}
	f.pr.set("a:1", true)
	f.pr.set("b:1", true)
	f.c.Health().ProbeAll(context.Background())
	if !f.node("a:1").Up() || !f.node("b:1").Up() {
		t.Fatal("one failed probe of three marked a node down")
	}
	if err := f.c.Ready(); err == nil {
		t.Error("ready with every probe failed so far")
	}
	f.pr.set("b:1", false)
	f.c.Health().ProbeAll(context.Background())
	if err := f.c.Ready(); err != nil {
		t.Errorf("Ready once b passed a probe: %v", err)
	}
}

// TestBreakerKeyTrial: half-open, the lookups of one command (several keys
// of the node, a transaction) are all admitted within the trial window;
// before, the first claimed the trial, the second was refused, nothing was
// sent, and the unanswered trial kept the node refused for good. A trial
// that is never answered lapses after the open timeout.
func TestBreakerKeyTrial(t *testing.T) {
	const openFor = 150 * time.Millisecond
	f := newCluster(t, specs("a:1", "b:1"), cluster.Options{
		Breaker: cluster.BreakerOptions{Enabled: true, FailureThreshold: 1, OpenTimeout: openFor},
		Health:  health.Options{FailThreshold: 1000},
	})
	var ka, kb []byte // keys of a
	for i := 0; kb == nil; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		if n, _ := f.c.PickKey(k); n.Addr() == "a:1" {
			if ka == nil {
				ka = k
			} else {
				kb = k
			}
		}
	}
	a := f.node("a:1")
	a.Begin()
	a.End(time.Millisecond, errors.New("connection refused"))
	if _, err := f.c.PickKey(ka); err == nil {
		t.Fatal("open breaker: key admitted")
	}
	time.Sleep(openFor + 10*time.Millisecond)
	for _, k := range [][]byte{ka, kb, ka} {
		if _, err := f.c.PickKey(k); err != nil {
			t.Fatalf("half-open, one command's lookups: %v", err)
		}
	}
	time.Sleep(30 * time.Millisecond) // past the window: the trial waits for its answer
	if _, err := f.c.PickKey(ka); err == nil {
		t.Error("a second trial admitted while the first waits for its answer")
	}
	time.Sleep(openFor) // never answered: it lapses
	if _, err := f.c.PickKey(ka); err != nil {
		t.Errorf("an unanswered trial kept the node refused: %v", err)
	}
	a.Begin()
	a.End(time.Millisecond, nil)
	if s := a.Status().Breaker; s != "closed" {
		t.Errorf("after the trial's success: %s", s)
	}
}

// TestUpdateKeepsNodeState: a reload that changes a node's weight, region
// or name keeps the same node (its breaker, counters, latency, and the
// frontend's data that points back at it); before, a new node took its
// place and the frontend went on reporting to the old one.
func TestUpdateKeepsNodeState(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1"), cluster.Options{
		Breaker: cluster.BreakerOptions{Enabled: true, FailureThreshold: 1, OpenTimeout: time.Hour},
		Health:  health.Options{FailThreshold: 1000},
	})
	a := f.node("a:1")
	a.SetData("pool-a")
	a.Begin()
	a.End(5*time.Millisecond, nil)
	a.Begin()
	a.End(5*time.Millisecond, errors.New("connection refused"))
	if err := f.c.Update([]cluster.NodeSpec{{Addr: "a:1", Weight: 3, Region: "eu"}, {Addr: "b:1", Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	if f.node("a:1") != a {
		t.Fatal("a new node for a:1 after its weight changed")
	}
	if sp := a.Spec(); sp.Weight != 3 || sp.Region != "eu" {
		t.Errorf("spec after the reload: %+v", sp)
	}
	st := a.Status()
	if st.Breaker != "open" || st.Requests != 2 || a.Latency() == 0 || a.Data() != "pool-a" {
		t.Errorf("state lost in the reload: %+v latency %v data %v", st, a.Latency(), a.Data())
	}
}

// TestLeastConnectionsWeights: with no request in flight (every node at
// 0, as in an idle cluster), least_connections follows the weights (it
// went round robin, 1:1 for weights 1 and 3); with requests in flight the
// least loaded per unit of weight wins.
func TestLeastConnectionsWeights(t *testing.T) {
	f := newCluster(t, []cluster.NodeSpec{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 3}}, cluster.Options{Policy: cluster.LeastConnections})
	got := f.picks(4000)
	if got["b:1"] < 2700 || got["b:1"] > 3300 {
		t.Errorf("idle, weights 1 and 3: %v, want about 1000 and 3000", got)
	}
	b := f.node("b:1")
	b.AddActive(4) // 4/3 in flight per unit of weight on b, 0 on a
	if got := f.picks(50); got["a:1"] != 50 {
		t.Errorf("with b loaded: %v, want every pick on a", got)
	}
	f.node("a:1").AddActive(2) // 2 per unit on a, 4/3 on b
	if got := f.picks(50); got["b:1"] != 50 {
		t.Errorf("with a more loaded per weight: %v, want every pick on b", got)
	}
}

// TestLatencyBasedTriesAgain: a node that was slow once, and so lost every
// draw and got no request to measure it again, is tried again within
// seconds (it was never picked again for keyless commands).
func TestLatencyBasedTriesAgain(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1"), cluster.Options{Policy: cluster.LatencyBased})
	a, b := f.node("a:1"), f.node("b:1")
	b.Begin()
	b.End(100*time.Millisecond, nil) // once slow
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := f.c.Pick()
		if err != nil {
			t.Fatal(err)
		}
		n.Begin()
		n.End(time.Millisecond, nil) // both answer fast now
		if n == b {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b not picked again in 20 s (a's latency %v, b's %v)", a.Latency(), b.Latency())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAutoEjectBreaker: with auto-eject, the circuit breaker holds keyed
// commands too, as without (it was skipped); it does not move keys.
func TestAutoEjectBreaker(t *testing.T) {
	f := newCluster(t, specs("a:1", "b:1"), cluster.Options{AutoEject: true,
		Breaker: cluster.BreakerOptions{Enabled: true, FailureThreshold: 1, OpenTimeout: time.Hour},
		Health:  health.Options{FailThreshold: 1000}})
	k := keyOn(t, f.c, "a:1")
	a := f.node("a:1")
	a.Begin()
	a.End(time.Millisecond, errors.New("connection refused"))
	n, err := f.c.PickKey(k)
	var ue *cluster.UnavailableError
	if !errors.As(err, &ue) || n != a {
		t.Errorf("auto-eject, breaker open: PickKey = %v, %v; want a and the breaker's error", n, err)
	}
}
