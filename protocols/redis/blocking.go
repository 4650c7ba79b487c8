package redis

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// hBlocking runs a blocking command (BLPOP, BLMOVE, BZPOPMIN, XREAD
// BLOCK, ...) alone, on a connection of the client's own to the node of
// its keys, so that it never stalls other clients. The reply may take
// the command's timeout plus the request timeout; with timeout 0 it waits
// as long as the client stays connected.
func hBlocking(c *client, rt *route, cmd resp.Command, start int) {
	block, ok := blockTimeout(rt.name, cmd.Args)
	if !ok {
		hKeyed(c, rt, cmd, start) // XREAD without BLOCK: an ordinary command
		return
	}
	pool, err := c.keysNode(rt, cmd.Args)
	if err != nil {
		c.localError(replyFor(err))
		return
	}
	if pool == nil {
		if pool, err = c.anyNode(); err != nil {
			c.localError(replyFor(err))
			return
		}
	}
	if c.deferUnlessFirst(start) {
		return
	}
	c.forward(c.blocker(pool), cmd, start)
	c.setBlockTimeout(block)
	c.barrier, c.sync = true, true
}

func (c *client) setBlockTimeout(block time.Duration) {
	if block < 0 {
		c.timeout = -1
		c.watchClient = true
		return
	}
	c.timeout = block + c.f.requestTimeout()
	if block > time.Second {
		c.watchClient = true
	}
}

// blocker returns the client's own connection to a node for blocking
// commands, kept for the client's life.
func (c *client) blocker(pool *nodePool) *backendConn {
	for p := range c.blockers {
		if p != pool && p.isClosed() { // its node was removed: the pool closed the connection
			delete(c.blockers, p)
		}
	}
	if bc, ok := c.blockers[pool]; ok {
		if bc.proto == c.proto {
			return bc
		}
		// dialled before HELLO or RESET changed the protocol: its
		// replies would reach the client in the old one
		pool.release(bc)
	}
	if c.blockers == nil {
		c.blockers = map[*nodePool]*backendConn{}
	}
	bc := pool.dedicated(c.proto)
	c.blockers[pool] = bc
	return bc
}

// blockTimeout returns how long a blocking command may block: negative
// for "forever" (0). ok is false when the command will not block.
func blockTimeout(name string, args [][]byte) (d time.Duration, ok bool) {
	var raw []byte
	ms := false
	switch name {
	case "blmpop", "bzmpop":
		raw = args[1]
	case "xread", "xreadgroup":
		for i := 1; i+1 < len(args); i++ {
			if bytes.EqualFold(args[i], []byte("streams")) {
				break
			}
			if bytes.EqualFold(args[i], []byte("block")) {
				raw = args[i+1]
				ms = true
				break
			}
		}
		if raw == nil {
			return 0, false
		}
	case "wait", "waitaof":
		raw = args[len(args)-1]
		ms = true
	default:
		raw = args[len(args)-1]
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, true // the node replies with the error at once
	}
	if v == 0 {
		return -1, true
	}
	if ms {
		return time.Duration(v * float64(time.Millisecond)), true
	}
	return time.Duration(v * float64(time.Second)), true
}

// hWait runs WAIT where the client's writes went: on each node it has sent
// commands to (Redis's WAIT, too, waits for all of the connection's
// writes, not only those since the last WAIT), over the client's own
// connection, and
// answers the smallest count. A node waits for the writes of the
// connection WAIT runs on, and the client's went over shared connections;
// so the connection first sends a PUBLISH (which a standalone Redis
// replicates, to no subscriber), putting the offset to wait for past
// every write the node had made, the client's included (they were
// answered before WAIT runs: it runs alone). A node of those that is down
// counts 0 replicas; a client that sent nothing gets the count of each
// up node's replicas (as Redis answers a connection with no writes).
func hWait(c *client, rt *route, cmd resp.Command, start int) {
	block, _ := blockTimeout("wait", cmd.Args)
	if c.deferUnlessFirst(start) {
		return
	}
	parent := c.addReq()
	parent.merge = mergeWait
	raw := cmd.Raw
	if raw == nil {
		raw = c.encode(cmd.Args)
	}
	touched := c.touched
	if len(touched) == 0 {
		c.toUpNodesOwn(parent, raw)
	} else {
		parent.aux = waitPairs
		for _, p := range touched {
			if p.isClosed() {
				continue // its node left the configuration
			}
			if !p.node.Up() {
				parent.aux = waitPairsDown
				continue
			}
			bc := c.blocker(p)
			pub, sub := c.newReq(), c.newReq()
			parent.subs = append(parent.subs, pub, sub)
			c.forwardBytes(bc, pub, waitPublish)
			c.forwardBytes(bc, sub, raw)
		}
	}
	if len(parent.subs) == 0 {
		if parent.aux == waitPairsDown {
			parent.merge = nil
			parent.reply = resp.AppendInt(parent.reply[:0], 0)
			return
		}
		parent.merge = nil
		parent.reply = resp.AppendError(parent.reply[:0], "ERR no backend node is available")
		return
	}
	c.touched = touched // the WAIT's own connections are not commands of the client's
	c.setBlockTimeout(block)
	c.barrier, c.sync = true, true
}

// The layouts of a WAIT's subrequests (request.aux): WAIT replies only,
// or PUBLISH and WAIT pairs, with a node down among the client's (the
// answer is then 0).
const (
	waitPlain = iota
	waitPairs
	waitPairsDown
)

var waitPublish = resp.AppendCommandStrings(nil, "PUBLISH", "__ambassador__:wait", "")

func mergeWait(c *client, r *request) {
	if c.firstError(r) {
		return
	}
	var m int64 = math.MaxInt64
	for i, s := range r.subs {
		if r.aux != waitPlain && i%2 == 0 {
			continue // a PUBLISH reply
		}
		v, _ := resp.Int(s.reply)
		m = min(m, v)
	}
	if r.aux == waitPairsDown {
		m = 0
	}
	c.out = resp.AppendInt(c.out, m)
}
