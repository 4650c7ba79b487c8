package harness

import "syscall"

// sysProcAttr puts a child in its own process group and has the kernel
// SIGKILL it when the thread that started it (see startCmd) goes away.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}
