package hashring

import (
	"crypto/md5"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// This file holds the twemproxy-compatible key hashes. Each returns the
// 32-bit value that nutcracker 0.5.0 (x86-64, little endian, signed char)
// computes for the same bytes. Several of twemproxy's functions read the
// key through a signed `char`, so a byte >= 0x80 enters the arithmetic
// sign-extended (0x80 -> 0xffffff80); sx32/sx64 reproduce that.

// hashFunc32 is the shape of a twemproxy key hash.
type hashFunc32 func(key []byte) uint32

// twemHashes lists twemproxy's hash names in the order of its HASH_CODEC
// table (src/hashkit/nc_hashkit.h).
var twemHashes = []struct {
	name string
	fn   hashFunc32
}{
	{"one_at_a_time", hashOneAtATime},
	{"md5", hashMD5},
	{"crc16", hashCRC16},
	{"crc32", hashCRC32},
	{"crc32a", hashCRC32a},
	{"fnv1_64", hashFNV1_64},
	{"fnv1a_64", hashFNV1a64},
	{"fnv1_32", hashFNV1_32},
	{"fnv1a_32", hashFNV1a32},
	{"hsieh", hashHsieh},
	{"murmur", hashMurmur},
	{"jenkins", hashJenkins},
}

func lookupTwemHash(name string) hashFunc32 {
	for _, h := range twemHashes {
		if h.name == name {
			return h.fn
		}
	}
	return nil
}

// sx32 widens b the way C widens a signed char to uint32_t.
func sx32(b byte) uint32 { return uint32(int32(int8(b))) }

// sx64 widens b the way C widens a signed char to uint64_t.
func sx64(b byte) uint64 { return uint64(int64(int8(b))) }

const (
	fnv64Init  = 0xcbf29ce484222325
	fnv64Prime = 0x100000001b3
	fnv32Init  = 2166136261
	fnv32Prime = 16777619
)

// hashFNV1_64 is 64-bit FNV-1 over sign-extended bytes, truncated to 32 bits.
func hashFNV1_64(key []byte) uint32 {
	h := uint64(fnv64Init)
	for _, b := range key {
		h *= fnv64Prime
		h ^= sx64(b)
	}
	return uint32(h)
}

// hashFNV1a64 is what twemproxy calls fnv1a_64: despite the name it runs in
// 32 bits, with the 64-bit offset basis and prime truncated to 32 bits
// (0x84222325 and 0x1b3).
func hashFNV1a64(key []byte) uint32 {
	h := uint32(fnv64Init & 0xffffffff)
	for _, b := range key {
		h ^= sx32(b)
		h *= uint32(fnv64Prime & 0xffffffff)
	}
	return h
}

func hashFNV1_32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h *= fnv32Prime
		h ^= sx32(b)
	}
	return h
}

func hashFNV1a32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h ^= sx32(b)
		h *= fnv32Prime
	}
	return h
}

// hashMD5 is the first four bytes of the MD5 digest, little endian.
func hashMD5(key []byte) uint32 {
	sum := md5.Sum(key)
	return binary.LittleEndian.Uint32(sum[:4])
}

// hashCRC32a is the standard CRC-32 (IEEE 802.3).
func hashCRC32a(key []byte) uint32 { return crc32.ChecksumIEEE(key) }

// hashCRC32 is libmemcached's variant: bits 16..30 of the standard CRC-32,
// so only 15 bits of hash.
func hashCRC32(key []byte) uint32 { return (crc32.ChecksumIEEE(key) >> 16) & 0x7fff }

// crc16Table is the CRC-16/XMODEM table (polynomial 0x1021, not reflected).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// hashCRC16 is table-driven CRC-16/XMODEM, except that twemproxy keeps the
// running value in a 32-bit variable and never masks it, so the result's low
// 16 bits are the CRC and its high 16 bits are left-over shifted state.
func hashCRC16(key []byte) uint32 {
	var c uint32
	for _, b := range key {
		c = c<<8 ^ uint32(crc16Table[(c>>8^uint32(b))&0xff])
	}
	return c
}

func hashOneAtATime(key []byte) uint32 {
	var h uint32
	for _, b := range key {
		h += sx32(b)
		h += h << 10
		h ^= h >> 6
	}
	h += h << 3
	h ^= h >> 11
	h += h << 15
	return h
}

// hashMurmur is MurmurHash2 with seed 0xdeadbeef*len, reading 4-byte blocks
// little endian.
func hashMurmur(key []byte) uint32 {
	const m = 0x5bd1e995
	n := uint32(len(key))
	h := (0xdeadbeef * n) ^ n
	for len(key) >= 4 {
		k := binary.LittleEndian.Uint32(key)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		key = key[4:]
	}
	switch len(key) {
	case 3:
		h ^= uint32(key[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

func le16(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 }

// hashHsieh is Paul Hsieh's SuperFastHash as twemproxy builds it on x86-64.
// In the three-byte tail the third byte is read as a signed char.
func hashHsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	var h uint32
	rem := len(key) & 3
	for n := len(key) >> 2; n > 0; n-- {
		h += le16(key)
		tmp := le16(key[2:])<<11 ^ h
		h = h<<16 ^ tmp
		key = key[4:]
		h += h >> 11
	}
	switch rem {
	case 3:
		h += le16(key)
		h ^= h << 16
		h ^= sx32(key[2]) << 18
		h += h >> 11
	case 2:
		h += le16(key)
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(key[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

// hashJenkins is Bob Jenkins' lookup3 hashlittle with initval 13.
func hashJenkins(key []byte) uint32 { return lookup3(key, 13) }

// lookup3 is hashlittle from lookup3.c. twemproxy picks an aligned-word,
// half-word or byte reader depending on the key's address; on a little
// endian machine all three give this same value.
func lookup3(key []byte, initval uint32) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + initval
	b, c := a, a
	for len(key) > 12 {
		a += binary.LittleEndian.Uint32(key[0:])
		b += binary.LittleEndian.Uint32(key[4:])
		c += binary.LittleEndian.Uint32(key[8:])
		// mix
		a -= c
		a ^= bits.RotateLeft32(c, 4)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 6)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 8)
		b += a
		a -= c
		a ^= bits.RotateLeft32(c, 16)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 19)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 4)
		b += a
		key = key[12:]
	}
	if len(key) == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], key)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	// final
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// ketamaPointHash returns the four 32-bit continuum values twemproxy derives
// from one MD5 digest of s ("<name>-<index>"): bytes 4a..4a+3, little endian.
func ketamaPointHashes(s []byte) (v [4]uint32) {
	sum := md5.Sum(s)
	for a := range v {
		v[a] = binary.LittleEndian.Uint32(sum[4*a:])
	}
	return v
}
