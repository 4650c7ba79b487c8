package commands

// HasKeys reports whether c takes key arguments at all: it has a key spec
// that is not not_key, or a getkeys procedure (Redis'
// doesCommandHaveKeys). COMMAND GETKEYS answers "The command has no key
// arguments" for the others, before it looks at the arity.
func (c *Command) HasKeys() bool { return c.hasKeys }

// GetKeys appends to dst the indexes of the keys that COMMAND GETKEYS
// reports on redis-server 7.0 for args (args[0] the command name, as for
// Keys; the caller has checked HasKeys and the arity). It differs from
// Keys where the server's COMMAND GETKEYS differs from what the command
// itself accepts, for it is meant for COMMAND GETKEYS only:
//
//   - key specs are not searched partially: "PFMERGE dest" has no keys
//     (the server answers "Invalid arguments specified for command");
//   - a numkeys argument that the key specs cannot read ("01", "x") is
//     read with atoi(), and a count out of range names no keys, with no
//     error ("EVAL s 5 k" has none; "LMPOP 2 k LEFT" has k and LEFT).
//
// An empty result is what the server answers with an empty array when c
// has FlagNoMandatoryKeys and with "Invalid arguments specified for
// command" otherwise.
func (c *Command) GetKeys(args [][]byte, dst []int) []int {
	if c.IsContainer() && len(args) >= 2 {
		s := c.Sub(args[1])
		if s == nil {
			return dst
		}
		c = s
	}
	if !c.hasKeys {
		return dst
	}
	base := len(dst)
	if c.useSpecs {
		if out, ok := c.specKeys(args, dst, false); ok {
			return out
		}
		dst = dst[:base]
	}
	r := c.rule
	switch {
	case r == nil:
	case r.kind == gkNumkeys:
		// genericGetKeys of db.c.
		if r.count >= len(args) || r.store >= len(args) {
			break
		}
		n := atoi(args[r.count])
		if n < 1 || n > len(args)-r.first {
			break
		}
		for i := 0; i < n; i++ {
			dst = append(dst, r.first+i)
		}
		if r.store > 0 {
			dst = append(dst, r.store)
		}
	default:
		dst = r.keys(args, dst)
	}
	return dst
}

// atoi is C's atoi() as glibc has it: (int)strtol(s, NULL, 10). Leading
// white space, an optional sign, then digits up to the first non-digit;
// an out-of-range value is clamped to the long range, then truncated to
// 32 bits.
func atoi(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	var v uint64
	over := false
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if v > (1<<63-d)/10 {
			over = true
			continue
		}
		v = v*10 + d
	}
	var l int64
	switch {
	case over && neg:
		l = -1 << 63
	case over:
		l = 1<<63 - 1
	case neg:
		l = -int64(v)
	case v > 1<<63-1:
		l = 1<<63 - 1
	default:
		l = int64(v)
	}
	return int(int32(l))
}
