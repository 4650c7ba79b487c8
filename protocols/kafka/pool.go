package kafka

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// Request frames are read into pooled buffers in power-of-two size
// classes, so that the large produce requests of a busy producer do not
// each cost a fresh, zeroed allocation. A frame goes back to the pool only
// when nothing can still refer to it: a produce request is written to its
// brokers before dispatch returns, so its frame is free then. Other frames
// are left to the garbage collector.
const (
	poolMinShift = 16 // 64 KiB: smaller frames are cheap to allocate
	poolMaxShift = 27 // 128 MiB
)

var framePools [poolMaxShift + 1]sync.Pool

func poolClass(n int) int {
	if n <= 1<<poolMinShift {
		return -1
	}
	c := bits.Len(uint(n - 1))
	if c > poolMaxShift {
		return -1
	}
	return c
}

// getFrame returns a buffer of length n, pooled when n is in a class.
func getFrame(n int) []byte {
	c := poolClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := framePools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<c)
}

// putFrame returns a buffer from getFrame to its pool.
func putFrame(b []byte) {
	c := poolClass(cap(b))
	if c < 0 || cap(b) != 1<<c {
		return
	}
	if poisonFrames {
		b = b[:cap(b)]
		for i := range b {
			b[i] = 0xa5
		}
	}
	b = b[:0]
	framePools[c].Put(&b)
}

// rbuf is a pooled backend response frame shared by what points into it
// (fetched partitions in a pending fetch, the stash, a response being
// written). The last unref returns it to the pool.
type rbuf struct {
	b    []byte
	refs atomic.Int32
}

func (r *rbuf) ref() {
	if r != nil {
		r.refs.Add(1)
	}
}

func (r *rbuf) unref() {
	if r != nil && r.refs.Add(-1) == 0 {
		putFrame(r.b)
		r.b = nil
	}
}
