package hashring

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzPick: any key, tag, hash, distribution and node count: no panic, an
// index in range, Pick and PickString agree, a key goes where its hashed
// part goes, and a bad tag is an error rather than a panic.
func FuzzPick(f *testing.F) {
	f.Add([]byte("{user1}.a"), "{}", uint8(0), false, uint8(3))
	f.Add([]byte("a{b}c{d}"), "{}", uint8(7), true, uint8(5))
	f.Add([]byte("{}x"), "{}", uint8(2), false, uint8(2))
	f.Add([]byte("x{"), "$$", uint8(11), false, uint8(9))
	f.Add([]byte(""), "", uint8(4), true, uint8(1))
	f.Add([]byte("\xff\x80\x00"), "{", uint8(12), false, uint8(0))
	hashes := Hashes()
	f.Fuzz(func(t *testing.T, key []byte, tag string, hashIdx uint8, modula bool, n uint8) {
		cfg := Config{Hash: hashes[int(hashIdx)%len(hashes)], HashTag: tag}
		if modula {
			cfg.Distribution = DistributionModula
		}
		nodes := make([]Node, int(n%24))
		for i := range nodes {
			nodes[i] = Node{Name: fmt.Sprintf("node-%d", i), Weight: i%4 + 1}
		}
		r, err := New(nodes, cfg)
		if len(tag) != 0 && len(tag) != 2 {
			if err == nil {
				t.Fatalf("tag %q accepted", tag)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got := r.Pick(key)
		if len(nodes) == 0 {
			if got != -1 {
				t.Fatalf("empty ring: Pick = %d", got)
			}
			return
		}
		if got < 0 || got >= len(nodes) {
			t.Fatalf("Pick = %d with %d nodes", got, len(nodes))
		}
		if s := r.PickString(string(key)); s != got {
			t.Fatalf("Pick %d, PickString %d", got, s)
		}
		if len(tag) == 2 {
			part := r.hashPart(key)
			if !bytes.Contains(key, part) {
				t.Fatalf("hashed part %q not in key %q", part, key)
			}
			if p := r.Pick(bytes.Clone(part)); p != got {
				t.Fatalf("key %q on %d, its hashed part %q on %d", key, got, part, p)
			}
		}
	})
}
