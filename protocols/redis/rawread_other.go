//go:build !(linux && (amd64 || arm64))

package redis

import "syscall"

// drainReader is a plain read here: it never reports the socket drained,
// so the caller reads until EAGAIN (see rawread_linux.go).
type drainReader struct{}

func (d *drainReader) read(fd uintptr, p []byte) (n int, drained, eof bool, e syscall.Errno) {
	n, e = rawRead(fd, p)
	if e == 0 && n == 0 && len(p) > 0 {
		eof = true
	}
	return n, false, eof, e
}
