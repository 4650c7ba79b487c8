//go:build unix && !linux

package harness

import "syscall"

// sysProcAttr puts a child in its own process group. Only Linux can also
// tie its life to ours (Pdeathsig).
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
