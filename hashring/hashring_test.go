package hashring

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func nodesN(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{Name: fmt.Sprintf("10.0.0.%d:6379", i+1), Weight: 1}
	}
	return nodes
}

func mustNew(t testing.TB, nodes []Node, cfg Config) *Ring {
	t.Helper()
	r, err := New(nodes, cfg)
	if err != nil {
		t.Fatalf("New(%d nodes, %+v): %v", len(nodes), cfg, err)
	}
	return r
}

// allConfigs is every hash with every distribution.
func allConfigs() []Config {
	var out []Config
	for _, d := range Distributions() {
		for _, h := range Hashes() {
			out = append(out, Config{Hash: h, Distribution: d})
		}
	}
	return out
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		nodes []Node
		cfg   Config
		want  string
	}{
		{nodesN(2), Config{Hash: "foo"}, `hashring: unknown hash "foo"`},
		{nodesN(2), Config{Hash: "FNV1A_64"}, `hashring: unknown hash "FNV1A_64"`},
		{nodesN(2), Config{Distribution: "random"}, `hashring: unknown distribution "random"`},
		{nodesN(2), Config{HashTag: "{"}, `hashring: hash tag "{" must be empty or exactly two bytes`},
		{nodesN(2), Config{HashTag: "{}}"}, `hashring: hash tag "{}}" must be empty or exactly two bytes`},
		{[]Node{{Name: "a"}, {Name: ""}}, Config{}, `hashring: node 1 has an empty name`},
		{[]Node{{Name: "a"}, {Name: "b"}, {Name: "a"}}, Config{}, `hashring: nodes 0 and 2 have the same name "a"`},
		{[]Node{{Name: "a", Weight: -1}}, Config{}, `hashring: node "a" has negative weight -1`},
		{[]Node{{Name: "a", Weight: 30000}}, Config{}, `hashring: total weight 30000 gives more than 4194304 ring points`},
	}
	for _, tt := range tests {
		_, err := New(tt.nodes, tt.cfg)
		if err == nil {
			t.Errorf("New(%+v, %+v) = nil error, want %q", tt.nodes, tt.cfg, tt.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%+v, %+v) error %q, want prefix %q", tt.nodes, tt.cfg, err, tt.want)
		}
		if !errors.Is(err, ErrConfig) {
			t.Errorf("error %q does not wrap ErrConfig", err)
		}
	}
	// A big weight is fine where it only sets a share.
	for _, cfg := range []Config{{Hash: "md5"}, {Distribution: "modula"}, {Hash: "md5", Distribution: "modula"}} {
		if _, err := New([]Node{{Name: "a", Weight: 30000}, {Name: "b", Weight: 1}}, cfg); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestNamesAccepted(t *testing.T) {
	if h := Hashes(); h[0] != "xxhash64" || len(h) != 13 {
		t.Errorf("Hashes() = %q", h)
	}
	if d := Distributions(); !slices.Equal(d, []string{"ketama", "modula"}) {
		t.Errorf("Distributions() = %q", d)
	}
	for _, cfg := range append(allConfigs(), Config{}) {
		r := mustNew(t, nodesN(3), cfg)
		if r.Len() != 3 {
			t.Errorf("%+v: Len = %d", cfg, r.Len())
		}
	}
	// Hashes returns a copy.
	Hashes()[0] = "changed"
	if Hashes()[0] != "xxhash64" {
		t.Error("Hashes() shares its slice")
	}
}

func TestEmptyAndSingle(t *testing.T) {
	for _, cfg := range allConfigs() {
		r := mustNew(t, nil, cfg)
		if r.Len() != 0 || r.Pick([]byte("k")) != -1 || r.PickString("") != -1 {
			t.Errorf("%+v: empty ring: Len %d, Pick %d", cfg, r.Len(), r.Pick([]byte("k")))
		}
		r = mustNew(t, []Node{{Name: "only", Weight: 0}}, cfg)
		for _, k := range []string{"", "a", "{x}y"} {
			if got := r.PickString(k); got != 0 {
				t.Errorf("%+v: single node: PickString(%q) = %d", cfg, k, got)
			}
		}
	}
}

func TestZeroWeightIsOne(t *testing.T) {
	for _, cfg := range allConfigs() {
		a := mustNew(t, []Node{{"a", 0}, {"b", 1}, {"c", 2}}, cfg)
		b := mustNew(t, []Node{{"a", 1}, {"b", 1}, {"c", 2}}, cfg)
		for i := range 2000 {
			k := fmt.Sprintf("k%d", i)
			if a.PickString(k) != b.PickString(k) {
				t.Fatalf("%+v: weight 0 and weight 1 place %q differently", cfg, k)
			}
		}
	}
}

func TestHashPart(t *testing.T) {
	tests := []struct{ tag, key, want string }{
		{"{}", "{user1}.a", "user1"},
		{"{}", "{user1}.b", "user1"},
		{"{}", "prefix{user1}suffix", "user1"},
		{"{}", "{}x", "{}x"},       // empty tag: whole key
		{"{}", "x{", "x{"},         // no close: whole key
		{"{}", "{a", "{a"},         // no close: whole key
		{"{}", "a{b}c{d}", "b"},    // first tag only
		{"{}", "}{a}", "a"},        // a close before the open is ignored
		{"{}", "{{a}}", "{a"},      // first open, first close after it
		{"{}", "{}{t}", "{}{t}"},   // first tag empty: whole key, no second look
		{"{}", "a}b{", "a}b{"},     // close only before open
		{"{}", "", ""},             // empty key
		{"{}", "plain", "plain"},   // no tag
		{"$$", "$u1$.x", "u1"},     // same open and close byte
		{"$$", "a$$b", "a$$b"},     // empty
		{"$$", "$x", "$x"},         // no close
		{"$$", "k$1$v$w$", "1"},    // first pair
		{"::", "ns:id:rest", "id"}, // any two bytes
		{"{}", "ключ{ü}x", "ü"},    // bytes, not runes
		{"\x00\xff", "a\x00b\xffc", "b"},
	}
	for _, tt := range tests {
		r := mustNew(t, nodesN(5), Config{HashTag: tt.tag})
		if got := string(r.hashPart([]byte(tt.key))); got != tt.want {
			t.Errorf("tag %q key %q: hashed %q, want %q", tt.tag, tt.key, got, tt.want)
		}
	}
	// An untagged ring hashes the whole key.
	r := mustNew(t, nodesN(50), Config{})
	for i := range 200 {
		k := fmt.Sprintf("{a}x%d", i)
		if got, want := r.PickString(k), r.search(xxhash.Sum64String(k)); got != want {
			t.Fatalf("untagged ring: %q on %d, want %d", k, got, want)
		}
	}
}

func TestHashTagSameNode(t *testing.T) {
	for _, cfg := range allConfigs() {
		cfg.HashTag = "{}"
		r := mustNew(t, nodesN(16), cfg)
		seen := map[int]bool{}
		for i := range 300 {
			tag := fmt.Sprintf("user%d", i)
			want := r.PickString(tag)
			seen[want] = true
			for _, k := range []string{"{" + tag + "}.a", "{" + tag + "}.b", "x{" + tag + "}y{z}", "{" + tag + "}"} {
				if got := r.PickString(k); got != want {
					t.Fatalf("%+v: %q on %d, its tag %q on %d", cfg, k, got, tag, want)
				}
			}
		}
		// Tags spread over nodes, except crc32 with ketama: its 15-bit hash
		// sends every key to the first points of the ring, in twemproxy too.
		if len(seen) < 2 && !(cfg.Hash == "crc32" && cfg.Distribution == "ketama") {
			t.Errorf("%+v: 300 tags all on one node", cfg)
		}
	}
}

func TestOrderIndependent(t *testing.T) {
	nodes := []Node{{"alpha", 1}, {"b", 3}, {"gamma:6379", 2}, {"dd", 1}, {"epsilon-long-name", 5}}
	perm := []int{3, 0, 4, 2, 1}
	shuffled := make([]Node, len(nodes))
	for i, p := range perm {
		shuffled[i] = nodes[p]
	}
	for _, cfg := range allConfigs() {
		a := mustNew(t, nodes, cfg)
		b := mustNew(t, shuffled, cfg)
		for i := range 5000 {
			k := fmt.Sprintf("key-%d", i)
			if na, nb := nodes[a.PickString(k)].Name, shuffled[b.PickString(k)].Name; na != nb {
				t.Fatalf("%+v: %q goes to %q, or %q when the nodes are reordered", cfg, k, na, nb)
			}
		}
	}
}

func TestTwemproxyName(t *testing.T) {
	tests := []struct {
		host  string
		port  int
		alias string
		want  string
	}{
		{"127.0.0.1", 6379, "", "127.0.0.1:6379"},
		{"cache.local", 11211, "", "cache.local"},
		{"127.0.0.1", 6379, "server1", "server1"},
		{"127.0.0.1", 11211, "mc", "mc"},
	}
	for _, tt := range tests {
		if got := TwemproxyName(tt.host, tt.port, tt.alias); got != tt.want {
			t.Errorf("TwemproxyName(%q, %d, %q) = %q, want %q", tt.host, tt.port, tt.alias, got, tt.want)
		}
	}
}

// TestTwemPointsFor pins twemproxy's single-precision point counts,
// including a case where float rounding drops a group of four points.
func TestTwemPointsFor(t *testing.T) {
	tests := []struct {
		w, total uint64
		n, want  int
	}{
		{1, 3, 3, 160},
		{1, 6, 3, 80},
		{2, 6, 3, 160},
		{3, 6, 3, 240},
		{1, 25, 5, 28}, // exact arithmetic gives 32
		{15, 25, 5, 480},
		{11, 28, 7, 436}, // exact: 440
		{1, 2000, 2, 0},  // a tiny share gets no points at all
	}
	for _, tt := range tests {
		if got := twemPointsFor(tt.w, tt.total, tt.n); got != tt.want {
			t.Errorf("twemPointsFor(%d, %d, %d) = %d, want %d", tt.w, tt.total, tt.n, got, tt.want)
		}
	}
}

func TestEmptyKey(t *testing.T) {
	nodes := nodesN(4)
	for _, h := range Hashes()[1:] {
		r := mustNew(t, nodes, Config{Hash: h})
		// twemproxy hashes an empty key to 0: the first point of the ring.
		if got, want := r.PickString(""), int(r.owner[0]); got != want {
			t.Errorf("%s: empty key on %d, want first point's owner %d", h, got, want)
		}
		rm := mustNew(t, nodes, Config{Hash: h, Distribution: "modula"})
		if got, want := rm.PickString(""), int(rm.order[0]); got != want {
			t.Errorf("%s modula: empty key on %d, want %d", h, got, want)
		}
	}
}

func TestHashFunctions(t *testing.T) {
	// Textbook values.
	check := func(name string, got, want uint32) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %#08x, want %#08x", name, got, want)
		}
	}
	check("crc32a(123456789)", hashCRC32a([]byte("123456789")), 0xcbf43926)
	check("crc32(123456789)", hashCRC32([]byte("123456789")), (0xcbf43926>>16)&0x7fff)
	check("crc16(123456789)&0xffff", hashCRC16([]byte("123456789"))&0xffff, 0x31c3) // CRC-16/XMODEM
	check("one_at_a_time(a)", hashOneAtATime([]byte("a")), 0xca2e9442)
	check("one_at_a_time(fox)", hashOneAtATime([]byte("The quick brown fox jumps over the lazy dog")), 0x519e91f5)
	check("lookup3('',0)", lookup3(nil, 0), 0xdeadbeef)
	check("lookup3('',deadbeef)", lookup3(nil, 0xdeadbeef), 0xbd5b7dde)
	check("lookup3(four score,0)", lookup3([]byte("Four score and seven years ago"), 0), 0x17770551)
	check("lookup3(four score,1)", lookup3([]byte("Four score and seven years ago"), 1), 0xcd628161)
	check("md5('')", hashMD5(nil), 0xd98c1dd4) // d41d8cd9... little endian

	// For ASCII the FNV variants agree with the standard library (the
	// 64-bit ones truncated to 32 bits); bytes >= 0x80 differ, since
	// twemproxy widens them as signed chars.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		k := make([]byte, rng.IntN(40))
		for i := range k {
			k[i] = byte(rng.IntN(0x80))
		}
		h64, h64a, h32, h32a := fnv.New64(), fnv.New64a(), fnv.New32(), fnv.New32a()
		for _, h := range []interface{ Write([]byte) (int, error) }{h64, h64a, h32, h32a} {
			h.Write(k)
		}
		check("fnv1_64", hashFNV1_64(k), uint32(h64.Sum64()))
		check("fnv1a_64", hashFNV1a64(k), uint32(h64a.Sum64()))
		check("fnv1_32", hashFNV1_32(k), h32.Sum32())
		check("fnv1a_32", hashFNV1a32(k), h32a.Sum32())
	}
	h := fnv.New32a()
	h.Write([]byte{0xff})
	if hashFNV1a32([]byte{0xff}) == h.Sum32() {
		t.Error("fnv1a_32 of 0xff matches textbook FNV; twemproxy sign-extends it")
	}

	// The crc16 table is CRC-16/XMODEM's.
	for i, want := range []uint16{0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7, 0x8108} {
		if crc16Table[i] != want {
			t.Errorf("crc16Table[%d] = %#04x, want %#04x", i, crc16Table[i], want)
		}
	}
}

// TestConcurrentPick shares one ring among goroutines (run with -race).
func TestConcurrentPick(t *testing.T) {
	r := mustNew(t, nodesN(20), Config{Hash: "murmur", HashTag: "{}"})
	want := make([]int, 1000)
	for i := range want {
		want[i] = r.PickString(fmt.Sprintf("{k%d}", i))
	}
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range want {
				j := (i + g*97) % len(want)
				if got := r.PickString(fmt.Sprintf("{k%d}", j)); got != want[j] {
					done <- fmt.Errorf("goroutine %d: key %d on %d, want %d", g, j, got, want[j])
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
