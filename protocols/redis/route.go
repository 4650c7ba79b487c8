package redis

import (
	"bytes"
	"strings"

	"github.com/ambassador-proxy/ambassador/protocols/redis/commands"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// handler runs one command: it appends the command's reply slot to the
// batch and stages what goes to the backends. start is the offset of the
// command's bytes in the client's read buffer (they end at c.r).
type handler func(c *client, rt *route, cmd resp.Command, start int)

// route is how the ambassador runs one command or subcommand.
type route struct {
	name  string // lowercase, "config|get" for subcommands
	upper string // for messages
	spec  *commands.Command
	h     handler
	subs  map[string]*route
	// class flags
	pubsubOK  bool // allowed in RESP2 subscribed mode
	txControl bool // MULTI, EXEC, DISCARD, WATCH, UNWATCH, QUIT, RESET: not queued
	noAuth    bool // allowed before AUTH
	noMulti   bool // refused inside MULTI
	txMode    txMode
	// unsupported commands get an error saying so
	unsupported bool
	// badNumkeysToNode: when the key arguments cannot be read (a bad
	// numkeys), the command goes to any node, which answers Redis's own
	// error: EVALSHA and FCALL check the script or function first
	// (NOSCRIPT, "Function not found").
	badNumkeysToNode bool
	id               int // index in allRoutes, for per-frontend metrics
}

type txMode uint8

const (
	txRefuse txMode = iota // not inside MULTI
	txKeyed                // queued; its keys decide the node
	txAny                  // queued; any node
)

// allRoutes lists every route, subcommands included.
var allRoutes []*route

// routes maps a lowercase command name to its route.
var routes = map[string]*route{}

// routeTable says how each command is run, where the default (by the
// command's keys) is not right. Commands marked unsupported get an error
// that says so; commands that Redis does not know get "unknown command".
var routeTable = map[string]handler{
	// answered by the ambassador
	"ping": hPing, "echo": hEcho, "select": hSelect, "quit": hQuit,
	"reset": hReset, "hello": hHello, "auth": hAuth,
	"client|setname": hClientSetname, "client|getname": hClientGetname,
	"client|id": hClientID, "client|info": hClientInfo,
	"client|no-evict": hClientOnOff, "client|no-touch": hClientOnOff,
	"client|setinfo": hClientSetinfo, "client|help": hAny,
	"command": hCommand, "command|count": hCommandCount, "command|info": hCommandInfo,
	"command|list": hCommandList, "command|getkeys": hCommandGetkeys,
	"command|docs": hAny, "command|getkeysandflags": hAny, "command|help": hAny,

	// transactions
	"multi": hMulti, "exec": hExec, "discard": hDiscard, "watch": hWatch, "unwatch": hUnwatch,

	// split by node and merged
	"mget": hMget, "mset": hMset, "del": hSumKeys, "unlink": hSumKeys,
	"exists": hSumKeys, "touch": hSumKeys,

	// keyspace-wide
	"keys": hAllConcat, "scan": hScan, "dbsize": hAllSum, "randomkey": hRandomKey,
	"flushdb": hAllOK, "flushall": hAllOK,
	"script|load": hAllSame, "script|flush": hAllOK, "script|exists": hScriptExists,
	"script|kill": hAllKill, "script|help": hAny,
	"function|load": hAllSame, "function|delete": hAllOK, "function|flush": hAllOK,
	"function|restore": hAllOK, "function|kill": hAllKill,
	"function|list": hAny, "function|dump": hAny, "function|stats": hAny, "function|help": hAny,
	"config|set": hConfigSet, "config|resetstat": hAllOK, "config|get": hConfigGet, "config|help": hAny,
	"info": hInfo, "time": hAny, "lastsave": hAny, "lolwut": hAny,
	"memory|doctor": hAny, "memory|stats": hAny, "memory|malloc-stats": hAny, "memory|help": hAny,
	"memory|purge": hAllOK,

	// scripts and functions: by their keys, any node without keys
	"eval": hKeyed, "evalsha": hKeyed, "eval_ro": hKeyed, "evalsha_ro": hKeyed,
	"fcall": hKeyed, "fcall_ro": hKeyed,

	// Pub/Sub
	"subscribe": hSubscribe, "ssubscribe": hSubscribe, "psubscribe": hSubscribe,
	"unsubscribe": hUnsubscribe, "sunsubscribe": hUnsubscribe, "punsubscribe": hUnsubscribe,
	"publish": hChannel, "spublish": hChannel,
	"pubsub|channels": hPubsubChannels, "pubsub|shardchannels": hPubsubChannels,
	"pubsub|numsub": hPubsubNumsub, "pubsub|shardnumsub": hPubsubNumsub,
	"pubsub|numpat": hAny, "pubsub|help": hAny,
	"object|help": hAny, "xinfo|help": hAny, "xgroup|help": hAny,

	"wait": hWait,

	// by their keys, once the BY and GET patterns are checked (sort.go)
	"sort": hSort, "sort_ro": hSort,
	// by its keys, unless it copies to another database
	"copy": hCopy,
}

// unsupportedCommands act on a server or a connection the client does not
// own, or on databases the ambassador does not expose.
var unsupportedCommands = map[string]bool{
	"monitor": true, "sync": true, "psync": true, "replconf": true, "cluster": true,
	"readonly": true, "readwrite": true, "asking": true, "shutdown": true, "debug": true,
	"replicaof": true, "slaveof": true, "failover": true, "swapdb": true, "move": true,
	"module": true, "save": true, "bgsave": true, "bgrewriteaof": true, "slowlog": true,
	"latency": true, "acl": true, "role": true, "waitaof": true,
	"migrate":     true, // the node would dial whatever host the client names
	"client|kill": true, "client|pause": true, "client|unpause": true,
	"client|tracking": true, "client|caching": true, "client|getredir": true,
	"client|trackinginfo": true, "client|list": true, "client|unblock": true,
	"client|reply": true, "config|rewrite": true,
}

// Commands newer than the server the table was generated from (Redis
// 7.2), answered by the ambassador itself, with their arity.
var extraCommands = map[string]int{"client|setinfo": -2, "client|no-touch": 3}

func init() {
	for _, spec := range commands.All() {
		rt := newRoute(spec.Name, spec)
		routes[spec.Name] = rt
		if len(spec.Subcommands) > 0 {
			rt.subs = map[string]*route{}
			if _, ok := routeTable[spec.Name]; !ok && !unsupportedCommands[spec.Name] {
				rt.h, rt.unsupported = hSubcommand, false
			}
			for _, sub := range spec.Subcommands {
				srt := newRoute(sub.Name, sub)
				if rt.unsupported {
					srt.h, srt.unsupported = hUnsupported, true
				}
				rt.subs[strings.TrimPrefix(sub.Name, spec.Name+"|")] = srt
			}
		}
	}
	for name, arity := range extraCommands {
		parent, sub, _ := strings.Cut(name, "|")
		if prt := routes[parent]; prt != nil && prt.subs != nil && prt.subs[sub] == nil {
			prt.subs[sub] = newRoute(name, &commands.Command{Name: name, Arity: arity})
		}
	}
}

func newRoute(name string, spec *commands.Command) *route {
	rt := &route{name: name, upper: strings.ToUpper(strings.ReplaceAll(name, "|", " ")), spec: spec, id: len(allRoutes)}
	allRoutes = append(allRoutes, rt)
	keyed := spec.FirstKey > 0 || spec.Has(commands.FlagMovableKeys)
	if h, ok := routeTable[name]; ok {
		rt.h = h
	} else if unsupportedCommands[name] {
		rt.h, rt.unsupported = hUnsupported, true
	} else if spec.Has(commands.FlagBlocking) {
		rt.h = hBlocking
	} else if keyed {
		rt.h = hKeyed
	} else {
		rt.h, rt.unsupported = hUnsupported, true
	}
	switch {
	case rt.unsupported:
		rt.txMode = txRefuse
	case keyed || name == "publish" || name == "spublish":
		rt.txMode = txKeyed
	case name == "ping" || name == "echo" || name == "time" || name == "lastsave" || name == "lolwut" || name == "select":
		rt.txMode = txAny
	default:
		rt.txMode = txRefuse
	}
	switch name {
	case "subscribe", "ssubscribe", "psubscribe", "unsubscribe", "sunsubscribe", "punsubscribe", "ping", "quit", "reset":
		rt.pubsubOK = true
	}
	switch name {
	case "multi", "exec", "discard", "watch", "unwatch", "quit", "reset":
		rt.txControl = true
	}
	switch name {
	case "auth", "hello", "quit", "reset":
		rt.noAuth = true
	}
	switch name {
	case "evalsha", "evalsha_ro", "fcall", "fcall_ro":
		rt.badNumkeysToNode = true
	}
	if spec.Has(commands.FlagNoMulti) || spec.Has(commands.FlagPubSub) && name != "publish" && name != "spublish" && !strings.HasPrefix(name, "pubsub|") {
		rt.noMulti = true
	}
	return rt
}

// lookupRoute finds a command's route, case-insensitively, without
// allocating.
func lookupRoute(name []byte) *route {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, ch := range name {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return routes[string(buf[:len(name)])]
}

func lookupSub(rt *route, name []byte) *route {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, ch := range name {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return rt.subs[string(buf[:len(name)])]
}

// dispatch checks a command and hands it to its route's handler.
func (c *client) dispatch(cmd resp.Command, start int) {
	rt := lookupRoute(cmd.Args[0])
	if rt == nil {
		c.reject(unknownCommand(cmd.Args))
		return
	}
	if rt.subs != nil && (len(cmd.Args) >= 2 || isHSubcommand(rt)) {
		if len(cmd.Args) < 2 {
			c.reject("ERR wrong number of arguments for '" + rt.name + "' command")
			return
		}
		sub := lookupSub(rt, cmd.Args[1])
		if sub == nil {
			c.reject("ERR unknown subcommand '" + printableArg(cmd.Args[1]) + "'. Try " + rt.upper + " HELP.")
			return
		}
		rt = sub
	}
	if !c.authed && !rt.noAuth {
		c.localError("NOAUTH Authentication required.")
		return
	}
	if !rt.spec.CheckArity(len(cmd.Args)) {
		c.reject("ERR wrong number of arguments for '" + rt.name + "' command")
		return
	}
	if c.ps != nil && c.proto == 2 && c.ps.active() && !rt.pubsubOK {
		c.localError("ERR Can't execute '" + rt.name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		return
	}
	c.cur = rt
	c.deferred = false
	if c.tx != nil && !rt.txControl {
		c.txQueue(rt, cmd)
	} else {
		rt.h(c, rt, cmd, start)
	}
	if !c.deferred {
		c.f.metrics.count(rt)
	}
}

// reject answers a command refused before it runs. Inside MULTI it
// also dooms the transaction, as Redis flags it: EXEC then answers
// EXECABORT instead of running the commands that were queued.
func (c *client) reject(msg string) {
	if c.tx != nil {
		c.tx.dirty = true
	}
	c.localError(msg)
}

// isHSubcommand reports whether a container has no behaviour of its own
// without a subcommand (all but COMMAND).
func isHSubcommand(rt *route) bool { return rt.name != "command" }

func unknownCommand(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(printableArg(args[0]))
	b.WriteString("', with args beginning with: ")
	for _, a := range args[1:] {
		if b.Len() > 256 {
			break
		}
		b.WriteString("'")
		b.WriteString(printableArg(a))
		b.WriteString("' ")
	}
	return b.String()
}

// printableArg shortens an argument for an error message and removes
// line breaks.
func printableArg(a []byte) string {
	if len(a) > 128 {
		a = a[:128]
	}
	s := string(a)
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	return s
}

func hSubcommand(c *client, rt *route, cmd resp.Command, start int) {
	// dispatch resolves subcommands before calling handlers; a container
	// reaching here has no subcommand argument.
	c.localError("ERR wrong number of arguments for '" + rt.name + "' command")
}

func hUnsupported(c *client, rt *route, _ resp.Command, _ int) {
	c.localError("ERR " + rt.upper + " is not supported by the ambassador")
}

// copyToOtherDB reports whether a COPY names a database other than 0
// (DB n): the key would land where the ambassador never reads.
func copyToOtherDB(args [][]byte) bool {
	for i := 3; i+1 < len(args); i++ {
		if strings.EqualFold(string(args[i]), "db") {
			if n, ok := commands.ParseInt(args[i+1]); ok && n != 0 {
				return true
			}
		}
	}
	return false
}

func hCopy(c *client, rt *route, cmd resp.Command, start int) {
	if copyToOtherDB(cmd.Args) {
		c.localError("ERR the ambassador serves database 0 only")
		return
	}
	hKeyed(c, rt, cmd, start)
}

// pickKey returns the pool of the node that owns key, or replies with the
// error and returns nil.
func (c *client) pickKey(key []byte) (*nodePool, error) {
	n, err := c.f.cl.PickKey(key)
	if err != nil {
		return nil, err
	}
	return c.f.poolOf(n), nil
}

// nodeError is the reply for a key whose node cannot take it.
func nodeError(err error) string {
	return "ERR " + err.Error()
}

// forward sends the command as the client sent it (or re-encoded, for an
// inline command) to bc, for a new reply slot.
func (c *client) forward(bc *backendConn, cmd resp.Command, start int) *request {
	r := c.addReq()
	if cmd.Raw != nil {
		c.forwardRaw(bc, r, start, c.r)
	} else {
		c.forwardBytes(bc, r, c.encode(cmd.Args))
	}
	return r
}

// encode writes a command into the batch's arena.
func (c *client) encode(args [][]byte) []byte {
	n := 16
	for _, a := range args {
		n += len(a) + 16
	}
	b := c.arena.build(n)
	return resp.AppendCommand(b, args...)
}

// keysNode returns the one node all of a command's keys map to. With no
// keys, pool is nil and err nil. Keys on two nodes give errCrossSlot.
// Key arguments that cannot be read give the error the command would
// reply with, or, for the commands with badNumkeysToNode, no keys (the
// command then goes to any node, which replies).
func (c *client) keysNode(rt *route, args [][]byte) (*nodePool, error) {
	var err error
	c.keyIdx, err = rt.spec.Keys(args, c.keyIdx[:0])
	if err != nil {
		if rt.badNumkeysToNode {
			return nil, nil
		}
		return nil, &replyError{"ERR " + err.Error()}
	}
	if len(c.keyIdx) == 0 {
		return nil, nil
	}
	pool, err := c.pickKey(args[c.keyIdx[0]])
	if err != nil {
		return nil, err
	}
	for _, i := range c.keyIdx[1:] {
		if bytes.Equal(args[i], args[c.keyIdx[0]]) {
			continue
		}
		p, err := c.pickKey(args[i])
		if err != nil {
			return nil, err
		}
		if p != pool {
			return nil, errCrossSlot
		}
	}
	return pool, nil
}

type replyError struct{ msg string }

func (e *replyError) Error() string { return e.msg }

var errCrossSlot = &replyError{"CROSSSLOT Keys in request don't hash to the same node"}

func replyFor(err error) string {
	if re, ok := err.(*replyError); ok {
		return re.msg
	}
	return nodeError(err)
}

// hKeyed runs a command on the node of its keys (all keys must map to one
// node); a command with no keys (EVAL with numkeys 0) goes to any node.
func hKeyed(c *client, rt *route, cmd resp.Command, start int) {
	args := cmd.Args
	var pool *nodePool
	var err error
	if rt.spec.FirstKey == 1 && rt.spec.LastKey == 1 && len(args) > 1 && !rt.spec.Has(commands.FlagMovableKeys) {
		pool, err = c.pickKey(args[1]) // the common single-key case
	} else {
		pool, err = c.keysNode(rt, args)
		if err == nil && pool == nil {
			pool, err = c.anyNode()
		}
	}
	if err != nil {
		c.localError(replyFor(err))
		return
	}
	c.forward(pool.sharedConn(c.proto, c.id), cmd, start)
}

// anyNode picks a node by the balancing policy.
func (c *client) anyNode() (*nodePool, error) {
	n, err := c.f.cl.Pick()
	if err != nil {
		return nil, &replyError{"ERR no backend node is available"}
	}
	return c.f.poolOf(n), nil
}

// hAny runs a keyless command on any node.
func hAny(c *client, rt *route, cmd resp.Command, start int) {
	pool, err := c.anyNode()
	if err != nil {
		c.localError(replyFor(err))
		return
	}
	c.forward(pool.sharedConn(c.proto, c.id), cmd, start)
}

// hChannel routes PUBLISH and SPUBLISH by channel, as SUBSCRIBE does.
func hChannel(c *client, rt *route, cmd resp.Command, start int) {
	pool, err := c.pickKey(cmd.Args[1])
	if err != nil {
		c.localError(replyFor(err))
		return
	}
	c.forward(pool.sharedConn(c.proto, c.id), cmd, start)
}
