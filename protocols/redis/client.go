package redis

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ambassador-proxy/ambassador/protocols/frontend"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

const (
	maxFree        = 128 // request objects a client keeps between batches
	initialReadBuf = 4 << 10
	maxBatch       = 1024 // commands dispatched before their replies are written
)

// client is one client connection. One goroutine runs it: it reads what
// the client has pipelined, routes every command, hands each backend
// connection its share in one go, waits once for all replies, and writes
// them in order with one write.
type client struct {
	f    *Frontend
	conn net.Conn
	id   uint64
	ctx  context.Context

	rbuf   []byte
	r, w   int
	need   int // bytes the partial command at rbuf[r:] needs in all
	parser resp.Parser
	out    []byte
	dr     drainReader

	reqs        []*request // this batch's replies, in order
	free        []*request
	stages      []stage
	outstanding atomic.Int32 // Pub/Sub confirmations awaited by the batch
	wake        chan struct{}
	sync        bool // the batch runs alone (see runBatch)
	abandoned   bool
	writeErr    atomic.Pointer[error]

	qmu          sync.Mutex // guards the queue of batches in flight
	qhead        *batch
	qtail        *batch
	inflight     int
	writing      bool // a goroutine is writing complete batches
	qwaiting     bool // the client's goroutine waits for the queue
	batchFree    []*batch
	arena        arena
	barrier      bool          // run the batch now (before parsing further)
	timeout      time.Duration // of this batch; 0 = the request timeout; <0 = none
	watchClient  bool          // watch the client socket while waiting (long blocking commands)
	tmp          [][]byte
	keyIdx       []int
	groups       []group
	extra        int            // replies completed by Pub/Sub relays in this batch
	hidden       []*request     // requests whose replies the client does not see
	touched      []*nodePool    // nodes the client sent commands to (for WAIT)
	releaseLater []*backendConn // dedicated connections to release after the batch
	cur          *route         // the route being dispatched
	deferred     bool           // the command was put back for the next batch
	started      time.Time
	timer        *time.Timer // the batch's request timeout, reused
	lastRead     int         // bytes in rbuf after the last read
	rbufBox      *[]byte     // the pool's box of rbuf, reused to put it back
	rawOut       rawWriter   // writes replies with raw syscalls
	outSent      int         // bytes of out written (a write handed to drainOut)
	outBox       *[]byte     // likewise for out

	proto  int
	authed bool
	user   string
	name   string
	quit   bool
	libs   [2]string // CLIENT SETINFO lib-name, lib-ver

	tx       *txState
	watch    *dedicatedState
	blockers map[*nodePool]*backendConn
	ps       *pubsub

	wmu sync.Mutex // guards writes to conn (Pub/Sub relays write too)
	// outUnlocked: c.out waits for drainOut, which must take wmu first
	// (writeBatch found it taken); only the writing role touches it.
	outUnlocked bool

	lastOut   atomic.Int64 // when replies were last written (UnixNano): idleness counts from there too
	idleUntil time.Time    // when set, the next idle deadline (after a check found the client busy)
}

// stage is what one batch sends to one backend connection.
type stage struct {
	bc       *backendConn
	parts    [][]byte
	reqs     []*request
	gen      uint64
	runStart int // rbuf offsets of the last part when it is a run of rbuf
	runEnd   int
}

func (f *Frontend) newClient(ctx context.Context, conn net.Conn) *client {
	c := &client{
		f:       f,
		conn:    conn,
		id:      f.nextID.Add(1),
		ctx:     ctx,
		wake:    make(chan struct{}, 1),
		proto:   2,
		authed:  !f.authRequired(),
		started: time.Now(),
	}
	c.parser.Limits = resp.Limits{MaxBulkLen: f.cfg().MaxBulkLen, MaxMultibulkLen: f.cfg().MaxMultibulkLen}
	c.rawOut = newRawWriter(conn)
	return c
}

// serve runs the connection until it ends and returns why.
func (c *client) serve() (reason frontend.CloseReason) {
	defer c.cleanup()
	var rc syscall.RawConn
	if sc, ok := c.conn.(syscall.Conn); ok {
		rc, _ = sc.SyscallConn()
	}
	for {
		if rc != nil {
			reason, done := c.serveRaw(rc)
			if done {
				return reason
			}
			// A batch that must watch the client's socket while it
			// waits (a long blocking command) runs here, outside.
		}
		if len(c.reqs) > 0 {
			if !c.runBatch() {
				return frontend.ReasonWriteError
			}
		}
		if reason, done, _ := c.parseAndRun(false); done {
			return reason
		}
		if c.r == c.w || c.need > c.w-c.r {
			if reason, ok := c.read(); !ok {
				return reason
			}
		}
	}
}

// serveRaw runs the client inside one RawRead of its socket: it reads with
// its own syscalls and, when the last read drained the socket, waits for
// the poller's readiness without the read that would only say EAGAIN (a
// syscall per request saved for clients that do not pipeline). It returns
// done=false when a batch must run outside (see serve).
func (c *client) serveRaw(rc syscall.RawConn) (reason frontend.CloseReason, done bool) {
	var rerr error
	drained, eof := false, false
	err := rc.Read(func(fd uintptr) bool {
		for {
			var leave bool
			reason, done, leave = c.parseAndRun(true)
			if done || leave {
				return true
			}
			if eof { // after what came with it
				rerr = errEOF
				return true
			}
			if drained {
				drained = false
				c.armIdle()
				c.releaseBuffers()
				return false // wait for readiness
			}
			buf := c.readBuf()
			n, dr, end, err := c.dr.read(fd, buf)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				c.armIdle()
				c.releaseBuffers()
				return false
			case err != 0:
				rerr = err
				return true
			}
			c.w += n
			c.lastRead = c.w
			drained, eof = dr, end
		}
	})
	if done {
		return reason, true
	}
	if err == nil {
		err = rerr
	}
	if err != nil {
		if c.notIdle(err) {
			return 0, false // wait again (in serve's read)
		}
		return c.readFailed(err), true
	}
	return 0, false
}

// closeAsync closes the client's connection from another goroutine. A
// close waits for a read in progress to return, and the client's goroutine
// may be inside one (serveRaw) waiting for what the caller would provide.
func (c *client) closeAsync() {
	c.f.goBackground(func() { c.conn.Close() })
}

// Buffers of idle clients go back to pools while they wait: 10,000 idle
// clients hold no read or write buffer.
var (
	readBufPool = sync.Pool{New: func() any { b := make([]byte, initialReadBuf); return &b }}
	outBufPool  = sync.Pool{New: func() any { b := make([]byte, 0, initialReadBuf); return &b }}
)

// releaseBuffers returns the read buffer to its pool when nothing is
// buffered (the client waits for its next request); the write buffer goes
// back after each write (writeBatch).
func (c *client) releaseBuffers() {
	if c.r == c.w && len(c.rbuf) == initialReadBuf {
		box := c.rbufBox
		if box == nil {
			box = new([]byte)
		}
		*box = c.rbuf
		c.rbuf, c.rbufBox = nil, nil
		c.r, c.w = 0, 0
		readBufPool.Put(box)
	}
}

// armIdle sets the idle deadline before waiting for a request: the idle
// timeout runs from the last reply (as Redis' own timeout, it spares
// subscribers, and clients only while a blocking command blocks: see
// readAhead).
func (c *client) armIdle() {
	idle := c.f.limits.IdleTimeout.D()
	if idle <= 0 {
		return
	}
	var until time.Time // none for a subscriber
	if c.ps == nil || !c.ps.active() {
		until = c.idleUntil
		if until.IsZero() {
			until = time.Now().Add(idle)
		}
	}
	c.idleUntil = time.Time{}
	_ = c.conn.SetReadDeadline(until)
	if c.draining() {
		// The drain's wake-up may have come just before and been
		// replaced: wake up again.
		_ = c.conn.SetReadDeadline(time.Now())
	}
}

// notIdle is asked when a read ended at the idle deadline: a client whose
// requests are still in flight, or whose last reply went out less than the
// idle timeout ago, is not idle. It then sets the deadline to wait for next.
func (c *client) notIdle(err error) bool {
	idle := c.f.limits.IdleTimeout.D()
	if idle <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) || c.draining() {
		return false
	}
	c.qmu.Lock()
	busy := c.inflight > 0
	c.qmu.Unlock()
	if busy {
		c.idleUntil = time.Now().Add(idle)
		return true
	}
	if until := time.Unix(0, c.lastOut.Load()).Add(idle); time.Until(until) > 0 {
		c.idleUntil = until
		return true
	}
	return false
}

// parseAndRun parses what is buffered and runs its batches until more
// bytes are needed. done says the connection must close, with reason;
// leave says a batch is staged that must run outside the raw read loop.
func (c *client) parseAndRun(inRaw bool) (reason frontend.CloseReason, done, leave bool) {
	for {
		if c.r == c.w || c.need > c.w-c.r {
			return 0, false, false
		}
		for c.r < c.w && len(c.reqs) < maxBatch && !c.barrier {
			c.parser.Limits.Unauthenticated = !c.authed
			cmd, n, need, err := c.parser.Parse(c.rbuf[c.r:c.w])
			if err == resp.ErrIncomplete {
				c.need = need
				break
			}
			c.need = 0
			if err != nil {
				var pe *resp.ProtocolError
				errors.As(err, &pe)
				c.f.log.Info("protocol error; closing client", "client", c.conn.RemoteAddr().String(), "error", pe.Error())
				c.f.metrics.protocolErrors.Inc()
				c.localError("ERR " + pe.Error())
				c.sync = true
				c.runBatch()
				return frontend.ReasonProtocolError, true, false
			}
			c.r += n
			if len(cmd.Args) == 0 {
				continue
			}
			c.dispatch(cmd, c.r-n)
		}
		if len(c.reqs) > 0 {
			if inRaw && c.watchClient {
				return 0, false, true
			}
			if !c.runBatch() {
				return frontend.ReasonWriteError, true, false
			}
		}
		if c.quit {
			return frontend.ReasonClientClosed, true, false
		}
		select {
		case <-c.f.srv.Draining():
			if c.r == c.w && c.tx == nil {
				return frontend.ReasonShutdown, true, false
			}
		default:
		}
	}
}

// readBuf prepares rbuf for a read and returns its free part: it grows
// for a large command or a client that fills it, and shrinks after a
// burst.
func (c *client) readBuf() []byte {
	if c.r == c.w {
		c.r, c.w = 0, 0
		switch {
		case c.lastRead == len(c.rbuf) && len(c.rbuf) > 0 && len(c.rbuf) < maxKeepBuf:
			// The last read filled the buffer: the client pipelines
			// deeply; read more at a time.
			c.rbuf = make([]byte, 2*len(c.rbuf))
		case len(c.rbuf) > initialReadBuf && c.lastRead < initialReadBuf:
			// The burst is over: give the big buffer back.
			c.rbuf = nil
		}
	}
	if c.rbuf == nil {
		c.rbufBox = readBufPool.Get().(*[]byte)
		c.rbuf = *c.rbufBox
	}
	need := max(c.need, c.w-c.r+1)
	if need > len(c.rbuf)-c.r {
		if need <= len(c.rbuf) {
			copy(c.rbuf, c.rbuf[c.r:c.w])
		} else {
			size := max(need, 2*len(c.rbuf))
			if size > 2*maxKeepBuf && need <= 2*maxKeepBuf {
				size = 2 * maxKeepBuf
			}
			nb := make([]byte, size)
			copy(nb, c.rbuf[c.r:c.w])
			c.rbuf = nb
		}
		c.w -= c.r
		c.r = 0
	} else if c.w == len(c.rbuf) {
		copy(c.rbuf, c.rbuf[c.r:c.w])
		c.w -= c.r
		c.r = 0
	}
	return c.rbuf[c.w:]
}

// read reads more from the client into rbuf with the connection's Read.
func (c *client) read() (frontend.CloseReason, bool) {
	buf := c.readBuf()
	c.armIdle()
	n, err := c.conn.Read(buf)
	c.w += n
	c.lastRead = c.w
	if err != nil {
		if n > 0 {
			return 0, true // serve what came with the error first
		}
		if c.notIdle(err) {
			return 0, true
		}
		return c.readFailed(err), false
	}
	return 0, true
}

// readFailed says why a read from the client failed.
func (c *client) readFailed(err error) frontend.CloseReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		select {
		case <-c.f.srv.Draining():
			return frontend.ReasonShutdown
		default:
		}
		if c.f.limits.IdleTimeout.D() > 0 {
			return frontend.ReasonIdleTimeout
		}
	}
	if isClosed(err) {
		return frontend.ReasonClientClosed
	}
	return frontend.ReasonReadError
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, errEOF) || errors.Is(err, errConnReset)
}

// newReq appends a reply slot to the batch.
func (c *client) newReq() *request {
	var r *request
	if n := len(c.free); n > 0 {
		r = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		r = &request{c: c}
	}
	return r
}

func (c *client) addReq() *request {
	r := c.newReq()
	r.rt = c.cur
	r.proto = int8(c.proto)
	c.reqs = append(c.reqs, r)
	return r
}

func (c *client) localError(msg string) {
	r := c.addReq()
	r.reply = resp.AppendError(r.reply[:0], msg)
}

func (c *client) localOK() {
	r := c.addReq()
	r.reply = resp.AppendOK(r.reply[:0])
}

// stageFor returns the stage of bc in this batch.
func (c *client) stageFor(bc *backendConn) *stage {
	for i := range c.stages {
		if c.stages[i].bc == bc {
			return &c.stages[i]
		}
	}
	c.touch(bc.pool)
	if len(c.stages) < cap(c.stages) {
		c.stages = c.stages[:len(c.stages)+1]
		s := &c.stages[len(c.stages)-1]
		s.bc = bc
		s.runStart, s.runEnd = -1, -1
		return s
	}
	c.stages = append(c.stages, stage{bc: bc, runStart: -1, runEnd: -1})
	return &c.stages[len(c.stages)-1]
}

// touch notes that the client sent commands to a node: its WAITs must
// wait for that node's replicas.
func (c *client) touch(p *nodePool) {
	for _, q := range c.touched {
		if q == p {
			return
		}
	}
	c.touched = append(c.touched, p)
}

// forwardRaw sends the client's command bytes rbuf[start:end] to bc for r.
func (c *client) forwardRaw(bc *backendConn, r *request, start, end int) {
	s := c.stageFor(bc)
	if s.runEnd == start && len(s.parts) > 0 {
		s.runEnd = end
		s.parts[len(s.parts)-1] = c.rbuf[s.runStart:end]
	} else {
		s.runStart, s.runEnd = start, end
		s.parts = append(s.parts, c.rbuf[start:end])
	}
	s.reqs = append(s.reqs, r)
}

// forwardBytes sends command bytes made by the ambassador (in the arena).
func (c *client) forwardBytes(bc *backendConn, r *request, cmd []byte) {
	s := c.stageFor(bc)
	s.runStart, s.runEnd = -1, -1
	s.parts = append(s.parts, cmd)
	s.reqs = append(s.reqs, r)
}

// finish counts one Pub/Sub confirmation in (by a relay goroutine).
func (c *client) finish() {
	if c.outstanding.Add(-1) == 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// runBatch sends the batch: the staged commands go to their backend
// connections and the batch joins the client's queue; its replies are
// written in order when they are all in (see batch). A batch that changes
// what later commands see (blocking commands, WATCH, Pub/Sub, QUIT, RESET,
// a protocol switch) runs alone: the queue drains before and after it.
// It reports false when writing to the client failed.
func (c *client) runBatch() bool {
	sync := c.sync || c.extra > 0 || c.timeout != 0 || c.watchClient || len(c.releaseLater) > 0 || c.quit
	limit := maxInflight - 1
	if sync {
		limit = 0
	}
	if !c.waitQueue(limit, false) {
		return c.abandon()
	}
	b := c.getBatch()
	b.reqs, c.reqs = c.reqs, b.reqs[:0]
	b.hidden, c.hidden = c.hidden, b.hidden[:0]
	b.start = time.Now()
	total := 1 // held until every stage is sent
	for i := range c.stages {
		for _, r := range c.stages[i].reqs {
			r.b = b
			total++
		}
	}
	b.outstanding.Store(int32(total))
	c.enqueue(b)
	for i := range c.stages {
		s := &c.stages[i]
		s.gen = s.bc.send(s.parts, s.reqs)
	}
	b.finish()
	if sync {
		if !c.waitQueue(0, true) {
			return c.abandon()
		}
		for _, bc := range c.releaseLater {
			bc.pool.release(bc)
		}
		clear(c.releaseLater)
		c.releaseLater = c.releaseLater[:0]
	}
	c.resetBatch()
	return c.writeErr.Load() == nil
}

// abandon gives up a client whose replies never came (see waitQueue).
func (c *client) abandon() bool {
	c.reqs, c.free, c.hidden, c.stages, c.releaseLater = nil, nil, nil, nil, nil
	c.quit = true
	c.abandoned = true
	return false
}

func (c *client) resetBatch() {
	c.extra = 0
	if len(c.free) > maxFree {
		clear(c.free[maxFree:])
		c.free = c.free[:maxFree]
	}
	for i := range c.stages {
		s := &c.stages[i]
		clear(s.parts)
		s.parts = s.parts[:0]
		clear(s.reqs)
		s.reqs = s.reqs[:0]
		s.bc = nil
	}
	c.stages = c.stages[:0]
	c.arena.reset()
	c.barrier = false
	c.sync = false
	c.timeout = 0
	c.watchClient = false
}

// waitQueue blocks until at most limit batches are in flight and (with
// limit 0) the Pub/Sub confirmations of the batch are in. When timed (the
// batch just sent runs alone), the request timeout aborts the backend
// connections still owing replies, which fails their requests, and a
// client that goes away during a long blocking command aborts it.
//
// It reports false when the replies still have not come after the aborts
// (a bug, or a connection that ignores its close): the client is then
// closed rather than left hanging, and its request objects are abandoned
// to whoever still holds them.
func (c *client) waitQueue(limit int, timed bool) bool {
	ready := func() bool {
		c.qmu.Lock()
		ok := c.inflight <= limit
		c.qwaiting = !ok
		c.qmu.Unlock()
		return ok && (limit > 0 || c.outstanding.Load() == 0)
	}
	if ready() {
		return true
	}
	defer func() {
		c.qmu.Lock()
		c.qwaiting = false
		c.qmu.Unlock()
	}()
	timeout := c.timeout
	if timeout == 0 || !timed {
		timeout = c.f.requestTimeout()
	}
	aborts := 0
	var tc <-chan time.Time
	if timeout > 0 {
		if c.timer == nil {
			c.timer = time.NewTimer(timeout)
		} else {
			c.timer.Reset(timeout)
		}
		defer c.timer.Stop()
		tc = c.timer.C
	}
	timer := c.timer
	var ahead chan readResult
	if timed && c.watchClient {
		ahead = c.readAhead() // also sees the shutdown's wake-up
	}
	for {
		if ready() {
			if ahead != nil {
				c.stopReadAhead(ahead)
			}
			return true
		}
		select {
		case <-c.wake:
		case <-tc:
			if aborts++; aborts > 3 {
				c.f.log.Error("replies still missing after aborting their connections; closing the client", "client", c.conn.RemoteAddr().String())
				if ahead != nil {
					c.stopReadAhead(ahead)
				}
				return false
			}
			if timed {
				c.abortStages(errTimeout)
			}
			// Aborted connections fail their requests at once (the
			// backends' watchdogs abort the others); wait for that.
			timer.Reset(c.f.requestTimeout())
			tc = timer.C
		case res := <-ahead:
			ahead = nil
			if res.err != nil && res.n == 0 && !errors.Is(res.err, os.ErrDeadlineExceeded) {
				// The client went away: cancel its blocking command.
				c.quit = true
				c.abortStages(errClientGone)
				continue
			}
			c.w += res.n
			if res.n == 0 && c.draining() {
				// The shutdown's wake-up: a command that may block for
				// long ends now (the client gets an error reply, then
				// the connection closes as the others drain).
				c.abortStages(errShutdown)
				continue
			}
			ahead = c.readAhead()
		}
	}
}

var (
	errClientGone = errors.New("client went away")
	errShutdown   = errors.New("the ambassador is shutting down")
)

// maxAheadBuf bounds what a client may send while one of its commands
// blocks (read to notice a client that leaves).
const maxAheadBuf = 1 << 20

func (c *client) draining() bool { return c.f.srv.IsDraining() }

func (c *client) abortStages(err error) {
	for i := range c.stages {
		s := &c.stages[i]
		s.bc.abort(s.gen, err)
	}
}

type readResult struct {
	n   int
	err error
}

// readAhead reads from the client into the free end of rbuf while the
// batch waits, to notice a client that closes during a blocking command.
func (c *client) readAhead() chan readResult {
	if c.rbuf == nil {
		return nil
	}
	if c.w == len(c.rbuf) {
		// Full (a command as large as the buffer, or a client that
		// pipelines while it blocks): a bigger buffer, or a client that
		// leaves would go unnoticed until the command ends, forever for
		// a timeout of 0. The prefix is copied whole, so offsets into
		// the buffer stay valid, and the batch's arguments keep pointing
		// into the old one, which is not reused. Beyond maxAheadBuf the
		// client is not read until the command ends.
		if len(c.rbuf) >= maxAheadBuf {
			return nil
		}
		nb := make([]byte, 2*len(c.rbuf))
		copy(nb, c.rbuf[:c.w])
		c.rbuf, c.rbufBox = nb, nil
	}
	ch := make(chan readResult, 1)
	buf := c.rbuf[c.w:]
	// No idle deadline while a command blocks (one armed before the
	// command would end the read at once, over and over) ... unless the
	// shutdown's wake-up came meanwhile: keep it.
	_ = c.conn.SetReadDeadline(time.Time{})
	if c.draining() {
		_ = c.conn.SetReadDeadline(time.Now())
	}
	go func() {
		n, err := c.conn.Read(buf)
		ch <- readResult{n, err}
	}()
	return ch
}

func (c *client) stopReadAhead(ch chan readResult) {
	_ = c.conn.SetReadDeadline(time.Now())
	res := <-ch
	_ = c.conn.SetReadDeadline(time.Time{})
	c.w += res.n
	if res.err != nil && res.n == 0 && !errors.Is(res.err, os.ErrDeadlineExceeded) {
		c.quit = true
	}
}

// cleanup waits for the batches in flight (their replies may still be
// written; the backends' watchdogs bound the wait) and releases the
// client's dedicated connections and subscriptions.
func (c *client) cleanup() {
	if !c.abandoned && !c.waitQueue(0, false) {
		c.abandoned = true
	}
	if c.watch != nil {
		c.watch.pool.discard(c.watch.bc, errClientGone)
		c.watch = nil
	}
	for _, bc := range c.blockers {
		bc.pool.release(bc)
	}
	c.blockers = nil
	if c.ps != nil {
		c.ps.close()
		c.ps = nil
	}
}

// arena hands out byte slices for commands the ambassador builds during a
// batch; slices stay valid until reset, and chunks are reused.
type arena struct {
	chunks [][]byte
	cur    int
}

const arenaChunk = 8 << 10

func (a *arena) alloc(n int) []byte {
	for a.cur < len(a.chunks) {
		ch := a.chunks[a.cur]
		if cap(ch)-len(ch) >= n {
			s := ch[len(ch) : len(ch) : len(ch)+n]
			a.chunks[a.cur] = ch[:len(ch)+n]
			return s
		}
		a.cur++
	}
	size := max(arenaChunk, n)
	ch := make([]byte, n, size)
	a.chunks = append(a.chunks, ch)
	a.cur = len(a.chunks) - 1
	return ch[:0:n]
}

// build returns a slice with room for n bytes, to append a command into.
func (a *arena) build(n int) []byte { return a.alloc(n) }

func (a *arena) reset() {
	keep := a.chunks[:0]
	for _, ch := range a.chunks {
		if cap(ch) <= arenaChunk*4 && len(keep) < 4 {
			keep = append(keep, ch[:0])
		}
	}
	clear(a.chunks[len(keep):])
	a.chunks = keep
	a.cur = 0
}
