package redis

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// request is one reply slot of a client's batch: a command forwarded to a
// node, a part of a split command, or a reply the ambassador made itself.
// Request objects are reused by their client from batch to batch.
type request struct {
	c     *client
	reply []byte // the reply, copied from the backend (or made locally)
	// skip is the number of replies to discard before the one kept
	// (the MULTI and QUEUED replies of a transaction sent at EXEC).
	skip int32
	// merge, when set, writes this request's reply from its subs at
	// write time, on the client's goroutine.
	merge func(c *client, r *request)
	subs  []*request
	idx   []int32 // positions of a sub-request's keys in the client's command
	aux   int64   // merge-specific (e.g. the node index of a SCAN)
	name  string  // command name, for merges' error messages
	rt    *route  // for the latency metric
	b     *batch  // the batch it completes (set when sent)
	proto int8    // the client's protocol when the command was read
}

func (r *request) reset() {
	if cap(r.reply) > 4<<10 {
		r.reply = nil // a big reply's buffer goes back with the request
	}
	r.reply = r.reply[:0]
	r.skip = 0
	r.merge = nil
	clear(r.subs)
	r.subs = r.subs[:0]
	r.idx = r.idx[:0]
	r.aux = 0
	r.name = ""
	r.rt = nil
	r.b = nil
}

// complete takes one reply from the backend reader; it reports whether
// the request is done.
func (r *request) complete(data []byte) bool {
	if r.skip > 0 {
		r.skip--
		return false
	}
	r.reply = append(r.reply[:0], data...)
	r.b.finish()
	return true
}

// fail completes the request with an error reply naming the node.
func (r *request) fail(addr string, err error) {
	r.skip = 0
	r.reply = resp.AppendError(r.reply[:0], "ERR node "+addr+": "+describe(err))
	r.b.finish()
}

// describe turns a connection error into a short message.
func describe(err error) string {
	switch {
	case err == nil:
		return "connection lost"
	case errors.Is(err, errTimeout):
		return err.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF):
		return "connection lost"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, net.ErrClosed):
		return "connection closed"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s, "dial") {
		s = s[i+2:]
	}
	return s
}

var errTimeout = errors.New("request timed out")
