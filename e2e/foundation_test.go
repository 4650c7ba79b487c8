package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ambassador-proxy/ambassador/e2e/harness"
)

// TestFoundation runs the ambassador binary in front of real redis-server
// nodes and checks what an operator sees: /nodes, /readyz, reload on
// SIGHUP and a clean exit on SIGTERM.
func TestFoundation(t *testing.T) {
	bin := fndBuild(t)
	rs := harness.RedisNodes(t, 3)
	addrs := harness.RedisAddrs(rs)

	t.Run("Health", func(t *testing.T) {
		const interval = 500 * time.Millisecond
		amb := fndStart(t, bin, nil,
			"REDIS_CLUSTER_NODES="+strings.Join(addrs, ","),
			"HEALTH_CHECK_INTERVAL="+interval.String())

		amb.eventually(3*time.Second, "all 3 nodes probed and up", func() bool {
			ns := amb.nodes()
			for _, a := range addrs {
				if n, ok := ns[a]; !ok || n.State != "up" || n.LastProbe.IsZero() {
					return false
				}
			}
			return len(ns) == 3
		})
		if code, _ := amb.get("/readyz"); code != 200 {
			t.Fatalf("/readyz = %d with every node up", code)
		}

		// one node dies: down within 3 health intervals, with its error
		if err := rs[1].Kill(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		var took time.Duration
		amb.eventually(5*interval, "the killed node reported down", func() bool {
			n := amb.nodes()[addrs[1]]
			if n.State == "down" && n.LastError != "" {
				took = time.Since(killed)
				return true
			}
			return false
		})
		t.Logf("node down in /nodes %v after the kill (health interval %v)", took.Round(time.Millisecond), interval)
		if bound := 3*interval + 250*time.Millisecond; took > bound {
			t.Errorf("the killed node took %v to be reported down, over 3 health intervals (%v)", took, bound)
		}
		if n := amb.nodes()[addrs[1]]; n.LastErrorAt.IsZero() {
			t.Errorf("/nodes of the down node: %+v, want the time of its last error", n)
		}
		for _, i := range []int{0, 2} {
			if n := amb.nodes()[addrs[i]]; n.State != "up" {
				t.Errorf("%s is %s, want up", addrs[i], n.State)
			}
		}
		if code, body := amb.get("/readyz"); code != 200 {
			t.Errorf("/readyz = %d %s with 2 of 3 nodes up", code, body)
		}

		// all die: /readyz 503 with a JSON reason naming the cluster
		_ = rs[0].Kill()
		_ = rs[2].Kill()
		amb.eventually(5*interval, "/readyz 503 with every node down", func() bool {
			code, _ := amb.get("/readyz")
			return code == 503
		})
		_, body := amb.get("/readyz")
		var rd struct {
			Ready   bool     `json:"ready"`
			Reasons []string `json:"reasons"`
		}
		if err := json.Unmarshal([]byte(body), &rd); err != nil || rd.Ready || len(rd.Reasons) == 0 ||
			!strings.Contains(strings.Join(rd.Reasons, " "), "redis") {
			t.Errorf("/readyz body %s: want {ready: false} with a reason naming the redis cluster", body)
		}
		if code, _ := amb.get("/healthz"); code != 200 {
			t.Errorf("/healthz = %d while the backends are down; the process is alive", code)
		}

		// one comes back: ready again
		if err := rs[0].Restart(); err != nil {
			t.Fatal(err)
		}
		amb.eventually(3*interval+time.Second, "/readyz 200 after a node came back", func() bool {
			code, _ := amb.get("/readyz")
			return code == 200
		})
		if n := amb.nodes()[addrs[0]]; n.State != "up" {
			t.Errorf("restarted node is %s in /nodes", n.State)
		}
		if v := amb.metric(`ambassador_health_node_up{cluster="redis",node="` + addrs[2] + `"}`); v != 0 {
			t.Errorf("ambassador_health_node_up of a down node = %v, want 0", v)
		}
		amb.stop(t)
	})

	t.Run("ReloadAndSignals", func(t *testing.T) {
		for _, n := range rs {
			if !n.Running() {
				if err := n.Restart(); err != nil {
					t.Fatal(err)
				}
			}
		}
		file := filepath.Join(t.TempDir(), "ambassador.yaml")
		fndWriteNodes(t, file, addrs[0], addrs[1])
		const drain = 2 * time.Second
		amb := fndStart(t, bin, []string{"--config", file},
			"HEALTH_CHECK_INTERVAL=200ms", "SHUTDOWN_TIMEOUT="+drain.String())
		if got := amb.nodeSet(); got != fndJoined(addrs[0], addrs[1]) {
			t.Fatalf("/nodes = %s", got)
		}
		client, err := net.DialTimeout("tcp", amb.redis, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()

		fndWriteNodes(t, file, addrs[1], addrs[2])
		amb.signal(syscall.SIGHUP)
		amb.eventually(3*time.Second, "SIGHUP reloaded the node list", func() bool {
			return amb.nodeSet() == fndJoined(addrs[1], addrs[2])
		})
		if v := amb.metric("ambassador_config_last_reload_successful"); v != 1 {
			t.Errorf("last_reload_successful = %v after a good reload", v)
		}
		fndStillOpen(t, client)

		// a broken file: the old node list stays, the metric says so
		if err := os.WriteFile(file, []byte("redis:\n  nodes: [\""+addrs[0]+"\"]\nhealth:\n  interval: 5\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		amb.signal(syscall.SIGHUP)
		amb.eventually(3*time.Second, "the failed reload counted", func() bool {
			return amb.metric("ambassador_config_last_reload_successful") == 0
		})
		if got := amb.nodeSet(); got != fndJoined(addrs[1], addrs[2]) {
			t.Errorf("a failed reload changed /nodes to %s", got)
		}
		if !strings.Contains(amb.log.String(), "health.interval") {
			t.Errorf("the log does not say why the reload failed:\n%s", amb.log.String())
		}
		fndStillOpen(t, client)

		// SIGTERM with a client still connected: exit 0 within the
		// shutdown timeout
		start := time.Now()
		amb.signal(syscall.SIGTERM)
		code, err := amb.wait(drain + 3*time.Second)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("exited %d %v after SIGTERM (shutdown timeout %v)", code, took.Round(time.Millisecond), drain)
		if code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0; log:\n%s", code, amb.log.String())
		}
		if took > drain+time.Second {
			t.Errorf("exit took %v, over the shutdown timeout %v", took, drain)
		}
		_ = client.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := client.Read(make([]byte, 1)); err == nil || fndIsTimeout(err) {
			t.Errorf("client connection not closed by the shutdown: %v", err)
		}
	})
}

// fndBuild builds the binary into the test's temporary directory.
func fndBuild(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "ambassador")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/ambassador-proxy/ambassador/cmd/ambassador")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// fndProcess is one running ambassador process.
type fndProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	admin  string // http://127.0.0.1:port
	redis  string // the Redis frontend's address
	log    *fndLog
	exited chan struct{}
	err    error
}

type fndLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *fndLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *fndLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fndStart runs the binary with args and a clean environment of
// the given variables, on free ports, and waits for its admin endpoint.
func fndStart(t *testing.T, bin string, args []string, env ...string) *fndProcess {
	t.Helper()
	ports, err := harness.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	a := &fndProcess{
		t:      t,
		admin:  "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		redis:  "127.0.0.1:" + strconv.Itoa(ports[1]),
		log:    &fndLog{},
		exited: make(chan struct{}),
	}
	a.cmd = exec.Command(bin, args...)
	a.cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"ADMIN_LISTEN=127.0.0.1:" + strconv.Itoa(ports[0]),
		"REDIS_LISTEN=" + a.redis,
		"LOG_LEVEL=debug",
	}, env...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.err = a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		<-a.exited
		if t.Failed() {
			t.Logf("ambassador log:\n%s", a.log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-a.exited:
			t.Fatalf("ambassador exited at start: %v\n%s", a.err, a.log.String())
		default:
		}
		if resp, err := http.Get(a.admin + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin endpoint not up after 10s:\n%s", a.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *fndProcess) signal(sig syscall.Signal) {
	a.t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		a.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait returns the exit code once the process ends.
func (a *fndProcess) wait(within time.Duration) (int, error) {
	select {
	case <-a.exited:
	case <-time.After(within):
		return -1, fmt.Errorf("ambassador still running %v after SIGTERM", within)
	}
	var ee *exec.ExitError
	if a.err != nil && !errors.As(a.err, &ee) {
		return -1, a.err
	}
	return a.cmd.ProcessState.ExitCode(), nil
}

// stop sends SIGTERM and expects exit code 0.
func (a *fndProcess) stop(t *testing.T) {
	t.Helper()
	a.signal(syscall.SIGTERM)
	code, err := a.wait(15 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("exit after SIGTERM: code %d, %v", code, err)
	}
}

func (a *fndProcess) get(path string) (int, string) {
	a.t.Helper()
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(a.admin + path)
	if err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type fndNode struct {
	Addr        string    `json:"addr"`
	State       string    `json:"state"`
	LastError   string    `json:"last_error"`
	LastErrorAt time.Time `json:"last_error_at"`
	LastProbe   time.Time `json:"last_probe"`
}

// nodes returns the redis cluster's nodes in /nodes by address.
func (a *fndProcess) nodes() map[string]fndNode {
	a.t.Helper()
	_, body := a.get("/nodes")
	var r struct {
		Clusters []struct {
			Name  string    `json:"name"`
			Nodes []fndNode `json:"nodes"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		a.t.Fatalf("/nodes: %v\n%s", err, body)
	}
	out := map[string]fndNode{}
	for _, c := range r.Clusters {
		if c.Name != "redis" {
			continue
		}
		for _, n := range c.Nodes {
			out[n.Addr] = n
		}
	}
	return out
}

func (a *fndProcess) nodeSet() string {
	var out []string
	for addr := range a.nodes() {
		out = append(out, addr)
	}
	return fndJoined(out...)
}

// metric returns the value of the /metrics sample named by prefix (name
// and labels), -1 when absent.
func (a *fndProcess) metric(prefix string) float64 {
	a.t.Helper()
	_, body := a.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func (a *fndProcess) eventually(within time.Duration, what string, cond func() bool) {
	a.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			_, nodes := a.get("/nodes")
			a.t.Fatalf("not within %v: %s\n/nodes: %s", within, what, nodes)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func fndWriteNodes(t *testing.T, path string, nodes ...string) {
	t.Helper()
	body := "redis:\n  nodes:\n"
	for _, n := range nodes {
		body += "    - \"" + n + "\"\n"
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func fndJoined(addrs ...string) string {
	s := slices.Clone(addrs)
	slices.Sort(s)
	return strings.Join(s, ",")
}

// fndStillOpen checks that the server has not closed c: a short read times
// out instead of ending.
func fndStillOpen(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	if !fndIsTimeout(err) {
		t.Errorf("client connection closed across the reload: %v", err)
	}
}

func fndIsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
