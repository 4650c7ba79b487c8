package hashring

import (
	"fmt"
	"testing"
)

// benchKeys are typical cache keys, 14 to 20 bytes.
func benchKeys() [][]byte {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%d:session", i*7919)
	}
	return keys
}

func BenchmarkPick(b *testing.B) {
	keys := benchKeys()
	for _, hash := range []string{"xxhash64", "fnv1a_64"} {
		for _, n := range []int{3, 100} {
			b.Run(fmt.Sprintf("%s/nodes=%d", hash, n), func(b *testing.B) {
				r := mustNew(b, nodesN(n), Config{Hash: hash})
				b.ReportAllocs()
				sink := 0
				i := 0
				for b.Loop() {
					sink += r.Pick(keys[i&1023])
					i++
				}
				if sink < 0 {
					b.Fatal(sink)
				}
			})
		}
	}
}

func BenchmarkPickString(b *testing.B) {
	keys := benchKeys()
	skeys := make([]string, len(keys))
	for i, k := range keys {
		skeys[i] = string(k)
	}
	for _, cfg := range []Config{{}, {Hash: "fnv1a_64", HashTag: "{}"}, {Hash: "md5"}, {Hash: "murmur", Distribution: "modula"}} {
		b.Run(cfgName(cfg)+"/nodes=100", func(b *testing.B) {
			r := mustNew(b, nodesN(100), cfg)
			b.ReportAllocs()
			sink := 0
			i := 0
			for b.Loop() {
				sink += r.PickString(skeys[i&1023])
				i++
			}
			if sink < 0 {
				b.Fatal(sink)
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	for _, cfg := range []Config{{}, {Hash: "fnv1a_64"}} {
		b.Run(cfgName(cfg)+"/nodes=100", func(b *testing.B) {
			nodes := nodesN(100)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(nodes, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPickAllocs holds Pick and PickString to zero allocations for every
// hash and distribution (benchmarks are not run by go test).
func TestPickAllocs(t *testing.T) {
	keys := benchKeys()
	for _, cfg := range allConfigs() {
		cfg.HashTag = "{}"
		r := mustNew(t, nodesN(10), cfg)
		s := string(keys[5])
		if a := testing.AllocsPerRun(100, func() { r.Pick(keys[3]); r.PickString(s) }); a != 0 {
			t.Errorf("%s: %v allocs per Pick+PickString", cfgName(cfg), a)
		}
	}
}

func cfgName(cfg Config) string {
	h, d := cfg.Hash, cfg.Distribution
	if h == "" {
		h = HashXXHash64
	}
	if d == "" {
		d = DistributionKetama
	}
	name := h + "-" + d
	if cfg.HashTag != "" {
		name += "-tag" + cfg.HashTag
	}
	return name
}
