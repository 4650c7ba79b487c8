package hashring

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Node is one member of the ring.
type Node struct {
	// Name is what is hashed to place the node's points. For twemproxy
	// compatibility it must be the name twemproxy hashes: the server's given
	// name, or "host:port" (just "host" when the port is 11211); see
	// TwemproxyName.
	Name string
	// Weight is the node's share, >= 1; 0 is treated as 1.
	Weight int
}

// Config selects the hash, the distribution and the hash tag.
type Config struct {
	// Hash is "" or "xxhash64" (the default), or one of twemproxy's hashes:
	// "fnv1a_64", "fnv1_64", "fnv1a_32", "fnv1_32", "md5", "crc16",
	// "crc32", "crc32a", "murmur", "one_at_a_time", "hsieh", "jenkins".
	Hash string
	// Distribution is "" or "ketama" (the default), or "modula".
	Distribution string
	// HashTag is "" for none, or exactly two bytes such as "{}": when a key
	// holds the first byte and, after it, the second byte with at least one
	// byte between them, only the bytes between are hashed.
	HashTag string
}

// Names of the settings' values.
const (
	HashXXHash64       = "xxhash64"
	DistributionKetama = "ketama"
	DistributionModula = "modula"
)

// PointsPerWeight is the number of points the default (xxhash64) ketama ring
// gives each unit of a node's weight. As in libketama and twemproxy, 160
// points keep each node's share of the key space within a few percent of its
// weight's share (the spread of a node's share is about 1/sqrt(160), 8%, of
// the share) at 12 bytes a point.
const PointsPerWeight = 160

// MaxPoints bounds the default ring: the sum of the weights times
// PointsPerWeight may not exceed it (26214 weight units).
const MaxPoints = 1 << 22

// ErrConfig is wrapped by every error New returns; the error's text names
// the setting and the bad value.
var ErrConfig = errors.New("hashring: invalid configuration")

type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return ErrConfig }

func configErrorf(format string, a ...any) error {
	return &configError{"hashring: " + fmt.Sprintf(format, a...)}
}

// Hashes returns the names accepted for Config.Hash ("" is accepted too and
// means the first, "xxhash64").
func Hashes() []string {
	out := make([]string, 0, 1+len(twemHashes))
	out = append(out, HashXXHash64)
	for _, h := range twemHashes {
		out = append(out, h.name)
	}
	return out
}

// Distributions returns the names accepted for Config.Distribution ("" is
// accepted too and means "ketama").
func Distributions() []string {
	return []string{DistributionKetama, DistributionModula}
}

// TwemproxyName returns the name twemproxy hashes for a server written as
// "host:port:weight [alias]" in its configuration: the alias when there is
// one, otherwise "host:port", or just "host" when the port is 11211 (kept
// for libmemcached compatibility).
func TwemproxyName(host string, port int, alias string) string {
	switch {
	case alias != "":
		return alias
	case port == 11211:
		return host
	default:
		return host + ":" + strconv.Itoa(port)
	}
}

const (
	kindContinuum = iota // ketama: first point >= hash, wrapping
	kindModula           // slot = hash % total weight
)

// Ring maps keys to nodes. It is immutable after New and safe for
// concurrent use.
type Ring struct {
	n      int
	kind   uint8
	tagged bool
	tag    [2]byte
	twem   hashFunc32 // nil: xxhash64

	// Continuum: points sorted ascending, owner[i] is the node index of
	// points[i]. table[b] is the index of the first point whose top bits
	// (hash >> shift) are >= b, and table[len(table)-1] == len(points): the
	// point that answers hash h is in points[table[b]:table[b+1]] for
	// b = h >> shift, or else is points[table[b+1]] (wrapping to 0).
	points []uint64
	owner  []int32
	table  []uint32
	shift  uint

	// Modula: cum[i] is the total weight of the first i+1 nodes in
	// twemproxy's server order, order[i] the node index at that position.
	cum   []uint64
	order []int32
}

// New builds a ring over nodes. Pick returns indexes into nodes. An empty
// node list is allowed; Pick then returns -1.
func New(nodes []Node, cfg Config) (*Ring, error) {
	r := &Ring{n: len(nodes)}

	switch cfg.Hash {
	case "", HashXXHash64:
	default:
		r.twem = lookupTwemHash(cfg.Hash)
		if r.twem == nil {
			return nil, configErrorf("unknown hash %q (want one of %q)", cfg.Hash, Hashes())
		}
	}
	switch cfg.Distribution {
	case "", DistributionKetama:
		r.kind = kindContinuum
	case DistributionModula:
		r.kind = kindModula
	default:
		return nil, configErrorf("unknown distribution %q (want one of %q)", cfg.Distribution, Distributions())
	}
	switch len(cfg.HashTag) {
	case 0:
	case 2:
		r.tagged = true
		r.tag = [2]byte{cfg.HashTag[0], cfg.HashTag[1]}
	default:
		return nil, configErrorf("hash tag %q must be empty or exactly two bytes", cfg.HashTag)
	}

	weights := make([]uint64, len(nodes))
	var total uint64
	seen := make(map[string]int, len(nodes))
	for i, nd := range nodes {
		if nd.Name == "" {
			return nil, configErrorf("node %d has an empty name", i)
		}
		if j, dup := seen[nd.Name]; dup {
			return nil, configErrorf("nodes %d and %d have the same name %q", j, i, nd.Name)
		}
		seen[nd.Name] = i
		switch {
		case nd.Weight < 0:
			return nil, configErrorf("node %q has negative weight %d", nd.Name, nd.Weight)
		case nd.Weight > math.MaxInt32:
			return nil, configErrorf("node %q has weight %d, above %d", nd.Name, nd.Weight, math.MaxInt32)
		case nd.Weight == 0:
			weights[i] = 1
		default:
			weights[i] = uint64(nd.Weight)
		}
		total += weights[i]
	}
	if total > math.MaxUint32 {
		// twemproxy sums weights in a uint32.
		return nil, configErrorf("total weight %d is above %d", total, uint64(math.MaxUint32))
	}
	if len(nodes) == 0 {
		return r, nil
	}

	switch {
	case r.kind == kindModula:
		r.buildModula(nodes, weights)
	case r.twem != nil:
		r.buildTwemKetama(nodes, weights, total)
	default:
		if total*PointsPerWeight > MaxPoints {
			return nil, configErrorf("total weight %d gives more than %d ring points (%d per weight unit)",
				total, MaxPoints, PointsPerWeight)
		}
		r.buildDefault(nodes, weights, total)
	}
	return r, nil
}

// Len returns the number of nodes.
func (r *Ring) Len() int { return r.n }

// Pick returns the index (into the nodes given to New) of the node that owns
// key, or -1 when the ring has no nodes. It does not allocate.
func (r *Ring) Pick(key []byte) int {
	if r.n <= 1 {
		// twemproxy skips hashing for a single server, and so may we.
		return r.n - 1
	}
	if r.tagged {
		key = r.hashPart(key)
	}
	var h uint64
	if r.twem == nil {
		h = xxhash.Sum64(key)
	} else if len(key) > 0 {
		// twemproxy hashes an empty key to 0 without calling the hash.
		h = uint64(r.twem(key))
	}
	if r.kind == kindModula {
		return r.modula(h)
	}
	return r.search(h)
}

// PickString is Pick for a string key. It does not allocate.
func (r *Ring) PickString(key string) int {
	// The hashes only read the key, so viewing the string's bytes is safe.
	return r.Pick(unsafe.Slice(unsafe.StringData(key), len(key)))
}

// hashPart returns the part of key between the hash tag's bytes, following
// twemproxy's server_pool_idx: the first open byte anywhere, then the first
// close byte after it; with nothing between them, or no close byte, the
// whole key.
func (r *Ring) hashPart(key []byte) []byte {
	i := bytes.IndexByte(key, r.tag[0])
	if i < 0 {
		return key
	}
	j := bytes.IndexByte(key[i+1:], r.tag[1])
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

func (r *Ring) search(h uint64) int {
	b := h >> r.shift
	lo, hi := int(r.table[b]), int(r.table[b+1])
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.points[mid] < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(r.points) {
		lo = 0
	}
	return int(r.owner[lo])
}

func (r *Ring) modula(h uint64) int {
	slot := h % r.cum[len(r.cum)-1]
	// The first position whose running total exceeds slot.
	lo, hi := 0, len(r.cum)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.cum[mid] <= slot {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return int(r.order[lo])
}

// twemOrder returns node indexes in the order twemproxy keeps its servers
// after loading its configuration: sorted by name, shorter names first, then
// bytewise (conf_validate_server sorts with string_compare).
func twemOrder(nodes []Node) []int32 {
	order := make([]int32, len(nodes))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		x, y := nodes[a].Name, nodes[b].Name
		if c := cmp.Compare(len(x), len(y)); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	return order
}

func (r *Ring) buildModula(nodes []Node, weights []uint64) {
	// The default ring has no twemproxy order to follow, but using the same
	// one keeps modula independent of the order nodes are listed in.
	r.order = twemOrder(nodes)
	r.cum = make([]uint64, len(nodes))
	var sum uint64
	for i, idx := range r.order {
		sum += weights[idx]
		r.cum[i] = sum
	}
}

// Twemproxy's ketama constants (src/hashkit/nc_ketama.c).
const (
	twemPointsPerServer = 160
	twemPointsPerHash   = 4
	twemMaxHostLen      = 273 // snprintf buffer, including the NUL
)

// twemPointsFor returns how many continuum points twemproxy gives a server
// of weight w out of total among n servers:
// floorf(pct*160/4*n + 1e-10) * 4, with pct = (float)w/(float)total. The
// arithmetic is single precision, each step rounded, and the 1e-10 is added
// in double precision and rounded back to float, where it usually vanishes.
// Reproducing the rounding matters: with weights 1,2,3 the product lands a
// hair above or below a whole number of hashes.
func twemPointsFor(w, total uint64, n int) int {
	pct := float32(w) / float32(total)
	x := float32(pct * float32(twemPointsPerServer))
	x = float32(x / float32(4))
	x = float32(x * float32(n))
	x = float32(float64(x) + 0.0000000001)
	x = float32(math.Floor(float64(x)))
	return int(uint32(float32(x * 4)))
}

func (r *Ring) buildTwemKetama(nodes []Node, weights []uint64, total uint64) {
	order := twemOrder(nodes)
	type point struct {
		v   uint32
		idx int32
	}
	pts := make([]point, 0, twemPointsPerServer*len(nodes))
	buf := make([]byte, 0, twemMaxHostLen+16)
	for _, idx := range order {
		per := twemPointsFor(weights[idx], total, len(nodes))
		for p := 0; p < per/twemPointsPerHash; p++ {
			buf = append(buf[:0], nodes[idx].Name...)
			buf = append(buf, '-')
			buf = strconv.AppendUint(buf, uint64(p), 10)
			if len(buf) >= twemMaxHostLen {
				// snprintf truncated to the buffer (twemproxy logs an error).
				buf = buf[:twemMaxHostLen-1]
			}
			for _, v := range ketamaPointHashes(buf) {
				pts = append(pts, point{v, idx})
			}
		}
	}
	// Stable: equal values stay in server order, as glibc's qsort (a merge
	// sort when memory allows) leaves them.
	slices.SortStableFunc(pts, func(a, b point) int { return cmp.Compare(a.v, b.v) })
	r.points = make([]uint64, len(pts))
	r.owner = make([]int32, len(pts))
	for i, p := range pts {
		r.points[i] = uint64(p.v)
		r.owner[i] = p.idx
	}
	r.buildTable(32)
}

func (r *Ring) buildDefault(nodes []Node, weights []uint64, total uint64) {
	type point struct {
		v   uint64
		idx int32
	}
	pts := make([]point, 0, total*PointsPerWeight)
	buf := make([]byte, 0, 64)
	for i, nd := range nodes {
		per := weights[i] * PointsPerWeight
		for p := uint64(0); p < per; p++ {
			buf = append(buf[:0], nd.Name...)
			buf = append(buf, '-')
			buf = strconv.AppendUint(buf, p, 10)
			pts = append(pts, point{xxhash.Sum64(buf), int32(i)})
		}
	}
	// Ties (vanishingly rare in 64 bits) go to the smaller name, so the
	// ring does not depend on the order nodes are listed in.
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.v, b.v); c != 0 {
			return c
		}
		return cmp.Compare(nodes[a.idx].Name, nodes[b.idx].Name)
	})
	r.points = make([]uint64, len(pts))
	r.owner = make([]int32, len(pts))
	for i, p := range pts {
		r.points[i] = p.v
		r.owner[i] = p.idx
	}
	r.buildTable(64)
}

// buildTable fills the bucket index over the top bits of a width-bit hash,
// with about one bucket per point, so a lookup touches one or two points.
func (r *Ring) buildTable(width uint) {
	k := uint(bits.Len(uint(len(r.points))))
	if k > width {
		k = width
	}
	r.shift = width - k
	nb := 1 << k
	r.table = make([]uint32, nb+1)
	i := 0
	for b := range nb {
		for i < len(r.points) && r.points[i]>>r.shift < uint64(b) {
			i++
		}
		r.table[b] = uint32(i)
	}
	r.table[nb] = uint32(len(r.points))
}
