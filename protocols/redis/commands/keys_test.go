package commands

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ambassador-proxy/ambassador/protocols/redis/commands/internal/redisserver"
)

// keysCorpus is a set of realistic command lines, every command group and
// every command with movable keys among them. TestKeysMatchServer checks
// Keys against the server's COMMAND GETKEYS for each.
var keysCorpus = []string{
	// string
	"GET k1",
	"SET k1 v",
	"SET k1 v GET",
	"set k1 v ex 10 nx",
	"SETNX k1 v",
	"SETEX k1 10 v",
	"PSETEX k1 100 v",
	"GETSET k1 v",
	"GETDEL k1",
	"GETEX k1 PERSIST",
	"GETRANGE k1 0 -1",
	"SETRANGE k1 0 v",
	"APPEND k1 v",
	"STRLEN k1",
	"INCR k1",
	"INCRBY k1 5",
	"INCRBYFLOAT k1 1.5",
	"DECR k1",
	"DECRBY k1 2",
	"MGET k1 k2 k3",
	"MGET k1 k1",
	"MSET k1 v1 k2 v2 k3 v3",
	"MSETNX k1 v1 k2 v2",
	"LCS k1 k2 LEN",
	"SUBSTR k1 0 2",
	// list
	"LPUSH l1 a b c",
	"RPUSH l1 a",
	"LPUSHX l1 a",
	"RPUSHX l1 a",
	"LPOP l1",
	"RPOP l1 2",
	"LLEN l1",
	"LRANGE l1 0 -1",
	"LINDEX l1 0",
	"LSET l1 0 v",
	"LINSERT l1 BEFORE a b",
	"LREM l1 0 a",
	"LTRIM l1 0 10",
	"LPOS l1 a RANK 1",
	"RPOPLPUSH l1 l2",
	"LMOVE l1 l2 LEFT RIGHT",
	"BLMOVE l1 l2 LEFT RIGHT 0",
	"BRPOPLPUSH l1 l2 0",
	"BLPOP l1 l2 l3 0",
	"BRPOP l1 0",
	"LMPOP 2 l1 l2 LEFT",
	"lmpop 1 l1 right count 3",
	"BLMPOP 0 3 l1 l2 l3 LEFT COUNT 2",
	"BLMPOP 1.5 1 l1 RIGHT",
	// set
	"SADD s1 a b",
	"SREM s1 a",
	"SMEMBERS s1",
	"SISMEMBER s1 a",
	"SMISMEMBER s1 a b",
	"SCARD s1",
	"SPOP s1",
	"SRANDMEMBER s1 2",
	"SMOVE s1 s2 a",
	"SINTER s1 s2 s3",
	"SINTERSTORE d s1 s2",
	"SUNION s1 s2",
	"SUNIONSTORE d s1 s2 s3",
	"SDIFF s1 s2",
	"SDIFFSTORE d s1",
	"SINTERCARD 2 s1 s2",
	"SINTERCARD 3 s1 s2 s3 LIMIT 5",
	"SINTERCARD 1 s1",
	"SSCAN s1 0 MATCH x* COUNT 10",
	// sorted set
	"ZADD z1 1 a 2 b",
	"ZADD z1 XX GT CH 1 a",
	"ZINCRBY z1 1 a",
	"ZREM z1 a b",
	"ZCARD z1",
	"ZCOUNT z1 -inf +inf",
	"ZSCORE z1 a",
	"ZMSCORE z1 a b",
	"ZRANK z1 a",
	"ZREVRANK z1 a",
	"ZRANGE z1 0 -1 WITHSCORES",
	"ZRANGE z1 (1 5 BYSCORE LIMIT 0 10",
	"ZRANGESTORE d z1 0 -1",
	"ZREVRANGE z1 0 -1",
	"ZRANGEBYSCORE z1 -inf +inf",
	"ZREVRANGEBYLEX z1 + -",
	"ZLEXCOUNT z1 - +",
	"ZREMRANGEBYRANK z1 0 1",
	"ZREMRANGEBYSCORE z1 0 1",
	"ZREMRANGEBYLEX z1 [a [b",
	"ZPOPMIN z1",
	"ZPOPMAX z1 2",
	"BZPOPMIN z1 z2 0",
	"BZPOPMAX z1 0",
	"ZRANDMEMBER z1 2 WITHSCORES",
	"ZUNIONSTORE d 2 z1 z2 WEIGHTS 1 2",
	"ZINTERSTORE d 3 z1 z2 z3 AGGREGATE MAX",
	"ZDIFFSTORE d 2 z1 z2",
	"ZUNION 2 z1 z2 WITHSCORES",
	"ZINTER 1 z1",
	"ZDIFF 3 z1 z2 z3",
	"ZINTERCARD 2 z1 z2 LIMIT 10",
	"ZMPOP 2 z1 z2 MIN",
	"ZMPOP 1 z1 MAX COUNT 2",
	"BZMPOP 0 2 z1 z2 MIN",
	"ZSCAN z1 0",
	// hash
	"HSET h1 f v f2 v2",
	"HSETNX h1 f v",
	"HGET h1 f",
	"HMGET h1 f f2",
	"HMSET h1 f v",
	"HDEL h1 f",
	"HEXISTS h1 f",
	"HLEN h1",
	"HKEYS h1",
	"HVALS h1",
	"HGETALL h1",
	"HINCRBY h1 f 1",
	"HINCRBYFLOAT h1 f 1.5",
	"HSTRLEN h1 f",
	"HRANDFIELD h1 2",
	"HSCAN h1 0",
	// stream
	"XADD st1 * f v",
	"XADD st1 MAXLEN ~ 100 * f v",
	"XLEN st1",
	"XRANGE st1 - +",
	"XREVRANGE st1 + - COUNT 1",
	"XDEL st1 1-1",
	"XTRIM st1 MAXLEN 10",
	"XREAD STREAMS st1 0",
	"XREAD COUNT 10 BLOCK 100 STREAMS st1 st2 0 0",
	"XREAD STREAMS streams 0",
	"xread count 1 streams a b c",
	"XREADGROUP GROUP g c STREAMS st1 >",
	"XREADGROUP GROUP g c COUNT 1 NOACK STREAMS st1 st2 > >",
	"XGROUP CREATE st1 g $ MKSTREAM",
	"XGROUP DESTROY st1 g",
	"XGROUP CREATECONSUMER st1 g c",
	"XGROUP DELCONSUMER st1 g c",
	"XGROUP SETID st1 g 0",
	"XACK st1 g 1-1",
	"XPENDING st1 g",
	"XCLAIM st1 g c 0 1-1",
	"XAUTOCLAIM st1 g c 0 0",
	"XINFO STREAM st1",
	"XINFO GROUPS st1",
	"XINFO CONSUMERS st1 g",
	"XSETID st1 1-1",
	// geo
	"GEOADD g1 13.36 38.11 Palermo",
	"GEODIST g1 a b km",
	"GEOHASH g1 a",
	"GEOPOS g1 a b",
	"GEOSEARCH g1 FROMLONLAT 15 37 BYRADIUS 200 km",
	"GEOSEARCHSTORE d g1 FROMMEMBER a BYBOX 100 100 km",
	"GEORADIUS g1 15 37 200 km",
	"GEORADIUS g1 15 37 200 km WITHDIST STORE d",
	"GEORADIUS g1 15 37 200 km STOREDIST d2",
	"GEORADIUS g1 15 37 200 km STORE d1 STOREDIST d2",
	"GEORADIUS g1 15 37 200 km COUNT 3 STORE",
	"GEORADIUSBYMEMBER g1 a 100 km STORE d",
	"GEORADIUS_RO g1 15 37 200 km",
	"GEORADIUSBYMEMBER_RO g1 a 100 km",
	// hyperloglog
	"PFADD hl a b",
	"PFCOUNT hl hl2",
	"PFMERGE d hl hl2",
	// bitmap
	"SETBIT b1 7 1",
	"GETBIT b1 7",
	"BITCOUNT b1",
	"BITPOS b1 1",
	"BITOP AND d b1 b2 b3",
	"BITOP NOT d b1",
	"BITFIELD b1 GET u8 0",
	"BITFIELD b1 SET u8 0 1 INCRBY u8 0 1",
	"BITFIELD_RO b1 GET u8 0",
	// scripting
	`EVAL "return 1" 0`,
	`EVAL "return redis.call('get',KEYS[1])" 1 k1`,
	`EVAL "return 1" 3 k1 k2 k3 a1 a2`,
	`eval "return 1" 2 k1 k2`,
	"EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 1 k1 a",
	`EVAL_RO "return 1" 2 k1 k2`,
	"EVALSHA_RO e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0",
	`SCRIPT LOAD "return 1"`,
	"SCRIPT EXISTS abc",
	"SCRIPT FLUSH",
	// functions
	"FCALL f 0",
	"FCALL f 2 k1 k2 a",
	"FCALL_RO f 1 k1",
	"FUNCTION LIST",
	"FUNCTION DELETE lib",
	"FUNCTION STATS",
	// generic
	"DEL k1 k2 k3",
	"UNLINK k1 k2",
	"EXISTS k1 k2",
	"TYPE k1",
	"EXPIRE k1 10",
	"EXPIRE k1 10 NX",
	"PEXPIRE k1 100",
	"EXPIREAT k1 100",
	"PERSIST k1",
	"TTL k1",
	"PTTL k1",
	"EXPIRETIME k1",
	"RENAME k1 k2",
	"RENAMENX k1 k2",
	"COPY k1 k2",
	"COPY k1 k2 DB 1 REPLACE",
	"MOVE k1 1",
	"DUMP k1",
	"RESTORE k1 0 payload",
	"TOUCH k1 k2",
	"KEYS *",
	"SCAN 0 MATCH * COUNT 10",
	"RANDOMKEY",
	"SORT k1",
	"SORT k1 BY w_* LIMIT 0 10 GET o_* DESC ALPHA STORE d",
	"SORT k1 STORE d",
	"sort k1 store d1 store d2",
	"SORT k1 GET store STORE d",
	"SORT k1 LIMIT store 1 STORE",
	"SORT_RO k1 BY w_* GET #",
	"OBJECT ENCODING k1",
	"object freq k1",
	"OBJECT IDLETIME k1",
	"OBJECT REFCOUNT k1",
	"OBJECT HELP",
	"MEMORY USAGE k1 SAMPLES 5",
	"MEMORY STATS",
	"MIGRATE 127.0.0.1 6380 k1 0 1000",
	`MIGRATE 127.0.0.1 6380 "" 0 1000 KEYS k1 k2 k3`,
	`MIGRATE 127.0.0.1 6380 "" 0 1000 COPY REPLACE AUTH pw KEYS k1 k2`,
	`MIGRATE 127.0.0.1 6380 "" 0 1000 AUTH2 user keys KEYS k1`,
	"WAIT 1 0",
	"DBSIZE",
	// pubsub
	"PUBLISH ch msg",
	"SPUBLISH ch msg",
	"SUBSCRIBE ch1 ch2",
	"SSUBSCRIBE ch1",
	"PSUBSCRIBE p*",
	"PUBSUB CHANNELS",
	"PUBSUB NUMSUB ch",
	// transactions
	"MULTI",
	"EXEC",
	"DISCARD",
	"WATCH k1 k2",
	"UNWATCH",
	// connection
	"PING",
	"ECHO hi",
	"SELECT 0",
	"CLIENT LIST",
	"CLIENT SETNAME n",
	"CLIENT ID",
	"HELLO 3",
	"AUTH pw",
	"RESET",
	// server
	"INFO",
	"CONFIG GET maxmemory",
	"CONFIG SET maxmemory 0",
	"FLUSHDB",
	"FLUSHALL ASYNC",
	"TIME",
	"LASTSAVE",
	"COMMAND",
	"COMMAND INFO get",
	"COMMAND COUNT",
	"SLOWLOG GET",
	"LATENCY LATEST",
	"ACL WHOAMI",
	"SWAPDB 0 1",
	"LOLWUT",
	// cluster
	"CLUSTER INFO",
	"CLUSTER KEYSLOT k1",
	"CLUSTER COUNTKEYSINSLOT 1",
	"READONLY",
	"READWRITE",
	"ASKING",
}

// getKeys asks the server for COMMAND GETKEYS args. It returns the keys,
// or the error text.
func getKeys(t *testing.T, c *redisserver.Conn, args []string) ([]string, string) {
	t.Helper()
	v := do(t, c, append([]string{"COMMAND", "GETKEYS"}, args...)...)
	if v.IsError() {
		return nil, strings.TrimPrefix(v.Str, "ERR ")
	}
	return v.Strings(), ""
}

func keyValues(args []string, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = args[j]
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestKeysMatchServer(t *testing.T) {
	c := dial(t)
	if len(keysCorpus) < 150 {
		t.Fatalf("corpus has %d commands, want at least 150", len(keysCorpus))
	}
	groups := map[string]bool{}
	movable := map[string]bool{}
	withKeys := 0
	for _, line := range keysCorpus {
		args := splitLine(line)
		cmd := Lookup([]byte(args[0]))
		if cmd == nil {
			t.Errorf("%s: Lookup(%q) = nil", line, args[0])
			continue
		}
		groups[cmd.Group] = true
		target := cmd
		if cmd.IsContainer() && len(args) > 1 {
			target = cmd.Sub([]byte(args[1]))
			if target == nil {
				t.Errorf("%s: no subcommand %q", line, args[1])
				continue
			}
		}
		if target.Has(FlagMovableKeys) {
			movable[target.Name] = true
		}
		got, err := target.Keys(bytesArgs(args), nil)
		// Through the container, too.
		got2, err2 := cmd.Keys(bytesArgs(args), nil)
		if !slices.Equal(got, got2) || (err == nil) != (err2 == nil) {
			t.Errorf("%s: Keys via %s = %v, %v; via %s = %v, %v", line, target.Name, got, err, cmd.Name, got2, err2)
		}
		want, serr := getKeys(t, c, args)
		switch {
		case serr == "The command has no key arguments",
			// COMMAND GETKEYS cannot take a command without arguments.
			len(args) == 1 && serr == "wrong number of arguments for 'command|getkeys' command":
			if err != nil || len(got) != 0 {
				t.Errorf("%s: server: no key arguments; Keys = %v, %v", line, got, err)
			}
		case serr != "":
			t.Errorf("%s: server: %s (fix the corpus line); Keys = %v, %v", line, serr, got, err)
		default:
			if len(want) > 0 {
				withKeys++
			}
			if err != nil {
				t.Errorf("%s: Keys error %v, server keys %q", line, err, want)
				continue
			}
			if g := keyValues(args, got); !slices.Equal(sorted(g), sorted(want)) {
				t.Errorf("%s: Keys = %q (indexes %v), server %q", line, g, got, want)
			}
			for _, i := range got {
				if i < 1 || i >= len(args) {
					t.Errorf("%s: index %d out of range", line, i)
				}
			}
		}
	}
	for _, cmd := range All() {
		if !groups[cmd.Group] {
			t.Errorf("corpus has no command of group %q (e.g. %s)", cmd.Group, cmd.Name)
		}
		for _, x := range append([]*Command{cmd}, cmd.Subcommands...) {
			if x.Has(FlagMovableKeys) && !movable[x.Name] {
				t.Errorf("corpus lacks movable-keys command %s", x.Name)
			}
		}
	}
	if withKeys < 120 {
		t.Errorf("only %d corpus lines have keys", withKeys)
	}
}

// keysErrorCases are malformed command lines: Keys must fail, and the
// server must fail running them too; where exact is set, with the same
// text.
var keysErrorCases = []struct {
	line  string
	want  error
	exact bool // the server's reply is "ERR " + want.Error()
}{
	{`EVAL "return 1" 3 k1`, ErrNumKeysTooLarge, true},
	{`EVAL "return 1" 2`, ErrNumKeysTooLarge, true},
	{`EVAL "return 1" -1`, ErrNumKeysNegative, true},
	{`EVAL "return 1" x k1`, ErrNotInteger, true},
	{`EVAL "return 1" 01 k1`, ErrNotInteger, true},
	{`EVAL "return 1" 99999999999999999999999 k1`, ErrNotInteger, true},
	{`EVAL_RO "return 1" 2 k1`, ErrNumKeysTooLarge, true},
	{"EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 5 k1", ErrNumKeysTooLarge, true},
	{"EVALSHA_RO e0e1f9fabfc9d4800c877a703b823ac0578ff8db -3", ErrNumKeysNegative, true},
	{"FCALL f 3 k1", ErrNumKeysTooLarge, true},
	{"FCALL f -2", ErrNumKeysNegative, true},
	{"FCALL f x", ErrBadNumKeys, true},
	{"FCALL_RO f 2 k1", ErrNumKeysTooLarge, true},
	{"SINTERCARD 3 s1 s2", ErrNumKeysTooLarge, true},
	{"SINTERCARD 0 s1", ErrNumKeysNotPositive, true},
	{"SINTERCARD -1 s1", ErrNumKeysNotPositive, true},
	{"SINTERCARD x s1", ErrNumKeysNotPositive, true},
	{"ZUNIONSTORE d 3 z1 z2", ErrSyntax, true},
	{"ZUNIONSTORE d 0 z1", ErrAtLeastOneKey, true},
	{"ZUNIONSTORE d x z1", ErrNotInteger, true},
	{"ZINTERSTORE d 5 z1", ErrSyntax, true},
	{"ZDIFFSTORE d -1 z1", ErrAtLeastOneKey, true},
	{"ZUNION 4 z1 z2", ErrSyntax, true},
	{"ZINTER 0 z1", ErrAtLeastOneKey, true},
	{"ZDIFF 2 z1", ErrSyntax, true},
	{"ZINTERCARD 3 z1 z2", ErrSyntax, true},
	{"ZINTERCARD 0 z1", ErrAtLeastOneKey, true},
	{"LMPOP 3 l1 l2", ErrSyntax, true},
	{"LMPOP 0 l1 LEFT", ErrNumKeysNotPositive, true},
	{"LMPOP -5 l1 LEFT", ErrNumKeysNotPositive, true},
	{"LMPOP x l1 LEFT", ErrNumKeysNotPositive, true},
	{"BLMPOP 0 4 l1 l2 LEFT", ErrSyntax, true},
	{"BLMPOP 0 0 l1 LEFT", ErrNumKeysNotPositive, true},
	{"ZMPOP 5 z1 MIN", ErrSyntax, true},
	{"ZMPOP 0 z1 MIN", ErrNumKeysNotPositive, true},
	{"BZMPOP 0 9 z1 MIN", ErrSyntax, true},
	// numkeys covers the direction word: the command answers a syntax
	// error (COMMAND GETKEYS would list the word as a key).
	{"LMPOP 2 l1 LEFT", ErrSyntax, true},
	{"LMPOP 2 l1 RIGHT COUNT", ErrSyntax, true},
	{"LMPOP 1 l1 MIN", ErrSyntax, true},
	{"ZMPOP 1 z1 LEFT COUNT 1", ErrSyntax, true},
	{"BLMPOP 0 1 l1 UP", ErrSyntax, true},
	{"BLMPOP 0 2 l1 LEFT", ErrSyntax, true},
	{"ZMPOP 2 z1 MIN", ErrSyntax, true},
	{"BZMPOP 0 2 z1 MAX", ErrSyntax, true},
	{"XREAD COUNT 1 st1", ErrSyntax, true},
	{"XREAD COUNT 1 STREAMS", ErrSyntax, true},
	{"MIGRATE 127.0.0.1 6380 k1 0 1000 KEYS k2", ErrMigrateKeys, true},
	{"GET", ErrWrongArity, true},
	{"GET a b", ErrWrongArity, true},
	{"CONFIG GET", ErrWrongArity, true},
	{"OBJECT", ErrWrongArity, true},
	{"XREAD STREAMS a", ErrWrongArity, true},
	{`EVAL "return 1"`, ErrWrongArity, true},
	{"CONFIG NOSUCH x", ErrUnknownSubcommand, false},
}

func TestKeysErrors(t *testing.T) {
	c := dial(t)
	// What the error lines need on the server: the script of the EVALSHA
	// lines and a function f.
	if v := do(t, c, "SCRIPT", "LOAD", "return 1"); v.Str != "e0e1f9fabfc9d4800c877a703b823ac0578ff8db" {
		t.Fatalf("SCRIPT LOAD: %q", v.Raw)
	}
	lib := "#!lua name=ambassadortest\nredis.register_function{function_name='f', callback=function(keys, args) return 1 end, flags={'no-writes'}}"
	if v := do(t, c, "FUNCTION", "LOAD", "REPLACE", lib); v.IsError() {
		t.Fatalf("FUNCTION LOAD: %s", v.Str)
	}
	for _, tc := range keysErrorCases {
		args := splitLine(tc.line)
		cmd := Lookup([]byte(args[0]))
		if cmd == nil {
			t.Fatalf("%s: unknown command", tc.line)
		}
		dst := make([]int, 0, 8)
		got, err := cmd.Keys(bytesArgs(args), dst)
		if err == nil {
			t.Errorf("%s: Keys = %v, want error %q", tc.line, got, tc.want)
			continue
		}
		if len(got) != 0 {
			t.Errorf("%s: Keys returned %v with its error", tc.line, got)
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Keys error %q, want %q", tc.line, err, tc.want)
		}
		v := do(t, c, args...)
		if !v.IsError() {
			t.Errorf("%s: the server ran it without error (%q)", tc.line, v.Raw)
			continue
		}
		if tc.exact && v.Str != "ERR "+err.Error() {
			t.Errorf("%s: server says %q, Keys %q", tc.line, v.Str, err)
		}
		if !tc.exact && !strings.HasPrefix(v.Str, "ERR "+err.Error()) {
			t.Errorf("%s: server says %q, Keys %q", tc.line, v.Str, err)
		}
	}
}

// TestKeysSweep runs Keys over every command and subcommand of the table
// with made-up arguments of the lengths its arity allows, and checks it
// against COMMAND GETKEYS: the same keys when the server finds some, an
// error when the server finds the arguments invalid.
func TestKeysSweep(t *testing.T) {
	c := dial(t)
	var all []*Command
	for _, cmd := range All() {
		if cmd.IsContainer() {
			all = append(all, cmd.Subcommands...)
		} else {
			all = append(all, cmd)
		}
	}
	checked := 0
	for _, cmd := range all {
		prefix := strings.Split(cmd.Name, "|")
		var lengths []int
		if cmd.Arity >= 0 {
			lengths = []int{cmd.Arity}
		} else {
			for n := -cmd.Arity; n <= -cmd.Arity+4; n++ {
				lengths = append(lengths, n)
			}
		}
		for _, n := range lengths {
			for _, filler := range []string{"", "k"} {
				args := slices.Clone(prefix)
				for i := len(args); i < n; i++ {
					args = append(args, filler+strconv.Itoa(i))
				}
				if len(args) != n {
					continue
				}
				checked++
				got, err := cmd.Keys(bytesArgs(args), nil)
				want, serr := getKeys(t, c, args)
				line := strings.Join(args, " ")
				checkGetKeys(t, cmd, args, want, serr)
				switch {
				case serr == "The command has no key arguments",
					len(args) == 1 && serr == "wrong number of arguments for 'command|getkeys' command":
					if err != nil || len(got) != 0 {
						t.Errorf("%s: server: no keys; Keys = %v, %v", line, got, err)
					}
				case serr == "Invalid arguments specified for command":
					if err == nil && !(startsPastEnd(cmd, len(args)) && len(got) > 0) {
						t.Errorf("%s: server: invalid arguments; Keys = %v, nil", line, got)
					}
				case serr != "":
					t.Errorf("%s: server: %s", line, serr)
				case len(want) == 0:
					if len(got) != 0 {
						t.Errorf("%s: server: no keys; Keys = %v, %v", line, got, err)
					}
				default:
					switch g := keyValues(args, got); {
					case err != nil && errors.Is(err, ErrSyntax) && mpopOverCount(cmd, args):
						// the command refuses it: see mpopOverCount
					case err != nil:
						t.Errorf("%s: Keys error %v, server %q", line, err, want)
					case !slices.Equal(sorted(g), sorted(want)):
						t.Errorf("%s: Keys = %q, server %q", line, g, want)
					}
				}
			}
		}
	}
	t.Logf("%d command lines over %d commands", checked, len(all))
}

func TestKeysAppendsToDst(t *testing.T) {
	cmd := LookupString("mset")
	dst := []int{42}
	got, err := cmd.Keys(bytesArgs([]string{"MSET", "a", "1", "b", "2"}), dst)
	if err != nil || !slices.Equal(got, []int{42, 1, 3}) {
		t.Fatalf("Keys = %v, %v; want [42 1 3]", got, err)
	}
	got, err = LookupString("zunionstore").Keys(bytesArgs([]string{"ZUNIONSTORE", "d", "9", "a"}), dst)
	if err == nil || !slices.Equal(got, []int{42}) {
		t.Fatalf("Keys = %v, %v; want [42] and an error", got, err)
	}
}

func TestKeysNoAllocs(t *testing.T) {
	lines := []string{
		"GET k", "MSET a 1 b 2 c 3", `EVAL "return 1" 2 a b x`, "XREAD COUNT 1 STREAMS a b 0 0",
		"ZUNIONSTORE d 2 a b", "SORT k BY x STORE d", "OBJECT ENCODING k", "MIGRATE h 1 \"\" 0 10 KEYS a b",
		"GEORADIUS g 1 2 3 m STORE d", "SET k v GET", "PING",
	}
	dst := make([]int, 0, 16)
	for _, l := range lines {
		args := bytesArgs(splitLine(l))
		cmd := Lookup(args[0])
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := cmd.Keys(args, dst[:0]); err != nil {
				panic(fmt.Sprint(l, err))
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocs", l, allocs)
		}
	}
	// Errors do not allocate either.
	for _, l := range []string{"GET", `EVAL "return 1" 5`, "ZINTER 0 a", "CONFIG NOSUCH"} {
		args := bytesArgs(splitLine(l))
		cmd := Lookup(args[0])
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := cmd.Keys(args, dst[:0]); err == nil {
				panic(l)
			}
		})
		if allocs != 0 {
			t.Errorf("%s (error): %v allocs", l, allocs)
		}
	}
}

func TestGetkeysRulesInTable(t *testing.T) {
	for name := range getkeysRules {
		c := LookupFullName(name)
		if c == nil {
			t.Errorf("getkeysRules has %q, the table does not", name)
			continue
		}
		var varFlags bool
		for _, ks := range c.KeySpecs {
			varFlags = varFlags || ks.Flags&KeyVariableFlags != 0
		}
		if !c.Has(FlagMovableKeys) && !varFlags {
			t.Errorf("%s has a getkeys rule but neither movablekeys nor a variable_flags key spec", name)
		}
	}
	// And the other way round: a movable-keys command that the key specs
	// alone cannot serve needs a rule.
	for _, cmd := range All() {
		for _, c := range append([]*Command{cmd}, cmd.Subcommands...) {
			if !c.Has(FlagMovableKeys) || c.rule != nil {
				continue
			}
			for _, ks := range c.KeySpecs {
				if ks.Flags&KeyIncomplete != 0 || ks.BeginSearch.Type == BeginSearchUnknown || ks.FindKeys.Type == FindKeysUnknown {
					t.Errorf("%s: movable keys with an incomplete spec and no getkeys rule", c.Name)
				}
			}
		}
	}
}

func TestParseInt(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "1": 1, "-1": -1, "123": 123, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63} {
		if got, ok := parseInt([]byte(s)); !ok || got != want {
			t.Errorf("parseInt(%q) = %d, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "-", "01", "+1", " 1", "1 ", "1x", "-0", "9223372036854775808", "-9223372036854775809", "99999999999999999999999"} {
		if got, ok := parseInt([]byte(s)); ok {
			t.Errorf("parseInt(%q) = %d, ok", s, got)
		}
	}
}

// TestKeysRandomVsServer throws random argument lists, drawn from the
// keywords and numbers the key-finding code looks at, at every command
// with movable keys or variable key flags, and checks Keys against
// COMMAND GETKEYS by the rules of TestKeysSweep.
func TestKeysRandomVsServer(t *testing.T) {
	c := dial(t)
	vocab := []string{
		"STORE", "store", "STOREDIST", "STREAMS", "streams", "KEYS", "keys", "LIMIT", "GET", "get", "BY",
		"COUNT", "BLOCK", "GROUP", "NOACK", "AUTH", "AUTH2", "COPY", "REPLACE", "SET", "INCRBY", "OVERFLOW",
		"0", "1", "2", "3", "5", "-1", "01", "x", "", "k", "m",
	}
	var cmds []*Command
	for _, cmd := range All() {
		for _, x := range append([]*Command{cmd}, cmd.Subcommands...) {
			if x.Has(FlagMovableKeys) || x.rule != nil {
				cmds = append(cmds, x)
			}
		}
	}
	rng := uint64(0x9e3779b97f4a7c15)
	next := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	checked, withKeys, lenient := 0, 0, 0
	for _, cmd := range cmds {
		min := cmd.Arity
		if min < 0 {
			min = -min
		}
		for iter := 0; iter < 300; iter++ {
			n := min
			if cmd.Arity < 0 {
				n += next(8)
			}
			args := []string{cmd.Name}
			for len(args) < n {
				args = append(args, vocab[next(len(vocab))])
			}
			got, err := cmd.Keys(bytesArgs(args), nil)
			want, serr := getKeys(t, c, args)
			line := strings.Join(args, " ")
			checked++
			checkGetKeys(t, cmd, args, want, serr)
			// Known differences: COMMAND GETKEYS falls back to atoi() and
			// takes "01" for 1, and counts the direction word of
			// [B]LMPOP/[B]ZMPOP among the keys when numkeys covers it;
			// the command itself rejects both, and so does Keys.
			atoiOnly := false
			if r := cmd.rule; r != nil && r.kind == gkNumkeys && err != nil {
				_, ok := parseInt([]byte(args[r.count]))
				atoiOnly = !ok || mpopOverCount(cmd, args)
			}
			switch {
			case len(want) > 0 && atoiOnly:
				lenient++
			case serr == "Invalid arguments specified for command":
				if err == nil {
					t.Errorf("%q: server: invalid arguments; Keys = %v, nil", line, got)
				}
			case serr != "":
				t.Errorf("%q: server: %s", line, serr)
			case len(want) == 0:
				if len(got) != 0 {
					t.Errorf("%q: server: no keys; Keys = %v, %v", line, got, err)
				}
			default:
				withKeys++
				if err != nil {
					t.Errorf("%q: Keys error %v, server %q", line, err, want)
				} else if g := keyValues(args, got); !slices.Equal(sorted(g), sorted(want)) {
					t.Errorf("%q: Keys = %q (%v), server %q", line, g, got, want)
				}
			}
		}
	}
	t.Logf("%d random command lines over %d commands, %d with keys, %d with a non-canonical numkeys", checked, len(cmds), withKeys, lenient)
	if withKeys < checked/5 {
		t.Errorf("only %d of %d lines had keys: the vocabulary misses", withKeys, checked)
	}
}

// startsPastEnd tells whether one of cmd's range key specs begins at an
// index past the last of argc arguments: Keys then searches the other
// specs (PFMERGE dest), where COMMAND GETKEYS finds the arguments invalid.
func startsPastEnd(cmd *Command, argc int) bool {
	for _, ks := range cmd.KeySpecs {
		if ks.BeginSearch.Type == BeginSearchIndex && ks.FindKeys.Type == FindKeysRange && ks.BeginSearch.Index >= argc {
			return true
		}
	}
	return false
}

// checkGetKeys checks GetKeys (with the frontend's reading of an empty
// result) against the server's COMMAND GETKEYS reply: the same keys in the
// same order, an empty array, or "Invalid arguments".
func checkGetKeys(t *testing.T, cmd *Command, args []string, want []string, serr string) {
	t.Helper()
	line := strings.Join(args, " ")
	switch serr {
	case "":
	case "The command has no key arguments":
		if cmd.HasKeys() {
			t.Errorf("%s: server: no key arguments; HasKeys", line)
		}
		return
	case "Invalid arguments specified for command":
		if got := cmd.GetKeys(bytesArgs(args), nil); len(got) != 0 || cmd.Has(FlagNoMandatoryKeys) {
			t.Errorf("%s: server: invalid arguments; GetKeys = %v (no-mandatory-keys %v)", line, got, cmd.Has(FlagNoMandatoryKeys))
		}
		return
	default:
		return // arity and the like: the frontend checks those
	}
	if !cmd.HasKeys() {
		t.Errorf("%s: server: keys %q; !HasKeys", line, want)
		return
	}
	got := cmd.GetKeys(bytesArgs(args), nil)
	if g := keyValues(args, got); !slices.Equal(g, want) {
		t.Errorf("%s: GetKeys = %q (%v), server %q", line, g, got, want)
	}
	if len(got) == 0 && !cmd.Has(FlagNoMandatoryKeys) {
		t.Errorf("%s: server answers an empty array; GetKeys finds none and the command is not no-mandatory-keys", line)
	}
}

// TestGetKeysMatchServer checks GetKeys against COMMAND GETKEYS for the
// lines where it differs from Keys, and for the corpus.
func TestGetKeysMatchServer(t *testing.T) {
	c := dial(t)
	lines := append([]string{
		"PFMERGE d", "PFMERGE d s1", `EVAL "return 1" 0`, `EVAL "return 1" 01 k`, `EVAL "return 1" 5 k`,
		`EVAL "return 1" -1 k`, `EVAL "return 1" " 1" k`, `EVAL "return 1" +1 k`, `EVAL "return 1" 1x k`,
		`EVAL "return 1" 99999999999999999999 k`, "FCALL f 0", "FCALL f x k", "LMPOP 2 l LEFT", "ZMPOP 2 z MIN",
		"BLMPOP 0 2 l LEFT", "ZUNIONSTORE d 01 a", "ZUNIONSTORE d 5 a", "ZUNION 0 a", "ZUNION x a", "SINTERCARD 0 a",
		"LMPOP 0 a LEFT", `MIGRATE h p "" 0 0`, `MIGRATE h p "" 0 0 KEYS`, "XREAD COUNT 1 a b", "OBJECT ENCODING k",
		"PUBLISH c m", "SPUBLISH c m", "PING x", "CONFIG GET x",
	}, keysCorpus...)
	for _, line := range lines {
		args := splitLine(line)
		cmd := Lookup([]byte(args[0]))
		if cmd.IsContainer() && len(args) > 1 {
			cmd = cmd.Sub([]byte(args[1]))
		}
		if cmd == nil || len(args) < 2 {
			continue
		}
		want, serr := getKeys(t, c, args)
		checkGetKeys(t, cmd, args, want, serr)
	}
}

func TestAtoi(t *testing.T) {
	for s, want := range map[string]int{
		"0": 0, "1": 1, "01": 1, "+1": 1, " 1": 1, "\t-2x": -2, "1x": 1, "x": 0, "": 0, "-": 0,
		"2147483648": -2147483648, "4294967297": 1, "99999999999999999999": -1, "-99999999999999999999": 0,
	} {
		if got := atoi([]byte(s)); got != want {
			t.Errorf("atoi(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestKeysPartialSpec: a range key spec that begins past the last argument
// names no keys, and the others still count: "PFMERGE dest" (which the
// server runs, +OK) has its destination key.
func TestKeysPartialSpec(t *testing.T) {
	c := dial(t)
	for _, tc := range []struct {
		line string
		want []int
	}{
		{"PFMERGE d", []int{1}},
		{"PFMERGE d s1 s2", []int{1, 2, 3}},
	} {
		args := splitLine(tc.line)
		got, err := Lookup([]byte(args[0])).Keys(bytesArgs(args), nil)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Keys = %v, %v; want %v", tc.line, got, err, tc.want)
		}
		if v := do(t, c, args...); v.IsError() {
			t.Errorf("%s: the server refuses it: %s", tc.line, v.Str)
		}
	}
}

// mpopOverCount tells whether args are an [B]LMPOP/[B]ZMPOP line whose
// numkeys covers the direction word, or whose direction word is not one:
// the command answers a syntax error before it looks at a key, COMMAND
// GETKEYS lists the keys (and the word).
func mpopOverCount(cmd *Command, args []string) bool {
	r := cmd.rule
	if r == nil || r.kind != gkNumkeys || r.style != styleMpop || r.count >= len(args) {
		return false
	}
	n, ok := parseInt([]byte(args[r.count]))
	if !ok || n < 1 || int(n) > len(args)-r.first {
		return false
	}
	return int(n) == len(args)-r.first || !cmd.mpopDirection([]byte(args[r.first+int(n)]))
}
