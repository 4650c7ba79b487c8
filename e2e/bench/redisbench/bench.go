package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ambassador-proxy/ambassador/e2e/harness"
)

// keyspace is redis-benchmark's -r: SET/GET/INCR/MSET keys are
// key:000000012345 style names over this many values, so they spread over
// the nodes. (LPUSH/LPOP/LRANGE use one key "mylist", SADD "myset", HSET
// "myhash": those go to one node each, through any proxy.)
const keyspace = 100000

// workload is one redis-benchmark invocation.
type workload struct {
	Name  string
	Args  []string // besides -h, -p, -n, -r, --csv
	DefN  int      // default requests per test
	About string
}

var workloads = []workload{
	{Name: "pipelined", Args: []string{"-P", "16", "-c", "50", "-t", "set,get"}, DefN: 500000,
		About: "50 clients, 16 commands in flight each"},
	{Name: "unpipelined", Args: []string{"-c", "50", "-t", "set,get"}, DefN: 150000,
		About: "50 clients, one command in flight each"},
	{Name: "mixed", Args: []string{"-c", "50", "-t", "set,get,incr,lpush,lpop,sadd,hset,mset,lrange_100"}, DefN: 50000,
		About: "50 clients, unpipelined; MSET has 10 keys (split over the nodes by the proxies), LRANGE_100 returns 100 elements"},
}

// target is where redis-benchmark points.
type target struct {
	Name string
	Addr string
	Pid  int // the proxy's process, 0 for direct
}

// testResult is one line of redis-benchmark --csv.
type testResult struct {
	Test                         string
	RPS                          float64
	Avg, Min, P50, P95, P99, Max float64 // milliseconds
}

// runResult is one redis-benchmark run against one target.
type runResult struct {
	Workload, Target string
	Round            int
	Argv             []string
	Tests            []testResult
	Wall             time.Duration
	ClientCPU        time.Duration // redis-benchmark's own user+system time
	ProxyCPU         time.Duration // the target proxy's (0 for direct)
	RedisCPU         time.Duration // the three redis-server nodes together
	OtherCPU         time.Duration // everything else on the machine: other people's work
	Requests         int           // N per test times the number of tests
	Err              error
}

// benchArgv builds the redis-benchmark command line.
func benchArgv(bin string, w workload, addr string, n int) []string {
	host, port, _ := strings.Cut(addr, ":")
	argv := []string{bin, "-h", host, "-p", port}
	argv = append(argv, w.Args...)
	return append(argv, "-n", strconv.Itoa(n), "-r", strconv.Itoa(keyspace), "--csv")
}

// cpuOf sums the CPU time of the given processes; a vanished process
// counts as 0.
func cpuOf(pids ...int) time.Duration {
	var t time.Duration
	for _, p := range pids {
		if p == 0 {
			continue
		}
		if d, err := procCPU(p); err == nil {
			t += d
		}
	}
	return t
}

// runBench runs redis-benchmark once and measures the CPU the proxy and
// the redis nodes spent meanwhile.
//
// OtherCPU is the machine's busy time over the run (/proc/stat) less the
// CPU of redis-benchmark, the proxies (idlePids: the ones not under test) and the nodes: the work of other
// processes, which competes for the same cores and makes a run slower.
func runBench(ctx context.Context, argv []string, proxyPid int, redisPids, idlePids []int) runResult {
	res := runResult{Argv: argv}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	proxy0, redis0, idle0 := cpuOf(proxyPid), cpuOf(redisPids...), cpuOf(idlePids...)
	self0 := cpuOf(os.Getpid())
	busy0, _ := cpuBusy()
	start := time.Now()
	if err := harness.StartChild(cmd); err != nil {
		res.Err = err
		return res
	}
	err := cmd.Wait()
	res.Wall = time.Since(start)
	res.ProxyCPU, res.RedisCPU = cpuOf(proxyPid)-proxy0, cpuOf(redisPids...)-redis0
	busy1, _ := cpuBusy()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		res.ClientCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	res.OtherCPU = max(0, busy1-busy0-res.ClientCPU-res.ProxyCPU-res.RedisCPU-(cpuOf(idlePids...)-idle0)-(cpuOf(os.Getpid())-self0))
	if err != nil {
		res.Err = fmt.Errorf("%s: %w: %s", shellQuote(argv), err, tail(stderr.String(), 5))
		return res
	}
	tests, err := parseCSV(stdout.Bytes())
	if err != nil {
		res.Err = fmt.Errorf("%s: %w\nstdout: %s\nstderr: %s", shellQuote(argv), err, tail(stdout.String(), 5), tail(stderr.String(), 5))
		return res
	}
	res.Tests = tests
	return res
}

// parseCSV reads redis-benchmark 7's --csv output:
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms".
func parseCSV(out []byte) ([]testResult, error) {
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	want := []string{"test", "rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "max_latency_ms"}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(want, ",") {
		return nil, fmt.Errorf("csv: header is not %v (redis-benchmark 7 is needed)", want)
	}
	var out2 []testResult
	for _, r := range recs[1:] {
		if len(r) != len(want) {
			return nil, fmt.Errorf("csv: %d fields in %q", len(r), r)
		}
		var v [7]float64
		for i := range v {
			if v[i], err = strconv.ParseFloat(r[i+1], 64); err != nil {
				return nil, fmt.Errorf("csv: %s of %s: %w", want[i+1], r[0], err)
			}
		}
		out2 = append(out2, testResult{Test: r[0], RPS: v[0], Avg: v[1], Min: v[2], P50: v[3], P95: v[4], P99: v[5], Max: v[6]})
	}
	if len(out2) == 0 {
		return nil, fmt.Errorf("csv: no results")
	}
	return out2, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// summary is one metric set chosen over the rounds.
type summary struct {
	RPS, P50, P99 float64
	Runs          int
}

// summarize picks over the rounds: "best" takes the highest rps and the
// lowest p50 and p99 (other load on the machine only ever slows a run
// down); "median" the median of each (mean of the middle two for an even
// count).
func summarize(tests []testResult, pick string) summary {
	if len(tests) == 0 {
		return summary{}
	}
	var rps, p50, p99 []float64
	for _, t := range tests {
		rps, p50, p99 = append(rps, t.RPS), append(p50, t.P50), append(p99, t.P99)
	}
	rps, p50, p99 = sortedCopy(rps), sortedCopy(p50), sortedCopy(p99)
	if pick == "best" {
		return summary{RPS: rps[len(rps)-1], P50: p50[0], P99: p99[0], Runs: len(tests)}
	}
	med := func(v []float64) float64 {
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return summary{RPS: med(rps), P50: med(p50), P99: med(p99), Runs: len(tests)}
}
