package redisserver

import "syscall"

// procAttr makes the kernel kill redis-server if the process that started
// it dies without calling Close (a test binary that panicked, say).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
