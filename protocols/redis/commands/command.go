package commands

import "sort"

// Command is one entry of the command table: a command, or a subcommand
// such as "config|get".
type Command struct {
	// Name is the lowercase command name; subcommands are "container|sub".
	Name string
	// Arity counts the command name (and, for subcommands, the
	// subcommand): N >= 0 means exactly N arguments, -N at least N.
	Arity int
	Flags Flag
	// FirstKey, LastKey and Step are the legacy key positions of COMMAND
	// (LastKey negative counts from the end). Keys does not need them; it
	// uses KeySpecs, as Redis does.
	FirstKey, LastKey, Step int
	KeySpecs                []KeySpec
	// ACLCategories are as the server reports them, e.g. "@read".
	ACLCategories []string
	// Tips are the command tips, e.g. "request_policy:all_shards",
	// "response_policy:agg_sum", "nondeterministic_output".
	Tips []string
	// Group and Summary come from COMMAND DOCS ("string", "Get the value
	// of a key"), as do the fields after them.
	Group, Summary  string
	Since           string
	Complexity      string
	DocFlags        []string // "deprecated", "syscmd"
	DeprecatedSince string
	ReplacedBy      string
	// RawInfo2 and RawInfo3 are this command's COMMAND INFO entry, as RESP2
	// and as RESP3 bytes, subcommands included (sorted by name). A reply to
	// COMMAND or COMMAND INFO is "*<n>\r\n" followed by n raw entries; the
	// server answers an unknown name in COMMAND INFO with "$-1\r\n" (RESP2)
	// or "_\r\n" (RESP3).
	RawInfo2, RawInfo3 string
	// Subcommands are sorted by name.
	Subcommands []*Command

	// Filled by init from the fields above and from getkeysRules.
	parent    *Command
	subIndex  nameTable    // "get" -> config|get
	hasKeys   bool         // Redis' doesCommandHaveKeys
	useSpecs  bool         // a non-not_key spec and no variable_flags spec
	rule      *getkeysRule // the command's getkeys procedure, if any
	errArity  error
	errNoKeys error // when keys were expected and none were found
}

// Has tells whether c has every flag of f.
func (c *Command) Has(f Flag) bool { return c.Flags&f == f }

// CheckArity tells whether n arguments (the command name included) satisfy
// c's arity: exactly Arity when Arity >= 0, at least -Arity otherwise.
func (c *Command) CheckArity(n int) bool {
	if c.Arity >= 0 {
		return n == c.Arity
	}
	return n >= -c.Arity
}

// Parent returns the container of a subcommand ("config" for
// "config|get"), or nil.
func (c *Command) Parent() *Command { return c.parent }

// IsContainer tells whether c has subcommands (and no behaviour of its own).
func (c *Command) IsContainer() bool { return len(c.Subcommands) > 0 }

// ArityError returns c's "wrong number of arguments for 'name' command"
// error, as Redis words it.
func (c *Command) ArityError() error { return c.errArity }

// BeginSearchType says how a key spec finds its first key.
type BeginSearchType uint8

// Begin-search types.
const (
	BeginSearchInvalid BeginSearchType = iota
	BeginSearchUnknown                 // keys cannot be found from the spec
	BeginSearchIndex                   // at BeginSearch.Index
	BeginSearchKeyword                 // after BeginSearch.Keyword
)

// BeginSearch is the begin_search part of a key spec.
type BeginSearch struct {
	Type BeginSearchType
	// Index is the argument index of the first key (BeginSearchIndex).
	Index int
	// Keyword is searched for, case-insensitively, from index StartFrom
	// (backwards from the end when negative); the key follows it
	// (BeginSearchKeyword).
	Keyword   string
	StartFrom int
}

// FindKeysType says how a key spec finds the keys after the first.
type FindKeysType uint8

// Find-keys types.
const (
	FindKeysInvalid FindKeysType = iota
	FindKeysUnknown              // keys cannot be found from the spec
	FindKeysRange                // LastKey, KeyStep, Limit
	FindKeysKeynum               // KeyNumIdx, FirstKey, KeyStep
)

// FindKeys is the find_keys part of a key spec.
type FindKeys struct {
	Type FindKeysType
	// Range: LastKey is relative to the first key (negative: from the
	// end of the arguments); when LastKey is -1 and Limit > 1, only
	// 1/Limit of the remaining arguments are keys.
	LastKey, KeyStep, Limit int
	// Keynum: the number of keys is at KeyNumIdx relative to the first
	// key position, the keys start FirstKey after it.
	KeyNumIdx, FirstKey int
}

// KeySpec is one key specification of a command.
type KeySpec struct {
	Flags       KeySpecFlag
	BeginSearch BeginSearch
	FindKeys    FindKeys
	Notes       string
}

// The indexes are built by variable initializers rather than init, so
// that Go's initialization order runs them before any package-level
// variable that uses Lookup or All (in tests, say).
var (
	all    = prepareAll(table)                                                     // sorted top-level commands
	byName = newNameTable(all, func(c *Command) string { return c.Name })          // top-level commands by name
	byFull = newNameTable(flatten(all), func(c *Command) string { return c.Name }) // commands and subcommands by full name ("config|get")
)

func prepareAll(table []*Command) []*Command {
	out := append([]*Command(nil), table...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for _, c := range out {
		prepare(c, nil)
		for _, s := range c.Subcommands {
			prepare(s, c)
		}
	}
	return out
}

func flatten(cmds []*Command) []*Command {
	var out []*Command
	for _, c := range cmds {
		out = append(out, c)
		out = append(out, c.Subcommands...)
	}
	return out
}

func prepare(c *Command, parent *Command) {
	c.parent = parent
	sort.Slice(c.Subcommands, func(i, j int) bool { return c.Subcommands[i].Name < c.Subcommands[j].Name })
	if len(c.Subcommands) > 0 {
		c.subIndex = newNameTable(c.Subcommands, func(s *Command) string { return s.Name[len(c.Name)+1:] })
	}

	// As redis-server's getKeysFromCommandWithSpecs: key specs are used
	// when one of them is a real key (not not_key) and none has
	// variable_flags; otherwise the getkeys procedure decides.
	var hasKeySpec, varFlags bool
	for _, ks := range c.KeySpecs {
		hasKeySpec = hasKeySpec || ks.Flags&KeyNotKey == 0
		varFlags = varFlags || ks.Flags&KeyVariableFlags != 0
	}
	c.rule = getkeysRules[c.Name]
	c.useSpecs = hasKeySpec && !varFlags
	c.hasKeys = c.rule != nil || hasKeySpec
	c.errArity = &CommandError{Msg: "wrong number of arguments for '" + c.Name + "' command", Kind: ErrWrongArity}
	c.errNoKeys = ErrSyntax
	if c.rule != nil {
		c.errNoKeys = c.rule.noKeys(c)
	}
}

// nameTable is an open-addressing hash table from lowercase names to
// commands. Its hash samples a few bytes of the name with ASCII letters
// folded to lowercase, so a lookup neither copies nor lowercases the name;
// the table is kept at most a quarter full, so most lookups probe once.
// It took about 0.6x the CPU time of lowercasing into a stack buffer and
// indexing a map (BenchmarkLookup, names of 3 to 20 bytes).
type nameTable struct {
	mask  uint32
	slots []nameSlot
}

type nameSlot struct {
	key string
	cmd *Command
}

func newNameTable(cmds []*Command, key func(*Command) string) nameTable {
	size := 8
	for size < 4*len(cmds) {
		size *= 2
	}
	t := nameTable{mask: uint32(size - 1), slots: make([]nameSlot, size)}
	for _, c := range cmds {
		k := key(c)
		if k == "" || t.getString(k) != nil {
			panic("commands: empty or duplicate command name " + k)
		}
		i := nameHash(k) & t.mask
		for t.slots[i].cmd != nil {
			i = (i + 1) & t.mask
		}
		t.slots[i] = nameSlot{key: k, cmd: c}
	}
	return t
}

// nameHash hashes the length and six sampled bytes of a non-empty name,
// ignoring ASCII case (|0x20 also maps a few other bytes together, which
// only costs a probe). Both variants must agree.
func nameHash(s string) uint32 {
	n := len(s)
	w := uint64(n) | uint64(s[0]|0x20)<<8 | uint64(s[n-1]|0x20)<<16 | uint64(s[n/2]|0x20)<<24 |
		uint64(s[min(1, n-1)]|0x20)<<32 | uint64(s[max(n-2, 0)]|0x20)<<40 |
		uint64(s[n*3/4]|0x20)<<48 | uint64(s[n/4]|0x20)<<56
	return uint32((w * 0x9E3779B97F4A7C15) >> 32)
}

func nameHashBytes(s []byte) uint32 {
	n := len(s)
	w := uint64(n) | uint64(s[0]|0x20)<<8 | uint64(s[n-1]|0x20)<<16 | uint64(s[n/2]|0x20)<<24 |
		uint64(s[min(1, n-1)]|0x20)<<32 | uint64(s[max(n-2, 0)]|0x20)<<40 |
		uint64(s[n*3/4]|0x20)<<48 | uint64(s[n/4]|0x20)<<56
	return uint32((w * 0x9E3779B97F4A7C15) >> 32)
}

func (t *nameTable) get(name []byte) *Command {
	if len(name) == 0 || len(t.slots) == 0 {
		return nil
	}
	for i := nameHashBytes(name) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.cmd == nil {
			return nil
		}
		if len(s.key) == len(name) && foldEqual(name, s.key) {
			return s.cmd
		}
	}
}

func (t *nameTable) getString(name string) *Command {
	if len(name) == 0 || len(t.slots) == 0 {
		return nil
	}
	for i := nameHash(name) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.cmd == nil {
			return nil
		}
		if len(s.key) == len(name) && foldEqualString(name, s.key) {
			return s.cmd
		}
	}
}

// foldEqual reports whether b, ASCII-lowercased, equals key (lowercase,
// same length).
func foldEqual(b []byte, key string) bool {
	for i := 0; i < len(key); i++ {
		x := b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != key[i] {
			return false
		}
	}
	return true
}

func foldEqualString(b string, key string) bool {
	for i := 0; i < len(key); i++ {
		x := b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != key[i] {
			return false
		}
	}
	return true
}

// All returns every top-level command, sorted by name. The slice is
// shared: do not modify it.
func All() []*Command { return all }

// Count returns the number of top-level commands (COMMAND COUNT).
func Count() int { return len(all) }

// Lookup returns the top-level command named name, case-insensitively, or
// nil, as Redis looks up argv[0]: "config|get" is not found here (see
// LookupFullName). It does not allocate.
func Lookup(name []byte) *Command { return byName.get(name) }

// LookupString is Lookup for a string.
func LookupString(name string) *Command { return byName.getString(name) }

// LookupFullName finds commands and subcommands by their full name
// ("get", "CONFIG|GET"), case-insensitively, as COMMAND INFO and COMMAND
// DOCS take them. It does not allocate.
func LookupFullName(name string) *Command { return byFull.getString(name) }

// Sub returns the subcommand of c named arg ("get" for config|get),
// case-insensitively, or nil. It does not allocate.
func (c *Command) Sub(arg []byte) *Command {
	if c == nil {
		return nil
	}
	return c.subIndex.get(arg)
}

// SubString is Sub for a string.
func (c *Command) SubString(arg string) *Command {
	if c == nil {
		return nil
	}
	return c.subIndex.getString(arg)
}

// Resolve returns the command args invokes, as Redis finds it: the
// command named args[0] or, for a container given more arguments, its
// subcommand named args[1]. A container given no other argument is
// returned itself (COMMAND runs alone; CONFIG then fails its arity
// check). It returns nil when the command or subcommand is unknown.
func Resolve(args [][]byte) *Command {
	if len(args) == 0 {
		return nil
	}
	c := Lookup(args[0])
	if c == nil || !c.IsContainer() || len(args) == 1 {
		return c
	}
	return c.Sub(args[1])
}
