package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/e2e/harness"
	"github.com/ambassador-proxy/ambassador/protocols/frontend"
	"github.com/ambassador-proxy/ambassador/server"
)

// echoProtocol is a tiny protocol for these tests: its frontend echoes
// lines, its nodes are the Redis nodes of the configuration, probed with
// the default TCP connect.
func echoProtocol() server.Protocol {
	return server.Protocol{
		Name:    "redis",
		Enabled: func(c *config.Config) bool { return c.Redis.Enabled() },
		Listen:  func(c *config.Config) string { return c.Redis.Listen },
		Nodes:   func(c *config.Config) []config.Node { return c.Redis.Nodes },
		Build: func(c *config.Config, _ *cluster.Cluster, d server.Deps) (server.Frontend, error) {
			return frontend.NewServer(frontend.Options{
				Name:           "redis",
				MaxConnections: c.Limits.MaxConnections,
				Logger:         d.Logger,
				Metrics:        d.FrontendMetrics,
			}, echoHandler), nil
		},
	}
}

func echoHandler(ctx context.Context, conn net.Conn) frontend.CloseReason {
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if ctx.Err() != nil {
				return frontend.ReasonShutdown
			}
			return frontend.ReasonClientClosed
		}
		if _, err := conn.Write([]byte(line)); err != nil {
			return frontend.ReasonWriteError
		}
	}
}

// instance is one in-process ambassador.
type instance struct {
	t      *testing.T
	s      *server.Server
	admin  string // http://host:port
	front  string // the echo frontend's address
	cancel context.CancelFunc
	done   chan error
}

// baseEnv is the environment of every test instance: free ports, fast
// probes.
func baseEnv(kv ...string) map[string]string {
	m := map[string]string{
		"ADMIN_LISTEN":          "127.0.0.1:0",
		"REDIS_LISTEN":          "127.0.0.1:0",
		"HEALTH_CHECK_INTERVAL": "100ms",
		"HEALTH_CHECK_TIMEOUT":  "100ms",
		"SHUTDOWN_TIMEOUT":      "2s",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func lookup(env map[string]string) config.LookupEnv {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// startServer loads the configuration from args and env, as the binary
// does, and runs the server until the test ends.
func startServer(t *testing.T, args []string, env map[string]string) *instance {
	t.Helper()
	load := func() (*config.Config, error) { return config.Load(args, lookup(env)) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(cfg, server.Options{Version: "test", Load: load, Protocols: []server.Protocol{echoProtocol()}})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Readyz(); r.Ready || len(r.Reasons) == 0 {
		t.Errorf("Readyz before Run = %+v, want not ready with a reason", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{t: t, s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- s.Run(ctx) }()
	select {
	case <-s.Started():
	case err := <-in.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	in.admin = "http://" + s.Addr("admin").String()
	in.front = s.Addr("redis").String()
	t.Cleanup(func() {
		cancel()
		select {
		case <-in.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	return in
}

func (in *instance) get(path string) (int, string) {
	in.t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(in.admin + path)
	if err != nil {
		in.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		in.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// nodeJSON is a node in /nodes, decoded loosely to see which fields exist.
type nodesJSON struct {
	Clusters []struct {
		Name   string                       `json:"name"`
		Policy string                       `json:"policy"`
		Nodes  []map[string]json.RawMessage `json:"nodes"`
	} `json:"clusters"`
}

// nodes returns the redis cluster's nodes from /nodes, by address.
func (in *instance) nodes() map[string]map[string]json.RawMessage {
	in.t.Helper()
	code, body := in.get("/nodes")
	if code != 200 {
		in.t.Fatalf("/nodes = %d %s", code, body)
	}
	var r nodesJSON
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		in.t.Fatalf("/nodes is not JSON: %v\n%s", err, body)
	}
	if len(r.Clusters) != 1 || r.Clusters[0].Name != "redis" {
		in.t.Fatalf("/nodes clusters: %s", body)
	}
	out := map[string]map[string]json.RawMessage{}
	for _, n := range r.Clusters[0].Nodes {
		var addr string
		_ = json.Unmarshal(n["addr"], &addr)
		out[addr] = n
	}
	return out
}

func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// metric returns the value of the sample whose line starts with prefix
// (name and labels) in /metrics, and whether it is there.
func (in *instance) metric(prefix string) (float64, bool) {
	in.t.Helper()
	_, body := in.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, prefix)), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func (in *instance) dial() (net.Conn, *bufio.Reader) {
	in.t.Helper()
	c, err := net.DialTimeout("tcp", in.front, time.Second)
	if err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func echoed(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("echo of %q = %q, %v", msg, got, err)
	}
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAdminEndpoints(t *testing.T) {
	rs := harness.RedisNodes(t, 3)
	addrs := harness.RedisAddrs(rs)
	in := startServer(t, nil, baseEnv("REDIS_CLUSTER_NODES", strings.Join(addrs, ","), "REDIS_PASSWORD", "sekret-pw-42"))

	if code, body := in.get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := in.get("/readyz"); code != 200 || !strings.Contains(body, `"ready": true`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	c, r := in.dial()
	echoed(t, c, r, "ping")

	// every node probed at least once
	eventually(t, 2*time.Second, "every node probed", func() bool {
		for _, n := range in.nodes() {
			if strings.HasPrefix(str(n["last_probe"]), "0001") || n["last_probe"] == nil {
				return false
			}
		}
		return true
	})
	nodes := in.nodes()
	if len(nodes) != 3 {
		t.Fatalf("/nodes has %d nodes, want 3", len(nodes))
	}
	for _, a := range addrs {
		n, ok := nodes[a]
		if !ok {
			t.Errorf("/nodes lacks %s", a)
			continue
		}
		for _, field := range []string{"addr", "state", "last_error", "latency_ms", "probe_latency_ms", "active_connections"} {
			if _, ok := n[field]; !ok {
				t.Errorf("/nodes %s lacks %q: %v", a, field, n)
			}
		}
		if str(n["state"]) != "up" || str(n["last_error"]) != "" {
			t.Errorf("/nodes %s: state %s last_error %s", a, n["state"], n["last_error"])
		}
	}

	for _, a := range addrs {
		if v, ok := in.metric(`ambassador_health_node_up{cluster="redis",node="` + a + `"}`); !ok || v != 1 {
			t.Errorf("ambassador_health_node_up for %s = %v (present %v), want 1", a, v, ok)
		}
	}
	if v, ok := in.metric(`ambassador_frontend_connections{frontend="redis"}`); !ok || v != 1 {
		t.Errorf("ambassador_frontend_connections = %v (present %v), want 1", v, ok)
	}
	if v, ok := in.metric(`ambassador_build_info{version="test"}`); !ok || v != 1 {
		t.Error("ambassador_build_info missing")
	}

	for _, path := range []string{"/config", "/config?format=yaml"} {
		code, body := in.get(path)
		if code != 200 || strings.Contains(body, "sekret-pw-42") || !strings.Contains(body, "<redacted>") || !strings.Contains(body, addrs[0]) {
			t.Errorf("%s = %d, want the configuration with the password redacted:\n%s", path, code, body)
		}
	}

	// a node down: /nodes says so with its error, the others keep it ready
	if err := rs[1].Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the killed node reported down", func() bool {
		n := in.nodes()[addrs[1]]
		return str(n["state"]) == "down" && str(n["last_error"]) != ""
	})
	if v, _ := in.metric(`ambassador_health_node_up{cluster="redis",node="` + addrs[1] + `"}`); v != 0 {
		t.Errorf("ambassador_health_node_up of the killed node = %v", v)
	}
	if code, _ := in.get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d with 2 of 3 nodes up", code)
	}
	// all down: 503 with a JSON reason naming the cluster
	_ = rs[0].Kill()
	_ = rs[2].Kill()
	eventually(t, 3*time.Second, "/readyz 503 with every node down", func() bool {
		code, _ := in.get("/readyz")
		return code == 503
	})
	_, body := in.get("/readyz")
	var rd server.Readiness
	if err := json.Unmarshal([]byte(body), &rd); err != nil || rd.Ready || len(rd.Reasons) == 0 || !strings.Contains(rd.Reasons[0], "redis") {
		t.Errorf("/readyz body %s: want ready false with a reason naming the redis cluster", body)
	}
	echoed(t, c, r, "the frontend still serves")
	if err := rs[2].Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "/readyz 200 after a node came back", func() bool {
		code, _ := in.get("/readyz")
		return code == 200
	})
}

func writeConfig(t *testing.T, path string, nodes ...string) {
	t.Helper()
	body := "redis:\n  nodes:\n"
	for _, n := range nodes {
		body += "    - " + n + "\n"
	}
	writeRaw(t, path, body)
}

func writeRaw(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func nodeSet(in *instance) string {
	var out []string
	for a := range in.nodes() {
		out = append(out, a)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func joined(addrs ...string) string {
	s := append([]string(nil), addrs...)
	slices.Sort(s)
	return strings.Join(s, ",")
}

func TestReload(t *testing.T) {
	rs := harness.RedisNodes(t, 3)
	a := harness.RedisAddrs(rs)
	file := filepath.Join(t.TempDir(), "ambassador.yaml")
	writeConfig(t, file, a[0], a[1])
	in := startServer(t, []string{"--config", file}, baseEnv())
	if got := nodeSet(in); got != joined(a[0], a[1]) {
		t.Fatalf("/nodes = %s", got)
	}
	c, r := in.dial()
	echoed(t, c, r, "before")

	writeConfig(t, file, a[1], a[2]+":2")
	if err := in.s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := nodeSet(in); got != joined(a[1], a[2]) {
		t.Errorf("/nodes after reload = %s, want %s", got, joined(a[1], a[2]))
	}
	if w := string(in.nodes()[a[2]]["weight"]); w != "2" {
		t.Errorf("weight of the new node = %s, want 2", w)
	}
	echoed(t, c, r, "after reload")
	if v, _ := in.metric("ambassador_config_last_reload_successful"); v != 1 {
		t.Errorf("last_reload_successful = %v after a good reload", v)
	}
	if v, _ := in.metric(`ambassador_config_reloads_total{result="success"}`); v != 1 {
		t.Errorf("reloads_total{success} = %v", v)
	}
	if _, body := in.get("/config"); !strings.Contains(body, a[2]) || strings.Contains(body, a[0]) {
		t.Errorf("/config after reload does not show the new node list:\n%s", body)
	}
	// the new node gets probed: it shows a probe time soon
	eventually(t, 2*time.Second, "the added node probed", func() bool {
		return !strings.HasPrefix(str(in.nodes()[a[2]]["last_probe"]), "0001")
	})

	// a bad file keeps the old configuration
	for _, bad := range []struct{ body, want string }{
		{"health:\n  interval: 5\nredis:\n  nodes: [" + a[0] + "]\n", "health.interval"},
		{"redis:\n  nodes: [" + a[0] + ", " + a[0] + "]\n", "twice"},
		{"circuit_breaker:\n  enabled: true\nredis:\n  nodes: [" + a[0] + "]\n", "circuit_breaker"},
		{"load_balance: least_connections\nredis:\n  nodes: [" + a[0] + "]\n", "load_balance"},
		{"limits:\n  max_connections: 5\nredis:\n  nodes: [" + a[0] + "]\n", "limits"},
		{"log:\n  level: debug\nredis:\n  nodes: [" + a[0] + "]\n", "log"},
	} {
		writeRaw(t, file, bad.body)
		err := in.s.Reload()
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Reload of\n%s= %v, want an error naming %s", bad.body, err, bad.want)
		}
		if got := nodeSet(in); got != joined(a[1], a[2]) {
			t.Errorf("a failed reload changed /nodes to %s", got)
		}
		if v, ok := in.metric("ambassador_config_last_reload_successful"); !ok || v != 0 {
			t.Errorf("last_reload_successful = %v (present %v) after a failed reload, want 0", v, ok)
		}
		if in.s.Config().Redis.Nodes[0].Addr != a[1] {
			t.Errorf("a failed reload changed the configuration in effect")
		}
	}
	if v, _ := in.metric(`ambassador_config_reloads_total{result="failure"}`); v != 6 {
		t.Errorf("reloads_total{failure} = %v, want 6", v)
	}
	echoed(t, c, r, "after failed reloads")

	writeConfig(t, file, a[0])
	if err := in.s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := nodeSet(in); got != a[0] {
		t.Errorf("/nodes = %s", got)
	}
	if v, _ := in.metric("ambassador_config_last_reload_successful"); v != 1 {
		t.Errorf("last_reload_successful = %v after a good reload", v)
	}
	echoed(t, c, r, "still open")
}

// TestReloadOnFileChange: with CONFIG_RELOAD_INTERVAL the server reloads
// by itself when the file changes.
func TestReloadOnFileChange(t *testing.T) {
	rs := harness.RedisNodes(t, 2)
	a := harness.RedisAddrs(rs)
	file := filepath.Join(t.TempDir(), "ambassador.yaml")
	writeConfig(t, file, a[0])
	in := startServer(t, []string{"--config", file}, baseEnv("CONFIG_RELOAD_INTERVAL", "50ms"))
	writeConfig(t, file, a[0], a[1])
	eventually(t, 2*time.Second, "the file change reloaded", func() bool { return nodeSet(in) == joined(a...) })
}

func TestShutdown(t *testing.T) {
	rs := harness.RedisNodes(t, 1)
	const drain = 400 * time.Millisecond
	in := startServer(t, nil, baseEnv("REDIS_CLUSTER_NODES", rs[0].Addr, "SHUTDOWN_TIMEOUT", drain.String()))
	c, r := in.dial()
	echoed(t, c, r, "hi")
	start := time.Now()
	in.cancel()
	select {
	case err := <-in.done:
		in.done <- err // for the cleanup
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(drain + 2*time.Second):
		t.Fatalf("Run did not return within the shutdown timeout (%v)", drain)
	}
	took := time.Since(start)
	if took > drain+time.Second {
		t.Errorf("Run took %v to return with shutdown_timeout %v", took, drain)
	}
	// from the start of the shutdown on, /readyz says not ready
	if r := in.s.Readyz(); r.Ready || !slices.Contains(r.Reasons, "shutting down") {
		t.Errorf("Readyz once shutting down = %+v", r)
	}
	// the idle client was closed
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := r.ReadByte(); err == nil {
		t.Error("client connection still open after shutdown")
	}
	// nothing listens any more
	if conn, err := net.DialTimeout("tcp", in.front, 200*time.Millisecond); err == nil {
		conn.Close()
		t.Error("the frontend still accepts after Run returned")
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(in.admin, "http://"), 200*time.Millisecond); err == nil {
		conn.Close()
		t.Error("the admin endpoint still accepts after Run returned")
	}
}

func TestMaxConnections(t *testing.T) {
	rs := harness.RedisNodes(t, 1)
	in := startServer(t, nil, baseEnv("REDIS_CLUSTER_NODES", rs[0].Addr, "MAX_CONNECTIONS", "2"))
	c1, r1 := in.dial()
	c2, r2 := in.dial()
	echoed(t, c1, r1, "one")
	echoed(t, c2, r2, "two")
	c3, r3 := in.dial()
	_ = c3.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r3.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the connection over the limit was not closed: %v", err)
	}
	if v, ok := in.metric(`ambassador_frontend_connections_rejected_total{frontend="redis"}`); !ok || v != 1 {
		t.Errorf("rejected_total = %v (present %v), want 1", v, ok)
	}
	echoed(t, c1, r1, "still served")
}

func TestListenErrorNamesSetting(t *testing.T) {
	rs := harness.RedisNodes(t, 1)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	env := baseEnv("REDIS_CLUSTER_NODES", rs[0].Addr, "REDIS_LISTEN", busy.Addr().String())
	cfg, err := config.Load(nil, lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(cfg, server.Options{Protocols: []server.Protocol{echoProtocol()}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "redis.listen") || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Errorf("Run with the frontend port taken = %v, want an error naming redis.listen and the address", err)
	}
}

// TestProtocolWithoutFrontend: a protocol whose frontend is not built yet
// is refused with a message, not a crash.
func TestProtocolWithoutFrontend(t *testing.T) {
	p := echoProtocol()
	p.Build = nil
	cfg, err := config.Load(nil, lookup(baseEnv("REDIS_CLUSTER_NODES", "127.0.0.1:1")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(cfg, server.Options{Protocols: []server.Protocol{p}})
	if err == nil || !strings.Contains(err.Error(), "redis") {
		t.Errorf("New with a protocol without Build = %v", err)
	}
}

func TestReloadWithoutSource(t *testing.T) {
	cfg, err := config.Load(nil, lookup(baseEnv("REDIS_CLUSTER_NODES", "127.0.0.1:1")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(cfg, server.Options{Protocols: []server.Protocol{echoProtocol()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Error("Reload without a configuration source succeeded")
	}
}
