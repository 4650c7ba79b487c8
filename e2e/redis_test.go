package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/e2e/harness"
	"github.com/ambassador-proxy/ambassador/hashring"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
	"github.com/ambassador-proxy/ambassador/server"
)

// The Redis frontend against real redis-server nodes, driven by go-redis
// (RESP2 and RESP3) and redis-cli. Where keys land is checked by reading
// the nodes directly and by the hash ring the ambassador uses.

const crossSlot = "CROSSSLOT Keys in request don't hash to the same node"

// redisEnv is the real server in process in front of standalone nodes.
type redisEnv struct {
	t      testing.TB
	nodes  []*harness.RedisNode
	addrs  []string
	cfg    *config.Config
	srv    *server.Server
	addr   string // the ambassador's Redis listener
	admin  string
	ring   *hashring.Ring
	direct []*redis.Client // one per node, straight to it
	stop   func()
	env    map[string]string // the variables; srv.Reload reads them again
}

type envOpts struct {
	env    map[string]string      // variables, as in production
	names  []string               // node names (twemproxy server names)
	mutate func(c *config.Config) // settings with no variable
}

func redisLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

func newRedisEnv(t testing.TB, nodes []*harness.RedisNode, o envOpts) *redisEnv {
	t.Helper()
	e := &redisEnv{t: t, nodes: nodes, addrs: harness.RedisAddrs(nodes)}
	specs := make([]string, len(nodes))
	for i, a := range e.addrs {
		specs[i] = a
		if o.names != nil {
			specs[i] += " " + o.names[i]
		}
	}
	env := map[string]string{
		"REDIS_CLUSTER_NODES":   strings.Join(specs, ","),
		"REDIS_LISTEN":          "127.0.0.1:0",
		"ADMIN_LISTEN":          "127.0.0.1:0",
		"HEALTH_CHECK_INTERVAL": "200ms",
	}
	for k, v := range o.env {
		env[k] = v
	}
	e.env = env
	load := func() (*config.Config, error) {
		cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := e.env[k]; return v, ok })
		if err == nil && o.mutate != nil {
			o.mutate(cfg)
		}
		return cfg, err
	}
	cfg, err := load()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	e.cfg = cfg
	ringNodes := make([]hashring.Node, len(nodes))
	for i, a := range e.addrs {
		ringNodes[i] = hashring.Node{Name: a, Weight: 1}
		if o.names != nil {
			ringNodes[i].Name = o.names[i]
		}
	}
	e.ring, err = hashring.New(ringNodes, hashring.Config{Hash: cfg.Redis.Hash, Distribution: cfg.Redis.Distribution, HashTag: cfg.Redis.HashTag})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: redisLogger(t), Load: load})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	e.srv = srv
	e.stop = runServer(t, srv)
	e.addr = srv.Addr("redis").String()
	e.admin = srv.Addr("admin").String()
	for _, a := range e.addrs {
		c := redis.NewClient(&redis.Options{Addr: a, Protocol: 2, Password: cfg.Redis.Password.Reveal(), Username: cfg.Redis.Username,
			DisableIdentity: true, MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		e.direct = append(e.direct, c)
	}
	return e
}

// client is a go-redis client of the ambassador.
func (e *redisEnv) client(proto int, opts ...func(*redis.Options)) *redis.Client {
	o := &redis.Options{Addr: e.addr, Protocol: proto, MaxRetries: -1}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	e.t.Cleanup(func() { c.Close() })
	return c
}

// owner is the index of the node the ring places key on.
func (e *redisEnv) owner(key string) int { return e.ring.PickString(key) }

// keyOn returns a key with the prefix that the ring places on node i.
func (e *redisEnv) keyOn(i int, prefix string) string {
	for n := 0; ; n++ {
		k := prefix + strconv.Itoa(n)
		if e.owner(k) == i {
			return k
		}
	}
}

// keysOn returns n distinct keys with the prefix on node i.
func (e *redisEnv) keysOn(i, n int, prefix string) []string {
	var out []string
	for j := 0; len(out) < n; j++ {
		k := prefix + strconv.Itoa(j)
		if e.owner(k) == i {
			out = append(out, k)
		}
	}
	return out
}

// where returns the nodes that hold key, read directly.
func (e *redisEnv) where(key string) []int {
	e.t.Helper()
	var on []int
	for i, d := range e.direct {
		n, err := d.Exists(context.Background(), key).Result()
		if err != nil {
			e.t.Fatalf("EXISTS on node %d: %v", i, err)
		}
		if n == 1 {
			on = append(on, i)
		}
	}
	return on
}

// expectOn fails unless key is on node i and nowhere else.
func (e *redisEnv) expectOn(key string, i int) {
	e.t.Helper()
	if got := e.where(key); !slices.Equal(got, []int{i}) {
		e.t.Errorf("key %q is on nodes %v, want only node %d (%s), the ring's pick", key, got, i, e.addrs[i])
	}
}

// snapshot is every node's keys, sorted, read directly.
func (e *redisEnv) snapshot() [][]string {
	e.t.Helper()
	out := make([][]string, len(e.direct))
	for i, d := range e.direct {
		keys, err := d.Keys(context.Background(), "*").Result()
		if err != nil {
			e.t.Fatalf("KEYS on node %d: %v", i, err)
		}
		sort.Strings(keys)
		out[i] = keys
	}
	return out
}

func (e *redisEnv) flushNodes() {
	e.t.Helper()
	for i, d := range e.direct {
		if err := d.FlushAll(context.Background()).Err(); err != nil {
			e.t.Fatalf("FLUSHALL on node %d: %v", i, err)
		}
	}
}

// cli runs redis-cli against the ambassador.
func (e *redisEnv) cli(stdin string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(e.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("redis-cli %q: %v: %s", args, err, errb.String())
	}
	return strings.TrimRight(out.String(), "\n"), nil
}

func (e *redisEnv) mustCLI(args ...string) string {
	e.t.Helper()
	out, err := e.cli("", args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *redisEnv) httpGet(path string) (int, string) {
	e.t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + e.admin + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type nodeReport struct {
	Addr      string `json:"addr"`
	State     string `json:"state"`
	LastError string `json:"last_error"`
	Active    int64  `json:"active_connections"`
	Requests  uint64 `json:"requests"`
}

// nodeStates is /nodes of the redis cluster, by address.
func (e *redisEnv) nodeStates() map[string]nodeReport {
	e.t.Helper()
	_, body := e.httpGet("/nodes")
	var r struct {
		Clusters []struct {
			Name  string       `json:"name"`
			Nodes []nodeReport `json:"nodes"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		e.t.Fatalf("/nodes: %v: %s", err, body)
	}
	out := map[string]nodeReport{}
	for _, c := range r.Clusters {
		if c.Name == "redis" {
			for _, n := range c.Nodes {
				out[n.Addr] = n
			}
		}
	}
	return out
}

// metric reads one sample of /metrics, 0 when absent.
func (e *redisEnv) metric(sample string) float64 {
	e.t.Helper()
	_, body := e.httpGet("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				e.t.Fatalf("metric %s: %q", sample, line)
			}
			return f
		}
	}
	return 0
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawConn is a plain TCP client speaking bytes.
type rawConn struct {
	t   testing.TB
	c   net.Conn
	buf []byte
}

func (e *redisEnv) raw() *rawConn {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 2*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &rawConn{t: e.t, c: c}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// reply reads one whole reply (within d).
func (r *rawConn) reply(d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	tmp := make([]byte, 64<<10)
	for {
		if n, err := resp.ReplyLen(r.buf); err == nil {
			s := string(r.buf[:n])
			r.buf = r.buf[n:]
			return s, nil
		} else if err != resp.ErrIncomplete {
			return "", err
		}
		_ = r.c.SetReadDeadline(deadline)
		n, err := r.c.Read(tmp)
		r.buf = append(r.buf, tmp[:n]...)
		if err != nil && n == 0 {
			return "", err
		}
	}
}

func (r *rawConn) mustReply() string {
	r.t.Helper()
	s, err := r.reply(5 * time.Second)
	if err != nil {
		r.t.Fatalf("reading a reply: %v (buffered %q)", err, r.buf)
	}
	return s
}

// do sends a command and returns its reply.
func (r *rawConn) do(args ...string) string {
	r.t.Helper()
	r.send(mbulk(args...))
	return r.mustReply()
}

// closed reports whether the server closed the connection (EOF) within d,
// with no further bytes.
func (r *rawConn) closed(d time.Duration) (bool, string) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(r.c)
	extra := string(r.buf) + string(b)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, extra
	}
	return true, extra
}

func mbulk(args ...string) string { return string(resp.AppendCommandStrings(nil, args...)) }

func bulk(s string) string { return string(resp.AppendBulkString(nil, s)) }

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func wantErr(t testing.TB, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want one containing %q", what, err, want)
	}
}

func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestRedis runs the routing classes over one ambassador in front of 3
// nodes: each subtest starts from empty nodes.
func TestRedis(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	e := newRedisEnv(t, nodes, envOpts{mutate: func(c *config.Config) { c.Redis.MaxBulkLen = 1 << 20 }})
	ctx := ctxT(t, 5*time.Minute)
	subtests := []struct {
		name string
		fn   func(t *testing.T, e *redisEnv, ctx context.Context)
	}{
		{"SingleKeyPlacement", testSingleKeyPlacement},
		{"SplitCommands", testSplitCommands},
		{"CrossSlot", testCrossSlot},
		{"Keyspace", testKeyspace},
		{"Local", testLocal},
		{"Transactions", testTransactions},
		{"Pipelines", testPipelines},
		{"PubSub", testPubSub},
		{"BadRequests", testBadRequests},
		{"SharedConnNotPoisoned", testSharedConnNotPoisoned},
		{"Misc", testMisc},
		{"Metrics", testMetrics},
	}
	for _, st := range subtests {
		e.flushNodes()
		t.Run(st.name, func(t *testing.T) {
			e.t = t
			defer func() { e.t = t }()
			st.fn(t, e, ctx)
		})
	}
}

// 1. Single-key commands of every type run on the ring's node.
func testSingleKeyPlacement(t *testing.T, e *redisEnv, ctx context.Context) {
	for _, proto := range []int{2, 3} {
		c := e.client(proto)
		pre := fmt.Sprintf("p%d:", proto)
		type kind struct {
			name  string
			write func(k string) error
			check func(k string) error
			typ   string
		}
		kinds := []kind{
			{"string", func(k string) error { return c.Set(ctx, k, "v-"+k, 0).Err() },
				func(k string) error { return expect(c.Get(ctx, k).Result())("v-" + k) }, "string"},
			{"list", func(k string) error { return c.RPush(ctx, k, "a", "b").Err() },
				func(k string) error { return expect(c.LRange(ctx, k, 0, -1).Result())([]string{"a", "b"}) }, "list"},
			{"hash", func(k string) error { return c.HSet(ctx, k, "f", "v").Err() },
				func(k string) error { return expect(c.HGetAll(ctx, k).Result())(map[string]string{"f": "v"}) }, "hash"},
			{"set", func(k string) error { return c.SAdd(ctx, k, "m").Err() },
				func(k string) error { return expect(c.SMembers(ctx, k).Result())([]string{"m"}) }, "set"},
			{"zset", func(k string) error { return c.ZAdd(ctx, k, redis.Z{Score: 1.5, Member: "m"}).Err() },
				func(k string) error { return expect(c.ZScore(ctx, k, "m").Result())(1.5) }, "zset"},
			{"stream", func(k string) error {
				return c.XAdd(ctx, &redis.XAddArgs{Stream: k, ID: "1-1", Values: []string{"f", "v"}}).Err()
			},
				func(k string) error { return expect(c.XLen(ctx, k).Result())(int64(1)) }, "stream"},
			{"hyperloglog", func(k string) error { return c.PFAdd(ctx, k, "a", "b", "c").Err() },
				func(k string) error { return expect(c.PFCount(ctx, k).Result())(int64(3)) }, "string"},
			{"bitmap", func(k string) error { return c.SetBit(ctx, k, 7, 1).Err() },
				func(k string) error { return expect(c.GetBit(ctx, k, 7).Result())(int64(1)) }, "string"},
			{"geo", func(k string) error {
				return c.GeoAdd(ctx, k, &redis.GeoLocation{Name: "p", Longitude: 13.361389, Latitude: 38.115556}).Err()
			}, func(k string) error { return expect(c.ZCard(ctx, k).Result())(int64(1)) }, "zset"},
			{"counter", func(k string) error { return c.IncrBy(ctx, k, 5).Err() },
				func(k string) error { return expect(c.Get(ctx, k).Result())("5") }, "string"},
			{"expiring", func(k string) error { return c.Do(ctx, "SETEX", k, 3600, "v").Err() },
				func(k string) error {
					ttl, err := c.TTL(ctx, k).Result()
					if err != nil || ttl <= 0 || ttl > time.Hour {
						return fmt.Errorf("TTL %v, %v", ttl, err)
					}
					return nil
				}, "string"},
		}
		perNode := make([]int, len(e.nodes))
		for _, kd := range kinds {
			for i := range 6 {
				k := fmt.Sprintf("%s%s:%d", pre, kd.name, i)
				if err := kd.write(k); err != nil {
					t.Fatalf("RESP%d %s write %s: %v", proto, kd.name, k, err)
				}
				if err := kd.check(k); err != nil {
					t.Errorf("RESP%d %s read back %s: %v", proto, kd.name, k, err)
				}
				owner := e.owner(k)
				perNode[owner]++
				e.expectOn(k, owner)
				if typ, _ := e.direct[owner].Type(ctx, k).Result(); typ != kd.typ {
					t.Errorf("%s on node %d has type %q, want %q", k, owner, typ, kd.typ)
				}
			}
		}
		for i, n := range perNode {
			if n == 0 {
				t.Fatalf("no test key on node %d: the placement check proves nothing", i)
			}
		}
	}
	// redis-cli: one key per node, written by the C client
	for i := range e.nodes {
		k := e.keyOn(i, "cli:")
		if out := e.mustCLI("SET", k, "from-cli"); out != "OK" {
			t.Errorf("redis-cli SET: %q", out)
		}
		e.expectOn(k, i)
		if v, _ := e.direct[i].Get(ctx, k).Result(); v != "from-cli" {
			t.Errorf("node %d has %q for %s", i, v, k)
		}
		if out := e.mustCLI("GET", k); out != "from-cli" {
			t.Errorf("redis-cli GET: %q", out)
		}
	}
	// hash tags: keys with one tag share a node
	tagNode := e.owner("tag1")
	for _, k := range []string{"{tag1}a", "{tag1}b", "x{tag1}y"} {
		if err := e.client(2).Set(ctx, k, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		e.expectOn(k, tagNode)
	}
}

// expect returns a checker of a go-redis result against want.
func expect[T any](got T, err error) func(want T) error {
	return func(want T) error {
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	}
}

// 2. MGET, MSET, DEL, UNLINK, EXISTS, TOUCH split by node and merged in
// the client's order; MSETNX only on one node.
func testSplitCommands(t *testing.T, e *redisEnv, ctx context.Context) {
	for _, proto := range []int{2, 3} {
		e.flushNodes()
		c := e.client(proto)
		var keys []string
		var kv []any
		for i := range 3 {
			for _, k := range e.keysOn(i, 4, fmt.Sprintf("sp%d:", i)) {
				keys = append(keys, k)
				kv = append(kv, k, "val-"+k)
			}
		}
		rand.Shuffle(len(kv)/2, func(i, j int) {
			kv[2*i], kv[2*j] = kv[2*j], kv[2*i]
			kv[2*i+1], kv[2*j+1] = kv[2*j+1], kv[2*i+1]
		})
		if err := c.MSet(ctx, kv...).Err(); err != nil {
			t.Fatalf("MSET across nodes: %v", err)
		}
		for _, k := range keys {
			e.expectOn(k, e.owner(k))
			if v, _ := e.direct[e.owner(k)].Get(ctx, k).Result(); v != "val-"+k {
				t.Errorf("node %d: %s = %q", e.owner(k), k, v)
			}
		}
		// MGET in the client's order, duplicates and missing keys kept
		missing0, missing2 := e.keyOn(0, "nope"), e.keyOn(2, "nope")
		order := []string{keys[5], missing0, keys[0], keys[5], keys[11], missing2, keys[0], keys[7]}
		got, err := c.MGet(ctx, order...).Result()
		if err != nil {
			t.Fatalf("MGET: %v", err)
		}
		if len(got) != len(order) {
			t.Fatalf("MGET: %d values for %d keys", len(got), len(order))
		}
		for i, k := range order {
			var want any = "val-" + k
			if strings.HasPrefix(k, "nope") {
				want = nil
			}
			if got[i] != want {
				t.Errorf("RESP%d MGET[%d] (%s) = %v, want %v", proto, i, k, got[i], want)
			}
		}
		// the counting commands answer what one Redis would: a 4th,
		// independent node with the same keys is the reference
		ref := harnessRef(t)
		if err := ref.MSet(ctx, kv...).Err(); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range [][]string{
			{"EXISTS", keys[0], keys[0], missing0, keys[11], keys[4]},
			{"TOUCH", keys[1], missing2, keys[9], keys[1]},
			{"DEL", keys[2], keys[2], missing0, keys[6], keys[10]},
			{"UNLINK", keys[3], missing2, keys[7], keys[11]},
			{"EXISTS", keys[2], keys[3], keys[6]},
		} {
			args := make([]any, len(cmd))
			for i, a := range cmd {
				args[i] = a
			}
			want, err := ref.Do(ctx, args...).Int64()
			noErr(t, "reference "+cmd[0], err)
			gotN, err := c.Do(ctx, args...).Int64()
			if err != nil || gotN != want {
				t.Errorf("RESP%d %q = %d, %v; one Redis says %d", proto, cmd, gotN, err, want)
			}
		}
		for _, k := range []string{keys[2], keys[3], keys[6], keys[7], keys[10], keys[11]} {
			if on := e.where(k); len(on) != 0 {
				t.Errorf("%s deleted through the ambassador is still on nodes %v", k, on)
			}
		}
		// MSETNX: across nodes refused, nothing written; one node works
		a, b := e.keyOn(0, "nx"), e.keyOn(1, "nx")
		before := e.snapshot()
		err = c.MSetNX(ctx, a, "1", b, "2").Err()
		if err == nil || err.Error() != crossSlot {
			t.Errorf("MSETNX across nodes: %v, want %q", err, crossSlot)
		}
		if after := e.snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("MSETNX across nodes wrote something: before %v after %v", before, after)
		}
		ok, err := c.MSetNX(ctx, "{nx}a", "1", "{nx}b", "2").Result()
		if err != nil || !ok {
			t.Errorf("MSETNX on one node: %v, %v", ok, err)
		}
		ok, err = c.MSetNX(ctx, "{nx}a", "3", "{nx}c", "4").Result()
		if err != nil || ok {
			t.Errorf("second MSETNX with an existing key: %v, %v; want false", ok, err)
		}
		e.expectOn("{nx}b", e.owner("nx"))
		ref.FlushAll(ctx)
	}
	// redis-cli MGET across nodes, in order
	e.flushNodes()
	k0, k1, k2 := e.keyOn(0, "c"), e.keyOn(1, "c"), e.keyOn(2, "c")
	e.mustCLI("MSET", k2, "two", k0, "zero", k1, "one")
	if out := e.mustCLI("MGET", k1, k2, "nokey", k0); out != "one\ntwo\n\nzero" {
		t.Errorf("redis-cli MGET: %q", out)
	}
}

var (
	refOnce sync.Once
	refNode *harness.RedisNode
	refErr  error
)

// harnessRef is a standalone reference node, shared by the tests of the
// binary: what one Redis answers.
func harnessRef(t testing.TB) *redis.Client {
	t.Helper()
	refOnce.Do(func() { refNode, refErr = harness.StartRedisNode() })
	if refErr != nil {
		t.Fatal(refErr)
	}
	c := redis.NewClient(&redis.Options{Addr: refNode.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.FlushAll(context.Background()); c.Close() })
	return c
}

// 3. Multi-key commands whose keys are on several nodes are refused with
// CROSSSLOT and write nothing; with a hash tag they run.
func testCrossSlot(t *testing.T, e *redisEnv, ctx context.Context) {
	c := e.client(2)
	lib := "#!lua name=xlib\nredis.register_function('xset', function(keys, args) for i, k in ipairs(keys) do redis.call('set', k, args[1]) end return #keys end)"
	if got, err := c.FunctionLoad(ctx, lib).Result(); err != nil || got != "xlib" {
		t.Fatalf("FUNCTION LOAD: %q, %v", got, err)
	}
	setup := func(c *redis.Client, a, b, d string) {
		t.Helper()
		for _, err := range []error{
			c.Set(ctx, a, "s", 0).Err(),
			c.SAdd(ctx, a+":set", "m").Err(), c.SAdd(ctx, b+":set", "m", "n").Err(),
			c.RPush(ctx, a+":list", "l").Err(),
			c.ZAdd(ctx, a+":z", redis.Z{Score: 1, Member: "m"}).Err(), c.ZAdd(ctx, b+":z", redis.Z{Score: 2, Member: "n"}).Err(),
			c.PFAdd(ctx, a+":hll", "x").Err(), c.PFAdd(ctx, b+":hll", "y").Err(),
			c.Set(ctx, a+":bits", "\xff", 0).Err(), c.Set(ctx, b+":bits", "\x0f", 0).Err(),
		} {
			noErr(t, "setup", err)
		}
	}
	// a hash tag pins a base key and its suffixed keys to one node
	pick := func(i int) string { return "{" + e.keyOn(i, "cstag") + "}" }
	// src on node 0, dst on node 1, other on node 2
	src, dst, other := pick(0), pick(1), pick(2)
	setup(c, src, dst, other)
	cmds := [][]any{
		{"RENAME", src, dst},
		{"COPY", src, dst},
		{"SMOVE", src + ":set", dst + ":set", "m"},
		{"LMOVE", src + ":list", dst + ":list", "LEFT", "RIGHT"},
		{"RPOPLPUSH", src + ":list", dst + ":list"},
		{"SINTERSTORE", other, src + ":set", dst + ":set"},
		{"SUNIONSTORE", src + ":dst", src + ":set", dst + ":set"},
		{"ZUNIONSTORE", other, 2, src + ":z", dst + ":z"},
		{"ZINTERSTORE", src + ":zd", 2, src + ":z", dst + ":z"},
		{"PFMERGE", other, src + ":hll", dst + ":hll"},
		{"BITOP", "AND", other, src + ":bits", dst + ":bits"},
		{"EVAL", "redis.call('set', KEYS[1], 'a'); redis.call('set', KEYS[2], 'b'); return 1", 2, src + ":e", dst + ":e"},
		{"FCALL", "xset", 2, src + ":f", dst + ":f", "v"},
		{"MSETNX", src + ":n", "1", dst + ":n", "2"},
		{"SDIFFSTORE", src + ":dd", src + ":set", other},
		// blocking commands too (refused at once, never blocking)
		{"BLMOVE", src + ":list", dst + ":list", "LEFT", "RIGHT", 1},
		{"BRPOPLPUSH", src + ":list", dst + ":list", 1},
		{"BLPOP", src + ":nolist", dst + ":nolist", 1},
		{"BZPOPMIN", src + ":noz", dst + ":noz", 1},
		{"XREAD", "BLOCK", 1000, "STREAMS", src + ":s", dst + ":s", "$", "$"},
		{"XREAD", "STREAMS", src + ":s", dst + ":s", "0", "0"},
		{"BLMPOP", 1, 2, src + ":list", dst + ":list", "LEFT"},
	}
	before := e.snapshot()
	dumps := dumpAll(t, e)
	for _, cmd := range cmds {
		start := time.Now()
		err := c.Do(ctx, cmd...).Err()
		if err == nil || err.Error() != crossSlot {
			t.Errorf("%v: %v, want %q", cmd, err, crossSlot)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("%v took %v to be refused", cmd, d)
		}
	}
	if after := e.snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused commands changed the keyspace:\nbefore %v\nafter  %v", before, after)
	}
	if d := dumpAll(t, e); d != dumps {
		t.Errorf("refused commands changed values")
	}
	// redis-cli sees the same error
	if out, _ := e.cli("", "RENAME", src, dst); !strings.Contains(out, crossSlot) {
		t.Errorf("redis-cli RENAME across nodes: %q", out)
	}
	// with a hash tag every one of them runs, on the tag's node
	e.flushNodes()
	ta, tb, tc := "{t}a", "{t}b", "{t}c"
	node := e.owner("t")
	setup(c, ta, tb, tc)
	for _, cmd := range [][]any{
		{"SMOVE", ta + ":set", tb + ":set", "m"},
		{"LMOVE", ta + ":list", tb + ":list", "LEFT", "RIGHT"},
		{"SUNIONSTORE", tc + ":si", ta + ":set", tb + ":set"},
		{"ZUNIONSTORE", tc + ":zu", 2, ta + ":z", tb + ":z"},
		{"PFMERGE", tc + ":hll", ta + ":hll", tb + ":hll"},
		{"BITOP", "AND", tc + ":bits", ta + ":bits", tb + ":bits"},
		{"EVAL", "redis.call('set', KEYS[1], 'a'); redis.call('set', KEYS[2], 'b'); return 1", 2, ta + ":e", tb + ":e"},
		{"FCALL", "xset", 2, ta + ":f", tb + ":f", "v"},
		{"COPY", ta, tc + ":copy"},
		{"RENAME", ta, tb},
	} {
		if err := c.Do(ctx, cmd...).Err(); err != nil {
			t.Errorf("%v with a hash tag: %v", cmd, err)
		}
	}
	for _, k := range []string{tb, tb + ":list", tc + ":si", tc + ":zu", tc + ":hll", tc + ":bits", ta + ":e", tb + ":e", ta + ":f", tb + ":f", tc + ":copy"} {
		e.expectOn(k, node)
	}
	if v, _ := e.direct[node].Get(ctx, tb).Result(); v != "s" {
		t.Errorf("RENAME {t}a {t}b: node has %q", v)
	}
	if n, _ := e.direct[node].PFCount(ctx, tc+":hll").Result(); n != 2 {
		t.Errorf("PFMERGE result counts %d, want 2", n)
	}
}

// dumpAll is every key's DUMP on every node, to see that nothing changed.
func dumpAll(t testing.TB, e *redisEnv) string {
	var b strings.Builder
	for i, keys := range e.snapshot() {
		for _, k := range keys {
			d, _ := e.direct[i].Dump(context.Background(), k).Result()
			fmt.Fprintf(&b, "%d %s %x\n", i, k, d)
		}
	}
	return b.String()
}

// 4. Keyspace-wide commands go to every node and are merged.
func testKeyspace(t *testing.T, e *redisEnv, ctx context.Context) {
	c := e.client(2)
	c3 := e.client(3)
	const n = 300
	var kv []any
	want := map[string]bool{}
	for i := range n {
		k := fmt.Sprintf("ks:%d", i)
		kv = append(kv, k, i)
		want[k] = true
	}
	noErr(t, "MSET", c.MSet(ctx, kv...).Err())
	noErr(t, "SET other", c.Set(ctx, "other", "x", 0).Err())
	perNode := make([]int, len(e.nodes))
	for i, keys := range e.snapshot() {
		perNode[i] = len(keys)
		if len(keys) == 0 {
			t.Fatalf("node %d got no key", i)
		}
	}

	// KEYS: the union of the nodes' keys
	for _, cl := range []*redis.Client{c, c3} {
		keys, err := cl.Keys(ctx, "ks:*").Result()
		noErr(t, "KEYS", err)
		if len(keys) != n || !sameSet(keys, want) {
			t.Errorf("KEYS ks:*: %d keys, want the %d written", len(keys), n)
		}
	}
	// SCAN: a full iteration visits every key once, with MATCH and COUNT
	for _, cl := range []*redis.Client{c, c3} {
		seen := map[string]int{}
		var cursor uint64
		calls := 0
		nodesVisited := map[uint64]bool{}
		for {
			keys, next, err := cl.Scan(ctx, cursor, "ks:*", 20).Result()
			noErr(t, "SCAN", err)
			calls++
			for _, k := range keys {
				seen[k]++
			}
			nodesVisited[cursor%3] = true
			cursor = next
			if cursor == 0 {
				break
			}
			if calls > 1000 {
				t.Fatal("SCAN does not end")
			}
		}
		for k := range want {
			if seen[k] != 1 {
				t.Errorf("SCAN returned %s %d times, want once", k, seen[k])
			}
		}
		if seen["other"] != 0 || len(seen) != n {
			t.Errorf("SCAN MATCH ks:* returned %d distinct keys (other: %d)", len(seen), seen["other"])
		}
		if calls < 3 || len(nodesVisited) != 3 {
			t.Errorf("SCAN took %d calls over cursors of %d nodes; want every node visited", calls, len(nodesVisited))
		}
	}
	// go-redis's iterator and redis-cli --scan agree
	var it []string
	iter := c.Scan(ctx, 0, "ks:*", 7).Iterator()
	for iter.Next(ctx) {
		it = append(it, iter.Val())
	}
	noErr(t, "SCAN iterator", iter.Err())
	if len(it) != n || !sameSet(it, want) {
		t.Errorf("go-redis SCAN iterator: %d keys, want %d", len(it), n)
	}
	out := e.mustCLI("--scan", "--pattern", "ks:*")
	if lines := strings.Split(out, "\n"); len(lines) != n || !sameSet(lines, want) {
		t.Errorf("redis-cli --scan: %d keys, want %d", len(lines), n)
	}
	// SCAN with TYPE, and a bad cursor
	if keys, _, err := c.ScanType(ctx, 0, "*", 1000, "list").Result(); err != nil || len(keys) != 0 {
		t.Errorf("SCAN TYPE list: %v, %v", keys, err)
	}
	wantErr(t, "SCAN with a bad cursor", c.Do(ctx, "SCAN", "abc").Err(), "ERR invalid cursor")
	wantErr(t, "SCAN with a bad cursor", c.Do(ctx, "SCAN", " 5").Err(), "ERR invalid cursor")
	// cursors with a sign, read as Redis reads them (strtoull)
	for _, cur := range []string{"+0", "-0", "-1"} {
		if err := c.Do(ctx, "SCAN", cur, "MATCH", "ks:*").Err(); err != nil {
			t.Errorf("SCAN %s: %v (Redis accepts it)", cur, err)
		}
	}

	// DBSIZE: the sum
	if got, err := c.DBSize(ctx).Result(); err != nil || got != n+1 {
		t.Errorf("DBSIZE %d, %v; want %d", got, err, n+1)
	}
	if out := e.mustCLI("DBSIZE"); out != strconv.Itoa(n+1) {
		t.Errorf("redis-cli DBSIZE %q", out)
	}
	// RANDOMKEY: existing keys, from more than one node
	from := map[int]bool{}
	for range 40 {
		k, err := c.RandomKey(ctx).Result()
		if err != nil || (!want[k] && k != "other") {
			t.Fatalf("RANDOMKEY %q, %v", k, err)
		}
		from[e.owner(k)] = true
	}
	if len(from) < 2 {
		t.Errorf("40 RANDOMKEYs all came from node(s) %v", from)
	}

	// INFO: keyspace summed, numeric fields summed, an Ambassador section
	info, err := c.Info(ctx).Result()
	noErr(t, "INFO", err)
	if !strings.Contains(info, fmt.Sprintf("db0:keys=%d,", n+1)) {
		t.Errorf("INFO keyspace does not sum to %d keys:\n%s", n+1, section(info, "Keyspace"))
	}
	amb := section(info, "Ambassador")
	if !strings.Contains(amb, "nodes:3") || !strings.Contains(amb, "nodes_up:3") {
		t.Errorf("INFO has no Ambassador section with nodes:3:\n%s", amb)
	}
	for _, a := range e.addrs {
		if !strings.Contains(amb, "addr="+a) {
			t.Errorf("INFO Ambassador section does not list node %s", a)
		}
	}
	var clients int64
	for _, d := range e.direct {
		ci, _ := d.Info(ctx, "clients").Result()
		v, _ := strconv.ParseInt(field(ci, "connected_clients"), 10, 64)
		clients += v
	}
	got, _ := strconv.ParseInt(field(info, "connected_clients"), 10, 64)
	if got < clients-3 || got > clients+3 { // the nodes' clients summed (give or take probes)
		t.Errorf("INFO connected_clients %d, the nodes' sum is %d", got, clients)
	}
	// used_memory summed, and used_memory_human says the sum; the host's
	// total_system_memory not summed
	mem, err := c.Info(ctx, "memory").Result()
	noErr(t, "INFO memory", err)
	used, _ := strconv.ParseUint(field(mem, "used_memory"), 10, 64)
	if human := field(mem, "used_memory_human"); used == 0 || human == "" || !strings.HasSuffix(human, "M") && !strings.HasSuffix(human, "K") {
		t.Errorf("INFO memory: used_memory %d, used_memory_human %q", used, human)
	} else if h, _ := strconv.ParseFloat(human[:len(human)-1], 64); strings.HasSuffix(human, "M") && math.Abs(h*(1<<20)-float64(used)) > 0.01*(1<<20) {
		t.Errorf("INFO memory: used_memory_human %s is not used_memory %d", human, used)
	}
	// INFO server gives the ambassador's port, not a node's
	srvInfo, err := c.Info(ctx, "server").Result()
	noErr(t, "INFO server", err)
	if got, want := field(srvInfo, "tcp_port"), e.addr[strings.LastIndexByte(e.addr, ':')+1:]; got != want {
		t.Errorf("INFO server tcp_port %s, want the ambassador's %s", got, want)
	}
	node0mem, _ := e.direct[0].Info(ctx, "memory").Result()
	if got, want := field(mem, "total_system_memory"), field(node0mem, "total_system_memory"); got != want {
		t.Errorf("INFO total_system_memory %s, a node's is %s (the host's: not a sum)", got, want)
	}
	// INFO commandstats: each command's calls summed over the nodes
	cs, err := c.Info(ctx, "commandstats").Result()
	noErr(t, "INFO commandstats", err)
	var nodeCalls int64
	for _, d := range e.direct {
		ncs, _ := d.Info(ctx, "commandstats").Result()
		nodeCalls += calls(field(ncs, "cmdstat_mset"))
	}
	if got := calls(field(cs, "cmdstat_mset")); got != nodeCalls || got < 3 {
		t.Errorf("INFO commandstats: cmdstat_mset calls=%d (%q), the nodes' sum is %d", got, field(cs, "cmdstat_mset"), nodeCalls)
	}
	info3, err := c3.Info(ctx, "keyspace").Result()
	if err != nil || !strings.Contains(info3, fmt.Sprintf("db0:keys=%d,", n+1)) || strings.Contains(info3, "# Server") {
		t.Errorf("RESP3 INFO keyspace: %v\n%s", err, info3)
	}
	if ia, _ := c.Info(ctx, "ambassador").Result(); !strings.HasPrefix(ia, "# Ambassador") {
		t.Errorf("INFO ambassador: %q", ia)
	}
	if out := e.mustCLI("INFO", "keyspace"); !strings.Contains(out, fmt.Sprintf("db0:keys=%d,", n+1)) {
		t.Errorf("redis-cli INFO keyspace: %q", out)
	}

	// CONFIG SET on every node; CONFIG GET answers
	noErr(t, "CONFIG SET", c.ConfigSet(ctx, "slowlog-log-slower-than", "12345").Err())
	for i, d := range e.direct {
		if v, _ := d.ConfigGet(ctx, "slowlog-log-slower-than").Result(); v["slowlog-log-slower-than"] != "12345" {
			t.Errorf("node %d: CONFIG GET slowlog-log-slower-than = %v after CONFIG SET through the ambassador", i, v)
		}
	}
	if v, err := c3.ConfigGet(ctx, "slowlog-log-slower-than").Result(); err != nil || v["slowlog-log-slower-than"] != "12345" {
		t.Errorf("CONFIG GET: %v, %v", v, err)
	}
	noErr(t, "CONFIG RESETSTAT", c.ConfigResetStat(ctx).Err())
	// TIME
	tm, err := c.Time(ctx).Result()
	if err != nil || time.Since(tm).Abs() > 5*time.Second {
		t.Errorf("TIME %v, %v", tm, err)
	}

	// SCRIPT LOAD on every node, then EVALSHA with keys on each node
	script := "return redis.call('incrby', KEYS[1], ARGV[1])"
	sum := sha1.Sum([]byte(script))
	sha := hex.EncodeToString(sum[:])
	if got, err := c.ScriptLoad(ctx, script).Result(); err != nil || got != sha {
		t.Fatalf("SCRIPT LOAD %q, %v; want %s", got, err, sha)
	}
	for i := range e.nodes {
		k := e.keyOn(i, "evalsha")
		if v, err := c.EvalSha(ctx, sha, []string{k}, 7).Int64(); err != nil || v != 7 {
			t.Errorf("EVALSHA on node %d's key: %d, %v", i, v, err)
		}
		e.expectOn(k, i)
	}
	if ex, err := c.ScriptExists(ctx, sha, strings.Repeat("0", 40)).Result(); err != nil || fmt.Sprint(ex) != "[true false]" {
		t.Errorf("SCRIPT EXISTS: %v, %v", ex, err)
	}
	// a script on one node only does not exist for the ambassador
	script2 := "return 2"
	sha2, _ := e.direct[1].ScriptLoad(ctx, script2).Result()
	if ex, err := c.ScriptExists(ctx, sha2).Result(); err != nil || ex[0] {
		t.Errorf("SCRIPT EXISTS of a script on one node: %v, %v; want false", ex, err)
	}
	noErr(t, "SCRIPT FLUSH", c.ScriptFlush(ctx).Err())
	for i, d := range e.direct {
		if ex, _ := d.ScriptExists(ctx, sha).Result(); len(ex) != 1 || ex[0] {
			t.Errorf("node %d still has the script after SCRIPT FLUSH", i)
		}
	}
	// FUNCTION LOAD on every node, then FCALL with keys on each node
	lib := "#!lua name=kslib\nredis.register_function('kset', function(keys, args) return redis.call('set', keys[1], args[1]) end)"
	if got, err := c.FunctionLoad(ctx, lib).Result(); err != nil || got != "kslib" {
		t.Fatalf("FUNCTION LOAD: %q, %v", got, err)
	}
	for i := range e.nodes {
		k := e.keyOn(i, "fcall")
		if err := c.FCall(ctx, "kset", []string{k}, "fv").Err(); err != nil {
			t.Errorf("FCALL on node %d's key: %v", i, err)
		}
		if v, _ := e.direct[i].Get(ctx, k).Result(); v != "fv" {
			t.Errorf("FCALL on node %d: %q", i, v)
		}
	}
	for i, d := range e.direct {
		libs, err := d.FunctionList(ctx, redis.FunctionListQuery{LibraryNamePattern: "kslib"}).Result()
		if err != nil || len(libs) != 1 {
			t.Errorf("node %d FUNCTION LIST: %v, %v", i, libs, err)
		}
	}
	noErr(t, "FUNCTION DELETE", c.FunctionDelete(ctx, "kslib").Err())
	noErr(t, "FUNCTION FLUSH", c.FunctionFlush(ctx).Err())

	// FLUSHDB and FLUSHALL empty every node
	noErr(t, "FLUSHDB", c.FlushDB(ctx).Err())
	for i, keys := range e.snapshot() {
		if len(keys) != 0 {
			t.Errorf("node %d has %d keys after FLUSHDB", i, len(keys))
		}
	}
	noErr(t, "MSET", c.MSet(ctx, kv...).Err())
	if out := e.mustCLI("FLUSHALL"); out != "OK" {
		t.Errorf("redis-cli FLUSHALL: %q", out)
	}
	for i, d := range e.direct {
		if n, _ := d.DBSize(ctx).Result(); n != 0 {
			t.Errorf("node %d has %d keys after FLUSHALL", i, n)
		}
	}
	if k, err := c.RandomKey(ctx).Result(); err != redis.Nil {
		t.Errorf("RANDOMKEY of an empty keyspace: %q, %v; want nil", k, err)
	}
}

func sameSet(got []string, want map[string]bool) bool {
	seen := map[string]bool{}
	for _, k := range got {
		if !want[k] || seen[k] {
			return false
		}
		seen[k] = true
	}
	return len(seen) == len(want)
}

// section returns one section of INFO text.
func section(info, name string) string {
	i := strings.Index(info, "# "+name+"\r\n")
	if i < 0 {
		return ""
	}
	s := info[i:]
	if j := strings.Index(s[2:], "# "); j >= 0 {
		s = s[:j+2]
	}
	return s
}

// calls is the calls= count of a commandstats value.
func calls(v string) int64 {
	for _, kv := range strings.Split(v, ",") {
		if n, ok := strings.CutPrefix(kv, "calls="); ok {
			c, _ := strconv.ParseInt(n, 10, 64)
			return c
		}
	}
	return -1
}

// field returns an INFO field's value.
func field(info, key string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return v
		}
	}
	return ""
}

// 5. Commands the ambassador answers itself.
func testLocal(t *testing.T, e *redisEnv, ctx context.Context) {
	r := e.raw()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "+PONG\r\n"},
		{[]string{"ping", "hello world"}, bulk("hello world")},
		{[]string{"ECHO", "a\r\nb"}, bulk("a\r\nb")},
		{[]string{"SELECT", "0"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETNAME", "my-app"}, "+OK\r\n"},
		{[]string{"CLIENT", "GETNAME"}, bulk("my-app")},
		{[]string{"CLIENT", "SETNAME", "bad name"}, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "rawlib"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-ver", "1.2"}, "+OK\r\n"},
		{[]string{"CLIENT", "NO-EVICT", "on"}, "+OK\r\n"},
		{[]string{"CLIENT", "NO-TOUCH", "on"}, "+OK\r\n"}, // Redis 7.2, newer than the table
		{[]string{"CLIENT", "NO-TOUCH"}, "-ERR wrong number of arguments for 'client|no-touch' command\r\n"},
		{[]string{"ECHO"}, "-ERR wrong number of arguments for 'echo' command\r\n"},
		{[]string{"CLIENT", "NOSUCH"}, "-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n"},
	} {
		if got := r.do(tc.args...); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
	if got := r.do("SELECT", "1"); !strings.HasPrefix(got, "-ERR ") {
		t.Errorf("SELECT 1: %q, want an error", got)
	}
	id := r.do("CLIENT", "ID")
	if !strings.HasPrefix(id, ":") || r.do("CLIENT", "ID") != id {
		t.Errorf("CLIENT ID %q, not a stable integer", id)
	}
	if other := e.raw().do("CLIENT", "ID"); other == id {
		t.Errorf("two connections have CLIENT ID %s", id)
	}
	info := r.do("CLIENT", "INFO")
	for _, want := range []string{"name=my-app", "lib-name=rawlib", "lib-ver=1.2", "resp=2", "id=" + strings.TrimSpace(id[1:])} {
		if !strings.Contains(info, want) {
			t.Errorf("CLIENT INFO %q lacks %q", info, want)
		}
	}
	// every field a node gives, in its order (redis-py's client_info()
	// failed on a missing qbuf)
	keys := func(line string) []string {
		var ks []string
		for _, f := range strings.Fields(line) {
			k, _, _ := strings.Cut(f, "=")
			ks = append(ks, k)
		}
		return ks
	}
	nodeInfo := dialRaw(t, e.addrs[0]).do("CLIENT", "INFO")
	ours := keys(info[strings.Index(info, "\r\n")+2:])
	var missing []string
	for _, k := range keys(nodeInfo[strings.Index(nodeInfo, "\r\n")+2:]) {
		if !slices.Contains(ours, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("CLIENT INFO lacks the node's fields %v: %q", missing, info)
	}

	// HELLO: RESP2 and RESP3 replies; the protocol switches
	h3 := r.do("HELLO", "3")
	if !strings.HasPrefix(h3, "%7\r\n") || !strings.Contains(h3, bulk("proto")+":3\r\n") || !strings.Contains(h3, bulk("mode")+bulk("standalone")) {
		t.Errorf("HELLO 3: %q", h3)
	}
	if got := r.do("CLIENT", "GETNAME"); got != bulk("my-app") {
		t.Errorf("name lost by HELLO: %q", got)
	}
	if got := r.do("GET", "no-such-key"); got != "_\r\n" {
		t.Errorf("GET of a missing key after HELLO 3: %q, want the RESP3 null", got)
	}
	if got := r.do("HGETALL", "no-such-key"); got != "%0\r\n" {
		t.Errorf("HGETALL after HELLO 3: %q, want an empty RESP3 map", got)
	}
	h2 := r.do("HELLO", "2", "SETNAME", "renamed")
	if !strings.HasPrefix(h2, "*14\r\n") || !strings.Contains(h2, bulk("proto")+":2\r\n") {
		t.Errorf("HELLO 2: %q", h2)
	}
	if got := r.do("GET", "no-such-key"); got != "$-1\r\n" {
		t.Errorf("GET of a missing key after HELLO 2: %q, want $-1", got)
	}
	if got := r.do("CLIENT", "GETNAME"); got != bulk("renamed") {
		t.Errorf("HELLO SETNAME: name %q", got)
	}
	if got := r.do("HELLO", "4"); !strings.HasPrefix(got, "-NOPROTO") {
		t.Errorf("HELLO 4: %q", got)
	}
	// without a frontend password the default user is "nopass", as in
	// Redis: any password is accepted
	if got := r.do("HELLO", "3", "AUTH", "default", "x"); !strings.HasPrefix(got, "%7\r\n") {
		t.Errorf("HELLO AUTH default without a frontend password: %q, want the HELLO map (Redis accepts it)", got)
	}
	if got := r.do("AUTH", "x"); !strings.HasPrefix(got, "-ERR AUTH <password> called without any password configured") {
		t.Errorf("AUTH without a frontend password: %q", got)
	}

	// RESET: back to RESP2, no name, no transaction
	r.do("HELLO", "3")
	if got := r.do("MULTI"); got != "+OK\r\n" {
		t.Fatalf("MULTI: %q", got)
	}
	if got := r.do("RESET"); got != "+RESET\r\n" {
		t.Errorf("RESET: %q", got)
	}
	if got := r.do("EXEC"); got != "-ERR EXEC without MULTI\r\n" {
		t.Errorf("EXEC after RESET: %q", got)
	}
	if got := r.do("CLIENT", "GETNAME"); got != "$-1\r\n" {
		t.Errorf("CLIENT GETNAME after RESET: %q, want a RESP2 null", got)
	}

	// COMMAND: from the table
	c := e.client(2)
	count, err := c.Do(ctx, "COMMAND", "COUNT").Int64()
	if err != nil || count < 200 {
		t.Errorf("COMMAND COUNT %d, %v", count, err)
	}
	list, err := c.Do(ctx, "COMMAND", "LIST").StringSlice()
	top := 0 // as Redis, COMMAND LIST names the subcommands too
	for _, name := range list {
		if !strings.Contains(name, "|") {
			top++
		}
	}
	if err != nil || int64(top) != count || !slices.Contains(list, "config|get") {
		t.Errorf("COMMAND LIST: %d names, %d of commands, %v; COMMAND COUNT says %d", len(list), top, err, count)
	}
	for _, name := range []string{"get", "mget", "blpop", "eval", "subscribe"} {
		if !slices.Contains(list, name) {
			t.Errorf("COMMAND LIST lacks %s", name)
		}
	}
	for _, name := range []string{"monitor", "debug", "cluster"} {
		if slices.Contains(list, name) {
			t.Errorf("COMMAND LIST offers %s, which the ambassador refuses", name)
		}
	}
	all, err := c.Command(ctx).Result()
	if err != nil || int64(len(all)) != count {
		t.Errorf("COMMAND: %d entries, %v", len(all), err)
	} else if g := all["get"]; g == nil || g.Arity != 2 || g.FirstKeyPos != 1 {
		t.Errorf("COMMAND entry of get: %+v", g)
	}
	infoAmb, err := c.Do(ctx, "COMMAND", "INFO", "get", "nosuchcmd").Slice()
	infoNode, _ := e.direct[0].Do(ctx, "COMMAND", "INFO", "get", "nosuchcmd").Slice()
	if err != nil || fmt.Sprint(infoAmb) != fmt.Sprint(infoNode) {
		t.Errorf("COMMAND INFO get nosuchcmd:\nambassador %v (%v)\nredis      %v", infoAmb, err, infoNode)
	}
	// byte for byte what the node says, in RESP2 and RESP3
	for _, proto := range []string{"2", "3"} {
		amb, node := e.raw(), &rawConn{t: t}
		conn, err := net.Dial("tcp", e.addrs[0])
		noErr(t, "dial node", err)
		defer conn.Close()
		node.c = conn
		amb.do("HELLO", proto)
		node.do("HELLO", proto)
		for _, q := range [][]string{{"COMMAND", "INFO", "get", "nosuchcmd", "mget"}, {"COMMAND", "INFO", "GET"}, {"COMMAND", "GETKEYS", "SET", "k", "v"}} {
			if a, n := amb.do(q...), node.do(q...); a != n {
				t.Errorf("RESP%s %q:\nambassador %q\nredis      %q", proto, q, a, n)
			}
		}
	}
	for _, args := range [][]any{
		{"MSET", "a", "1", "b", "2"},
		{"EVAL", "return 1", 2, "k1", "k2", "arg"},
		{"ZUNIONSTORE", "d", 2, "s1", "s2", "WEIGHTS", 1, 2},
		{"XREAD", "COUNT", 1, "STREAMS", "s1", "s2", "0", "0"},
		{"OBJECT", "ENCODING", "k"},
	} {
		q := append([]any{"COMMAND", "GETKEYS"}, args...)
		got, err := c.Do(ctx, q...).StringSlice()
		want, _ := e.direct[0].Do(ctx, q...).StringSlice()
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("COMMAND GETKEYS %v: %v, %v; redis says %v", args, got, err, want)
		}
	}
	if err := c.Do(ctx, "COMMAND", "GETKEYS", "PING").Err(); err == nil {
		t.Errorf("COMMAND GETKEYS PING: no error")
	}
	// redis-cli, RESP3 too
	if out := e.mustCLI("-3", "HELLO", "3"); !strings.Contains(out, "proto") {
		t.Errorf("redis-cli -3 HELLO 3: %q", out)
	}
	if out := e.mustCLI("PING"); out != "PONG" {
		t.Errorf("redis-cli PING: %q", out)
	}
	if out := e.mustCLI("COMMAND", "COUNT"); out != strconv.FormatInt(count, 10) {
		t.Errorf("redis-cli COMMAND COUNT: %q", out)
	}

	// QUIT: +OK, then the connection closes
	q := e.raw()
	q.send("PING\r\nQUIT\r\nPING\r\n")
	if got := q.mustReply(); got != "+PONG\r\n" {
		t.Errorf("PING: %q", got)
	}
	if got := q.mustReply(); got != "+OK\r\n" {
		t.Errorf("QUIT: %q", got)
	}
	if closed, extra := q.closed(2 * time.Second); !closed || extra != "" {
		t.Errorf("after QUIT: closed %v, more bytes %q; want the connection closed", closed, extra)
	}
}

// 6. MULTI/EXEC on the keys' node; across nodes EXECABORT; WATCH.
func testTransactions(t *testing.T, e *redisEnv, ctx context.Context) {
	for _, proto := range []int{2, 3} {
		e.flushNodes()
		c := e.client(proto)
		node := e.owner("tx")
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "{tx}a", "1", 0)
			p.Incr(ctx, "{tx}a")
			p.Get(ctx, "{tx}a")
			p.LPush(ctx, "{tx}l", "x", "y")
			p.Ping(ctx)
			return nil
		})
		if err != nil {
			t.Fatalf("RESP%d MULTI/EXEC on one node: %v", proto, err)
		}
		if got := fmt.Sprint(cmds); !strings.Contains(got, "set {tx}a 1: OK") || !strings.Contains(got, "incr {tx}a: 2") ||
			!strings.Contains(got, "get {tx}a: 2") || !strings.Contains(got, "lpush {tx}l x y: 2") || !strings.Contains(got, "ping: PONG") {
			t.Errorf("RESP%d EXEC results: %v", proto, got)
		}
		e.expectOn("{tx}a", node)
		e.expectOn("{tx}l", node)

		// keys on two nodes: the command is refused when queued, EXEC aborts,
		// nothing is written
		a, b := e.keyOn(0, "txa"), e.keyOn(1, "txb")
		before := e.snapshot()
		r := e.raw()
		if proto == 3 {
			r.do("HELLO", "3")
		}
		r.send(mbulk("MULTI") + mbulk("SET", a, "1") + mbulk("SET", b, "2") + mbulk("EXEC"))
		replies := []string{r.mustReply(), r.mustReply(), r.mustReply(), r.mustReply()}
		if replies[0] != "+OK\r\n" || replies[1] != "+QUEUED\r\n" || replies[2] != "-"+crossSlot+"\r\n" ||
			!strings.HasPrefix(replies[3], "-EXECABORT Transaction discarded because of previous errors") {
			t.Errorf("RESP%d MULTI across nodes: %q", proto, replies)
		}
		if after := e.snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("an aborted transaction wrote: %v -> %v", before, after)
		}
		_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, a, "1", 0)
			p.Set(ctx, b, "2", 0)
			return nil
		})
		wantErr(t, "go-redis transaction across nodes", err, "EXECABORT")

		// DISCARD
		r.send(mbulk("MULTI") + mbulk("SET", "{tx}d", "1") + mbulk("DISCARD") + mbulk("EXISTS", "{tx}d"))
		replies = []string{r.mustReply(), r.mustReply(), r.mustReply(), r.mustReply()}
		if fmt.Sprint(replies) != fmt.Sprint([]string{"+OK\r\n", "+QUEUED\r\n", "+OK\r\n", ":0\r\n"}) {
			t.Errorf("MULTI/DISCARD: %q", replies)
		}
		if got := r.do("EXEC"); got != "-ERR EXEC without MULTI\r\n" {
			t.Errorf("EXEC after DISCARD: %q", got)
		}
		// a command refused when queued (arity, unknown command or
		// subcommand) dooms the transaction, as in Redis
		for _, bad := range [][]string{{"GET"}, {"NOSUCHCMD"}, {"CLIENT", "NOSUCH"}, {"CONFIG"}} {
			r.send(mbulk("MULTI") + mbulk("SET", "{tx}bad", "1") + mbulk(bad...) + mbulk("EXEC"))
			replies = []string{r.mustReply(), r.mustReply(), r.mustReply(), r.mustReply()}
			if replies[1] != "+QUEUED\r\n" || !strings.HasPrefix(replies[2], "-ERR ") ||
				replies[3] != "-EXECABORT Transaction discarded because of previous errors.\r\n" {
				t.Errorf("MULTI, SET, %q, EXEC: %q; want EXECABORT", bad, replies)
			}
			if on := e.where("{tx}bad"); len(on) != 0 {
				t.Errorf("an aborted transaction (%q) wrote {tx}bad", bad)
			}
		}

		// WATCH: a concurrent change makes EXEC return nil
		other := e.client(2)
		noErr(t, "SET", c.Set(ctx, "{w}k", "0", 0).Err())
		err = c.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, "{w}k").Result()
			if err != nil {
				return err
			}
			// another client changes the key between WATCH and EXEC
			if err := other.Set(ctx, "{w}k", "changed", 0).Err(); err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "{w}k", v+"-mine", 0)
				return nil
			})
			return err
		}, "{w}k")
		if !errors.Is(err, redis.TxFailedErr) {
			t.Errorf("RESP%d WATCH with a concurrent change: %v, want the transaction to fail (nil EXEC)", proto, err)
		}
		if v, _ := e.direct[e.owner("w")].Get(ctx, "{w}k").Result(); v != "changed" {
			t.Errorf("after the failed transaction {w}k = %q, want the other client's value", v)
		}
		// without a change it commits
		err = c.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, "{w}k").Result()
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "{w}k", v+"-mine", 0)
				return nil
			})
			return err
		}, "{w}k")
		if err != nil {
			t.Errorf("WATCH without a change: %v", err)
		}
		if v, _ := e.direct[e.owner("w")].Get(ctx, "{w}k").Result(); v != "changed-mine" {
			t.Errorf("after the transaction {w}k = %q", v)
		}
		// raw: WATCH, change, MULTI/EXEC -> *-1 (RESP2) or _ (RESP3)
		r.send(mbulk("WATCH", "{w}k"))
		if got := r.mustReply(); got != "+OK\r\n" {
			t.Fatalf("WATCH: %q", got)
		}
		noErr(t, "SET", other.Set(ctx, "{w}k", "again", 0).Err())
		r.send(mbulk("MULTI") + mbulk("SET", "{w}k", "lost") + mbulk("EXEC"))
		replies = []string{r.mustReply(), r.mustReply(), r.mustReply()}
		wantNil := "*-1\r\n"
		if proto == 3 {
			wantNil = "_\r\n"
		}
		if replies[2] != wantNil {
			t.Errorf("RESP%d EXEC after a watched key changed: %q, want %q", proto, replies, wantNil)
		}
		// WATCH of keys on two nodes is refused
		if got := r.do("WATCH", a, b); !strings.HasPrefix(got, "-CROSSSLOT") {
			t.Errorf("WATCH across nodes: %q", got)
		}
		// WATCH on one node, MULTI touching another: EXECABORT with a reason
		r.do("WATCH", "{w}k")
		r.send(mbulk("MULTI") + mbulk("SET", e.keyOn((e.owner("w")+1)%3, "o"), "1") + mbulk("EXEC"))
		replies = []string{r.mustReply(), r.mustReply(), r.mustReply()}
		if !strings.HasPrefix(replies[2], "-EXECABORT") {
			t.Errorf("WATCH on one node, MULTI on another: %q", replies)
		}
	}
}

// 7. Pipelines of 1000 mixed commands over every node: each reply in
// order.
func testPipelines(t *testing.T, e *redisEnv, ctx context.Context) {
	const n = 1000
	for _, proto := range []int{2, 3} {
		e.flushNodes()
		c := e.client(proto)
		p := c.Pipeline()
		cmds := make([]redis.Cmder, n)
		pre := fmt.Sprintf("pl%d:", proto)
		for i := range n {
			switch i % 6 {
			case 0:
				cmds[i] = p.Set(ctx, fmt.Sprintf("%sk_%d", pre, i), i, 0)
			case 1:
				cmds[i] = p.Get(ctx, fmt.Sprintf("%sk_%d", pre, i-1))
			case 2:
				cmds[i] = p.Incr(ctx, fmt.Sprintf("%sctr_%d", pre, i%7))
			case 3:
				cmds[i] = p.MGet(ctx, fmt.Sprintf("%sk_%d", pre, i-3), "missing", fmt.Sprintf("%sk_%d", pre, i-3))
			case 4:
				cmds[i] = p.Echo(ctx, fmt.Sprintf("e%d", i))
			case 5:
				cmds[i] = p.Exists(ctx, fmt.Sprintf("%sk_%d", pre, i-5), fmt.Sprintf("%sk_%d", pre, i+1))
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatalf("RESP%d pipeline: %v", proto, err)
		}
		ctr := map[string]int64{}
		bad := 0
		for i, cmd := range cmds {
			var want string
			switch i % 6 {
			case 0:
				want = "OK"
			case 1:
				want = strconv.Itoa(i - 1)
			case 2:
				k := fmt.Sprintf("%sctr_%d", pre, i%7)
				ctr[k]++
				want = strconv.FormatInt(ctr[k], 10)
			case 3:
				want = fmt.Sprint([]any{strconv.Itoa(i - 3), nil, strconv.Itoa(i - 3)})
			case 4:
				want = fmt.Sprintf("e%d", i)
			case 5:
				want = "1"
			}
			var got string
			switch v := cmd.(type) {
			case *redis.StatusCmd:
				got = v.Val()
			case *redis.StringCmd:
				got = v.Val()
			case *redis.IntCmd:
				got = strconv.FormatInt(v.Val(), 10)
			case *redis.SliceCmd:
				got = fmt.Sprint(v.Val())
			}
			if cmd.Err() != nil || got != want {
				if bad++; bad < 10 {
					t.Errorf("RESP%d pipeline reply %d (%v): %q, %v; want %q", proto, i, cmd.Args(), got, cmd.Err(), want)
				}
			}
		}
		perNode := make([]int, 3)
		for i := 0; i < n; i += 6 {
			perNode[e.owner(fmt.Sprintf("%sk_%d", pre, i))]++
		}
		if slices.Contains(perNode, 0) {
			t.Fatalf("the pipeline's keys miss a node: %v", perNode)
		}
	}

	// one write of 3000 commands over raw TCP (more than one batch of the
	// client loop), replies compared byte for byte
	e.flushNodes()
	var req strings.Builder
	var want []string
	ctr := 0
	const rawN = 3000
	for i := range rawN {
		k := fmt.Sprintf("raw:%d", i/4*4)
		switch i % 4 {
		case 0:
			req.WriteString(mbulk("SET", k, "v"+k))
			want = append(want, "+OK\r\n")
		case 1:
			if i%8 == 1 {
				req.WriteString("GET " + k + "\r\n") // inline: re-encoded to the node
			} else {
				req.WriteString(mbulk("GET", k))
			}
			want = append(want, bulk("v"+k))
		case 2:
			if i%8 == 2 {
				req.WriteString(mbulk("INCR", "raw:ctr"))
				ctr++
				want = append(want, ":"+strconv.Itoa(ctr)+"\r\n")
			} else {
				req.WriteString("NOSUCHCMD x\r\n")
				want = append(want, "-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \r\n")
			}
		case 3:
			req.WriteString(mbulk("MGET", k, "raw:none"))
			want = append(want, "*2\r\n"+bulk("v"+k)+"$-1\r\n")
		}
	}
	r := e.raw()
	r.send(req.String())
	for i := range rawN {
		got := r.mustReply()
		if got != want[i] {
			t.Fatalf("raw pipeline reply %d: %q, want %q", i, got, want[i])
		}
	}

	// redis-cli --pipe
	var pipe strings.Builder
	for i := range n {
		pipe.WriteString(mbulk("SET", fmt.Sprintf("cli:%d", i), strconv.Itoa(i)))
	}
	out, err := e.cli(pipe.String(), "--pipe")
	if err != nil || !strings.Contains(out, "errors: 0, replies: 1000") {
		t.Fatalf("redis-cli --pipe: %q, %v", out, err)
	}
	for _, i := range []int{0, 1, 2, 333, 999} {
		k := fmt.Sprintf("cli:%d", i)
		if v, _ := e.direct[e.owner(k)].Get(ctx, k).Result(); v != strconv.Itoa(i) {
			t.Errorf("after redis-cli --pipe, node %d has %s = %q", e.owner(k), k, v)
		}
	}
	if got, _ := e.client(2).DBSize(ctx).Result(); got != n+rawN/4+1 {
		t.Errorf("DBSIZE %d after the pipelines, want %d", got, n+rawN/4+1)
	}
}

// 11. Pub/Sub across nodes: channels live on the ring's node, patterns on
// every node; every message arrives exactly once.
func testPubSub(t *testing.T, e *redisEnv, ctx context.Context) {
	pub := e.client(2)
	for _, proto := range []int{2, 3} {
		c := e.client(proto)
		chans := make([]string, 3)
		for i := range chans {
			chans[i] = e.keyOn(i, fmt.Sprintf("chan%d-", proto))
		}
		ps := c.Subscribe(ctx, chans...)
		// the confirmations, one per channel, before any publish
		for range chans {
			if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
				t.Fatalf("RESP%d SUBSCRIBE confirmation: %v", proto, err)
			}
		}
		const per = 20
		for i := range per {
			for _, ch := range chans {
				n, err := pub.Publish(ctx, ch, fmt.Sprintf("%s#%d", ch, i)).Result()
				if err != nil || n != 1 {
					t.Fatalf("PUBLISH %s: %d receivers, %v; want 1", ch, n, err)
				}
			}
		}
		got := receive(t, ps, 3*per, 300*time.Millisecond)
		checkOnce(t, fmt.Sprintf("RESP%d SUBSCRIBE", proto), got, chans, per, "")
		// the subscription lives on the channel's node
		for i, ch := range chans {
			m, _ := e.direct[i].PubSubNumSub(ctx, ch).Result()
			if m[ch] != 1 {
				t.Errorf("node %d: PUBSUB NUMSUB %s = %d, want 1", i, ch, m[ch])
			}
		}
		if m, err := pub.PubSubNumSub(ctx, chans...).Result(); err != nil || m[chans[0]] != 1 || m[chans[2]] != 1 {
			t.Errorf("PUBSUB NUMSUB through the ambassador: %v, %v", m, err)
		}
		if l, err := pub.PubSubChannels(ctx, fmt.Sprintf("chan%d-*", proto)).Result(); err != nil || len(l) != 3 {
			t.Errorf("PUBSUB CHANNELS: %v, %v", l, err)
		}

		// PSUBSCRIBE: on every node, each message once
		pat := fmt.Sprintf("pat%d:*", proto)
		noErr(t, "PSUBSCRIBE", ps.PSubscribe(ctx, pat))
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatalf("PSUBSCRIBE confirmation: %v", err)
		}
		pchans := make([]string, 3)
		for i := range pchans {
			pchans[i] = e.keyOn(i, fmt.Sprintf("pat%d:", proto))
		}
		for i := range per {
			for _, ch := range pchans {
				if n, err := pub.Publish(ctx, ch, fmt.Sprintf("%s#%d", ch, i)).Result(); err != nil || n != 1 {
					t.Fatalf("PUBLISH %s: %d, %v; want 1 (the pattern on its node)", ch, n, err)
				}
			}
		}
		got = receive(t, ps, 3*per, 300*time.Millisecond)
		checkOnce(t, fmt.Sprintf("RESP%d PSUBSCRIBE", proto), got, pchans, per, pat)

		// UNSUBSCRIBE one channel: its messages stop, the others flow
		noErr(t, "UNSUBSCRIBE", ps.Unsubscribe(ctx, chans[0]))
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatalf("UNSUBSCRIBE confirmation: %v", err)
		}
		eventually(t, 2*time.Second, "the node drops the unsubscribed channel", func() bool {
			n, _ := pub.Publish(ctx, chans[0], "after-unsubscribe").Result()
			return n == 0
		})
		noErr(t, "PUBLISH", pub.Publish(ctx, chans[1], "still").Err())
		got = receive(t, ps, 1, 300*time.Millisecond)
		if len(got) != 1 || got[0].Channel != chans[1] || got[0].Payload != "still" {
			t.Errorf("after UNSUBSCRIBE %s: received %v, want only the message on %s", chans[0], got, chans[1])
		}
		noErr(t, "PUNSUBSCRIBE", ps.PUnsubscribe(ctx, pat))
		_, _ = ps.ReceiveTimeout(ctx, 5*time.Second)
		for _, ch := range pchans {
			if n, _ := pub.Publish(ctx, ch, "x").Result(); n != 0 {
				t.Errorf("after PUNSUBSCRIBE, PUBLISH %s reaches %d", ch, n)
			}
		}
		ps.Close()

		// SSUBSCRIBE / SPUBLISH
		schans := []string{e.keyOn(0, "sch"), e.keyOn(1, "sch"), e.keyOn(2, "sch")}
		sps := c.SSubscribe(ctx, schans...)
		for range schans {
			if _, err := sps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
				t.Fatalf("SSUBSCRIBE confirmation: %v", err)
			}
		}
		for i := range per {
			for _, ch := range schans {
				if n, err := pub.SPublish(ctx, ch, fmt.Sprintf("%s#%d", ch, i)).Result(); err != nil || n != 1 {
					t.Fatalf("SPUBLISH %s: %d, %v", ch, n, err)
				}
			}
		}
		got = receive(t, sps, 3*per, 300*time.Millisecond)
		checkOnce(t, fmt.Sprintf("RESP%d SSUBSCRIBE", proto), got, schans, per, "")
		sps.Close()
	}
	// duplicate names in one command: one confirmation each, as Redis
	// gives, and the connection goes on
	for _, cmd := range [][]string{{"PSUBSCRIBE", "dup*", "dup*"}, {"SUBSCRIBE", "dupch", "dupch"}, {"SSUBSCRIBE", "dups", "dups"}} {
		d := e.raw()
		d.send(mbulk(cmd...))
		kind := strings.ToLower(cmd[0])
		for i := range 2 {
			got, err := d.reply(3 * time.Second)
			if want := "*3\r\n" + bulk(kind) + bulk(cmd[1]) + ":1\r\n"; err != nil || got != want {
				t.Errorf("%q: confirmation %d %q, %v; want %q", cmd, i, got, err, want)
			}
		}
		d.send(mbulk("PING"))
		if got, err := d.reply(3 * time.Second); err != nil || got != "*2\r\n"+bulk("pong")+bulk("") {
			t.Errorf("PING after %q: %q, %v", cmd, got, err)
		}
	}
	// a RESP2 subscriber may only run subscription commands
	r := e.raw()
	r.send(mbulk("SUBSCRIBE", "rawch"))
	if got := r.mustReply(); got != "*3\r\n"+bulk("subscribe")+bulk("rawch")+":1\r\n" {
		t.Errorf("SUBSCRIBE: %q", got)
	}
	if got := r.do("GET", "k"); !strings.HasPrefix(got, "-ERR Can't execute 'get'") {
		t.Errorf("GET while subscribed: %q", got)
	}
	if got := r.do("PING"); got != "*2\r\n"+bulk("pong")+bulk("") {
		t.Errorf("PING while subscribed: %q", got)
	}
	noErr(t, "PUBLISH", pub.Publish(ctx, "rawch", "hi").Err())
	if got := r.mustReply(); got != "*3\r\n"+bulk("message")+bulk("rawch")+bulk("hi") {
		t.Errorf("message: %q", got)
	}
	// redis-cli subscribes too
	host, port, _ := net.SplitHostPort(e.addr)
	cli := exec.Command("redis-cli", "-h", host, "-p", port, "SUBSCRIBE", "clich")
	var out syncBuffer
	cli.Stdout = &out
	noErr(t, "redis-cli SUBSCRIBE", cli.Start())
	defer func() { _ = cli.Process.Kill(); _ = cli.Wait() }()
	eventually(t, 5*time.Second, "redis-cli subscribed", func() bool {
		n, _ := pub.Publish(ctx, "clich", "hello-cli").Result()
		return n == 1
	})
	eventually(t, 5*time.Second, "redis-cli got the message", func() bool { return strings.Contains(out.String(), "hello-cli") })
}

// receive collects messages until n came and then quiet for more, or 5 s.
func receive(t testing.TB, ps *redis.PubSub, n int, quiet time.Duration) []*redis.Message {
	t.Helper()
	var got []*redis.Message
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		wait := time.Until(deadline)
		if len(got) >= n {
			wait = quiet
		}
		msg, err := ps.ReceiveTimeout(context.Background(), wait)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if len(got) >= n {
					return got
				}
				continue
			}
			t.Fatalf("receive: %v", err)
		}
		if m, ok := msg.(*redis.Message); ok {
			got = append(got, m)
		}
	}
	return got
}

// checkOnce checks that every channel's per messages came exactly once.
func checkOnce(t testing.TB, what string, got []*redis.Message, chans []string, per int, pattern string) {
	t.Helper()
	count := map[string]int{}
	for _, m := range got {
		count[m.Payload]++
		if m.Pattern != pattern {
			t.Errorf("%s: message %v with pattern %q, want %q", what, m, m.Pattern, pattern)
		}
	}
	for _, ch := range chans {
		for i := range per {
			p := fmt.Sprintf("%s#%d", ch, i)
			if count[p] != 1 {
				t.Errorf("%s: %s received %d times, want once", what, p, count[p])
			}
		}
	}
	if len(got) != len(chans)*per {
		t.Errorf("%s: %d messages, want %d", what, len(got), len(chans)*per)
	}
}

// 13. Garbage and oversized requests: Redis's protocol errors, the
// connection closed; never a hang; other clients unaffected. An unknown
// command keeps the connection.
func testBadRequests(t *testing.T, e *redisEnv, ctx context.Context) {
	// a client working all along
	good := e.client(2)
	stop := make(chan struct{})
	var goodErr atomic.Value
	var goodOps atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("good:%d", i%50)
			if err := good.Set(ctx, k, i, 0).Err(); err != nil {
				goodErr.Store(err)
				return
			}
			if v, err := good.Get(ctx, k).Int(); err != nil || v != i {
				goodErr.Store(fmt.Errorf("GET %s = %d, %v; want %d", k, v, err, i))
				return
			}
			goodOps.Add(1)
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
		if err := goodErr.Load(); err != nil {
			t.Errorf("a well-behaved client failed during the bad requests: %v", err)
		}
		if goodOps.Load() == 0 {
			t.Errorf("the well-behaved client made no progress")
		}
	}()

	for _, tc := range []struct {
		name, req, want string
	}{
		{"bulk over max_bulk_len", "*2\r\n$3\r\nSET\r\n$2000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk over max_bulk_len with data", mbulk("SET", "k", strings.Repeat("x", 1<<20+1)), "-ERR Protocol error: invalid bulk length\r\n"},
		{"bad multibulk count", "*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"multibulk count over 1M", "*1048577\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"expected $", "*1\r\n:5\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"negative bulk", "*1\r\n$-3\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"unbalanced quotes", "SET k \"abc\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"inline over 64 KB", strings.Repeat("A", 70<<10), "-ERR Protocol error: too big inline request\r\n"},
		{"count line over 64 KB", "*" + strings.Repeat("1", 70<<10), "-ERR Protocol error: too big mbulk count string\r\n"},
	} {
		r := e.raw()
		// replies to the commands before the bad one come first
		r.send(mbulk("SET", "before", "1") + "PING\r\n" + tc.req)
		if got := r.mustReply(); got != "+OK\r\n" {
			t.Errorf("%s: reply before: %q", tc.name, got)
		}
		if got := r.mustReply(); got != "+PONG\r\n" {
			t.Errorf("%s: reply before: %q", tc.name, got)
		}
		got, err := r.reply(3 * time.Second)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
		if closed, extra := r.closed(3 * time.Second); !closed || extra != "" {
			t.Errorf("%s: connection closed %v (extra %q); want closed after the protocol error", tc.name, closed, extra)
		}
	}
	// redis-server says the same for what both refuse
	for _, req := range []string{"*abc\r\n", "*1\r\n:5\r\n", "*2147483648\r\n"} {
		c, err := net.Dial("tcp", e.addrs[0])
		noErr(t, "dial node", err)
		_, _ = c.Write([]byte(req))
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		nodeSays, _ := io.ReadAll(c)
		c.Close()
		r := e.raw()
		r.send(req)
		ambSays, _ := r.reply(3 * time.Second)
		if ambSays != string(nodeSays) {
			t.Errorf("%q: ambassador %q, redis-server %q", req, ambSays, nodeSays)
		}
	}

	// random garbage: an error or a close, never silence
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 40 {
		g := make([]byte, 1+rng.IntN(200))
		for j := range g {
			g[j] = byte(rng.IntN(256))
		}
		if g[0] == '*' {
			g[0] = '#'
		}
		g = append(g, "X\r\n"...)
		r := e.raw()
		r.send(string(g))
		_ = r.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		tmp := make([]byte, 4096)
		n, err := r.c.Read(tmp)
		var ne net.Error
		if n == 0 && errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("garbage %d %q: no reply and no close within 3s", i, g)
		} else if n > 0 && tmp[0] != '-' {
			t.Errorf("garbage %d %q: reply %q, want an error", i, g, tmp[:n])
		}
	}

	// an unknown command: the error, and the connection stays usable
	r := e.raw()
	if got := r.do("FOOBAR", "a", "b"); got != "-ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b' \r\n" {
		t.Errorf("unknown command: %q", got)
	}
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Errorf("PING after an unknown command: %q", got)
	}
	// unsupported commands say so, and the connection stays usable
	for _, cmd := range [][]string{{"MONITOR"}, {"DEBUG", "SLEEP", "0"}, {"CLUSTER", "INFO"}, {"CLIENT", "KILL", "ID", "1"},
		{"MIGRATE", "127.0.0.1", "1", "k", "0", "100"}} {
		if got := r.do(cmd...); !strings.HasPrefix(got, "-ERR ") || !strings.Contains(got, "not supported by the ambassador") {
			t.Errorf("%q: %q, want an error saying it is not supported", cmd, got)
		}
	}
	// COPY to another database: refused (the key would land where the
	// ambassador never reads), inside MULTI too; DB 0 copies
	r.do("SET", "{cp}a", "v")
	if got := r.do("COPY", "{cp}a", "{cp}b", "DB", "1"); got != "-ERR the ambassador serves database 0 only\r\n" {
		t.Errorf("COPY ... DB 1: %q", got)
	}
	if got := r.do("COPY", "{cp}a", "{cp}b", "db", "0", "REPLACE"); got != ":1\r\n" {
		t.Errorf("COPY ... db 0 REPLACE: %q", got)
	}
	r.do("MULTI")
	if got := r.do("COPY", "{cp}a", "{cp}c", "DB", "2"); got != "-ERR the ambassador serves database 0 only\r\n" {
		t.Errorf("COPY ... DB 2 inside MULTI: %q", got)
	}
	if got := r.do("EXEC"); !strings.HasPrefix(got, "-EXECABORT") {
		t.Errorf("EXEC after a refused COPY: %q", got)
	}
	for i, a := range e.addrs {
		d := dialRaw(t, a)
		d.do("SELECT", "1")
		if got := d.do("DBSIZE"); got != ":0\r\n" {
			t.Errorf("node %d has keys in database 1: DBSIZE %q", i, got)
		}
	}
	if got := r.do("SET", "after", "ok"); got != "+OK\r\n" {
		t.Errorf("SET after unsupported commands: %q", got)
	}
	if out, _ := e.cli("", "NOSUCHCOMMAND"); !strings.Contains(out, "unknown command") {
		t.Errorf("redis-cli NOSUCHCOMMAND: %q", out)
	}
}

// A request Redis refuses must not reach a shared backend connection: the
// node would close it, failing every client's requests on it.
func testSharedConnNotPoisoned(t *testing.T, e *redisEnv, ctx context.Context) {
	k := e.keyOn(0, "poison")
	noErr(t, "SET", e.client(2).Set(ctx, k, "v", 0).Err())
	// requests the node refuses with a protocol error but a lax parser
	// would pass on: leading zeros, "-0"
	for _, bad := range []string{
		"*2\r\n$3\r\nGET\r\n$0" + strconv.Itoa(len(k)) + "\r\n" + k + "\r\n",
		"*02\r\n$3\r\nGET\r\n$" + strconv.Itoa(len(k)) + "\r\n" + k + "\r\n",
		"*2\r\n$3\r\nGET\r\n$-0\r\n\r\n",
	} {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var fails atomic.Int64
		var firstErr atomic.Value
		for range 4 {
			wg.Go(func() {
				c := e.client(2)
				for {
					select {
					case <-stop:
						return
					default:
					}
					p := c.Pipeline()
					cmds := make([]*redis.StringCmd, 20)
					for i := range cmds {
						cmds[i] = p.Get(ctx, k)
					}
					_, _ = p.Exec(ctx)
					for _, cmd := range cmds {
						if v, err := cmd.Result(); err != nil || v != "v" {
							fails.Add(1)
							firstErr.CompareAndSwap(nil, fmt.Sprintf("%q %v", v, err))
						}
					}
				}
			})
		}
		time.Sleep(50 * time.Millisecond)
		for range 5 {
			r := e.raw()
			r.send(bad)
			got, _ := r.reply(3 * time.Second)
			if !strings.HasPrefix(got, "-ERR Protocol error") {
				t.Errorf("%q: %q, want a protocol error from the ambassador", bad, got)
			}
		}
		time.Sleep(50 * time.Millisecond)
		close(stop)
		wg.Wait()
		if n := fails.Load(); n > 0 {
			t.Errorf("after %q from one client, %d GETs of other clients failed, e.g. %v", bad, n, firstErr.Load())
		}
	}
}

// 15. Metrics: per-command counts and latency histogram; INFO section.
func testMetrics(t *testing.T, e *redisEnv, ctx context.Context) {
	c := e.client(2)
	noErr(t, "SET", c.Set(ctx, "m", "1", 0).Err())
	gets := e.metric(`ambassador_redis_commands_total{command="get"}`)
	hist := e.metric(`ambassador_redis_command_duration_seconds_count{command="get"}`)
	mgets := e.metric(`ambassador_redis_commands_total{command="mget"}`)
	for range 10 {
		noErr(t, "GET", c.Get(ctx, "m").Err())
	}
	noErr(t, "MGET", c.MGet(ctx, e.keyOn(0, "m"), e.keyOn(1, "m")).Err())
	if d := e.metric(`ambassador_redis_commands_total{command="get"}`) - gets; d != 10 {
		t.Errorf("ambassador_redis_commands_total{command=\"get\"} rose by %v after 10 GETs", d)
	}
	if d := e.metric(`ambassador_redis_command_duration_seconds_count{command="get"}`) - hist; d != 10 {
		t.Errorf("the GET latency histogram counted %v of 10 GETs", d)
	}
	if d := e.metric(`ambassador_redis_commands_total{command="mget"}`) - mgets; d != 1 {
		t.Errorf("commands_total{mget} rose by %v after one MGET split over 2 nodes", d)
	}
	if v := e.metric(`ambassador_redis_command_duration_seconds_bucket{command="get",le="+Inf"}`); v < 10 {
		t.Errorf("no +Inf bucket for get: %v", v)
	}
	if v := e.metric(`ambassador_redis_command_duration_seconds_bucket{command="get",le="1"}`); v < 10 {
		t.Errorf("GETs slower than 1 s? bucket le=1 holds %v", v)
	}
	for i, a := range e.addrs {
		if err := c.Get(ctx, e.keyOn(i, "m")).Err(); err != redis.Nil {
			t.Fatalf("GET of a missing key: %v", err)
		}
		if !strings.Contains(mustBody(e, "/metrics"), `ambassador_redis_node_inflight_requests{node="`+a+`"}`) {
			t.Errorf("no in-flight gauge for node %s", a)
		}
	}
	if v := e.metric("ambassador_redis_clients"); v < 1 {
		t.Errorf("ambassador_redis_clients = %v with clients connected", v)
	}
	pe := e.metric("ambassador_redis_protocol_errors_total")
	r := e.raw()
	r.send("*x\r\n")
	_, _ = r.reply(2 * time.Second)
	eventually(t, 2*time.Second, "protocol error counted", func() bool {
		return e.metric("ambassador_redis_protocol_errors_total") == pe+1
	})
	info, err := c.Info(ctx, "ambassador").Result()
	if err != nil || !strings.Contains(info, "# Ambassador") || field(info, "nodes_up") != "3" || field(info, "hash") != "xxhash64" {
		t.Errorf("INFO ambassador: %v\n%s", err, info)
	}
}

func mustBody(e *redisEnv, path string) string {
	_, b := e.httpGet(path)
	return b
}

// syncBuffer is a bytes.Buffer safe to write from a process's copier and
// read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// 8. A node killed while pipelines run: its keys fail at once with errors
// naming it, the other keys keep working, nothing hangs; after a restart
// its keys work again. With REDIS_AUTO_EJECT its keys move to the others.
func TestRedisNodeKilledMidPipeline(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_REQUEST_TIMEOUT": "2s"}})
	ctx := ctxT(t, 2*time.Minute)
	const victim = 1
	victimAddr := e.addrs[victim]
	var keys []string
	for i := range 3 {
		keys = append(keys, e.keysOn(i, 20, "kill:")...)
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	c := e.client(2, func(o *redis.Options) { o.PoolSize = 8 })
	for _, k := range keys {
		noErr(t, "SET", c.Set(ctx, k, "v"+k, 0).Err())
	}

	type result struct {
		elapsed   time.Duration
		victimErr int
		victimOK  int
		bad       []string // wrong results
	}
	var mu sync.Mutex
	var results []result
	var killedAt atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				p := c.Pipeline()
				cmds := make([]*redis.StringCmd, len(keys))
				for i, k := range keys {
					cmds[i] = p.Get(ctx, k)
				}
				_, _ = p.Exec(ctx)
				res := result{elapsed: time.Since(start)}
				for i, cmd := range cmds {
					v, err := cmd.Result()
					onVictim := e.owner(keys[i]) == victim
					switch {
					case err == nil && v == "v"+keys[i]:
						if onVictim {
							res.victimOK++
						}
					case err != nil && onVictim && strings.Contains(err.Error(), "node "+victimAddr) && killedAt.Load() != 0:
						res.victimErr++
					default:
						res.bad = append(res.bad, fmt.Sprintf("%s (node %d): %q, %v", keys[i], e.owner(keys[i]), v, err))
					}
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		})
	}
	// a subscriber of a channel on the victim
	sub := e.raw()
	vch := e.keyOn(victim, "killch")
	if got := sub.do("SUBSCRIBE", vch); !strings.Contains(got, "subscribe") {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	time.Sleep(300 * time.Millisecond)
	killedAt.Store(time.Now().UnixNano())
	noErr(t, "kill", nodes[victim].Kill())
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	var withErr, bad int
	var slowest time.Duration
	for _, r := range results {
		slowest = max(slowest, r.elapsed)
		if r.victimErr > 0 {
			withErr++
		}
		if len(r.bad) > 0 {
			if bad++; bad < 5 {
				t.Errorf("a pipeline had wrong replies: %v", r.bad[:min(3, len(r.bad))])
			}
		}
	}
	t.Logf("%d pipelines of %d GETs, %d with errors for the killed node, slowest %v", len(results), len(keys), withErr, slowest)
	if withErr == 0 {
		t.Errorf("no pipeline saw the killed node's errors")
	}
	if slowest > 2500*time.Millisecond {
		t.Errorf("a pipeline took %v: the killed node stalled it", slowest)
	}
	// the subscriber lost its subscription: it must learn it, as from a
	// Redis that went away
	if closed, _ := sub.closed(2 * time.Second); !closed {
		t.Errorf("the subscriber of a channel on the killed node is still connected, its subscription silently gone")
	}
	eventually(t, 3*time.Second, "the killed node reported down in /nodes", func() bool {
		return e.nodeStates()[victimAddr].State == "down"
	})
	// while down: at once, "node <addr> is unavailable"
	start := time.Now()
	err := c.Get(ctx, e.keyOn(victim, "kill:")).Err()
	wantErr(t, "GET of a down node's key", err, "node "+victimAddr+" is unavailable")
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("GET of a down node's key took %v", d)
	}
	wantErr(t, "DBSIZE with a node down", c.DBSize(ctx).Err(), "node "+victimAddr)
	if v := e.metric(`ambassador_cluster_node_failures_total{cluster="redis",node="` + victimAddr + `"}`); v < 1 {
		t.Errorf("ambassador_cluster_node_failures_total of the killed node = %v", v)
	}
	if v, err := c.Get(ctx, e.keyOn(0, "kill:")).Result(); err != nil || v != "v"+e.keyOn(0, "kill:") {
		t.Errorf("GET of another node's key while one is down: %q, %v", v, err)
	}
	// MGET spanning the down node fails, naming it
	wantErr(t, "MGET spanning the down node", c.MGet(ctx, e.keyOn(0, "kill:"), e.keyOn(victim, "kill:")).Err(), "node "+victimAddr)

	// back: restart, health recovers, its keys work (the node restarted empty)
	noErr(t, "restart", nodes[victim].Restart())
	eventually(t, 5*time.Second, "the node back up in /nodes", func() bool {
		return e.nodeStates()[victimAddr].State == "up"
	})
	for _, k := range e.keysOn(victim, 5, "kill:") {
		eventually(t, 3*time.Second, "SET of the restarted node's key", func() bool {
			return c.Set(ctx, k, "again", 0).Err() == nil
		})
		if v, err := c.Get(ctx, k).Result(); err != nil || v != "again" {
			t.Errorf("GET %s after the restart: %q, %v", k, v, err)
		}
		e.expectOn(k, victim)
	}

	// auto-eject: a down node's keys are served by the others
	e.flushNodes()
	ej := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_AUTO_EJECT": "true", "REDIS_REQUEST_TIMEOUT": "2s"}})
	ec := ej.client(2)
	vkeys := ej.keysOn(victim, 10, "ej:")
	for _, k := range vkeys {
		noErr(t, "SET", ec.Set(ctx, k, "before", 0).Err())
		ej.expectOn(k, victim)
	}
	noErr(t, "kill", nodes[victim].Kill())
	eventually(t, 3*time.Second, "the killed node down in /nodes", func() bool {
		return ej.nodeStates()[victimAddr].State == "down"
	})
	for _, k := range vkeys {
		if err := ec.Set(ctx, k, "ejected", 0).Err(); err != nil {
			t.Errorf("SET %s with its node ejected: %v", k, err)
			continue
		}
		if v, err := ec.Get(ctx, k).Result(); err != nil || v != "ejected" {
			t.Errorf("GET %s with its node ejected: %q, %v", k, v, err)
		}
		var on []int
		for i, d := range ej.direct {
			if i != victim && d.Exists(ctx, k).Val() == 1 {
				on = append(on, i)
			}
		}
		if len(on) != 1 {
			t.Errorf("%s of the ejected node is on live nodes %v, want exactly one", k, on)
		}
	}
	// keyspace-wide commands leave the ejected node out
	if n, err := ec.DBSize(ctx).Result(); err != nil || n != int64(len(vkeys)) {
		t.Errorf("DBSIZE with a node ejected: %d, %v; want %d", n, err, len(vkeys))
	}
	if keys, err := ec.Keys(ctx, "ej:*").Result(); err != nil || len(keys) != len(vkeys) {
		t.Errorf("KEYS with a node ejected: %d keys, %v; want %d", len(keys), err, len(vkeys))
	}
	var scanned []string
	it := ec.Scan(ctx, 0, "ej:*", 3).Iterator()
	for it.Next(ctx) {
		scanned = append(scanned, it.Val())
	}
	if err := it.Err(); err != nil || len(scanned) != len(vkeys) {
		t.Errorf("SCAN with a node ejected: %d keys, %v; want the %d keys of the live nodes", len(scanned), err, len(vkeys))
	}
	noErr(t, "restart", nodes[victim].Restart())
}

// 14. A node that stops answering: its requests fail with a timeout
// error within the request timeout, other nodes' keys are unaffected, and
// it recovers.
func TestRedisRequestTimeout(t *testing.T) {
	nodes := harness.RedisNodes(t, 3, "--enable-debug-command", "yes")
	// health probes far apart: the request timeout alone must bound the
	// wait, not the health map marking the node down
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_REQUEST_TIMEOUT": "500ms", "HEALTH_CHECK_INTERVAL": "2s"}})
	ctx := ctxT(t, 2*time.Minute)
	c := e.client(2, func(o *redis.Options) { o.ReadTimeout = 10 * time.Second })
	const frozen = 2
	fk, ok := e.keyOn(frozen, "to:"), e.keyOn(0, "to:")
	noErr(t, "SET", c.Set(ctx, fk, "f", 0).Err())
	noErr(t, "SET", c.Set(ctx, ok, "o", 0).Err())
	frozenAddr := e.addrs[frozen]

	check := func(how string) {
		t.Helper()
		// every request to the frozen node fails within about the request
		// timeout: the first (on an open connection) and the next ones
		// (which find the connection aborted and must open another)
		for attempt := 1; attempt <= 3; attempt++ {
			start := time.Now()
			err := c.Get(ctx, fk).Err()
			d := time.Since(start)
			// once the failures mark the node down, "is unavailable" is
			// the right answer too
			if err == nil || !strings.Contains(err.Error(), "node "+frozenAddr) ||
				!strings.Contains(err.Error(), "timed out") && (attempt == 1 || !strings.Contains(err.Error(), "is unavailable")) {
				t.Errorf("%s: GET %d of the frozen node's key: %v, want \"ERR node %s ... timed out\"", how, attempt, err, frozenAddr)
			}
			if d > 1200*time.Millisecond || attempt == 1 && d < 400*time.Millisecond {
				t.Errorf("%s: GET %d of the frozen node's key answered after %v, want about the 500ms request timeout", how, attempt, d)
			}
		}
		// a pipeline mixing nodes: the other node's replies are fine
		p := c.Pipeline()
		g1, g2 := p.Get(ctx, ok), p.Get(ctx, fk)
		start := time.Now()
		_, _ = p.Exec(ctx)
		if v, err := g1.Result(); err != nil || v != "o" {
			t.Errorf("%s: GET of a live node's key in the same pipeline: %q, %v", how, v, err)
		}
		if err := g2.Err(); err == nil || !strings.Contains(err.Error(), "node "+frozenAddr) {
			t.Errorf("%s: frozen key in a pipeline: %v", how, err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("%s: the pipeline took %v", how, d)
		}
		// another client, other node: fast
		start = time.Now()
		if v, err := e.client(2).Get(ctx, ok).Result(); err != nil || v != "o" || time.Since(start) > 300*time.Millisecond {
			t.Errorf("%s: another client's GET on a live node: %q, %v after %v", how, v, err, time.Since(start))
		}
	}
	recovered := func(how string) {
		t.Helper()
		eventually(t, 8*time.Second, how+": the node answers through the ambassador again", func() bool {
			v, err := c.Get(ctx, fk).Result()
			return err == nil && v == "f"
		})
	}

	// DEBUG SLEEP sent to the node directly
	sleepDone := make(chan error, 1)
	go func() { sleepDone <- e.direct[frozen].Do(ctx, "DEBUG", "SLEEP", "3").Err() }()
	time.Sleep(100 * time.Millisecond)
	check("DEBUG SLEEP 3")
	noErr(t, "DEBUG SLEEP", <-sleepDone)
	recovered("DEBUG SLEEP")

	// a subscriber with a subscription on the node, before it freezes
	sub := e.raw()
	ch1, ch2 := e.keyOn(frozen, "toch"), e.keyOn(frozen, "toch2-")
	if got := sub.do("SUBSCRIBE", ch1); !strings.Contains(got, "subscribe") {
		t.Fatalf("SUBSCRIBE: %q", got)
	}

	// SIGSTOP
	info, err := e.direct[frozen].Info(ctx, "server").Result()
	noErr(t, "INFO server", err)
	pid, err := strconv.Atoi(field(info, "process_id"))
	noErr(t, "process_id", err)
	noErr(t, "SIGSTOP", syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	// SUBSCRIBE to another channel of the frozen node (not yet known to be
	// down): an error or a closed connection within about the request
	// timeout, never a hang
	start := time.Now()
	sub.send(mbulk("SUBSCRIBE", ch2))
	got, err := sub.reply(3 * time.Second)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || err == nil && !strings.HasPrefix(got, "-") {
		t.Errorf("SUBSCRIBE on the frozen node: %q, %v after %v; want an error or a close within about 500ms", got, err, time.Since(start))
	} else if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("SUBSCRIBE on the frozen node answered (%q, %v) after %v", got, err, d)
	}
	check("SIGSTOP")
	noErr(t, "SIGCONT", syscall.Kill(pid, syscall.SIGCONT))
	recovered("SIGCONT")
}

// 9. Data written through twemproxy (fnv1a_64, ketama, hash tag {}) is
// all readable through the ambassador with the same settings.
func TestRedisTwemproxyPlacement(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	addrs := harness.RedisAddrs(nodes)
	ctx := ctxT(t, 2*time.Minute)
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "host:port", true: "named"}[named], func(t *testing.T) {
			var names []string
			servers := make([]string, len(addrs))
			for i, a := range addrs {
				servers[i] = a + ":1"
				if named {
					names = append(names, fmt.Sprintf("shard-%c", 'a'+i))
					servers[i] += " " + names[i]
				}
			}
			nut := harness.NewNutcracker(t, servers, "fnv1a_64", "ketama", "{}")
			for _, n := range nodes {
				_, _ = n.Do("FLUSHALL")
			}
			// 2000 keys through nutcracker, some with hash tags
			var req strings.Builder
			keys := make([]string, 2000)
			for i := range keys {
				k := fmt.Sprintf("tw:%d", i)
				if i%5 == 0 {
					k = fmt.Sprintf("tw:{user%d}:%d", i%37, i)
				}
				keys[i] = k
				req.WriteString(mbulk("SET", k, "val:"+k))
			}
			conn, err := net.Dial("tcp", nut.Addr)
			noErr(t, "dial nutcracker", err)
			defer conn.Close()
			r := &rawConn{t: t, c: conn}
			r.send(req.String())
			for i := range keys {
				if got := r.mustReply(); got != "+OK\r\n" {
					t.Fatalf("nutcracker SET %s: %q", keys[i], got)
				}
			}
			env := map[string]string{"REDIS_HASH": "fnv1a_64", "REDIS_DISTRIBUTION": "ketama", "REDIS_HASH_TAG": "{}"}
			e := newRedisEnv(t, nodes, envOpts{env: env, names: names})
			perNode := make([]int, 3)
			for i, keys := range e.snapshot() {
				perNode[i] = len(keys)
			}
			if slices.Contains(perNode, 0) || perNode[0]+perNode[1]+perNode[2] != len(keys) {
				t.Fatalf("nutcracker placed %v keys per node", perNode)
			}
			// the ambassador's ring agrees with nutcracker on every key
			misplaced := 0
			for _, k := range keys[:300] {
				if got := e.where(k); !slices.Equal(got, []int{e.owner(k)}) {
					misplaced++
				}
			}
			if misplaced > 0 {
				t.Errorf("%d of 300 keys are not where the ring puts them", misplaced)
			}
			// read every key back: GETs in a pipeline, and MGETs
			c := e.client(2)
			p := c.Pipeline()
			cmds := make([]*redis.StringCmd, len(keys))
			for i, k := range keys {
				cmds[i] = p.Get(ctx, k)
			}
			_, _ = p.Exec(ctx)
			missing := 0
			for i, cmd := range cmds {
				if v, err := cmd.Result(); err != nil || v != "val:"+keys[i] {
					if missing++; missing < 5 {
						t.Errorf("GET %s through the ambassador: %q, %v", keys[i], v, err)
					}
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d keys written through nutcracker not readable through the ambassador", missing, len(keys))
			}
			vals, err := c.MGet(ctx, keys[:500]...).Result()
			noErr(t, "MGET", err)
			for i, v := range vals {
				if v != "val:"+keys[i] {
					t.Fatalf("MGET[%d] %s = %v", i, keys[i], v)
				}
			}
			// and the other way: written through the ambassador, read
			// through nutcracker
			noErr(t, "SET", c.Set(ctx, "tw:back", "ok", 0).Err())
			if got := r.do("GET", "tw:back"); got != bulk("ok") {
				t.Errorf("nutcracker GET of a key written through the ambassador: %q", got)
			}
			e.stop()
		})
	}
}

// 10. AUTH: the frontend password and ACL users checked by the
// ambassador; backends with requirepass and ACL users.
func TestRedisAuth(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	t.Run("FrontendPassword", func(t *testing.T) {
		nodes := harness.RedisNodes(t, 3)
		e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_FRONTEND_PASSWORD": "s3cret"}})
		r := e.raw()
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"GET", "k"}, "-NOAUTH Authentication required.\r\n"},
			{[]string{"MGET", "a", "b"}, "-NOAUTH Authentication required.\r\n"},
			{[]string{"KEYS", "*"}, "-NOAUTH Authentication required.\r\n"},
			{[]string{"SUBSCRIBE", "ch"}, "-NOAUTH Authentication required.\r\n"},
			{[]string{"AUTH", "wrong"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
			{[]string{"AUTH", "default", "wrong"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
			{[]string{"HELLO", "3"}, "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"},
			{[]string{"GET", "k"}, "-NOAUTH Authentication required.\r\n"},
			{[]string{"AUTH", "s3cret"}, "+OK\r\n"},
			{[]string{"SET", "k", "v"}, "+OK\r\n"},
			{[]string{"GET", "k"}, bulk("v")},
		} {
			if got := r.do(tc.args...); got != tc.want {
				t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
			}
		}
		// HELLO with AUTH inside
		h := e.raw()
		if got := h.do("HELLO", "3", "AUTH", "default", "s3cret"); !strings.HasPrefix(got, "%7\r\n") {
			t.Errorf("HELLO 3 AUTH default s3cret: %q", got)
		}
		if got := h.do("GET", "k"); got != bulk("v") {
			t.Errorf("GET after HELLO AUTH: %q", got)
		}
		// RESET forgets the authentication
		if got := h.do("RESET"); got != "+RESET\r\n" {
			t.Errorf("RESET: %q", got)
		}
		if got := h.do("GET", "k"); got != "-NOAUTH Authentication required.\r\n" {
			t.Errorf("GET after RESET: %q", got)
		}
		// go-redis with the password, RESP2 and RESP3; a wrong one fails
		for _, proto := range []int{2, 3} {
			c := e.client(proto, func(o *redis.Options) { o.Password = "s3cret" })
			if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
				t.Errorf("go-redis RESP%d with the password: %q, %v", proto, v, err)
			}
			bad := e.client(proto, func(o *redis.Options) { o.Password = "nope" })
			wantErr(t, "go-redis with a wrong password", bad.Get(ctx, "k").Err(), "WRONGPASS")
			none := e.client(proto)
			wantErr(t, "go-redis without a password", none.Get(ctx, "k").Err(), "NOAUTH")
		}
		if out, _ := e.cli("", "-a", "s3cret", "--no-auth-warning", "GET", "k"); out != "v" {
			t.Errorf("redis-cli -a: %q", out)
		}
		if out, _ := e.cli("", "GET", "k"); !strings.Contains(out, "NOAUTH") {
			t.Errorf("redis-cli without -a: %q", out)
		}
		if v := e.metric("ambassador_redis_auth_failures_total"); v < 4 {
			t.Errorf("ambassador_redis_auth_failures_total = %v after failed AUTHs", v)
		}
	})

	t.Run("ACLUsers", func(t *testing.T) {
		nodes := harness.RedisNodes(t, 3)
		e := newRedisEnv(t, nodes, envOpts{mutate: func(c *config.Config) {
			c.Redis.FrontendUsers = map[string]config.Secret{"app": "apppw", "ops": "opspw"}
		}})
		r := e.raw()
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"GET", "k"}, "-NOAUTH Authentication required.\r\n"},
			{[]string{"AUTH", "app", "wrong"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
			{[]string{"AUTH", "nobody", "apppw"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
			{[]string{"AUTH", "ops", "apppw"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
			{[]string{"AUTH", "apppw"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
			{[]string{"AUTH", "app", "apppw"}, "+OK\r\n"},
			{[]string{"SET", "k", "v"}, "+OK\r\n"},
		} {
			if got := r.do(tc.args...); got != tc.want {
				t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
			}
		}
		if info := r.do("CLIENT", "INFO"); !strings.Contains(info, "user=app") {
			t.Errorf("CLIENT INFO after AUTH app: %q", info)
		}
		h := e.raw()
		if got := h.do("HELLO", "2", "AUTH", "ops", "opspw"); !strings.HasPrefix(got, "*14\r\n") {
			t.Errorf("HELLO 2 AUTH ops: %q", got)
		}
		if got := h.do("GET", "k"); got != bulk("v") {
			t.Errorf("GET after HELLO AUTH ops: %q", got)
		}
		if got := e.raw().do("HELLO", "3", "AUTH", "ops", "bad"); !strings.HasPrefix(got, "-WRONGPASS") {
			t.Errorf("HELLO AUTH with a wrong password: %q", got)
		}
		c := e.client(3, func(o *redis.Options) { o.Username, o.Password = "app", "apppw" })
		if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Errorf("go-redis as app: %q, %v", v, err)
		}
		if out, _ := e.cli("", "--user", "ops", "--pass", "opspw", "--no-auth-warning", "GET", "k"); out != "v" {
			t.Errorf("redis-cli --user ops: %q", out)
		}
	})

	t.Run("BackendPassword", func(t *testing.T) {
		nodes := harness.RedisNodes(t, 3, "--requirepass", "backpw")
		e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_PASSWORD": "backpw"}})
		c := e.client(2)
		c3 := e.client(3)
		for i := range 3 {
			k := e.keyOn(i, "bp")
			noErr(t, "SET through the ambassador to a requirepass node", c.Set(ctx, k, "v", 0).Err())
			e.expectOn(k, i)
			if v, err := c3.Get(ctx, k).Result(); err != nil || v != "v" {
				t.Errorf("RESP3 GET: %q, %v", v, err)
			}
		}
		if n, err := c.DBSize(ctx).Result(); err != nil || n != 3 {
			t.Errorf("DBSIZE: %d, %v", n, err)
		}
		ps := c.Subscribe(ctx, "bpch")
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Errorf("SUBSCRIBE on requirepass nodes: %v", err)
		}
		ps.Close()
		go func() { time.Sleep(100 * time.Millisecond); c3.RPush(ctx, "bpl", "x") }()
		if v, err := c.BLPop(ctx, 5*time.Second, "bpl").Result(); err != nil || v[1] != "x" {
			t.Errorf("BLPOP on requirepass nodes: %v, %v", v, err)
		}
		for _, st := range e.nodeStates() {
			if st.State != "up" {
				t.Errorf("node %s is %s", st.Addr, st.State)
			}
		}

		// an ACL user on the backends: REDIS_USERNAME + REDIS_PASSWORD
		for _, n := range nodes {
			noErr(t, "ACL SETUSER", redis.NewClient(&redis.Options{Addr: n.Addr, Password: "backpw", DisableIdentity: true}).
				Do(ctx, "ACL", "SETUSER", "amb", "on", ">ambpw", "~*", "&*", "+@all").Err())
		}
		u := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_USERNAME": "amb", "REDIS_PASSWORD": "ambpw"}})
		uc := u.client(2)
		for i := range 3 {
			k := u.keyOn(i, "acl")
			noErr(t, "SET as an ACL user", uc.Set(ctx, k, "v", 0).Err())
			u.expectOn(k, i)
		}
		if l, err := u.direct[0].Do(ctx, "CLIENT", "LIST").Text(); err != nil || !strings.Contains(l, "user=amb") {
			t.Errorf("the node's CLIENT LIST shows no connection of user amb: %v\n%s", err, l)
		}

		// a wrong backend password: errors for the clients, nodes down
		w := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_PASSWORD": "wrong"}})
		wc := w.client(2)
		err := wc.Set(ctx, w.keyOn(0, "w"), "v", 0).Err()
		if err == nil || !strings.Contains(err.Error(), "node ") {
			t.Errorf("SET with a wrong backend password: %v, want an error naming the node", err)
		}
		eventually(t, 3*time.Second, "every node down in /nodes with a wrong backend password", func() bool {
			for _, a := range w.addrs {
				if w.nodeStates()[a].State != "down" {
					return false
				}
			}
			return true
		})
		for a, st := range w.nodeStates() {
			if !strings.Contains(st.LastError, "WRONGPASS") && !strings.Contains(st.LastError, "AUTH") {
				t.Errorf("node %s last_error %q, want the AUTH failure", a, st.LastError)
			}
		}
		if code, _ := w.httpGet("/readyz"); code != 503 {
			t.Errorf("/readyz %d with every node failing AUTH", code)
		}
		wantErr(t, "GET with every node down", wc.Get(ctx, "k").Err(), "unavailable")
	})
}

// 12. Blocking commands run on connections of their own: heavy traffic of
// other clients goes on without a stall, and the blocked clients get
// their values.
func TestRedisBlocking(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	e := newRedisEnv(t, nodes, envOpts{})
	ctx := ctxT(t, 2*time.Minute)
	setup := e.client(2)

	// 20 clients of heavy GET/SET traffic, latency recorded
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lmu sync.Mutex
	var lat []time.Duration
	var trafficErr atomic.Value
	for w := range 20 {
		wg.Go(func() {
			c := e.client(2, func(o *redis.Options) { o.PoolSize = 1 })
			var mine []time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					lmu.Lock()
					lat = append(lat, mine...)
					lmu.Unlock()
					return
				default:
				}
				k := fmt.Sprintf("traffic:%d:%d", w, i%20)
				start := time.Now()
				var err error
				if i%2 == 0 {
					err = c.Set(ctx, k, i, 0).Err()
				} else {
					err = c.Get(ctx, k).Err()
				}
				mine = append(mine, time.Since(start))
				if err != nil && err != redis.Nil {
					trafficErr.Store(err)
				}
			}
		})
	}

	type blockRes struct {
		name    string
		val     string
		err     error
		elapsed time.Duration
	}
	results := make(chan blockRes, 16)
	block := func(name string, proto int, fn func(c *redis.Client) (string, error)) {
		wg.Go(func() {
			c := e.client(proto)
			start := time.Now()
			v, err := fn(c)
			results <- blockRes{name, v, err, time.Since(start)}
		})
	}
	lk, bk, zk, xk := e.keyOn(0, "bl"), e.keyOn(1, "br"), e.keyOn(2, "bz"), e.keyOn(1, "xs")
	noErr(t, "XADD", setup.XAdd(ctx, &redis.XAddArgs{Stream: xk, ID: "1-0", Values: []string{"a", "0"}}).Err())
	time.Sleep(300 * time.Millisecond) // traffic warmed up
	blockStart := time.Now()
	block("BLPOP 0", 2, func(c *redis.Client) (string, error) {
		v, err := c.BLPop(ctx, 0, lk).Result()
		return fmt.Sprint(v), err
	})
	block("BRPOP 0 (RESP3)", 3, func(c *redis.Client) (string, error) {
		v, err := c.BRPop(ctx, 0, bk).Result()
		return fmt.Sprint(v), err
	})
	block("BLMOVE 0", 2, func(c *redis.Client) (string, error) {
		return c.BLMove(ctx, "{bm}src", "{bm}dst", "LEFT", "RIGHT", 0).Result()
	})
	block("BZPOPMIN 0", 3, func(c *redis.Client) (string, error) {
		v, err := c.BZPopMin(ctx, 0, zk).Result()
		if err != nil {
			return "", err
		}
		return fmt.Sprint(v.Key, " ", v.Member), nil
	})
	block("XREAD BLOCK 0", 2, func(c *redis.Client) (string, error) {
		v, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{xk, "$"}, Block: 0}).Result()
		if err != nil {
			return "", err
		}
		return fmt.Sprint(v[0].Messages[0].Values), nil
	})
	block("BRPOP 1s", 2, func(c *redis.Client) (string, error) {
		v, err := c.BRPop(ctx, time.Second, e.keyOn(2, "empty")).Result()
		return fmt.Sprint(v), err
	})
	block("BZPOPMAX 0.5s", 3, func(c *redis.Client) (string, error) {
		v, err := c.Do(ctx, "BZPOPMAX", e.keyOn(0, "emptyz"), "0.5").Result()
		return fmt.Sprint(v), err
	})
	block("XREAD BLOCK 700ms", 2, func(c *redis.Client) (string, error) {
		v, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{e.keyOn(0, "emptys"), "$"}, Block: 700 * time.Millisecond}).Result()
		return fmt.Sprint(v), err
	})
	// the blocked clients are blocked on the nodes
	eventually(t, 3*time.Second, "5 clients blocked on the nodes", func() bool {
		n := 0
		for _, d := range e.direct {
			ci, _ := d.Info(ctx, "clients").Result()
			b, _ := strconv.Atoi(field(ci, "blocked_clients"))
			n += b
		}
		return n >= 5
	})
	time.Sleep(time.Until(blockStart.Add(2 * time.Second)))
	pushed := time.Now()
	noErr(t, "RPUSH", setup.RPush(ctx, lk, "lv").Err())
	noErr(t, "LPUSH", setup.LPush(ctx, bk, "bv").Err())
	noErr(t, "RPUSH", setup.RPush(ctx, "{bm}src", "mv").Err())
	noErr(t, "ZADD", setup.ZAdd(ctx, zk, redis.Z{Score: 1, Member: "zm"}).Err())
	noErr(t, "XADD", setup.XAdd(ctx, &redis.XAddArgs{Stream: xk, Values: []string{"f", "xv"}}).Err())
	want := map[string]string{
		"BLPOP 0":           fmt.Sprint([]string{lk, "lv"}),
		"BRPOP 0 (RESP3)":   fmt.Sprint([]string{bk, "bv"}),
		"BLMOVE 0":          "mv",
		"BZPOPMIN 0":        zk + " zm",
		"XREAD BLOCK 0":     fmt.Sprint(map[string]any{"f": "xv"}),
		"BRPOP 1s":          "nil",
		"BZPOPMAX 0.5s":     "nil",
		"XREAD BLOCK 700ms": "nil",
	}
	got := map[string]blockRes{}
	for range want {
		select {
		case r := <-results:
			got[r.name] = r
		case <-time.After(5 * time.Second):
			t.Fatalf("blocked commands did not all return: %v", got)
		}
	}
	close(stop)
	wg.Wait()
	for name, w := range want {
		r := got[name]
		if w == "nil" {
			if r.err != redis.Nil {
				t.Errorf("%s: %q, %v; want a nil reply at its timeout", name, r.val, r.err)
			}
			continue
		}
		if r.err != nil || r.val != w {
			t.Errorf("%s: %q, %v; want %q", name, r.val, r.err, w)
		}
		if r.elapsed < 1900*time.Millisecond {
			t.Errorf("%s returned after %v, before the push at 2s", name, r.elapsed)
		}
		if time.Since(pushed) > 0 && r.elapsed > 2*time.Second+time.Second {
			t.Errorf("%s returned %v after the start, long after the push", name, r.elapsed)
		}
	}
	for _, name := range []string{"BRPOP 1s", "BZPOPMAX 0.5s", "XREAD BLOCK 700ms"} {
		if d := got[name].elapsed; d < 400*time.Millisecond || d > 1800*time.Millisecond {
			t.Errorf("%s returned after %v", name, d)
		}
	}
	if v, _ := e.direct[e.owner("bm")].LRange(ctx, "{bm}dst", 0, -1).Result(); fmt.Sprint(v) != "[mv]" {
		t.Errorf("BLMOVE destination on its node: %v", v)
	}
	if err := trafficErr.Load(); err != nil {
		t.Errorf("traffic errors: %v", err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) < 1000 {
		t.Fatalf("only %d traffic requests in 2.5 s", len(lat))
	}
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("traffic beside the blocked clients: %d requests, p50 %v, p99 %v, max %v", len(lat), p50, p99, worst)
	if p99 > 100*time.Millisecond {
		t.Errorf("p99 latency of other clients %v while commands block: a stall", p99)
	}

	// a client that goes away while blocked frees its node connection
	dk := e.keyOn(1, "dc")
	r := e.raw()
	r.send(mbulk("BLPOP", dk, "0"))
	blockedOn := func() int {
		l, _ := e.direct[1].ClientList(ctx).Result()
		n := 0
		for _, line := range strings.Split(l, "\n") {
			if strings.Contains(line, "cmd=blpop") && strings.Contains(line, "flags=b") {
				n++
			}
		}
		return n
	}
	eventually(t, 3*time.Second, "the BLPOP blocked on its node", func() bool { return blockedOn() == 1 })
	r.c.Close()
	start := time.Now()
	eventually(t, 3*time.Second, "the blocked connection gone from the node's CLIENT LIST after the client left", func() bool { return blockedOn() == 0 })
	t.Logf("node connection released %v after the client closed", time.Since(start))
	// the list did not lose a value to the gone client
	noErr(t, "RPUSH", setup.RPush(ctx, dk, "kept").Err())
	if v, _ := e.direct[1].LRange(ctx, dk, 0, -1).Result(); fmt.Sprint(v) != "[kept]" {
		t.Errorf("a value pushed after the blocked client left: list %v", v)
	}
}

// Subcommands with keys, inline commands, WAIT, a RESP3 subscriber that
// keeps running commands, a pipelined WATCH/MULTI/EXEC.
func testMisc(t *testing.T, e *redisEnv, ctx context.Context) {
	c := e.client(2)
	// keyed subcommands run on their key's node
	for i := range 3 {
		k, s := e.keyOn(i, "misc:str"), e.keyOn(i, "misc:stream")
		noErr(t, "SET", c.Set(ctx, k, "12345", 0).Err())
		noErr(t, "XADD", c.XAdd(ctx, &redis.XAddArgs{Stream: s, ID: "1-1", Values: []string{"a", "b"}}).Err())
		for _, cmd := range [][]any{{"OBJECT", "ENCODING", k}, {"MEMORY", "USAGE", k}, {"OBJECT", "FREQ", k}, {"XINFO", "STREAM", s}, {"STRLEN", k}} {
			want, werr := e.direct[i].Do(ctx, cmd...).Result()
			got, err := c.Do(ctx, cmd...).Result()
			if fmt.Sprint(got, err) != fmt.Sprint(want, werr) {
				t.Errorf("%v on node %d's key: %v, %v; the node says %v, %v", cmd, i, got, err, want, werr)
			}
		}
	}
	// inline commands are re-encoded for the node
	r := e.raw()
	r.send("SET \"in line\" 'quoted value'\r\nGET \"in line\"\r\n")
	if got := r.mustReply(); got != "+OK\r\n" {
		t.Errorf("inline SET: %q", got)
	}
	if got := r.mustReply(); got != bulk("quoted value") {
		t.Errorf("inline GET: %q", got)
	}
	e.expectOn("in line", e.owner("in line"))
	// WAIT on standalone nodes without replicas: 0
	if n, err := c.Wait(ctx, 0, 100*time.Millisecond).Result(); err != nil || n != 0 {
		t.Errorf("WAIT 0 100: %d, %v", n, err)
	}
	// a pipelined WATCH ... EXEC in one write
	wk := "{mw}k"
	r.send(mbulk("SET", wk, "1") + mbulk("WATCH", wk) + mbulk("GET", wk) + mbulk("MULTI") + mbulk("INCR", wk) + mbulk("EXEC") + mbulk("GET", wk))
	var replies []string
	for range 7 {
		replies = append(replies, r.mustReply())
	}
	if want := []string{"+OK\r\n", "+OK\r\n", bulk("1"), "+OK\r\n", "+QUEUED\r\n", "*1\r\n:2\r\n", bulk("2")}; !slices.Equal(replies, want) {
		t.Errorf("pipelined WATCH/MULTI/EXEC: %q, want %q", replies, want)
	}
	// a blocking command in the middle of a pipeline runs after the
	// commands before it and before the ones after it
	bl := e.keyOn(2, "misc:bl")
	r.send(mbulk("RPUSH", bl, "a") + mbulk("BLPOP", bl, "0") + mbulk("LLEN", bl) + mbulk("RPUSH", bl, "b") + mbulk("BRPOP", bl, "0") + mbulk("EXISTS", bl))
	replies = replies[:0]
	for range 6 {
		replies = append(replies, r.mustReply())
	}
	if want := []string{":1\r\n", "*2\r\n" + bulk(bl) + bulk("a"), ":0\r\n", ":1\r\n", "*2\r\n" + bulk(bl) + bulk("b"), ":0\r\n"}; !slices.Equal(replies, want) {
		t.Errorf("pipeline with blocking commands: %q, want %q", replies, want)
	}
	// a RESP3 client keeps running commands while subscribed, and gets
	// its messages as pushes between the replies
	r3 := e.raw()
	r3.do("HELLO", "3")
	ch := e.keyOn(1, "r3ch")
	if got := r3.do("SUBSCRIBE", ch); got != ">3\r\n"+bulk("subscribe")+bulk(ch)+":1\r\n" {
		t.Fatalf("RESP3 SUBSCRIBE: %q", got)
	}
	if got := r3.do("GET", wk); got != bulk("2") {
		t.Errorf("RESP3 GET while subscribed: %q", got)
	}
	noErr(t, "PUBLISH", c.Publish(ctx, ch, "push-me").Err())
	if got := r3.mustReply(); got != ">3\r\n"+bulk("message")+bulk(ch)+bulk("push-me") {
		t.Errorf("RESP3 message: %q", got)
	}
	if got := r3.do("INCR", wk); got != ":3\r\n" {
		t.Errorf("RESP3 INCR while subscribed: %q", got)
	}
	if got := r3.do("UNSUBSCRIBE"); got != ">3\r\n"+bulk("unsubscribe")+bulk(ch)+":0\r\n" {
		t.Errorf("RESP3 UNSUBSCRIBE: %q", got)
	}
	// PUBSUB NUMSUB in RESP3 sums over the nodes too
	c3 := e.client(3)
	ps := c3.Subscribe(ctx, ch)
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if m, err := c3.PubSubNumSub(ctx, ch, "nobody").Result(); err != nil || m[ch] != 1 || m["nobody"] != 0 {
		t.Errorf("RESP3 PUBSUB NUMSUB: %v, %v", m, err)
	}
}

// Large values go through whole, alone, pipelined and split.
func TestRedisLargeValues(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	e := newRedisEnv(t, nodes, envOpts{})
	ctx := ctxT(t, time.Minute)
	c := e.client(2, func(o *redis.Options) { o.ReadTimeout = 20 * time.Second; o.WriteTimeout = 20 * time.Second })
	big := func(n int, seed byte) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i%251)
		}
		return string(b)
	}
	v8 := big(8<<20, 1)
	noErr(t, "SET 8 MB", c.Set(ctx, "big:8m", v8, 0).Err())
	if got, err := c.Get(ctx, "big:8m").Result(); err != nil || got != v8 {
		t.Errorf("GET 8 MB: %d bytes, %v", len(got), err)
	}
	var kv []any
	want := map[string]string{}
	for i := range 3 {
		for j, k := range e.keysOn(i, 3, "big:") {
			v := big(300<<10+j, byte(i*7+j))
			kv = append(kv, k, v)
			want[k] = v
		}
	}
	noErr(t, "MSET of 9 values of 300 KB", c.MSet(ctx, kv...).Err())
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	noErr(t, "MGET", err)
	for i, k := range keys {
		if vals[i] != want[k] {
			t.Errorf("MGET %s: %d bytes, want %d", k, len(fmt.Sprint(vals[i])), len(want[k]))
		}
	}
	p := c.Pipeline()
	var cmds []*redis.StringCmd
	for range 4 {
		for _, k := range keys {
			cmds = append(cmds, p.Get(ctx, k))
		}
	}
	_, err = p.Exec(ctx)
	noErr(t, "pipeline", err)
	for i, cmd := range cmds {
		if cmd.Val() != want[keys[i%len(keys)]] {
			t.Fatalf("pipelined GET %d of a large value: %d bytes", i, len(cmd.Val()))
		}
	}
	if v, _ := e.direct[e.owner("big:8m")].StrLen(ctx, "big:8m").Result(); v != 8<<20 {
		t.Errorf("node holds %d bytes of big:8m", v)
	}
}

// A few request failures far apart, with many successful requests in
// between, are not "consecutive failures": the node stays up. (The health
// map counts consecutive failures; a success resets the count.)
func TestRedisSporadicFailuresKeepNodeUp(t *testing.T) {
	nodes := harness.RedisNodes(t, 3, "--enable-debug-command", "yes")
	// probes far apart, so that only the traffic reports count
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_REQUEST_TIMEOUT": "200ms", "HEALTH_CHECK_INTERVAL": "30s"}})
	ctx := ctxT(t, time.Minute)
	c := e.client(2, func(o *redis.Options) { o.ReadTimeout = 5 * time.Second })
	k := e.keyOn(1, "sporadic")
	noErr(t, "SET", c.Set(ctx, k, "v", 0).Err())
rounds:
	for round := range e.cfg.Health.FailThreshold {
		// one slow moment of the node: one request times out
		done := make(chan error, 1)
		go func() { done <- e.direct[1].Do(ctx, "DEBUG", "SLEEP", "0.4").Err() }()
		time.Sleep(50 * time.Millisecond)
		wantErr(t, fmt.Sprintf("round %d: GET during the node's pause", round), c.Get(ctx, k).Err(), "timed out")
		noErr(t, "DEBUG SLEEP", <-done)
		// then the node answers hundreds of requests
		for i := range 300 {
			if v, err := c.Get(ctx, k).Result(); err != nil || v != "v" {
				t.Errorf("round %d: GET %d after the pause: %q, %v", round, i, v, err)
				break rounds
			}
		}
	}
	// the node's answers are counted (/nodes and the balancing policies
	// read these counters); the failures are too
	if v := e.metric(`ambassador_cluster_node_requests_total{cluster="redis",node="` + e.addrs[1] + `"}`); v < 300 {
		t.Errorf("ambassador_cluster_node_requests_total of the node = %v after %d answered requests", v, 300*e.cfg.Health.FailThreshold)
	}
	if v := e.metric(`ambassador_cluster_node_failures_total{cluster="redis",node="` + e.addrs[1] + `"}`); v < 1 {
		t.Errorf("ambassador_cluster_node_failures_total of the node = %v after timeouts", v)
	}
	if st := e.nodeStates()[e.addrs[1]]; st.State != "up" {
		t.Errorf("node is %s after %d isolated timeouts among %d successful requests; want up", st.State, e.cfg.Health.FailThreshold, 300*e.cfg.Health.FailThreshold)
	}
	if v, err := c.Get(ctx, k).Result(); err != nil || v != "v" {
		t.Errorf("GET after isolated timeouts: %q, %v", v, err)
	}
}

// TestRedisIdleTimeout: IDLE_TIMEOUT closes a client that sends nothing
// for that long after its last reply, as Redis' own timeout does; a client
// blocked in a blocking command and a subscriber are not idle, and a
// blocking command that outlives the timeout costs no CPU while it blocks.
func TestRedisIdleTimeout(t *testing.T) {
	const idle = time.Second
	e := newRedisEnv(t, harness.RedisNodes(t, 1), envOpts{env: map[string]string{"IDLE_TIMEOUT": idle.String()}})
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	// do sends one command and returns the first line of its reply
	do := func(c net.Conn, br *bufio.Reader, args ...string) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		cmd := fmt.Sprintf("*%d\r\n", len(args))
		for _, a := range args {
			cmd += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write([]byte(cmd)); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	closedAfter := func(c net.Conn, br *bufio.Reader) time.Duration {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * idle))
		start := time.Now()
		if l, err := br.ReadString('\n'); err == nil {
			t.Fatalf("read %q from an idle client", l)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("an idle client was not closed in %v", 5*idle)
		}
		return time.Since(start)
	}
	idleClosed := func() float64 {
		return metricValue(t, e.srv, "ambassador_frontend_connections_closed_total", map[string]string{"frontend": "redis", "reason": "idle_timeout"})
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}

	// an idle client is closed after the timeout
	c, br := dial()
	if r := do(c, br, "PING"); r != "+PONG" {
		t.Fatalf("PING: %q", r)
	}
	before := idleClosed()
	if d := closedAfter(c, br); d < idle*8/10 || d > 3*idle {
		t.Errorf("idle client closed after %v, idle timeout %v", d, idle)
	}
	eventually(t, 2*time.Second, "idle_timeout counted", func() bool { return idleClosed() == before+1 })

	// a blocking command longer than the timeout: the client is not idle,
	// and the wait costs no CPU (it once spun on an expired deadline)
	c, br = dial()
	do(c, br, "PING")
	c0, start := cpu(), time.Now()
	if r := do(c, br, "BLPOP", "idle-nokey", "2.5"); r != "*-1" {
		t.Fatalf("BLPOP: %q", r)
	}
	if used, took := cpu()-c0, time.Since(start); took < 2*time.Second || used > 800*time.Millisecond {
		t.Errorf("BLPOP of 2.5 s took %v and %v of CPU in this process", took, used)
	}
	// a short one armed before the timeout would have struck: the
	// timeout counts from the reply, not from before the command
	time.Sleep(idle * 3 / 10)
	if r := do(c, br, "BLPOP", "idle-nokey", "0.5"); r != "*-1" {
		t.Fatalf("BLPOP: %q", r)
	}
	time.Sleep(idle / 2)
	if r := do(c, br, "PING"); r != "+PONG" {
		t.Fatalf("PING half a timeout after a blocking command: %q", r)
	}
	// and once really idle, the client is closed all the same
	if d := closedAfter(c, br); d < idle*8/10 || d > 3*idle {
		t.Errorf("idle client closed after %v, idle timeout %v", d, idle)
	}

	// a reply slower than the timeout: the client waits for it, is not
	// idle meanwhile, and the timeout counts from the reply
	c, br = dial()
	do(c, br, "PING")
	if err := e.direct[0].Do(context.Background(), "CLIENT", "PAUSE", "1500", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if r := do(c, br, "SET", "idle-slow", "v"); r != "+OK" {
		t.Fatalf("SET during CLIENT PAUSE: %q", r)
	}
	if took := time.Since(start); took < idle {
		t.Fatalf("SET answered after %v: the pause did not hold it past the idle timeout", took)
	}
	time.Sleep(idle / 2)
	if r := do(c, br, "PING"); r != "+PONG" {
		t.Fatalf("PING half a timeout after a slow reply: %q", r)
	}

	// a client that unsubscribed (as pools do on release) is no subscriber
	c, br = dial()
	if r := do(c, br, "UNSUBSCRIBE"); r != "*3" {
		t.Fatalf("UNSUBSCRIBE: %q", r)
	}
	for range 4 { // $11 unsubscribe $-1 :0
		_, _ = br.ReadString('\n')
	}
	if d := closedAfter(c, br); d < idle*8/10 || d > 3*idle {
		t.Errorf("idle unsubscribed client closed after %v, idle timeout %v", d, idle)
	}

	// a subscriber waits as long as it likes
	s, sbr := dial()
	if r := do(s, sbr, "SUBSCRIBE", "idle-ch"); r != "*3" {
		t.Fatalf("SUBSCRIBE: %q", r)
	}
	for range 5 { // $9 subscribe $7 idle-ch :1
		_, _ = sbr.ReadString('\n')
	}
	time.Sleep(idle * 3 / 2)
	p, pbr := dial()
	if r := do(p, pbr, "PUBLISH", "idle-ch", "hi"); r != ":1" {
		t.Fatalf("PUBLISH to a subscriber idle for %v: %q", idle*3/2, r)
	}
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := sbr.ReadString('\n'); err != nil || strings.TrimSpace(l) != "*3" {
		t.Fatalf("subscriber: %q %v", l, err)
	}
}

// TestRedisBlockedClientLeavesOrShutdown: a client blocked in BLPOP 0 that
// leaves is noticed (its command cancelled, its connection released) even
// when its command filled the read buffer; on shutdown a blocked client
// is answered and closed at once instead of holding the drain to its end.
func TestRedisBlockedClientLeavesOrShutdown(t *testing.T) {
	e := newRedisEnv(t, harness.RedisNodes(t, 1), envOpts{env: map[string]string{"SHUTDOWN_TIMEOUT": "20s"}})
	ctx := ctxT(t, time.Minute)
	active := func() float64 {
		return metricValue(t, e.srv, "ambassador_frontend_connections", map[string]string{"frontend": "redis"})
	}
	blpop := func(key string) []byte {
		return fmt.Appendf(nil, "*3\r\n$5\r\nBLPOP\r\n$%d\r\n%s\r\n$1\r\n0\r\n", len(key), key)
	}

	// a command exactly the size of the read buffer (4 KiB)
	key := "blocked-" + strings.Repeat("k", 4096-len(blpop(""))-3-len("blocked-")) // the length takes 4 digits, not 1
	if n := len(blpop(key)); n != 4096 {
		t.Fatalf("command of %d bytes, want 4096", n)
	}
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(blpop(key)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the BLPOP blocked at the node", func() bool {
		n, _ := e.direct[0].Do(ctx, "INFO", "clients").Text()
		return strings.Contains(n, "blocked_clients:1")
	})
	c.Close()
	eventually(t, 5*time.Second, "the departed client's connection released", func() bool { return active() == 0 })
	eventually(t, 5*time.Second, "its BLPOP cancelled at the node", func() bool {
		n, _ := e.direct[0].Do(ctx, "INFO", "clients").Text()
		return strings.Contains(n, "blocked_clients:0")
	})
	// so nothing pushed now is popped for nobody
	if err := e.direct[0].RPush(ctx, key, "kept").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n, err := e.direct[0].LLen(ctx, key).Result(); err != nil || n != 1 {
		t.Errorf("LLEN after the blocked client left: %d %v, want 1", n, err)
	}

	// shutdown with a client blocked
	c, err = net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(blpop("blocked-at-shutdown")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the BLPOP blocked at the node", func() bool {
		n, _ := e.direct[0].Do(ctx, "INFO", "clients").Text()
		return strings.Contains(n, "blocked_clients:1")
	})
	start := time.Now()
	e.stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a client blocked (SHUTDOWN_TIMEOUT 20s)", took)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "-") || !strings.Contains(line, "shutting down") {
		t.Errorf("blocked client at shutdown got %q, want an error reply", line)
	}
	closed := func(reason string) float64 {
		return metricValue(t, e.srv, "ambassador_frontend_connections_closed_total", map[string]string{"frontend": "redis", "reason": reason})
	}
	if closed("shutdown") < 1 || closed("write_error") != 0 {
		t.Errorf("closes: %v shutdown, %v write_error", closed("shutdown"), closed("write_error"))
	}
}

// TestRedisRequestTimeoutReload: a REDIS_REQUEST_TIMEOUT changed by a
// reload applies to the node connections already open.
func TestRedisRequestTimeoutReload(t *testing.T) {
	e := newRedisEnv(t, harness.RedisNodes(t, 1), envOpts{env: map[string]string{"REDIS_REQUEST_TIMEOUT": "10s"}})
	ctx := ctxT(t, time.Minute)
	cl := e.client(2)
	if err := cl.Set(ctx, "rt", "v", 0).Err(); err != nil { // the shared connection is open
		t.Fatal(err)
	}
	e.env["REDIS_REQUEST_TIMEOUT"] = "300ms"
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := e.direct[0].Do(ctx, "CLIENT", "PAUSE", "3000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer e.direct[0].Do(ctx, "CLIENT", "UNPAUSE")
	start := time.Now()
	err := cl.Set(ctx, "rt", "w", 0).Err()
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "timed out") || took > 2*time.Second {
		t.Errorf("SET to a paused node after the timeout was reloaded to 300ms: %v after %v, want a timeout within about 300ms", err, took)
	}
}

// runServer runs srv until the test ends (or the returned stop, which
// shuts it down as on SIGTERM and waits), once it has started.
func runServer(t testing.TB, srv *server.Server) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server.Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("server did not stop within 20s")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-srv.Started():
	case err := <-done:
		t.Fatalf("server.Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not started after 10s")
	}
	return stop
}

// TestRedisClusterNodeRefused: a Redis Cluster node listed as a ring
// backend would answer MOVED (or CLUSTERDOWN) for most keys, naming
// backends the client cannot use; the ambassador refuses it instead with
// an error that says why, on every command routed to it, and its health
// probe marks it down, while the standalone node keeps serving.
func TestRedisClusterNodeRefused(t *testing.T) {
	standalone, err := harness.StartRedisNode()
	if err != nil {
		t.Fatal(err)
	}
	clustered, err := harness.StartRedisNode("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	if err != nil {
		_ = standalone.Stop()
		t.Fatal(err)
	}
	nodes := []*harness.RedisNode{standalone, clustered}
	t.Cleanup(func() { _ = harness.CloseRedis(nodes) })
	e := newRedisEnv(t, nodes, envOpts{})
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		c := e.client(proto)
		good, bad := e.keyOn(0, "ok"), e.keyOn(1, "refused")
		if err := c.Set(ctx, good, "v", 0).Err(); err != nil {
			t.Fatalf("RESP%d SET on the standalone node: %v", proto, err)
		}
		err := c.Set(ctx, bad, "v", 0).Err()
		if err == nil || !strings.Contains(err.Error(), "Redis Cluster node") || !strings.Contains(err.Error(), clustered.Addr) {
			t.Fatalf("RESP%d SET of a key on the cluster node: %v, want an error naming the node as a Redis Cluster node", proto, err)
		}
		if strings.Contains(err.Error(), "MOVED") || strings.Contains(err.Error(), "CLUSTERDOWN") {
			t.Fatalf("RESP%d: the cluster node's own answer reached the client: %v", proto, err)
		}
		vals, err := c.MGet(ctx, good, bad).Result()
		if err == nil || !strings.Contains(err.Error(), "Redis Cluster node") {
			t.Fatalf("RESP%d MGET across both nodes: %v %v, want the refusal", proto, vals, err)
		}
		c.Close()
	}
	eventually(t, 5*time.Second, "the cluster node probed down with the reason", func() bool {
		st := e.nodeStates()[clustered.Addr]
		return st.State == "down" && strings.Contains(st.LastError, "Redis Cluster node")
	})
	if st := e.nodeStates()[standalone.Addr]; st.State != "up" {
		t.Fatalf("standalone node %s: %+v, want up", standalone.Addr, st)
	}
}

// TestRedisPubSubOrderAndTransactions: a SUBSCRIBE pipelined after a slow
// command is confirmed after that command's reply (the confirmation is
// written by the subscription's relay, not the batch), and a PUBLISH
// inside MULTI reaches the channel's subscribers (it runs on the
// channel's node, as a PUBLISH outside MULTI).
func TestRedisPubSubOrderAndTransactions(t *testing.T) {
	e := newRedisEnv(t, harness.RedisNodes(t, 3), envOpts{})
	ctx := ctxT(t, time.Minute)
	for _, proto := range []int{2, 3} {
		r := e.raw()
		if proto == 3 {
			r.do("HELLO", "3")
		}
		slow, ch := e.keyOn(0, "slow"), e.keyOn(1, "ch")
		// a script busy for a while on node 0, then SUBSCRIBE of a
		// channel of node 1, in one write
		r.send(mbulk("EVAL", "local n=0 for i=1,3000000 do n=n+1 end return n", "1", slow) + mbulk("SUBSCRIBE", ch))
		first, second := r.mustReply(), r.mustReply()
		if first != ":3000000\r\n" || !strings.Contains(second, "subscribe") {
			t.Errorf("RESP%d: EVAL then SUBSCRIBE in one write answered %q, then %q; want the EVAL's reply first", proto, first, second)
		}
	}

	ch := e.keyOn(0, "txch")
	sub := e.client(2)
	ps := sub.Subscribe(ctx, ch)
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r := e.raw()
	for i := range 3 { // any node would serve some by chance: several
		r.send(mbulk("MULTI") + mbulk("PUBLISH", ch, fmt.Sprint("m", i)) + mbulk("EXEC"))
		replies := []string{r.mustReply(), r.mustReply(), r.mustReply()}
		if replies[2] != "*1\r\n:1\r\n" {
			t.Errorf("MULTI, PUBLISH %s, EXEC: %q; want EXEC to say 1 receiver", ch, replies)
		}
		if msg, err := ps.ReceiveTimeout(ctx, 2*time.Second); err != nil {
			t.Errorf("message %d published inside MULTI did not reach the subscriber: %v %v", i, msg, err)
		}
	}
}

// TestRedisHalfClosedClient: a client that sends its commands and
// half-closes (shutdown(SHUT_WR), as `nc -N` does) gets its replies and
// then the end of the stream, and the ambassador holds nothing after:
// the FIN that arrives with the data must not be missed.
func TestRedisHalfClosedClient(t *testing.T) {
	e := newRedisEnv(t, harness.RedisNodes(t, 1), envOpts{})
	open := func() float64 {
		return metricValue(t, e.srv, "ambassador_frontend_connections", map[string]string{"frontend": "redis"})
	}
	for round := range 40 {
		c, err := net.Dial("tcp", e.addr)
		noErr(t, "dial", err)
		cmds := mbulk("SET", "hc", "v")
		if round%2 == 1 { // a pipeline, too
			cmds += mbulk("GET", "hc") + mbulk("PING")
		}
		_, err = c.Write([]byte(cmds))
		noErr(t, "write", err)
		noErr(t, "half-close", c.(*net.TCPConn).CloseWrite())
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		want := "+OK\r\n"
		if round%2 == 1 {
			want += "$1\r\nv\r\n+PONG\r\n"
		}
		if err != nil || string(got) != want {
			t.Fatalf("round %d: read %q then %v; want %q then the end of the stream", round, got, err, want)
		}
	}
	eventually(t, 5*time.Second, "no client connection left", func() bool { return open() == 0 })
}

// TestRedisProtocolSwitchAndPatternWhileDown: after HELLO or RESET change
// the protocol, blocking commands and subscriptions answer in the new one
// (the client's own node connections of the old one are not reused); and
// PSUBSCRIBE while a node is down is confirmed by the nodes that are up
// (the pattern reaches the node once it is back: see
// TestRedisSubscriptionsFollowTheRing).
func TestRedisProtocolSwitchAndPatternWhileDown(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	e := newRedisEnv(t, nodes, envOpts{})
	ctx := ctxT(t, time.Minute)
	k := e.keyOn(0, "blk")

	r := e.raw()
	r.do("HELLO", "3")
	if got := r.do("BLPOP", k, "0.1"); got != "_\r\n" {
		t.Errorf("RESP3 BLPOP timing out: %q, want a RESP3 null", got)
	}
	if got := r.do("RESET"); got != "+RESET\r\n" {
		t.Fatalf("RESET: %q", got)
	}
	if got := r.do("BLPOP", k, "0.1"); got != "*-1\r\n" {
		t.Errorf("BLPOP timing out after RESET: %q, want the RESP2 null array", got)
	}
	r.do("HELLO", "3")
	r.do("BLPOP", k, "0.1")
	r.do("HELLO", "2")
	if got := r.do("BLPOP", k, "0.1"); got != "*-1\r\n" {
		t.Errorf("BLPOP timing out after HELLO 3, BLPOP, HELLO 2: %q, want the RESP2 null array", got)
	}

	ch := e.keyOn(0, "rch")
	s := e.raw()
	s.send(mbulk("SUBSCRIBE", ch))
	s.mustReply()
	s.send(mbulk("UNSUBSCRIBE", ch))
	s.mustReply()
	if hello := s.do("HELLO", "3"); !strings.HasPrefix(hello, "%") {
		t.Fatalf("HELLO 3: %q", hello)
	}
	s.send(mbulk("SUBSCRIBE", ch))
	if conf := s.mustReply(); !strings.HasPrefix(conf, ">3\r\n") {
		t.Errorf("SUBSCRIBE confirmation after HELLO 3: %q, want a push", conf)
	}
	if n, err := e.client(2).Publish(ctx, ch, "m1").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH: %d %v", n, err)
	}
	if msg := s.mustReply(); !strings.HasPrefix(msg, ">3\r\n") {
		t.Errorf("message to a subscriber that switched to RESP3: %q, want a push", msg)
	}

	noErr(t, "stop", nodes[2].Stop())
	eventually(t, 10*time.Second, "node marked down", func() bool { return e.nodeStates()[e.addrs[2]].State == "down" })
	p := e.raw()
	p.send(mbulk("PSUBSCRIBE", "news.*"))
	if got := p.mustReply(); got != "*3\r\n"+bulk("psubscribe")+bulk("news.*")+":1\r\n" {
		t.Errorf("PSUBSCRIBE with a node down: %q, want its confirmation", got)
	}
}

// TestRedisSlowReaderStallsNoOne: a client that pipelines reads of a
// large value and does not read the replies must not hold the other
// clients of the same node: the node's shared reader never waits on one
// client's full socket. The slow client still gets every reply, in order,
// once it reads.
func TestRedisSlowReaderStallsNoOne(t *testing.T) {
	e := newRedisEnv(t, harness.RedisNodes(t, 1), envOpts{})
	ctx := ctxT(t, time.Minute)
	setup := e.client(2)
	value := strings.Repeat("x", 1<<20)
	noErr(t, "SET big", setup.Set(ctx, "big", value, 0).Err())
	noErr(t, "SET other", setup.Set(ctx, "other", "v", 0).Err())

	slow, err := net.Dial("tcp", e.addr)
	noErr(t, "dial", err)
	defer slow.Close()
	const gets = 30 // 30 MB of replies, far more than the sockets hold
	go func() { _, _ = slow.Write([]byte(strings.Repeat(mbulk("GET", "big"), gets))) }()
	time.Sleep(500 * time.Millisecond)

	worst := worstGet(t, ctx, e.client(2, func(o *redis.Options) { o.ReadTimeout = 30 * time.Second }), 20)
	// (the first GET may wait for the node's 30 MB of replies on the
	// shared connection ahead of it, not for the slow client to read;
	// held by the slow client, it would wait out the 10 s write timeout)
	if worst > 5*time.Second {
		t.Errorf("a client not reading its replies held another client of the same node: worst GET %v", worst)
	}

	// the slow client reads now: every reply, whole and in order
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	want := fmt.Sprintf("$%d\r\n%s\r\n", len(value), value)
	buf := make([]byte, len(want))
	for i := range gets {
		if _, err := io.ReadFull(slow, buf); err != nil || string(buf) != want {
			t.Fatalf("slow client's reply %d: %v (%d bytes, want the value)", i, err, len(buf))
		}
	}
}

// worstGet runs n GETs of "other", 20 ms apart, and returns the slowest.
func worstGet(t *testing.T, ctx context.Context, c *redis.Client, n int) time.Duration {
	t.Helper()
	var worst time.Duration
	for i := range n {
		start := time.Now()
		if err := c.Get(ctx, "other").Err(); err != nil {
			t.Fatalf("GET %d of another client: %v", i, err)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(20 * time.Millisecond)
	}
	return worst
}

// TestRedisSlowSubscriberStallsNoOne: a RESP3 subscriber that does not
// read its messages, and sends a command meanwhile, holds no other client
// of the node: the node's shared reader, with the command's reply, found
// the client's write lock held by the relay blocked on the full socket,
// and waited for it (the 10 s write timeout).
func TestRedisSlowSubscriberStallsNoOne(t *testing.T) {
	nodes := harness.RedisNodes(t, 1)
	e := newRedisEnv(t, nodes, envOpts{})
	ctx := ctxT(t, time.Minute)
	noErr(t, "SET other", e.client(2).Set(ctx, "other", "v", 0).Err())
	slow := e.raw()
	slow.do("HELLO", "3")
	slow.do("SUBSCRIBE", "big")
	pub := dialRaw(t, nodes[0].Addr)
	msg := strings.Repeat("x", 1<<20)
	for range 30 { // 30 MB of messages, far more than the sockets hold
		pub.do("PUBLISH", "big", msg)
	}
	time.Sleep(300 * time.Millisecond)
	slow.send(mbulk("GET", "other")) // its reply comes on the node's shared connection
	time.Sleep(100 * time.Millisecond)

	// a RESP3 client: RESP3 clients share the node connection the slow one uses
	worst := worstGet(t, ctx, e.client(3, func(o *redis.Options) { o.ReadTimeout = 30 * time.Second }), 10)
	if worst > 5*time.Second {
		t.Errorf("a subscriber not reading its messages held another client of the same node: worst GET %v", worst)
	}
	// the slow subscriber reads now: its messages, and the reply
	n, got := 0, false
	for !got {
		r, err := slow.reply(30 * time.Second)
		if err != nil {
			t.Fatalf("the slow subscriber, after %d messages: %v", n, err)
		}
		switch {
		case r == bulk("v"):
			got = true
		case strings.HasPrefix(r, ">3\r\n"):
			n++
		default:
			t.Fatalf("the slow subscriber got %.80q", r)
		}
	}
}

// TestRedisHelpAndSelectInMulti: OBJECT HELP (keyless, unlike the other
// OBJECT subcommands) is answered by a node, and SELECT 0 inside MULTI is
// queued and run as Redis does, while another database is refused there
// too.
func TestRedisHelpAndSelectInMulti(t *testing.T) {
	e := newRedisEnv(t, harness.RedisNodes(t, 2), envOpts{})
	r := e.raw()
	for _, sub := range [][]string{{"OBJECT", "HELP"}, {"XINFO", "HELP"}, {"XGROUP", "HELP"}} {
		if got := r.do(sub...); !strings.HasPrefix(got, "*") {
			t.Errorf("%s: %q, want the node's help array", strings.Join(sub, " "), got)
		}
	}
	k := e.keyOn(0, "sel")
	r.send(mbulk("MULTI") + mbulk("SELECT", "0") + mbulk("SET", k, "v") + mbulk("EXEC"))
	got := []string{r.mustReply(), r.mustReply(), r.mustReply(), r.mustReply()}
	if want := []string{"+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*2\r\n+OK\r\n+OK\r\n"}; !slices.Equal(got, want) {
		t.Errorf("MULTI, SELECT 0, SET, EXEC: %q, want %q", got, want)
	}
	r.send(mbulk("MULTI") + mbulk("SELECT", "1") + mbulk("EXEC"))
	got = []string{r.mustReply(), r.mustReply(), r.mustReply()}
	if !strings.HasPrefix(got[1], "-ERR") || !strings.HasPrefix(got[2], "-EXECABORT") {
		t.Errorf("MULTI, SELECT 1, EXEC: %q, want the SELECT refused and EXECABORT", got)
	}
}

// dialRaw is a rawConn straight to a node.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	noErr(t, "dial "+addr, err)
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, c: conn}
}

// sameReplies sends each command to a reference redis-server and to the
// ambassador and wants the same bytes back.
func sameReplies(t *testing.T, tag string, ref, amb *rawConn, cmds ...[]string) {
	t.Helper()
	for _, q := range cmds {
		if r, a := ref.do(q...), amb.do(q...); r != a {
			t.Errorf("%s %q:\nredis      %q\nambassador %q", tag, q, r, a)
		}
	}
}

// arrayStrings reads a RESP array of bulk strings, sorted.
func arrayStrings(t *testing.T, reply string) []string {
	t.Helper()
	if !strings.HasPrefix(reply, "*") {
		t.Fatalf("not an array: %q", reply)
	}
	lines := strings.Split(strings.TrimSuffix(reply, "\r\n"), "\r\n")
	var out []string
	for i := 1; i+1 < len(lines); i += 2 {
		out = append(out, lines[i+1])
	}
	slices.Sort(out)
	return out
}

// TestRedisMatchesRedisReplies: replies that must be byte for byte those
// of a redis-server 7.0 (one node behind the ambassador, a separate
// reference node): PFMERGE with no source, EVALSHA/FCALL with a bad
// numkeys, SELECT and HELLO integers, SCAN "", COMMAND GETKEYS, COMMAND
// INFO of subcommands, COMMAND LIST FILTERBY, SORT patterns with one node.
func TestRedisMatchesRedisReplies(t *testing.T) {
	nodes := harness.RedisNodes(t, 2)
	e := newRedisEnv(t, nodes[:1], envOpts{})
	for _, proto := range []string{"2", "3"} {
		ref, amb := dialRaw(t, nodes[1].Addr), e.raw()
		for _, c := range []*rawConn{ref, amb} {
			c.do("FLUSHALL")
			c.do("HELLO", proto)
			c.do("RPUSH", "sl", "3", "1", "2")
			c.do("MSET", "weight_1", "30", "weight_2", "10", "weight_3", "20", "obj_1", "o1", "obj_2", "o2", "obj_3", "o3")
		}
		sameReplies(t, "RESP"+proto, ref, amb,
			[]string{"PFMERGE", "hll_dest"}, []string{"PFMERGE", "hll_dest", "hll_dest"}, []string{"TYPE", "hll_dest"},
			[]string{"EVALSHA", "abc", "x"}, []string{"EVALSHA_RO", "abc", "5", "k"}, []string{"EVALSHA", strings.Repeat("0", 40), "x"},
			[]string{"FCALL", "nosuch", "x"}, []string{"FCALL_RO", "nosuch", "-1"}, []string{"FCALL", "nosuch", "9", "k"},
			[]string{"SELECT", "00"}, []string{"SELECT", "+0"}, []string{"SELECT", "-0"}, []string{"SELECT", " 0"},
			[]string{"SELECT", "9999999999"}, []string{"SELECT", "0"},
			[]string{"SCAN", "", "MATCH", "hll_*"}, []string{"SCAN", "+"}, []string{"SCAN", " 0"},
			[]string{"COMMAND", "GETKEYS", "EVAL", "return 1", "0"}, []string{"COMMAND", "GETKEYS", "EVAL", "return 1", "01", "k"},
			[]string{"COMMAND", "GETKEYS", "EVAL", "return 1", "5", "k"}, []string{"COMMAND", "GETKEYS", "FCALL", "f", "0"},
			[]string{"COMMAND", "GETKEYS", "PUBLISH", "c", "m"}, []string{"COMMAND", "GETKEYS", "PUBLISH", "c"},
			[]string{"COMMAND", "GETKEYS", "PING", "x"}, []string{"COMMAND", "GETKEYS", "CONFIG", "GET", "x"},
			[]string{"COMMAND", "GETKEYS", "CONFIG", "FOO"}, []string{"COMMAND", "GETKEYS", "NOSUCH", "a"},
			[]string{"COMMAND", "GETKEYS", "GET", "a", "b"}, []string{"COMMAND", "GETKEYS", "PFMERGE", "d"},
			[]string{"COMMAND", "GETKEYS", "LMPOP", "2", "l", "LEFT"}, []string{"COMMAND", "GETKEYS", "MIGRATE", "h", "p", "", "0", "0"},
			[]string{"COMMAND", "GETKEYS", "ZUNION", "0", "a"}, []string{"COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "01", "a"},
			[]string{"COMMAND", "INFO", "config|get", "CONFIG|GET", "config|nosuch", "get|x", "config|get|x", "|get", "config|", "get"},
			[]string{"COMMAND", "LIST", "FOO"}, []string{"COMMAND", "LIST", "FILTERBY", "FOO", "x"},
			[]string{"COMMAND", "LIST", "FILTERBY", "PATTERN"}, []string{"COMMAND", "LIST", "FILTERBY", "PATTERN", "a", "b"},
			[]string{"COMMAND", "LIST", "FILTERBY", "MODULE", "x"}, []string{"COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"},
			[]string{"COMMAND", "LIST", "FILTERBY", "ACLCAT", "@read"}, []string{"COMMAND", "LIST", "FILTERBY", "PATTERN", "nosuch*"},
			// one node: SORT patterns pass through
			[]string{"SORT", "sl", "BY", "weight_*", "GET", "obj_*", "GET", "#"}, []string{"SORT_RO", "sl", "BY", "weight_*"},
			[]string{"SORT", "sl", "BY", "weight_*", "GET", "obj_*", "STORE", "sl_out"}, []string{"LRANGE", "sl_out", "0", "-1"},
		)
		if got := amb.do("HELLO", "03"); got != ref.do("HELLO", "03") {
			t.Errorf("HELLO 03: %q", got)
		}
	}

	// COMMAND LIST FILTERBY: what the server lists, of what the
	// ambassador runs (its order aside).
	ref, amb := dialRaw(t, nodes[1].Addr), e.raw()
	all := arrayStrings(t, amb.do("COMMAND", "LIST"))
	if !slices.Contains(all, "config|get") || slices.Contains(all, "config|rewrite") || slices.Contains(all, "monitor") {
		t.Errorf("COMMAND LIST: subcommands the ambassador runs, not the others: %q", all)
	}
	for _, f := range [][]string{{"PATTERN", "xa*"}, {"PATTERN", "CONFIG|*"}, {"pattern", "*|get"}, {"PATTERN", "[a-c]?[^x]*"},
		{"ACLCAT", "hyperloglog"}, {"aclcat", "READ"}, {"ACLCAT", "pubsub"}, {"ACLCAT", "scripting"}} {
		q := append([]string{"COMMAND", "LIST", "FILTERBY"}, f...)
		var want []string
		for _, n := range arrayStrings(t, ref.do(q...)) {
			if slices.Contains(all, n) {
				want = append(want, n)
			}
		}
		if got := arrayStrings(t, amb.do(q...)); !slices.Equal(got, want) || len(got) == 0 {
			t.Errorf("%q: %q, want %q", q, got, want)
		}
	}
}

// TestRedisSortPatternsAcrossNodes: with several nodes, SORT's BY and GET
// patterns would be looked up on the sorted key's node while their keys
// live elsewhere: refused, unless a hash tag keeps them on that node.
func TestRedisSortPatternsAcrossNodes(t *testing.T) {
	nodes := harness.RedisNodes(t, 4)
	e := newRedisEnv(t, nodes[:3], envOpts{})
	ref, amb := dialRaw(t, nodes[3].Addr), e.raw()
	tag := e.keyOn(0, "t")                              // keys "{tag}..." are on node 0
	other := e.keyOn(1, "t")                            // and "{other}..." on node 1
	sl := e.keyOn(2, "sl")                              // a list on node 2
	tl := "{" + tag + "}sl"                             // a list on node 0
	w1, o1 := e.keyOn(0, "weight_"), e.keyOn(1, "obj_") // pattern keys on other nodes than sl
	for _, c := range []*rawConn{ref, amb} {
		c.do("RPUSH", sl, "3", "1", "2")
		c.do("RPUSH", tl, "3", "1", "2")
		c.do("SET", w1, "1")
		c.do("SET", o1, "1")
		for i, w := range []string{"30", "10", "20"} {
			n := strconv.Itoa(i + 1)
			c.do("SET", "weight_"+n, w)
			c.do("SET", "obj_"+n, "o"+n)
			c.do("SET", "{"+tag+"}w_"+n, w)
			c.do("SET", "{"+tag+"}o_"+n, "o"+n)
			c.do("HSET", "{"+tag+"}h_"+n, "f", w)
		}
	}
	for _, q := range [][]string{
		{"SORT", sl, "BY", "weight_*"}, {"SORT_RO", sl, "BY", "weight_*"}, {"SORT", sl, "ALPHA", "BY", "weight_*->f"},
		{"SORT", tl, "BY", "{" + other + "}w_*"}, {"SORT", tl, "BY", "w_*_{" + tag + "}"}, {"SORT", tl, "BY", "{" + tag + "*}w_*"},
		{"SORT", sl, "BY", "{}w_*"},
	} {
		if got := amb.do(q...); !strings.HasPrefix(got, "-ERR BY option of SORT denied by the ambassador") {
			t.Errorf("%q: %q, want the BY option refused", q, got)
		}
	}
	for _, q := range [][]string{
		{"SORT", sl, "GET", "obj_*"}, {"SORT", sl, "BY", "nosort", "GET", "#", "GET", "obj_*"}, {"SORT_RO", sl, "GET", "obj_*->f"},
		{"SORT", tl, "GET", "{" + other + "}o_*"}, {"SORT", sl, "GET", "obj_*", "STORE", e.keyOn(2, "dst")},
	} {
		if got := amb.do(q...); !strings.HasPrefix(got, "-ERR GET option of SORT denied by the ambassador") {
			t.Errorf("%q: %q, want the GET option refused", q, got)
		}
	}
	// what names no other key runs, as do patterns tagged to the sorted
	// key's node; errors met before the pattern are the node's
	sameReplies(t, "3 nodes", ref, amb,
		[]string{"SORT", sl}, []string{"SORT", sl, "BY", "nosort"}, []string{"SORT", sl, "BY", "weight"}, []string{"SORT", sl, "GET", "#"},
		[]string{"SORT", sl, "GET", "obj"}, []string{"SORT", sl, "DESC", "LIMIT", "0", "2", "GET", "#", "BY", "nosort"},
		[]string{"SORT", tl, "BY", "{" + tag + "}w_*", "GET", "{" + tag + "}o_*", "GET", "#"},
		[]string{"SORT_RO", tl, "BY", "{" + tag + "}h_*->f", "GET", "{" + tag + "}h_*->f"},
		[]string{"SORT", tl, "BY", "{" + tag + "}w_*", "GET", "{" + tag + "}o_*", "STORE", "{" + tag + "}out"},
		[]string{"LRANGE", "{" + tag + "}out", "0", "-1"},
		[]string{"SORT", sl, "LIMIT", "x", "1", "BY", "weight_*"}, []string{"SORT", sl, "FOO", "BY", "weight_*"},
		[]string{"SORT_RO", sl, "STORE", "x", "BY", "weight_*"}, []string{"SORT", sl, "LIMIT", "0"},
	)
	// inside MULTI too: refused, and the transaction aborted
	amb.send(mbulk("MULTI") + mbulk("SORT", sl, "BY", "weight_*") + mbulk("EXEC"))
	got := []string{amb.mustReply(), amb.mustReply(), amb.mustReply()}
	if got[0] != "+OK\r\n" || !strings.HasPrefix(got[1], "-ERR BY option of SORT denied") || !strings.HasPrefix(got[2], "-EXECABORT") {
		t.Errorf("MULTI, SORT BY weight_*, EXEC: %q", got)
	}
	amb.send(mbulk("MULTI") + mbulk("SORT", tl, "BY", "{"+tag+"}w_*") + mbulk("EXEC"))
	got = []string{amb.mustReply(), amb.mustReply(), amb.mustReply()}
	if want := "*1\r\n*3\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n1\r\n"; got[1] != "+QUEUED\r\n" || got[2] != want {
		t.Errorf("MULTI, SORT tagged, EXEC: %q, want QUEUED and %q", got, want)
	}
}

// TestRedisNumkeysEdgesAcrossNodes: with several nodes, errors Redis
// answers before looking at keys are Redis's, not CROSSSLOT or a routing
// error: [B]LMPOP/[B]ZMPOP whose numkeys covers the direction word, and
// EVALSHA/FCALL with a bad numkeys; PFMERGE with no source runs on its
// destination's node.
func TestRedisNumkeysEdgesAcrossNodes(t *testing.T) {
	nodes := harness.RedisNodes(t, 4)
	e := newRedisEnv(t, nodes[:3], envOpts{})
	ref, amb := dialRaw(t, nodes[3].Addr), e.raw()
	var lst string // on another node than the words LEFT and MIN
	for i := 0; ; i++ {
		lst = "lst" + strconv.Itoa(i)
		if o := e.owner(lst); o != e.owner("LEFT") && o != e.owner("MIN") {
			break
		}
	}
	for _, c := range []*rawConn{ref, amb} {
		c.do("RPUSH", lst, "a")
	}
	sameReplies(t, "3 nodes", ref, amb,
		[]string{"LMPOP", "2", lst, "LEFT"}, []string{"LMPOP", "2", lst, "RIGHT", "COUNT"}, []string{"ZMPOP", "2", lst, "MIN"},
		[]string{"BLMPOP", "0.01", "2", lst, "LEFT"}, []string{"BZMPOP", "0.01", "2", lst, "MIN"}, []string{"LMPOP", "1", lst, "LEFT"},
		[]string{"BLMPOP", "0.01", "1", lst, "UP"}, []string{"ZMPOP", "1", lst, "LEFT"},
		[]string{"EVALSHA", "abc", "x"}, []string{"EVALSHA", "abc", "3", lst}, []string{"EVALSHA_RO", "abc", "-1"},
		[]string{"FCALL", "nosuch", "x"}, []string{"FCALL_RO", "nosuch", "2", lst},
	)
	for i := range 3 {
		d := e.keyOn(i, "hll")
		if got := amb.do("PFMERGE", d); got != "+OK\r\n" {
			t.Errorf("PFMERGE %s: %q", d, got)
		}
		e.expectOn(d, i)
	}
}

// TestRedisHugeArgumentCount: Redis 7 takes up to INT_MAX arguments;
// the ambassador does with redis.max_multibulk_len raised to it (its
// default is 1M). A declared count costs nothing ahead (the connection
// waits for the arguments, as Redis does), and a command of over 1M
// arguments runs.
func TestRedisHugeArgumentCount(t *testing.T) {
	nodes := harness.RedisNodes(t, 2)
	e := newRedisEnv(t, nodes[:1], envOpts{mutate: func(c *config.Config) { c.Redis.MaxMultibulkLen = 1<<31 - 1 }})
	ref, amb := dialRaw(t, nodes[1].Addr), e.raw()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	head := "*2147483647\r\n" + bulk("SADD") + bulk("s")
	ref.send(head)
	amb.send(head)
	for name, c := range map[string]*rawConn{"redis": ref, "ambassador": amb} {
		if closed, extra := c.closed(300 * time.Millisecond); closed || extra != "" {
			t.Errorf("%s after *2147483647 and 2 arguments: closed %v, sent %q; want it waiting", name, closed, extra)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 64<<20 {
		t.Errorf("the heap grew by %d MB for a declared count of 2147483647", grew>>20)
	}
	// Another client is served meanwhile.
	if got := e.raw().do("PING"); got != "+PONG\r\n" {
		t.Errorf("PING: %q", got)
	}

	ref, amb = dialRaw(t, nodes[1].Addr), e.raw()
	args := []string{"SADD", "hugeset"}
	for i := 0; len(args) < 1<<20+10; i++ {
		args = append(args, strconv.Itoa(i))
	}
	cmd := mbulk(args...) + mbulk("SCARD", "hugeset")
	ref.send(cmd)
	amb.send(cmd)
	for range 2 {
		r, err1 := ref.reply(30 * time.Second)
		a, err2 := amb.reply(30 * time.Second)
		if err1 != nil || err2 != nil || r != a {
			t.Errorf("%d arguments: redis %q (%v), ambassador %q (%v)", len(args), r, err1, a, err2)
		}
	}
}

// TestRedisUnauthenticatedLimits: with a frontend password, a client that
// has not authenticated is held to Redis 7's tighter limits (at most 10
// arguments of at most 16 KB), with Redis's own errors, so that it cannot
// make the ambassador hold much before AUTH; AUTH pipelined ahead of a
// large command lifts them for it, as in Redis. Compared with a
// redis-server that requires a password.
func TestRedisUnauthenticatedLimits(t *testing.T) {
	nodes := harness.RedisNodes(t, 1)
	ref := harness.RedisNodes(t, 1, "--requirepass", "s3cret")[0]
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_FRONTEND_PASSWORD": "s3cret"}})
	big := strings.Repeat("x", 20000)
	for _, tc := range []struct{ name, req, want string }{
		{"11 arguments", "*11\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"},
		{"a 20000-byte argument", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n", "-ERR Protocol error: unauthenticated bulk length\r\n"},
	} {
		for name, c := range map[string]*rawConn{"redis-server": dialRaw(t, ref.Addr), "ambassador": e.raw()} {
			c.send(tc.req)
			got, err := c.reply(3 * time.Second)
			if err != nil || got != tc.want {
				t.Errorf("%s, %s: %q, %v; want %q", name, tc.name, got, err, tc.want)
			}
			if closed, _ := c.closed(3 * time.Second); !closed {
				t.Errorf("%s, %s: connection still open", name, tc.name)
			}
		}
	}
	// ten arguments wait for the rest, as in Redis
	c := e.raw()
	c.send("*10\r\n")
	if closed, extra := c.closed(300 * time.Millisecond); closed || extra != "" {
		t.Errorf("*10 before AUTH: closed %v, got %q; want it waiting", closed, extra)
	}
	// AUTH pipelined ahead of a large command
	for name, c := range map[string]*rawConn{"redis-server": dialRaw(t, ref.Addr), "ambassador": e.raw()} {
		c.send(mbulk("AUTH", "s3cret") + mbulk("SET", "k", big) + mbulk("STRLEN", "k"))
		for i, want := range []string{"+OK\r\n", "+OK\r\n", ":20000\r\n"} {
			if got, err := c.reply(3 * time.Second); err != nil || got != want {
				t.Errorf("%s: reply %d to AUTH, SET of 20000 bytes, STRLEN: %q, %v; want %q", name, i, got, err, want)
			}
		}
	}
}

// TestRedisWaitCountsTheClientsWrites: WAIT through the ambassador waits
// for the client's own writes to reach the replicas, as on one Redis: the
// writes went over shared node connections, and WAIT on a connection with
// no writes of its own answered at once with every replica (it answered 1
// with the only replica stopped). It waits on the nodes the client wrote
// to, not on the others (a node without replicas would make it 0).
func TestRedisWaitCountsTheClientsWrites(t *testing.T) {
	primary := harness.RedisNodes(t, 2) // node 0 gets a replica; node 1 has none
	replica := harness.RedisNodes(t, 1, "--replicaof", "127.0.0.1", strconv.Itoa(primary[0].Port))[0]
	eventually(t, 10*time.Second, "the replica in sync", func() bool {
		out, err := primary[0].Do("INFO", "replication")
		return err == nil && strings.Contains(out, "connected_slaves:1") && strings.Contains(out, "state=online")
	})
	e := newRedisEnv(t, primary, envOpts{})
	r := e.raw()
	k := e.keyOn(0, "wait:")
	if got := r.do("SET", k, "1"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if got := r.do("WAIT", "1", "2000"); got != ":1\r\n" {
		t.Errorf("WAIT 1 2000 after a write to the node with a replica: %q, want :1", got)
	}

	noErr(t, "stop the replica", syscall.Kill(replica.Pid(), syscall.SIGSTOP))
	defer syscall.Kill(replica.Pid(), syscall.SIGCONT)
	if got := r.do("SET", k, "2"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	began := time.Now()
	got := r.do("WAIT", "1", "700")
	took := time.Since(began)
	if got != ":0\r\n" || took < 600*time.Millisecond {
		t.Errorf("WAIT 1 700 after a write, with the only replica stopped: %q after %v; want :0 after the timeout (as Redis)", got, took)
	}
	// directly, for comparison
	d := dialRaw(t, primary[0].Addr)
	d.do("SET", k, "3")
	if got := d.do("WAIT", "1", "300"); got != ":0\r\n" {
		t.Errorf("redis-server itself: WAIT 1 300 with the replica stopped: %q", got)
	}
	noErr(t, "resume the replica", syscall.Kill(replica.Pid(), syscall.SIGCONT))
	// no write since the last WAIT: it still waits for the earlier ones
	// (as Redis), on the node written to, not on node 1
	r.send(mbulk("WAIT", "1", "5000"))
	if got, err := r.reply(10 * time.Second); got != ":1\r\n" {
		t.Errorf("WAIT 1 5000 once the replica is back: %q, %v", got, err)
	}
	// a client that wrote nothing: every node's replicas, as from a
	// Redis connection without writes (node 1 has none)
	if got := e.raw().do("WAIT", "0", "100"); got != ":0\r\n" {
		t.Errorf("WAIT 0 100 of a client without writes: %q", got)
	}
}

// TestRedisRemovedNodeClosesClientConnections: a node removed by a reload
// closes the connections clients hold to it too (blocking/WAIT
// connections, subscription connections), not only the shared ones: a
// long-lived client kept one per removal, forever. Subscribers stay
// connected: one with a subscription on the removed node has it moved to
// the channel's new node (TestRedisSubscriptionsFollowTheRing).
func TestRedisRemovedNodeClosesClientConnections(t *testing.T) {
	nodes := harness.RedisNodes(t, 4)
	all := harness.RedisAddrs(nodes)
	e := newRedisEnv(t, nodes[:3], envOpts{env: map[string]string{"REDIS_REQUEST_TIMEOUT": "1s"}})
	clients := func() int {
		out, err := nodes[3].Do("INFO", "clients")
		noErr(t, "INFO clients of node 3", err)
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "connected_clients:"); ok {
				n, _ := strconv.Atoi(v)
				return n - 1 // not the INFO connection itself
			}
		}
		t.Fatalf("INFO clients: %q", out)
		return 0
	}
	reload := func(n int) {
		e.env["REDIS_CLUSTER_NODES"] = strings.Join(all[:n], ",")
		noErr(t, "reload", e.srv.Reload())
	}
	waiter := e.raw() // WAIT goes to every node on the client's own connections
	sub := e.raw()    // subscribes, then unsubscribes, through node 3
	e.ring = nil      // (the 3-node ring of the env does not place node 3's channels)
	var ch string
	for i := 0; ; i++ {
		reload(4)
		ch = "rm-ch" + strconv.Itoa(i)
		sub.send(mbulk("SUBSCRIBE", ch))
		sub.mustReply()
		sub.send(mbulk("UNSUBSCRIBE", ch))
		sub.mustReply()
		if got := waiter.do("WAIT", "0", "0"); got != ":0\r\n" {
			t.Fatalf("WAIT: %q", got)
		}
		reload(3)
		if i == 4 {
			break
		}
	}
	eventually(t, 3*time.Second, "the removed node's connections closed", func() bool { return clients() == 0 })
	if got := waiter.do("PING"); got != "+PONG\r\n" {
		t.Errorf("the WAIT client after the removals: %q", got)
	}
	if got := sub.do("PING"); got != "+PONG\r\n" {
		t.Errorf("the subscriber without subscriptions on the removed node: %q", got)
	}
	// a subscriber with a subscription on the removed node stays, its
	// subscription moved to the channel's new node
	reload(4)
	live := e.raw()
	var onNode3 string
	for i := 0; onNode3 == ""; i++ {
		if i == 200 {
			t.Fatal("no channel of 200 placed on node 3")
		}
		c := "rm-live" + strconv.Itoa(i)
		live.send(mbulk("SUBSCRIBE", c))
		live.mustReply()
		if n, _ := nodes[3].Do("PUBSUB", "NUMSUB", c); strings.Contains(n, c+"\n1") {
			onNode3 = c
		}
	}
	reload(3)
	pub := e.raw()
	eventually(t, 3*time.Second, "PUBLISH of the removed node's channel reaching its subscriber", func() bool {
		return pub.do("PUBLISH", onNode3, "moved") == ":1\r\n"
	})
	if got := live.mustReply(); got != mbulk("message", onNode3, "moved") {
		t.Errorf("the subscriber of the removed node's channel got %q", got)
	}
	eventually(t, 3*time.Second, "the removed node's connections closed", func() bool { return clients() == 0 })
}

// TestRedisSubscriptionsFollowTheRing: when the ring changes under a
// subscriber (a node added or removed by a reload; with auto-eject, a node
// coming back), its channels move to the node that now owns them, where
// PUBLISH goes, and its patterns cover every node, new ones included. The
// client sees nothing of it: no confirmation, no dropped connection, and
// every message published after the move (RESP2 and RESP3). A PSUBSCRIBE
// while a node is down is confirmed by the others and reaches that node
// when it is back.
func TestRedisSubscriptionsFollowTheRing(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	all := harness.RedisAddrs(nodes)
	e := newRedisEnv(t, nodes[:2], envOpts{})
	e.ring = nil // the env's 2-node ring does not place node 2's channels
	reload := func(n int) {
		e.env["REDIS_CLUSTER_NODES"] = strings.Join(all[:n], ",")
		noErr(t, "reload", e.srv.Reload())
	}
	numsub := func(node int, ch string) string {
		out, err := nodes[node].Do("PUBSUB", "NUMSUB", ch)
		noErr(t, "PUBSUB NUMSUB", err)
		return out
	}
	var channels []string
	for i := range 40 {
		channels = append(channels, "follow-"+strconv.Itoa(i))
	}
	subs := map[int]*rawConn{}
	for _, proto := range []int{2, 3} {
		r := e.raw()
		if proto == 3 {
			r.do("HELLO", "3")
		}
		r.send(mbulk(append([]string{"SUBSCRIBE"}, channels...)...) + mbulk("PSUBSCRIBE", "follow-p:*"))
		for range len(channels) + 1 {
			r.mustReply()
		}
		subs[proto] = r
	}
	pub := e.raw()
	// every message reaches both subscribers, and nothing else does
	check := func(when string) {
		t.Helper()
		for i, ch := range channels {
			msg := "m" + strconv.Itoa(i)
			if got := pub.do("PUBLISH", ch, msg); got != ":2\r\n" {
				t.Errorf("%s: PUBLISH %s reached %q subscribers, want 2", when, ch, got)
				continue
			}
			for proto, r := range subs {
				want := mbulk("message", ch, msg)
				if proto == 3 {
					want = ">" + want[1:]
				}
				if got := r.mustReply(); got != want {
					t.Fatalf("%s: RESP%d subscriber got %q, want %q", when, proto, got, want)
				}
			}
		}
		// a pattern message published on each node
		for i := range 40 {
			ch := "follow-p:" + strconv.Itoa(i)
			if got := pub.do("PUBLISH", ch, "p"); got != ":2\r\n" {
				t.Errorf("%s: PUBLISH %s (pattern) reached %q subscribers, want 2", when, ch, got)
				continue
			}
			for proto, r := range subs {
				want := "*4\r\n" + bulk("pmessage") + bulk("follow-p:*") + bulk(ch) + bulk("p")
				if proto == 3 {
					want = ">" + want[1:]
				}
				if got := r.mustReply(); got != want {
					t.Fatalf("%s: RESP%d pattern subscriber got %q, want %q", when, proto, got, want)
				}
			}
		}
	}
	check("2 nodes")

	reload(3)
	eventually(t, 3*time.Second, "the pattern subscribed on the added node", func() bool {
		out, err := nodes[2].Do("CLIENT", "LIST")
		return err == nil && strings.Count(out, " psub=1 ") == 2
	})
	// each channel subscribed (by both clients) on exactly one node: the
	// old one let go of those that moved
	moved := 0
	eventually(t, 3*time.Second, "each channel subscribed on one node only", func() bool {
		moved = 0
		for _, ch := range channels {
			on := 0
			for i := range 3 {
				if !strings.Contains(numsub(i, ch), ch+"\n0") {
					on++
					if i == 2 {
						moved++
					}
				}
			}
			if on != 1 {
				return false
			}
		}
		return true
	})
	if moved == 0 {
		t.Fatal("no channel of 40 moved to the added node")
	}
	check("a node added")
	reload(2)
	eventually(t, 3*time.Second, "the removed node's channels subscribed on their new nodes", func() bool {
		for _, ch := range channels {
			if !strings.Contains(numsub(0, ch), ch+"\n2") && !strings.Contains(numsub(1, ch), ch+"\n2") {
				return false
			}
		}
		return true
	})
	check("the node removed again")
	for proto, r := range subs {
		if got := r.do("PING"); !strings.Contains(strings.ToLower(got), "pong") {
			t.Errorf("RESP%d subscriber after the changes: PING %q", proto, got)
		}
	}

	// auto-eject: a channel subscribed while its node was down lives on
	// another node; when the node is back, PUBLISH goes there again, and
	// so does the subscription
	ejNodes := harness.RedisNodes(t, 3)
	ej := newRedisEnv(t, ejNodes, envOpts{env: map[string]string{"REDIS_AUTO_EJECT": "true", "REDIS_REQUEST_TIMEOUT": "2s"}})
	ch := ej.keyOn(2, "ej-ch")
	noErr(t, "kill", ejNodes[2].Kill())
	eventually(t, 5*time.Second, "the killed node down", func() bool { return ej.nodeStates()[ej.addrs[2]].State == "down" })
	sub := ej.raw()
	if got := sub.do("SUBSCRIBE", ch); !strings.Contains(got, "subscribe") {
		t.Fatalf("SUBSCRIBE with the channel's node down: %q", got)
	}
	epub := ej.raw()
	if got := epub.do("PUBLISH", ch, "while-down"); got != ":1\r\n" {
		t.Errorf("PUBLISH with the channel's node ejected reached %q subscribers", got)
	}
	if got := sub.mustReply(); got != mbulk("message", ch, "while-down") {
		t.Errorf("the subscriber got %q", got)
	}
	noErr(t, "restart", ejNodes[2].Restart())
	eventually(t, 5*time.Second, "the restarted node up", func() bool { return ej.nodeStates()[ej.addrs[2]].State == "up" })
	eventually(t, 3*time.Second, "the subscription on the node that is back", func() bool {
		out, err := ejNodes[2].Do("PUBSUB", "NUMSUB", ch)
		return err == nil && strings.Contains(out, ch+"\n1")
	})
	if got := epub.do("PUBLISH", ch, "back"); got != ":1\r\n" {
		t.Errorf("PUBLISH with the channel's node back reached %q subscribers", got)
	}
	if got := sub.mustReply(); got != mbulk("message", ch, "back") {
		t.Errorf("the subscriber got %q", got)
	}

	// PSUBSCRIBE while a node is down (no auto-eject): confirmed with the
	// nodes that are up; the pattern reaches the node once it is back
	pdNodes := harness.RedisNodes(t, 2)
	pd := newRedisEnv(t, pdNodes, envOpts{env: map[string]string{"REDIS_REQUEST_TIMEOUT": "2s"}})
	noErr(t, "kill", pdNodes[1].Kill())
	eventually(t, 5*time.Second, "the killed node down", func() bool { return pd.nodeStates()[pd.addrs[1]].State == "down" })
	psub := pd.raw()
	if got := psub.do("PSUBSCRIBE", "pd:*"); got != "*3\r\n"+bulk("psubscribe")+bulk("pd:*")+":1\r\n" {
		t.Fatalf("PSUBSCRIBE with a node down: %q", got)
	}
	ppub := pd.raw()
	up0, on1 := pd.keyOn(0, "pd:"), pd.keyOn(1, "pd:")
	if got := ppub.do("PUBLISH", up0, "x"); got != ":1\r\n" {
		t.Errorf("PUBLISH on the node that is up reached %q pattern subscribers", got)
	}
	if got := psub.mustReply(); got != "*4\r\n"+bulk("pmessage")+bulk("pd:*")+bulk(up0)+bulk("x") {
		t.Errorf("the pattern subscriber got %q", got)
	}
	// SUBSCRIBE of channels of both nodes (a client subscribing them all
	// again, as ioredis does after a node failed): both confirmed; the up
	// node's works at once, the down node's once it is back
	csub := pd.raw()
	chUp, chDown := pd.keyOn(0, "pdc:"), pd.keyOn(1, "pdc:")
	csub.send(mbulk("SUBSCRIBE", chUp, chDown))
	confirmed := map[string]bool{}
	for i := range 2 {
		got := csub.mustReply()
		for _, ch := range []string{chUp, chDown} {
			if got == "*3\r\n"+bulk("subscribe")+bulk(ch)+":"+strconv.Itoa(i+1)+"\r\n" {
				confirmed[ch] = true
			}
		}
		if len(confirmed) != i+1 {
			t.Errorf("SUBSCRIBE with one channel's node down: confirmation %d %q (counts must rise 1, 2)", i, got)
		}
	}
	if got := ppub.do("PUBLISH", chUp, "now"); got != ":1\r\n" {
		t.Errorf("PUBLISH on the up node's channel reached %q", got)
	}
	if got := csub.mustReply(); got != mbulk("message", chUp, "now") {
		t.Errorf("the subscriber got %q", got)
	}
	noErr(t, "restart", pdNodes[1].Restart())
	eventually(t, 5*time.Second, "the pattern subscribed on the node that is back", func() bool {
		out, err := pdNodes[1].Do("PUBSUB", "NUMPAT")
		return err == nil && out == "1"
	})
	if got := ppub.do("PUBLISH", on1, "y"); got != ":1\r\n" {
		t.Errorf("PUBLISH on the node that is back reached %q pattern subscribers", got)
	}
	if got := psub.mustReply(); got != "*4\r\n"+bulk("pmessage")+bulk("pd:*")+bulk(on1)+bulk("y") {
		t.Errorf("the pattern subscriber got %q", got)
	}
	eventually(t, 5*time.Second, "the down node's channel subscribed once it is back", func() bool {
		return ppub.do("PUBLISH", chDown, "later") == ":1\r\n"
	})
	if got := csub.mustReply(); got != mbulk("message", chDown, "later") {
		t.Errorf("the subscriber got %q", got)
	}
}

// TestRedisConfigSecrets: the nodes' password never reaches a client
// (CONFIG GET leaves it out, RESP2 and RESP3), and CONFIG SET of the
// nodes' credentials, addresses and files is refused (a client set
// requirepass on every node and took the ambassador's nodes down); other
// settings (notify-keyspace-events...) are set on every node.
func TestRedisConfigSecrets(t *testing.T) {
	nodes := harness.RedisNodes(t, 2, "--requirepass", "backpw")
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_PASSWORD": "backpw"}})
	for _, proto := range []int{2, 3} {
		r := e.raw()
		if proto == 3 {
			r.do("HELLO", "3")
		}
		for _, pat := range []string{"*pass*", "requirepass", "*"} {
			got := r.do("CONFIG", "GET", pat)
			if strings.Contains(got, "backpw") || strings.Contains(got, "requirepass") {
				t.Errorf("RESP%d CONFIG GET %s shows the nodes' password: %.200q", proto, pat, got)
			}
		}
		if got := r.do("CONFIG", "GET", "maxmemory-policy"); !strings.Contains(got, "maxmemory-policy") {
			t.Errorf("RESP%d CONFIG GET maxmemory-policy: %q", proto, got)
		}
	}
	r := e.raw()
	for _, bad := range [][]string{{"requirepass", "x"}, {"masterauth", "x"}, {"notify-keyspace-events", "Ex", "bind", "0.0.0.0"}, {"tls-port", "1"}, {"dir", "/tmp"}} {
		if got := r.do(append([]string{"CONFIG", "SET"}, bad...)...); !strings.HasPrefix(got, "-ERR CONFIG SET") {
			t.Errorf("CONFIG SET %v: %q, want refused", bad, got)
		}
	}
	if got := r.do("CONFIG", "SET", "notify-keyspace-events", "Ex"); got != "+OK\r\n" {
		t.Errorf("CONFIG SET notify-keyspace-events: %q", got)
	}
	for i, d := range e.direct {
		if v := d.ConfigGet(context.Background(), "notify-keyspace-events").Val()["notify-keyspace-events"]; v != "xE" {
			t.Errorf("node %d notify-keyspace-events %q", i, v)
		}
	}
	if got := r.do("SET", "k", "v"); got != "+OK\r\n" {
		t.Errorf("SET after the refused CONFIG SETs: %q", got)
	}
}

// TestRedisPubSubEdges: what a subscriber sees around its own commands
// and node trouble is what one Redis would give it:
//   - no message after the confirmation of its channel's UNSUBSCRIBE, or
//     after +RESET (a relay decided to pass a message on, then wrote it
//     after the confirmation: the RESP2 client read it as the next reply);
//   - the reply to a command after SUBSCRIBE comes after all of its
//     confirmations (one relay finished the SUBSCRIBE while another had
//     counted its confirmations but not yet written them);
//   - a node that refuses the SUBSCRIBE (NOPERM) answers with its error,
//     and the next command is answered (the client hung, then was closed);
//   - a node the client no longer subscribes on failing does not close it;
//   - a PSUBSCRIBE with a node that died since its last health check gets
//     its confirmation, once (it got one error per node, and a leaked
//     count doubled the next confirmation), and the pattern reaches the
//     node when it is back;
//   - a node removed while a SUBSCRIBE waits for another node does not
//     close the client.
func TestRedisPubSubEdges(t *testing.T) {
	nodes := harness.RedisNodes(t, 3)
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_REQUEST_TIMEOUT": "3s"}})
	pong := func(got string) bool { return strings.Contains(strings.ToLower(got), "pong") }

	// a publisher floods a channel of node 0 while subscribers leave it
	ch := e.keyOn(0, "flood")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopFlood := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopFlood()
	for range 2 {
		p := dialRaw(t, e.addrs[0])
		wg.Go(func() {
			batch := []byte(strings.Repeat(mbulk("PUBLISH", ch, strings.Repeat("x", 200)), 50))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := p.c.Write(batch); err != nil {
					return
				}
				for range 50 {
					if _, err := p.reply(5 * time.Second); err != nil {
						return
					}
				}
			}
		})
	}
	for i := range 60 {
		r := e.raw()
		r.do("SUBSCRIBE", ch)
		for range 5 {
			r.mustReply()
		}
		leave, want := "RESET", "+RESET\r\n"
		if i%2 == 1 {
			leave, want = "UNSUBSCRIBE", "*3\r\n"+bulk("unsubscribe")+bulk(ch)+":0\r\n"
		}
		r.send(mbulk(leave))
		for {
			got := r.mustReply()
			if got == want {
				break
			}
			if !strings.Contains(got, "message") {
				t.Fatalf("%s: got %q while waiting for its reply", leave, got)
			}
		}
		if got := r.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("round %d: PING after %s: %q (a message after the reply)", i, leave, got)
		}
	}
	stopFlood()

	// SUBSCRIBE of channels on every node, then PING: its reply last
	var chans []string
	for i := range 3 {
		for j := range 15 {
			chans = append(chans, e.keyOn(i, "ord"+strconv.Itoa(j)+":"))
		}
	}
	for i := range 150 {
		r := e.raw()
		r.send(mbulk(append([]string{"SUBSCRIBE"}, chans...)...) + mbulk("PING"))
		for j := range len(chans) {
			if got := r.mustReply(); !strings.Contains(got, "subscribe") {
				t.Fatalf("round %d: reply %d of %d to SUBSCRIBE: %q", i, j, len(chans), got)
			}
		}
		if got := r.mustReply(); !pong(got) {
			t.Fatalf("round %d: the reply after the confirmations: %q", i, got)
		}
		r.c.Close()
	}

	// a node the client has nothing subscribed on fails: it stays
	r := e.raw()
	x, y := e.keyOn(1, "gone"), e.keyOn(0, "kept")
	r.do("SUBSCRIBE", x)
	r.do("UNSUBSCRIBE", x)
	r.do("SUBSCRIBE", y)
	noErr(t, "kill", nodes[1].Kill())
	if closed, extra := r.closed(time.Second); closed || extra != "" {
		t.Errorf("a subscriber with nothing on the failed node: closed %v, got %q", closed, extra)
	}
	if got := r.do("PING"); !pong(got) {
		t.Errorf("PING: %q", got)
	}
	noErr(t, "restart", nodes[1].Restart())
	eventually(t, 5*time.Second, "the restarted node up", func() bool { return e.nodeStates()[e.addrs[1]].State == "up" })

	// a node removed while a SUBSCRIBE waits for another one
	r = e.raw()
	on2 := e.keyOn(2, "rw")
	if got := r.do("SUBSCRIBE", on2); !strings.Contains(got, "subscribe") {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	_, err := nodes[0].Do("CLIENT", "PAUSE", "800", "ALL")
	noErr(t, "CLIENT PAUSE", err)
	on0 := e.keyOn(0, "rw0")
	r.send(mbulk("SUBSCRIBE", on0))
	time.Sleep(100 * time.Millisecond)
	e.env["REDIS_CLUSTER_NODES"] = strings.Join(e.addrs[:2], ",")
	noErr(t, "reload", e.srv.Reload())
	if got := r.mustReply(); got != "*3\r\n"+bulk("subscribe")+bulk(on0)+":2\r\n" {
		t.Errorf("SUBSCRIBE waiting on a paused node while another node was removed: %q", got)
	}
	pub := e.raw()
	eventually(t, 3*time.Second, "the removed node's channel on its new node", func() bool {
		return pub.do("PUBLISH", on2, "moved") == ":1\r\n"
	})
	if got := r.mustReply(); got != mbulk("message", on2, "moved") {
		t.Errorf("the subscriber got %q", got)
	}
}

// TestRedisPubSubNodeTrouble: SUBSCRIBE refused by a node (NOPERM: the
// backend user may not use the channel) answers with the node's error and
// the client goes on, as directly; a PSUBSCRIBE while a node has died
// unseen by the health checks is confirmed once and reaches the node when
// it is back.
func TestRedisPubSubNodeTrouble(t *testing.T) {
	acl := []string{"--user", "amb", "on", ">pw", "~*", "&ok*", "+@all"}
	nodes := harness.RedisNodes(t, 2, acl...)
	ref := harness.RedisNodes(t, 1, acl...)[0]
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"REDIS_USERNAME": "amb", "REDIS_PASSWORD": "pw",
		"REDIS_REQUEST_TIMEOUT": "2s", "HEALTH_CHECK_INTERVAL": "5s"}})
	d := dialRaw(t, ref.Addr)
	d.do("AUTH", "amb", "pw")
	// one error for the command, whatever nodes its names are on, and
	// the next command's reply after it
	nope0, nope1 := e.keyOn(0, "nope"), e.keyOn(1, "nope")
	for _, cmd := range [][]string{{"SUBSCRIBE", "nope"}, {"SUBSCRIBE", nope0, nope1}, {"PSUBSCRIBE", "ok*", "nope*"}, {"PSUBSCRIBE", "nope*", "nop2*"}} {
		for name, c := range map[string]*rawConn{"redis-server": d, "ambassador": e.raw()} {
			c.send(mbulk(cmd...) + mbulk("PING", "x"))
			first, err1 := c.reply(3 * time.Second)
			second, err2 := c.reply(3 * time.Second)
			if err1 != nil || err2 != nil || !strings.HasPrefix(first, "-NOPERM") || second != bulk("x") {
				t.Errorf("%s: %q, then PING x: %q (%v), %q (%v); want one NOPERM, then x", name, cmd, first, err1, second, err2)
			}
		}
	}
	// a refused SUBSCRIBE leaves the channels the client had on that node:
	// the node failing then closes the client (its subscriptions are gone)
	ok0 := e.keyOn(0, "ok")
	rs := e.raw()
	rs.do("SUBSCRIBE", ok0)
	rs.send(mbulk("SUBSCRIBE", ok0, e.keyOn(0, "nope")) + mbulk("PING", "y"))
	if got := rs.mustReply(); !strings.HasPrefix(got, "-NOPERM") {
		t.Errorf("SUBSCRIBE with a channel refused: %q", got)
	}
	rs.mustReply()
	if got := e.raw().do("PUBLISH", ok0, "still"); got != ":1\r\n" {
		t.Errorf("PUBLISH to the channel subscribed before the refused SUBSCRIBE reached %q", got)
	}
	if got := rs.mustReply(); got != mbulk("message", ok0, "still") {
		t.Errorf("the subscriber got %q", got)
	}
	noErr(t, "kill", nodes[0].Kill())
	if closed, _ := rs.closed(3 * time.Second); !closed {
		t.Error("the node holding the subscription failed, and the subscriber was not closed (the refused SUBSCRIBE had dropped the channel from the node's names)")
	}
	noErr(t, "restart", nodes[0].Restart())
	eventually(t, 10*time.Second, "node 0 up again", func() bool { return e.nodeStates()[e.addrs[0]].State == "up" })

	// node 1 dies; the health checks (every 5 s) have not seen it yet
	r := e.raw()
	r.do("PING")
	noErr(t, "kill", nodes[1].Kill())
	r.send(mbulk("PSUBSCRIBE", "ok*") + mbulk("PING"))
	if got := r.mustReply(); got != "*3\r\n"+bulk("psubscribe")+bulk("ok*")+":1\r\n" {
		t.Errorf("PSUBSCRIBE with a node dead: %q", got)
	}
	if got := r.mustReply(); !strings.Contains(strings.ToLower(got), "pong") {
		t.Errorf("PING after it: %q", got)
	}
	noErr(t, "restart", nodes[1].Restart())
	eventually(t, 15*time.Second, "the pattern on the node that is back", func() bool {
		c := dialRaw(t, nodes[1].Addr)
		defer c.c.Close()
		c.do("AUTH", "amb", "pw")
		return c.do("PUBSUB", "NUMPAT") == ":1\r\n"
	})
	k := e.keyOn(1, "okdead:")
	if got := e.raw().do("PUBLISH", k, "back"); got != ":1\r\n" {
		t.Errorf("PUBLISH on the node that is back reached %q pattern subscribers", got)
	}
	if got := r.mustReply(); got != "*4\r\n"+bulk("pmessage")+bulk("ok*")+bulk(k)+bulk("back") {
		t.Errorf("the pattern subscriber got %q", got)
	}
	// and a second PSUBSCRIBE of it is confirmed once
	r.send(mbulk("PSUBSCRIBE", "ok*") + mbulk("PING"))
	if got := r.mustReply(); got != "*3\r\n"+bulk("psubscribe")+bulk("ok*")+":1\r\n" {
		t.Errorf("PSUBSCRIBE again: %q", got)
	}
	if got := r.mustReply(); !strings.Contains(strings.ToLower(got), "pong") {
		t.Errorf("PING after it: %q", got)
	}

}

// TestRedisPubSubMoveRefused: a move of a subscription that the new node
// refuses at first (NOPERM; BUSY in a long script) is tried again until it
// is made.
func TestRedisPubSubMoveRefused(t *testing.T) {
	mvNodes := harness.RedisNodes(t, 2, "--user", "amb", "on", ">pw", "~*", "&*", "+@all")
	mv := newRedisEnv(t, mvNodes, envOpts{env: map[string]string{"REDIS_USERNAME": "amb", "REDIS_PASSWORD": "pw"}})
	x := mv.keyOn(1, "mv")
	mv.env["REDIS_CLUSTER_NODES"] = mv.addrs[0]
	noErr(t, "reload", mv.srv.Reload())
	sub := mv.raw()
	sub.do("SUBSCRIBE", x)
	setACL := func(rule string) {
		c := dialRaw(t, mvNodes[1].Addr)
		defer c.c.Close()
		c.do("AUTH", "amb", "pw")
		if got := c.do("ACL", "SETUSER", "amb", rule); got != "+OK\r\n" {
			t.Fatalf("ACL SETUSER amb %s: %q", rule, got)
		}
	}
	setACL("resetchannels")
	mv.env["REDIS_CLUSTER_NODES"] = mv.addrs[0] + "," + mv.addrs[1]
	noErr(t, "reload", mv.srv.Reload())
	time.Sleep(300 * time.Millisecond) // the move is refused meanwhile
	if got := mpubBefore(t, mv, x); !strings.HasPrefix(got, "-NOPERM") {
		t.Fatalf("PUBLISH while the new node refuses the channel: %q, want NOPERM (the test would not test a refused move)", got)
	}
	setACL("allchannels")
	mpub := mv.raw()
	eventually(t, 3*time.Second, "the refused move made once the node allows it", func() bool {
		return mpub.do("PUBLISH", x, "moved") == ":1\r\n"
	})
	if got := sub.mustReply(); got != mbulk("message", x, "moved") {
		t.Errorf("the subscriber got %q", got)
	}
}

func mpubBefore(t *testing.T, e *redisEnv, ch string) string {
	return e.raw().do("PUBLISH", ch, "refused")
}

// TestRedisPubSubOldNodes: a node that does not know SUNSUBSCRIBE (Redis
// 6) refuses it; that error is not taken for the answer to the client's
// next SUBSCRIBE, whose channel then works.
func TestRedisPubSubOldNodes(t *testing.T) {
	nodes := harness.RedisNodes(t, 1, "--rename-command", "SUNSUBSCRIBE", "")
	e := newRedisEnv(t, nodes, envOpts{})
	r := e.raw()
	r.do("SSUBSCRIBE", "s")
	pub := e.raw()
	for i := range 20 {
		ch := "b" + strconv.Itoa(i)
		r.send(mbulk("SUNSUBSCRIBE") + mbulk("SUBSCRIBE", ch))
		got := []string{r.mustReply(), r.mustReply()}
		if !strings.Contains(got[1], "subscribe") {
			t.Fatalf("round %d: SUNSUBSCRIBE, SUBSCRIBE %s: %q", i, ch, got)
		}
		if got := pub.do("PUBLISH", ch, "m"); got != ":1\r\n" {
			t.Fatalf("round %d: PUBLISH %s reached %q", i, ch, got)
		}
		if got := r.mustReply(); got != mbulk("message", ch, "m") {
			t.Fatalf("round %d: the subscriber got %q", i, got)
		}
		r.do("UNSUBSCRIBE", ch)
		r.do("SSUBSCRIBE", "s")
	}
}

// TestRedisBusyNodeStaysUp: a node running a long script answers -BUSY to
// the probes; it stays up (it was marked down: its keys failed as
// unavailable, with auto-eject they moved, and SCRIPT KILL could not reach
// it), and SCRIPT KILL through the ambassador stops the script at once (it
// went on the shared connection, behind the script it was to kill). Other
// commands for the node's keys on the shared connection wait for the
// script, as the commands of one connection do on Redis.
func TestRedisBusyNodeStaysUp(t *testing.T) {
	nodes := harness.RedisNodes(t, 2, "--busy-reply-threshold", "100")
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"HEALTH_CHECK_INTERVAL": "200ms", "REDIS_REQUEST_TIMEOUT": "10s"}})
	k := e.keyOn(0, "busy")
	r := e.raw()
	r.do("SET", k, "v")
	script := e.raw()
	script.send(mbulk("EVAL", "local i = 0 while true do i = i + 1 end", "1", k))
	time.Sleep(1500 * time.Millisecond) // many probe intervals
	if st := e.nodeStates()[e.addrs[0]].State; st != "up" {
		t.Errorf("the node running a long script is %s, want up", st)
	}
	began := time.Now()
	if got := r.do("SCRIPT", "KILL"); got != "+OK\r\n" {
		t.Errorf("SCRIPT KILL through the ambassador: %q", got)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("SCRIPT KILL took %v", took)
	}
	if got := script.mustReply(); !strings.Contains(got, "killed") {
		t.Errorf("the script's client got %q", got)
	}
	if got := r.do("GET", k); got != bulk("v") {
		t.Errorf("GET once the script was killed: %q", got)
	}
}

// TestRedisLeastConnections: the requests in flight on a node count for
// least_connections and show in /nodes (nothing counted them: the policy
// went round robin and ignored the weights); with none in flight the
// weights hold.
func TestRedisLeastConnections(t *testing.T) {
	nodes := harness.RedisNodes(t, 2)
	addrs := harness.RedisAddrs(nodes)
	e := newRedisEnv(t, nodes, envOpts{env: map[string]string{"LOAD_BALANCE_ALGORITHM": "least_connections",
		"REDIS_CLUSTER_NODES": addrs[0] + ":1," + addrs[1] + ":3"}})
	calls := func(i int) int64 {
		out, err := nodes[i].Do("INFO", "commandstats")
		noErr(t, "INFO commandstats", err)
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_time:calls="); ok {
				n, _ := strconv.ParseInt(v[:strings.IndexByte(v, ',')], 10, 64)
				return n
			}
		}
		return 0
	}
	r := e.raw()
	for range 400 {
		r.do("TIME")
	}
	if a, b := calls(0), calls(1); b < 240 || b > 360 {
		t.Errorf("TIME with weights 1 and 3, least_connections: %d and %d, want about 100 and 300", a, b)
	}

	// requests waiting on paused nodes are in flight there
	for _, n := range nodes {
		_, err := n.Do("CLIENT", "PAUSE", "1500", "ALL")
		noErr(t, "CLIENT PAUSE", err)
	}
	w := e.raw()
	for i := range 20 {
		w.send(mbulk("GET", "lc"+strconv.Itoa(i)))
	}
	inFlight := func() int64 {
		st := e.nodeStates()
		return st[addrs[0]].Active + st[addrs[1]].Active
	}
	eventually(t, time.Second, "the waiting requests counted on the paused nodes", func() bool { return inFlight() == 20 })
	for range 20 {
		w.mustReply()
	}
	eventually(t, 3*time.Second, "nothing in flight once answered", func() bool { return inFlight() == 0 })
}
