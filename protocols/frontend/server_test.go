package frontend_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ambassador-proxy/ambassador/protocols/frontend"
)

// echo answers each line with the same line; "panic" panics, "quit" ends,
// "hold" signals f.holding and waits for f.release before its reply.
// With drain it stops after a reply once the server drains.
func (f *fixture) echo(drain bool) frontend.Handler {
	return func(ctx context.Context, conn net.Conn) frontend.CloseReason {
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if errors.Is(err, io.EOF) {
					return frontend.ReasonClientClosed
				}
				if ctx.Err() != nil {
					return frontend.ReasonShutdown
				}
				return frontend.ReasonReadError
			}
			switch strings.TrimSpace(line) {
			case "panic":
				panic("handler bug")
			case "quit":
				return frontend.ReasonClientClosed
			case "hold":
				f.holding <- struct{}{}
				<-f.release
			}
			if _, err := conn.Write([]byte(line)); err != nil {
				return frontend.ReasonWriteError
			}
			if !drain {
				continue
			}
			select {
			case <-f.s.Draining():
				return frontend.ReasonShutdown
			default:
			}
		}
	}
}

type fixture struct {
	s       *frontend.Server
	reg     *prometheus.Registry
	addr    string
	done    chan error
	holding chan struct{}
	release chan struct{}
}

func start(t *testing.T, opts frontend.Options) *fixture {
	t.Helper()
	return startEcho(t, opts, true)
}

// startEcho starts an echo server; without drain its handlers ignore
// Draining and end only when their connection closes.
func startEcho(t *testing.T, opts frontend.Options, drain bool) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), done: make(chan error, 1), holding: make(chan struct{}, 1), release: make(chan struct{})}
	opts.Name = "echo"
	opts.Metrics = frontend.NewMetrics(f.reg)
	f.s = frontend.NewServer(opts, f.echo(drain))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go func() { f.done <- f.s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.s.Shutdown(ctx)
	})
	return f
}

func (f *fixture) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("echo of %q = %q, %v", msg, got, err)
	}
}

// closedByPeer waits for the server to close c.
func closedByPeer(t *testing.T, c net.Conn, r *bufio.Reader, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := r.ReadByte()
	if err == nil {
		t.Fatalf("read %q, want the connection closed", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestServeAndCount(t *testing.T) {
	f := start(t, frontend.Options{})
	c1, r1 := f.dial(t)
	c2, r2 := f.dial(t)
	roundTrip(t, c1, r1, "hello")
	roundTrip(t, c2, r2, "world")
	if n := f.s.Active(); n != 2 {
		t.Errorf("Active = %d, want 2", n)
	}
	if f.s.Addr() == nil || f.s.Addr().String() != f.addr {
		t.Errorf("Addr = %v, want %s", f.s.Addr(), f.addr)
	}
	if v := value(t, f.reg, "ambassador_frontend_connections", ""); v != 2 {
		t.Errorf("ambassador_frontend_connections = %v, want 2", v)
	}
	c1.Write([]byte("quit\n"))
	closedByPeer(t, c1, r1, time.Second)
	c2.Close()
	waitFor(t, "both connections to end", func() bool {
		return value(t, f.reg, "ambassador_frontend_connections_closed_total", "client_closed") == 2
	})
	if n := f.s.Active(); n != 0 {
		t.Errorf("Active = %d after both closed", n)
	}
	if v := value(t, f.reg, "ambassador_frontend_connections_total", ""); v != 2 {
		t.Errorf("connections_total = %v, want 2", v)
	}
	if v := value(t, f.reg, "ambassador_frontend_connections_closed_total", "client_closed"); v != 2 {
		t.Errorf("closed_total{reason=client_closed} = %v, want 2", v)
	}
	if v := value(t, f.reg, "ambassador_frontend_connections", ""); v != 0 {
		t.Errorf("ambassador_frontend_connections = %v after both closed", v)
	}
}

func TestMaxConnections(t *testing.T) {
	f := start(t, frontend.Options{MaxConnections: 2, Reject: func(c net.Conn) { c.Write([]byte("ERR max clients\n")) }})
	c1, r1 := f.dial(t)
	c2, r2 := f.dial(t)
	roundTrip(t, c1, r1, "a")
	roundTrip(t, c2, r2, "b")
	c3, r3 := f.dial(t)
	_ = c3.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, _ := r3.ReadString('\n')
	if line != "ERR max clients\n" {
		t.Errorf("third client read %q, want the Reject message", line)
	}
	closedByPeer(t, c3, r3, time.Second)
	if v := value(t, f.reg, "ambassador_frontend_connections_rejected_total", ""); v != 1 {
		t.Errorf("rejected_total = %v, want 1", v)
	}
	roundTrip(t, c1, r1, "still served")
	// a freed slot takes a new client
	c2.Close()
	waitFor(t, "c2 to end", func() bool { return f.s.Active() == 1 })
	c4, r4 := f.dial(t)
	roundTrip(t, c4, r4, "in")
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	f := start(t, frontend.Options{})
	c1, r1 := f.dial(t)
	c2, r2 := f.dial(t)
	roundTrip(t, c2, r2, "before")
	c1.Write([]byte("panic\n"))
	closedByPeer(t, c1, r1, time.Second)
	roundTrip(t, c2, r2, "after")
	waitFor(t, "the panicked connection to be counted as closed by a panic", func() bool {
		return value(t, f.reg, "ambassador_frontend_connections_closed_total", "panic") == 1
	})
	if v := value(t, f.reg, "ambassador_frontend_panics_total", ""); v != 1 {
		t.Errorf("panics_total = %v, want 1", v)
	}
	c3, r3 := f.dial(t)
	roundTrip(t, c3, r3, "server still accepts")
}

// TestShutdownDrains: Shutdown stops accepting, lets handlers finish at
// their next boundary, and returns once they have.
func TestShutdownDrains(t *testing.T) {
	f := start(t, frontend.Options{})
	c, r := f.dial(t)
	roundTrip(t, c, r, "x")
	// a request in flight when the shutdown starts
	if _, err := c.Write([]byte("hold\n")); err != nil {
		t.Fatal(err)
	}
	<-f.holding
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- f.s.Shutdown(ctx) }()
	<-f.s.Draining()
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("Serve returned %v after Shutdown, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if conn, err := net.DialTimeout("tcp", f.addr, 200*time.Millisecond); err == nil {
		conn.Close()
		t.Error("the listener still accepts after Shutdown")
	}
	// the in-flight request completes, then the handler ends
	close(f.release)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); got != "hold\n" {
		t.Fatalf("reply to the request in flight = %q, %v", got, err)
	}
	closedByPeer(t, c, r, time.Second)
	start := time.Now()
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Shutdown did not return after the connection drained")
	}
	if time.Since(start) > time.Second {
		t.Error("Shutdown waited for its deadline though the connection had ended")
	}
	if v := value(t, f.reg, "ambassador_frontend_connections_closed_total", "shutdown"); v != 1 {
		t.Errorf("closed_total{reason=shutdown} = %v", v)
	}
}

// TestShutdownDeadline: connections that do not end by the deadline are
// closed, and Shutdown returns soon after it.
func TestShutdownDeadline(t *testing.T) {
	f := startEcho(t, frontend.Options{}, false)
	c, r := f.dial(t)
	roundTrip(t, c, r, "x")
	// a busy handler (not reading) holds the drain until the deadline
	if _, err := c.Write([]byte("hold\n")); err != nil {
		t.Fatal(err)
	}
	<-f.holding
	const drain = 150 * time.Millisecond
	// The handler finishes its request a little after the deadline, when
	// its connection was already closed.
	time.AfterFunc(drain+100*time.Millisecond, func() { close(f.release) })
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := f.s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	took := time.Since(begin)
	if took < drain || took > drain+500*time.Millisecond {
		t.Errorf("Shutdown took %v with a %v deadline", took, drain)
	}
	// the handler's write to its closed connection failed: still a
	// shutdown, not a write error
	if v, w := value(t, f.reg, "ambassador_frontend_connections_closed_total", "shutdown"), value(t, f.reg, "ambassador_frontend_connections_closed_total", "write_error"); v != 1 || w != 0 {
		t.Errorf("closed at the drain deadline: %v shutdown, %v write_error; want 1 and 0", v, w)
	}
	closedByPeer(t, c, r, time.Second)
	// a second Shutdown returns at once
	if err := f.s.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestShutdownClosesIdleAtOnce: handlers blocked reading an idle client
// are woken when the drain starts, so idle clients do not hold it.
func TestShutdownClosesIdleAtOnce(t *testing.T) {
	f := startEcho(t, frontend.Options{}, false)
	c, r := f.dial(t) // idle: its handler blocks reading
	roundTrip(t, c, r, "x")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	if err := f.s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Shutdown took %v with only an idle client", took)
	}
	closedByPeer(t, c, r, time.Second)
	if f.s.Active() != 0 {
		t.Errorf("Active = %d after Shutdown", f.s.Active())
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s := frontend.NewServer(frontend.Options{Name: "x"}, func(context.Context, net.Conn) frontend.CloseReason { return 0 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond); err == nil {
		t.Error("Serve after Shutdown left the listener open")
	}
}

func TestCloseReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := frontend.ReasonClientClosed; r <= frontend.ReasonPanic; r++ {
		name := r.String()
		if name == "" || name == "unknown" || seen[name] {
			t.Errorf("reason %d has name %q", r, name)
		}
		seen[name] = true
	}
	if frontend.CloseReason(99).String() != "unknown" {
		t.Error("an out-of-range reason should be unknown")
	}
}

// value returns name{frontend="echo"[, reason=reason]}, 0 when absent.
func value(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() != reason {
					match = false
				}
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
