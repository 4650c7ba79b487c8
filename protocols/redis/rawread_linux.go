//go:build linux && (amd64 || arm64)

package redis

import (
	"syscall"
	"unsafe"
)

// mmsghdr is struct mmsghdr of 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// drainReader reads a socket and learns, in the same system call, whether
// the read drained it: recvmmsg with two receives, the second into a
// one-byte spare. When the second says EAGAIN the socket was empty after
// the data, so the caller may wait for the poller without the read that
// would only say EAGAIN; when it returns 0 the peer has closed its side
// (a FIN that came with or just after the data: a client that sends its
// commands and half-closes). Skipping that read on a short read alone is
// not safe: a FIN that arrived with the data sends no further readiness.
type drainReader struct {
	msgs  [2]mmsghdr
	iov   [2]syscall.Iovec
	spare [1]byte
}

// read fills p (all of it but its last byte, kept for the spare's byte).
// It returns the bytes read into p, whether the socket was seen empty
// after them (drained) or closed by the peer (eof), and the error of the
// first receive (EAGAIN: nothing to read).
func (d *drainReader) read(fd uintptr, p []byte) (n int, drained, eof bool, e syscall.Errno) {
	if len(p) < 2 {
		n, e = rawRead(fd, p)
		if e == 0 && n == 0 && len(p) > 0 {
			eof = true
		}
		return n, false, eof, e
	}
	d.iov[0].Base, d.iov[1].Base = &p[0], &d.spare[0]
	d.iov[0].SetLen(len(p) - 1)
	d.iov[1].SetLen(1)
	for i := range d.msgs {
		d.msgs[i] = mmsghdr{}
		d.msgs[i].hdr.Iov = &d.iov[i]
		d.msgs[i].hdr.Iovlen = 1
	}
	got, _, errno := syscall.RawSyscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&d.msgs[0])), 2, syscall.MSG_DONTWAIT, 0, 0)
	d.iov[0].Base, d.iov[1].Base = nil, nil // no pointer into p kept
	if errno != 0 {
		return 0, false, false, errno
	}
	n = int(d.msgs[0].len)
	switch {
	case n == 0:
		return 0, false, true, 0 // the first receive saw the end
	case got < 2:
		// the second receive failed: EAGAIN (drained), or an error that
		// the next read reports
		return n, true, false, 0
	case d.msgs[1].len == 0:
		return n, false, true, 0
	default:
		p[n] = d.spare[0] // more came in between: keep reading
		return n + 1, false, false, 0
	}
}
