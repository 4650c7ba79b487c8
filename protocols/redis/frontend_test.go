package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/e2e/harness"
	"github.com/ambassador-proxy/ambassador/hashring"
	"github.com/ambassador-proxy/ambassador/health"
	"github.com/ambassador-proxy/ambassador/protocols/redis"
)

// frontend is the Frontend in process over real nodes, without the
// server package: what runs under -race.
type frontend struct {
	f     *redis.Frontend
	cl    *cluster.Cluster
	addr  string
	nodes []*harness.RedisNode
	ring  *hashring.Ring
}

func startFrontend(t *testing.T, nodes []*harness.RedisNode, mutate func(*config.Config)) *frontend {
	t.Helper()
	cfg := config.Default()
	for _, n := range nodes {
		cfg.Redis.Nodes = append(cfg.Redis.Nodes, config.Node{Addr: n.Addr, Weight: 1})
	}
	cfg.Redis.RequestTimeout = config.Duration(2 * time.Second)
	if mutate != nil {
		mutate(cfg)
	}
	specs := make([]cluster.NodeSpec, len(nodes))
	ringNodes := make([]hashring.Node, len(nodes))
	for i, n := range nodes {
		specs[i] = cluster.NodeSpec{Addr: n.Addr, Weight: 1}
		ringNodes[i] = hashring.Node{Name: n.Addr, Weight: 1}
	}
	rc := hashring.Config{Hash: cfg.Redis.Hash, Distribution: cfg.Redis.Distribution, HashTag: cfg.Redis.HashTag}
	ring, err := hashring.New(ringNodes, rc)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.New(specs, cluster.Options{Name: "redis", Ring: rc, AutoEject: cfg.Redis.AutoEject,
		Health: health.Options{Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, FailThreshold: 2, RiseThreshold: 1, Probe: redis.Probe(cfg)}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := redis.New(redis.Options{Config: cfg, Cluster: cl})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = cl.Run(ctx) })
	wg.Go(func() {
		if err := f.Serve(ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := f.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		wg.Wait()
	})
	return &frontend{f: f, cl: cl, addr: ln.Addr().String(), nodes: nodes, ring: ring}
}

func (fe *frontend) client(t *testing.T, proto int) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: fe.addr, Protocol: proto, MaxRetries: -1, PoolSize: 4})
	t.Cleanup(func() { c.Close() })
	return c
}

func (fe *frontend) keyOn(i int, prefix string) string {
	for n := 0; ; n++ {
		k := prefix + strconv.Itoa(n)
		if fe.ring.PickString(k) == i {
			return k
		}
	}
}

// Many clients of every kind at once, a node killed and restarted in the
// middle: replies stay in order and correct, nothing races (run with
// -race), Shutdown ends every goroutine.
func TestFrontendConcurrentLoad(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	fe := startFrontend(t, nodes, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const victim = 2
	victimAddr := nodes[victim].Addr

	var stop atomic.Bool
	var killed atomic.Bool
	var gen atomic.Int32 // changes as the victim is killed and restarted
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	problem := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	// a node error is fine for the victim's keys once it was killed
	acceptable := func(key string, err error) bool {
		return err != nil && killed.Load() && fe.ring.PickString(key) == victim && strings.Contains(err.Error(), victimAddr)
	}

	// pipelines of SET/GET/INCR/MGET spanning the nodes, checked in order
	for w := range 8 {
		wg.Go(func() {
			c := fe.client(t, 2+w%2)
			for round := 0; !stop.Load(); round++ {
				p := c.Pipeline()
				type step struct {
					cmd  goredis.Cmder
					key  string
					want string
				}
				var steps []step
				for i := range 30 {
					k := fmt.Sprintf("load:%d:%d", w, i)
					v := fmt.Sprintf("%d-%d", round, i)
					steps = append(steps, step{p.Set(ctx, k, v, 0), k, "OK"}, step{p.Get(ctx, k), k, v})
				}
				steps = append(steps, step{p.MGet(ctx, fmt.Sprintf("load:%d:0", w), fmt.Sprintf("load:%d:1", w)), "", ""})
				g0 := gen.Load()
				_, _ = p.Exec(ctx)
				// the victim's keys may read nil when the victim was killed
				// or restarted during the pipeline (a SET acknowledged by the
				// old process, the GET answered by the new, empty one), or
				// when their SET failed because it was down and the GET found
				// the restarted node up
				straddled := gen.Load() != g0
				unset := map[string]bool{}
				for _, s := range steps {
					if s.key == "" {
						continue
					}
					var got string
					var err error
					switch c := s.cmd.(type) {
					case *goredis.StatusCmd:
						got, err = c.Result()
					case *goredis.StringCmd:
						got, err = c.Result()
					}
					if acceptable(s.key, err) {
						if _, isSet := s.cmd.(*goredis.StatusCmd); isSet {
							unset[s.key] = true
						}
						continue
					}
					if (unset[s.key] || straddled && fe.ring.PickString(s.key) == victim) && errors.Is(err, goredis.Nil) {
						continue
					}
					if err != nil || got != s.want {
						problem("worker %d round %d %v: %q, %v; want %q", w, round, s.cmd.Args(), got, err, s.want)
					}
				}
			}
		})
	}
	// transactions on one node
	wg.Go(func() {
		c := fe.client(t, 3)
		k := "{" + fe.keyOn(0, "tx") + "}n" // on a node that stays up
		for i := 0; !stop.Load(); i++ {
			cmds, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.Incr(ctx, k)
				p.Incr(ctx, k)
				return nil
			})
			if err != nil {
				problem("transaction: %v", err)
				continue
			}
			a, b := cmds[0].(*goredis.IntCmd).Val(), cmds[1].(*goredis.IntCmd).Val()
			if b != a+1 {
				problem("transaction results %d, %d not consecutive", a, b)
			}
		}
	})
	// blocking pops fed by a pusher
	wg.Go(func() {
		c := fe.client(t, 2)
		push := fe.client(t, 2)
		k := fe.keyOn(0, "blk")
		for i := 0; !stop.Load(); i++ {
			go func() { time.Sleep(5 * time.Millisecond); push.RPush(ctx, k, i) }()
			v, err := c.BLPop(ctx, 2*time.Second, k).Result()
			if err != nil || v[1] != strconv.Itoa(i) {
				problem("BLPOP %d: %v, %v", i, v, err)
				return
			}
		}
	})
	// Pub/Sub: every message published to a live node arrives once
	wg.Go(func() {
		c := fe.client(t, 3)
		pub := fe.client(t, 2)
		ch := fe.keyOn(1, "psch")
		ps := c.Subscribe(ctx, ch)
		defer ps.Close()
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			problem("SUBSCRIBE: %v", err)
			return
		}
		for i := 0; !stop.Load(); i++ {
			if err := pub.Publish(ctx, ch, strconv.Itoa(i)).Err(); err != nil {
				problem("PUBLISH: %v", err)
				return
			}
			m, err := ps.ReceiveTimeout(ctx, 3*time.Second)
			if msg, ok := m.(*goredis.Message); err != nil || !ok || msg.Payload != strconv.Itoa(i) {
				problem("message %d: %v, %v", i, m, err)
				return
			}
		}
	})
	// protocol errors and short-lived connections
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			conn, err := net.Dial("tcp", fe.addr)
			if err != nil {
				problem("dial: %v", err)
				return
			}
			if i%2 == 0 {
				_, _ = conn.Write([]byte("*1\r\n$4\r\nPING\r\n*x\r\n"))
			} else {
				_, _ = conn.Write([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")) // and go away before the reply
			}
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			buf := make([]byte, 128)
			_, _ = conn.Read(buf)
			conn.Close()
		}
	})

	time.Sleep(700 * time.Millisecond)
	killed.Store(true)
	gen.Add(1)
	if err := nodes[victim].Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	gen.Add(1)
	if err := nodes[victim].Restart(); err != nil {
		t.Fatal(err)
	}
	gen.Add(1)
	time.Sleep(700 * time.Millisecond)
	stop.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("the load did not stop: a client hangs\n%s", buf[:runtime.Stack(buf, true)])
	}
	for _, p := range problems {
		t.Error(p)
	}
	// the restarted node serves again
	c := fe.client(t, 2)
	k := fe.keyOn(victim, "back")
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.Set(ctx, k, "v", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node's keys still fail: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Shutdown ends the frontend's goroutines: client loops, backend readers,
// Pub/Sub relays.
func TestFrontendShutdownEndsGoroutines(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	base := runtime.NumGoroutine()
	cfg := config.Default()
	for _, n := range nodes {
		cfg.Redis.Nodes = append(cfg.Redis.Nodes, config.Node{Addr: n.Addr, Weight: 1})
	}
	specs := make([]cluster.NodeSpec, len(nodes))
	for i, n := range nodes {
		specs[i] = cluster.NodeSpec{Addr: n.Addr, Weight: 1}
	}
	cl, err := cluster.New(specs, cluster.Options{Name: "redis", Ring: hashring.Config{HashTag: "{}"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := redis.New(redis.Options{Config: cfg, Cluster: cl})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- f.Serve(ln) }()
	ctx := context.Background()
	var clients []*goredis.Client
	for proto := 2; proto <= 3; proto++ {
		c := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String(), Protocol: proto, MaxRetries: -1})
		clients = append(clients, c)
		for i := range 20 {
			if err := c.Set(ctx, fmt.Sprintf("sd:%d", i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		ps := c.PSubscribe(ctx, "sd*")
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = c.BLPop(ctx, 0, "sd:never").Result() }()
	}
	time.Sleep(200 * time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	start := time.Now()
	_ = f.Shutdown(sctx)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	select {
	case err := <-served:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	for _, c := range clients {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Shutdown, %d before the frontend\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
