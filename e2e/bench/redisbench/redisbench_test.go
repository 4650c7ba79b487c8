package main

import (
	"strings"
	"testing"
)

func TestParseCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","33613.45","23.050","0.496","7.647","103.615","110.143","110.463"
"LRANGE_100 (first 100 elements)","17436.79","33.369","1.464","29.935","62.015","94.015","106.367"
`
	got, err := parseCSV([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d results, want 2", len(got))
	}
	want := testResult{Test: "LRANGE_100 (first 100 elements)", RPS: 17436.79, Avg: 33.369, Min: 1.464, P50: 29.935, P95: 62.015, P99: 94.015, Max: 106.367}
	if got[1] != want {
		t.Errorf("got %+v, want %+v", got[1], want)
	}
	if shortTest(got[1].Test) != "LRANGE_100" {
		t.Errorf("shortTest = %q", shortTest(got[1].Test))
	}
	for _, bad := range []string{"", "SET: 1000 requests per second\n", `"test","rps"` + "\n" + `"SET","1"` + "\n",
		strings.SplitN(out, "\n", 2)[0] + "\n"} {
		if _, err := parseCSV([]byte(bad)); err == nil {
			t.Errorf("parseCSV(%q) did not fail", bad)
		}
	}
}

func TestParseProc(t *testing.T) {
	// the command name may hold spaces and parentheses
	stat := "4242 (red is) (x)) S 1 4242 4242 0 -1 4194560 300 0 0 0 123 45 0 0 20 0 4 0 100 1000 200 18446744073709551615\n"
	d, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if d != 168*clockTick {
		t.Errorf("cpu = %v, want %v", d, 168*clockTick)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("short stat line did not fail")
	}
	status := "Name:\tambassador\nVmHWM:\t  99999 kB\nVmRSS:\t   12345 kB\n"
	kb, err := parseStatusKB([]byte(status), "VmRSS")
	if err != nil || kb != 12345 {
		t.Errorf("VmRSS = %d, %v; want 12345", kb, err)
	}
	if _, err := parseStatusKB([]byte("Name:\tx\n"), "VmRSS"); err == nil {
		t.Error("missing VmRSS did not fail")
	}
	busy, err := parseCPUBusy([]byte("cpu  318535 7 140357 243653 2197 11 21959 3545 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if want := (318535 + 7 + 140357 + 11 + 21959) * clockTick; err != nil || busy != want {
		t.Errorf("busy = %v, %v; want %v", busy, err, want)
	}
	if _, err := parseCPUBusy([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a /proc/stat without the cpu line did not fail")
	}
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
`
	if got := listenInodes([]byte(table), 8080); len(got) != 1 || got[0] != "111" {
		t.Errorf("listenInodes(8080) = %v, want [111]", got)
	}
}

func TestSummarize(t *testing.T) {
	runs := []testResult{{RPS: 100, P50: 3, P99: 9}, {RPS: 300, P50: 1, P99: 12}, {RPS: 200, P50: 2, P99: 10}, {RPS: 250, P50: 5, P99: 8}}
	if got := summarize(runs, "best"); got != (summary{RPS: 300, P50: 1, P99: 8, Runs: 4}) {
		t.Errorf("best = %+v", got)
	}
	if got := summarize(runs, "median"); got != (summary{RPS: 225, P50: 2.5, P99: 9.5, Runs: 4}) {
		t.Errorf("median = %+v", got)
	}
	if got := summarize(runs[:3], "median"); got != (summary{RPS: 200, P50: 2, P99: 10, Runs: 3}) {
		t.Errorf("median of 3 = %+v", got)
	}
	if got := summarize(nil, "best"); got.Runs != 0 {
		t.Errorf("empty = %+v", got)
	}
}

func TestBenchArgv(t *testing.T) {
	got := shellQuote(benchArgv("redis-benchmark", workloads[0], "127.0.0.1:7000", 1000))
	want := "redis-benchmark -h 127.0.0.1 -p 7000 -P 16 -c 50 -t set,get -n 1000 -r 100000 --csv"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
