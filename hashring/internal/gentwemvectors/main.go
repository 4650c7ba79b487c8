// Command gentwemvectors regenerates hashring's twemproxy golden vectors
// (hashring/testdata/twemproxy) by asking a real nutcracker where it puts
// keys.
//
// It starts ten redis-server processes on free loopback ports, then for each
// case writes a nutcracker configuration over some of them (hash,
// distribution, hash_tag, weights and optional server names as the case
// says), starts nutcracker, SETs every key of a fixed key list through it,
// and reads each redis-server directly (KEYS *) to record which server holds
// each key. Every process it starts is killed before it exits.
//
// From the module root:
//
//	go run ./hashring/internal/gentwemvectors
//
// or `go generate ./hashring`. Needs: apt-get install -y nutcracker redis-server
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ambassador-proxy/ambassador/hashring"
	"github.com/ambassador-proxy/ambassador/hashring/internal/twemharness"
)

// server picks a backend (by index into the started redis-servers), its
// weight and an optional given name.
type server struct {
	backend int
	weight  int
	name    string
}

type genCase struct {
	file, hash, dist, tag string
	servers               []server
}

// Server sets. Config order is deliberately not the order twemproxy sorts
// servers into (by name: shorter first, then bytewise), so modula cases
// prove the sort is reproduced.
var (
	// Four servers, weights 1..4, default names "127.0.0.1:port".
	setA = []server{{2, 3, ""}, {0, 1, ""}, {3, 4, ""}, {1, 2, ""}}
	// Five servers with given names of different lengths.
	setNamed = []server{{4, 2, "cache-b"}, {0, 1, "a"}, {1, 3, "cache-aa"}, {2, 1, "z9"}, {3, 2, "redis-primary"}}
	// Weights 1,2,3: the single-precision point count lands next to whole numbers.
	set123 = []server{{5, 2, ""}, {6, 3, ""}, {7, 1, ""}}
	// Ten servers, weights 1..10.
	set10 = []server{{9, 10, ""}, {0, 1, ""}, {8, 9, ""}, {1, 2, ""}, {7, 8, ""}, {2, 3, ""}, {6, 7, ""}, {3, 4, ""}, {5, 6, ""}, {4, 5, ""}}
	// Seven servers, Fibonacci weights, given names.
	setFib = []server{{0, 1, "s0"}, {1, 1, "s1"}, {2, 2, "s2"}, {3, 3, "s3"}, {4, 5, "s4"}, {5, 8, "s5"}, {6, 13, "s6"}}
	// Weights where twemproxy's single-precision point count truncates: the
	// servers of weight 1..4 get 4 points fewer than exact arithmetic gives.
	setF32a = []server{{4, 15, ""}, {0, 1, ""}, {3, 4, ""}, {1, 2, ""}, {2, 3, ""}}
	// Likewise for the weight-11 server among seven.
	setF32b = []server{{0, 11, "n-eleven"}, {1, 1, "n1"}, {2, 1, "n1b"}, {3, 2, "n2"}, {4, 3, "n3"}, {5, 4, "n4"}, {6, 6, "n6"}}
	// Five equal servers.
	setEqual = []server{{3, 1, ""}, {1, 1, ""}, {4, 1, ""}, {0, 1, ""}, {2, 1, ""}}
)

var cases = []genCase{
	{"fnv1a_64-ketama-tag.json", "fnv1a_64", "ketama", "{}", setA},
	{"fnv1a_64-ketama-tag-named.json", "fnv1a_64", "ketama", "{}", setNamed},
	{"fnv1a_64-ketama-w123.json", "fnv1a_64", "ketama", "{}", set123},
	{"fnv1a_64-ketama-w1to10.json", "fnv1a_64", "ketama", "", set10},
	{"fnv1a_64-ketama-f32-truncation.json", "fnv1a_64", "ketama", "{}", setF32a},
	{"murmur-ketama-f32-truncation-named.json", "murmur", "ketama", "", setF32b},
	{"fnv1a_64-ketama-equal.json", "fnv1a_64", "ketama", "", setEqual},
	{"fnv1_64-ketama.json", "fnv1_64", "ketama", "", setA},
	{"fnv1a_32-ketama.json", "fnv1a_32", "ketama", "", setA},
	{"fnv1_32-ketama.json", "fnv1_32", "ketama", "", setA},
	{"md5-ketama.json", "md5", "ketama", "", setA},
	{"md5-ketama-dollar-tag-fib.json", "md5", "ketama", "$$", setFib},
	{"crc16-ketama.json", "crc16", "ketama", "", setA},
	{"crc32-ketama.json", "crc32", "ketama", "", setA},
	{"crc32a-ketama.json", "crc32a", "ketama", "", setA},
	{"murmur-ketama.json", "murmur", "ketama", "", setA},
	{"murmur-ketama-w1to10.json", "murmur", "ketama", "{}", set10},
	{"one_at_a_time-ketama.json", "one_at_a_time", "ketama", "", setA},
	{"hsieh-ketama.json", "hsieh", "ketama", "", setA},
	{"jenkins-ketama.json", "jenkins", "ketama", "", setA},
	{"fnv1a_64-modula.json", "fnv1a_64", "modula", "", setA},
	{"fnv1a_64-modula-tag-named.json", "fnv1a_64", "modula", "{}", setNamed},
	{"murmur-modula-w1to10.json", "murmur", "modula", "", set10},
	{"crc32a-modula-equal.json", "crc32a", "modula", "", setEqual},
	{"md5-modula-fib.json", "md5", "modula", "$$", setFib},
}

const nBackends = 10

func main() {
	out := flag.String("out", "hashring/testdata/twemproxy", "directory for the golden files")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *out); err != nil {
		log.Error("gentwemvectors failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, out string) error {
	if err := twemharness.CheckBinaries(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	dir, err := os.MkdirTemp("", "gentwemvectors-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var procs []*twemharness.Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	backends := make([]*twemharness.Proc, nBackends)
	for i := range backends {
		p, err := twemharness.StartRedis(ctx, dir)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		backends[i] = p
	}

	keys := Keys()
	kl := twemharness.KeyList{Comment: "Keys placed by every case in this directory; a case's placement has one digit per key, in this order. Generated by go run ./hashring/internal/gentwemvectors."}
	for _, k := range keys {
		kl.Keys = append(kl.Keys, twemharness.EncodeKey(k))
	}
	if err := twemharness.WriteJSON(filepath.Join(out, twemharness.KeysFile), kl); err != nil {
		return err
	}

	version := nutcrackerVersion()
	for _, c := range cases {
		pool := twemharness.Pool{Hash: c.hash, Distribution: c.dist, HashTag: c.tag}
		var used []*twemharness.Proc
		gc := twemharness.Case{
			Comment:      "Where nutcracker put each key of " + twemharness.KeysFile + ". Generated by go run ./hashring/internal/gentwemvectors; do not edit.",
			Nutcracker:   version,
			Hash:         c.hash,
			Distribution: c.dist,
			HashTag:      c.tag,
			KeysFile:     twemharness.KeysFile,
		}
		for _, s := range c.servers {
			b := backends[s.backend]
			ts := twemharness.Server{Addr: b.Addr, Weight: s.weight, Name: s.name}
			pool.Servers = append(pool.Servers, ts)
			used = append(used, b)
			host, port, _ := net.SplitHostPort(b.Addr)
			pn, _ := strconv.Atoi(port)
			gc.Servers = append(gc.Servers, twemharness.CaseServer{
				Conf:   ts.ConfLine(),
				Name:   hashring.TwemproxyName(host, pn, s.name),
				Weight: s.weight,
			})
		}
		nc, err := twemharness.StartNutcracker(ctx, dir, pool)
		if err != nil {
			return fmt.Errorf("%s: %w", c.file, err)
		}
		place, err := twemharness.Placement(nc, used, keys)
		nc.Stop()
		if err != nil {
			return fmt.Errorf("%s: %w", c.file, err)
		}
		var sb strings.Builder
		counts := make([]int, len(used))
		for _, p := range place {
			sb.WriteByte(byte('0' + p))
			counts[p]++
		}
		gc.Placement = sb.String()
		if err := twemharness.WriteJSON(filepath.Join(out, c.file), gc); err != nil {
			return err
		}
		log.Info("case written", "file", c.file, "keys_per_server", counts)
	}
	return nil
}

func nutcrackerVersion() string {
	b, _ := exec.Command("nutcracker", "-V").CombinedOutput()
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(l, "This is ") {
			return strings.TrimPrefix(l, "This is ")
		}
	}
	return strings.TrimSpace(string(b))
}

// Keys returns the fixed key list: plain, hash-tagged ({} and $$, including
// the edge cases), UTF-8, random binary (bytes >= 0x80 exercise twemproxy's
// signed-char arithmetic), every short length (hash tails) and long keys
// (multi-block md5, jenkins, murmur).
func Keys() [][]byte {
	rng := rand.New(rand.NewPCG(20240601, 7))
	seen := map[string]bool{}
	var keys [][]byte
	add := func(k []byte) {
		if len(k) == 0 || seen[string(k)] {
			return
		}
		seen[string(k)] = true
		keys = append(keys, k)
	}
	adds := func(format string, a ...any) { add([]byte(fmt.Sprintf(format, a...))) }
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	randStr := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alnum[rng.IntN(len(alnum))]
		}
		return b
	}

	for i := range 300 {
		adds("key:%d", i)
	}
	for range 150 {
		adds("user:%d:profile", rng.Uint32())
		adds("session-%x", rng.Uint64())
	}
	for i := range 100 { // hash tag {}
		adds("{user%d}.a", i)
		adds("{user%d}.b", i)
		adds("pre{%d}post", i)
		adds("{}x%d", i)
		adds("x%d{", i)
		adds("a{b%d}c{d}", i)
		adds("}{%d}", i)
		adds("{{%d}}", i)
		adds("%d{}{t}", i)
	}
	for i := range 60 { // hash tag $$
		adds("$u%d$.x", i)
		adds("a$$%d", i)
		adds("$%d", i)
		adds("k$%d$v$w$", i)
	}
	for i := range 100 { // UTF-8 beyond ASCII
		adds("ключ:%d", i)
		adds("キー{%d}", i)
	}
	for n := 1; n <= 40; n++ { // every short length, several times
		for range 4 {
			add(randStr(n))
		}
	}
	for range 300 { // binary, any byte
		b := make([]byte, 1+rng.IntN(70))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		add(b)
	}
	for range 100 { // high bytes only
		b := make([]byte, 1+rng.IntN(20))
		for i := range b {
			b[i] = byte(0x80 + rng.UintN(128))
		}
		add(b)
	}
	for range 80 { // long
		add(randStr(60 + rng.IntN(300)))
	}
	if slices.ContainsFunc(keys, func(k []byte) bool { return len(k) == 0 }) {
		panic("empty key")
	}
	return keys
}
