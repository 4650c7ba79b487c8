// Package hashring maps keys to weighted nodes by consistent hashing.
//
// A Ring is built once by New from a node list and a Config and is then
// immutable and safe for concurrent use. Pick and PickString return the
// index, in the slice given to New, of the node that owns a key (-1 for an
// empty ring) without allocating. The package knows nothing of protocols or
// connections: a caller hands in the key it routes on and gets a node index.
//
// # Placements
//
// The default placement (Hash "xxhash64", Distribution "ketama") is this
// package's own ketama-style ring. Each node gets PointsPerWeight (160)
// points per unit of weight; point p of node "name" sits at
// xxhash64("name-p"). A key goes to the owner of the first point at or after
// xxhash64(key), wrapping past the last point to the first. Removing a node
// moves only that node's keys; adding one takes about its weight's share of
// the keys, all from the others; raising a node's weight keeps its old
// points. Lookups go through a table over the top bits of the hash, about
// one bucket per point, then a binary search of the few points in the
// bucket. The ring depends on the nodes' names and weights, not on their
// order in the slice.
//
// Every other Hash name selects twemproxy (nutcracker) compatible placement:
// for the same servers, weights and hash_tag, Pick chooses the server that
// nutcracker 0.5.0 chooses. That lets this proxy front a cache that
// twemproxy filled, or be swapped in for twemproxy, without moving keys.
//
//   - The key hash is one of twemproxy's twelve 32-bit hashes, reimplemented
//     here bit for bit, including their quirks: fnv1a_64 is really a 32-bit
//     FNV-1a with the 64-bit constants truncated; several hashes widen each
//     byte as a signed char, so bytes >= 0x80 hash differently from textbook
//     FNV or one-at-a-time; crc32 keeps only 15 bits (libmemcached's
//     variant), so with ketama it sends nearly every key to one server;
//     crc16 never masks its 32-bit running value. An empty key hashes to 0.
//   - "ketama" builds twemproxy's continuum: a server of weight w out of a
//     total T among n servers gets floorf(w/T*160/4*n + 1e-10)*4 points,
//     computed in single precision as twemproxy does (some weight sets lose
//     four points to float rounding; the golden vectors cover one); each
//     group of four points is the four little-endian words of
//     md5("<name>-<i>"). A key goes to the first point >= hash, wrapping.
//   - "modula" sends a key to slot hash % T of a list in which each server
//     appears weight times, in twemproxy's server order.
//   - twemproxy sorts its servers by name (shorter names first, then
//     bytewise) when it loads its configuration, and its ketama ties and
//     modula slots follow that order, not the order of the configuration
//     file; this package does the same, so Pick's answer does not depend on
//     the order of the nodes either.
//   - The hashed name is the server's given name ("host:port:weight name"),
//     else "host:port", or only "host" when the port is 11211. TwemproxyName
//     forms it. Node.Name must be that name for placement to match.
//   - A pool with one server sends every key to it without hashing.
//
// Hash tags (Config.HashTag, two bytes such as "{}") follow twemproxy's rule
// for every placement: find the first open byte, then the first close byte
// after it; if both exist and at least one byte lies between them, only
// those bytes are hashed, otherwise the whole key is. So "{user1}.a" and
// "{user1}.b" hash "user1", "a{b}c{d}" hashes "b", and "{}x", "x{" and
// "{}{t}" hash the whole key.
//
// # Test vectors
//
// testdata/twemproxy holds where a real nutcracker put 2,580 keys for 25
// pool configurations; internal/gentwemvectors regenerates them by running
// nutcracker and redis-server on loopback ports. A live test repeats the
// check against a running nutcracker on every test run.
package hashring

//go:generate go run ./internal/gentwemvectors -out testdata/twemproxy
