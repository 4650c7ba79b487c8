package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Nutcracker is a nutcracker (twemproxy) process with one Redis pool, for
// side-by-side comparisons with the ambassador.
type Nutcracker struct {
	Addr       string // the pool's listener, 127.0.0.1:Port
	Port       int
	StatsAddr  string // stats JSON on connect
	Dir        string
	ConfigPath string
	LogPath    string

	mu sync.Mutex
	p  *proc
}

// StartNutcracker starts nutcracker with one Redis pool in front of
// servers, each "host:port:weight [name]" (a bare "host:port" gets weight
// 1). hash (e.g. fnv1a_64, murmur, crc32a; default fnv1a_64) and
// distribution (ketama, modula, random; default ketama) are nutcracker's
// names; hashTag is two characters such as "{}", or "" for none. Hosts
// are never ejected, so a down server shows up as errors.
func StartNutcracker(servers []string, hash, distribution, hashTag string) (*Nutcracker, error) {
	bin, err := lookBin("nutcracker")
	if err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("harness: nutcracker: no servers")
	}
	if hash == "" {
		hash = "fnv1a_64"
	}
	if distribution == "" {
		distribution = "ketama"
	}
	if hashTag != "" && len(hashTag) != 2 {
		return nil, fmt.Errorf("harness: nutcracker: hash tag %q is not two characters", hashTag)
	}
	dir, err := mkTemp("nutcracker")
	if err != nil {
		return nil, err
	}
	n := &Nutcracker{Dir: dir, ConfigPath: filepath.Join(dir, "nutcracker.yml"), LogPath: filepath.Join(dir, "nutcracker.log")}
	if err := n.start(bin, servers, hash, distribution, hashTag); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return n, nil
}

func (n *Nutcracker) start(bin string, servers []string, hash, distribution, hashTag string) error {
	for attempt := 0; ; attempt++ {
		ports, err := FreePorts(2)
		if err != nil {
			return err
		}
		n.Port, n.Addr, n.StatsAddr = ports[0], addr(ports[0]), addr(ports[1])
		var b strings.Builder
		fmt.Fprintf(&b, "amb:\n  listen: %s\n  redis: true\n  hash: %s\n  distribution: %s\n", n.Addr, hash, distribution)
		if hashTag != "" {
			fmt.Fprintf(&b, "  hash_tag: %q\n", hashTag)
		}
		b.WriteString("  auto_eject_hosts: false\n  server_retry_timeout: 2000\n  server_failure_limit: 1\n  timeout: 4000\n  preconnect: true\n  servers:\n")
		for _, s := range servers {
			f := strings.Fields(s)
			if len(f) == 0 {
				return fmt.Errorf("harness: nutcracker: empty server entry")
			}
			if strings.Count(f[0], ":") == 1 {
				f[0] += ":1"
			}
			fmt.Fprintf(&b, "   - %s\n", strings.Join(f, " "))
		}
		if err := os.WriteFile(n.ConfigPath, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("harness: nutcracker: %w", err)
		}
		if out, err := exec.Command(bin, "-t", "-c", n.ConfigPath).CombinedOutput(); err != nil {
			return fmt.Errorf("harness: nutcracker: bad config %s: %w\n%s\n%s", n.ConfigPath, err, out, b.String())
		}
		args := []string{"-c", n.ConfigPath, "-o", n.LogPath, "-s", strconv.Itoa(ports[1]), "-a", "127.0.0.1",
			"-p", filepath.Join(n.Dir, "nutcracker.pid")}
		p, err := startProc("nutcracker "+n.Addr, bin, args, nil, n.Dir, filepath.Join(n.Dir, "stdout.log"), nil)
		if err != nil {
			return err
		}
		err = waitFor(p, 10*time.Second, 20*time.Millisecond, func() error {
			c, err := net.DialTimeout("tcp", n.Addr, time.Second)
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err == nil {
			n.p = p
			return nil
		}
		p.kill()
		if attempt < 3 && strings.Contains(logTail(n.LogPath, 10), "in use") {
			continue
		}
		return withLog(fmt.Errorf("harness: nutcracker %s: %w", n.Addr, err), n.LogPath)
	}
}

// NewNutcracker starts nutcracker for a test and closes it when the test
// ends.
func NewNutcracker(t testing.TB, servers []string, hash, distribution, hashTag string) *Nutcracker {
	t.Helper()
	n, err := StartNutcracker(servers, hash, distribution, hashTag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// Stop kills nutcracker; its directory stays until Close.
func (n *Nutcracker) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		n.p.kill()
	}
	return nil
}

// Pid returns the process id of the nutcracker, 0 when it is not running.
func (n *Nutcracker) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p.livePid()
}

// Close kills nutcracker and removes its directory.
func (n *Nutcracker) Close() error {
	_ = n.Stop()
	return os.RemoveAll(n.Dir)
}

// LogTail returns the last lines of nutcracker's log.
func (n *Nutcracker) LogTail(lines int) string { return logTail(n.LogPath, lines) }
