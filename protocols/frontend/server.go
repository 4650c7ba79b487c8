package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Handler serves one client connection until it ends. It returns the
// reason the connection closed. The server closes conn afterwards.
type Handler func(ctx context.Context, conn net.Conn) CloseReason

// Options configure a Server.
type Options struct {
	Name           string // "redis", "kafka", "amqp": metric and log label
	MaxConnections int    // 0 = no limit
	// Reject, when set, writes the protocol's own error to a client over
	// the connection limit before it is closed.
	Reject  func(conn net.Conn)
	Logger  *slog.Logger
	Metrics *Metrics // may be nil
	// OnForce, when set, runs once the drain deadline passed, before the
	// remaining connections are closed and their handlers waited for:
	// it ends what the handlers may be waiting on (backend replies), so
	// that the deadline bounds the shutdown.
	OnForce func()
}

// Server accepts connections and runs a Handler for each.
type Server struct {
	opts    Options
	handler Handler
	log     *slog.Logger

	ctx    context.Context // cancelled when shutdown forces connections closed
	cancel context.CancelFunc

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	closing  bool
	wg       sync.WaitGroup
	active   atomic.Int64
	draining chan struct{} // closed when Shutdown starts
	forced   atomic.Bool   // the drain deadline passed: connections left are being closed
}

// NewServer returns a server that runs h for every connection.
func NewServer(opts Options, h Handler) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:     opts,
		handler:  h,
		log:      opts.Logger.With("component", "frontend", "frontend", opts.Name),
		ctx:      ctx,
		cancel:   cancel,
		conns:    map[net.Conn]struct{}{},
		draining: make(chan struct{}),
	}
}

// Draining is closed when Shutdown starts: handlers stop reading new
// requests at their next boundary and finish what is in flight.
func (s *Server) Draining() <-chan struct{} { return s.draining }

// IsDraining reports whether Shutdown has begun.
func (s *Server) IsDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// Forced reports that the drain deadline passed and the connections left
// are being closed.
func (s *Server) Forced() bool { return s.forced.Load() }

// Active is the number of open client connections.
func (s *Server) Active() int64 { return s.active.Load() }

// Addr is the listener's address, once Serve runs.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("frontend: server closed")

// Serve accepts on ln until Shutdown (then it returns nil) or a fatal
// accept error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscallEMFILE) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "error", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("frontend %s: accept: %w", s.opts.Name, err)
		}
		backoff = 0
		if !s.track(conn) {
			continue
		}
		go s.serveConn(conn)
	}
}

// track registers conn, or rejects it over the limit or while closing.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		conn.Close()
		return false
	}
	if max := s.opts.MaxConnections; max > 0 && len(s.conns) >= max {
		s.mu.Unlock()
		s.opts.Metrics.rejected(s.opts.Name)
		s.log.Warn("connection limit reached; refusing client", "client", conn.RemoteAddr().String(), "max_connections", max)
		if s.opts.Reject != nil {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			s.opts.Reject(conn)
		}
		conn.Close()
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.active.Add(1)
	s.opts.Metrics.opened(s.opts.Name)
	return true
}

func (s *Server) serveConn(conn net.Conn) {
	reason := ReasonPanic
	defer func() {
		if r := recover(); r != nil {
			s.opts.Metrics.panicked(s.opts.Name)
			s.log.Error("panic serving client; connection closed", "client", conn.RemoteAddr().String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		s.active.Add(-1)
		if s.forced.Load() && reason != ReasonPanic {
			// Closed by the drain deadline: whatever the handler saw
			// (a failed read or write), the cause is the shutdown.
			reason = ReasonShutdown
		}
		s.opts.Metrics.closed(s.opts.Name, reason)
		s.wg.Done()
	}()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAlive(true)
	}
	reason = s.handler(s.ctx, conn)
}

// Shutdown stops accepting, signals Draining, waits for the connections to
// end until ctx is done, then closes the rest and waits for their
// handlers.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closing = true
	close(s.draining)
	if s.ln != nil {
		s.ln.Close()
	}
	// Wake handlers blocked reading an idle client: they see Draining
	// and close; a handler busy with a request finishes it first.
	now := time.Now()
	for c := range s.conns {
		_ = c.SetReadDeadline(now)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.forced.Store(true)
	if s.opts.OnForce != nil {
		s.opts.OnForce()
	}
	s.mu.Lock()
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	n := len(conns)
	// Close may wait for a handler's read in progress to return; close
	// them all at once, outside the lock the handlers' exits take.
	var cw sync.WaitGroup
	for _, c := range conns {
		cw.Go(func() { c.Close() })
	}
	cw.Wait()
	s.log.Warn("drain deadline passed; closed remaining connections", "connections", n)
	<-done
	return nil
}
