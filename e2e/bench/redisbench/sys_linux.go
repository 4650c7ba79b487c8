package main

import "syscall"

// sysProcAttr puts a child in its own process group (a Ctrl-C at the
// terminal reaches this program, which stops the children in order) and
// has the kernel SIGKILL it when this program dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
