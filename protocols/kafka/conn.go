package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ambassador-proxy/ambassador/protocols/frontend"
	"github.com/ambassador-proxy/ambassador/protocols/kafka/wire"
)

// maxInFlight bounds the requests of one client connection that are read
// but not yet answered; the reader waits beyond it (back-pressure).
const maxInFlight = 256

// slot is one response position in a connection's ordered output queue.
type slot struct {
	bufs    net.Buffers // the response frame, in segments
	release []*rbuf     // frames the segments point into, unref'd once written
	state   uint8       // slotPending, slotReady, slotSkip, slotClose
	next    *slot
}

const (
	slotPending uint8 = iota
	slotReady
	slotSkip  // no response (produce acks=0)
	slotClose // no response, and the connection closes once those before it are written
)

// outQueue keeps responses in request order (kfake's seq): a response
// completed early waits for those before it. Whoever completes the slot at
// the head writes every ready response there in one writev (no hand-off
// to a writer goroutine); one writer at a time.
type outQueue struct {
	mu   sync.Mutex
	head *slot
	tail *slot
}

func (q *outQueue) push() *slot {
	s := &slot{}
	q.mu.Lock()
	if q.tail == nil {
		q.head, q.tail = s, s
	} else {
		q.tail.next = s
		q.tail = s
	}
	q.mu.Unlock()
	return s
}

// complete fills a slot and reports whether it is at the head (then the
// caller flushes).
func (q *outQueue) complete(s *slot, bufs net.Buffers, release []*rbuf, state uint8) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.state != slotPending { // answered twice: keep the first
		for _, r := range release {
			r.unref()
		}
		return false
	}
	s.bufs, s.release, s.state = bufs, release, state
	return q.head == s
}

func (q *outQueue) headReady() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head != nil && q.head.state != slotPending
}

// take removes the ready slots at the head; it returns their frames, the
// frames to release once they are written, and how many slots it removed.
// closing reports a slotClose among them: the connection is to close once
// they are written (nothing after it is taken).
func (q *outQueue) take(bufs net.Buffers, rel []*rbuf) (_ net.Buffers, _ []*rbuf, n int, closing bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head != nil && q.head.state != slotPending && !closing {
		if q.head.state == slotReady {
			bufs = append(bufs, q.head.bufs...)
			rel = append(rel, q.head.release...)
		}
		closing = q.head.state == slotClose
		q.head = q.head.next
		n++
	}
	if q.head == nil {
		q.tail = nil
	}
	return bufs, rel, n, closing
}

func (q *outQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head == nil
}

// clientConn is one client connection.
type clientConn struct {
	f      *Frontend
	conn   net.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	out    outQueue
	sem    chan struct{}
	done   chan struct{} // closed when the reader returns
	reason atomic.Int32  // close reason set by the writer, -1 none

	writing atomic.Bool  // a goroutine is writing responses
	wbufs   net.Buffers  // the writer's scratch, guarded by writing
	wrel    []*rbuf      // likewise
	lastOut atomic.Int64 // when responses were last written (UnixNano): idleness counts from there too

	bmu     sync.Mutex
	bconns  map[bkey]*brokerConn
	bclosed bool      // closeBackends ran: no more dials
	bsnap   *snapshot // the snapshot bconns were last checked against
	// fails counts the failed requests per broker since its last answer
	// (under bmu); failing is its length, read without the lock.
	fails   map[int32]int
	failing atomic.Int32
	told    atomic.Pointer[toldVersions] // what the client's last ApiVersions offered
	closing atomic.Bool                  // a slotClose was queued: nothing more is read

	fetch fetchState
	wg    sync.WaitGroup // request goroutines (metadata, coordinator look-ups)

	// coordinator requests retried after their coordinator moved, and
	// those that came after them, run in order (see toCoordinator)
	rmu      sync.Mutex
	retryQ   []func()
	retrying bool
	bwg      sync.WaitGroup // backend connections' reader and writer goroutines

	queued atomic.Int64  // bytes of requests waiting for backend writers
	relief chan struct{} // cap 1: queued went down
}

// maxQueued bounds the request bytes a connection may have waiting for
// backend writers; the reader waits beyond it (back-pressure).
const maxQueued = 64 << 20

// account is the backend writers' count of queued bytes.
func (c *clientConn) account(n int) {
	if c.queued.Add(int64(n)) < maxQueued && n < 0 {
		select {
		case c.relief <- struct{}{}:
		default:
		}
	}
}

// async runs fn on a goroutine the connection waits for before it ends.
func (c *clientConn) async(fn func()) {
	c.wg.Go(func() {
		defer c.contain()
		fn()
	})
}

// contain, deferred on the goroutines that work for the client besides
// its reader (request goroutines, timers), turns a panic (a bug) into the
// client's connection closed with a log line, as a panic on its reader
// is: one client's bug must not end the process.
func (c *clientConn) contain() {
	if r := recover(); r != nil {
		c.panicked(r)
	}
}

func (c *clientConn) panicked(r any) {
	c.log.Error("panic serving client; connection closed", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	c.abort(frontend.ReasonPanic)
}

// request is one client request in flight.
type request struct {
	c     *clientConn
	h     wire.RequestHeader
	req   kmsg.Request
	slot  *slot
	start time.Time
	km    *keyMetrics
	hold  *rbuf // the frame, for requests whose record batches are written from it
}

// respond encodes resp at the request's version and queues it.
func (r *request) respond(resp kmsg.Response) { r.respondAt(resp, r.h.Version) }

// respondAt encodes resp at version v (ApiVersions answers v0 to a
// version it does not know). The record batches of a fetch response are
// not copied: they go out from the buffers the backend response was read
// into.
func (r *request) respondAt(resp kmsg.Response, v int16) { r.respondFull(resp, v, nil) }

// respondRelease answers with resp, whose records point into frames that
// go back to the pool once the response is written.
func (r *request) respondRelease(resp kmsg.Response, release []*rbuf) {
	r.respondFull(resp, r.h.Version, release)
}

func (r *request) respondFull(resp kmsg.Response, v int16, release []*rbuf) {
	resp.SetVersion(v)
	var bufs net.Buffers
	n := 0
	if fr, ok := resp.(*kmsg.FetchResponse); ok {
		seg := wire.AppendSegmentedResponse(make([]byte, 0, 512), r.h.Correlation, fr, wire.FetchRecordFields(fr))
		bufs, n = seg.Bufs, seg.Len
	} else {
		frame := wire.AppendResponse(make([]byte, 0, 256), r.h.Correlation, resp)
		bufs, n = net.Buffers{frame}, len(frame)
	}
	if r.km != nil {
		r.km.latency.Observe(time.Since(r.start).Seconds())
	}
	r.c.f.m.bytesClientOut.Add(float64(n))
	if r.c.out.complete(r.slot, bufs, release, slotReady) {
		r.c.flush()
	}
}

// respondError answers with code in every error field of a response that
// mirrors the request.
func (r *request) respondError(code int16) {
	resp, ok := errorResponse(r.req, code)
	if !ok {
		r.c.log.Warn("no error response exists for this request; closing the connection", "api", apiName(r.h.Key), "version", r.h.Version, "error_code", code)
		r.c.abort(frontend.ReasonProtocolError)
		return
	}
	r.respond(resp)
}

// noResponse completes a request that gets no response.
func (r *request) noResponse() {
	if r.km != nil {
		r.km.latency.Observe(time.Since(r.start).Seconds())
	}
	if r.c.out.complete(r.slot, nil, nil, slotSkip) {
		r.c.flush()
	}
}

// closeAfter completes a request that gets no response but must end the
// connection, once the responses to the requests before it are written,
// as a broker closes after an acks=0 produce it could not take (the only
// way the client learns of it).
func (r *request) closeAfter(why string) {
	r.c.log.Warn(why + "; closing the connection so that the client notices, as a broker does")
	r.c.closing.Store(true)
	if r.c.out.complete(r.slot, nil, nil, slotClose) {
		r.c.flush()
	}
}

// flush writes the ready responses at the head of the queue. Only one
// goroutine writes at a time; one that finds another writing leaves its
// response to it (which looks at the head again before it stops).
func (c *clientConn) flush() {
	for {
		if !c.writing.CompareAndSwap(false, true) {
			return
		}
		for {
			var n int
			var closing bool
			c.wbufs, c.wrel, n, closing = c.out.take(c.wbufs[:0], c.wrel[:0])
			if n == 0 {
				break
			}
			if len(c.wbufs) > 0 {
				now := time.Now()
				_ = c.conn.SetWriteDeadline(now.Add(baseTimeout))
				w := c.wbufs // WriteTo consumes its receiver
				if _, err := w.WriteTo(c.conn); err != nil {
					c.abort(frontend.ReasonWriteError)
				}
				c.lastOut.Store(now.UnixNano()) // when the write began: close enough for an idle timeout
				clear(c.wbufs)
			}
			for _, r := range c.wrel {
				r.unref()
			}
			clear(c.wrel)
			for range n {
				<-c.sem
			}
			if closing { // the responses before it are out: close (writing stays taken)
				c.abort(frontend.ReasonBackendError)
				return
			}
		}
		c.writing.Store(false)
		if !c.out.headReady() {
			return
		}
	}
}

func (f *Frontend) serveConn(ctx context.Context, conn net.Conn) frontend.CloseReason {
	cctx, cancel := context.WithCancel(ctx)
	c := &clientConn{
		f:      f,
		conn:   conn,
		log:    f.log.With("client", conn.RemoteAddr().String()),
		ctx:    cctx,
		cancel: cancel,
		sem:    make(chan struct{}, maxInFlight),
		done:   make(chan struct{}),
		bconns: map[bkey]*brokerConn{},
		relief: make(chan struct{}, 1),
	}
	c.reason.Store(-1)
	c.fetch.init()
	var wg sync.WaitGroup
	wg.Go(func() { // wake the reader when draining starts
		select {
		case <-f.srv.Draining():
			_ = conn.SetReadDeadline(time.Now())
		case <-c.done:
		}
	})
	reason := c.readLoop()
	close(c.done)
	c.closeBackends(reason == frontend.ReasonClientClosed)
	cancel()
	_ = conn.Close()
	wg.Wait()
	c.wg.Wait()
	c.bwg.Wait()
	c.finishFetches() // stops their timers, releases their frames
	if r := c.reason.Load(); r >= 0 {
		reason = frontend.CloseReason(r)
	}
	return reason
}

// abort closes the connection from any goroutine with a reason.
func (c *clientConn) abort(r frontend.CloseReason) {
	c.reason.CompareAndSwap(-1, int32(r))
	_ = c.conn.Close()
}

func (c *clientConn) draining() bool { return c.f.srv.IsDraining() }

func (c *clientConn) readLoop() frontend.CloseReason {
	br := bufio.NewReaderSize(newLowatReader(c.conn), 64<<10)
	var idleUntil time.Time // when set, the idle deadline to wait for; otherwise now + the idle timeout
	for {
		st := c.f.settings()
		if st.idle > 0 {
			if idleUntil.IsZero() {
				idleUntil = time.Now().Add(st.idle)
			}
			_ = c.conn.SetReadDeadline(idleUntil)
			idleUntil = time.Time{}
		} else {
			_ = c.conn.SetReadDeadline(time.Time{})
		}
		// Checked after the deadline is set: the drain's wake-up (a
		// deadline of now) may have come just before and been replaced.
		if c.draining() {
			return c.drain(br)
		}
		// Peek first so that a timeout never splits a frame.
		if _, err := br.Peek(1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if c.draining() {
					return c.drain(br)
				}
				if !c.out.empty() || len(c.sem) > 0 {
					continue // waiting for responses is not idleness
				}
				// nor is the time the client takes to act on the last
				// response (a consumer whose long poll just ended)
				if until := time.Unix(0, c.lastOut.Load()).Add(st.idle); time.Until(until) > 0 {
					idleUntil = until
					continue
				}
				c.log.Debug("closing idle client", "idle_timeout", st.idle)
				return frontend.ReasonIdleTimeout
			}
			return readReason(err)
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(baseTimeout))
		if c.draining() { // the drain's wake-up may have just been replaced
			_ = c.conn.SetReadDeadline(time.Now())
		}
		var held int64
		frame, err := wire.ReadFrameAlloc(br, st.maxRequest, func(n int) []byte {
			if n >= bigFrame {
				if !c.f.budget.acquire(c.ctx, int64(n), readBudgetMax(st.maxRequest)) {
					return nil
				}
				held = int64(n)
			}
			return getFrame(n)
		})
		if held > 0 {
			c.f.budget.release(held)
		}
		if err != nil {
			if errors.Is(err, wire.ErrTooLarge) {
				c.log.Warn("request over kafka.max_request_size; closing the connection", "error", err, "max_request_size", st.maxRequest)
				c.f.m.errorf(-1, "too_large")
				return frontend.ReasonTooLarge
			}
			if errors.Is(err, wire.ErrMalformed) {
				c.log.Warn("malformed request; closing the connection", "error", err)
				return frontend.ReasonProtocolError
			}
			// Draining wakes the reader with a deadline; if it struck
			// inside a frame, that request is left unread, as any that
			// arrives while draining, but the ones in flight are still
			// answered.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.draining() {
				return c.drain(br)
			}
			return readReason(err)
		}
		c.f.m.bytesClientIn.Add(float64(len(frame) + 4))
		if len(frame) > maxOtherRequest && (len(frame) < 2 || frame[0] != 0 || frame[1] != 0) {
			// Only a produce request carries record batches; decoding
			// another one allocates up to ~34 times its size for the
			// arrays it declares (kmsg sizes them by their counts).
			c.log.Warn("request other than Produce over 16 MiB; closing the connection", "bytes", len(frame))
			c.f.m.errorf(-1, "too_large")
			putFrame(frame)
			return frontend.ReasonTooLarge
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return frontend.ReasonShutdown
		}
		for c.queued.Load() >= maxQueued {
			select {
			case <-c.relief:
			case <-c.ctx.Done():
				return frontend.ReasonShutdown
			}
		}
		// The frame goes back to the pool once nothing points into it: a
		// produce request's batches are held until written to brokers.
		hold := &rbuf{b: frame}
		hold.refs.Store(1)
		reason, ok := c.dispatch(frame, hold)
		hold.unref()
		if !ok {
			return reason
		}
		if c.closing.Load() {
			// as a broker that closes the connection: nothing after
			// the request that ends it is read
			return c.awaitClose(frontend.ReasonBackendError)
		}
	}
}

// awaitClose stops reading the client: the writer closes the connection
// once the responses before a slotClose are written. A drain answers the
// fetches waiting meanwhile; the frontend's deadline ends the wait.
func (c *clientConn) awaitClose(reason frontend.CloseReason) frontend.CloseReason {
	for len(c.sem) > 0 && c.ctx.Err() == nil {
		if c.draining() {
			c.finishFetches()
		}
		time.Sleep(2 * time.Millisecond)
	}
	return reason
}

func readReason(err error) frontend.CloseReason {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
		return frontend.ReasonClientClosed
	}
	return frontend.ReasonReadError
}

// drain waits for the responses in flight to be written, then ends the
// connection (graceful shutdown); the frontend's deadline cancels ctx.
// Fetches waiting out their MaxWait are answered at once with what they
// have, and a client that hangs up ends the wait.
func (c *clientConn) drain(br *bufio.Reader) frontend.CloseReason {
	c.finishFetches()
	for len(c.sem) > 0 {
		if c.ctx.Err() != nil {
			return frontend.ReasonShutdown
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := br.Peek(1); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return readReason(err)
			}
		} else {
			time.Sleep(10 * time.Millisecond) // a new request: not read while draining
		}
	}
	return frontend.ReasonShutdown
}

// dispatch parses one request and routes it. It returns false (and the
// reason) when the connection must close.
func (c *clientConn) dispatch(frame []byte, hold *rbuf) (frontend.CloseReason, bool) {
	h, body, err := wire.ParseRequestHeader(frame)
	if err != nil {
		<-c.sem
		if errors.Is(err, wire.ErrUnknownKey) {
			c.log.Warn("unknown API key; closing the connection (no response can be built for it)", "api_key", h.Key, "version", h.Version)
			c.f.m.errorf(h.Key, "unsupported")
			return frontend.ReasonProtocolError, false
		}
		c.log.Warn("malformed request header; closing the connection", "error", err)
		c.f.m.errorf(h.Key, "protocol")
		return frontend.ReasonProtocolError, false
	}
	km := c.f.m.key(h.Key)
	if km != nil {
		km.requests.Inc()
	}
	req, err := wire.DecodeRequest(h, body)
	if err != nil {
		if h.Key == 18 && errors.Is(err, wire.ErrUnknownVersion) {
			// a version newer than kmsg knows: the v0 answer
			req = kmsg.NewPtrApiVersionsRequest()
		} else {
			<-c.sem
			c.log.Warn("cannot parse request; closing the connection", "api", apiName(h.Key), "version", h.Version, "error", err)
			c.f.m.errorf(h.Key, "protocol")
			return frontend.ReasonProtocolError, false
		}
	}
	if h.Key != 18 {
		if lo, hi, ok := c.f.advertised(h.Key); (!ok || h.Version < lo || h.Version > hi) && c.toldOK(h.Key, h.Version) {
			// Answering UNSUPPORTED_VERSION to a version we offered
			// would fail the client for good: it keeps the ranges of
			// its connection. Closed, it reconnects and asks again.
			// The requests before this one are answered first (they
			// may have taken effect), and none after it is read.
			c.log.Warn("the backend brokers do not support a version this client was offered; closing the connection after the requests before it are answered, so that it asks again", "api", apiName(h.Key), "version", h.Version, "min", lo, "max", hi)
			c.f.m.errorf(h.Key, "unsupported")
			c.closing.Store(true)
			if c.out.complete(c.out.push(), nil, nil, slotClose) {
				c.flush()
			}
			return 0, true
		}
	}
	r := &request{c: c, h: h, req: req, slot: c.out.push(), start: time.Now(), km: km}
	if h.Key != 18 {
		lo, hi, ok := c.f.advertised(h.Key)
		if !ok {
			c.log.Warn("request for an API the ambassador does not handle; answering with an error", "api", apiName(h.Key), "version", h.Version)
			c.f.m.errorf(h.Key, "unsupported")
			r.respondError(kerr.UnsupportedVersion.Code)
			return 0, true
		}
		if h.Version < lo || h.Version > hi {
			c.log.Warn("unsupported API version; answering UNSUPPORTED_VERSION", "api", apiName(h.Key), "version", h.Version, "min", lo, "max", hi)
			c.f.m.errorf(h.Key, "unsupported")
			r.respondError(kerr.UnsupportedVersion.Code)
			return 0, true
		}
	}
	if h.Key == 0 {
		r.hold = hold // produce: its batches are written from the frame
	} else {
		hold.ref() // other requests may keep pointing into it: never pooled
	}
	c.route(r)
	return 0, true
}

// backendConn returns the connection to broker id on a lane, dialing it
// when needed.
func (c *clientConn) backendConn(id int32, ln lane) (*brokerConn, error) {
	s := c.f.be.current()
	br, ok := s.brokers[id]
	if !ok {
		c.f.be.triggerRefresh()
		return nil, ErrUnknownBroker
	}
	k := bkey{id: id, addr: br.addr, lane: ln}
	var gone []*brokerConn
	c.bmu.Lock()
	if c.bsnap != s { // close connections to brokers that are gone
		for bk, bc := range c.bconns {
			if nb, ok := s.brokers[bk.id]; !ok || nb.addr != bk.addr {
				delete(c.bconns, bk)
				gone = append(gone, bc)
			}
		}
		c.bsnap = s
	}
	bc := c.bconns[k]
	c.bmu.Unlock()
	for _, g := range gone {
		g.close()
	}
	if bc != nil {
		return bc, nil
	}
	c.bmu.Lock()
	if c.bclosed {
		c.bmu.Unlock()
		return nil, ErrBrokerClosed
	}
	c.bwg.Add(1) // the dial: closeBackends' Wait comes after
	c.bmu.Unlock()
	defer c.bwg.Done()
	bc, err := dialBroker(c.ctx, c.f.sec, k, c.f.settings().dialTimeout, c.f.be.node(br.addr), c.f.m, &c.bwg, c.brokerDied, c.account, c.panicked)
	if err != nil {
		if c.ctx.Err() == nil {
			// As for a connection that failed (brokerDied): the groups and
			// transactions it coordinated are asked for again, so that a
			// coordinator that moved off a dead broker still listed in
			// the metadata is found at the client's next FindCoordinator.
			c.f.be.forgetCoordinatorsOn(id)
		}
		c.f.be.triggerRefresh()
		return nil, err
	}
	c.bmu.Lock()
	if c.bclosed { // the client left while we dialed
		c.bmu.Unlock()
		bc.close()
		return nil, ErrBrokerClosed
	}
	if old := c.bconns[k]; old != nil { // raced: keep the first
		c.bmu.Unlock()
		bc.close()
		return old, nil
	}
	c.bconns[k] = bc
	c.bmu.Unlock()
	return bc, nil
}

// brokerDied forgets a failed backend connection; the next request dials
// again.
func (c *clientConn) brokerDied(bc *brokerConn, err error) {
	c.bmu.Lock()
	if c.bconns[bc.key] == bc {
		delete(c.bconns, bc.key)
	}
	c.bmu.Unlock()
	if !errors.Is(err, ErrBrokerClosed) {
		c.log.Warn("backend connection failed", "node", bc.key.addr, "broker", bc.key.id, "error", err)
		c.f.m.errorf(-1, "backend")
		c.f.be.forgetCoordinatorsOn(bc.key.id)
		c.f.be.triggerRefresh()
	}
}

// closeBackends closes the client's backend connections. A client that
// hangs up after sending a commit or a leave expects the broker to act on
// it, as a broker acts on what it read before the close; so requests in
// flight on the main lanes are let finish (up to lingerMax) before their
// connections close. Fetch lanes close at once: a fetch has no effect.
func (c *clientConn) closeBackends(linger bool) {
	c.bmu.Lock()
	c.bclosed = true
	conns := make([]*brokerConn, 0, len(c.bconns))
	for k, bc := range c.bconns {
		conns = append(conns, bc)
		delete(c.bconns, k)
	}
	c.bmu.Unlock()
	deadline := time.Now().Add(lingerMax)
	for _, bc := range conns {
		if bc.key.lane == laneMain {
			// A client that hung up has its requests in flight finished
			// (linger). In any case, what was read from the client is
			// written before the connection closes: acks=0 produce
			// requests get no answer to wait for, and a broker acts on
			// what it reads.
			for time.Now().Before(deadline) && !c.f.srv.Forced() {
				n := bc.unwritten()
				if linger && !c.f.stopping() {
					n = bc.pending()
				}
				if n == 0 {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		bc.close()
	}
}

// lingerMax bounds how long a closed client's requests in flight may take.
const lingerMax = 5 * time.Second

// send forwards req to broker id and calls cb with the response or error;
// hold is the buffer req's record batches are in, if any.
func (c *clientConn) send(id int32, ln lane, clientID *string, req kmsg.Request, hold *rbuf, cb func(kmsg.Response, error)) {
	if cb != nil {
		cb = c.backoffErrors(id, cb)
	}
	bc, err := c.backendConn(id, ln)
	if err != nil {
		if cb != nil {
			cb(nil, err)
		}
		return
	}
	if km := c.f.m.key(req.Key()); km != nil {
		km.parts.Inc()
	}
	bc.send(clientID, req, hold, cb)
}

// backoffErrors delays the failures of a broker that keeps failing: the
// error answers the ambassador makes for a failed connection are
// retriable and instant, and a client retrying at once would meet the
// same failure in a loop (a broker that drops every connection right
// after a request: thousands of retries a second, a dial each). The first
// failure is answered at once, the next ones after 50 ms doubling up to
// 1 s, until the broker answers again; as directly, where the client
// backs off reconnecting.
func (c *clientConn) backoffErrors(id int32, cb func(kmsg.Response, error)) func(kmsg.Response, error) {
	return func(resp kmsg.Response, err error) {
		if err == nil {
			if c.failing.Load() > 0 {
				c.bmu.Lock()
				if _, ok := c.fails[id]; ok {
					delete(c.fails, id)
					c.failing.Add(-1)
				}
				c.bmu.Unlock()
			}
			cb(resp, nil)
			return
		}
		if errors.Is(err, ErrBrokerClosed) || c.ctx.Err() != nil {
			cb(nil, err)
			return
		}
		c.bmu.Lock()
		if c.fails == nil {
			c.fails = map[int32]int{}
		}
		n, ok := c.fails[id]
		if !ok {
			c.failing.Add(1)
		}
		c.fails[id] = n + 1
		c.bmu.Unlock()
		if n == 0 {
			cb(nil, err)
			return
		}
		time.AfterFunc(min(50*time.Millisecond<<min(n-1, 5), time.Second), func() {
			defer c.contain()
			cb(nil, err)
		})
	}
}

// forward sends the client's request unchanged to one broker and answers
// with the broker's response after fix (if any); failCode answers a
// failed connection.
func (c *clientConn) forward(r *request, id int32, failCode int16, fix func(kmsg.Response)) {
	if id < 0 {
		c.f.m.errorf(r.h.Key, "routing")
		r.respondError(failCode)
		return
	}
	c.send(id, laneMain, r.h.ClientID, r.req, r.hold, func(resp kmsg.Response, err error) {
		if err != nil {
			c.f.m.errorf(r.h.Key, "backend")
			r.respondError(failCode)
			return
		}
		if fix != nil {
			fix(resp)
		}
		r.respond(resp)
	})
}

// part is one piece of a split request.
type part struct {
	broker int32
	req    kmsg.Request
	resp   kmsg.Response
	err    error
}

// scatter sends every part and calls merge once all have answered (or
// failed), on the goroutine of the last one.
func (c *clientConn) scatter(r *request, ln lane, parts []*part, merge func([]*part)) {
	c.scatterWithin(r, ln, parts, 0, merge)
}

// errPartTimedOut is the error of a part not answered within its
// scatter's limit.
var errPartTimedOut = errors.New("kafka: broker did not answer in time")

// scatterWithin is scatter with a limit (0: none): parts not answered
// within it get errPartTimedOut and merge runs with the others' answers,
// so that one broker that hangs does not hold the partitions of the
// healthy ones (their answers would wait for the hung one's connection
// deadline, past the client's own request timeout). A late answer is
// dropped.
func (c *clientConn) scatterWithin(r *request, ln lane, parts []*part, within time.Duration, merge func([]*part)) {
	if len(parts) == 0 {
		merge(parts)
		return
	}
	var mu sync.Mutex
	left, done := len(parts), false
	answered := make([]bool, len(parts))
	var timer *time.Timer
	if within > 0 {
		timer = time.AfterFunc(within, func() {
			defer c.contain()
			mu.Lock()
			if done {
				mu.Unlock()
				return
			}
			done = true
			for i, p := range parts {
				if !answered[i] {
					p.err = errPartTimedOut
				}
			}
			mu.Unlock()
			c.f.m.errorf(r.h.Key, "backend")
			c.log.Warn("a broker did not answer its part of a split request in time; answering the others", "api", apiName(r.h.Key), "within", within)
			merge(parts)
		})
	}
	for i, p := range parts {
		c.send(p.broker, ln, r.h.ClientID, p.req, r.hold, func(resp kmsg.Response, err error) {
			mu.Lock()
			if done {
				mu.Unlock()
				return
			}
			p.resp, p.err = resp, err
			answered[i] = true
			left--
			last := left == 0
			if last {
				done = true
			}
			mu.Unlock()
			if err != nil {
				c.f.m.errorf(r.h.Key, "backend")
			}
			if last {
				if timer != nil {
					timer.Stop()
				}
				merge(parts)
			}
		})
	}
}
