// Command redisbench runs redis-benchmark (the C tool of redis-tools)
// against one redis-server node directly, against twemproxy (nutcracker)
// and against the ambassador, both proxies sharding over the same three
// standalone redis-server nodes, side by side in one run:
//
//	make bench-redis        # make build, then go run ./e2e/bench/redisbench
//	go run ./e2e/bench/redisbench [-n N] [-rounds 2] [-pick best|median] [-quick] [-md]
//
// Workloads (every one with -r 100000 so keys spread over the nodes):
//
//	pipelined    -P 16 -c 50 -t set,get
//	unpipelined  -c 50 -t set,get
//	mixed        -c 50 -t set,get,incr,lpush,lpop,sadd,hset,mset,lrange_100
//
// Each round runs every workload against direct, twemproxy and the
// ambassador in turn (the next round in the reverse order, against drift);
// the report takes the best or the median of the rounds. It prints rps,
// p50 and p99 per test, the ratios ambassador/twemproxy, the CPU time each
// proxy used per workload, and the resident memory of each proxy holding
// 10,000 idle client connections (read from /proc). With -md the report
// is a Markdown section for docs/benchmarks.md on stdout, and the plain
// report goes to stderr.
//
// The machine's own Redis (6379) is never touched: every server runs on a
// free loopback port from the e2e harness, and every child is killed when
// the program ends, on Ctrl-C too. The exit status is non-zero only when
// something could not be run; the figures are reported, not asserted.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ambassador-proxy/ambassador/e2e/harness"
)

type options struct {
	n            int
	rounds       int
	pick         string
	quick        bool
	md           bool
	binary       string
	conns        int
	only         string
	waitLoad     float64
	waitMax      time.Duration
	pprofDir     string
	pprofSeconds int
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 0, "requests per test for every workload (default: per workload, pipelined 500000, unpipelined 150000, mixed 50000)")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds; each runs every workload against every target")
	flag.StringVar(&o.pick, "pick", "best", "how rounds are combined: best (highest rps, lowest p50 and p99) or median")
	flag.BoolVar(&o.quick, "quick", false, "a tenth of the requests, one round, 1000 idle connections (a smoke run; not for docs)")
	flag.BoolVar(&o.md, "md", false, "print the report as a Markdown section for docs/benchmarks.md on stdout (the plain report goes to stderr)")
	flag.StringVar(&o.binary, "binary", "bin/ambassador", "the ambassador binary (make build)")
	flag.IntVar(&o.conns, "conns", 10000, "idle client connections for the memory measurement (0 skips it)")
	flag.StringVar(&o.only, "workloads", "pipelined,unpipelined,mixed", "comma-separated workloads to run (none: only the idle connections)")
	flag.Float64Var(&o.waitLoad, "wait-load", 0, "before starting, wait until the 1-minute load average is below this (0: do not wait)")
	flag.DurationVar(&o.waitMax, "wait-max", 5*time.Minute, "longest wait for -wait-load; then run anyway")
	flag.StringVar(&o.pprofDir, "pprof", "", "write CPU profiles of the ambassador during its first-round runs into this directory")
	flag.IntVar(&o.pprofSeconds, "pprof-seconds", 3, "length of each -pprof profile")
	flag.Parse()
	if o.pick != "best" && o.pick != "median" {
		fmt.Fprintln(os.Stderr, "redisbench: -pick must be best or median")
		os.Exit(2)
	}
	if o.quick {
		o.rounds = 1
		if o.conns > 1000 {
			o.conns = 1000
		}
	}
	if o.rounds < 1 {
		o.rounds = 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var text io.Writer = os.Stdout
	if o.md {
		text = os.Stderr
	}
	rep, err := run(ctx, o)
	if rep != nil {
		rep.printText(text)
		if o.md {
			rep.printMarkdown(os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisbench:", err)
		if ctx.Err() != nil {
			os.Exit(130)
		}
		os.Exit(1)
	}
	if rep != nil && len(rep.Failures) > 0 {
		os.Exit(1)
	}
}

// progress prints a line of what is happening now (stderr, so that -md
// output stays clean).
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "# "+format+"\n", args...)
}

func run(ctx context.Context, o options) (*report, error) {
	benchBin, err := lookBin("redis-benchmark")
	if err != nil {
		return nil, err
	}
	ncBin, err := lookBin("nutcracker")
	if err != nil {
		return nil, err
	}
	rsBin, err := lookBin("redis-server")
	if err != nil {
		return nil, err
	}
	var ws []workload
	for _, name := range strings.Split(o.only, ",") {
		if name == "" || name == "none" {
			continue // only the idle-connection measurement
		}
		i := slices.IndexFunc(workloads, func(w workload) bool { return w.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("unknown workload %q", name)
		}
		ws = append(ws, workloads[i])
	}

	rep := &report{
		Opts:      o,
		NProc:     runtime.NumCPU(),
		CPU:       cpuModel(),
		Versions:  map[string]string{},
		Workloads: ws,
		N:         map[string]int{},
	}
	for _, w := range ws {
		n := w.DefN
		if o.n > 0 {
			n = o.n
		} else if o.quick {
			n /= 10
		}
		rep.N[w.Name] = n
	}
	rep.Versions["redis-server"] = versionOf(rsBin, "--version")
	rep.Versions["redis-benchmark"] = versionOf(benchBin, "--version")
	rep.Versions["nutcracker"] = versionOf(ncBin, "-V")

	// one fd per idle client in this process and in each proxy, plus slack
	rep.NoFileBefore, rep.NoFileAfter, err = raiseNoFile(uint64(o.conns) + 1024)
	if err != nil {
		return nil, fmt.Errorf("setrlimit NOFILE: %w", err)
	}
	progress("RLIMIT_NOFILE soft/hard %d/%d -> %d/%d", rep.NoFileBefore.Cur, rep.NoFileBefore.Max, rep.NoFileAfter.Cur, rep.NoFileAfter.Max)
	if rep.NoFileAfter.Cur < uint64(o.conns)+64 {
		progress("RLIMIT_NOFILE %d is too low for %d idle connections", rep.NoFileAfter.Cur, o.conns)
	}

	if o.waitLoad > 0 {
		deadline := time.Now().Add(o.waitMax)
		for {
			l, _ := loadAvg()
			if l[0] < o.waitLoad || time.Now().After(deadline) {
				break
			}
			progress("load average %.2f >= %.2f; waiting a minute (until %s at most)", l[0], o.waitLoad, deadline.Format("15:04:05"))
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Minute):
			}
		}
	}
	rep.LoadBefore, _ = loadAvg()
	rep.Date = time.Now().UTC().Format("2006-01-02 15:04 UTC")
	rep.GitRev = strings.TrimSpace(versionOf("git", "describe", "--always", "--dirty"))

	dir, err := os.MkdirTemp("", "amb-redisbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	progress("starting 3 redis-server nodes")
	nodes, err := harness.StartRedis(3, "--save", "", "--appendonly", "no")
	if err != nil {
		return nil, err
	}
	defer harness.CloseRedis(nodes)
	addrs := harness.RedisAddrs(nodes)
	rep.Nodes = addrs
	var redisPids []int
	for _, n := range nodes {
		pid, err := pidListening(n.Port)
		if err != nil {
			return nil, fmt.Errorf("redis-server %s: %w", n.Addr, err)
		}
		redisPids = append(redisPids, pid)
	}

	progress("starting nutcracker")
	nc, err := harness.StartNutcracker(addrs, "fnv1a_64", "ketama", "{}")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	ncPid, err := pidListening(nc.Port)
	if err != nil {
		return nil, fmt.Errorf("nutcracker %s: %w", nc.Addr, err)
	}
	rep.NutcrackerArgv = cmdline(ncPid)
	if cfg, err := os.ReadFile(nc.ConfigPath); err == nil {
		rep.NutcrackerConfig = string(cfg)
	}

	progress("starting the ambassador %s", o.binary)
	// A private copy: bin/ambassador may be rebuilt by someone else
	// during the run.
	ambBin := filepath.Join(dir, "ambassador")
	if err := copyFile(o.binary, ambBin); err != nil {
		return rep, fmt.Errorf("ambassador binary: %w (run make build)", err)
	}
	rep.AmbSource = o.binary
	amb, err := startAmbassador(ambBin, addrs, dir)
	if err != nil {
		return nil, err
	}
	defer amb.Stop()
	rep.AmbBin, rep.AmbEnv = amb.Bin, amb.Env
	rep.Versions["ambassador"] = versionOf(amb.Bin, "version")

	// Same placement in both proxies: written through twemproxy, read
	// through the ambassador.
	rep.PlacementOK, err = placementCheck(nc.Addr, amb.Addr, 100)
	if err != nil {
		rep.Failures = append(rep.Failures, "placement check: "+err.Error())
	}
	for _, n := range nodes {
		if _, err := n.Do("FLUSHALL"); err != nil {
			return rep, err
		}
	}

	rssAmb0, _ := procRSS(amb.Pid())
	rssNc0, _ := procRSS(ncPid)

	targets := []target{
		{Name: "direct", Addr: addrs[0]},
		{Name: "twemproxy", Addr: nc.Addr, Pid: ncPid},
		{Name: "ambassador", Addr: amb.Addr, Pid: amb.Pid()},
	}
	rep.Targets = targets
	dead := map[string]bool{}
	if o.pprofDir != "" {
		if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
			return rep, err
		}
	}
	for round := range o.rounds {
		order := slices.Clone(targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, w := range ws {
			for _, t := range order {
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				argv := benchArgv(benchBin, w, t.Addr, rep.N[w.Name])
				if dead[t.Name] {
					rep.Runs = append(rep.Runs, runResult{Workload: w.Name, Target: t.Name, Round: round, Argv: argv,
						Err: fmt.Errorf("%s is not running", t.Name)})
					continue
				}
				var profDone chan error
				if o.pprofDir != "" && round == 0 && t.Name == "ambassador" {
					profDone = make(chan error, 1)
					path := filepath.Join(o.pprofDir, w.Name+".pprof")
					go func() { profDone <- amb.fetchProfile(ctx, o.pprofSeconds, path) }()
				}
				progress("round %d/%d %-11s %-10s %s", round+1, o.rounds, w.Name, t.Name, shellQuote(argv))
				var idle []int
				for _, o := range targets {
					if o.Pid != 0 && o.Pid != t.Pid {
						idle = append(idle, o.Pid)
					}
				}
				r := runBench(ctx, argv, t.Pid, redisPids, idle)
				r.Workload, r.Target, r.Round = w.Name, t.Name, round
				r.Requests = rep.N[w.Name] * len(r.Tests)
				if profDone != nil {
					if err := <-profDone; err != nil {
						progress("pprof: %v", err)
					}
				}
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				if r.Err != nil {
					progress("FAILED: %v", r.Err)
				} else {
					var parts []string
					for _, tr := range r.Tests {
						parts = append(parts, fmt.Sprintf("%s %.0f rps p99 %.3f ms", shortTest(tr.Test), tr.RPS, tr.P99))
					}
					progress("  %.1fs, other processes %.2f cores: %s", r.Wall.Seconds(), r.OtherCPU.Seconds()/r.Wall.Seconds(), strings.Join(parts, ", "))
				}
				rep.Runs = append(rep.Runs, r)
				if t.Pid != 0 && !alive(t.Pid) {
					dead[t.Name] = true
					msg := fmt.Sprintf("%s exited during %s round %d", t.Name, w.Name, round+1)
					if t.Name == "ambassador" {
						msg += ":\n" + amb.LogTail(30)
					} else {
						msg += ":\n" + nc.LogTail(30)
					}
					rep.Failures = append(rep.Failures, msg)
				} else if r.Err != nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("%s %s round %d: %v", w.Name, t.Name, round+1, r.Err))
				}
			}
		}
	}

	if o.conns > 0 {
		for _, t := range []struct {
			name, addr string
			pid        int
			rss0       int64
			inside     func() string
		}{{"ambassador", amb.Addr, amb.Pid(), rssAmb0, amb.goMemory}, {"twemproxy", nc.Addr, ncPid, rssNc0, nil}} {
			if dead[t.name] {
				continue
			}
			progress("%d idle connections to %s", o.conns, t.name)
			r := measureIdle(ctx, t.name, t.addr, t.pid, o.conns, t.rss0, t.inside)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			if r.Err != nil {
				rep.Failures = append(rep.Failures, fmt.Sprintf("idle connections to %s: %v", t.name, r.Err))
			}
			rep.Idle = append(rep.Idle, r)
		}
		progress("waiting to read RSS %v after the clients closed", laterDelay)
		readLater(ctx, rep.Idle)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	rep.LoadAfter, _ = loadAvg()
	return rep, nil
}

// shortTest shortens redis-benchmark's test names for the tables.
func shortTest(t string) string {
	switch {
	case strings.HasPrefix(t, "LPUSH (needed"):
		return "LPUSH (for LRANGE)"
	case strings.HasPrefix(t, "LRANGE_100"):
		return "LRANGE_100"
	case strings.HasPrefix(t, "MSET"):
		return "MSET (10 keys)"
	}
	return t
}

// commandFor returns the redis-benchmark command line of a workload with
// the port left as a placeholder.
func commandFor(w workload, n int) string {
	argv := benchArgv("redis-benchmark", w, "127.0.0.1:PORT", n)
	return shellQuote(argv)
}
