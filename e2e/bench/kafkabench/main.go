// Command kafkabench measures Kafka produce and consume throughput through
// the ambassador against the same kfake cluster directly, side by side in
// one run: 1 KiB records, acks=all, idempotent producer, franz-go clients.
//
//	go run ./e2e/bench/kafkabench [-records 300000] [-rounds 9] [-warmup 1] [-binary bin/ambassador] [-one-broker=true]
//
// Each round produces the same number of records to a fresh topic directly
// (3 brokers), through the ambassador (over the same 3 brokers) and, with
// -one-broker, directly to a separate 1-broker kfake cluster (the same
// client facing a single endpoint, as it does through the ambassador),
// rotating which mode goes first, so that slow drift in the machine's load
// hits all alike; then it consumes each topic from the start with a fresh
// consumer. Each figure is the steady flow: produce from the first
// acknowledged record (after a warm-up record) to the last, consume from
// the first fetched records to the last. Warm-up rounds run first and are
// not counted. The summary is the median over rounds of each mode and of
// the per-round ratios.
//
// With -binary (the default when bin/ambassador exists, as after `make
// build`) the ambassador runs as its own process, as deployed, and the CPU
// time it used per GB moved is reported; otherwise it runs in this process.
// A last table splits each kind of run's wall time and CPU time by process
// (the clients, kfake, the ambassador) and gives how busy the machine was,
// so that a gap can be told apart into CPU spent and time waited. Runs are
// labelled for -cpuprofile: go tool pprof -tagfocus run=produce-ambassador.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/e2e/harness"
	"github.com/ambassador-proxy/ambassador/server"
)

func main() {
	defaultBinary := ""
	if _, err := os.Stat("bin/ambassador"); err == nil {
		defaultBinary = "bin/ambassador"
	}
	var (
		records    = flag.Int("records", 300000, "records per produce or consume run")
		size       = flag.Int("size", 1024, "record value size in bytes")
		partitions = flag.Int("partitions", 6, "partitions of each topic (kfake spreads them over the 3 brokers)")
		rounds     = flag.Int("rounds", 9, "rounds; medians are reported")
		warmup     = flag.Int("warmup", 1, "rounds run first and not counted (connections, page faults, kfake's first allocations)")
		binary     = flag.String("binary", defaultBinary, "ambassador binary to run as its own process; empty: in this process")
		ownProcess = flag.Bool("kfake-process", true, "run the kfake cluster in its own process (as brokers are), not in this one")
		serveKfake = flag.Bool("serve-kfake", false, "internal: run a kfake cluster of -kfake-brokers brokers, print its addresses, serve until stdin closes")
		nBrokers   = flag.Int("kfake-brokers", 3, "internal: brokers of the -serve-kfake cluster")
		oneBroker  = flag.Bool("one-broker", true, "also measure a 1-broker kfake cluster directly (the same client facing one broker, as it faces the ambassador)")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of this process to this file")
	)
	flag.Parse()
	log.SetFlags(0)
	if *serveKfake {
		fake, err := harness.StartKafka(*nBrokers)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("BROKERS " + strings.Join(fake.Addrs, ","))
		_, _ = io.Copy(io.Discard, os.Stdin)
		fake.Close()
		return
	}

	brokers, kfakePid, stop, err := startCluster(3, *ownProcess)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	var single []string // a 1-broker cluster, when measured
	var singlePid int
	if *oneBroker {
		addrs, pid, stop, err := startCluster(1, *ownProcess)
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
		single, singlePid = addrs, pid
	}

	amb, err := startAmbassador(brokers, *binary)
	if err != nil {
		log.Fatal(err)
	}
	defer amb.stop()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	value := make([]byte, *size)
	_, _ = rand.Read(value) // incompressible; no compression either way
	ctx := context.Background()

	where, kwhere := "in the benchmark's process", "in the benchmark's process"
	if *binary != "" {
		where = "own process " + *binary
	}
	if *ownProcess {
		kwhere = "own process"
	}
	fmt.Printf("kfake: 3 brokers (%s); ambassador %s (%s); clients: franz-go in the benchmark's process; %d records of %d B per run, %d partitions, acks=all, idempotent, no compression; GOMAXPROCS=%d, %d CPUs\n",
		kwhere, amb.addr, where, *records, *size, *partitions, runtime.GOMAXPROCS(0), runtime.NumCPU())

	type figures struct{ produce, consume float64 } // MB/s
	var direct, through, one, ratios, oneRatios, vsOne []figures
	var ambCPU float64            // seconds the ambassador process ran, over its runs
	usage := map[string]*cpuUse{} // by "phase mode"
	var ambBytes float64
	for r := -*warmup; r < *rounds; r++ {
		modes := []string{"direct", "ambassador"}
		if single != nil {
			modes = append(modes, "one-broker")
		}
		// rotate which goes first, so that drift in the machine's load
		// hits every mode alike
		k := (r + *warmup) % len(modes)
		modes = append(modes[k:], modes[:k]...)
		cluster := func(m string) []string { // where topics are made
			if m == "one-broker" {
				return single
			}
			return brokers
		}
		seeds := func(m string) []string {
			switch m {
			case "ambassador":
				return []string{amb.addr}
			case "one-broker":
				return single
			}
			return brokers
		}
		topics := map[string]string{}
		res := map[string]*figures{}
		for _, m := range modes {
			topics[m] = fmt.Sprintf("bench-%s-%d", m, r)
			if err := createTopic(ctx, cluster(m), topics[m], *partitions); err != nil {
				log.Fatal(err)
			}
			res[m] = &figures{}
		}
		kpid := func(m string) int {
			if m == "one-broker" {
				return singlePid
			}
			return kfakePid
		}
		for _, phase := range []string{"produce", "consume"} {
			for _, m := range modes {
				s0 := snap(kpid(m), amb.pid)
				var io ioStats
				var d time.Duration
				var err error
				// labelled, so that a -cpuprofile can be split by run (pprof -tagfocus run=...)
				pprof.Do(ctx, pprof.Labels("run", phase+"-"+m), func(ctx context.Context) {
					if phase == "produce" {
						d, err = produce(ctx, seeds(m), topics[m], *records, value, &io)
					} else {
						d, err = consume(ctx, seeds(m), topics[m], *records, &io)
					}
				})
				if err != nil {
					log.Fatalf("%s %s: %v", phase, m, err)
				}
				s1 := snap(kpid(m), amb.pid)
				if phase == "produce" {
					res[m].produce = mbps(*records, *size, d)
				} else {
					res[m].consume = mbps(*records, *size, d)
				}
				if r < 0 {
					continue
				}
				u := usage[phase+" "+m]
				if u == nil {
					u = &cpuUse{}
					usage[phase+" "+m] = u
				}
				u.add(s0, s1, float64(*records**size))
				u.msgs += io.n.Load()
				u.msgBytes += io.bytes.Load()
				if m == "ambassador" {
					ambCPU += s1.amb - s0.amb
					ambBytes += float64(*records * *size)
				}
			}
		}
		div := func(a, b *figures) figures { return figures{a.produce / b.produce, a.consume / b.consume} }
		ratio := div(res["ambassador"], res["direct"])
		if r < 0 {
			fmt.Print("warm-up ")
		}
		fmt.Printf("round %d: produce direct %6.1f MB/s, ambassador %6.1f MB/s (%.2fx); consume direct %6.1f MB/s, ambassador %6.1f MB/s (%.2fx)",
			max(r+1, 0), res["direct"].produce, res["ambassador"].produce, ratio.produce, res["direct"].consume, res["ambassador"].consume, ratio.consume)
		if single != nil {
			fmt.Printf("; one broker: produce %6.1f, consume %6.1f MB/s", res["one-broker"].produce, res["one-broker"].consume)
		}
		fmt.Println()
		if r < 0 { // warm-up: not counted
			for _, m := range modes {
				_ = deleteTopic(ctx, cluster(m), topics[m])
			}
			continue
		}
		if single != nil {
			one = append(one, *res["one-broker"])
			oneRatios = append(oneRatios, div(res["one-broker"], res["direct"]))
			vsOne = append(vsOne, div(res["ambassador"], res["one-broker"]))
		}
		direct = append(direct, *res["direct"])
		through = append(through, *res["ambassador"])
		ratios = append(ratios, ratio)
		for _, m := range modes { // free kfake's memory for the next round
			_ = deleteTopic(ctx, cluster(m), topics[m])
		}
		runtime.GC()
	}
	med := func(fs []figures, f func(figures) float64) float64 {
		v := make([]float64, len(fs))
		for i, x := range fs {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	prod := func(f figures) float64 { return f.produce }
	cons := func(f figures) float64 { return f.consume }
	fmt.Printf("\nmedians of %d rounds (MB/s of record values, 1 MB = 10^6 B):\n\n", *rounds)
	fmt.Printf("| | direct (3 brokers) | through the ambassador | ratio (median of per-round ratios) |\n|---|---|---|---|\n")
	fmt.Printf("| produce | %.1f | %.1f | %.2fx |\n", med(direct, prod), med(through, prod), med(ratios, prod))
	fmt.Printf("| consume | %.1f | %.1f | %.2fx |\n", med(direct, cons), med(through, cons), med(ratios, cons))
	if single != nil {
		fmt.Printf("\nthe same client against a 1-broker kfake cluster directly (one endpoint, as the ambassador is):\n\n")
		fmt.Printf("| | one broker | one broker / direct (3 brokers) | ambassador / one broker |\n|---|---|---|---|\n")
		fmt.Printf("| produce | %.1f | %.2fx | %.2fx |\n", med(one, prod), med(oneRatios, prod), med(vsOne, prod))
		fmt.Printf("| consume | %.1f | %.2fx | %.2fx |\n", med(one, cons), med(oneRatios, cons), med(vsOne, cons))
	}
	if amb.pid != 0 && ambBytes > 0 {
		fmt.Printf("\nambassador process CPU: %.2f s per GB of record values moved (user+system, over its produce and consume runs)\n", ambCPU/(ambBytes/1e9))
	}
	fmt.Printf("\nwhere the time goes, summed over the counted rounds (each whole run, set-up included; per GB of record values):\n\n")
	fmt.Printf("| run | wall s | clients (this process) CPU-s | kfake CPU-s | ambassador CPU-s | machine busy | clients' page faults | kfake's page faults | average produce request / fetch response |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, phase := range []string{"produce", "consume"} {
		for _, m := range []string{"direct", "ambassador", "one-broker"} {
			if u := usage[phase+" "+m]; u != nil {
				gb := u.bytes / 1e9
				fmt.Printf("| %s %s | %.2f | %.2f | %.2f | %.2f | %.0f %% | %.0f | %.0f | %.2f MB |\n", phase, m, u.wall/gb, u.self/gb, u.kfake/gb, u.amb/gb, 100*u.busy/u.wall/float64(runtime.NumCPU()), u.faults/gb, u.kfakeFaults/gb, float64(u.msgBytes)/float64(max(u.msgs, 1))/1e6)
			}
		}
	}
}

// cpuSnap is a snapshot of the CPU time used so far.
type cpuSnap struct {
	at                     time.Time
	self, kfake, amb, busy float64 // CPU seconds; busy: the whole machine's non-idle time
	faults                 float64 // this process's minor page faults
	kfakeFaults            float64 // kfake's process's
}

func snap(kfakePid, ambPid int) cpuSnap {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	kfake, kfakeFaults := procStat(kfakePid)
	amb, _ := procStat(ambPid)
	return cpuSnap{
		faults:      float64(ru.Minflt),
		kfakeFaults: kfakeFaults,
		at:          time.Now(),
		self:        time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(),
		kfake:       kfake,
		amb:         amb,
		busy:        machineBusy(),
	}
}

// cpuUse sums the CPU time of runs of one kind.
type cpuUse struct {
	wall, self, kfake, amb, busy, faults, kfakeFaults, bytes float64
	msgs, msgBytes                                           int64 // produce requests written or fetch responses read, and their bytes
}

func (c *cpuUse) add(a, b cpuSnap, bytes float64) {
	c.wall += b.at.Sub(a.at).Seconds()
	c.self += b.self - a.self
	c.kfake += b.kfake - a.kfake
	c.amb += b.amb - a.amb
	c.busy += b.busy - a.busy
	c.faults += b.faults - a.faults
	c.kfakeFaults += b.kfakeFaults - a.kfakeFaults
	c.bytes += bytes
}

// ioStats counts the produce requests a client writes and the fetch
// responses it reads (franz-go hooks).
type ioStats struct{ n, bytes atomic.Int64 }

func (s *ioStats) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key == 0 && err == nil { // Produce
		s.n.Add(1)
		s.bytes.Add(int64(n))
	}
}

func (s *ioStats) OnBrokerRead(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key == 1 && err == nil { // Fetch
		s.n.Add(1)
		s.bytes.Add(int64(n))
	}
}

// machineBusy returns the seconds all CPUs of the machine have spent not
// idle (from /proc/stat), 0 when it cannot be read.
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / 100
}

func mbps(n, size int, d time.Duration) float64 {
	return float64(n) * float64(size) / d.Seconds() / 1e6
}

func admin(brokers []string) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

func createTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	adm, done, err := admin(brokers)
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

func deleteTopic(ctx context.Context, brokers []string, topic string) error {
	adm, done, err := admin(brokers)
	if err != nil {
		return err
	}
	defer done()
	_, err = adm.DeleteTopics(ctx, topic)
	return err
}

// produce writes n records asynchronously (the client keeps as many in
// flight as its defaults allow) and returns the time from the first to the
// last acknowledgement of the n-1 after a warm-up record.
func produce(ctx context.Context, seeds []string, topic string, n int, value []byte, io *ioStats) (time.Duration, error) {
	cl, err := kgo.NewClient(
		kgo.WithHooks(io),
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	// warm up: metadata, producer id and connections
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for i := 1; i < n; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	d := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return d * time.Duration(n) / time.Duration(n-1), nil
}

// consume reads n records of topic from the start with a fresh consumer;
// the clock starts at the first records, so that start-up (metadata,
// offsets) does not count.
func consume(ctx context.Context, seeds []string, topic string, n int, io *ioStats) (time.Duration, error) {
	cl, err := kgo.NewClient(
		kgo.WithHooks(io),
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	got := 0
	var start time.Time
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return 0, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return 0, ferr
		}
		if start.IsZero() && fs.NumRecords() > 0 {
			start = time.Now()
			n -= fs.NumRecords()
			continue
		}
		got += fs.NumRecords()
	}
	return time.Since(start), nil
}

type ambassador struct {
	addr string
	pid  int // of its own process; 0 in process
	stop func()
}

// procStat returns the CPU seconds (user+system) process pid has used and
// its minor page faults; zeros for pid 0 or when it cannot be read.
func procStat(pid int) (cpu, minflt float64) {
	if pid == 0 {
		return 0, 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// fields after the ")" that ends the command name: minflt is the 8th,
	// utime the 12th, stime the 13th
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	m, _ := strconv.ParseFloat(f[7], 64)
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100, m // clock ticks (USER_HZ = 100 on Linux)
}

// startAmbassador runs the ambassador over brokers.
func startAmbassador(brokers []string, binary string) (*ambassador, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": strings.Join(brokers, ","),
		"KAFKA_LISTEN":            addr,
		"ADMIN_LISTEN":            adminAddr,
		"LOG_LEVEL":               "warn",
	}
	if binary != "" {
		cmd := exec.Command(binary)
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		a := &ambassador{addr: addr, pid: cmd.Process.Pid, stop: func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }}
		if err := waitReady(adminAddr); err != nil {
			a.stop()
			return nil, err
		}
		return a, nil
	}
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return nil, err
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	a := &ambassador{addr: addr, stop: func() { cancel(); <-done }}
	if err := waitReady(adminAddr); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls /readyz until 200.
func waitReady(adminAddr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", adminAddr)
		if err == nil {
			fmt.Fprintf(c, "GET /readyz HTTP/1.0\r\nHost: x\r\n\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			_, _ = io.Copy(io.Discard, c)
			c.Close()
			if strings.Contains(line, " 200 ") {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("ambassador not ready after 15s")
}

// startKfakeProcess runs this program with -serve-kfake and returns the
// brokers it serves.
// startCluster starts a kfake cluster of n brokers, in its own process or
// in this one, and returns its addresses and how to stop it.
// The pid is that of its process (0 in this one).
func startCluster(n int, ownProcess bool) ([]string, int, func(), error) {
	if ownProcess {
		return startKfakeProcess(n)
	}
	fake, err := harness.StartKafka(n)
	if err != nil {
		return nil, 0, nil, err
	}
	return fake.Addrs, 0, fake.Close, nil
}

func startKfakeProcess(brokers int) ([]string, int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, nil, err
	}
	cmd := exec.Command(self, "-serve-kfake", "-kfake-brokers", strconv.Itoa(brokers))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, 0, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, 0, nil, err
	}
	stop := func() { stdin.Close(); _ = cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "BROKERS ") {
		stop()
		return nil, 0, nil, fmt.Errorf("kfake process: %q %v", line, err)
	}
	return strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "BROKERS ")), ","), cmd.Process.Pid, stop, nil
}
