package redis

import (
	"net"
	"syscall"
	"unsafe"
)

// Socket I/O on the data path uses raw syscalls on the non-blocking
// sockets the poller manages: the runtime is not told of the call, so
// sysmon never hands the P to another thread while a write wakes its
// reader (a thread switch, and a tail of latency, per slow call). The
// calls cannot block: a full or empty socket returns EAGAIN, and the
// caller then waits on the poller through the connection's RawConn.

func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// rawWriter writes whole buffers to a connection with raw syscalls,
// waiting for writability (and honouring the write deadline) through its
// RawConn.
type rawWriter struct {
	conn net.Conn
	rc   syscall.RawConn
}

func newRawWriter(conn net.Conn) rawWriter {
	w := rawWriter{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			w.rc = rc
		}
	}
	return w
}

// writeSome writes what the socket takes now, without waiting for
// writability, and returns how much it took (all of p, or an error, when
// the connection is not raw: its write may block).
func (w rawWriter) writeSome(p []byte) (int, error) {
	if w.rc == nil {
		_, err := w.conn.Write(p)
		return len(p), err
	}
	written := 0
	var werr error
	err := w.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[written])), uintptr(len(p)-written))
			switch e {
			case 0:
				written += int(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return true // full: the caller hands the rest on
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if werr != nil {
		return written, werr
	}
	return written, err
}

func (w rawWriter) write(p []byte) error {
	if w.rc == nil {
		_, err := w.conn.Write(p)
		return err
	}
	var werr error
	err := w.rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case 0:
				p = p[n:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if werr != nil {
		return werr
	}
	return err
}
