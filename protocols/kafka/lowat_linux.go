package kafka

import (
	"net"
	"syscall"
)

// Large frames are read with SO_RCVLOWAT raised, so that the reader wakes
// once per lowatMax bytes that arrived instead of once per packet burst.
// A reader that is always ready (the ambassador's: it parses in its own
// goroutine) otherwise drains the socket in slices of a few hundred KB and
// pays a wake-up, a system call and a window update for each; on loopback
// that is a large part of what a hop costs.
const (
	lowatMin = 128 << 10 // reads of fewer bytes keep the default (1)
	lowatMax = 1 << 20
)

// lowatReader reads a TCP connection, raising its receive low-water mark
// to the bytes a read asks for when they are many. It relies on its
// caller: a read of lowatMin bytes or more must be for bytes the peer is
// bound to send (the rest of a frame whose size was read), or the reader
// would wait for bytes that never come. bufio.Reader passes such reads
// straight through (they are larger than its buffer), and fills its own
// buffer with reads smaller than lowatMin.
type lowatReader struct {
	c    *net.TCPConn
	rc   syscall.RawConn
	cur  int // the low-water mark set, 1 at first
	peak int // the highest mark set (for tests)
	off  bool
}

func newLowatReader(c net.Conn) (r interface{ Read([]byte) (int, error) }) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &lowatReader{c: tc, rc: rc, cur: 1}
}

func (r *lowatReader) Read(p []byte) (int, error) {
	if !r.off {
		want := 1
		if len(p) >= lowatMin {
			want = min(len(p), lowatMax)
		}
		// Raised only when the read asks for more than lowatMax bytes or
		// comes after a small one; lowered whenever the mark is above
		// what the read asks for.
		if want > r.cur && (r.cur == 1 || want == lowatMax) || want < r.cur {
			r.set(want)
		}
	}
	return r.c.Read(p)
}

func (r *lowatReader) set(v int) {
	var serr error
	if err := r.rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, v)
	}); err != nil || serr != nil {
		r.off = true // closed, or a kernel without it: plain reads
		return
	}
	r.cur = v
	r.peak = max(r.peak, v)
}
