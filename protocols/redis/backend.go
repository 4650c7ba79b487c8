package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// nodePool is the frontend's state for one backend node: the shared,
// multiplexed connections (one set per RESP version) and idle dedicated
// connections (for WATCH, blocking commands and Pub/Sub).
type nodePool struct {
	f    *Frontend
	node *cluster.Node
	addr string

	mu     sync.Mutex
	shared [4][]*backendConn // by protocol version (2 or 3)
	idle   []*backendConn    // dedicated connections to reuse
	// held are the dedicated connections handed out (clients' blocking
	// and WATCH connections) and subs the clients' subscription
	// connections: a node removed from the configuration closes them too,
	// or a long-lived client would keep one per removal.
	held    map[*backendConn]struct{}
	subs    map[*psConn]struct{}
	closed  bool
	version string
	warned  atomic.Bool // the cluster-node refusal was logged
}

func (p *nodePool) sharedConn(proto int, clientID uint64) *backendConn {
	p.mu.Lock()
	conns := p.shared[proto]
	if conns == nil {
		n := p.f.poolSize()
		conns = make([]*backendConn, n)
		for i := range conns {
			conns[i] = newBackendConn(p, proto, false)
			if p.closed { // picked just before its node was removed
				conns[i].close(errNodeRemoved)
			}
		}
		p.shared[proto] = conns
	}
	p.mu.Unlock()
	return conns[clientID%uint64(len(conns))]
}

// dedicated returns a connection of the node used by one client only.
func (p *nodePool) dedicated(proto int) *backendConn {
	p.mu.Lock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		bc := p.idle[i]
		p.idle = p.idle[:i]
		if bc.proto == proto && bc.usable() {
			if p.held == nil {
				p.held = map[*backendConn]struct{}{}
			}
			p.held[bc] = struct{}{}
			p.mu.Unlock()
			return bc
		}
		bc.close(errRecycled)
	}
	bc := newBackendConn(p, proto, true)
	if p.closed {
		p.mu.Unlock()
		bc.close(errNodeRemoved)
		return bc
	}
	if p.held == nil {
		p.held = map[*backendConn]struct{}{}
	}
	p.held[bc] = struct{}{}
	p.mu.Unlock()
	return bc
}

const maxIdleDedicated = 8

// release returns a dedicated connection whose state is clean (no WATCH,
// no subscription, nothing pending) for reuse.
func (p *nodePool) release(bc *backendConn) {
	p.mu.Lock()
	delete(p.held, bc)
	p.mu.Unlock()
	if !bc.usable() {
		bc.close(errRecycled)
		return
	}
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdleDedicated {
		p.mu.Unlock()
		bc.close(errRecycled)
		return
	}
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
}

// addSub registers a client's subscription connection to the node, so
// that the node's removal closes it; false when the pool is closed.
func (p *nodePool) addSub(pc *psConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.subs == nil {
		p.subs = map[*psConn]struct{}{}
	}
	p.subs[pc] = struct{}{}
	return true
}

func (p *nodePool) dropSub(pc *psConn) {
	p.mu.Lock()
	delete(p.subs, pc)
	p.mu.Unlock()
}

func (p *nodePool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// discard closes a dedicated connection that will not be reused.
func (p *nodePool) discard(bc *backendConn, err error) {
	p.mu.Lock()
	delete(p.held, bc)
	p.mu.Unlock()
	bc.close(err)
}

func (p *nodePool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*backendConn
	for _, s := range p.shared {
		all = append(all, s...)
	}
	all = append(all, p.idle...)
	p.idle = nil
	for bc := range p.held {
		all = append(all, bc)
	}
	p.held = nil
	subs := p.subs
	p.subs = nil
	p.mu.Unlock()
	for _, bc := range all {
		bc.close(errNodeRemoved)
	}
	for pc := range subs {
		pc.conn.Close() // its relay ends; the client learns of it if it had subscriptions there
	}
}

var (
	errRecycled    = errors.New("connection recycled")
	errNodeRemoved = errors.New("node removed from the configuration")
)

// backendConn is one connection to a node. Requests of many clients are
// appended to out under mu and written by whichever sender finds no write
// in progress, so that concurrent clients' batches merge into one write;
// the reader goroutine matches replies to pending requests in order.
type backendConn struct {
	pool      *nodePool
	proto     int
	dedicated bool

	mu        sync.Mutex
	conn      net.Conn
	gen       uint64 // increments with every connection
	dialing   bool
	writing   bool
	kick      chan struct{} // wakes the writer of the current connection (shared connections)
	lastWrite atomic.Int64  // unix ns of the last write, for latency samples
	inflight  atomic.Int64  // requests queued or sent, not yet answered
	progress  atomic.Int64  // unix ns of the last reply (or of the first request after none)
	kicked    bool
	out       []byte
	spare     []byte
	pending   []*request // sent or queued, awaiting replies, in order
	lastErr   error
	retryAt   time.Time
	backoff   time.Duration
	closed    bool          // closed for good (node removed, dedicated recycled)
	stop      chan struct{} // closed when closed for good: stops the watchdog
}

func newBackendConn(p *nodePool, proto int, dedicated bool) *backendConn {
	bc := &backendConn{pool: p, proto: proto, dedicated: dedicated, stop: make(chan struct{})}
	if !dedicated {
		p.f.goBackground(bc.watchdog)
	}
	return bc
}

func (bc *backendConn) usable() bool {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return bc.conn != nil && !bc.closed && len(bc.pending) == 0
}

const maxKeepBuf = 64 << 10

// send queues the commands in parts (written in order) with their
// requests and writes them unless another sender is writing. The requests
// complete (with a reply or an error) exactly once each. It returns the
// connection generation the requests went to.
func (bc *backendConn) send(parts [][]byte, reqs []*request) uint64 {
	bc.mu.Lock()
	if bc.closed {
		err := bc.lastErr
		bc.mu.Unlock()
		failAll(reqs, bc.pool.addr, err)
		return 0
	}
	if bc.conn == nil && !bc.dialing {
		if now := time.Now(); now.Before(bc.retryAt) {
			err := bc.lastErr
			bc.mu.Unlock()
			failAll(reqs, bc.pool.addr, err)
			return 0
		}
		// Dial on a goroutine of its own: the requests wait in the queue,
		// and the clients' request timeout applies to them (abort).
		bc.dialing = true
		bc.appendLocked(parts, reqs)
		gen := bc.gen + 1
		bc.mu.Unlock()
		bc.pool.f.goBackground(bc.dial)
		return gen
	}
	bc.appendLocked(parts, reqs)
	if bc.dialing || bc.writing {
		gen := bc.gen
		if bc.dialing {
			gen++ // the connection being dialled
		}
		bc.mu.Unlock()
		return gen
	}
	gen := bc.gen
	if bc.dedicated {
		bc.flushLocked()
	} else if !bc.kicked {
		// The writer takes everything appended until it runs, so that the
		// batches of concurrent clients go out in one write.
		bc.kicked = true
		bc.kick <- struct{}{}
	}
	bc.mu.Unlock()
	return gen
}

// dial connects, then starts the connection's reader (and writer) and
// writes what queued meanwhile; on failure it fails what queued.
func (bc *backendConn) dial() {
	conn, err := bc.pool.f.dialBackend(bc.pool, bc.proto)
	bc.mu.Lock()
	bc.dialing = false
	if err == nil && bc.closed {
		go conn.Close() // never used: nothing reads it
		err = bc.lastErr
	}
	if err != nil {
		if errors.Is(err, errClusterNode) && bc.pool.warned.CompareAndSwap(false, true) {
			bc.pool.f.log.Error("backend refused: it is a Redis Cluster node; its requests fail until it is replaced by a standalone node", "node", bc.pool.addr)
		}
		bc.lastErr = err
		bc.backoff = min(max(bc.backoff*2, 50*time.Millisecond), 2*time.Second)
		bc.retryAt = time.Now().Add(bc.backoff)
		pending := bc.pending
		bc.pending = nil
		bc.out = bc.out[:0]
		bc.addInflight(-bc.inflight.Load())
		bc.mu.Unlock()
		bc.pool.node.Observe(0, err)
		failAll(pending, bc.pool.addr, err)
		return
	}
	bc.backoff = 0
	bc.lastErr = nil
	bc.conn = conn
	bc.gen++
	gen := bc.gen
	done := make(chan struct{})
	bc.pool.f.goBackground(func() { bc.readLoop(conn, gen, done) })
	if !bc.dedicated {
		bc.kick = make(chan struct{}, 1)
		kick := bc.kick
		bc.pool.f.goBackground(func() { bc.writeLoop(conn, gen, kick, done) })
		bc.kicked = true
		bc.kick <- struct{}{}
	} else if !bc.writing {
		bc.flushLocked()
	}
	bc.mu.Unlock()
}

// writeLoop writes what clients append to a shared connection, one write
// for everything appended since the last.
func (bc *backendConn) writeLoop(conn net.Conn, gen uint64, kick, done chan struct{}) {
	w := newRawWriter(conn)
	for {
		select {
		case <-kick:
		case <-done:
			return
		}
		// Let the clients that are runnable now append their batches
		// first: one write then carries them all. Yield again while more
		// keeps coming (a few times at most): measured, this merges more
		// requests per write and beats a single yield and no yield.
		runtime.Gosched()
		for range 3 {
			bc.mu.Lock()
			n := len(bc.out)
			bc.mu.Unlock()
			runtime.Gosched()
			bc.mu.Lock()
			grew := len(bc.out) > n
			bc.mu.Unlock()
			if !grew {
				break
			}
		}
		bc.mu.Lock()
		bc.kicked = false
		if bc.gen != gen || bc.conn != conn {
			bc.mu.Unlock()
			return
		}
		buf := bc.out
		bc.out = bc.spare[:0]
		bc.spare = nil
		bc.mu.Unlock()
		if len(buf) == 0 {
			bc.mu.Lock()
			bc.spare = buf
			bc.mu.Unlock()
			continue
		}
		now := time.Now()
		bc.lastWrite.Store(now.UnixNano())
		_ = conn.SetWriteDeadline(now.Add(bc.pool.f.requestTimeout())) // read each time: a reload may change it
		err := w.write(buf)
		if err != nil {
			conn.Close() // the reader fails what is pending
		}
		bc.mu.Lock()
		if cap(buf) <= maxKeepBuf {
			bc.spare = buf[:0]
		}
		if err != nil && bc.conn == conn && bc.lastErr == nil {
			bc.lastErr = fmt.Errorf("write: %w", err)
		}
		bc.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// addInflight counts requests sent (n > 0) or answered or failed (n < 0),
// on the connection and on its node (least_connections reads the node's).
func (bc *backendConn) addInflight(n int64) int64 {
	bc.pool.node.AddActive(n)
	return bc.inflight.Add(n)
}

func (bc *backendConn) appendLocked(parts [][]byte, reqs []*request) {
	for _, p := range parts {
		bc.out = append(bc.out, p...)
	}
	bc.pending = append(bc.pending, reqs...)
	if n := int64(len(reqs)); bc.addInflight(n) == n {
		bc.progress.Store(time.Now().UnixNano()) // the clock starts
	}
}

// watchdog aborts a shared connection whose node stops answering: when
// requests wait and no reply came for the request timeout, they fail with
// "request timed out" (the clients' batches then complete). Dedicated
// connections are timed by their client instead.
func (bc *backendConn) watchdog() {
	// The period is a quarter of the timeout, at most a second, so that a
	// timeout lowered by a reload applies within a second.
	period := func(timeout time.Duration) time.Duration { return min(max(timeout/4, 5*time.Millisecond), time.Second) }
	timeout := bc.pool.f.requestTimeout()
	t := time.NewTicker(period(timeout))
	defer t.Stop()
	for {
		select {
		case <-bc.stop:
			return
		case <-t.C:
		}
		if now := bc.pool.f.requestTimeout(); now != timeout { // reloaded
			timeout = now
			t.Reset(period(timeout))
		}
		if bc.inflight.Load() > 0 && time.Since(time.Unix(0, bc.progress.Load())) > timeout {
			bc.mu.Lock()
			gen := bc.gen
			if bc.dialing {
				gen++
			}
			bc.mu.Unlock()
			bc.abort(gen, errTimeout)
		}
	}
}

// flushLocked writes out until it is empty; mu is released during writes
// so that other senders can append (their data goes out with the next
// write of this loop).
func (bc *backendConn) flushLocked() {
	bc.writing = true
	timeout := bc.pool.f.requestTimeout()
	for len(bc.out) > 0 && bc.conn != nil {
		buf := bc.out
		bc.out = bc.spare[:0]
		conn := bc.conn
		bc.mu.Unlock()
		now := time.Now()
		bc.lastWrite.Store(now.UnixNano())
		_ = conn.SetWriteDeadline(now.Add(timeout))
		_, err := conn.Write(buf)
		if err != nil {
			conn.Close() // the reader fails what is pending
		}
		bc.mu.Lock()
		if cap(buf) <= maxKeepBuf {
			bc.spare = buf[:0]
		} else {
			bc.spare = nil
		}
		if err != nil {
			if bc.conn == conn && bc.lastErr == nil {
				bc.lastErr = fmt.Errorf("write: %w", err)
			}
			break
		}
	}
	bc.writing = false
}

// abort closes the connection of generation gen, if it is still the
// current one: every pending request fails with err. Clients call it when
// a request times out.
func (bc *backendConn) abort(gen uint64, err error) {
	bc.mu.Lock()
	if bc.dialing && gen == bc.gen+1 {
		// Still connecting: fail what waits; the dial goes on for later
		// requests.
		pending := bc.pending
		bc.pending = nil
		bc.out = bc.out[:0]
		bc.addInflight(-int64(len(pending)))
		bc.mu.Unlock()
		failAll(pending, bc.pool.addr, err)
		return
	}
	var conn net.Conn
	if bc.conn != nil && bc.gen == gen {
		bc.lastErr = err
		conn = bc.conn
	}
	bc.mu.Unlock()
	// Closed outside mu: a close waits for the reader's read in progress,
	// which may be waiting for mu.
	if conn != nil {
		conn.Close()
	}
}

// close closes the connection for good.
func (bc *backendConn) close(err error) {
	bc.mu.Lock()
	if !bc.closed {
		close(bc.stop)
	}
	bc.closed = true
	bc.lastErr = err
	conn := bc.conn
	bc.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// readLoop reads replies and completes pending requests in order until
// the connection fails; then it fails every request still pending.
func (bc *backendConn) readLoop(conn net.Conn, gen uint64, done chan struct{}) {
	defer close(done)
	rd := &replyReader{bc: bc, node: bc.pool.node, buf: make([]byte, 16<<10)}
	var readErr error
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			readErr = rd.runRaw(rc)
		}
	}
	if readErr == nil {
		readErr = rd.runPlain(conn)
	}
	local, li := rd.local, rd.li
	conn.Close()
	bc.mu.Lock()
	var pending []*request
	pending = append(pending, local[li:]...)
	if bc.gen == gen {
		bc.conn = nil
		if bc.lastErr == nil {
			bc.lastErr = readErr
		}
		pending = append(pending, bc.pending...)
		bc.pending = nil
		bc.out = bc.out[:0]
		bc.addInflight(-bc.inflight.Load())
	}
	err := bc.lastErr
	if err == nil {
		err = readErr
	}
	closed := bc.closed
	bc.mu.Unlock()
	if len(pending) > 0 && !closed {
		bc.pool.node.Observe(0, err)
	}
	failAll(pending, bc.pool.addr, err)
}

func failAll(reqs []*request, addr string, err error) {
	for _, r := range reqs {
		if r != nil {
			r.fail(addr, err)
		}
	}
}

// replyReader reads a backend connection's replies and completes its
// pending requests in order.
type replyReader struct {
	bc    *backendConn
	node  *cluster.Node
	buf   []byte
	r, w  int
	local []*request // requests taken from bc.pending, in order
	li    int
	dr    drainReader
}

// process completes the requests of the whole replies buffered and makes
// room for the next read.
func (rd *replyReader) process() error {
	bc := rd.bc
	answered, completed := 0, 0
	var procErr error
	for rd.r < rd.w {
		n, err := resp.ReplyLen(rd.buf[rd.r:rd.w])
		if err == resp.ErrIncomplete {
			break
		}
		if err != nil {
			procErr = fmt.Errorf("bad reply from backend: %w", err)
			break
		}
		if rd.li == len(rd.local) {
			bc.mu.Lock()
			rd.local = append(rd.local[:0], bc.pending...)
			clear(bc.pending)
			bc.pending = bc.pending[:0]
			bc.mu.Unlock()
			rd.li = 0
		}
		if rd.li == len(rd.local) {
			procErr = errors.New("reply without a request")
			break
		}
		if rd.local[rd.li].complete(rd.buf[rd.r : rd.r+n]) {
			rd.local[rd.li] = nil
			rd.li++
			completed++
		}
		answered++
		rd.r += n
	}
	if answered > 0 {
		// One report per read: the node answers (health, breaker,
		// request count, latency EWMA).
		now := time.Now().UnixNano()
		bc.progress.Store(now)
		bc.addInflight(-int64(completed))
		rd.node.ObserveSuccess(answered, time.Duration(now-bc.lastWrite.Load()))
	}
	if procErr != nil {
		return procErr
	}
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
		if len(rd.buf) > maxKeepBuf {
			rd.buf = make([]byte, 16<<10)
		}
	} else if rd.r > 0 && (rd.w == len(rd.buf) || rd.r > len(rd.buf)/2) {
		copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.w -= rd.r
		rd.r = 0
	}
	if rd.w == len(rd.buf) {
		nb := make([]byte, 2*len(rd.buf))
		copy(nb, rd.buf[:rd.w])
		rd.buf = nb
	}
	return nil
}

func (rd *replyReader) runPlain(conn net.Conn) error {
	for {
		if err := rd.process(); err != nil {
			return err
		}
		n, err := conn.Read(rd.buf[rd.w:])
		rd.w += n
		if err != nil {
			return err
		}
	}
}

// runRaw reads inside one RawRead, without the read that only says
// EAGAIN after a read that drained the socket (see client.serveRaw).
func (rd *replyReader) runRaw(rc syscall.RawConn) error {
	var rerr error
	drained, eof := false, false
	err := rc.Read(func(fd uintptr) bool {
		for {
			if rerr = rd.process(); rerr != nil {
				return true
			}
			if eof { // after the replies that came with it
				rerr = io.EOF
				return true
			}
			if drained {
				drained = false
				return false
			}
			n, dr, end, err := rd.dr.read(fd, rd.buf[rd.w:])
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return false
			case err != 0:
				rerr = err
				return true
			}
			rd.w += n
			drained, eof = dr, end
		}
	})
	if rerr != nil {
		return rerr
	}
	if err == nil {
		err = net.ErrClosed
	}
	return err
}

// dialBackend connects to the node and authenticates, selecting the RESP
// version.
func (f *Frontend) dialBackend(p *nodePool, proto int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), f.limits.ConnectionTimeout.D())
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAlive(true)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	version, err := f.handshake(conn, proto)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	if version != "" {
		p.mu.Lock()
		p.version = version
		p.mu.Unlock()
		f.version.Store(&version)
	}
	return conn, nil
}

// handshake sends HELLO (with AUTH when configured) and returns the
// server's version. Servers without HELLO get AUTH alone (RESP2 only).
func (f *Frontend) handshake(conn net.Conn, proto int) (string, error) {
	cfg := f.cfg()
	cmd := []string{"HELLO", fmt.Sprint(proto)}
	if pw := cfg.Password.Reveal(); pw != "" {
		user := cfg.Username
		if user == "" {
			user = "default"
		}
		cmd = append(cmd, "AUTH", user, pw)
	}
	reply, err := roundTrip(conn, resp.AppendCommandStrings(nil, cmd...))
	if err != nil {
		return "", err
	}
	if resp.IsError(reply) {
		msg := resp.ErrorText(reply)
		if proto == 2 && bytes.HasPrefix([]byte(msg), []byte("ERR unknown command")) {
			// Redis before 6: AUTH only.
			if pw := cfg.Password.Reveal(); pw != "" {
				reply, err = roundTrip(conn, resp.AppendCommandStrings(nil, "AUTH", pw))
				if err != nil {
					return "", err
				}
				if resp.IsError(reply) {
					return "", fmt.Errorf("AUTH: %s", resp.ErrorText(reply))
				}
			}
			return "", nil
		}
		return "", fmt.Errorf("HELLO: %s", msg)
	}
	elems, _, _, err := resp.Elems(reply, nil)
	if err != nil {
		return "", nil
	}
	version := ""
	for i := 0; i+1 < len(elems); i += 2 {
		k, _ := resp.Bulk(elems[i])
		v, _ := resp.Bulk(elems[i+1])
		switch string(k) {
		case "version":
			version = string(v)
		case "mode":
			// A Redis Cluster node answers MOVED for the keys of other
			// nodes' slots: on the ring, most keys would fail with a
			// redirection naming a backend the client cannot use.
			if string(v) == "cluster" {
				return "", errClusterNode
			}
		}
	}
	return version, nil
}

// errClusterNode refuses a backend that is a Redis Cluster node.
var errClusterNode = errors.New("is a Redis Cluster node (cluster-enabled yes); redis.nodes must be standalone nodes (Redis Cluster backends are not supported yet)")

// roundTrip writes a command and reads one whole reply, for handshakes
// and probes.
func roundTrip(conn net.Conn, cmd []byte) ([]byte, error) {
	if _, err := conn.Write(cmd); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 1024)
	tmp := make([]byte, 4096)
	for {
		n, err := conn.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if l, perr := resp.ReplyLen(buf); perr == nil {
			return buf[:l], nil
		} else if perr != resp.ErrIncomplete {
			return nil, perr
		}
		if err != nil {
			return nil, err
		}
		if len(buf) > 1<<20 {
			return nil, errors.New("handshake reply too large")
		}
	}
}
