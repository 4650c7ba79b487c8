package harness

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	rabbitBootTimeout = 120 * time.Second
	rabbitStopGrace   = 30 * time.Second
	rabbitCtlTimeout  = 60 * time.Second
)

// RabbitCluster is a cluster of real rabbitmq-server nodes on 127.0.0.1.
// The nodes share a private Erlang cookie (not the system node's) kept in
// Dir/home/.erlang.cookie; when the harness runs as root the nodes and
// rabbitmqctl run as the rabbitmq user. To run rabbitmqctl by hand against
// a node, use Ctl, or: HOME=<Dir>/home rabbitmqctl -n <Name> ... (as the
// owner of Dir), or rabbitmqctl --erlang-cookie <Cookie> -n <Name> ...
type RabbitCluster struct {
	Nodes    []*RabbitNode
	User     string // guest: only allowed from loopback, which is where everything connects from
	Password string
	Dir      string
	Cookie   string

	run rabbitRun
}

// RabbitNode is one rabbitmq-server node.
type RabbitNode struct {
	Name     string // amb<pid><rand>-<i>@localhost
	AMQPAddr string // 127.0.0.1:Port
	Port     int    // AMQP listener
	DistPort int    // Erlang distribution listener
	Dir      string // mnesia/, log/, stdout.log
	LogPath  string // the node's RabbitMQ log file

	c      *RabbitCluster
	server string
	env    []string

	mu sync.Mutex
	p  *proc
}

// rabbitRun holds how rabbit processes are run: binaries and the user.
type rabbitRun struct {
	server, ctl string
	cred        *syscall.Credential
	uid, gid    int // -1 when not switching user
}

func rabbitBins() (rabbitRun, error) {
	r := rabbitRun{uid: -1, gid: -1}
	// The Debian package puts wrapper scripts in /usr/sbin that switch to
	// the rabbitmq user with su, cd to /var/lib/rabbitmq and send server
	// output to /var/log/rabbitmq: use the real scripts behind them.
	find := func(name string) (string, error) {
		p := filepath.Join("/usr/lib/rabbitmq/bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		return lookBin(name)
	}
	var err error
	if r.server, err = find("rabbitmq-server"); err != nil {
		return r, err
	}
	if r.ctl, err = find("rabbitmqctl"); err != nil {
		return r, err
	}
	if _, err := lookBin("erl"); err != nil {
		return r, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("rabbitmq")
		if err != nil {
			return r, fmt.Errorf("harness: rabbitmq: running as root but there is no rabbitmq user (%v); install with: %s", err, InstallCommand)
		}
		r.uid, _ = strconv.Atoi(u.Uid)
		r.gid, _ = strconv.Atoi(u.Gid)
		r.cred = &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.gid)}
	}
	return r, nil
}

// StartRabbitCluster starts n rabbitmq-server nodes, each with its own
// node name, ports, data and log directories, config file and plugins file
// (no plugins). Node 1 boots first; nodes 2..n then boot in parallel and
// join it through classic_config peer discovery (a node that does not is
// joined with rabbitmqctl stop_app, reset, join_cluster, start_app). It
// returns when rabbitmqctl cluster_status lists n running nodes.
func StartRabbitCluster(n int) (*RabbitCluster, error) {
	if n < 1 {
		return nil, errors.New("harness: rabbitmq: need at least one node")
	}
	run, err := rabbitBins()
	if err != nil {
		return nil, err
	}
	c, err := newRabbitCluster(n, run)
	if err != nil {
		return nil, err
	}
	if err := c.start(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// NewRabbitCluster starts an n-node cluster for a test and closes it when
// the test ends.
func NewRabbitCluster(t testing.TB, n int) *RabbitCluster {
	t.Helper()
	c, err := StartRabbitCluster(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newRabbitCluster(n int, run rabbitRun) (*RabbitCluster, error) {
	dir, err := mkTemp("rabbit")
	if err != nil {
		return nil, err
	}
	c := &RabbitCluster{User: "guest", Password: "guest", Dir: dir, Cookie: randString(24)}
	fail := func(err error) (*RabbitCluster, error) {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("harness: rabbitmq: %w", err)
	}
	if run.cred != nil {
		if err := checkReachable(dir); err != nil {
			return fail(err)
		}
	}
	home := filepath.Join(dir, "home")
	prefix := fmt.Sprintf("amb%d%s", os.Getpid(), strings.ToLower(randString(4)))
	for i := range n {
		nd := filepath.Join(dir, strconv.Itoa(i+1))
		node := &RabbitNode{Name: fmt.Sprintf("%s-%d@localhost", prefix, i+1), Dir: nd, c: c, server: run.server}
		node.LogPath = filepath.Join(nd, "log", node.Name+".log")
		if err := node.newPorts(); err != nil {
			return fail(err)
		}
		for _, sub := range []string{"mnesia", "log"} {
			if err := os.MkdirAll(filepath.Join(nd, sub), 0o755); err != nil {
				return fail(err)
			}
		}
		c.Nodes = append(c.Nodes, node)
	}
	files := map[string]string{
		// Our own empty env file: the system's sets NODENAME=rabbit@localhost.
		"rabbitmq-env.conf": "",
		// No listeners here: RABBITMQ_NODE_PORT sets the AMQP one. Blank
		// nodes other than node 1 join node 1 when they first boot.
		"rabbitmq.conf": "log.console = false\n" +
			"log.file.level = info\n" +
			"cluster_formation.peer_discovery_backend = classic_config\n" +
			"cluster_formation.classic_config.nodes.1 = " + c.Nodes[0].Name + "\n",
		"enabled_plugins": "[].\n",
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fail(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fail(err)
		}
	}
	// Erlang refuses a cookie file others can read.
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(c.Cookie), 0o400); err != nil {
		return fail(err)
	}
	if run.cred != nil {
		if err := chownR(dir, run.uid, run.gid); err != nil {
			return fail(err)
		}
	}
	c.run = run
	return c, nil
}

// newPorts gives a node that has never booted fresh AMQP and distribution
// ports and the environment that goes with them.
func (n *RabbitNode) newPorts() error {
	ports, err := FreePorts(2)
	if err != nil {
		return err
	}
	n.Port, n.DistPort, n.AMQPAddr = ports[0], ports[1], addr(ports[0])
	dir := n.c.Dir
	n.env = append(rabbitBaseEnv(filepath.Join(dir, "home"), dir),
		"RABBITMQ_NODENAME="+n.Name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.DistPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.Dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.Dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(n.Dir, "pid"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		// Exec the VM in place of the script, so the process we start is
		// beam itself: SIGTERM stops it cleanly and Pdeathsig reaches it.
		// -noinput keeps it off stdin all the same.
		"RABBITMQ_ALLOW_INPUT=true",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-noinput -kernel inet_dist_use_interface {127,0,0,1}",
	)
	return nil
}

// firstStart boots a node for the first time, moving it to fresh ports
// if another process took one of its ports in the meantime.
func (n *RabbitNode) firstStart() error {
	for attempt := 0; ; attempt++ {
		err := n.Start()
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "in use") && !strings.Contains(err.Error(), "eaddrinuse") {
			return err
		}
		if err := n.newPorts(); err != nil {
			return err
		}
	}
}

// rabbitBaseEnv is the environment every rabbit process (server and CLI)
// gets; nothing is inherited from the caller.
func rabbitBaseEnv(home, dir string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf"),
	}
}

func (c *RabbitCluster) start() error {
	// Node 1 first. The others then boot in parallel and, being blank,
	// join it by classic_config peer discovery as they boot: one boot per
	// node instead of boot, stop_app, join_cluster, start_app. Any node
	// that still comes up outside the cluster is joined by hand below.
	first, rest := c.Nodes[0], c.Nodes[1:]
	if err := first.firstStart(); err != nil {
		return err
	}
	if len(rest) == 0 {
		return nil
	}
	if err := eachNode(rest, (*RabbitNode).firstStart); err != nil {
		return err
	}
	running, err := c.RunningNodes()
	if err != nil {
		return err
	}
	if len(running) == len(c.Nodes) {
		return nil
	}
	in := map[string]bool{}
	for _, r := range running {
		in[r] = true
	}
	for _, n := range rest {
		if in[n.Name] {
			continue
		}
		for _, args := range [][]string{{"stop_app"}, {"reset"}, {"join_cluster", first.Name}, {"start_app"}} {
			if _, err := n.Ctl(args...); err != nil {
				return err
			}
		}
	}
	return waitFor(nil, 30*time.Second, 500*time.Millisecond, func() error {
		running, err := c.RunningNodes()
		if err != nil {
			return err
		}
		if len(running) != len(c.Nodes) {
			return fmt.Errorf("harness: rabbitmq: cluster_status lists %d running nodes, want %d: %v", len(running), len(c.Nodes), running)
		}
		return nil
	})
}

func eachNode(nodes []*RabbitNode, fn func(*RabbitNode) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = fn(n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// URL returns the AMQP URL of node i (0-based) with the cluster's user.
func (c *RabbitCluster) URL(i int) string {
	u := url.URL{Scheme: "amqp", User: url.UserPassword(c.User, c.Password), Host: c.Nodes[i].AMQPAddr, Path: "/"}
	return u.String()
}

// URLs returns the AMQP URLs of every node.
func (c *RabbitCluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i := range c.Nodes {
		urls[i] = c.URL(i)
	}
	return urls
}

// Addrs returns every node's AMQP address.
func (c *RabbitCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.AMQPAddr
	}
	return addrs
}

// RunningNodes returns the running_nodes of rabbitmqctl cluster_status,
// asked of the first running node.
func (c *RabbitCluster) RunningNodes() ([]string, error) {
	var lastErr error = errors.New("harness: rabbitmq: no running node")
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		out, err := n.Ctl("cluster_status", "--formatter", "json")
		if err != nil {
			lastErr = err
			continue
		}
		var st struct {
			RunningNodes []string `json:"running_nodes"`
		}
		if err := json.Unmarshal([]byte(jsonPart(out)), &st); err != nil {
			return nil, fmt.Errorf("harness: rabbitmq: cluster_status: %w: %s", err, out)
		}
		return st.RunningNodes, nil
	}
	return nil, lastErr
}

// jsonPart drops anything the CLI prints before the JSON document.
func jsonPart(s string) string {
	if i := strings.IndexByte(s, '{'); i > 0 {
		return s[i:]
	}
	return s
}

// Close kills every node and removes the cluster's directory.
func (c *RabbitCluster) Close() error {
	_ = eachNode(c.Nodes, func(n *RabbitNode) error { return n.Kill() })
	return os.RemoveAll(c.Dir)
}

// Start boots the node (again, after Stop or Kill: it rejoins its
// cluster) and waits until RabbitMQ reports startup complete.
func (n *RabbitNode) Start() error {
	n.mu.Lock()
	if n.p != nil && !n.p.exited() {
		n.mu.Unlock()
		return fmt.Errorf("harness: rabbitmq %s: already running", n.Name)
	}
	var logOff int64
	if st, err := os.Stat(n.LogPath); err == nil {
		logOff = st.Size()
	}
	stdout := filepath.Join(n.Dir, "stdout.log")
	p, err := startProc("rabbitmq-server "+n.Name, n.server, nil, n.env, n.c.Dir, stdout, n.c.run.cred)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	n.p = p
	n.mu.Unlock()

	// What rabbitmqctl await_startup waits for, without paying for a CLI
	// run (an Erlang VM and Elixir boot, over a second of CPU) per poll.
	err = waitFor(p, rabbitBootTimeout, 50*time.Millisecond, func() error {
		if !logContains(n.LogPath, logOff, "Server startup complete") {
			return errors.New("no \"Server startup complete\" in the log yet")
		}
		c, err := net.DialTimeout("tcp", n.AMQPAddr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		p.kill()
		return withLog(withLog(fmt.Errorf("harness: rabbitmq %s: %w", n.Name, err), stdout), n.LogPath)
	}
	return nil
}

// logContains reports whether the file, from offset on, holds s.
func logContains(path string, off int64, s string) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < off {
		return false
	}
	return strings.Contains(string(b[off:]), s)
}

// Stop shuts the node down cleanly (SIGTERM to the Erlang VM, which runs
// the same shutdown as rabbitmqctl stop) and waits for it to exit, killing
// it after a grace period. Its data stays for Start.
func (n *RabbitNode) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return nil
	}
	return n.p.stop(rabbitStopGrace)
}

// Kill SIGKILLs the node's processes, as a crash would.
func (n *RabbitNode) Kill() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		n.p.kill()
	}
	return nil
}

// Running reports whether the node's VM is alive.
func (n *RabbitNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p != nil && !n.p.exited()
}

// Pid returns the process id of the node's Erlang VM (beam.smp), 0 when it is not running.
func (n *RabbitNode) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p.livePid()
}

// URL returns the node's AMQP URL with the cluster's user.
func (n *RabbitNode) URL() string {
	u := url.URL{Scheme: "amqp", User: url.UserPassword(n.c.User, n.c.Password), Host: n.AMQPAddr, Path: "/"}
	return u.String()
}

// LogTail returns the last lines of the node's RabbitMQ log.
func (n *RabbitNode) LogTail(lines int) string { return logTail(n.LogPath, lines) }

// Ctl runs rabbitmqctl -n <node> args... with the cluster's cookie, as the
// user the nodes run as, and returns its combined output.
func (n *RabbitNode) Ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rabbitCtlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.c.run.ctl, append([]string{"-n", n.Name}, args...)...)
	cmd.Env = rabbitBaseEnv(filepath.Join(n.c.Dir, "home"), n.c.Dir)
	cmd.Dir = n.c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: n.c.run.cred}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("harness: rabbitmqctl -n %s %s: %w\n%s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// checkReachable makes sure another user can reach dir: every ancestor
// must be searchable by others.
func checkReachable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by the rabbitmq user; set TMPDIR to a directory it can reach", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func chownR(root string, uid, gid int) error {
	return filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func randString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}
