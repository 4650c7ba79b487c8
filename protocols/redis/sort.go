package redis

import (
	"bytes"

	"github.com/ambassador-proxy/ambassador/protocols/redis/commands"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// SORT and SORT_RO look up the keys their BY and GET patterns name on the
// node that runs them, the sorted key's. With more than one node those
// keys may live elsewhere and the reply would be silently wrong, so, as
// Redis Cluster does, the ambassador refuses a BY or GET pattern that
// names keys ("weight_*": a pattern with a '*'), unless the pattern's hash
// tag, before its '*' so that the substituted element cannot change it,
// puts every key it names on the sorted key's node ("w{u1}_*" for the
// key "{u1}list"). BY without a '*' (BY nosort) sorts nothing, GET # is
// the element itself and GET without a '*' names no key (Redis answers
// nil): those pass.
const (
	errSortBy  = "ERR BY option of SORT denied by the ambassador: with several nodes the keys of the pattern may live on another node than the sorted key (a hash tag before the pattern's '*' that places them on the sorted key's node is allowed)"
	errSortGet = "ERR GET option of SORT denied by the ambassador: with several nodes the keys of the pattern may live on another node than the sorted key (a hash tag before the pattern's '*' that places them on the sorted key's node is allowed)"
)

// hSort runs SORT and SORT_RO by their keys, as hKeyed, once their
// patterns are checked.
func hSort(c *client, rt *route, cmd resp.Command, start int) {
	if msg := c.sortPatternError(cmd.Args); msg != "" {
		c.localError(msg)
		return
	}
	hKeyed(c, rt, cmd, start)
}

// sortPatternError returns the error for a SORT or SORT_RO whose BY or
// GET pattern names keys that may be on another node than the sorted
// key, or "". It reads the options as Redis does, in order: at an option
// Redis would refuse (a bad LIMIT, an unknown word), it stops and lets
// the node answer, as Redis Cluster answers the first error it meets.
func (c *client) sortPatternError(args [][]byte) string {
	if len(args) < 2 || len(c.f.cl.Nodes()) < 2 {
		return ""
	}
	readonly := bytes.EqualFold(args[0], []byte("sort_ro"))
	is := func(b []byte, s string) bool { return bytes.EqualFold(b, []byte(s)) }
	for j := 2; j < len(args); j++ {
		left := len(args) - j - 1
		a := args[j]
		switch {
		case is(a, "asc"), is(a, "desc"), is(a, "alpha"):
		case is(a, "limit") && left >= 2:
			if _, ok := commands.ParseInt(args[j+1]); !ok {
				return ""
			}
			if _, ok := commands.ParseInt(args[j+2]); !ok {
				return ""
			}
			j += 2
		case !readonly && is(a, "store") && left >= 1:
			j++
		case is(a, "by") && left >= 1:
			if !c.patternOnKeyNode(args[1], args[j+1]) {
				return errSortBy
			}
			j++
		case is(a, "get") && left >= 1:
			if !c.patternOnKeyNode(args[1], args[j+1]) {
				return errSortGet
			}
			j++
		default:
			return ""
		}
	}
	return ""
}

// patternOnKeyNode tells whether every key a SORT pattern names is on
// key's node: the pattern names none (no '*'), or the part before its
// '*' holds a whole hash tag (with the ring's tag bytes, as the ring
// finds it: the first open byte, then the first close byte after it, with
// at least one byte between) that places it there.
func (c *client) patternOnKeyNode(key, pattern []byte) bool {
	star := bytes.IndexByte(pattern, '*')
	if star < 0 {
		return true
	}
	tag := c.f.cfg().HashTag
	if len(tag) != 2 {
		return false
	}
	prefix := pattern[:star]
	i := bytes.IndexByte(prefix, tag[0])
	if i < 0 {
		return false
	}
	if j := bytes.IndexByte(prefix[i+1:], tag[1]); j <= 0 {
		return false
	}
	kn, _ := c.f.cl.PickKey(key)
	pn, _ := c.f.cl.PickKey(prefix)
	return kn != nil && kn == pn
}
