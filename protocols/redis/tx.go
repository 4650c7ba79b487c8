package redis

import (
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// txState is a MULTI in progress: the ambassador queues the commands and
// sends MULTI, the commands and EXEC in one piece to the one node their
// keys map to, so that no other client's command lands in between.
type txState struct {
	cmds   []byte
	n      int
	pool   *nodePool // node of the keys queued so far
	dirty  bool
	reason string
}

// dedicatedState is a WATCH in progress: the client's own connection to
// the node of the watched keys, which runs the following EXEC.
type dedicatedState struct {
	pool *nodePool
	bc   *backendConn
}

func hMulti(c *client, _ *route, _ resp.Command, _ int) {
	if c.tx != nil {
		c.localError("ERR MULTI calls can not be nested")
		return
	}
	c.tx = &txState{}
	c.localOK()
}

// txQueue checks a command inside MULTI and queues it.
func (c *client) txQueue(rt *route, cmd resp.Command) {
	tx := c.tx
	var pool *nodePool
	var err error
	switch {
	case rt.noMulti:
		err = &replyError{"ERR Command not allowed inside a transaction"}
	case rt.txMode == txRefuse:
		err = &replyError{"ERR " + rt.upper + " inside MULTI is not supported by the ambassador"}
	case rt.name == "select" && string(cmd.Args[1]) != "0":
		// SELECT 0 runs on the node (a no-op there); another database
		// would switch the node's connection
		err = &replyError{"ERR the ambassador serves database 0 only"}
	case rt.name == "copy" && copyToOtherDB(cmd.Args):
		err = &replyError{"ERR the ambassador serves database 0 only"}
	case (rt.name == "sort" || rt.name == "sort_ro") && c.sortPatternError(cmd.Args) != "":
		err = &replyError{c.sortPatternError(cmd.Args)}
	case rt.txMode == txKeyed && (rt.name == "publish" || rt.name == "spublish") && len(cmd.Args) > 1:
		// by channel, where its subscribers are (as hChannel)
		pool, err = c.pickKey(cmd.Args[1])
	case rt.txMode == txKeyed:
		pool, err = c.keysNode(rt, cmd.Args)
	}
	if err == nil && pool != nil {
		if tx.pool == nil {
			tx.pool = pool
		} else if tx.pool != pool {
			err = errCrossSlot
			tx.reason = ": its keys map to more than one node"
		}
	}
	if err != nil {
		tx.dirty = true
		c.localError(replyFor(err))
		return
	}
	if cmd.Raw != nil {
		tx.cmds = append(tx.cmds, cmd.Raw...)
	} else {
		tx.cmds = resp.AppendCommand(tx.cmds, cmd.Args...)
	}
	tx.n++
	r := c.addReq()
	r.reply = append(r.reply[:0], "+QUEUED\r\n"...)
}

var (
	multiCmd = []byte("*1\r\n$5\r\nMULTI\r\n")
	execCmd  = []byte("*1\r\n$4\r\nEXEC\r\n")
)

func hExec(c *client, _ *route, _ resp.Command, start int) {
	tx := c.tx
	if tx == nil {
		c.localError("ERR EXEC without MULTI")
		return
	}
	// With a WATCH, EXEC goes on the WATCH connection while the commands
	// before it in the batch go on the shared ones: it must wait until
	// they have run, or the node could run it first.
	if c.watch != nil && c.deferUnlessFirst(start) {
		return
	}
	c.tx = nil
	watch := c.watch
	c.watch = nil
	if tx.dirty {
		if watch != nil {
			c.unwatchLater(watch)
		}
		c.localError("EXECABORT Transaction discarded because of previous errors" + tx.reason + ".")
		return
	}
	pool := tx.pool
	var bc *backendConn
	if watch != nil {
		if pool != nil && pool != watch.pool {
			c.unwatchLater(watch)
			c.localError("EXECABORT Transaction discarded: the watched keys and the transaction's keys map to different nodes.")
			return
		}
		bc = watch.bc
		c.releaseLater = append(c.releaseLater, bc)
	} else {
		if tx.n == 0 {
			r := c.addReq()
			r.reply = resp.AppendArray(r.reply[:0], 0)
			return
		}
		if pool == nil {
			var err error
			if pool, err = c.anyNode(); err != nil {
				c.localError(replyFor(err))
				return
			}
		}
		bc = pool.sharedConn(c.proto, c.id)
	}
	b := c.arena.build(len(multiCmd) + len(tx.cmds) + len(execCmd))
	b = append(b, multiCmd...)
	b = append(b, tx.cmds...)
	b = append(b, execCmd...)
	r := c.addReq()
	r.skip = int32(tx.n + 1) // +OK of MULTI and a +QUEUED per command
	c.forwardBytes(bc, r, b)
	if watch != nil {
		c.barrier, c.sync = true, true
	}
}

func hDiscard(c *client, _ *route, _ resp.Command, _ int) {
	if c.tx == nil {
		c.localError("ERR DISCARD without MULTI")
		return
	}
	c.tx = nil
	if c.watch != nil {
		c.unwatchLater(c.watch)
		c.watch = nil
	}
	c.localOK()
}

var unwatchCmd = []byte("*1\r\n$7\r\nUNWATCH\r\n")

// unwatchLater sends UNWATCH on the WATCH connection as a hidden request
// and releases the connection after the batch.
func (c *client) unwatchLater(w *dedicatedState) {
	r := c.newReq()
	c.hidden = append(c.hidden, r)
	c.forwardBytes(w.bc, r, unwatchCmd)
	c.releaseLater = append(c.releaseLater, w.bc)
	c.barrier, c.sync = true, true
}

func hWatch(c *client, rt *route, cmd resp.Command, start int) {
	if c.tx != nil {
		c.localError("ERR WATCH inside MULTI is not allowed")
		return
	}
	pool, err := c.keysNode(rt, cmd.Args)
	if err != nil {
		c.localError(replyFor(err))
		return
	}
	if c.watch != nil && c.watch.pool != pool {
		c.localError("CROSSSLOT WATCH keys must all map to one node (the ambassador runs the transaction there)")
		return
	}
	if c.deferUnlessFirst(start) {
		return
	}
	if c.watch == nil {
		c.watch = &dedicatedState{pool: pool, bc: pool.dedicated(c.proto)}
	}
	c.forward(c.watch.bc, cmd, start)
	c.barrier, c.sync = true, true
}

func hUnwatch(c *client, _ *route, _ resp.Command, _ int) {
	if c.watch == nil {
		c.localOK()
		return
	}
	w := c.watch
	c.watch = nil
	r := c.addReq()
	c.forwardBytes(w.bc, r, unwatchCmd)
	c.releaseLater = append(c.releaseLater, w.bc)
	c.barrier, c.sync = true, true
}

// deferUnlessFirst makes the command at start wait for the next batch
// when the batch already has replies: commands that must not overlap with
// earlier ones (blocking commands, WATCH, SUBSCRIBE) run at the start of
// a batch. It reports whether the command was deferred.
func (c *client) deferUnlessFirst(start int) bool {
	if len(c.reqs) == 0 {
		return false
	}
	c.r = start
	c.barrier = true
	c.deferred = true
	return true
}
