package commands

// Keys appends to dst the indexes into args of every key argument and
// returns the extended slice. args[0] is the command name; for a
// subcommand, pass the subcommand's *Command (or its container: Keys
// then picks the subcommand named by args[1]) with the full args, where
// args[1] is the subcommand.
//
// Keys finds what `COMMAND GETKEYS` finds on redis-server 7.0, the same
// way: it walks the key specs (index or keyword begin-search, range or
// keynum find-keys) and, when a spec is incomplete or fails, or the flags
// vary with the arguments, falls back to a port of the server's getkeys
// procedure for SORT, SORT_RO, MIGRATE, GEORADIUS, GEORADIUSBYMEMBER,
// XREAD, XREADGROUP, SET and BITFIELD. Commands with a numkeys argument
// (EVAL*, FCALL*, ZUNION*, ZINTER*, ZDIFF*, ZINTERCARD, SINTERCARD,
// [B]LMPOP, [B]ZMPOP) are parsed strictly, as the command itself does
// (COMMAND GETKEYS alone falls back to atoi() and reads "01" as 1; see
// GetKeys). A range spec that begins past the last argument names no keys
// when another spec finds some ("PFMERGE dest", which the server runs,
// has its destination key; COMMAND GETKEYS calls it invalid). Not-key
// specs (the shard channel of SPUBLISH/SSUBSCRIBE) are skipped.
//
// Errors: a wrong argument count gives the command's ArityError; a bad
// numkeys (not an integer, negative, zero where a key is required, more
// keys than arguments, or for [B]LMPOP/[B]ZMPOP no argument left for the
// direction) gives the error the command would reply with (see
// Error); a command that takes keys but whose arguments name none
// (XREAD without STREAMS, say) gives ErrSyntax, unless it has
// FlagNoMandatoryKeys. On error, dst is returned unextended.
//
// Keys does not allocate when dst has room for the keys.
func (c *Command) Keys(args [][]byte, dst []int) ([]int, error) {
	if c.IsContainer() && len(args) >= 2 {
		s := c.Sub(args[1])
		if s == nil {
			return dst, ErrUnknownSubcommand
		}
		c = s
	}
	if !c.CheckArity(len(args)) {
		return dst, c.errArity
	}
	if !c.hasKeys {
		return dst, nil
	}
	if c.rule != nil && c.rule.kind == gkNumkeys {
		return c.numkeysKeys(args, dst)
	}
	base := len(dst)
	if c.useSpecs {
		if out, ok := c.specKeys(args, dst, true); ok {
			return c.finish(out, base)
		}
		dst = dst[:base]
	}
	if c.rule != nil {
		dst = c.rule.keys(args, dst)
	}
	return c.finish(dst, base)
}

func (c *Command) finish(dst []int, base int) ([]int, error) {
	if len(dst) == base && c.Flags&FlagNoMandatoryKeys == 0 {
		return dst, c.errNoKeys
	}
	return dst, nil
}

// specKeys is Redis' getKeysUsingKeySpecs. ok is false where Redis
// returns -1 (an invalid or incomplete spec); the caller then falls back
// to the getkeys procedure.
//
// With partial set, a range spec that starts past the last argument names
// no keys instead of invalidating the lookup, as with Redis'
// GET_KEYSPEC_RETURN_PARTIAL: "PFMERGE dest" (no source keys, which the
// command accepts) has its destination key. COMMAND GETKEYS does not
// search partially (it answers "Invalid arguments" there); routing does.
// When no other spec found a key, the lookup still fails, as without
// partial.
func (c *Command) specKeys(args [][]byte, dst []int, partial bool) (_ []int, ok bool) {
	argc := len(args)
	base := len(dst)
	skipped := false
	for i := range c.KeySpecs {
		ks := &c.KeySpecs[i]
		if ks.Flags&KeyNotKey != 0 {
			continue
		}
		first := 0
		switch ks.BeginSearch.Type {
		case BeginSearchIndex:
			first = ks.BeginSearch.Index
			if first < 1 {
				return dst, false
			}
		case BeginSearchKeyword:
			sf := ks.BeginSearch.StartFrom
			start, end := sf, argc-1
			if sf <= 0 {
				start, end = argc+sf, 1
			}
			for j := start; j != end; {
				if j >= argc || j < 1 {
					break
				}
				if equalFold(args[j], ks.BeginSearch.Keyword) {
					first = j + 1
					break
				}
				if start <= end {
					j++
				} else {
					j--
				}
			}
			if first == 0 {
				continue // keyword not found: this spec names no key
			}
		default:
			return dst, false
		}

		var last, step int
		fk := &ks.FindKeys
		switch fk.Type {
		case FindKeysRange:
			if partial && first >= argc {
				skipped = true
				continue
			}
			step = fk.KeyStep
			switch {
			case fk.LastKey >= 0:
				last = first + fk.LastKey
			case fk.Limit == 0:
				last = argc + fk.LastKey
			default:
				last = first + ((argc-first)/fk.Limit + fk.LastKey)
			}
		case FindKeysKeynum:
			step = fk.KeyStep
			idx := first + fk.KeyNumIdx
			if fk.KeyNumIdx < 0 || idx >= argc {
				return dst, false
			}
			n, ok := parseInt(args[idx])
			if !ok || n < 0 || n > int64(argc) {
				return dst, false
			}
			first += fk.FirstKey
			last = first + int(n) - 1
		default:
			return dst, false
		}
		if last >= argc || last < first || first >= argc || step < 1 {
			return dst, false
		}
		for j := first; j <= last; j += step {
			dst = append(dst, j)
		}
		if ks.Flags&KeyIncomplete != 0 {
			return dst, false
		}
	}
	if skipped && len(dst) == base {
		return dst, false
	}
	return dst, true
}

type getkeysKind uint8

const (
	gkNumkeys   getkeysKind = iota + 1 // see numkeysKeys
	gkFirst                            // SET, BITFIELD, SORT_RO: the key at 1
	gkSort                             // SORT ... STORE dst
	gkMigrate                          // MIGRATE ... KEYS k...
	gkGeoradius                        // GEORADIUS[BYMEMBER] ... STORE|STOREDIST dst
	gkXread                            // XREAD[GROUP] ... STREAMS k... id...
)

// numkeysStyle says which errors a numkeys command replies with.
type numkeysStyle uint8

const (
	styleEval   numkeysStyle = iota // EVAL, EVALSHA, *_RO
	styleFcall                      // FCALL, FCALL_RO
	styleSinter                     // SINTERCARD
	styleZset                       // ZUNION, ZINTER, ZDIFF, ZINTERCARD, *STORE
	styleMpop                       // LMPOP, BLMPOP, ZMPOP, BZMPOP
)

// getkeysRule is a command's getkeys procedure in redis-server (db.c).
type getkeysRule struct {
	kind getkeysKind
	// numkeys: index of the destination key (0: none), of numkeys and of
	// the first key.
	store, count, first int
	style               numkeysStyle
}

func nk(store, count, first int, style numkeysStyle) *getkeysRule {
	return &getkeysRule{kind: gkNumkeys, store: store, count: count, first: first, style: style}
}

// getkeysRules lists the commands that have a getkeys procedure in
// redis-server 7.0 (src/commands.c), by name. A test checks that each is
// in the table and flagged movablekeys or has a variable_flags spec.
var getkeysRules = map[string]*getkeysRule{
	"eval":              nk(0, 2, 3, styleEval),
	"evalsha":           nk(0, 2, 3, styleEval),
	"eval_ro":           nk(0, 2, 3, styleEval),
	"evalsha_ro":        nk(0, 2, 3, styleEval),
	"fcall":             nk(0, 2, 3, styleFcall),
	"fcall_ro":          nk(0, 2, 3, styleFcall),
	"sintercard":        nk(0, 1, 2, styleSinter),
	"zunion":            nk(0, 1, 2, styleZset),
	"zinter":            nk(0, 1, 2, styleZset),
	"zdiff":             nk(0, 1, 2, styleZset),
	"zintercard":        nk(0, 1, 2, styleZset),
	"zunionstore":       nk(1, 2, 3, styleZset),
	"zinterstore":       nk(1, 2, 3, styleZset),
	"zdiffstore":        nk(1, 2, 3, styleZset),
	"lmpop":             nk(0, 1, 2, styleMpop),
	"zmpop":             nk(0, 1, 2, styleMpop),
	"blmpop":            nk(0, 2, 3, styleMpop),
	"bzmpop":            nk(0, 2, 3, styleMpop),
	"set":               {kind: gkFirst},
	"bitfield":          {kind: gkFirst},
	"sort_ro":           {kind: gkFirst},
	"sort":              {kind: gkSort},
	"migrate":           {kind: gkMigrate},
	"georadius":         {kind: gkGeoradius},
	"georadiusbymember": {kind: gkGeoradius},
	"xread":             {kind: gkXread},
	"xreadgroup":        {kind: gkXread},
}

// noKeys is the error of c when its arguments name no key.
func (r *getkeysRule) noKeys(c *Command) error {
	switch {
	case r.kind == gkMigrate:
		return ErrMigrateKeys
	case r.kind == gkNumkeys && r.style == styleZset:
		return &CommandError{Msg: "at least 1 input key is needed for '" + c.Name + "' command", Kind: ErrAtLeastOneKey}
	}
	return ErrSyntax
}

// numkeysKeys handles the commands whose keys are counted by a numkeys
// argument, with the checks and error texts of the commands themselves.
func (c *Command) numkeysKeys(args [][]byte, dst []int) ([]int, error) {
	r := c.rule
	if r.count >= len(args) || r.store >= len(args) {
		return dst, c.errArity
	}
	n, ok := parseInt(args[r.count])
	avail := int64(len(args) - r.first)
	switch r.style {
	case styleEval, styleFcall:
		switch {
		case !ok && r.style == styleFcall:
			return dst, ErrBadNumKeys
		case !ok:
			return dst, ErrNotInteger
		case n > avail:
			return dst, ErrNumKeysTooLarge
		case n < 0:
			return dst, ErrNumKeysNegative
		}
	case styleSinter:
		switch {
		case !ok || n < 1:
			return dst, ErrNumKeysNotPositive
		case n > avail:
			return dst, ErrNumKeysTooLarge
		}
	case styleZset:
		switch {
		case !ok:
			return dst, ErrNotInteger
		case n < 1:
			return dst, c.errNoKeys
		case n > avail:
			return dst, ErrSyntax
		}
	case styleMpop:
		// The direction word follows the keys, and the command checks it
		// before it looks at a key: Redis' "where_idx >= argc" check
		// ("LMPOP 2 k LEFT" is a syntax error), then the word itself.
		switch {
		case !ok || n < 1:
			return dst, ErrNumKeysNotPositive
		case n >= avail:
			return dst, ErrSyntax
		case !c.mpopDirection(args[r.first+int(n)]):
			return dst, ErrSyntax
		}
	}
	if r.store > 0 {
		dst = append(dst, r.store)
	}
	for i := 0; i < int(n); i++ {
		dst = append(dst, r.first+i)
	}
	return dst, nil
}

// mpopDirection tells whether w is a direction of c: LEFT or RIGHT for
// [B]LMPOP, MIN or MAX for [B]ZMPOP.
func (c *Command) mpopDirection(w []byte) bool {
	if c.Name == "lmpop" || c.Name == "blmpop" {
		return equalFold(w, "left") || equalFold(w, "right")
	}
	return equalFold(w, "min") || equalFold(w, "max")
}

// keys runs the getkeys procedures of db.c that are not numkeys-based.
func (r *getkeysRule) keys(args [][]byte, dst []int) []int {
	argc := len(args)
	switch r.kind {
	case gkFirst:
		if argc > 1 {
			dst = append(dst, 1)
		}
	case gkSort:
		// sortGetKeys: the sorted key, and the last STORE destination.
		// LIMIT takes 2 arguments, GET and BY one, other options none.
		if argc < 2 {
			break
		}
		dst = append(dst, 1)
		store := 0
		for i := 2; i < argc; i++ {
			switch {
			case equalFold(args[i], "limit"):
				i += 2
			case equalFold(args[i], "store") && i+1 < argc:
				store = i + 1
			case equalFold(args[i], "get"), equalFold(args[i], "by"):
				i++
			}
		}
		if store > 0 {
			dst = append(dst, store)
		}
	case gkMigrate:
		// migrateGetKeys: MIGRATE host port key|"" db timeout [COPY]
		// [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS k...].
		if argc < 4 {
			break
		}
		first, num := 3, 1
		for i := 6; i < argc; i++ {
			a := args[i]
			if equalFold(a, "keys") {
				if len(args[3]) > 0 {
					num = 0 // syntax error: left to the command
				} else {
					first, num = i+1, argc-i-1
				}
				break
			}
			switch {
			case equalFold(a, "auth"):
				i++
			case equalFold(a, "auth2"):
				i += 2
			}
		}
		for i := 0; i < num; i++ {
			dst = append(dst, first+i)
		}
	case gkGeoradius:
		// georadiusGetKeys: the key, and the last STORE/STOREDIST key.
		if argc < 2 {
			break
		}
		dst = append(dst, 1)
		stored := 0
		for i := 5; i < argc; i++ {
			if (equalFold(args[i], "store") || equalFold(args[i], "storedist")) && i+1 < argc {
				stored = i + 1
				i++
			}
		}
		if stored > 0 {
			dst = append(dst, stored)
		}
	case gkXread:
		// xreadGetKeys: options, then STREAMS k1..kN id1..idN.
		streams := -1
	loop:
		for i := 1; i < argc; i++ {
			a := args[i]
			switch {
			case equalFold(a, "block"), equalFold(a, "count"):
				i++
			case equalFold(a, "group"):
				i += 2
			case equalFold(a, "noack"):
			case equalFold(a, "streams"):
				streams = i
				break loop
			default:
				break loop
			}
		}
		if streams < 0 {
			break
		}
		num := argc - streams - 1
		if num == 0 || num%2 != 0 {
			break
		}
		for i := streams + 1; i < streams+1+num/2; i++ {
			dst = append(dst, i)
		}
	}
	return dst
}

// equalFold reports whether b equals the ASCII string s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ParseInt reads an integer argument as Redis does (string2ll): an
// optional '-', then digits with no leading zero (except "0" itself), no
// sign '+', no spaces, within int64.
func ParseInt(b []byte) (int64, bool) { return parseInt(b) }

// parseInt is Redis' string2ll: an optional '-', then digits with no
// leading zero (except "0" itself), no sign '+', no spaces, within int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := uint64(ch - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}
