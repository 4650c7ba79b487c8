package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	redisStartTimeout = 15 * time.Second
	redisStopGrace    = 10 * time.Second
	redisDialTimeout  = time.Second
)

// RedisNode is one redis-server process on 127.0.0.1.
type RedisNode struct {
	Addr    string // 127.0.0.1:Port
	Port    int
	Dir     string // working directory: data, nodes.conf, redis.log
	LogPath string

	bin  string
	args []string // everything after the port; fixed for restarts

	mu sync.Mutex
	p  *proc
}

// StartRedisNode starts one redis-server on a free port with persistence
// off, extraArgs appended to the command line (so they override the
// defaults), and waits until it answers PING.
func StartRedisNode(extraArgs ...string) (*RedisNode, error) {
	return startRedisNode(false, extraArgs)
}

func startRedisNode(cluster bool, extraArgs []string) (*RedisNode, error) {
	bin, err := lookBin("redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := mkTemp("redis")
	if err != nil {
		return nil, err
	}
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--logfile", "",
		// replicas sync at once, not after the default 5 s wait for more
		"--repl-diskless-sync-delay", "0"}
	if cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000")
	}
	args = append(args, extraArgs...)
	n := &RedisNode{Dir: dir, LogPath: filepath.Join(dir, "redis.log"), bin: bin, args: args}
	// Another process may take a free port before redis binds it: retry
	// with a fresh port when the log says so.
	for attempt := 0; ; attempt++ {
		var port int
		if cluster {
			port, err = freeClusterPort()
		} else {
			port, err = FreePort()
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		n.Port, n.Addr = port, addr(port)
		err = n.start()
		if err == nil {
			return n, nil
		}
		if attempt < 3 && strings.Contains(logTail(n.LogPath, 20), "in use") {
			continue
		}
		_ = os.RemoveAll(dir)
		return nil, err
	}
}

// start runs the process and waits for PING. Callers hold no lock.
func (n *RedisNode) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil && !n.p.exited() {
		return fmt.Errorf("harness: redis %s: already running", n.Addr)
	}
	args := append([]string{"--port", strconv.Itoa(n.Port)}, n.args...)
	p, err := startProc("redis-server "+n.Addr, n.bin, args, nil, n.Dir, n.LogPath, nil)
	if err != nil {
		return err
	}
	n.p = p
	err = waitFor(p, redisStartTimeout, 20*time.Millisecond, func() error {
		_, err := redisDo(n.Addr, redisDialTimeout, "PING")
		if err != nil && strings.Contains(err.Error(), "NOAUTH") {
			return nil // alive, just password protected
		}
		return err
	})
	if err != nil {
		p.kill()
		return withLog(fmt.Errorf("harness: redis %s: %w", n.Addr, err), n.LogPath)
	}
	return nil
}

// Stop shuts the server down with SIGTERM (SIGKILL after a grace period)
// and waits for it to exit. The directory is kept for Restart.
func (n *RedisNode) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return nil
	}
	return n.p.stop(redisStopGrace)
}

// Kill SIGKILLs the server, as a crash would, and waits for it to exit.
func (n *RedisNode) Kill() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		n.p.kill()
	}
	return nil
}

// Restart starts the server again on the same port and directory (a
// cluster node keeps its identity from nodes.conf), stopping it first if
// it is still running, and waits for PING.
func (n *RedisNode) Restart() error {
	if err := n.Stop(); err != nil {
		return err
	}
	return n.start()
}

// Running reports whether the process is alive.
func (n *RedisNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p != nil && !n.p.exited()
}

// Pid returns the process id of the redis-server, 0 when it is not running.
func (n *RedisNode) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p.livePid()
}

// Close kills the server and removes its directory.
func (n *RedisNode) Close() error {
	_ = n.Kill()
	return os.RemoveAll(n.Dir)
}

// LogTail returns the last lines of the server's log.
func (n *RedisNode) LogTail(lines int) string { return logTail(n.LogPath, lines) }

// Do sends one command and returns the reply as text (arrays joined by
// newlines). For setup and inspection; drive code under test with a real
// client.
func (n *RedisNode) Do(args ...string) (string, error) {
	return redisDo(n.Addr, 5*time.Second, args...)
}

// StartRedis starts n standalone redis-server nodes in parallel.
func StartRedis(n int, extraArgs ...string) ([]*RedisNode, error) {
	return startRedisNodes(n, false, extraArgs)
}

func startRedisNodes(n int, cluster bool, extraArgs []string) ([]*RedisNode, error) {
	nodes := make([]*RedisNode, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { nodes[i], errs[i] = startRedisNode(cluster, extraArgs) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			_ = CloseRedis(nodes)
			return nil, err
		}
	}
	return nodes, nil
}

// RedisNodes starts n standalone nodes for a test and closes them when it
// ends.
func RedisNodes(t testing.TB, n int, extraArgs ...string) []*RedisNode {
	t.Helper()
	nodes, err := StartRedis(n, extraArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = CloseRedis(nodes) })
	return nodes
}

// CloseRedis closes every non-nil node.
func CloseRedis(nodes []*RedisNode) error {
	var errs []error
	for _, n := range nodes {
		if n != nil {
			if err := n.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return joinErrs(errs)
}

// RedisAddrs returns the nodes' addresses.
func RedisAddrs(nodes []*RedisNode) []string {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	return addrs
}
