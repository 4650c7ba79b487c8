package redis

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// pubsub is a client's subscriptions. Channels (and shard channels) live
// on the node the ring places the channel name on, as PUBLISH is routed
// there; patterns are subscribed on every node. Each node the client
// subscribes on gets a connection of the client's own, whose relay
// goroutine writes messages to the client as they come.
//
// A subscription is confirmed to the client when the node confirmed it,
// so a message published after the client saw the confirmation is
// delivered. Unsubscriptions are confirmed at once; messages of channels
// no longer subscribed are dropped. A relay decides whether a message
// goes to the client and writes it in one step, under the client's write
// lock: no message reaches the client after the confirmation of its
// channel's UNSUBSCRIBE, or after a RESET.
//
// When the node set or the ring changes (a reload; with auto-eject, a
// node going down or up), resync moves the client's subscriptions where
// they now belong, without the client knowing: a channel to the node
// that now owns it (PUBLISH goes there), patterns onto added nodes. A node
// that cannot be reached when the client subscribes is treated likewise:
// the client gets its confirmations and resync subscribes there later.
type pubsub struct {
	c     *client
	proto int // the client's protocol when it was made (a switch makes a new pubsub)

	// op serialises the client's SUBSCRIBE/UNSUBSCRIBE handlers with
	// resync, which runs on the frontend's goroutine.
	op sync.Mutex

	mu       sync.Mutex
	channels map[string]bool
	patterns map[string]bool
	shards   map[string]bool
	// pendingPattern counts the nodes that have not yet confirmed a
	// pattern; the client's confirmation goes out with the last.
	pendingPattern map[string]int
	// patternConfirms is how many confirmations the client gets for a
	// pending pattern: one per time it was named in the PSUBSCRIBE (each
	// node is asked once).
	patternConfirms map[string]int
	// patternFailed holds a node's error to a pending pattern, which the
	// client gets in place of its confirmations.
	patternFailed map[string][]byte
	conns         map[*nodePool]*psConn
	waiting       *request // the SUBSCRIBE reply slot waiting for confirmations
	waitLeft      int
	waitErr       []byte // a node's refusal of the waiting SUBSCRIBE: its one error reply
	waitGen       uint64 // one per SUBSCRIBE, for its confirmation timeout
	closed        bool
	// letGo are the UNSUBSCRIBEs to send (flushLetGo) once a move is
	// confirmed, or for a pattern a node refused; letGoSending counts those
	// being sent. resync waits for both: it must not subscribe a name
	// again on a node that is about to let it go.
	letGo        []letGo
	letGoSending int
}

type psConn struct {
	ps   *pubsub
	pool *nodePool
	conn net.Conn
	// names are what the client subscribed through this connection and
	// has not unsubscribed (kind letter + name), under ps.mu: when the
	// node leaves the configuration, a client with none there stays.
	names map[string]bool
	// sent are the (un)subscribe commands sent on this connection and not
	// yet answered in full, oldest first, under ps.mu: the node answers
	// them in order, with a reply per name or with one error.
	sent []*sentCmd
	// wmu makes recording a command in sent and writing it one step.
	wmu sync.Mutex
}

// sentCmd is a subscribe or unsubscribe command sent to a node.
type sentCmd struct {
	kind  string
	names [][]byte
	added []string // the names (nameKey) it added to the connection's
	left  int      // replies still to come
	// silent marks commands whose replies the client does not get:
	// resync's, and every unsubscribe (confirmed to the client at once).
	// Once a silent subscribe is confirmed, its names are let go on the
	// connections in from (by nameKey).
	silent bool
	from   map[string]*psConn
}

func isSubscribe(kind string) bool {
	return kind == "subscribe" || kind == "ssubscribe" || kind == "psubscribe"
}

// nameKey is a subscription's key in psConn.names: its kind (channel,
// pattern, shard channel) and name.
func nameKey(kind string, name []byte) string {
	switch kind {
	case "psubscribe", "punsubscribe":
		return "p" + string(name)
	case "ssubscribe", "sunsubscribe":
		return "s" + string(name)
	}
	return "c" + string(name)
}

func newPubsub(c *client) *pubsub {
	ps := &pubsub{
		c:               c,
		proto:           c.proto,
		channels:        map[string]bool{},
		patterns:        map[string]bool{},
		shards:          map[string]bool{},
		pendingPattern:  map[string]int{},
		patternConfirms: map[string]int{},
		patternFailed:   map[string][]byte{},
		conns:           map[*nodePool]*psConn{},
	}
	c.f.addSubscriber(ps)
	return ps
}

func (ps *pubsub) active() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.channels)+len(ps.patterns)+len(ps.shards) > 0
}

func (ps *pubsub) counts() (int, int, int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.channels), len(ps.patterns), len(ps.shards)
}

// close ends the subscriptions (RESET, a protocol switch, the client
// leaving): no message is passed on after it returns.
func (ps *pubsub) close() {
	ps.c.f.dropSubscriber(ps)
	ps.mu.Lock()
	ps.closed = true
	clear(ps.channels)
	clear(ps.patterns)
	clear(ps.shards)
	conns := ps.conns
	ps.conns = map[*nodePool]*psConn{}
	ps.mu.Unlock()
	for _, pc := range conns {
		pc.conn.Close()
	}
}

// conn returns the client's subscription connection to a node.
func (ps *pubsub) conn(pool *nodePool) (*psConn, error) {
	ps.mu.Lock()
	pc := ps.conns[pool]
	ps.mu.Unlock()
	if pc != nil {
		return pc, nil
	}
	conn, err := ps.c.f.dialBackend(pool, ps.proto)
	if err != nil {
		return nil, err
	}
	pc = &psConn{ps: ps, pool: pool, conn: conn, names: map[string]bool{}}
	if !pool.addSub(pc) {
		conn.Close()
		return nil, errNodeRemoved
	}
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		pool.dropSub(pc)
		conn.Close()
		return nil, errClientGone
	}
	if other := ps.conns[pool]; other != nil { // dialled meanwhile (resync's predial)
		ps.mu.Unlock()
		pool.dropSub(pc)
		conn.Close()
		return other, nil
	}
	ps.conns[pool] = pc
	ps.mu.Unlock()
	ps.c.f.goBackground(pc.relay)
	return pc, nil
}

// send sends a command of kind (subscribe or unsubscribe) for names,
// recording it first (its answer may come before Write returns); on
// failure the record is taken back. A subscribe adds its names to the
// connection's.
func (pc *psConn) send(kind string, names [][]byte, silent bool, from map[string]*psConn) error {
	ps := pc.ps
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	sc := &sentCmd{kind: kind, names: names, left: len(names), silent: silent || !isSubscribe(kind), from: from}
	ps.mu.Lock()
	pc.sent = append(pc.sent, sc)
	if isSubscribe(kind) {
		for _, n := range names {
			if k := nameKey(kind, n); !pc.names[k] {
				pc.names[k] = true
				sc.added = append(sc.added, k)
			}
		}
	}
	ps.mu.Unlock()
	_ = pc.conn.SetWriteDeadline(time.Now().Add(ps.c.f.requestTimeout()))
	_, err := pc.conn.Write(resp.AppendCommand(nil, append([][]byte{[]byte(kind)}, names...)...))
	if err != nil {
		ps.mu.Lock()
		if i := len(pc.sent) - 1; i >= 0 && pc.sent[i] == sc {
			pc.sent[i] = nil
			pc.sent = pc.sent[:i]
		}
		for _, k := range sc.added {
			delete(pc.names, k)
		}
		ps.mu.Unlock()
	}
	return err
}

// flushLetGo sends the UNSUBSCRIBEs queued in ps.letGo.
func (ps *pubsub) flushLetGo() {
	ps.mu.Lock()
	list := ps.letGo
	ps.letGo = nil
	ps.letGoSending += len(list)
	ps.mu.Unlock()
	if len(list) == 0 {
		return
	}
	type group struct {
		pc   *psConn
		kind string
	}
	groups := map[group][][]byte{}
	for _, u := range list {
		g := group{u.pc, unsubscribeOf(u.kind)}
		groups[g] = append(groups[g], u.name)
	}
	for g, names := range groups {
		_ = g.pc.send(g.kind, names, true, nil) // a failed connection is gone anyway
	}
	ps.mu.Lock()
	ps.letGoSending -= len(list)
	ps.mu.Unlock()
}

var errNodeDown = errors.New("node down")

// hSubscribe runs SUBSCRIBE, SSUBSCRIBE and PSUBSCRIBE.
func hSubscribe(c *client, rt *route, cmd resp.Command, start int) {
	if c.deferUnlessFirst(start) {
		return
	}
	// The relays write the confirmations straight to the client: the
	// replies of the batches in flight must be written first.
	if !c.waitQueue(0, false) {
		c.abandon()
		return
	}
	if c.ps == nil {
		c.ps = newPubsub(c)
	}
	ps := c.ps
	ps.op.Lock()
	defer ps.op.Unlock()
	names := cmd.Args[1:]
	kind := rt.name
	// Which nodes get which names.
	type part struct {
		pool  *nodePool
		names [][]byte
		down  bool
	}
	var parts []part
	expect := len(names)
	var uniq [][]byte
	if kind == "psubscribe" {
		// Each node is asked once per pattern; a pattern named twice
		// still gets two confirmations, as from Redis.
		occur := map[string]int{}
		for _, p := range names {
			if occur[string(p)] == 0 {
				uniq = append(uniq, p)
			}
			occur[string(p)]++
		}
		skipped := false
		for _, n := range c.f.cl.Nodes() {
			if !n.Up() {
				// Nothing is published there while it is down; resync
				// subscribes the pattern there once it can be reached.
				skipped = true
				continue
			}
			parts = append(parts, part{pool: c.f.poolOf(n), names: uniq})
		}
		if len(parts) == 0 {
			c.localError("ERR no backend node is available")
			return
		}
		if skipped {
			c.f.kickResync()
		}
		ps.mu.Lock()
		for _, p := range uniq {
			ps.pendingPattern[string(p)] += len(parts)
			ps.patternConfirms[string(p)] += occur[string(p)]
		}
		ps.mu.Unlock()
	} else {
		for _, ch := range names {
			// A channel whose node is down (no auto-eject) is confirmed and
			// subscribed there once the node is back, as a pattern is:
			// nothing is published there meanwhile, and a client that
			// subscribes all its channels again after a node failed (as
			// ioredis does) must not be refused them all for one.
			n, err := c.f.cl.PickKey(ch)
			if n == nil {
				c.localError(replyFor(err))
				return
			}
			pool := c.f.poolOf(n)
			j := 0
			for j < len(parts) && parts[j].pool != pool {
				j++
			}
			if j == len(parts) {
				parts = append(parts, part{pool: pool, down: err != nil})
			}
			parts[j].names = append(parts[j].names, ch)
		}
	}
	r := c.addReq() // completed by the relays once every confirmation is written
	ps.mu.Lock()
	ps.waiting = r
	ps.waitLeft = expect
	ps.waitErr = nil
	ps.waitGen++
	gen := ps.waitGen
	ps.mu.Unlock()
	c.extra++
	c.outstanding.Add(1)
	for _, p := range parts {
		err := errNodeDown
		if !p.down {
			var pc *psConn
			if pc, err = ps.conn(p.pool); err == nil {
				err = pc.send(kind, p.names, false, nil)
			}
		}
		if err == nil {
			continue
		}
		// A node that cannot be reached (it died since its last health
		// check): as for a node that is down, the client is confirmed
		// and resync subscribes there once it can be reached.
		c.f.log.Debug("subscription deferred: node unreachable", "node", p.pool.addr, "error", err)
		c.f.kickResync()
		// Written now, as the relays write theirs (under wmu, counted
		// under ps.mu), so that the counts rise in the order written.
		c.wmu.Lock()
		ps.mu.Lock()
		var out []byte
		if kind == "psubscribe" {
			for _, n := range p.names {
				if ps.pendingPattern[string(n)]--; ps.pendingPattern[string(n)] <= 0 {
					out = ps.finishPatternLocked(out, string(n))
				}
			}
		} else {
			for _, n := range p.names {
				ps.setFor(kind)[string(n)] = true
				out = ps.confirmLocked(out, kind, n)
				ps.waitLeft--
			}
		}
		done := false
		if ps.waiting == r {
			out, done = ps.completeLocked(out)
		}
		ps.mu.Unlock()
		werr := c.writePush(out)
		c.wmu.Unlock()
		if done {
			c.finish()
		}
		if werr != nil {
			c.closeAsync()
		}
	}
	ps.flushLetGo()
	// A node that takes the command but never confirms (frozen) must not
	// hold the client forever: after the request timeout the client is
	// closed, as when a node drops its subscriptions.
	time.AfterFunc(c.f.requestTimeout(), func() {
		ps.mu.Lock()
		late := ps.waiting != nil && ps.waitGen == gen
		if late {
			ps.waiting = nil
		}
		ps.mu.Unlock()
		if late {
			c.f.log.Info("subscription not confirmed by a node in time; closing client", "client", c.conn.RemoteAddr().String())
			c.finish()
			c.closeAsync()
		}
	})
	c.barrier, c.sync = true, true
}

// finishPatternLocked ends a pending pattern whose nodes have all
// answered: the client gets its confirmations, or the node's error; ps.mu
// is held.
func (ps *pubsub) finishPatternLocked(out []byte, p string) []byte {
	n := max(1, ps.patternConfirms[p])
	delete(ps.pendingPattern, p)
	delete(ps.patternConfirms, p)
	if e, failed := ps.patternFailed[p]; failed {
		// The client gets the command's one error (completeLocked); the
		// nodes that took the pattern let it go.
		delete(ps.patternFailed, p)
		ps.waitLeft -= n
		if ps.waitErr == nil {
			ps.waitErr = e
		}
		k := nameKey("psubscribe", []byte(p))
		for _, pc := range ps.conns {
			if pc.names[k] {
				delete(pc.names, k)
				ps.letGo = append(ps.letGo, letGo{pc, "psubscribe", []byte(p)})
			}
		}
		return out
	}
	ps.patterns[p] = true
	for range n {
		out = ps.confirmLocked(out, "psubscribe", []byte(p))
		ps.waitLeft--
	}
	return out
}

// completeLocked ends the waiting SUBSCRIBE once all its confirmations
// are in (written, or in out): out gets a node's refusal, if any. done
// says the caller must call c.finish, after out is written. ps.mu is held.
func (ps *pubsub) completeLocked(out []byte) (_ []byte, done bool) {
	if ps.waiting == nil || ps.waitLeft > 0 {
		return out, false
	}
	ps.waiting = nil
	if ps.waitErr != nil {
		out = append(out, ps.waitErr...)
		ps.waitErr = nil
	}
	return out, true
}

// hUnsubscribe runs UNSUBSCRIBE, SUNSUBSCRIBE and PUNSUBSCRIBE: it
// confirms at once and tells the nodes that have the names.
func hUnsubscribe(c *client, rt *route, cmd resp.Command, start int) {
	if c.deferUnlessFirst(start) {
		return
	}
	if c.ps == nil {
		c.ps = newPubsub(c)
	}
	ps := c.ps
	ps.op.Lock()
	defer ps.op.Unlock()
	kind := rt.name
	r := c.addReq()
	ps.mu.Lock()
	set := ps.setFor(kind)
	names := make([][]byte, 0, len(cmd.Args)-1)
	if len(cmd.Args) == 1 {
		for n := range set {
			names = append(names, []byte(n))
		}
	} else {
		names = append(names, cmd.Args[1:]...)
	}
	if len(names) == 0 {
		r.reply = ps.confirmLocked(r.reply[:0], kind, nil)
	}
	for _, n := range names {
		delete(set, string(n))
		r.reply = ps.confirmLocked(r.reply, kind, n)
	}
	// Each node gets the names it has, explicitly, so that its replies
	// are known in number (psConn.sent).
	type part struct {
		pc    *psConn
		names [][]byte
	}
	var parts []part
	for _, pc := range ps.conns {
		var has [][]byte
		for _, n := range names {
			if k := nameKey(kind, n); pc.names[k] {
				delete(pc.names, k)
				has = append(has, n)
			}
		}
		if len(has) > 0 {
			parts = append(parts, part{pc, has})
		}
	}
	ps.mu.Unlock()
	for _, p := range parts {
		_ = p.pc.send(kind, p.names, true, nil) // a failed node connection is gone anyway
	}
	c.barrier, c.sync = true, true
}

func (ps *pubsub) setFor(kind string) map[string]bool {
	switch kind {
	case "psubscribe", "punsubscribe", "pmessage":
		return ps.patterns
	case "ssubscribe", "sunsubscribe", "smessage":
		return ps.shards
	}
	return ps.channels
}

// confirmLocked appends the client's confirmation [kind, name, count].
func (ps *pubsub) confirmLocked(b []byte, kind string, name []byte) []byte {
	count := len(ps.channels) + len(ps.patterns)
	if kind == "ssubscribe" || kind == "sunsubscribe" {
		count = len(ps.shards)
	}
	b = resp.AppendPush(b, 3, ps.proto)
	b = resp.AppendBulkString(b, kind)
	if name == nil {
		b = resp.AppendNull(b, ps.proto)
	} else {
		b = resp.AppendBulk(b, name)
	}
	return resp.AppendInt(b, int64(count))
}

// letGo is an UNSUBSCRIBE for resync to send once a move is confirmed.
type letGo struct {
	pc   *psConn
	kind string
	name []byte
}

// relay reads a subscription connection: messages go to the client,
// confirmations complete the waiting SUBSCRIBE.
func (pc *psConn) relay() {
	ps := pc.ps
	c := ps.c
	buf := make([]byte, 16<<10)
	r, w := 0, 0
	var out []byte
	var elems, msgs [][]byte
	for {
		n, err := pc.conn.Read(buf[w:])
		w += n
		if err != nil {
			break
		}
		msgs = msgs[:0]
		for r < w {
			l, err := resp.ReplyLen(buf[r:w])
			if err == resp.ErrIncomplete {
				break
			}
			if err != nil {
				pc.conn.Close()
				break
			}
			msgs = append(msgs, buf[r:r+l])
			r += l
		}
		if len(msgs) > 0 {
			// Deciding what the client gets and writing it is one step
			// under wmu: an UNSUBSCRIBE's confirmation or a RESET's reply
			// is written before or after, never between.
			c.wmu.Lock()
			ps.mu.Lock()
			for _, m := range msgs {
				out = pc.handleLocked(m, out, &elems)
			}
			var done bool
			out, done = ps.completeLocked(out)
			ps.mu.Unlock()
			werr := c.writePush(out)
			out = out[:0]
			c.wmu.Unlock()
			if done {
				c.finish() // after its confirmations are written
			}
			if werr != nil {
				c.closeAsync()
				break
			}
			ps.flushLetGo()
		}
		if r == w {
			r, w = 0, 0
		} else if w == len(buf) {
			if r > 0 {
				copy(buf, buf[r:w])
				w -= r
				r = 0
			} else {
				nb := make([]byte, 2*len(buf))
				copy(nb, buf[:w])
				buf = nb
			}
		}
	}
	pc.conn.Close()
	pc.lost()
}

// writePush writes what Pub/Sub has for the client (messages,
// confirmations), with wmu held.
func (c *client) writePush(out []byte) error {
	if len(out) == 0 {
		return nil
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.f.writeTimeout()))
	_, err := c.conn.Write(out)
	return err
}

func unsubscribeOf(kind string) string {
	switch kind {
	case "ssubscribe":
		return "sunsubscribe"
	case "psubscribe":
		return "punsubscribe"
	}
	return "unsubscribe"
}

// lost handles the end of a subscription connection. A node removed from
// the configuration, or one the client has nothing subscribed on, costs
// the client nothing: what it owed the client is confirmed (and left to
// resync, which subscribes it where it belongs now). A node that failed
// with the client's subscriptions on it dropped them: the client is
// closed, so that it subscribes again, as it would after a Redis that
// went away.
func (pc *psConn) lost() {
	ps := pc.ps
	c := ps.c
	pc.pool.dropSub(pc)
	removed := pc.pool.isClosed()
	c.wmu.Lock()
	ps.mu.Lock()
	if ps.closed || ps.conns[pc.pool] != pc {
		ps.mu.Unlock()
		c.wmu.Unlock()
		return
	}
	delete(ps.conns, pc.pool)
	owed := false
	for _, sc := range pc.sent {
		if !sc.silent {
			owed = true
		}
	}
	subscribed := len(pc.names) > 0
	if !removed && (subscribed || owed) {
		ps.mu.Unlock()
		c.wmu.Unlock()
		c.f.log.Info("subscription connection to node lost; closing client", "node", pc.pool.addr, "client", c.conn.RemoteAddr().String())
		c.closeAsync()
		return
	}
	var out []byte
	for _, sc := range pc.sent {
		if sc.silent {
			continue
		}
		for _, n := range sc.names[max(0, len(sc.names)-sc.left):] {
			if sc.kind == "psubscribe" {
				if ps.pendingPattern[string(n)]--; ps.pendingPattern[string(n)] <= 0 {
					out = ps.finishPatternLocked(out, string(n))
				}
				continue
			}
			ps.setFor(sc.kind)[string(n)] = true
			out = ps.confirmLocked(out, sc.kind, n)
			ps.waitLeft--
		}
	}
	pc.sent = nil
	out, done := ps.completeLocked(out)
	ps.mu.Unlock()
	if err := c.writePush(out); err != nil {
		c.closeAsync()
	}
	c.wmu.Unlock()
	if done {
		c.finish()
	}
	if subscribed || owed {
		c.f.kickResync()
	}
}

var (
	bMessage  = []byte("message")
	bPMessage = []byte("pmessage")
	bSMessage = []byte("smessage")
)

// handleLocked processes one push from a node, appending what the client
// gets; ps.mu is held. Moves that resync finished queue their let-go
// UNSUBSCRIBEs in ps.letGo, for the relay to send.
func (pc *psConn) handleLocked(msg, out []byte, elems *[][]byte) []byte {
	ps := pc.ps
	if ps.closed {
		return out
	}
	if resp.IsError(msg) {
		return pc.refusedLocked(msg, out)
	}
	e, _, _, err := resp.Elems(msg, (*elems)[:0])
	*elems = e
	if err != nil || len(e) < 2 {
		return out
	}
	kind, _ := resp.Bulk(e[0])
	name, _ := resp.Bulk(e[1])
	switch {
	case bytes.Equal(kind, bMessage):
		if ps.channels[string(name)] {
			out = append(out, msg...)
		}
	case bytes.Equal(kind, bPMessage):
		if ps.patterns[string(name)] {
			out = append(out, msg...)
		}
	case bytes.Equal(kind, bSMessage):
		if ps.shards[string(name)] {
			out = append(out, msg...)
		}
	case string(kind) == "subscribe" || string(kind) == "ssubscribe" || string(kind) == "psubscribe" ||
		string(kind) == "unsubscribe" || string(kind) == "sunsubscribe" || string(kind) == "punsubscribe":
		if len(pc.sent) == 0 {
			return out // not asked for: nothing to do with it
		}
		sc := pc.sent[0]
		if sc.left--; sc.left <= 0 {
			pc.sent[0] = nil
			pc.sent = pc.sent[1:]
			if sc.silent && isSubscribe(sc.kind) {
				for _, n := range sc.names {
					k := nameKey(sc.kind, n)
					if old := sc.from[k]; old != nil && old != pc && ps.conns[old.pool] == old && old.names[k] {
						delete(old.names, k)
						ps.letGo = append(ps.letGo, letGo{old, sc.kind, n})
					}
				}
			}
		}
		if sc.silent || !isSubscribe(string(kind)) {
			return out
		}
		if string(kind) == "psubscribe" {
			if ps.pendingPattern[string(name)]--; ps.pendingPattern[string(name)] <= 0 {
				out = ps.finishPatternLocked(out, string(name))
			}
			return out
		}
		ps.setFor(string(kind))[string(name)] = true
		out = ps.confirmLocked(out, string(kind), name)
		ps.waitLeft--
	}
	return out
}

// refusedLocked handles a node's error: the answer to the oldest command
// in flight on the connection (a node checks a command's every name
// before it subscribes any: NOPERM; a node without SUNSUBSCRIBE refuses
// it). A client's SUBSCRIBE gets one error in place of the confirmations
// still owed (completeLocked writes it); a move of resync's stays where it
// was, and is tried again at the next pass.
func (pc *psConn) refusedLocked(msg, out []byte) []byte {
	ps := pc.ps
	if len(pc.sent) == 0 {
		ps.c.f.log.Warn("unexpected error from a node on a subscription connection", "node", pc.pool.addr, "error", resp.ErrorText(msg))
		return out
	}
	sc := pc.sent[0]
	pc.sent[0] = nil
	pc.sent = pc.sent[1:]
	if !isSubscribe(sc.kind) {
		ps.c.f.log.Debug("node refused an unsubscribe", "node", pc.pool.addr, "error", resp.ErrorText(msg))
		return out
	}
	for _, k := range sc.added {
		delete(pc.names, k)
	}
	if sc.silent {
		ps.c.f.log.Debug("node refused a subscription being moved; trying again later", "node", pc.pool.addr, "error", resp.ErrorText(msg))
		ps.c.f.resyncAgain.Store(true)
		return out
	}
	if ps.waitErr == nil {
		ps.waitErr = append([]byte(nil), msg...)
	}
	if sc.kind == "psubscribe" {
		for _, n := range sc.names[max(0, len(sc.names)-sc.left):] {
			ps.patternFailed[string(n)] = ps.waitErr
			if ps.pendingPattern[string(n)]--; ps.pendingPattern[string(n)] <= 0 {
				out = ps.finishPatternLocked(out, string(n))
			}
		}
		return out
	}
	ps.waitLeft -= sc.left
	return out
}

// predial dials, before resync takes ps.op, the connections a pass may
// need, so that a client's SUBSCRIBE does not wait behind a dial to a node
// that does not answer; it returns the nodes that could not be reached.
func (ps *pubsub) predial() map[*nodePool]bool {
	f := ps.c.f
	need := map[*nodePool]bool{}
	ps.mu.Lock()
	if !ps.closed {
		for _, kind := range []string{"subscribe", "ssubscribe"} {
			for name := range ps.setFor(kind) {
				if n, _ := f.cl.PickKey([]byte(name)); n != nil && n.Up() {
					if pool := f.poolOf(n); ps.conns[pool] == nil {
						need[pool] = true
					}
				}
			}
		}
		if len(ps.patterns) > 0 {
			for _, n := range f.cl.Nodes() {
				if pool := f.poolOf(n); n.Up() && ps.conns[pool] == nil {
					need[pool] = true
				}
			}
		}
	}
	ps.mu.Unlock()
	var failed map[*nodePool]bool
	for pool := range need {
		if _, err := ps.conn(pool); err != nil {
			f.log.Debug("resubscribe: node unreachable; trying again", "node", pool.addr, "error", err)
			if failed == nil {
				failed = map[*nodePool]bool{}
			}
			failed[pool] = true
		}
	}
	return failed
}

// resync moves the client's subscriptions where the current ring places
// them: each channel and shard channel onto the node that owns it (a
// SUBSCRIBE there; once the node confirmed it, an UNSUBSCRIBE where it
// was), each pattern onto every node. The nodes' confirmations are not
// passed on: for the client nothing changed. It reports false when
// something is left for the next pass: a node could not be reached, or a
// SUBSCRIBE of the client's was still waiting for its confirmations.
func (ps *pubsub) resync() bool {
	unreachable := ps.predial()
	ps.op.Lock()
	defer ps.op.Unlock()
	f := ps.c.f
	type sub struct {
		kind  string
		names [][]byte
		from  map[string]*psConn
	}
	subs := map[*nodePool][]*sub{}
	var drop []letGo // copies of a name on nodes other than the one it moves from
	add := func(pool *nodePool, kind string, name []byte, from *psConn) {
		var s *sub
		for _, x := range subs[pool] {
			if x.kind == kind {
				s = x
			}
		}
		if s == nil {
			s = &sub{kind: kind, from: map[string]*psConn{}}
			subs[pool] = append(subs[pool], s)
		}
		s.names = append(s.names, name)
		if from != nil {
			s.from[nameKey(kind, name)] = from
		}
	}
	done := true
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return true
	}
	if ps.waiting != nil || len(ps.pendingPattern) > 0 || len(ps.letGo) > 0 || ps.letGoSending > 0 {
		ps.mu.Unlock()
		return false
	}
	where := map[string][]*psConn{}
	for _, pc := range ps.conns {
		for k := range pc.names {
			where[k] = append(where[k], pc)
		}
		for _, sc := range pc.sent {
			if sc.silent {
				ps.mu.Unlock()
				return false // a move still waiting for its confirmation
			}
		}
	}
	for _, kind := range []string{"subscribe", "ssubscribe"} {
		for name := range ps.setFor(kind) {
			n, _ := f.cl.PickKey([]byte(name))
			if n == nil {
				done = false
				continue
			}
			pool := f.poolOf(n)
			k := nameKey(kind, []byte(name))
			var right, wrong *psConn
			for _, pc := range where[k] {
				if pc.pool == pool {
					right = pc
				} else {
					wrong = pc
				}
			}
			for _, pc := range where[k] {
				if pc != right && (right != nil || pc != wrong) {
					drop = append(drop, letGo{pc, kind, []byte(name)})
				}
			}
			if right != nil {
				continue
			}
			if !n.Up() {
				// its owner is down (no auto-eject), so is PUBLISH there:
				// it moves once the node is back
				done = false
				continue
			}
			add(pool, kind, []byte(name), wrong)
		}
	}
	if len(ps.patterns) > 0 {
		for _, n := range f.cl.Nodes() {
			if !n.Up() { // not dialled while down: the next pass looks again
				done = false
				continue
			}
			pool := f.poolOf(n)
			pc := ps.conns[pool]
			for name := range ps.patterns {
				if pc == nil || !pc.names[nameKey("psubscribe", []byte(name))] {
					add(pool, "psubscribe", []byte(name), nil)
				}
			}
		}
	}
	for _, d := range drop {
		delete(d.pc.names, nameKey(d.kind, d.name))
	}
	ps.letGo = append(ps.letGo, drop...)
	ps.mu.Unlock()
	ps.flushLetGo()
	moved := 0
	for pool, list := range subs {
		if unreachable[pool] {
			done = false
			continue
		}
		pc, err := ps.conn(pool)
		if err != nil {
			f.log.Debug("resubscribe: node unreachable; trying again", "node", pool.addr, "error", err)
			done = false
			continue
		}
		for _, s := range list {
			if err := pc.send(s.kind, s.names, true, s.from); err != nil {
				done = false
				continue
			}
			moved += len(s.names)
		}
	}
	if moved > 0 {
		f.log.Info("subscriptions moved after a ring change", "client", ps.c.conn.RemoteAddr().String(), "subscriptions", moved)
	}
	return done
}
