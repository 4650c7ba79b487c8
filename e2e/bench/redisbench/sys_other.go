//go:build unix && !linux

package main

import "syscall"

// sysProcAttr puts a child in its own process group. Only Linux can also
// tie its life to ours (Pdeathsig); the figures need /proc anyway.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
