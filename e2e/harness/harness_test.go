package harness

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRedisNodes(t *testing.T) {
	t.Parallel()
	start := time.Now()
	nodes := RedisNodes(t, 3)
	t.Logf("3 redis nodes up in %v", time.Since(start))
	ctx := ctxT(t, 30*time.Second)

	seen := map[string]bool{}
	for _, n := range nodes {
		if seen[n.Addr] {
			t.Fatalf("two nodes on %s", n.Addr)
		}
		seen[n.Addr] = true
		if n.Port == 6379 {
			t.Fatalf("node on the system port 6379")
		}
		c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
			t.Fatalf("PING %s = %q, %v", n.Addr, got, err)
		}
		if err := c.Set(ctx, "k", n.Addr, 0).Err(); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}

	stopped := nodes[1]
	if stopped.Pid() <= 0 {
		t.Fatalf("Pid() of a running node = %d", stopped.Pid())
	}
	if err := stopped.Stop(); err != nil {
		t.Fatal(err)
	}
	if stopped.Running() || stopped.Pid() != 0 {
		t.Fatalf("after Stop: Running() = %v, Pid() = %d", stopped.Running(), stopped.Pid())
	}
	c := redis.NewClient(&redis.Options{Addr: stopped.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("PING to a stopped node: %v, want connection refused", err)
	}
	for _, other := range []*RedisNode{nodes[0], nodes[2]} {
		oc := redis.NewClient(&redis.Options{Addr: other.Addr})
		if got, err := oc.Get(ctx, "k").Result(); err != nil || got != other.Addr {
			t.Fatalf("GET on %s = %q, %v", other.Addr, got, err)
		}
		_ = oc.Close()
	}

	start = time.Now()
	if err := stopped.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart in %v", time.Since(start))
	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING after Restart = %q, %v", got, err)
	}
	// persistence is off: a restarted node is empty
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("GET after restart: %v, want redis.Nil", err)
	}

	if err := nodes[2].Kill(); err != nil {
		t.Fatal(err)
	}
	if err := redis.NewClient(&redis.Options{Addr: nodes[2].Addr, MaxRetries: -1}).Ping(ctx).Err(); err == nil {
		t.Fatal("PING to a killed node succeeded")
	}
}

func TestRedisExtraArgs(t *testing.T) {
	t.Parallel()
	n := RedisNodes(t, 1, "--requirepass", "s3cret")[0]
	ctx := ctxT(t, 10*time.Second)
	c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without password: %v, want NOAUTH", err)
	}
	c2 := redis.NewClient(&redis.Options{Addr: n.Addr, Password: "s3cret"})
	defer c2.Close()
	if err := c2.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	rc := NewRedisCluster(t)
	t.Logf("6-node redis cluster ready in %v", time.Since(start))
	ctx := ctxT(t, 60*time.Second)

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs()})
	defer cc.Close()
	for i := range 100 {
		k := fmt.Sprintf("key:%d", i)
		if err := cc.Set(ctx, k, "v"+k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	for i := range 100 {
		k := fmt.Sprintf("key:%d", i)
		if got, err := cc.Get(ctx, k).Result(); err != nil || got != "v"+k {
			t.Fatalf("GET %s = %q, %v", k, got, err)
		}
	}
	// the keys really are spread over the three masters
	var mu sync.Mutex
	perMaster := map[string]int64{}
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		mu.Lock()
		perMaster[c.Options().Addr] = n
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(perMaster) != 3 {
		t.Fatalf("keys on %d masters, want 3: %v", len(perMaster), perMaster)
	}
	for a, n := range perMaster {
		if n == 0 {
			t.Fatalf("master %s holds no key: %v", a, perMaster)
		}
	}

	// CLUSTER NODES, through a real client, shows 3 masters and 3 replicas
	n0 := redis.NewClient(&redis.Options{Addr: rc.Nodes[0].Addr})
	defer n0.Close()
	out, err := n0.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	masters, replicas := 0, 0
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		flags := strings.Fields(line)[2]
		switch {
		case strings.Contains(flags, "master"):
			masters++
		case strings.Contains(flags, "slave"):
			replicas++
		}
	}
	if masters != 3 || replicas != 3 {
		t.Fatalf("CLUSTER NODES: %d masters, %d replicas, want 3 and 3:\n%s", masters, replicas, out)
	}
	ms, err := rc.Masters()
	if err != nil || len(ms) != 3 {
		t.Fatalf("Masters() = %d nodes, %v", len(ms), err)
	}
	rs, err := rc.Replicas()
	if err != nil || len(rs) != 3 {
		t.Fatalf("Replicas() = %d nodes, %v", len(rs), err)
	}
	for _, k := range []string{"123456789", "foo", "{user1000}.following", "{}x", "a{b}c{d}", "{", "key:7"} {
		want, err := n0.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := KeySlot(k); int64(got) != want {
			t.Errorf("KeySlot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
	m, err := rc.MasterFor("key:7")
	if err != nil {
		t.Fatal(err)
	}
	mc := redis.NewClient(&redis.Options{Addr: m.Addr, MaxRetries: -1})
	defer mc.Close()
	if got, err := mc.Get(ctx, "key:7").Result(); err != nil || got != "vkey:7" {
		t.Fatalf("GET key:7 on MasterFor's node %s = %q, %v", m.Addr, got, err)
	}

	// Failover: kill that master; its replica takes over the slots.
	if n, err := mc.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}
	start = time.Now()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover after killing a master took %v", time.Since(start))
	m2, err := rc.MasterFor("key:7")
	if err != nil || m2 == m {
		t.Fatalf("MasterFor after failover = %v, %v; want a node other than %s", m2, err, m.Addr)
	}
	// a fresh client: the first one still maps the slot to the dead node
	cc2 := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{m2.Addr}})
	defer cc2.Close()
	if got, err := cc2.Get(ctx, "key:7").Result(); err != nil || got != "vkey:7" {
		t.Fatalf("GET key:7 after failover = %q, %v", got, err)
	}
	// The old master comes back as a replica.
	start = time.Now()
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The nodes learn of the rejoined node (its fail flag cleared, its
	// new role) over the cluster bus: poll until they agree.
	isReplica := false
	deadline := time.Now().Add(15 * time.Second)
	for {
		rs, err = rc.Replicas()
		isReplica = false
		for _, r := range rs {
			isReplica = isReplica || r == m
		}
		if err == nil && len(rs) == 3 && isReplica || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("restarted node rejoined as a replica in %v", time.Since(start))
	if err != nil || len(rs) != 3 {
		t.Fatalf("Replicas() after rejoin = %d nodes, %v", len(rs), err)
	}
	if !isReplica {
		t.Fatalf("restarted old master %s is not a replica", m.Addr)
	}
}

func TestRabbitCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	rc := NewRabbitCluster(t, 3)
	t.Logf("3-node rabbitmq cluster ready in %v", time.Since(start))

	names := map[string]bool{}
	for _, n := range rc.Nodes {
		if n.Port == 5672 || strings.HasPrefix(n.Name, "rabbit@") {
			t.Fatalf("node %s on %s collides with the system node", n.Name, n.AMQPAddr)
		}
		names[n.Name] = true
	}
	running, err := rc.RunningNodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 3 {
		t.Fatalf("cluster_status running nodes = %v, want 3", running)
	}
	for _, r := range running {
		if !names[r] {
			t.Fatalf("cluster_status lists %s, not one of ours %v", r, names)
		}
	}

	conns := make([]*amqp.Connection, 3)
	for i := range rc.Nodes {
		c, err := amqp.Dial(rc.URL(i))
		if err != nil {
			t.Fatalf("dial node %d (%s): %v", i+1, rc.Nodes[i].AMQPAddr, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		conns[i] = c
	}
	ch := func(i int) *amqp.Channel {
		c, err := conns[i].Channel()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	q, err := ch(0).QueueDeclare("harness-test", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := ch(1)
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	const msgs = 10
	for i := range msgs {
		dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", q.Name, true, false,
			amqp.Publishing{Body: fmt.Appendf(nil, "m%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("publish %d via node 2 not confirmed: %v %v", i, ok, err)
		}
	}
	deliveries, err := ch(2).Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		select {
		case d := <-deliveries:
			if want := fmt.Sprintf("m%d", i); string(d.Body) != want {
				t.Fatalf("node 3 got %q, want %q", d.Body, want)
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("node 3 consumed %d of %d messages", i, msgs)
		}
	}

	// A node stopped and started again rejoins the cluster.
	n3 := rc.Nodes[2]
	_ = conns[2].Close()
	start = time.Now()
	if err := n3.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("node 3 stopped in %v", time.Since(start))
	if n3.Running() || n3.Pid() != 0 {
		t.Fatalf("after Stop: Running() = %v, Pid() = %d", n3.Running(), n3.Pid())
	}
	if _, err := amqp.Dial(rc.URL(2)); err == nil {
		t.Fatal("dial to a stopped node succeeded")
	}
	if running, err := rc.RunningNodes(); err != nil || len(running) != 2 {
		t.Fatalf("after Stop, running nodes = %v, %v; want 2", running, err)
	}
	start = time.Now()
	if err := n3.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("node 3 started again in %v", time.Since(start))
	if running, err := rc.RunningNodes(); err != nil || len(running) != 3 {
		t.Fatalf("after Start, running nodes = %v, %v; want 3", running, err)
	}
	c3, err := amqp.Dial(rc.URL(2))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	ch3, err := c3.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch3.QueueDeclarePassive(q.Name, false, false, false, false, nil); err != nil {
		t.Fatalf("queue declared on node 1 not visible from restarted node 3: %v", err)
	}
}

func TestKafka(t *testing.T) {
	t.Parallel()
	start := time.Now()
	kc := NewKafka(t, 3, kfake.SeedTopics(3, "harness"))
	t.Logf("3 kfake brokers up in %v", time.Since(start))
	if len(kc.Addrs) != 3 {
		t.Fatalf("Addrs = %v, want 3", kc.Addrs)
	}
	ctx := ctxT(t, 30*time.Second)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Addrs[0]), kgo.DefaultProduceTopic("harness"),
		kgo.ConsumeTopics("harness"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Brokers) != 3 {
		t.Fatalf("metadata lists %d brokers, want 3: %v", len(meta.Brokers), meta.Brokers)
	}
	listed := map[string]bool{}
	for _, b := range meta.Brokers {
		listed[fmt.Sprintf("%s:%d", b.Host, b.Port)] = true
	}
	for _, a := range kc.Addrs {
		if !listed[a] {
			t.Fatalf("broker %s missing from metadata %v", a, meta.Brokers)
		}
	}

	const n = 100
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	partitions := map[int32]bool{}
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d records: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)] = string(r.Value)
			partitions[r.Partition] = true
		})
	}
	for i := range n {
		if k, want := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i); got[k] != want {
			t.Fatalf("record %s = %q, want %q", k, got[k], want)
		}
	}
	if len(partitions) < 2 {
		t.Fatalf("100 keyed records all landed in partitions %v", partitions)
	}
}

func TestNutcracker(t *testing.T) {
	t.Parallel()
	nodes := RedisNodes(t, 3)
	var servers []string
	for i, n := range nodes {
		servers = append(servers, fmt.Sprintf("%s:1 r%d", n.Addr, i))
	}
	start := time.Now()
	nc := NewNutcracker(t, servers, "fnv1a_64", "ketama", "{}")
	t.Logf("nutcracker up in %v", time.Since(start))
	if nc.Pid() <= 0 {
		t.Fatalf("nutcracker Pid() = %d", nc.Pid())
	}
	ctx := ctxT(t, 30*time.Second)

	// go-redis v9 opens every connection with HELLO, which nutcracker
	// 0.5.0 answers by closing it (redis/go-redis#2616): use redis-cli,
	// the C client, one process for the whole batch.
	cli, err := lookBin("redis-cli")
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i := range 50 {
		fmt.Fprintf(&in, "SET key:%d vkey:%d\nGET key:%d\n", i, i, i)
	}
	cmd := exec.CommandContext(ctx, cli, "-h", "127.0.0.1", "-p", strconv.Itoa(nc.Port))
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli via nutcracker: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 100 {
		t.Fatalf("redis-cli via nutcracker: %d reply lines, want 100:\n%s", len(lines), out)
	}
	for i := range 50 {
		if lines[2*i] != "OK" || lines[2*i+1] != fmt.Sprintf("vkey:%d", i) {
			t.Fatalf("via nutcracker: SET key:%d -> %q, GET -> %q", i, lines[2*i], lines[2*i+1])
		}
	}
	// the keys went through to the backends, spread over them
	holding, total := 0, int64(0)
	for _, n := range nodes {
		bc := redis.NewClient(&redis.Options{Addr: n.Addr})
		size, err := bc.DBSize(ctx).Result()
		_ = bc.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += size
		if size > 0 {
			holding++
		}
	}
	if total != 50 || holding < 2 {
		t.Fatalf("backends hold %d keys on %d nodes, want 50 keys on at least 2", total, holding)
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := lookBin("amb-no-such-server")
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), InstallCommand) {
		t.Fatalf("lookBin of a missing binary: %v; want ErrNotInstalled and the install command", err)
	}
}

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || p == 6379 || p == 5672 {
			t.Fatalf("FreePort returned %d twice or a system port", p)
		}
		seen[p] = true
	}
}
