package kafka

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch across brokers.
//
// A client fetch is split by leader; each part goes to its broker on the
// client's fetch lane with the client's MaxWait and MinBytes. The client is
// answered as soon as the parts that answered hold MinBytes (and some data),
// or once every part has answered; parts still waiting at a broker are then
// detached. Normally one part per broker is outstanding for a connection:
// a new fetch that finds its broker's part still out, with no live fetch
// waiting for it, adopts it instead of queueing another behind it (what it
// wants beyond that part rides on the part that follows), and data a
// detached part brings back is kept for the next fetch that asks for the
// same offsets. Partitions with no
// answer yet are left out of the response (as an incremental fetch leaves
// out unchanged partitions); the client asks for them again.
//
// Fetch sessions are declined: the response carries session id 0 and the
// parts are sessionless full fetches.

// stashTTL bounds how long data of a detached part is kept.
const stashTTL = 10 * time.Second

// fetchGrace is how long past its MaxWait a fetch waits for parts that
// have not answered (a broker that hangs): it is then answered with what
// the others brought, as a broker answers at MaxWait, and the late part's
// data goes to the stash for the next fetch.
const fetchGrace = time.Second

// fetchItem is one partition of a part: its topic and the request
// partition (offset, epochs, max bytes).
type fetchItem struct {
	topic string
	id    [16]byte
	p     kmsg.FetchRequestTopicPartition
}

type stashed struct {
	item   fetchItem // what fetched it
	p      kmsg.FetchResponseTopicPartition
	buf    *rbuf // the frame p's records are in; the stash holds a reference
	at     time.Time
	broker int32
}

type fetchState struct {
	mu    sync.Mutex
	lanes map[int32]*fetchPart // the outstanding part per broker
	stash map[tpKey]stashed
	live  map[*fetchOp]struct{} // fetches waiting (their timer armed)
}

func (fs *fetchState) init() {
	fs.lanes = map[int32]*fetchPart{}
	fs.stash = map[tpKey]stashed{}
	fs.live = map[*fetchOp]struct{}{}
}

type fetchPart struct {
	broker int32
	op     *fetchOp // the fetch it answers; nil once detached
	items  map[tpKey]fetchItem
	req    *kmsg.FetchRequest
	// extra: what the fetch that adopted the part wants from its broker
	// and the part does not cover (another partition, another offset);
	// the part that follows it asks for these.
	extra []fetchItem
}

type fetchOp struct {
	r         *request
	req       *kmsg.FetchRequest
	want      map[tpKey]int64
	got       map[tpKey]kmsg.FetchResponseTopicPartition
	bytes     int
	waiting   int
	done      bool
	throttle  int32
	endpoints bool
	bufs      []*rbuf // frames the records in got are in, one reference each
	timer     *time.Timer
}

// add records a partition's answer; buf is the frame its records are in,
// of which the fetch takes a reference (given: the caller's reference
// passes to the fetch). It reports whether the partition was new.
func (op *fetchOp) add(k tpKey, p kmsg.FetchResponseTopicPartition, buf *rbuf, given bool) bool {
	if _, dup := op.got[k]; dup {
		if given {
			buf.unref()
		}
		return false
	}
	op.got[k] = p
	op.bytes += len(p.RecordBatches)
	if buf != nil && len(p.RecordBatches) > 0 {
		if !given {
			buf.ref()
		}
		op.bufs = append(op.bufs, buf)
	} else if given {
		buf.unref()
	}
	return true
}

// ready: enough data, or nothing left to wait for.
func (op *fetchOp) ready() bool {
	return op.waiting == 0 || op.bytes > 0 && op.bytes >= int(op.req.MinBytes)
}

func (c *clientConn) handleFetch(r *request) {
	req := r.req.(*kmsg.FetchRequest)
	if req.SessionEpoch > 0 {
		// We never hand out a session, so there is none to continue.
		// Epoch -1 (a sessionless fetch, closing the session it names)
		// and 0 (a full fetch asking for a new session) are full
		// fetches whatever session id they name (KIP-227): answered,
		// with session id 0 (none created).
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		r.respond(resp)
		return
	}
	byID := r.h.Version >= 13
	s := c.f.be.current()
	op := &fetchOp{r: r, req: req, want: map[tpKey]int64{}, got: map[tpKey]kmsg.FetchResponseTopicPartition{}}

	groups := map[int32][]fetchItem{}
	var order []int32
	stale := false
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			p := t.Partitions[j]
			k := fetchKey(t.Topic, t.TopicID, p.Partition, byID)
			op.want[k] = p.FetchOffset
			l, code := s.leader(t.Topic, t.TopicID, byID, p.Partition)
			if code != 0 {
				op.add(k, fetchErrorPartition(p.Partition, code), nil, false)
				stale = true
				continue
			}
			if _, ok := groups[l]; !ok {
				order = append(order, l)
			}
			groups[l] = append(groups[l], fetchItem{topic: t.Topic, id: t.TopicID, p: p})
		}
	}
	if stale {
		c.f.be.triggerRefresh()
	}

	var toSend []*fetchPart
	var finish []*fetchOp
	fs := &c.fetch
	fs.mu.Lock()
	now := time.Now()
	ahead := map[int32][]fetchItem{} // read-ahead of the stash entries used
	for k, st := range fs.stash {
		if off, ok := op.want[k]; ok && off == st.item.p.FetchOffset && now.Sub(st.at) < stashTTL {
			op.add(k, st.p, st.buf, true) // the stash's reference passes to the fetch
			if it, ok := nextItem(st.item, st.p, byID); ok && c.f.settings().readAhead {
				ahead[st.broker] = append(ahead[st.broker], it)
				if _, ok := groups[st.broker]; !ok {
					order = append(order, st.broker)
					groups[st.broker] = nil
				}
			}
		} else {
			st.buf.unref()
		}
	}
	clear(fs.stash)
	nparts := 0
	for _, l := range order {
		var keep []fetchItem
		for _, it := range groups[l] {
			if _, have := op.got[fetchKey(it.topic, it.id, it.p.Partition, byID)]; !have {
				keep = append(keep, it)
			}
		}
		groups[l] = keep
		if len(keep)+len(ahead[l]) > 0 {
			nparts++
		}
	}
	for _, l := range order {
		items := groups[l]
		if out := fs.lanes[l]; out != nil {
			if len(items) == 0 {
				continue
			}
			// Adopt a part no live fetch waits for (a read-ahead, or the
			// part of a fetch already answered). One a fetch still
			// waits for stays that fetch's: taking it would answer that
			// fetch empty at once, and two pipelined fetches would take
			// it from each other without end. This fetch sends its own
			// part behind it.
			if prev := out.op; prev == nil || prev.done {
				out.op = op
				op.waiting++
				out.extra = uncovered(out.items, items, byID)
				continue
			}
		}
		all := append(items, ahead[l]...)
		if len(all) == 0 {
			continue
		}
		part := newFetchPart(l, req, nparts, all, byID)
		if len(items) > 0 {
			part.op = op
			op.waiting++
		}
		fs.lanes[l] = part
		toSend = append(toSend, part)
	}
	if op.ready() {
		op.done = true
		finish = append(finish, op)
		fs.detach(op)
	} else {
		wait := time.Duration(req.MaxWaitMillis)*time.Millisecond + fetchGrace - time.Since(r.start)
		op.timer = time.AfterFunc(wait, func() {
			defer c.contain()
			c.fetchTimedOut(op)
		})
		fs.live[op] = struct{}{}
	}
	fs.mu.Unlock()

	for _, p := range toSend {
		c.sendFetchPart(r.h.ClientID, p)
	}
	for _, o := range finish {
		c.finishFetch(o)
	}
}

func (c *clientConn) sendFetchPart(clientID *string, p *fetchPart) {
	bc, err := c.backendConn(p.broker, laneFetch)
	if err != nil {
		c.fetchDone(clientID, p, nil, nil, err)
		return
	}
	if km := c.f.m.key(1); km != nil {
		km.parts.Inc()
	}
	bc.sendOwned(clientID, p.req, func(resp kmsg.Response, buf *rbuf, err error) {
		c.fetchDone(clientID, p, resp, buf, err)
	})
}

// newFetchPart builds a sessionless fetch of items for broker l with the
// client's parameters; MaxBytes is shared among the parts of a fetch.
func newFetchPart(l int32, tmpl *kmsg.FetchRequest, nparts int, items []fetchItem, byID bool) *fetchPart {
	preq := &kmsg.FetchRequest{
		Version:        tmpl.Version,
		ClusterID:      tmpl.ClusterID,
		ReplicaID:      tmpl.ReplicaID,
		ReplicaState:   tmpl.ReplicaState,
		MaxWaitMillis:  tmpl.MaxWaitMillis,
		MinBytes:       tmpl.MinBytes,
		MaxBytes:       tmpl.MaxBytes,
		IsolationLevel: tmpl.IsolationLevel,
		SessionID:      0,
		SessionEpoch:   -1,
		Rack:           tmpl.Rack,
	}
	if nparts > 1 && preq.MaxBytes > 0 {
		preq.MaxBytes = max(preq.MaxBytes/int32(nparts), 1)
	}
	part := &fetchPart{broker: l, items: make(map[tpKey]fetchItem, len(items)), req: preq}
	// One entry per topic, wherever its items stand: they come grouped by
	// topic, except after a merge. Past the last entry, a look back for a
	// few topics, a map for many.
	var index map[tpKey]int
	entry := func(it fetchItem) int {
		same := func(i int) bool { return preq.Topics[i].Topic == it.topic && preq.Topics[i].TopicID == it.id }
		last := len(preq.Topics) - 1
		if last >= 0 && same(last) {
			return last
		}
		k := tpKey{topic: it.topic, id: it.id}
		if index == nil && len(preq.Topics) > 8 {
			index = make(map[tpKey]int, len(preq.Topics))
			for i := range preq.Topics {
				index[tpKey{topic: preq.Topics[i].Topic, id: preq.Topics[i].TopicID}] = i
			}
		}
		if index != nil {
			if i, ok := index[k]; ok {
				return i
			}
		} else {
			for i := last - 1; i >= 0; i-- {
				if same(i) {
					return i
				}
			}
		}
		preq.Topics = append(preq.Topics, kmsg.FetchRequestTopic{Topic: it.topic, TopicID: it.id})
		if index != nil {
			index[k] = len(preq.Topics) - 1
		}
		return len(preq.Topics) - 1
	}
	for _, it := range items {
		ti := entry(it) // first: it may grow preq.Topics
		pt := &preq.Topics[ti]
		pt.Partitions = append(pt.Partitions, it.p)
		part.items[fetchKey(it.topic, it.id, it.p.Partition, byID)] = it
	}
	return part
}

// uncovered returns the items a part does not fetch as wanted: partitions
// it lacks or asks for at another offset.
func uncovered(have map[tpKey]fetchItem, want []fetchItem, byID bool) []fetchItem {
	var out []fetchItem
	for _, it := range want {
		if h, ok := have[fetchKey(it.topic, it.id, it.p.Partition, byID)]; !ok || h.p.FetchOffset != it.p.FetchOffset {
			out = append(out, it)
		}
	}
	return out
}

// mergeItems returns a's items with b's added, b's winning for a partition
// in both (b holds what a client asked for last).
func mergeItems(a, b []fetchItem, byID bool) []fetchItem {
	if len(b) == 0 {
		return a
	}
	in := make(map[tpKey]bool, len(b))
	for _, it := range b {
		in[fetchKey(it.topic, it.id, it.p.Partition, byID)] = true
	}
	out := make([]fetchItem, 0, len(a)+len(b))
	for _, it := range a {
		if !in[fetchKey(it.topic, it.id, it.p.Partition, byID)] {
			out = append(out, it)
		}
	}
	return append(out, b...)
}

// detach unhooks the outstanding parts from a finished fetch.
func (fs *fetchState) detach(op *fetchOp) {
	delete(fs.live, op)
	for _, p := range fs.lanes {
		if p.op == op {
			p.op = nil
		}
	}
}

func fetchKey(topic string, id [16]byte, p int32, byID bool) tpKey {
	if byID {
		return tpKey{id: id, part: p}
	}
	return tpKey{topic: topic, part: p}
}

func fetchErrorPartition(p int32, code int16) kmsg.FetchResponseTopicPartition {
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.Partition = p
	rp.ErrorCode = code
	rp.RecordBatches = []byte{} // empty, not null, as from a broker
	return rp
}

// nextItem is the read-ahead of a partition: the same fetch from the
// offset after the last complete record batch in p.
func nextItem(it fetchItem, p kmsg.FetchResponseTopicPartition, byID bool) (fetchItem, bool) {
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		return it, false
	}
	next, epoch, ok := nextOffset(p.RecordBatches)
	if !ok || next <= it.p.FetchOffset {
		return it, false
	}
	it.p.FetchOffset = next
	it.p.LastFetchedEpoch = epoch
	return it, true
}

// nextOffset walks the v2 record batch headers of a fetch and returns the
// offset after the last complete batch and that batch's leader epoch.
// Older message formats report false.
func nextOffset(b []byte) (int64, int32, bool) {
	const headerLen = 61 // a v2 batch header
	next, epoch := int64(-1), int32(-1)
	for len(b) >= headerLen {
		base := int64(binary.BigEndian.Uint64(b))
		n := int32(binary.BigEndian.Uint32(b[8:]))
		if n < headerLen-12 || int(n)+12 > len(b) {
			break // the last batch was cut short by max bytes
		}
		if b[16] != 2 {
			return -1, -1, false
		}
		epoch = int32(binary.BigEndian.Uint32(b[12:]))
		next = base + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		b = b[12+n:]
	}
	return next, epoch, next >= 0
}

// fetchDone takes a part's answer: to its fetch if one still waits for it,
// else into the stash. Data delivered to a waiting fetch starts the
// read-ahead of those partitions.
func (c *clientConn) fetchDone(clientID *string, part *fetchPart, resp kmsg.Response, buf *rbuf, err error) {
	defer buf.unref() // the callback's reference; what keeps records took its own
	byID := part.req.Version >= 13
	var fr *kmsg.FetchResponse
	stale := false
	code := int16(0)
	failed := err != nil
	if !failed {
		fr = resp.(*kmsg.FetchResponse)
		code = fr.ErrorCode // a whole-request error: every partition gets it
	} else {
		// The broker's connection failed: its partitions are left out of
		// the fetch, which its timer answers at MaxWait (as an empty long
		// poll), while the routing is refreshed. An error would make the
		// client wait for metadata that, through the ambassador, never
		// changes; answering at once would have it fetch again at once.
		stale = true
		fr = part.req.ResponseKind().(*kmsg.FetchResponse)
	}
	if code != 0 {
		fr = part.req.ResponseKind().(*kmsg.FetchResponse)
		for i := range part.req.Topics {
			t := &part.req.Topics[i]
			rt := kmsg.FetchResponseTopic{Topic: t.Topic, TopicID: t.TopicID}
			for j := range t.Partitions {
				rt.Partitions = append(rt.Partitions, fetchErrorPartition(t.Partitions[j].Partition, code))
			}
			fr.Topics = append(fr.Topics, rt)
		}
	}

	fs := &c.fetch
	var next *fetchPart
	fs.mu.Lock()
	if fs.lanes[part.broker] == part {
		delete(fs.lanes, part.broker)
	}
	op := part.op
	live := op != nil && !op.done
	now := time.Now()
	var ahead []fetchItem
	delivered := false
	for i := range fr.Topics {
		t := &fr.Topics[i]
		for j := range t.Partitions {
			p := t.Partitions[j]
			if p.ErrorCode != 0 {
				c.f.m.partitionError(1, p.ErrorCode)
				stale = stale || staleCode(p.ErrorCode)
			}
			k := fetchKey(t.Topic, t.TopicID, p.Partition, byID)
			it, ok := part.items[k]
			if !ok {
				continue
			}
			// The read-ahead covers every partition of the part that
			// answered without error: past the data it brought, or at
			// the same offset, so that a partition getting data later
			// is not starved behind a long poll of the others.
			if p.ErrorCode == 0 {
				if nit, ok := nextItem(it, p, byID); ok {
					ahead = append(ahead, nit)
				} else if len(p.RecordBatches) == 0 {
					ahead = append(ahead, it)
				}
			}
			if live {
				if want, ok := op.want[k]; ok && want == it.p.FetchOffset {
					op.add(k, p, buf, false)
					delivered = delivered || len(p.RecordBatches) > 0
					continue
				}
			}
			if len(p.RecordBatches) > 0 && p.ErrorCode == 0 {
				if old, ok := fs.stash[k]; ok {
					old.buf.unref()
				}
				buf.ref()
				fs.stash[k] = stashed{item: it, p: p, buf: buf, at: now, broker: part.broker}
			}
		}
	}
	var finish *fetchOp
	// A fetch that adopted this part and wants more of its broker than the
	// part asked for (extra), and is not yet satisfied, waits on for the
	// part that asks for it, within what is left of its MaxWait.
	carry := live && !failed && len(part.extra) > 0 && (op.bytes == 0 || op.bytes < int(op.req.MinBytes)) &&
		fs.lanes[part.broker] == nil && c.ctx.Err() == nil
	if live {
		op.throttle = max(op.throttle, fr.ThrottleMillis)
		op.endpoints = op.endpoints || len(fr.Brokers) > 0
		if !carry && !failed {
			op.waiting--
			if op.ready() {
				op.done = true
				fs.detach(op)
				finish = op
			}
		}
	}
	// The next part on this lane: the read-ahead of what was delivered,
	// and what the fetch that adopted this part wanted from the broker
	// beyond it (for that fetch while it waits, else as read-ahead), so
	// that a partition outside a chain of read-aheads is not starved.
	readAhead := c.f.settings().readAhead
	forOp := carry // the adopting fetch still waits for them
	extra := part.extra
	if !forOp && !readAhead {
		extra = nil
	}
	if !delivered || !readAhead {
		ahead = nil
	}
	if failed {
		extra = nil // no new part to a broker whose connection just failed
	}
	if items := mergeItems(ahead, extra, byID); len(items) > 0 && fs.lanes[part.broker] == nil && c.ctx.Err() == nil {
		tmpl := part.req
		if forOp {
			tmpl = op.req
		}
		next = newFetchPart(part.broker, tmpl, 1, items, byID)
		next.req.MaxBytes = part.req.MaxBytes
		if forOp {
			next.op = op // its wait for this part passes to the next
			left := time.Duration(op.req.MaxWaitMillis)*time.Millisecond - time.Since(op.r.start)
			next.req.MaxWaitMillis = int32(max(left, 0) / time.Millisecond)
		}
		fs.lanes[part.broker] = next
	}
	fs.mu.Unlock()
	if stale {
		c.f.be.triggerRefresh()
	}
	if finish != nil {
		c.finishFetch(finish)
	}
	if next != nil {
		c.sendFetchPart(clientID, next)
	}
}

// finishFetch answers a fetch with what it gathered, in request order,
// within the client's MaxBytes (beyond it a partition comes back without
// records, as a broker does), with broker ids rewritten.
func (c *clientConn) finishFetch(op *fetchOp) {
	if op.timer != nil {
		op.timer.Stop()
	}
	req := op.req
	byID := req.Version >= 13
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.ThrottleMillis = op.throttle
	resp.SessionID = 0
	total := 0
	limit := int(req.MaxBytes)
	for i := range req.Topics {
		t := &req.Topics[i]
		var rt *kmsg.FetchResponseTopic
		for j := range t.Partitions {
			k := fetchKey(t.Topic, t.TopicID, t.Partitions[j].Partition, byID)
			p, ok := op.got[k]
			if !ok {
				continue
			}
			if n := len(p.RecordBatches); n > 0 {
				if limit > 0 && total > 0 && total+n > limit {
					p.RecordBatches = []byte{} // empty, as a broker sends it: null broke kafka-python
					p.AbortedTransactions = nil
				} else {
					total += n
				}
			}
			p.PreferredReadReplica = -1
			if p.CurrentLeader.LeaderID >= 0 {
				p.CurrentLeader.LeaderID = AmbassadorNodeID
			}
			if rt == nil {
				resp.Topics = append(resp.Topics, kmsg.FetchResponseTopic{Topic: t.Topic, TopicID: t.TopicID})
				rt = &resp.Topics[len(resp.Topics)-1]
			}
			rt.Partitions = append(rt.Partitions, p)
		}
	}
	if op.endpoints {
		st := c.f.settings()
		resp.Brokers = []kmsg.FetchResponseBroker{{NodeID: AmbassadorNodeID, Host: st.host, Port: st.port}}
	}
	op.r.respondRelease(resp, op.bufs)
}

// fetchTimedOut answers a fetch still waiting past its MaxWait and grace
// with what it has: its parts still out are detached.
func (c *clientConn) fetchTimedOut(op *fetchOp) {
	fs := &c.fetch
	fs.mu.Lock()
	if op.done {
		fs.mu.Unlock()
		return
	}
	op.done = true
	fs.detach(op)
	fs.mu.Unlock()
	c.log.Debug("fetch answered without a broker's part, past its MaxWait", "max_wait_ms", op.req.MaxWaitMillis)
	c.finishFetch(op)
}

// finishFetches answers every fetch still waiting, with what it has
// (shutdown, and the end of the connection, which stops their timers and
// releases their frames), also one whose parts all failed and that only
// its timer would answer.
func (c *clientConn) finishFetches() {
	fs := &c.fetch
	var ops []*fetchOp
	fs.mu.Lock()
	for op := range fs.live {
		if !op.done {
			op.done = true
			ops = append(ops, op)
		}
	}
	for _, op := range ops {
		fs.detach(op)
	}
	fs.mu.Unlock()
	for _, op := range ops {
		c.finishFetch(op)
	}
}
