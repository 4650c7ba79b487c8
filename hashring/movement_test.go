package hashring

import (
	"fmt"
	"slices"
	"testing"
)

// consistentConfigs are the placements that promise minimal movement.
var consistentConfigs = []Config{
	{},                           // xxhash64 ketama (default)
	{Hash: "fnv1a_64"},           // twemproxy ketama
	{Hash: "md5", HashTag: "{}"}, // another twemproxy hash, tagged
}

func movementKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "object:%d:%x", i, uint32(i)*2654435761)
	}
	return keys
}

// owners returns the name of each key's node.
func owners(t *testing.T, nodes []Node, cfg Config, keys [][]byte) []string {
	r := mustNew(t, nodes, cfg)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = nodes[r.Pick(k)].Name
	}
	return out
}

func TestMovementRemoveNode(t *testing.T) {
	const n = 10
	keys := movementKeys(100_000)
	for _, cfg := range consistentConfigs {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			nodes := nodesN(n)
			before := owners(t, nodes, cfg, keys)
			for _, gone := range []int{0, 4, n - 1} {
				rest := slices.Delete(slices.Clone(nodes), gone, gone+1)
				after := owners(t, rest, cfg, keys)
				moved, orphans := 0, 0
				for i := range keys {
					if before[i] == nodes[gone].Name {
						orphans++
						if after[i] == nodes[gone].Name {
							t.Fatalf("key %q still on removed node", keys[i])
						}
						continue
					}
					if after[i] != before[i] {
						moved++
					}
				}
				if moved != 0 {
					t.Errorf("removing %s moved %d keys that were not on it", nodes[gone].Name, moved)
				}
				if orphans < len(keys)/n/2 {
					t.Errorf("removed node held only %d of %d keys", orphans, len(keys))
				}
			}
		})
	}
}

func TestMovementAddNode(t *testing.T) {
	const n = 10
	keys := movementKeys(100_000)
	for _, cfg := range consistentConfigs {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			nodes := nodesN(n)
			before := owners(t, nodes, cfg, keys)
			added := Node{Name: "10.0.0.99:6379", Weight: 1}
			after := owners(t, append(slices.Clone(nodes), added), cfg, keys)
			moved := 0
			for i := range keys {
				if after[i] == before[i] {
					continue
				}
				moved++
				if after[i] != added.Name {
					t.Fatalf("key %q moved from %s to %s, not to the new node", keys[i], before[i], after[i])
				}
			}
			expected := float64(len(keys)) / (n + 1)
			if f := float64(moved) / expected; f < 0.5 || f > 1.5 {
				t.Errorf("adding an 11th node moved %d keys, expected about %.0f (%.2fx)", moved, expected, f)
			}
			t.Logf("moved %d keys to the new node, expected about %.0f", moved, expected)
		})
	}
}

// TestMovementWeightIncrease: raising one node's weight only moves keys to it.
func TestMovementWeightIncrease(t *testing.T) {
	keys := movementKeys(50_000)
	nodes := nodesN(6)
	before := owners(t, nodes, Config{}, keys)
	heavier := slices.Clone(nodes)
	heavier[2].Weight = 2
	after := owners(t, heavier, Config{}, keys)
	moved := 0
	for i := range keys {
		if after[i] != before[i] {
			moved++
			if after[i] != nodes[2].Name {
				t.Fatalf("key %q moved from %s to %s", keys[i], before[i], after[i])
			}
		}
	}
	if moved == 0 {
		t.Error("no key moved to the heavier node")
	}
}

func TestWeightedDistribution(t *testing.T) {
	keys := movementKeys(200_000)
	configs := append(slices.Clone(consistentConfigs),
		Config{Distribution: "modula"},
		Config{Hash: "fnv1a_64", Distribution: "modula"},
		Config{Hash: "murmur"},
	)
	for _, cfg := range configs {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			nodes := nodesN(5)
			nodes[3].Weight = 2
			r := mustNew(t, nodes, cfg)
			counts := make([]int, len(nodes))
			for _, k := range keys {
				counts[r.Pick(k)]++
			}
			light := float64(counts[0]+counts[1]+counts[2]+counts[4]) / 4
			ratio := float64(counts[3]) / light
			t.Logf("counts %v, weight-2 / mean weight-1 = %.2f", counts, ratio)
			if ratio < 1.6 || ratio > 2.4 {
				t.Errorf("weight-2 node got %.2fx the keys of a weight-1 node, want about 2", ratio)
			}
			for i, c := range counts {
				if i != 3 && (float64(c) < 0.7*light || float64(c) > 1.3*light) {
					t.Errorf("weight-1 node %d got %d keys, mean %.0f", i, c, light)
				}
			}
		})
	}
}
