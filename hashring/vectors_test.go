package hashring

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/ambassador-proxy/ambassador/hashring/internal/twemharness"
)

const vectorDir = "testdata/twemproxy"

func loadVectorKeys(t testing.TB) [][]byte {
	t.Helper()
	var kl twemharness.KeyList
	if err := twemharness.ReadJSON(filepath.Join(vectorDir, twemharness.KeysFile), &kl); err != nil {
		t.Fatal(err)
	}
	keys := make([][]byte, len(kl.Keys))
	for i, k := range kl.Keys {
		b, err := k.Bytes()
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		keys[i] = b
	}
	if len(keys) < 1000 {
		t.Fatalf("only %d keys in %s", len(keys), twemharness.KeysFile)
	}
	return keys
}

// TestTwemproxyVectors checks every key of every golden file (recorded from
// a real nutcracker by internal/gentwemvectors) lands on the recorded server.
func TestTwemproxyVectors(t *testing.T) {
	keys := loadVectorKeys(t)
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == twemharness.KeysFile })
	if len(files) < 10 {
		t.Fatalf("found only %d vector files in %s", len(files), vectorDir)
	}
	covered := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var c twemharness.Case
			if err := twemharness.ReadJSON(f, &c); err != nil {
				t.Fatal(err)
			}
			if c.KeysFile != twemharness.KeysFile || len(c.Placement) != len(keys) {
				t.Fatalf("placement has %d entries for %d keys of %q", len(c.Placement), len(keys), c.KeysFile)
			}
			covered[c.Hash+"/"+c.Distribution] = true
			nodes := make([]Node, len(c.Servers))
			for i, s := range c.Servers {
				nodes[i] = Node{Name: s.Name, Weight: s.Weight}
			}
			r, err := New(nodes, Config{Hash: c.Hash, Distribution: c.Distribution, HashTag: c.HashTag})
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i, k := range keys {
				want := int(c.Placement[i] - '0')
				got := r.Pick(k)
				if gs := r.PickString(string(k)); gs != got {
					t.Fatalf("key %q: Pick %d, PickString %d", k, got, gs)
				}
				if got != want {
					bad++
					if bad <= 10 {
						t.Errorf("key %q: Pick = %d (%s), nutcracker used %d (%s)", k, got, c.Servers[got].Conf, want, c.Servers[want].Conf)
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d keys misplaced", bad, len(keys))
			}
		})
	}
	for _, h := range twemHashes {
		if !covered[h.name+"/ketama"] {
			t.Errorf("no vectors for %s/ketama", h.name)
		}
	}
	if !covered["fnv1a_64/modula"] {
		t.Errorf("no vectors for fnv1a_64/modula")
	}
}
