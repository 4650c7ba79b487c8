package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// InstallCommand installs every backend the harness can start.
const InstallCommand = "apt-get install -y redis-server redis-tools rabbitmq-server kcat amqp-tools nutcracker"

// ErrNotInstalled is returned (wrapped) when a server binary is missing.
var ErrNotInstalled = errors.New("backend binary not installed")

// lookBin finds a binary in PATH or the sbin directories, which are often
// missing from PATH when not running as root.
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/lib/rabbitmq/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("harness: %s not found in PATH: %w; install it with: %s", name, ErrNotInstalled, InstallCommand)
}

// proc is one child process: its own process group, output into a log
// file, a goroutine that waits for it and closes done.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// spawn requests run on one goroutine locked to its OS thread for the life
// of the process: Pdeathsig fires when the thread that forked the child
// exits, so children must not be forked from threads the runtime may end.
var spawner struct {
	once sync.Once
	ch   chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// StartChild starts cmd in its own process group, as a child that the
// kernel kills when this process dies (on Linux), even on SIGKILL: for
// programs outside the harness that run their own children (benchmarks).
func StartChild(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = sysProcAttr(nil)
	}
	return startCmd(cmd)
}

func startCmd(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.ch = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawner.ch {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.ch <- spawnReq{cmd: cmd, errc: errc}
	return <-errc
}

// startProc starts bin with args and env (nil: inherit), output appended
// to logPath, in dir. cred, if not nil, runs the process as that user.
func startProc(name, bin string, args, env []string, dir, logPath string, cred *syscall.Credential) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("harness: %s: %w", name, err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr(cred)
	if err := startCmd(cmd); err != nil {
		return nil, fmt.Errorf("harness: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// livePid returns the pid of a running process, 0 otherwise (p may be
// nil).
func (p *proc) livePid() int {
	if p == nil || p.exited() {
		return 0
	}
	return p.pid()
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the whole process group.
func (p *proc) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), sig)
	_ = p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM and waits up to grace, then SIGKILLs the group.
// It always waits for the process to end.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	p.kill()
	return fmt.Errorf("harness: %s did not stop within %v after SIGTERM; killed", p.name, grace)
}

// kill SIGKILLs the process group and waits for the process to end.
// The group is only signalled while its leader is unreaped, so its id
// cannot have been reused by another process.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// logTail returns the last n lines of a log file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const maxBytes = 8 << 10
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// withLog appends the tail of a log file to an error.
func withLog(err error, path string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w\n--- %s (tail) ---\n%s", err, path, logTail(path, 30))
}

// exitError describes how a process ended, for errors.
func (p *proc) exitError() error {
	if p.waitErr != nil {
		return fmt.Errorf("harness: %s exited: %w", p.name, p.waitErr)
	}
	return fmt.Errorf("harness: %s exited", p.name)
}

// waitFor polls cond every interval until it returns nil, the process
// exits, or timeout passes.
func waitFor(p *proc, timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if p != nil && p.exited() {
			return p.exitError()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness: not ready after %v: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}

// mkTemp makes a fresh directory for one backend.
func mkTemp(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", "amb-"+prefix+"-")
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	return dir, nil
}

// joinErrs returns nil or all errors joined.
func joinErrs(errs []error) error { return errors.Join(errs...) }
