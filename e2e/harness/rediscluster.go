package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const redisClusterTimeout = 60 * time.Second

// RedisCluster is a Redis Cluster of six redis-server nodes, three masters
// with one replica each, made with redis-cli --cluster create and a
// cluster-node-timeout of 2000 ms so failover takes seconds.
type RedisCluster struct {
	Nodes []*RedisNode
}

// StartRedisCluster starts six cluster-enabled nodes (extraArgs appended
// to each command line), joins them with redis-cli --cluster create
// --cluster-replicas 1, and waits until every node reports cluster_state:ok
// with all 16384 slots served and sees three masters and three replicas
// (see Wait for the rest of the conditions).
func StartRedisCluster(extraArgs ...string) (*RedisCluster, error) {
	cli, err := lookBin("redis-cli")
	if err != nil {
		return nil, err
	}
	nodes, err := startRedisNodes(6, true, extraArgs)
	if err != nil {
		return nil, err
	}
	c := &RedisCluster{Nodes: nodes}
	if err := c.create(cli); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := c.waitFormed(redisClusterTimeout); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// NewRedisCluster starts a cluster for a test and closes it when it ends.
func NewRedisCluster(t testing.TB, extraArgs ...string) *RedisCluster {
	t.Helper()
	c, err := StartRedisCluster(extraArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (c *RedisCluster) create(cli string) error {
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), redisClusterTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	logPath := filepath.Join(c.Nodes[0].Dir, "cluster-create.log")
	_ = os.WriteFile(logPath, out, 0o644)
	if err != nil || !strings.Contains(string(out), "All 16384 slots covered") {
		if err == nil {
			err = errors.New("slots not covered")
		}
		return withLog(fmt.Errorf("harness: redis-cli --cluster create: %w", err), logPath)
	}
	return nil
}

// Addrs returns every node's address, masters and replicas alike.
func (c *RedisCluster) Addrs() []string { return RedisAddrs(c.Nodes) }

// Close kills every node and removes their directories.
func (c *RedisCluster) Close() error { return CloseRedis(c.Nodes) }

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID       string
	Addr     string // host:port, without the bus port
	Flags    []string
	MasterID string // "-" for a master
	Slots    []string
	Node     *RedisNode // the harness node at Addr, nil if none
}

// Has reports whether the node carries a flag (master, slave, fail, ...).
func (n ClusterNode) Has(flag string) bool {
	for _, f := range n.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Topology returns CLUSTER NODES as seen by the first running node.
func (c *RedisCluster) Topology() ([]ClusterNode, error) {
	var lastErr error = errors.New("no running node")
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		out, err := n.Do("CLUSTER", "NODES")
		if err != nil {
			lastErr = err
			continue
		}
		return c.parseNodes(out), nil
	}
	return nil, fmt.Errorf("harness: redis cluster topology: %w", lastErr)
}

func (c *RedisCluster) parseNodes(out string) []ClusterNode {
	var res []ClusterNode
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		a := f[1]
		if i := strings.IndexAny(a, "@,"); i >= 0 {
			a = a[:i]
		}
		cn := ClusterNode{ID: f[0], Addr: a, Flags: strings.Split(f[2], ","), MasterID: f[3], Slots: f[8:]}
		for _, n := range c.Nodes {
			if n.Addr == a {
				cn.Node = n
			}
		}
		res = append(res, cn)
	}
	return res
}

// Masters returns the nodes that are masters serving slots now, as the
// cluster itself reports (roles change on failover).
func (c *RedisCluster) Masters() ([]*RedisNode, error) {
	return c.byRole(func(n ClusterNode) bool { return n.Has("master") && !n.Has("fail") && len(n.Slots) > 0 })
}

// Replicas returns the nodes that are replicas now.
func (c *RedisCluster) Replicas() ([]*RedisNode, error) {
	return c.byRole(func(n ClusterNode) bool { return n.Has("slave") && !n.Has("fail") })
}

func (c *RedisCluster) byRole(keep func(ClusterNode) bool) ([]*RedisNode, error) {
	top, err := c.Topology()
	if err != nil {
		return nil, err
	}
	var res []*RedisNode
	for _, n := range top {
		if keep(n) && n.Node != nil {
			res = append(res, n.Node)
		}
	}
	return res, nil
}

// MasterFor returns the master that serves key's slot now.
func (c *RedisCluster) MasterFor(key string) (*RedisNode, error) {
	slot := KeySlot(key)
	top, err := c.Topology()
	if err != nil {
		return nil, err
	}
	for _, n := range top {
		if !n.Has("master") || n.Has("fail") {
			continue
		}
		for _, r := range n.Slots {
			if strings.HasPrefix(r, "[") { // slot being migrated
				continue
			}
			lo, hi, _ := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if hi == "" {
				b, err2 = a, nil
			}
			if err1 == nil && err2 == nil && a <= slot && slot <= b && n.Node != nil {
				return n.Node, nil
			}
		}
	}
	return nil, fmt.Errorf("harness: no master serves slot %d", slot)
}

// Wait waits until every running node reports cluster_state:ok with all
// slots served, all of them agree on which running masters serve which
// slots (a stopped master's replica has taken over), none flags a running
// node as failing, and every running replica's link to its master is up:
// for use after a node was stopped, killed or restarted.
func (c *RedisCluster) Wait(timeout time.Duration) error {
	return waitFor(nil, timeout, 100*time.Millisecond, func() error { return c.check(false) })
}

// waitFormed is Wait plus the shape of a freshly created cluster.
func (c *RedisCluster) waitFormed(timeout time.Duration) error {
	return waitFor(nil, timeout, 100*time.Millisecond, func() error { return c.check(true) })
}

func (c *RedisCluster) check(fresh bool) error {
	errs := make([]error, len(c.Nodes))
	views := make([]string, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		wg.Go(func() { views[i], errs[i] = c.checkNode(n, fresh) })
	}
	wg.Wait()
	if err := joinErrs(errs); err != nil {
		return err
	}
	// Every running node must agree on who serves which slots.
	first := -1
	for i, v := range views {
		if !c.Nodes[i].Running() {
			continue
		}
		if first < 0 {
			first = i
		} else if v != views[first] {
			return fmt.Errorf("%s and %s disagree on slot owners: %s vs %s", c.Nodes[first].Addr, c.Nodes[i].Addr, views[first], v)
		}
	}
	return nil
}

// checkNode checks one node's view and returns the slot owners it sees.
func (c *RedisCluster) checkNode(n *RedisNode, fresh bool) (string, error) {
	info, err := n.Do("CLUSTER", "INFO")
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.Addr, err)
	}
	for _, want := range []string{"cluster_state:ok", "cluster_slots_ok:16384"} {
		if !strings.Contains(info, want) {
			return "", fmt.Errorf("%s: no %s in CLUSTER INFO", n.Addr, want)
		}
	}
	out, err := n.Do("CLUSTER", "NODES")
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.Addr, err)
	}
	masters, replicas := 0, 0
	var self ClusterNode
	var owners []string
	for _, cn := range c.parseNodes(out) {
		if cn.Has("myself") {
			self = cn
		}
		if cn.Node != nil && cn.Node.Running() &&
			(cn.Has("fail") || cn.Has("fail?") || cn.Has("handshake") || cn.Has("noaddr")) {
			return "", fmt.Errorf("%s: sees running %s as %s", n.Addr, cn.Addr, strings.Join(cn.Flags, ","))
		}
		if cn.Node != nil && !cn.Node.Running() && cn.Has("master") && len(cn.Slots) > 0 {
			return "", fmt.Errorf("%s: sees stopped %s still serving slots", n.Addr, cn.Addr)
		}
		switch {
		case cn.Has("master") && len(cn.Slots) > 0:
			masters++
			owners = append(owners, cn.Addr+"="+strings.Join(cn.Slots, ","))
		case cn.Has("slave"):
			replicas++
		}
	}
	slices.Sort(owners)
	if fresh && (masters != 3 || replicas != 3) {
		return "", fmt.Errorf("%s: sees %d masters and %d replicas", n.Addr, masters, replicas)
	}
	if self.Has("slave") {
		repl, err := n.Do("INFO", "replication")
		if err != nil {
			return "", fmt.Errorf("%s: %w", n.Addr, err)
		}
		if !strings.Contains(repl, "master_link_status:up") {
			return "", fmt.Errorf("%s: replica link to master not up", n.Addr)
		}
	}
	return strings.Join(owners, " "), nil
}

// KeySlot returns the Redis Cluster hash slot of a key, honouring {hash
// tags}.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % 16384)
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
