package hashring

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ambassador-proxy/ambassador/hashring/internal/twemharness"
)

// TestLiveTwemproxy starts real redis-servers and a real nutcracker
// (fnv1a_64, ketama, hash_tag "{}", four servers of different weights, one
// with a given name), SETs random keys through nutcracker, reads each
// redis-server directly, and checks Ring.Pick agrees on every key. It is
// never skipped: a missing binary fails it with how to install it.
func TestLiveTwemproxy(t *testing.T) {
	if err := twemharness.CheckBinaries(); err != nil {
		t.Fatal(err) // names the binary and says: install it: apt-get install -y nutcracker redis-server
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()

	weights := []int{1, 3, 2, 5}
	aliases := []string{"", "cache-one", "", ""}
	backends := make([]*twemharness.Proc, len(weights))
	pool := twemharness.Pool{Hash: "fnv1a_64", Distribution: "ketama", HashTag: "{}"}
	nodes := make([]Node, len(weights))
	for i := range backends {
		p, err := twemharness.StartRedis(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		backends[i] = p
		pool.Servers = append(pool.Servers, twemharness.Server{Addr: p.Addr, Weight: weights[i], Name: aliases[i]})
		host, port, _ := net.SplitHostPort(p.Addr)
		pn, _ := strconv.Atoi(port)
		nodes[i] = Node{Name: TwemproxyName(host, pn, aliases[i]), Weight: weights[i]}
	}
	nc, err := twemharness.StartNutcracker(ctx, dir, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Stop)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	seen := map[string]bool{}
	keys := [][]byte{{}} // the empty key: twemproxy hashes it as 0
	seen[""] = true
	for len(keys) < 400 {
		var k []byte
		switch rng.IntN(4) {
		case 0: // tagged
			k = fmt.Appendf(nil, "{user%d}.%d", rng.IntN(50), rng.IntN(1000))
		case 1: // plain text
			k = fmt.Appendf(nil, "key:%d:%x", rng.IntN(1e6), rng.Uint32())
		default: // any bytes, any tag placement
			k = make([]byte, 1+rng.IntN(48))
			for i := range k {
				k[i] = byte(rng.UintN(256))
				if rng.IntN(10) == 0 {
					k[i] = "{}"[rng.IntN(2)]
				}
			}
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}

	got, err := twemharness.Placement(nc, backends, keys)
	if err != nil {
		t.Fatal(err)
	}
	r := mustNew(t, nodes, Config{Hash: "fnv1a_64", Distribution: "ketama", HashTag: "{}"})
	counts := make([]int, len(nodes))
	bad := 0
	for i, k := range keys {
		counts[got[i]]++
		if p := r.Pick(k); p != got[i] {
			bad++
			if bad <= 10 {
				t.Errorf("key %q: Pick = %d (%s), nutcracker used %d (%s)", k, p, nodes[p].Name, got[i], nodes[got[i]].Name)
			}
		}
	}
	t.Logf("%d keys, per server %v", len(keys), counts)
	if bad > 0 {
		t.Errorf("%d of %d keys placed differently from nutcracker", bad, len(keys))
	}
}
