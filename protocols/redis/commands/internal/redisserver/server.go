// Package redisserver starts a throwaway redis-server on a free loopback port
// and talks RESP2/RESP3 to it. It also parses COMMAND and COMMAND DOCS
// replies into a plain model. It serves the command-table generator
// (../gen) and the tests of package commands; the commands package itself
// never imports it.
package redisserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled is returned by Start when the redis-server binary is missing.
var ErrNotInstalled = errors.New("redisserver: redis-server binary not found (install it: apt-get install -y redis-server)")

// Server is a redis-server process started by Start. It binds 127.0.0.1
// only, saves nothing and keeps its working directory in a temporary folder.
type Server struct {
	Addr string

	cmd  *exec.Cmd
	dir  string
	log  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start starts bin (a path or a name looked up in PATH; "" means
// "redis-server") on a free port of 127.0.0.1 and waits until it answers PING.
func Start(bin string) (*Server, error) {
	if bin == "" {
		bin = "redis-server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(path)
		if err == nil {
			return s, nil
		}
		lastErr = err // most likely the free port was taken meanwhile: retry
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(path string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("redisserver: free port: %w", err)
	}
	dir, err := os.MkdirTemp("", "ambassador-redis-")
	if err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		dir:  dir,
		log:  &lockedBuffer{},
		done: make(chan struct{}),
	}
	s.cmd = exec.Command(path,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", "",
	)
	s.cmd.Dir = dir
	s.cmd.SysProcAttr = procAttr()
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("redisserver: start %s: %w", path, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("redisserver: redis-server exited at start-up:\n%s", s.log.String())
		default:
		}
		if c, err := Dial(s.Addr); err == nil {
			v, err := c.Do("PING")
			c.Close()
			if err == nil && v.Str == "PONG" {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("redisserver: redis-server on %s did not answer PING within 10s:\n%s", s.Addr, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the server (SIGTERM, then SIGKILL after 5s) and removes its
// directory.
func (s *Server) Close() error {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return os.RemoveAll(s.dir)
}

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.log.String() }
