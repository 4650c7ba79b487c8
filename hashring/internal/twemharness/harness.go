// Package twemharness runs real redis-server and nutcracker (twemproxy)
// processes on loopback ports and records where nutcracker places keys. It
// backs the hashring package's golden-vector generator and its live
// cross-check test; nothing else should need it.
package twemharness

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// InstallHint is the fix to print when a binary is missing.
const InstallHint = "install it: apt-get install -y nutcracker redis-server"

// ErrMissingBinary is returned when redis-server or nutcracker is not on PATH.
var ErrMissingBinary = errors.New("twemharness: binary not found")

// CheckBinaries reports whether redis-server and nutcracker can be run.
func CheckBinaries() error {
	for _, b := range []string{"redis-server", "nutcracker"} {
		if _, err := exec.LookPath(b); err != nil {
			// nutcracker lives in /usr/sbin, which is not always on PATH.
			if _, err2 := os.Stat(filepath.Join("/usr/sbin", b)); err2 == nil {
				continue
			}
			return fmt.Errorf("%w: %s (%s)", ErrMissingBinary, b, InstallHint)
		}
	}
	return nil
}

func binary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join("/usr/sbin", name)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Proc is a started child process serving RESP on Addr.
type Proc struct {
	Addr string
	Port int
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
	log  string
}

// Stop kills the process (and its process group) and waits for it.
func (p *Proc) Stop() {
	p.once.Do(func() {
		if p.cmd.Process != nil {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

func start(ctx context.Context, port int, logPath string, name string, args ...string) (*Proc, error) {
	cmd := exec.Command(binary(name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("twemharness: start %s: %w", name, err)
	}
	p := &Proc{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := p.waitReady(ctx); err != nil {
		p.Stop()
		out, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("twemharness: %s on %s not ready: %w; log:\n%s", name, p.Addr, err, tail(out, 2000))
	}
	return p, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitReady polls with PING until the process answers or ctx ends.
func (p *Proc) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		select {
		case <-p.done:
			return errors.New("process exited")
		default:
		}
		c, err := Dial(p.Addr)
		if err == nil {
			r, err := c.Do("PING")
			c.Close()
			if err == nil && r.Str == "PONG" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StartRedis starts redis-server on a free loopback port with no
// persistence, its files in dir.
func StartRedis(ctx context.Context, dir string) (*Proc, error) {
	var lastErr error
	for range 3 { // the free port can be taken before redis binds it
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		sub := filepath.Join(dir, "redis-"+strconv.Itoa(port))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, err
		}
		p, err := start(ctx, port, filepath.Join(sub, "out.log"), "redis-server",
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no",
			"--dir", sub)
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// Server is one line of a nutcracker pool's servers list.
type Server struct {
	Addr   string // host:port
	Weight int
	Name   string // optional given name
}

// ConfLine is the server as written in nutcracker's YAML:
// "host:port:weight [name]".
func (s Server) ConfLine() string {
	line := s.Addr + ":" + strconv.Itoa(s.Weight)
	if s.Name != "" {
		line += " " + s.Name
	}
	return line
}

// Pool is the part of a nutcracker pool that decides placement.
type Pool struct {
	Hash         string
	Distribution string
	HashTag      string
	Servers      []Server
}

// Config renders a nutcracker YAML configuration listening on listen.
func (pl Pool) Config(listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pool:\n  listen: %s\n  redis: true\n", listen)
	fmt.Fprintf(&b, "  hash: %s\n  distribution: %s\n", pl.Hash, pl.Distribution)
	if pl.HashTag != "" {
		fmt.Fprintf(&b, "  hash_tag: %q\n", pl.HashTag)
	}
	b.WriteString("  auto_eject_hosts: false\n  timeout: 5000\n  server_connections: 1\n  servers:\n")
	for _, s := range pl.Servers {
		fmt.Fprintf(&b, "   - %s\n", s.ConfLine())
	}
	return b.String()
}

// StartNutcracker writes pl's configuration into dir and starts nutcracker
// on free loopback ports (proxy and stats).
func StartNutcracker(ctx context.Context, dir string, pl Pool) (*Proc, error) {
	var lastErr error
	for range 3 {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		stats, err := FreePort()
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, "nutcracker-"+strconv.Itoa(port)+".yml")
		if err := os.WriteFile(conf, []byte(pl.Config("127.0.0.1:"+strconv.Itoa(port))), 0o644); err != nil {
			return nil, err
		}
		base := strings.TrimSuffix(conf, ".yml")
		p, err := start(ctx, port, base+".out", "nutcracker",
			"-c", conf, "-s", strconv.Itoa(stats), "-a", "127.0.0.1",
			"-o", base+".log", "-p", base+".pid", "-v", "4")
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// Placement sets every key through proxy and then asks each backend which
// keys it holds. It returns, for each key, the index in backends of the
// backend that holds it. Backends are flushed first.
func Placement(proxy *Proc, backends []*Proc, keys [][]byte) ([]int, error) {
	for _, b := range backends {
		c, err := Dial(b.Addr)
		if err != nil {
			return nil, err
		}
		r, err := c.Do("FLUSHALL")
		c.Close()
		if err != nil || r.Str != "OK" {
			return nil, fmt.Errorf("twemharness: FLUSHALL on %s: %v %v", b.Addr, r, err)
		}
	}

	c, err := Dial(proxy.Addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	const batch = 256
	for i := 0; i < len(keys); i += batch {
		end := min(i+batch, len(keys))
		for _, k := range keys[i:end] {
			c.Send([]byte("SET"), k, []byte("1"))
		}
		for j := i; j < end; j++ {
			r, err := c.Receive()
			if err != nil {
				return nil, fmt.Errorf("twemharness: SET %q through nutcracker: %w", keys[j], err)
			}
			if r.Str != "OK" {
				return nil, fmt.Errorf("twemharness: SET %q through nutcracker: %+v", keys[j], r)
			}
		}
	}

	where := make(map[string]int, len(keys))
	for bi, b := range backends {
		bc, err := Dial(b.Addr)
		if err != nil {
			return nil, err
		}
		r, err := bc.Do("KEYS", "*")
		bc.Close()
		if err != nil {
			return nil, err
		}
		for _, k := range r.Array {
			if prev, dup := where[k.Str]; dup {
				return nil, fmt.Errorf("twemharness: key %q on backends %d and %d", k.Str, prev, bi)
			}
			where[k.Str] = bi
		}
	}
	out := make([]int, len(keys))
	for i, k := range keys {
		bi, ok := where[string(k)]
		if !ok {
			return nil, fmt.Errorf("twemharness: key %q set through nutcracker is on no backend", k)
		}
		out[i] = bi
	}
	if len(where) != len(keys) {
		return nil, fmt.Errorf("twemharness: backends hold %d keys, want %d (duplicate keys given?)", len(where), len(keys))
	}
	return out, nil
}

// Reply is a parsed RESP reply.
type Reply struct {
	Str   string // simple string or bulk string
	Err   string // error reply
	Int   int64
	Nil   bool
	Array []Reply
}

// Conn is a minimal RESP client connection.
type Conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// Dial connects to a RESP server.
func Dial(addr string) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &Conn{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Send buffers one command.
func (c *Conn) Send(args ...[]byte) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n", len(a))
		c.w.Write(a)
		c.w.WriteString("\r\n")
	}
}

// Receive flushes what was sent and reads one reply.
func (c *Conn) Receive() (Reply, error) {
	if c.w.Buffered() > 0 {
		if err := c.w.Flush(); err != nil {
			return Reply{}, err
		}
	}
	return c.read()
}

// Do sends one command and reads its reply.
func (c *Conn) Do(args ...string) (Reply, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	c.Send(bs...)
	return c.Receive()
}

func (c *Conn) line() ([]byte, error) {
	l, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(l, []byte("\r\n")) {
		return nil, fmt.Errorf("twemharness: bad RESP line %q", l)
	}
	return l[:len(l)-2], nil
}

func (c *Conn) read() (Reply, error) {
	l, err := c.line()
	if err != nil {
		return Reply{}, err
	}
	if len(l) == 0 {
		return Reply{}, errors.New("twemharness: empty RESP line")
	}
	body := string(l[1:])
	switch l[0] {
	case '+':
		return Reply{Str: body}, nil
	case '-':
		return Reply{Err: body}, nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		return Reply{Int: n}, err
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return Reply{}, err
		}
		if n < 0 {
			return Reply{Nil: true}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return Reply{}, err
		}
		return Reply{Str: string(buf[:n])}, nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return Reply{}, err
		}
		if n < 0 {
			return Reply{Nil: true}, nil
		}
		arr := make([]Reply, n)
		for i := range arr {
			if arr[i], err = c.read(); err != nil {
				return Reply{}, err
			}
		}
		return Reply{Array: arr}, nil
	}
	return Reply{}, fmt.Errorf("twemharness: unknown RESP type %q", l)
}
