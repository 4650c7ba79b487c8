package main

import (
	"net"

	"golang.org/x/sys/unix"
)

// spliceAll moves in to out through a pipe until in ends.
func spliceAll(in, out *net.TCPConn) error {
	inr, err := in.SyscallConn()
	if err != nil {
		return err
	}
	outr, err := out.SyscallConn()
	if err != nil {
		return err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	size := 64 << 10
	if n, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 1<<20); err == nil {
		size = n
	}
	const flags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK
	held, eof := 0, false
	var serr error
	for !eof || held > 0 {
		if !eof && held < size {
			err := inr.Read(func(fd uintptr) bool {
				n, err := unix.Splice(int(fd), nil, p[1], nil, size-held, flags)
				switch {
				case err == unix.EAGAIN:
					return held > 0 // write what the pipe holds, or wait
				case err != nil:
					serr = err
				case n == 0:
					eof = true
				}
				held += int(max(n, 0))
				return true
			})
			if err != nil {
				return err
			}
			if serr != nil {
				return serr
			}
		}
		if held > 0 {
			err := outr.Write(func(fd uintptr) bool {
				n, err := unix.Splice(p[0], nil, int(fd), nil, held, flags)
				switch {
				case err == unix.EAGAIN:
					return false
				case err != nil:
					serr = err
				}
				held -= int(max(n, 0))
				return true
			})
			if err != nil {
				return err
			}
			if serr != nil {
				return serr
			}
		}
	}
	return nil
}
