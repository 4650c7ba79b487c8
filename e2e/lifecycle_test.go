package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/e2e/harness"
	"github.com/ambassador-proxy/ambassador/server"
)

// TestReloadRefusedChangesNothing: with Redis and Kafka on, a reload the
// Kafka frontend refuses (a kafka.sasl change needs a restart) must not
// have applied the Redis frontend's part first: a refused reload leaves
// every frontend as it was.
func TestReloadRefusedChangesNothing(t *testing.T) {
	kc := harness.NewKafka(t, 1)
	rs := harness.RedisNodes(t, 2)
	file := filepath.Join(t.TempDir(), "amb.yml")
	write := func(redisNode, extraKafka string) {
		y := "admin: {listen: 127.0.0.1:0}\n" +
			"health: {interval: 200ms}\n" +
			"redis:\n  listen: 127.0.0.1:0\n  nodes: [" + redisNode + "]\n" +
			"kafka:\n  listen: 127.0.0.1:0\n  bootstrap_servers: [" + strings.Join(kc.Addrs, ",") + "]\n" + extraKafka
		if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(rs[0].Addr, "")
	load := func() (*config.Config, error) {
		return config.Load([]string{"--config", file}, func(string) (string, bool) { return "", false })
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Load: load, Logger: redisLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv)
	redisNodes := func() []string {
		var out []string
		for _, cl := range srv.Clusters() {
			if cl.Name() == "redis" {
				for _, n := range cl.Nodes() {
					out = append(out, n.Addr())
				}
			}
		}
		return out
	}

	write(rs[1].Addr, "  sasl: {mechanism: PLAIN, username: u, password: p}\n")
	if err := srv.Reload(); err == nil || !strings.Contains(err.Error(), "kafka.sasl") {
		t.Fatalf("reload with a kafka.sasl change: %v; want refused, naming it", err)
	}
	if got := redisNodes(); !slices.Equal(got, []string{rs[0].Addr}) {
		t.Errorf("a refused reload changed the Redis nodes to %v", got)
	}
	if got := srv.Config().Redis.Nodes[0].Addr; got != rs[0].Addr {
		t.Errorf("a refused reload changed the configuration in effect: redis.nodes %s", got)
	}
	// the same change without the Kafka part applies
	write(rs[1].Addr, "")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := redisNodes(); !slices.Equal(got, []string{rs[1].Addr}) {
		t.Errorf("after a good reload the Redis nodes are %v", got)
	}
}

// TestKafkaReloadKeepsAdvertisedAddr: listening on 0.0.0.0 with no
// advertised address, clients are told a loopback address; a reload that
// changes nothing must not start telling them 0.0.0.0.
func TestKafkaReloadKeepsAdvertisedAddr(t *testing.T) {
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e := newKafkaEnvWith(t, map[string]string{"KAFKA_LISTEN": "0.0.0.0:" + strconv.Itoa(port)})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	advertised := func() string {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		resp := raw(t, addr, req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 {
			t.Fatalf("brokers %+v", resp.Brokers)
		}
		return resp.Brokers[0].Host + ":" + strconv.Itoa(int(resp.Brokers[0].Port))
	}
	before := advertised()
	if before != addr {
		t.Errorf("advertised %s, want %s", before, addr)
	}
	if err := e.srv.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if after := advertised(); after != before {
		t.Errorf("an unchanged reload changed the advertised broker from %s to %s", before, after)
	}
}

// TestRedisReloadPasswordAndPoolSize: a rotated backend password applies
// to the health probes too (they kept the old one, and the node went down
// for good); a new pool size is refused, as it needs a restart.
func TestRedisReloadPasswordAndPoolSize(t *testing.T) {
	nodes := harness.RedisNodes(t, 1, "--requirepass", "pwA")
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_PASSWORD": "pwA", "HEALTH_CHECK_FAIL_THRESHOLD": "2"}})
	c := e.client(2)
	ctx := context.Background()
	noErr(t, "SET with pwA", c.Set(ctx, "k", "v", 0).Err())

	direct := redis.NewClient(&redis.Options{Addr: nodes[0].Addr, Password: "pwA"})
	defer direct.Close()
	if err := direct.ConfigSet(ctx, "requirepass", "pwB").Err(); err != nil {
		t.Fatal(err)
	}
	e.env["REDIS_PASSWORD"] = "pwB"
	if err := e.srv.Reload(); err != nil {
		t.Fatalf("reload with a new password: %v", err)
	}
	// several probe intervals: the node stays up, with no AUTH error
	time.Sleep(time.Second)
	for addr, n := range e.nodeStates() {
		if n.State != "up" {
			t.Errorf("node %s %s after the password reload: %s", addr, n.State, n.LastError)
		}
	}
	if r := e.srv.Readyz(); !r.Ready {
		t.Errorf("not ready after the password reload: %v", r.Reasons)
	}
	c2 := e.client(2)
	noErr(t, "GET with pwB", c2.Get(ctx, "k").Err())

	e.env["REDIS_POOL_SIZE"] = "4"
	if err := e.srv.Reload(); err == nil || !strings.Contains(err.Error(), "redis.pool_size") {
		t.Errorf("reload with a new pool size: %v; want refused, naming redis.pool_size", err)
	}
	if got := e.srv.Config().Redis.PoolSize; got == 4 {
		t.Error("the refused pool size is shown as in effect")
	}
}

// TestRedisShutdownTimeoutBounds: SHUTDOWN_TIMEOUT bounds the shutdown
// even when a request waits on a node for longer (the request timeout is
// 30s here, and the node holds writes for 15s).
func TestRedisShutdownTimeoutBounds(t *testing.T) {
	nodes := harness.RedisNodes(t, 1)
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_REQUEST_TIMEOUT": "30s", "SHUTDOWN_TIMEOUT": "1s"}})
	ctx := context.Background()
	direct := redis.NewClient(&redis.Options{Addr: nodes[0].Addr})
	defer direct.Close()
	if err := direct.Do(ctx, "CLIENT", "PAUSE", "15000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer direct.Do(ctx, "CLIENT", "UNPAUSE")
	c := e.client(2, func(o *redis.Options) { o.ReadTimeout = 40 * time.Second })
	setErr := make(chan error, 1)
	go func() { setErr <- c.Set(ctx, "held", "v", 0).Err() }()
	time.Sleep(300 * time.Millisecond) // the SET waits on the paused node
	start := time.Now()
	e.stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown took %v with SHUTDOWN_TIMEOUT=1s", took)
	}
	select {
	case err := <-setErr:
		if err == nil {
			t.Error("the SET held by the paused node succeeded during shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Error("the client of the held SET got nothing after the shutdown")
	}
}

// TestReadyNeedsAReachableNode: nodes that cannot be reached do not make
// the ambassador ready, even before their failed probes mark them down
// (a long health interval leaves them up for a while).
func TestReadyNeedsAReachableNode(t *testing.T) {
	ports, err := harness.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"REDIS_CLUSTER_NODES":   "127.0.0.1:" + strconv.Itoa(ports[0]) + ",127.0.0.1:" + strconv.Itoa(ports[1]),
		"REDIS_LISTEN":          "127.0.0.1:0",
		"ADMIN_LISTEN":          "127.0.0.1:0",
		"HEALTH_CHECK_INTERVAL": "20s",
	}
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: redisLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv)
	for range 5 {
		if r := srv.Readyz(); r.Ready {
			t.Fatal("ready with no reachable node")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
