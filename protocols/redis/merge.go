package redis

import (
	"math/rand/v2"
	"strconv"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// group is the keys of a split command that map to one node.
type group struct {
	pool *nodePool
	idx  []int32 // argument indexes of the keys
}

// groupKeys groups the keys at args[first], args[first+step], ... by node.
// It returns one group when they all map to one node.
func (c *client) groupKeys(args [][]byte, first, step int, groups []group) ([]group, error) {
	for i := first; i < len(args); i += step {
		pool, err := c.pickKey(args[i])
		if err != nil {
			return groups, err
		}
		j := 0
		for j < len(groups) && groups[j].pool != pool {
			j++
		}
		if j == len(groups) {
			if len(groups) < cap(groups) {
				groups = groups[:j+1]
				groups[j].pool = pool
				groups[j].idx = groups[j].idx[:0]
			} else {
				groups = append(groups, group{pool: pool})
			}
		}
		groups[j].idx = append(groups[j].idx, int32(i))
	}
	return groups, nil
}

// split runs a multi-key command (MGET, MSET, DEL, ...) on each node for
// the keys it owns, in parallel; merge puts the replies together in the
// client's order. A command whose keys all map to one node goes as is.
func (c *client) split(cmd resp.Command, start, step int, merge func(*client, *request)) {
	groups, err := c.groupKeys(cmd.Args, 1, step, c.groups[:0])
	c.groups = groups
	if err != nil {
		c.localError(replyFor(err))
		return
	}
	if len(groups) == 1 {
		c.forward(groups[0].pool.sharedConn(c.proto, c.id), cmd, start)
		return
	}
	parent := c.addReq()
	parent.merge = merge
	parent.aux = int64(len(cmd.Args))
	for _, g := range groups {
		sub := c.newReq()
		sub.idx = append(sub.idx[:0], g.idx...)
		n := len(cmd.Args[0]) + 16
		for _, i := range g.idx {
			for k := range step {
				n += len(cmd.Args[int(i)+k]) + 16
			}
		}
		b := c.arena.build(n)
		b = appendHeaderN(b, 1+len(g.idx)*step)
		b = resp.AppendBulk(b, cmd.Args[0])
		for _, i := range g.idx {
			for k := range step {
				b = resp.AppendBulk(b, cmd.Args[int(i)+k])
			}
		}
		parent.subs = append(parent.subs, sub)
		c.forwardBytes(g.pool.sharedConn(c.proto, c.id), sub, b)
	}
}

func appendHeaderN(b []byte, n int) []byte { return resp.AppendArray(b, n) }

func hMget(c *client, _ *route, cmd resp.Command, start int) { c.split(cmd, start, 1, mergeMget) }
func hMset(c *client, _ *route, cmd resp.Command, start int) {
	if len(cmd.Args)%2 == 0 {
		c.localError("ERR wrong number of arguments for 'mset' command")
		return
	}
	c.split(cmd, start, 2, mergeOK)
}
func hSumKeys(c *client, _ *route, cmd resp.Command, start int) { c.split(cmd, start, 1, mergeSum) }

// firstError writes the first error among the sub-replies; it reports
// whether there was one.
func (c *client) firstError(r *request) bool {
	for _, s := range r.subs {
		if resp.IsError(s.reply) {
			c.out = append(c.out, s.reply...)
			return true
		}
	}
	return false
}

func mergeMget(c *client, r *request) {
	if c.firstError(r) {
		return
	}
	n := int(r.aux) - 1 // keys
	if cap(c.tmp) < n {
		c.tmp = make([][]byte, n)
	}
	slots := c.tmp[:n]
	clear(slots)
	var elems [][]byte
	for _, s := range r.subs {
		var err error
		elems, _, _, err = resp.Elems(s.reply, elems[:0])
		if err != nil || len(elems) != len(s.idx) {
			c.out = resp.AppendError(c.out, "ERR unexpected MGET reply from a node")
			return
		}
		for j, e := range elems {
			slots[s.idx[j]-1] = e
		}
	}
	c.out = resp.AppendArray(c.out, n)
	for _, e := range slots {
		c.out = append(c.out, e...)
	}
}

func mergeSum(c *client, r *request) {
	if c.firstError(r) {
		return
	}
	var sum int64
	for _, s := range r.subs {
		v, ok := resp.Int(s.reply)
		if !ok {
			c.out = resp.AppendError(c.out, "ERR unexpected reply from a node")
			return
		}
		sum += v
	}
	c.out = resp.AppendInt(c.out, sum)
}

// mergeOK: every node said OK (or the same thing): the first reply.
func mergeOK(c *client, r *request) {
	if c.firstError(r) {
		return
	}
	c.out = append(c.out, r.subs[0].reply...)
}

// mergeAnyOK: the first success, else the first error (SCRIPT KILL finds
// the node running the script).
func mergeAnyOK(c *client, r *request) {
	for _, s := range r.subs {
		if !resp.IsError(s.reply) {
			c.out = append(c.out, s.reply...)
			return
		}
	}
	c.out = append(c.out, r.subs[0].reply...)
}

func mergeConcat(c *client, r *request) {
	if c.firstError(r) {
		return
	}
	var all [][]byte
	for _, s := range r.subs {
		var err error
		all, _, _, err = resp.Elems(s.reply, all)
		if err != nil {
			c.out = resp.AppendError(c.out, "ERR unexpected reply from a node")
			return
		}
	}
	c.out = resp.AppendArray(c.out, len(all))
	for _, e := range all {
		c.out = append(c.out, e...)
	}
}

// mergeAndInts: element-wise AND of integer arrays (SCRIPT EXISTS: a
// script exists when every node has it).
func mergeAndInts(c *client, r *request) {
	if c.firstError(r) {
		return
	}
	var first [][]byte
	first, _, _, _ = resp.Elems(r.subs[0].reply, nil)
	res := make([]int64, len(first))
	for i, e := range first {
		res[i], _ = resp.Int(e)
	}
	for _, s := range r.subs[1:] {
		elems, _, _, _ := resp.Elems(s.reply, nil)
		for i := range res {
			if i >= len(elems) {
				res[i] = 0
				continue
			}
			if v, _ := resp.Int(elems[i]); v == 0 {
				res[i] = 0
			}
		}
	}
	c.out = resp.AppendArray(c.out, len(res))
	for _, v := range res {
		c.out = resp.AppendInt(c.out, v)
	}
}

// mergeRandom: a non-null reply of a node taken at random.
func mergeRandom(c *client, r *request) {
	if c.firstError(r) {
		return
	}
	off := rand.IntN(len(r.subs))
	for i := range r.subs {
		s := r.subs[(off+i)%len(r.subs)]
		if b, ok := resp.Bulk(s.reply); ok && b != nil {
			c.out = append(c.out, s.reply...)
			return
		}
	}
	c.out = append(c.out, r.subs[0].reply...)
}

// fanout sends the command to every node. Without auto-eject, a down node
// fails the command (its answer would be missing); with it, down nodes
// are left out, as their keys live elsewhere.
func (c *client) fanout(cmd resp.Command, start int, merge func(*client, *request)) *request {
	nodes := c.f.cl.Nodes()
	autoEject := c.f.cfg().AutoEject
	up := 0
	for _, n := range nodes {
		if n.Up() {
			up++
		} else if !autoEject {
			c.localError(nodeError(&cluster.UnavailableError{Addr: n.Addr(), Reason: "down"}))
			return nil
		}
	}
	if up == 0 {
		c.localError("ERR no backend node is available")
		return nil
	}
	raw := cmd.Raw
	if raw == nil {
		raw = c.encode(cmd.Args)
	}
	parent := c.addReq()
	parent.merge = merge
	for i, n := range nodes {
		if !n.Up() {
			continue
		}
		sub := c.newReq()
		sub.aux = int64(i)
		parent.subs = append(parent.subs, sub)
		c.forwardBytes(c.f.poolOf(n).sharedConn(c.proto, c.id), sub, raw)
	}
	return parent
}

func hAllConcat(c *client, _ *route, cmd resp.Command, start int) { c.fanout(cmd, start, mergeConcat) }
func hAllSum(c *client, _ *route, cmd resp.Command, start int)    { c.fanout(cmd, start, mergeSum) }
func hAllOK(c *client, _ *route, cmd resp.Command, start int)     { c.fanout(cmd, start, mergeOK) }
func hAllSame(c *client, _ *route, cmd resp.Command, start int)   { c.fanout(cmd, start, mergeOK) }

// hAllKill runs SCRIPT KILL and FUNCTION KILL on every node that is up,
// over the client's own connections: a node runs nothing else of the
// connection that sent a running script until it ends, and that may be
// the shared connection, so a kill sent there would wait behind what it
// is meant to stop; on another connection the node takes it at once.
func hAllKill(c *client, _ *route, cmd resp.Command, start int) {
	if c.deferUnlessFirst(start) {
		return
	}
	raw := cmd.Raw
	if raw == nil {
		raw = c.encode(cmd.Args)
	}
	parent := c.addReq()
	parent.merge = mergeAnyOK
	c.toUpNodesOwn(parent, raw)
	if len(parent.subs) == 0 {
		parent.merge = nil
		parent.reply = resp.AppendError(parent.reply[:0], "ERR no backend node is available")
		return
	}
	c.barrier, c.sync = true, true
}

// toUpNodesOwn sends raw to every node that is up over the client's own
// connections, a subrequest of parent each.
func (c *client) toUpNodesOwn(parent *request, raw []byte) {
	for _, n := range c.f.cl.Nodes() {
		if n.Up() {
			sub := c.newReq()
			parent.subs = append(parent.subs, sub)
			c.forwardBytes(c.blocker(c.f.poolOf(n)), sub, raw)
		}
	}
}

func hRandomKey(c *client, _ *route, cmd resp.Command, start int) { c.fanout(cmd, start, mergeRandom) }
func hScriptExists(c *client, _ *route, cmd resp.Command, start int) {
	c.fanout(cmd, start, mergeAndInts)
}

// hScan runs SCAN over every node in turn. The cursor the client sees is
// nodeCursor*N + nodeIndex, so a full scan visits each node once.
func hScan(c *client, _ *route, cmd resp.Command, _ int) {
	cursor, ok := parseCursor(cmd.Args[1])
	if !ok {
		c.localError("ERR invalid cursor")
		return
	}
	nodes := c.f.cl.Nodes()
	if len(nodes) == 0 {
		c.localError("ERR no backend node is available")
		return
	}
	nn := uint64(len(nodes))
	idx := cursor % nn
	nodeCursor := cursor / nn
	if c.f.cfg().AutoEject {
		// An ejected node's keys live on the others: skip it, as the
		// fan-out commands leave it out.
		for idx < nn && !nodes[idx].Up() {
			idx++
			nodeCursor = 0
		}
		if idx == nn {
			r := c.addReq()
			r.reply = append(r.reply[:0], "*2\r\n$1\r\n0\r\n*0\r\n"...)
			return
		}
	}
	n := nodes[idx]
	if !n.Up() && !c.f.cfg().AutoEject {
		c.localError(nodeError(&cluster.UnavailableError{Addr: n.Addr(), Reason: "down"}))
		return
	}
	args := make([][]byte, len(cmd.Args))
	copy(args, cmd.Args)
	args[1] = strconv.AppendUint(nil, nodeCursor, 10)
	r := c.addReq()
	r.merge = mergeScan
	r.aux = int64(idx)
	sub := c.newReq()
	r.subs = append(r.subs, sub)
	c.forwardBytes(c.f.poolOf(n).sharedConn(c.proto, c.id), sub, c.encode(args))
}

// parseCursor reads a SCAN cursor as Redis does (strtoul): an optional
// sign, then decimal digits; a minus wraps around ("-1" is 2^64-1). The
// empty cursor is 0 (strtoul reads nothing and stops at the end).
func parseCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	neg := false
	if len(b) > 1 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '0' || b[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func mergeScan(c *client, r *request) {
	reply := r.subs[0].reply
	if resp.IsError(reply) {
		c.out = append(c.out, reply...)
		return
	}
	elems, _, _, err := resp.Elems(reply, nil)
	if err != nil || len(elems) != 2 {
		c.out = resp.AppendError(c.out, "ERR unexpected SCAN reply from a node")
		return
	}
	cb, _ := resp.Bulk(elems[0])
	next, err := strconv.ParseUint(string(cb), 10, 64)
	if err != nil {
		c.out = resp.AppendError(c.out, "ERR unexpected SCAN cursor from a node")
		return
	}
	nn := uint64(len(c.f.cl.Nodes()))
	idx := uint64(r.aux)
	var cursor uint64
	if next == 0 {
		if idx+1 < nn {
			cursor = idx + 1
		}
	} else {
		if next > (^uint64(0)-idx)/nn {
			c.out = resp.AppendError(c.out, "ERR SCAN cursor overflow")
			return
		}
		cursor = next*nn + idx
	}
	c.out = resp.AppendArray(c.out, 2)
	c.out = resp.AppendBulk(c.out, strconv.AppendUint(nil, cursor, 10))
	c.out = append(c.out, elems[1]...)
}

// PUBSUB CHANNELS / SHARDCHANNELS: the union of every node's channels.
func hPubsubChannels(c *client, _ *route, cmd resp.Command, start int) {
	c.fanout(cmd, start, func(c *client, r *request) {
		if c.firstError(r) {
			return
		}
		seen := map[string]bool{}
		var out [][]byte
		for _, s := range r.subs {
			elems, _, _, _ := resp.Elems(s.reply, nil)
			for _, e := range elems {
				b, _ := resp.Bulk(e)
				if !seen[string(b)] {
					seen[string(b)] = true
					out = append(out, e)
				}
			}
		}
		c.out = resp.AppendArray(c.out, len(out))
		for _, e := range out {
			c.out = append(c.out, e...)
		}
	})
}

// PUBSUB NUMSUB / SHARDNUMSUB: per channel, the sum over the nodes.
func hPubsubNumsub(c *client, _ *route, cmd resp.Command, start int) {
	c.fanout(cmd, start, func(c *client, r *request) {
		if c.firstError(r) {
			return
		}
		var names [][]byte
		var sums []int64
		typ := byte('*')
		for k, s := range r.subs {
			elems, t, _, _ := resp.Elems(s.reply, nil)
			typ = t
			for i := 0; i+1 < len(elems); i += 2 {
				v, _ := resp.Int(elems[i+1])
				j := i / 2
				if k == 0 {
					names = append(names, elems[i])
					sums = append(sums, v)
				} else if j < len(sums) {
					sums[j] += v
				}
			}
		}
		if typ == '%' {
			c.out = resp.AppendMap(c.out, len(names), 3)
		} else {
			c.out = resp.AppendArray(c.out, 2*len(names))
		}
		for i, nme := range names {
			c.out = append(c.out, nme...)
			c.out = resp.AppendInt(c.out, sums[i])
		}
	})
}
