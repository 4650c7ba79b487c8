package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// report is everything one run found.
type report struct {
	Opts                      options
	Date, CPU, GitRev         string
	NProc                     int
	Versions                  map[string]string
	Workloads                 []workload
	N                         map[string]int
	NoFileBefore, NoFileAfter syscall.Rlimit
	LoadBefore, LoadAfter     [3]float64
	Nodes                     []string
	NutcrackerArgv            []string
	NutcrackerConfig          string
	AmbBin, AmbSource         string
	AmbEnv                    []string
	PlacementOK               int
	Targets                   []target
	Runs                      []runResult
	Idle                      []idleResult
	Failures                  []string
}

// highLoad is the 1-minute load average above which other work on the
// machine is called out next to the figures.
const highLoad = 1.5

var targetNames = []string{"direct", "twemproxy", "ambassador"}

// row is one test of one workload, summarized per target.
type row struct {
	Test string
	By   map[string]summary
}

// rows summarizes a workload's runs per test and target.
func (r *report) rows(w string) []row {
	var order []string
	per := map[string]map[string][]testResult{} // test -> target -> runs
	for _, run := range r.Runs {
		if run.Workload != w || run.Err != nil {
			continue
		}
		for _, t := range run.Tests {
			if per[t.Test] == nil {
				per[t.Test] = map[string][]testResult{}
				order = append(order, t.Test)
			}
			per[t.Test][run.Target] = append(per[t.Test][run.Target], t)
		}
	}
	var out []row
	for _, t := range order {
		rw := row{Test: shortTest(t), By: map[string]summary{}}
		for _, tg := range targetNames {
			rw.By[tg] = summarize(per[t][tg], r.Opts.pick)
		}
		out = append(out, rw)
	}
	return out
}

// cost is the CPU a target used over a workload's runs, summed over rounds.
type cost struct {
	Runs                 int
	Wall                 time.Duration
	Proxy, Redis, Client time.Duration
	Other                time.Duration
	Requests             int
}

func (r *report) cost(w, target string) cost {
	var c cost
	for _, run := range r.Runs {
		if run.Workload != w || run.Target != target || run.Err != nil {
			continue
		}
		c.Runs++
		c.Wall += run.Wall
		c.Proxy += run.ProxyCPU
		c.Redis += run.RedisCPU
		c.Client += run.ClientCPU
		c.Other += run.OtherCPU
		c.Requests += run.Requests
	}
	return c
}

func fmtRPS(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtMS(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func mib(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

func (r *report) pickText() string {
	if r.Opts.pick == "best" {
		return fmt.Sprintf("best of %d rounds, per metric (highest rps, lowest p50, lowest p99: other load on the machine only slows a run down)", r.Opts.rounds)
	}
	return fmt.Sprintf("median of %d rounds, per metric", r.Opts.rounds)
}

// other sums the CPU of other processes over all runs and finds the run
// they disturbed most.
func (r *report) other() (mean, worst float64, where string) {
	var cpu, wall time.Duration
	for _, run := range r.Runs {
		if run.Err != nil || run.Wall <= 0 {
			continue
		}
		cpu += run.OtherCPU
		wall += run.Wall
		if c := run.OtherCPU.Seconds() / run.Wall.Seconds(); c > worst {
			worst, where = c, fmt.Sprintf("%s %s round %d", run.Workload, run.Target, run.Round+1)
		}
	}
	if wall > 0 {
		mean = cpu.Seconds() / wall.Seconds()
	}
	return mean, worst, where
}

func (r *report) otherLine() string {
	mean, worst, where := r.other()
	return fmt.Sprintf("other processes used %.2f of the %d cores on average, at most %.2f (%s); measured as the machine's busy time in /proc/stat less the CPU of redis-benchmark, the proxies and the nodes",
		mean, r.NProc, worst, where)
}

// loadNote warns when other work on the machine disturbed the figures.
func (r *report) loadNote() string {
	mean, worst, _ := r.other()
	if r.LoadBefore[0] < highLoad && mean < 0.1 && worst < 0.3 {
		return ""
	}
	return fmt.Sprintf("Other heavy processes were running: 1-minute load average %.2f before the run and %.2f after it (the benchmark itself adds about 2-3), and other processes took %.2f of the %d cores on average during the runs, up to %.2f in one. Figures are noisier and lower than on an idle machine; rounds disturbed less weigh more through the best-of pick.",
		r.LoadBefore[0], r.LoadAfter[0], mean, r.NProc, worst)
}

// portsLine says which PORT of the commands is which target.
func (r *report) portsLine() string {
	var parts []string
	for _, t := range r.Targets {
		_, port, _ := strings.Cut(t.Addr, ":")
		parts = append(parts, port+" "+t.Name)
	}
	return "PORT in the commands: " + strings.Join(parts, ", ")
}

func fmtLoad(l [3]float64) string { return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2]) }

func (r *report) ambCommand() string {
	return strings.Join(r.AmbEnv, " ") + " " + r.AmbBin
}

// printText writes the plain report.
func (r *report) printText(out io.Writer) {
	fmt.Fprintf(out, "\nRedis benchmark, %s, ambassador %s (%s)\n", r.Date, r.GitRev, r.Versions["ambassador"])
	fmt.Fprintf(out, "machine: nproc %d, %s; load average before %s, after %s\n", r.NProc, r.CPU, fmtLoad(r.LoadBefore), fmtLoad(r.LoadAfter))
	fmt.Fprintf(out, "during the runs, %s\n", r.otherLine())
	if n := r.loadNote(); n != "" {
		fmt.Fprintf(out, "NOTE: %s\n", n)
	}
	fmt.Fprintf(out, "RLIMIT_NOFILE soft/hard: %d/%d at start, %d/%d after Setrlimit (inherited by nutcracker and the ambassador)\n",
		r.NoFileBefore.Cur, r.NoFileBefore.Max, r.NoFileAfter.Cur, r.NoFileAfter.Max)
	fmt.Fprintf(out, "versions: %s; %s; %s\n", r.Versions["redis-server"], r.Versions["redis-benchmark"], r.Versions["nutcracker"])
	fmt.Fprintf(out, "backends: 3 redis-server nodes %s (harness.StartRedis: --bind 127.0.0.1 --save \"\" --appendonly no)\n", strings.Join(r.Nodes, ", "))
	if len(r.Nodes) > 0 {
		fmt.Fprintf(out, "direct: ONE redis-server node, the first (%s), unsharded: redis-benchmark talks to it with no proxy\n", r.Nodes[0])
	}
	fmt.Fprintf(out, "twemproxy: %s\n", shellQuote(r.NutcrackerArgv))
	for line := range strings.Lines(r.NutcrackerConfig) {
		fmt.Fprintf(out, "    %s", line)
	}
	fmt.Fprintf(out, "ambassador: %s (a copy of %s taken at the start)\n", r.ambCommand(), r.AmbSource)
	fmt.Fprintf(out, "placement check: %d/100 keys written through twemproxy read back through the ambassador (one MGET)\n", r.PlacementOK)
	fmt.Fprintf(out, "rounds: %d, each running every workload against direct, twemproxy, ambassador (odd rounds in reverse order); figures: %s\n", r.Opts.rounds, r.pickText())
	fmt.Fprintf(out, "%s\n", r.portsLine())

	for _, w := range r.Workloads {
		fmt.Fprintf(out, "\n== %s (%s)\n   %s\n", w.Name, w.About, commandFor(w, r.N[w.Name]))
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "test\tdirect rps\tp50 ms\tp99 ms\t| twemproxy rps\tp50 ms\tp99 ms\t| ambassador rps\tp50 ms\tp99 ms\t| amb/twem rps\tamb/twem p99\t")
		for _, rw := range r.rows(w.Name) {
			fmt.Fprintf(tw, "%s\t", rw.Test)
			for i, tg := range targetNames {
				s := rw.By[tg]
				sep := ""
				if i > 0 {
					sep = "| "
				}
				fmt.Fprintf(tw, "%s%s\t%s\t%s\t", sep, fmtRPS(s.RPS), fmtMS(s.P50, s.Runs > 0), fmtMS(s.P99, s.Runs > 0))
			}
			a, t := rw.By["ambassador"], rw.By["twemproxy"]
			fmt.Fprintf(tw, "| %s\t%s\t\n", ratio(a.RPS, t.RPS), ratio(a.P99, t.P99))
		}
		_ = tw.Flush()
		fmt.Fprintf(out, "   CPU over the %s runs (all rounds):\n", w.Name)
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "   target\twall s\tproxy CPU s\tproxy cores\tproxy µs/request\tredis-server CPU s\tredis-benchmark CPU s\tother processes, cores\t")
		for _, tg := range targetNames {
			c := r.cost(w.Name, tg)
			if c.Runs == 0 {
				fmt.Fprintf(tw, "   %s\t-\t-\t-\t-\t-\t-\t-\t\n", tg)
				continue
			}
			px, cores, per := "-", "-", "-"
			if tg != "direct" {
				px = fmt.Sprintf("%.2f", c.Proxy.Seconds())
				cores = fmt.Sprintf("%.2f", c.Proxy.Seconds()/c.Wall.Seconds())
				per = fmt.Sprintf("%.2f", float64(c.Proxy.Microseconds())/float64(max(c.Requests, 1)))
			}
			fmt.Fprintf(tw, "   %s\t%.2f\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t\n", tg, c.Wall.Seconds(), px, cores, per, c.Redis.Seconds(), c.Client.Seconds(), c.Other.Seconds()/c.Wall.Seconds())
		}
		_ = tw.Flush()
	}

	if len(r.Idle) > 0 {
		fmt.Fprintf(out, "\n== idle client connections: each sends PING, reads PONG, then stays open and idle; RSS is VmRSS of /proc/<pid>/status\n")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "proxy\tconnections\topened in s\tRSS at start\tRSS before (after benchmarks)\tRSS with connections\tper connection\tRSS 3 s after closing\tRSS %d s after closing\t\n", int(laterDelay.Seconds()))
		for _, i := range r.Idle {
			per := "-"
			if i.Conns > 0 && i.RSSWith > 0 {
				per = fmt.Sprintf("%.1f KiB", float64(i.RSSWith-i.RSSBefore)/float64(i.Conns))
			}
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", i.Target, i.Conns, i.Open.Seconds(), mib(i.RSSStart), mib(i.RSSBefore), mib(i.RSSWith), per, mib(i.RSSAfter), mib(i.RSSLater))
		}
		_ = tw.Flush()
		for _, i := range r.Idle {
			if i.Inside != "" {
				fmt.Fprintf(out, "%s holding them: %s\n", i.Target, i.Inside)
			}
		}
		for _, i := range r.Idle {
			if i.Target == "ambassador" && i.RSSWith > 0 {
				verdict := "meets"
				if i.RSSWith*1024 >= 150e6 {
					verdict = "MISSES"
				}
				fmt.Fprintf(out, "target: %d idle connections under 150 MB RSS: ambassador %s = %.1f MB, %s it\n", i.Conns, mib(i.RSSWith), float64(i.RSSWith)*1024/1e6, verdict)
			}
		}
	}
	r.printTargets(out, "")
	if len(r.Failures) > 0 {
		fmt.Fprintf(out, "\nFAILURES:\n")
		for _, f := range r.Failures {
			fmt.Fprintf(out, "- %s\n", f)
		}
	}
}

// targetLines compares the results with the targets of issue 3.
func (r *report) targetLines() []string {
	var out []string
	geo := func(w string, f func(a, t summary) float64) (float64, bool) {
		rows := r.rows(w)
		if len(rows) == 0 {
			return 0, false
		}
		prod, n := 1.0, 0
		for _, rw := range rows {
			a, t := rw.By["ambassador"], rw.By["twemproxy"]
			if a.Runs == 0 || t.Runs == 0 {
				return 0, false
			}
			v := f(a, t)
			if v <= 0 {
				return 0, false
			}
			prod *= v
			n++
		}
		return math.Pow(prod, 1/float64(n)), true
	}
	rpsR := func(a, t summary) float64 { return a.RPS / t.RPS }
	p99R := func(a, t summary) float64 { return a.P99 / t.P99 }
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	if slices.ContainsFunc(r.Workloads, func(w workload) bool { return w.Name == "pipelined" }) {
		if v, ok := geo("pipelined", rpsR); ok {
			out = append(out, fmt.Sprintf("pipelined throughput >= 1.5x twemproxy: %.2fx (%s)", v, check(v >= 1.5)))
		}
	}
	if slices.ContainsFunc(r.Workloads, func(w workload) bool { return w.Name == "unpipelined" }) {
		if v, ok := geo("unpipelined", rpsR); ok {
			out = append(out, fmt.Sprintf("unpipelined throughput >= twemproxy: %.2fx (%s)", v, check(v >= 1)))
		}
	}
	for _, w := range r.Workloads {
		if v, ok := geo(w.Name, p99R); ok {
			out = append(out, fmt.Sprintf("%s p99 <= twemproxy: %.2fx (%s)", w.Name, v, check(v <= 1)))
		}
	}
	return out
}

func (r *report) printTargets(out io.Writer, bullet string) {
	lines := r.targetLines()
	if len(lines) == 0 {
		return
	}
	if bullet == "" {
		fmt.Fprintf(out, "\n== targets (issue 3), ambassador/twemproxy, geometric mean over the tests of a workload:\n")
	}
	for _, l := range lines {
		fmt.Fprintf(out, "%s%s\n", bullet, l)
	}
}

// printMarkdown writes the "## Redis" section of docs/benchmarks.md.
func (r *report) printMarkdown(out io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(out, format, args...) }
	p("## Redis\n\n")
	p("redis-benchmark against one redis-server node directly, against twemproxy and against the ambassador, the two proxies sharding over the same three standalone redis-server nodes (fnv1a_64, ketama, hash tag `{}`), in one run.\n\n")
	cmd := "go run ./e2e/bench/redisbench -md"
	if args := r.flagsUsed(); args != "" {
		cmd += " " + args
	}
	p("Command: `go build -o bin/ambassador ./cmd/ambassador && %s` (`make bench-redis` runs the same program after `make build`, with a plain-text report).\n\n", cmd)
	p("- Run: %s, ambassador `%s` (%s).\n", r.Date, r.GitRev, r.Versions["ambassador"])
	p("- Machine: nproc %d, %s. Load average before the run %s, after %s.\n", r.NProc, r.CPU, fmtLoad(r.LoadBefore), fmtLoad(r.LoadAfter))
	p("- During the runs, %s.\n", r.otherLine())
	if n := r.loadNote(); n != "" {
		p("- **%s**\n", n)
	}
	p("- %s; %s; %s.\n", r.Versions["redis-server"], r.Versions["redis-benchmark"], r.Versions["nutcracker"])
	p("- Backends: 3 × `redis-server --bind 127.0.0.1 --save \"\" --appendonly no` on free loopback ports (e2e harness).\n")
	p("- **direct** = ONE redis-server node (the first), unsharded, no proxy: the cost of a proxy hop, not a like-for-like cluster.\n")
	p("- **twemproxy**: `%s` with\n\n  ```yaml\n", shellQuote(r.NutcrackerArgv))
	for line := range strings.Lines(r.NutcrackerConfig) {
		p("  %s", line)
	}
	p("  ```\n\n  (`server_connections` left at its default, 1.)\n")
	p("- **ambassador**: `%s` (a copy of `%s` taken at the start; GOMAXPROCS = half the CPUs unless GOMAXPROCS is set, pool of 1 connection per node by default).\n", r.ambCommand(), r.AmbSource)
	p("- Placement check: %d/100 keys written through twemproxy were read back through the ambassador.\n", r.PlacementOK)
	p("- Each round runs every workload against direct, twemproxy and the ambassador (odd rounds in reverse order). Figures: %s. Latencies are redis-benchmark's, in ms. %s.\n\n", r.pickText(), r.portsLine())

	for _, w := range r.Workloads {
		p("### %s\n\n%s: `%s`\n\n", w.Name, w.About, commandFor(w, r.N[w.Name]))
		p("| test | direct rps | p50 | p99 | twemproxy rps | p50 | p99 | ambassador rps | p50 | p99 | amb/twem rps | amb/twem p99 |\n")
		p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, rw := range r.rows(w.Name) {
			p("| %s |", rw.Test)
			for _, tg := range targetNames {
				s := rw.By[tg]
				p(" %s | %s | %s |", fmtRPS(s.RPS), fmtMS(s.P50, s.Runs > 0), fmtMS(s.P99, s.Runs > 0))
			}
			a, t := rw.By["ambassador"], rw.By["twemproxy"]
			p(" %s | %s |\n", ratio(a.RPS, t.RPS), ratio(a.P99, t.P99))
		}
		p("\nCPU over these runs (all rounds; /proc/<pid>/stat utime+stime):\n\n")
		p("| target | wall s | proxy CPU s | proxy cores | proxy µs/request | redis-server CPU s (3 nodes) | redis-benchmark CPU s | other processes, cores |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, tg := range targetNames {
			c := r.cost(w.Name, tg)
			if c.Runs == 0 {
				p("| %s | - | - | - | - | - | - | - |\n", tg)
				continue
			}
			px, cores, per := "-", "-", "-"
			if tg != "direct" {
				px = fmt.Sprintf("%.2f", c.Proxy.Seconds())
				cores = fmt.Sprintf("%.2f", c.Proxy.Seconds()/c.Wall.Seconds())
				per = fmt.Sprintf("%.2f", float64(c.Proxy.Microseconds())/float64(max(c.Requests, 1)))
			}
			p("| %s | %.2f | %s | %s | %s | %.2f | %.2f | %.2f |\n", tg, c.Wall.Seconds(), px, cores, per, c.Redis.Seconds(), c.Client.Seconds(), c.Other.Seconds()/c.Wall.Seconds())
		}
		p("\n")
	}
	if len(r.Idle) > 0 {
		p("### Idle client connections\n\n")
		p("Each connection sends PING, reads PONG and stays open and idle; RSS is VmRSS from /proc/<pid>/status, read 2 s after the last one opened. RLIMIT_NOFILE (soft/hard) was %d/%d, set by the program with setrlimit to %d/%d, inherited by both proxies.\n\n",
			r.NoFileBefore.Cur, r.NoFileBefore.Max, r.NoFileAfter.Cur, r.NoFileAfter.Max)
		p("| proxy | connections | RSS at start | RSS before (after the benchmarks) | RSS with the connections | per connection | RSS 3 s after closing | RSS %d s after closing |\n|---|--:|--:|--:|--:|--:|--:|--:|\n", int(laterDelay.Seconds()))
		for _, i := range r.Idle {
			per := "-"
			if i.Conns > 0 && i.RSSWith > 0 {
				per = fmt.Sprintf("%.1f KiB", float64(i.RSSWith-i.RSSBefore)/float64(i.Conns))
			}
			p("| %s | %d | %s | %s | %s | %s | %s | %s |\n", i.Target, i.Conns, mib(i.RSSStart), mib(i.RSSBefore), mib(i.RSSWith), per, mib(i.RSSAfter), mib(i.RSSLater))
		}
		p("\n")
		for _, i := range r.Idle {
			if i.Inside != "" {
				p("The %s's /metrics while holding them: %s.\n\n", i.Target, i.Inside)
			}
		}
	}
	if lines := r.targetLines(); len(lines) > 0 {
		p("### Against the targets of issue 3\n\nambassador/twemproxy, geometric mean over the tests of a workload:\n\n")
		r.printTargets(out, "- ")
		for _, i := range r.Idle {
			if i.Target == "ambassador" && i.RSSWith > 0 {
				verdict := "met"
				if i.RSSWith*1024 >= 150e6 {
					verdict = "NOT met"
				}
				p("- %d idle connections under 150 MB RSS: %s = %.1f MB (%s)\n", i.Conns, mib(i.RSSWith), float64(i.RSSWith)*1024/1e6, verdict)
			}
		}
		p("\n")
	}
	if len(r.Failures) > 0 {
		p("### Failures\n\n")
		for _, f := range r.Failures {
			p("- %s\n", strings.ReplaceAll(f, "\n", " "))
		}
		p("\n")
	}
}

// flagsUsed returns the non-default flags of this run, for the docs.
func (r *report) flagsUsed() string {
	var f []string
	o := r.Opts
	if o.n > 0 {
		f = append(f, fmt.Sprintf("-n %d", o.n))
	}
	if o.rounds != 2 && !o.quick {
		f = append(f, fmt.Sprintf("-rounds %d", o.rounds))
	}
	if o.pick != "best" {
		f = append(f, "-pick "+o.pick)
	}
	if o.quick {
		f = append(f, "-quick")
	}
	if o.conns != 10000 && !(o.quick && o.conns == 1000) {
		f = append(f, fmt.Sprintf("-conns %d", o.conns))
	}
	if o.only != "pipelined,unpipelined,mixed" {
		f = append(f, "-workloads "+o.only)
	}
	if o.waitLoad > 0 {
		f = append(f, fmt.Sprintf("-wait-load %g -wait-max %v", o.waitLoad, o.waitMax))
	}
	if o.binary != "bin/ambassador" {
		f = append(f, "-binary "+o.binary)
	}
	return strings.Join(f, " ")
}
