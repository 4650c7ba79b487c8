package redis

import (
	"sync/atomic"
	"time"
)

// maxInflight bounds a client's batches sent and not yet answered; the
// client's reader waits for room (backpressure).
const maxInflight = 16

// batch is one pipelined batch of a client once sent. Batches complete in
// any order but are written in the client's order: a batch whose last
// reply arrives is written, with the batches after it that are complete
// too, by whoever completed it (usually a backend reader), so a reply goes
// to the client without waiting for the client's own goroutine. The
// client's goroutine meanwhile reads and sends the next batch.
type batch struct {
	c           *client
	reqs        []*request
	hidden      []*request
	outstanding atomic.Int32
	done        bool // guarded by c.qmu
	next        *batch
	start       time.Time
	spare       []*request // reset request objects, for the client's next batches
}

// finish counts one of the batch's requests complete (any goroutine).
func (b *batch) finish() {
	if b.outstanding.Add(-1) == 0 {
		b.c.batchDone(b)
	}
}

// getBatch takes a recycled batch (or a new one) and gives its request
// objects to the client.
func (c *client) getBatch() *batch {
	c.qmu.Lock()
	var b *batch
	if n := len(c.batchFree); n > 0 {
		b = c.batchFree[n-1]
		c.batchFree[n-1] = nil
		c.batchFree = c.batchFree[:n-1]
	}
	c.qmu.Unlock()
	if b == nil {
		return &batch{c: c}
	}
	if len(c.free) < maxFree {
		c.free = append(c.free, b.spare...)
	}
	clear(b.spare)
	b.spare = b.spare[:0]
	return b
}

// enqueue appends b to the client's queue of batches in flight.
func (c *client) enqueue(b *batch) {
	c.qmu.Lock()
	b.done = false
	b.next = nil
	if c.qtail == nil {
		c.qhead = b
	} else {
		c.qtail.next = b
	}
	c.qtail = b
	c.inflight++
	c.qmu.Unlock()
}

// batchDone marks b complete and writes every complete batch at the head
// of the queue, unless another goroutine is writing (it then writes b).
func (c *client) batchDone(b *batch) {
	c.qmu.Lock()
	b.done = true
	if c.writing {
		c.qmu.Unlock()
		return
	}
	c.writing = true
	c.writeQueued(false)
}

// writeQueued writes the complete batches at the head of the queue; it is
// called with qmu held and the writing role taken, and gives both up. The
// goroutine that completed a batch is usually a node connection's reader,
// shared by many clients: it must not wait on one client's full socket
// (a client that does not read its replies would stall every client of
// the node). So unless mayBlock, what the socket does not take at once is
// left to a goroutine of the client's own (drainOut), which takes the
// writing role on.
func (c *client) writeQueued(mayBlock bool) {
	for c.qhead != nil && c.qhead.done {
		h := c.qhead
		c.qhead = h.next
		if c.qhead == nil {
			c.qtail = nil
		}
		more := c.qhead != nil && c.qhead.done
		c.qmu.Unlock()
		if !c.writeBatch(h, !more, mayBlock) {
			c.f.goBackground(func() { c.drainOut(h) })
			return
		}
		c.qmu.Lock()
		c.inflight--
		c.batchFree = append(c.batchFree, h)
	}
	c.writing = false
	wake := c.qwaiting
	c.qmu.Unlock()
	if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// drainOut finishes writing h's replies, which the client's socket did
// not take at once, then writes the batches complete meanwhile; it holds
// the writing role (and wmu, for the rest of h's write) meanwhile. h
// counts as in flight until written, so a client's QUIT or a SUBSCRIBE
// waiting for the queue waits for it.
func (c *client) drainOut(h *batch) {
	if c.outUnlocked {
		c.outUnlocked = false
		c.wmu.Lock()
	}
	c.flushOut(true)
	c.qmu.Lock()
	c.inflight--
	c.batchFree = append(c.batchFree, h)
	c.writeQueued(true)
}

// writeBatch merges a batch's replies (flush: and writes them; else the
// next complete batch's replies join them in one write), then resets its
// request objects into its spare list. Only the goroutine holding the
// writing role runs it. It reports false when the socket did not take
// everything without waiting, or wmu was taken (only when !mayBlock): the
// rest stays in c.out, with wmu held (or c.outUnlocked set), for
// drainOut.
func (c *client) writeBatch(b *batch, flush, mayBlock bool) bool {
	if c.out == nil {
		c.outBox = outBufPool.Get().(*[]byte)
		c.out = (*c.outBox)[:0]
	}
	for _, r := range b.reqs {
		if r.merge != nil {
			r.merge(c, r)
		} else {
			c.out = append(c.out, r.reply...)
		}
	}
	written := true
	if flush && len(c.out) > 0 {
		switch {
		case mayBlock:
			c.wmu.Lock()
			written = c.flushOut(true)
		case c.wmu.TryLock():
			written = c.flushOut(false)
		default:
			// A Pub/Sub relay is writing (to a client that may not be
			// reading): the shared reader must not wait for it either.
			c.outUnlocked = true
			written = false
		}
	}
	d := time.Since(b.start)
	for _, r := range b.reqs {
		if r.rt != nil {
			c.f.metrics.observe(r.rt, d)
		}
		for _, s := range r.subs {
			s.reset()
			b.spare = append(b.spare, s)
		}
		r.reset()
		b.spare = append(b.spare, r)
	}
	for _, r := range b.hidden {
		r.reset()
		b.spare = append(b.spare, r)
	}
	clear(b.reqs)
	b.reqs = b.reqs[:0]
	clear(b.hidden)
	b.hidden = b.hidden[:0]
	return written
}

// flushOut writes c.out from c.outSent on, with wmu held. Unless block,
// it writes what the socket takes at once and, when that is not all,
// reports false keeping wmu held (no Pub/Sub message may land inside a
// reply). Otherwise it releases wmu and the buffer.
func (c *client) flushOut(block bool) bool {
	now := time.Now()
	_ = c.conn.SetWriteDeadline(now.Add(c.f.writeTimeout()))
	var err error
	if block {
		err = c.rawOut.write(c.out[c.outSent:])
		c.outSent = len(c.out)
	} else {
		var n int
		n, err = c.rawOut.writeSome(c.out[c.outSent:])
		c.outSent += n
		if err == nil && c.outSent < len(c.out) {
			return false
		}
	}
	c.wmu.Unlock()
	c.outSent = 0
	c.lastOut.Store(now.UnixNano())
	if err != nil && c.writeErr.CompareAndSwap(nil, &err) {
		// The client is gone (or reads nothing): its reader may be
		// waiting for a readiness that never comes (a reset that came
		// right after its last command); closing wakes it.
		c.closeAsync()
	}
	if cap(c.out) > 16<<10 {
		c.out = nil
	} else {
		// Back to the pool: idle clients hold no write buffer.
		box := c.outBox
		if box == nil {
			box = new([]byte)
		}
		*box = c.out[:0]
		c.out, c.outBox = nil, nil
		outBufPool.Put(box)
	}
	return true
}
