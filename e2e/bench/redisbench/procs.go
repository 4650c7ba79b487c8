package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ambassador-proxy/ambassador/e2e/harness"
)

// ambassador is the bin/ambassador child process.
type ambassador struct {
	Addr, AdminAddr string
	Env             []string // the variables set for it (besides PATH and HOME)
	Bin             string
	LogPath         string
	cmd             *exec.Cmd
	done            chan struct{}
}

// passEnv are variables of this process passed on to the ambassador, so
// that runtime knobs can be tried (GOMAXPROCS=1 make bench-redis).
var passEnv = []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"}

// startAmbassador runs bin over the nodes on free ports and waits until
// its Redis frontend answers PING and /readyz says 200.
func startAmbassador(bin string, nodes []string, dir string) (*ambassador, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("ambassador binary: %w (run make build)", err)
	}
	for attempt := 0; ; attempt++ {
		ports, err := harness.FreePorts(2)
		if err != nil {
			return nil, err
		}
		a := &ambassador{
			Addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
			AdminAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
			Bin:       bin,
			LogPath:   filepath.Join(dir, fmt.Sprintf("ambassador-%d.log", attempt)),
			done:      make(chan struct{}),
		}
		a.Env = []string{
			"REDIS_CLUSTER_NODES=" + strings.Join(nodes, ","),
			"REDIS_LISTEN=" + a.Addr,
			"ADMIN_LISTEN=" + a.AdminAddr,
			"REDIS_HASH=fnv1a_64",
			"REDIS_DISTRIBUTION=ketama",
			"REDIS_HASH_TAG={}",
			"LOG_LEVEL=warn",
		}
		err = a.start()
		if err == nil {
			return a, nil
		}
		if attempt < 3 && strings.Contains(a.LogTail(20), "in use") {
			continue
		}
		return nil, err
	}
}

func (a *ambassador) start() error {
	logf, err := os.Create(a.LogPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(a.Bin)
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, a.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := harness.StartChild(cmd); err != nil {
		return fmt.Errorf("start ambassador: %w", err)
	}
	a.cmd = cmd
	go func() { _ = cmd.Wait(); close(a.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := a.ready()
		if err == nil {
			return nil
		}
		if a.exited() {
			return fmt.Errorf("ambassador exited during start-up:\n%s", a.LogTail(30))
		}
		if time.Now().After(deadline) {
			a.Stop()
			return fmt.Errorf("ambassador not ready after 20s: %w\n%s", err, a.LogTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *ambassador) ready() error {
	c, err := net.DialTimeout("tcp", a.AdminAddr, time.Second)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET /readyz HTTP/1.0\r\nHost: bench\r\n\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.Contains(line, " 200 ") {
		return fmt.Errorf("/readyz: %q", strings.TrimSpace(line))
	}
	r, err := redisDo(a.Addr, 2*time.Second, "PING")
	if err != nil {
		return err
	}
	if r != "PONG" {
		return fmt.Errorf("PING: %q", r)
	}
	return nil
}

// Pid returns the ambassador's process id.
func (a *ambassador) Pid() int { return a.cmd.Process.Pid }

func (a *ambassador) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to 5 s, then SIGKILLs the process group.
func (a *ambassador) Stop() {
	if a.cmd == nil {
		return
	}
	if !a.exited() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(5 * time.Second):
		}
	}
	_ = syscall.Kill(-a.Pid(), syscall.SIGKILL)
	<-a.done
}

// LogTail returns the last lines of the ambassador's output.
func (a *ambassador) LogTail(n int) string {
	b, err := os.ReadFile(a.LogPath)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// fetchProfile writes a CPU profile of the ambassador (seconds long) to
// path; the admin endpoint serves net/http/pprof.
func (a *ambassador) fetchProfile(ctx context.Context, seconds int, path string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", a.AdminAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Duration(seconds+10) * time.Second))
	fmt.Fprintf(c, "GET /debug/pprof/profile?seconds=%d HTTP/1.0\r\nHost: bench\r\n\r\n", seconds)
	body, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		return err
	}
	head, payload, ok := bytes.Cut(body, []byte("\r\n\r\n"))
	if !ok || !bytes.Contains(head, []byte(" 200 ")) {
		return fmt.Errorf("pprof: %q", firstLine(head))
	}
	return os.WriteFile(path, payload, 0o644)
}

// goMemory reads the Go runtime's gauges from the ambassador's /metrics:
// where its memory is (goroutine stacks or heap) while it holds clients.
func (a *ambassador) goMemory() string {
	c, err := net.DialTimeout("tcp", a.AdminAddr, 2*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
	body, _ := io.ReadAll(c)
	v := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		f := strings.Fields(line)
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			if x, err := strconv.ParseFloat(f[1], 64); err == nil {
				v[f[0]] = x
			}
		}
	}
	if _, ok := v["go_goroutines"]; !ok {
		return ""
	}
	const m = 1 << 20
	return fmt.Sprintf("%.0f goroutines, stacks %.1f MiB, heap in use %.1f MiB, Go runtime total from the OS %.1f MiB",
		v["go_goroutines"], v["go_memstats_stack_inuse_bytes"]/m, v["go_memstats_heap_inuse_bytes"]/m, v["go_memstats_sys_bytes"]/m)
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.TrimSpace(string(l))
}

// redisDo sends one command on a fresh connection and returns the reply
// as text (arrays joined by newlines).
func redisDo(addr string, timeout time.Duration, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(respCommand(args...)); err != nil {
		return "", err
	}
	r, err := readReply(bufio.NewReader(c))
	if err != nil {
		return "", err
	}
	return strings.Join(r, "\n"), nil
}

func respCommand(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

var errNil = errors.New("nil reply")

// readReply reads one RESP2 reply: a simple string, integer or bulk
// string gives one element, an array its elements (nested arrays are
// flattened, a nil element is ""). An error reply is an error.
func readReply(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return []string{line[1:]}, nil
	case '-':
		return nil, fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return nil, errNil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return []string{string(buf[:n])}, nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("bad array length %q", line)
		}
		var out []string
		for range n {
			e, err := readReply(r)
			if errors.Is(err, errNil) {
				e, err = []string{""}, nil
			}
			if err != nil {
				return nil, err
			}
			out = append(out, e...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// placementCheck writes keys through twemproxy and reads them back
// through the ambassador with one MGET (which the ambassador splits by
// node): both must place every key on the same node for the values to
// come back. It returns how many came back right.
func placementCheck(twem, amb string, n int) (int, error) {
	keys := make([]string, n)
	args := []string{"MGET"}
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:placement:%d", i)
		if _, err := redisDo(twem, 5*time.Second, "SET", keys[i], "v"+strconv.Itoa(i)); err != nil {
			return 0, fmt.Errorf("SET through twemproxy: %w", err)
		}
		args = append(args, keys[i])
	}
	got, err := redisDo(amb, 5*time.Second, args...)
	if err != nil {
		return 0, fmt.Errorf("MGET through the ambassador: %w", err)
	}
	vals := strings.Split(got, "\n")
	ok := 0
	for i := range keys {
		if i < len(vals) && vals[i] == "v"+strconv.Itoa(i) {
			ok++
		}
	}
	return ok, nil
}

// copyFile copies an executable.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// versionOf runs bin with args and returns the first non-empty line of
// its output.
func versionOf(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	for line := range strings.Lines(string(out)) {
		if s := strings.TrimSpace(line); s != "" {
			return s
		}
	}
	return "unknown"
}

// lookBin finds a binary in PATH or an sbin directory (nutcracker lives
// in /usr/sbin, often missing from PATH).
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found; install it with: %s", name, harness.InstallCommand)
}

// shellQuote renders argv as a shell command line.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" {
			out[i] = `""`
		} else if strings.ContainsAny(a, " \t\"'$\\{}*?;&|<>()") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// sortedCopy returns a sorted copy of v.
func sortedCopy(v []float64) []float64 {
	c := slices.Clone(v)
	slices.Sort(c)
	return c
}
