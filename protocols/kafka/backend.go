package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/protocols/kafka/wire"
)

// Errors of backend connections.
var (
	// ErrBrokerClosed is the error in-flight requests of a backend
	// connection get when the ambassador closes it.
	ErrBrokerClosed = errors.New("kafka: backend connection closed")
	// ErrBrokerTimeout is a broker that did not answer in time.
	ErrBrokerTimeout = errors.New("kafka: backend broker did not answer in time")
)

// baseTimeout bounds every backend request beyond its own wait (a fetch's
// MaxWait, a produce's timeout, a join's rebalance timeout).
var baseTimeout = 30 * time.Second // a var for tests

// inlineMax is the size from which a request frame is always written by
// the connection's writer goroutine rather than by its sender.
const inlineMax = 64 << 10

// maxResponse bounds a backend response frame.
const maxResponse = 1 << 30

// lane separates a client's long-polling fetches from its other requests
// to the same broker, so that a fetch waiting out its MaxWait does not hold
// up a produce or a commit behind it on the broker's connection.
type lane uint8

const (
	laneMain lane = iota
	laneFetch
)

type bkey struct {
	id   int32
	addr string
	lane lane
}

// inflight is one request awaiting its response on a backend connection.
type inflight struct {
	corr     int32
	key      int16
	version  int16
	sent     time.Time
	deadline time.Time     // when the broker must have answered it
	wait     time.Duration // how long it may take once at the head of the queue
	cb       func(kmsg.Response, error)
	cbf      func(kmsg.Response, *rbuf, error) // owns the response frame (fetch)
}

// brokerConn is one pipelined connection to a backend broker, owned by one
// client connection. Requests are queued in the order send is called and a
// writer goroutine writes whatever is queued in one writev, so that the
// client's reader never waits on one broker's full socket while another
// broker has nothing to do; the broker answers in order, and a reader
// goroutine hands each response to its callback.
type brokerConn struct {
	key     bkey
	node    *cluster.Node // may be nil
	conn    net.Conn
	m       *metrics
	done    func(*brokerConn, error) // called once when the connection dies
	account func(n int)              // bytes queued (+) and written or dropped (-)
	// panicked, when set, is told of a panic in a response's callback
	// (a bug): the client it belongs to is closed, not the process.
	panicked func(r any)

	wmu sync.Mutex // held while writing to conn, by the writer or a sender

	mu    sync.Mutex // guards everything below
	corr  int32
	queue []*inflight // awaiting responses, in write order
	jobs  []writeJob  // awaiting the writer
	busy  bool        // the writer holds jobs taken from the queue
	err   error
	wake  chan struct{} // cap 1: jobs queued or the connection failed

	// SASL session renewal (KIP-368), when the broker gave the session a
	// lifetime: before it ends, requests are parked, the pipeline drains,
	// the SASL exchange runs again on the connection, and the parked
	// requests go out in their order.
	sec      *security
	reauthAt time.Time   // renew from then on (zero: never)
	renewing bool        // requests are parked
	parked   []parkedReq // in send order
	timer    *time.Timer // renews an idle connection in time
}

// parkedReq is a request sent while the connection renews its session.
type parkedReq struct {
	clientID *string
	req      kmsg.Request
	hold     *rbuf // one reference, dropped when sent or failed
	cb       func(kmsg.Response, error)
	cbf      func(kmsg.Response, *rbuf, error)
}

// writeJob is one request frame waiting to be written, as segments, with
// the buffer its records are in (released once written).
type writeJob struct {
	bufs net.Buffers
	n    int
	hold *rbuf
}

func dialBroker(ctx context.Context, sec *security, k bkey, timeout time.Duration, node *cluster.Node, m *metrics,
	wg *sync.WaitGroup, done func(*brokerConn, error), account func(int), panicked func(any)) (*brokerConn, error) {
	conn, br, lifetime, err := sec.dial(ctx, k.addr, timeout, true)
	if err != nil {
		if node != nil && !errors.Is(err, ErrAuth) {
			node.Observe(0, err)
		}
		return nil, fmt.Errorf("kafka: dial broker %d at %s: %w", k.id, k.addr, err)
	}
	b := &brokerConn{key: k, node: node, conn: conn, m: m, done: done, account: account, panicked: panicked, wake: make(chan struct{}, 1), sec: sec}
	wg.Go(func() {
		defer b.contain()
		b.readLoop(br)
	})
	wg.Go(b.writeLoop)
	b.mu.Lock()
	b.scheduleRenewal(lifetime)
	b.mu.Unlock()
	return b, nil
}

// renewalLead is how long before a SASL session ends its renewal starts:
// a fifth of its lifetime, at least a second when the lifetime allows.
func renewalLead(lifetime time.Duration) time.Duration {
	return min(max(lifetime/5, time.Second), lifetime/2)
}

// scheduleRenewal arms the renewal of a session of the given lifetime (0:
// it does not end). b.mu is held.
func (b *brokerConn) scheduleRenewal(lifetime time.Duration) {
	if lifetime <= 0 || b.sec == nil || b.sec.mech == nil {
		b.reauthAt = time.Time{}
		return
	}
	in := lifetime - renewalLead(lifetime)
	b.reauthAt = time.Now().Add(in)
	if b.timer != nil {
		b.timer.Stop()
	}
	b.timer = time.AfterFunc(in, func() {
		b.mu.Lock()
		start := b.err == nil && !b.renewing
		b.renewing = b.renewing || start
		b.mu.Unlock()
		if start {
			go b.renew()
		}
	})
}

// renew renews the SASL session: it waits for the requests in flight to
// be answered (a broker takes no other request during the exchange), runs
// the exchange, then sends the requests parked meanwhile, in order. A
// failed renewal ends the connection.
func (b *brokerConn) renew() {
	// The requests in flight may take as long as they legitimately may (a
	// JoinGroup up to its rebalance timeout; the broker would not take
	// another request on this connection meanwhile either). A session
	// that ends meanwhile can still be renewed: a broker refuses only
	// other requests on an expired session (KIP-368), and none is sent.
	floor := time.Now().Add(baseTimeout)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		b.mu.Lock()
		err, drained := b.err, len(b.queue) == 0 && len(b.jobs) == 0 && !b.busy
		deadline := floor
		for _, in := range b.queue {
			if in.deadline.After(deadline) {
				deadline = in.deadline
			}
		}
		b.mu.Unlock()
		if err != nil {
			return
		}
		if drained {
			break
		}
		if time.Now().After(deadline) {
			b.fail(fmt.Errorf("kafka: broker %d: requests in flight did not finish for the SASL session renewal", b.key.id), true)
			return
		}
		time.Sleep(pause)
	}
	ctx, cancel := context.WithTimeout(context.Background(), baseTimeout)
	defer cancel()
	type answer struct {
		resp kmsg.Response
		err  error
	}
	roundTrip := func(req kmsg.Request) (kmsg.Response, error) {
		ch := make(chan answer, 1)
		id := "ambassador"
		b.enqueue(&id, req, nil, func(resp kmsg.Response, err error) { ch <- answer{resp, err} }, nil, false)
		a := <-ch
		return a.resp, a.err
	}
	lifetime, err := authenticate(ctx, b.sec.mech, b.key.addr, roundTrip)
	if err != nil {
		b.mu.Lock()
		closed := b.err != nil // the exchange failed because the connection did
		b.mu.Unlock()
		if !closed {
			b.m.reauths.WithLabelValues("error").Inc()
			b.fail(fmt.Errorf("kafka: renewing the SASL session with broker %d: %w", b.key.id, err), true)
		}
		return
	}
	b.m.reauths.WithLabelValues("ok").Inc()
	b.mu.Lock()
	b.scheduleRenewal(lifetime)
	b.mu.Unlock()
	for {
		b.mu.Lock()
		p, err := b.parked, b.err
		b.parked = nil
		if len(p) == 0 || err != nil {
			b.renewing = false
			b.mu.Unlock()
			b.failParked(p, err)
			return
		}
		b.mu.Unlock()
		for _, pr := range p {
			b.enqueue(pr.clientID, pr.req, pr.hold, pr.cb, pr.cbf, false)
			pr.hold.unref()
		}
	}
}

// failParked answers parked requests with err (nil: nothing to answer).
func (b *brokerConn) failParked(p []parkedReq, err error) {
	for _, pr := range p {
		pr.hold.unref()
		switch {
		case pr.cb != nil:
			pr.cb(nil, err)
		case pr.cbf != nil:
			pr.cbf(nil, nil, err)
		}
	}
}

// requestWait is how long a broker may legitimately hold a request before
// answering; a negative timeout in a request (brokers answer it at once,
// with an error or without waiting) counts as none.
func requestWait(req kmsg.Request) time.Duration {
	return max(0, requestWait0(req))
}

func requestWait0(req kmsg.Request) time.Duration {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		return time.Duration(r.MaxWaitMillis) * time.Millisecond
	case *kmsg.JoinGroupRequest:
		return time.Duration(max(r.RebalanceTimeoutMillis, r.SessionTimeoutMillis)) * time.Millisecond
	case *kmsg.SyncGroupRequest:
		return 5 * time.Minute
	case kmsg.TimeoutRequest:
		return time.Duration(r.Timeout()) * time.Millisecond
	}
	return 0
}

// send queues req for the broker. cb gets the response, or the error that
// ended the connection; it runs on the connection's reader goroutine (or
// the caller's, when the connection is already dead) and must not block.
// A nil cb sends a request that gets no response (produce with acks=0).
// hold, when set, is the buffer req's record batches are in: it is kept
// (one reference) until they are written.
func (b *brokerConn) send(clientID *string, req kmsg.Request, hold *rbuf, cb func(kmsg.Response, error)) {
	b.sendReq(clientID, req, hold, cb, nil)
}

// sendOwned is send for a response whose frame the callback takes over:
// cb gets it with one reference, which it must drop (unref) when done, so
// that the frame can go back to the pool once nothing points into it.
func (b *brokerConn) sendOwned(clientID *string, req kmsg.Request, cb func(kmsg.Response, *rbuf, error)) {
	b.sendReq(clientID, req, nil, nil, cb)
}

func (b *brokerConn) sendReq(clientID *string, req kmsg.Request, hold *rbuf, cb func(kmsg.Response, error), cbf func(kmsg.Response, *rbuf, error)) {
	b.enqueue(clientID, req, hold, cb, cbf, true)
}

// enqueue writes a request or queues it for the writer. gated requests
// park while the SASL session is due or being renewed (renew's own
// exchange and its re-sends pass).
func (b *brokerConn) enqueue(clientID *string, req kmsg.Request, hold *rbuf, cb func(kmsg.Response, error), cbf func(kmsg.Response, *rbuf, error), gated bool) {
	now := time.Now()
	b.mu.Lock()
	if gated && b.err == nil && (b.renewing || !b.reauthAt.IsZero() && now.After(b.reauthAt)) {
		start := !b.renewing
		b.renewing = true
		hold.ref()
		b.parked = append(b.parked, parkedReq{clientID: clientID, req: req, hold: hold, cb: cb, cbf: cbf})
		b.mu.Unlock()
		if start {
			go b.renew()
		}
		return
	}
	if err := b.err; err != nil {
		b.mu.Unlock()
		switch {
		case cb != nil:
			cb(nil, err)
		case cbf != nil:
			cbf(nil, nil, err)
		}
		return
	}
	b.corr++
	corr := b.corr
	if cb != nil || cbf != nil {
		wait := baseTimeout + requestWait(req)
		in := &inflight{corr: corr, key: req.Key(), version: req.GetVersion(), sent: now,
			deadline: now.Add(wait), wait: wait, cb: cb, cbf: cbf}
		b.queue = append(b.queue, in)
		if len(b.queue) == 1 {
			_ = b.conn.SetReadDeadline(in.deadline)
		}
	}
	var job writeJob
	if pr, ok := req.(*kmsg.ProduceRequest); ok {
		// Record batches go out from the client's frame, not copied.
		seg := wire.AppendSegmentedRequest(make([]byte, 0, 256), corr, clientID, pr, wire.ProduceRecordFields(pr))
		job = writeJob{bufs: seg.Bufs, n: seg.Len, hold: hold}
		hold.ref()
	} else {
		frame := wire.AppendRequest(make([]byte, 0, 128), corr, clientID, req)
		job = writeJob{bufs: net.Buffers{frame}, n: len(frame)}
	}
	// Fast path: a small request, nothing queued and nobody writing:
	// write here, saving the hand-off to the writer (most requests).
	// Otherwise queue behind. busy covers the writer from taking jobs to
	// locking wmu, so that a request never overtakes one queued before
	// it. Large requests (produce batches) always go to the writer: the
	// client's reader goes on reading while the broker takes them, and
	// the parts of a split request are written to their brokers at once.
	if job.n < inlineMax && len(b.jobs) == 0 && !b.busy && b.wmu.TryLock() {
		b.mu.Unlock()
		_ = b.conn.SetWriteDeadline(now.Add(baseTimeout))
		w := job.bufs
		_, err := w.WriteTo(b.conn)
		b.wmu.Unlock()
		job.release()
		b.m.bytesBackendOut.Add(float64(job.n))
		if err != nil {
			b.fail(fmt.Errorf("kafka: write to broker %d: %w", b.key.id, err), true)
			return
		}
		b.mu.Lock()
		queued := len(b.jobs) > 0
		b.mu.Unlock()
		if queued { // queued while we wrote: the writer takes over
			b.kick()
		}
		return
	}
	b.jobs = append(b.jobs, job)
	b.mu.Unlock()
	b.account(job.n)
	b.kick()
}

func (b *brokerConn) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// release drops the job's hold on the buffer its records are in.
func (j *writeJob) release() {
	j.hold.unref()
	j.hold = nil
}

// writeLoop writes the queued requests, all that are queued in one writev,
// in queue order, until the connection fails.
func (b *brokerConn) writeLoop() {
	var bufs net.Buffers
	var jobs []writeJob
	for range b.wake {
		for {
			b.mu.Lock()
			if b.err != nil {
				pending := b.jobs
				b.jobs = nil
				b.busy = false
				b.mu.Unlock()
				for i := range pending {
					b.account(-pending[i].n)
					pending[i].release()
				}
				return
			}
			jobs, b.jobs = b.jobs, jobs[:0]
			b.busy = len(jobs) > 0
			b.mu.Unlock()
			if len(jobs) == 0 {
				break
			}
			n := 0
			for i := range jobs {
				bufs = append(bufs, jobs[i].bufs...)
				n += jobs[i].n
			}
			b.wmu.Lock()
			_ = b.conn.SetWriteDeadline(time.Now().Add(baseTimeout))
			w := bufs // WriteTo consumes its receiver
			_, err := w.WriteTo(b.conn)
			b.wmu.Unlock()
			clear(bufs)
			bufs = bufs[:0]
			for i := range jobs {
				jobs[i].release()
			}
			clear(jobs)
			b.account(-n)
			b.m.bytesBackendOut.Add(float64(n))
			if err != nil {
				b.fail(fmt.Errorf("kafka: write to broker %d: %w", b.key.id, err), true)
			}
		}
	}
}

func (b *brokerConn) readLoop(br *bufio.Reader) {
	for {
		frame, err := wire.ReadFrameAlloc(br, maxResponse, getFrame)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("%w (broker %d)", ErrBrokerTimeout, b.key.id)
			} else {
				err = fmt.Errorf("kafka: read from broker %d: %w", b.key.id, err)
			}
			b.fail(err, true)
			return
		}
		b.m.bytesBackendIn.Add(float64(len(frame) + 4))
		corr, err := wire.ResponseCorrelation(frame)
		if err != nil {
			b.fail(err, true)
			return
		}
		b.mu.Lock()
		if len(b.queue) == 0 || b.queue[0].corr != corr {
			b.mu.Unlock()
			b.fail(fmt.Errorf("%w: broker %d answered correlation id %d out of order", wire.ErrMalformed, b.key.id, corr), true)
			return
		}
		in := b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		if len(b.queue) > 0 {
			// The broker answers in order: the next request's time
			// counts from now at the earliest (it may have waited
			// behind a JoinGroup held for its rebalance timeout).
			next := b.queue[0]
			next.deadline = later(next.deadline, time.Now().Add(next.wait))
			_ = b.conn.SetReadDeadline(next.deadline)
		} else {
			b.queue = b.queue[:0:0]
			_ = b.conn.SetReadDeadline(time.Time{})
		}
		b.mu.Unlock()
		resp, err := wire.DecodeResponse(in.key, in.version, frame)
		now := time.Now()
		if b.node != nil {
			b.node.Observe(now.Sub(in.sent), nil)
		}
		if in.cbf != nil {
			rb := &rbuf{b: frame}
			rb.refs.Store(1)
			in.cbf(resp, rb, err)
		} else {
			in.cb(resp, err) // its frame is left to the garbage collector
		}
		// A callback may write to a slow client and hold this reader; the
		// answers that came meanwhile must not count as the broker's
		// delay (a read past its deadline fails even with data waiting).
		if time.Since(now) > 100*time.Millisecond {
			b.mu.Lock()
			if len(b.queue) > 0 {
				_ = b.conn.SetReadDeadline(later(b.queue[0].deadline, time.Now().Add(time.Second)))
			}
			b.mu.Unlock()
		}
	}
}

// contain recovers a panic of the reader (in a response's callback): the
// owner is told (it closes its client), then the connection fails.
func (b *brokerConn) contain() {
	r := recover()
	if r == nil {
		return
	}
	if b.panicked != nil {
		b.panicked(r)
	}
	b.fail(fmt.Errorf("kafka: broker %d: panic handling a response: %v", b.key.id, r), false)
}

// fail ends the connection: every request in flight gets err. failure
// says whether the broker is to blame (it counts against the node).
func (b *brokerConn) fail(err error, failure bool) {
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return
	}
	b.err = err
	q := b.queue
	b.queue = nil
	parked := b.parked
	b.parked = nil
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	defer b.failParked(parked, err)
	b.kick() // the writer drops what is queued and ends
	_ = b.conn.Close()
	if failure && b.node != nil {
		b.node.Observe(0, err)
	}
	if b.done != nil {
		b.done(b, err)
	}
	for _, in := range q {
		if in.cbf != nil {
			in.cbf(nil, nil, err)
		} else {
			in.cb(nil, err)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// close ends the connection on the ambassador's initiative.
func (b *brokerConn) close() { b.fail(ErrBrokerClosed, false) }

// unwritten is the number of requests read from the client and not yet
// written to the broker: waiting for the writer or being written by it, or
// parked while the session renews.
func (b *brokerConn) unwritten() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unwrittenLocked()
}

func (b *brokerConn) unwrittenLocked() int {
	n := len(b.jobs) + len(b.parked)
	if b.busy {
		n++
	}
	return n
}

// pending is the number of requests not yet answered or, for those that
// get no answer (acks=0 produce), not yet written: awaiting a response,
// waiting for the writer or being written by it, or parked while the
// session renews.
func (b *brokerConn) pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue) + b.unwrittenLocked()
}
