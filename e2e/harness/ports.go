package harness

import (
	"fmt"
	"net"
	"strconv"
	"sync"
)

// handed keeps every port this process has handed out, so two backends
// started by one test binary never get the same port even after the first
// has closed its listener.
var handed struct {
	mu    sync.Mutex
	ports map[int]bool
}

// FreePort returns a 127.0.0.1 TCP port that was free when asked and has
// not been returned before by this process. Another process may still
// take it before it is used; starters that can detect that retry.
func FreePort() (int, error) {
	return freePortWhere(func(int) bool { return true })
}

// freePortWhere returns a free port p for which ok(p) holds; ok runs with
// handed.mu held.
func freePortWhere(ok func(int) bool) (int, error) {
	handed.mu.Lock()
	defer handed.mu.Unlock()
	if handed.ports == nil {
		handed.ports = make(map[int]bool)
	}
	var lastErr error
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			lastErr = err
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if handed.ports[port] || !ok(port) {
			continue
		}
		handed.ports[port] = true
		return port, nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no port satisfied the constraint")
	}
	return 0, fmt.Errorf("harness: free port: %w", lastErr)
}

// freeClusterPort returns a free port p whose Redis Cluster bus port
// p+10000 is free too; both are marked as handed out.
func freeClusterPort() (int, error) {
	p, err := freePortWhere(func(p int) bool {
		return p+10000 <= 65535 && !handed.ports[p+10000] && portFree(p+10000)
	})
	if err != nil {
		return 0, err
	}
	handed.mu.Lock()
	handed.ports[p+10000] = true
	handed.mu.Unlock()
	return p, nil
}

// portFree reports whether port can be bound on 127.0.0.1 now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// FreePorts returns n distinct free ports.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	return ports, nil
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
