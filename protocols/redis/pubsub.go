package redis

import (
	"bytes"
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
// no longer subscribed are dropped.
//
// When the node set or the ring changes (a reload; with auto-eject, a
// node going down or up), resync moves the client's subscriptions where
// they now belong, without the client knowing: a channel to the node
// that now owns it (PUBLISH goes there), patterns onto added nodes.
type pubsub struct {
	c *client

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
	conns           map[*nodePool]*psConn
	waiting         *request // the SUBSCRIBE reply slot waiting for confirmations
	waitLeft        int
	waitGen         uint64 // one per SUBSCRIBE, for its confirmation timeout
	closed          bool
}

type psConn struct {
	ps   *pubsub
	pool *nodePool
	conn net.Conn
	// names are what the client subscribed through this connection and
	// has not unsubscribed (kind letter + name), under ps.mu: when the
	// node leaves the configuration, a client with none there stays.
	names map[string]bool
	// silent counts, per name, the node's confirmations of resync's own
	// subscriptions, not passed on to the client; under ps.mu.
	silent map[string]int
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
		channels:        map[string]bool{},
		patterns:        map[string]bool{},
		shards:          map[string]bool{},
		pendingPattern:  map[string]int{},
		patternConfirms: map[string]int{},
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

func (ps *pubsub) close() {
	ps.c.f.dropSubscriber(ps)
	ps.mu.Lock()
	ps.closed = true
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
	conn, err := ps.c.f.dialBackend(pool, ps.c.proto)
	if err != nil {
		return nil, err
	}
	pc = &psConn{ps: ps, pool: pool, conn: conn, names: map[string]bool{}, silent: map[string]int{}}
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
	ps.conns[pool] = pc
	ps.mu.Unlock()
	ps.c.f.goBackground(pc.relay)
	return pc, nil
}

func (pc *psConn) send(cmd []byte) error {
	_ = pc.conn.SetWriteDeadline(time.Now().Add(pc.ps.c.f.requestTimeout()))
	_, err := pc.conn.Write(cmd)
	return err
}

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
	}
	var parts []part
	expect := 0
	if kind == "psubscribe" {
		// Each node is asked once per pattern; a pattern named twice
		// still gets two confirmations, as from Redis.
		occur := map[string]int{}
		var uniq [][]byte
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
		expect = len(names)
	} else {
		for _, ch := range names {
			pool, err := c.pickKey(ch)
			if err != nil {
				c.localError(replyFor(err))
				return
			}
			j := 0
			for j < len(parts) && parts[j].pool != pool {
				j++
			}
			if j == len(parts) {
				parts = append(parts, part{pool: pool})
			}
			parts[j].names = append(parts[j].names, ch)
		}
		expect = len(names)
	}
	r := c.addReq() // completed by the relays once every confirmation is written
	ps.mu.Lock()
	ps.waiting = r
	ps.waitLeft = expect
	ps.waitGen++
	gen := ps.waitGen
	ps.mu.Unlock()
	c.extra++
	c.outstanding.Add(1)
	for _, p := range parts {
		pc, err := ps.conn(p.pool)
		if err == nil {
			args := append([][]byte{cmd.Args[0]}, p.names...)
			err = pc.send(resp.AppendCommand(nil, args...))
		}
		if err == nil {
			ps.mu.Lock()
			for _, n := range p.names {
				pc.names[nameKey(kind, n)] = true
			}
			ps.mu.Unlock()
		}
		if err != nil {
			// Confirm nothing for this node: the client gets an error in
			// place of these confirmations.
			ps.mu.Lock()
			if kind == "psubscribe" {
				ps.waitLeft -= expect
				for _, n := range p.names {
					ps.pendingPattern[string(n)]--
				}
			} else {
				ps.waitLeft -= len(p.names)
			}
			done := ps.waitLeft <= 0 && ps.waiting == r
			if done {
				ps.waiting = nil
			}
			ps.mu.Unlock()
			r.reply = resp.AppendError(r.reply, "ERR node "+p.pool.addr+": "+describe(err))
			if done {
				c.finish()
			}
		}
	}
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

// hUnsubscribe runs UNSUBSCRIBE, SUNSUBSCRIBE and PUNSUBSCRIBE: it
// confirms at once and tells the nodes.
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
	conns := make([]*psConn, 0, len(ps.conns))
	for _, pc := range ps.conns {
		conns = append(conns, pc)
		for _, n := range names {
			delete(pc.names, nameKey(kind, n))
		}
	}
	ps.mu.Unlock()
	raw := cmd.Raw
	if raw == nil {
		raw = resp.AppendCommand(nil, cmd.Args...)
	}
	for _, pc := range conns {
		_ = pc.send(raw) // a failed node connection is gone anyway
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
	b = resp.AppendPush(b, 3, ps.c.proto)
	b = resp.AppendBulkString(b, kind)
	if name == nil {
		b = resp.AppendNull(b, ps.c.proto)
	} else {
		b = resp.AppendBulk(b, name)
	}
	return resp.AppendInt(b, int64(count))
}

// relay reads a subscription connection: messages go to the client,
// confirmations complete the waiting SUBSCRIBE.
func (pc *psConn) relay() {
	ps := pc.ps
	c := ps.c
	buf := make([]byte, 16<<10)
	r, w := 0, 0
	var out []byte
	var elems [][]byte
	for {
		n, err := pc.conn.Read(buf[w:])
		w += n
		if err != nil {
			break
		}
		for r < w {
			l, err := resp.ReplyLen(buf[r:w])
			if err == resp.ErrIncomplete {
				break
			}
			if err != nil {
				pc.conn.Close()
				break
			}
			msg := buf[r : r+l]
			r += l
			out = pc.handle(msg, out, &elems)
		}
		if len(out) > 0 {
			c.wmu.Lock()
			_ = c.conn.SetWriteDeadline(time.Now().Add(c.f.writeTimeout()))
			_, err := c.conn.Write(out)
			c.wmu.Unlock()
			out = out[:0]
			if err != nil {
				c.closeAsync()
				break
			}
		}
		ps.mu.Lock()
		if ps.waiting != nil && ps.waitLeft <= 0 {
			ps.waiting = nil
			ps.mu.Unlock()
			c.finish()
		} else {
			ps.mu.Unlock()
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
	pc.pool.dropSub(pc)
	removed := pc.pool.isClosed()
	ps.mu.Lock()
	lost := !ps.closed && ps.conns[pc.pool] == pc
	if lost {
		delete(ps.conns, pc.pool)
	}
	waiting := ps.waiting != nil
	subscribed := len(pc.names) > 0
	ps.mu.Unlock()
	if lost && removed && !waiting {
		// Its node left the configuration: the client's subscriptions
		// there move to the nodes that own them now.
		if subscribed {
			c.f.kickResync()
		}
		return
	}
	if lost {
		// The node dropped the client's subscriptions: the client must
		// learn it, as it would from a Redis that went away.
		c.f.log.Info("subscription connection to node lost; closing client", "node", pc.pool.addr, "client", c.conn.RemoteAddr().String())
		c.closeAsync()
		if waiting {
			ps.mu.Lock()
			if ps.waiting != nil {
				ps.waiting = nil
				ps.mu.Unlock()
				c.finish()
			} else {
				ps.mu.Unlock()
			}
		}
	}
}

var (
	bMessage  = []byte("message")
	bPMessage = []byte("pmessage")
	bSMessage = []byte("smessage")
)

// handle processes one push from a node, appending what the client gets.
func (pc *psConn) handle(msg, out []byte, elems *[][]byte) []byte {
	ps := pc.ps
	e, _, _, err := resp.Elems(msg, (*elems)[:0])
	*elems = e
	if err != nil || len(e) < 2 {
		if resp.IsError(msg) {
			return append(out, msg...)
		}
		return out
	}
	kind, _ := resp.Bulk(e[0])
	name, _ := resp.Bulk(e[1])
	ps.mu.Lock()
	defer ps.mu.Unlock()
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
	case (string(kind) == "subscribe" || string(kind) == "ssubscribe" || string(kind) == "psubscribe") && pc.silent[nameKey(string(kind), name)] > 0:
		k := nameKey(string(kind), name)
		if pc.silent[k]--; pc.silent[k] == 0 {
			delete(pc.silent, k)
		}
	case string(kind) == "subscribe" || string(kind) == "ssubscribe":
		ps.setFor(string(kind))[string(name)] = true
		out = ps.confirmLocked(out, string(kind), name)
		ps.waitLeft--
	case string(kind) == "psubscribe":
		left := ps.pendingPattern[string(name)] - 1
		ps.pendingPattern[string(name)] = left
		if left <= 0 {
			delete(ps.pendingPattern, string(name))
			ps.patterns[string(name)] = true
			n := max(1, ps.patternConfirms[string(name)])
			delete(ps.patternConfirms, string(name))
			for range n {
				out = ps.confirmLocked(out, "psubscribe", name)
				ps.waitLeft--
			}
		}
	default:
		// unsubscribe confirmations were given already; pongs unused
	}
	return out
}

// resync moves the client's subscriptions where the current ring places
// them: each channel and shard channel onto the node that owns it (a
// SUBSCRIBE there, then an UNSUBSCRIBE where it was), each pattern onto
// every node. The nodes' confirmations are not passed on: for the client
// nothing changed. It reports false when something is left for the next
// pass: a node could not be reached, or a SUBSCRIBE of the client's was
// still waiting for its confirmations.
func (ps *pubsub) resync() bool {
	ps.op.Lock()
	defer ps.op.Unlock()
	f := ps.c.f
	type sub struct {
		kind  string
		names [][]byte
	}
	type unsub struct {
		pc   *psConn
		kind string
		name []byte
	}
	subs := map[*nodePool][]sub{}
	var unsubs []unsub
	add := func(pool *nodePool, kind string, name []byte) {
		list := subs[pool]
		for i := range list {
			if list[i].kind == kind {
				list[i].names = append(list[i].names, name)
				return
			}
		}
		subs[pool] = append(list, sub{kind, [][]byte{name}})
	}
	done := true
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return true
	}
	if ps.waiting != nil || len(ps.pendingPattern) > 0 {
		ps.mu.Unlock()
		return false
	}
	where := map[string]*psConn{}
	for _, pc := range ps.conns {
		for k := range pc.names {
			where[k] = pc
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
			cur := where[nameKey(kind, []byte(name))]
			if cur != nil && cur.pool == pool {
				continue
			}
			if !n.Up() {
				// its owner is down (no auto-eject), so is PUBLISH there:
				// it moves once the node is back
				done = false
				continue
			}
			add(pool, kind, []byte(name))
			if cur != nil {
				unsubs = append(unsubs, unsub{cur, kind, []byte(name)})
			}
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
					add(pool, "psubscribe", []byte(name))
				}
			}
		}
	}
	ps.mu.Unlock()
	if len(subs)+len(unsubs) == 0 {
		return done
	}
	moved := 0
	placed := map[string]bool{} // nameKeys subscribed where they belong
	for pool, list := range subs {
		pc, err := ps.conn(pool)
		if err != nil {
			f.log.Debug("resubscribe: node unreachable; trying again", "node", pool.addr, "error", err)
			done = false
			continue
		}
		for _, s := range list {
			ps.mu.Lock()
			for _, name := range s.names {
				k := nameKey(s.kind, name)
				pc.silent[k]++
				pc.names[k] = true
			}
			ps.mu.Unlock()
			if err := pc.send(resp.AppendCommand(nil, append([][]byte{[]byte(s.kind)}, s.names...)...)); err != nil {
				ps.mu.Lock()
				for _, name := range s.names {
					k := nameKey(s.kind, name)
					if pc.silent[k]--; pc.silent[k] <= 0 {
						delete(pc.silent, k)
					}
					delete(pc.names, k)
				}
				ps.mu.Unlock()
				done = false
				continue
			}
			moved += len(s.names)
			for _, name := range s.names {
				placed[nameKey(s.kind, name)] = true
			}
		}
	}
	for _, u := range unsubs {
		if !placed[nameKey(u.kind, u.name)] {
			continue // not subscribed on its new node yet: it stays where it is
		}
		kind := "unsubscribe"
		if u.kind == "ssubscribe" {
			kind = "sunsubscribe"
		}
		ps.mu.Lock()
		delete(u.pc.names, nameKey(u.kind, u.name))
		ps.mu.Unlock()
		_ = u.pc.send(resp.AppendCommand(nil, []byte(kind), u.name)) // a failed connection is gone anyway
	}
	if moved > 0 {
		f.log.Info("subscriptions moved after a ring change", "client", ps.c.conn.RemoteAddr().String(), "subscriptions", moved)
	}
	return done
}
