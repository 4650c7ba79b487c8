package redis

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ambassador-proxy/ambassador/protocols/redis/commands"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

func hPing(c *client, _ *route, cmd resp.Command, _ int) {
	if len(cmd.Args) > 2 {
		c.localError("ERR wrong number of arguments for 'ping' command")
		return
	}
	r := c.addReq()
	if c.ps != nil && c.ps.active() && c.proto == 2 {
		r.reply = resp.AppendArray(r.reply[:0], 2)
		r.reply = resp.AppendBulkString(r.reply, "pong")
		if len(cmd.Args) == 2 {
			r.reply = resp.AppendBulk(r.reply, cmd.Args[1])
		} else {
			r.reply = resp.AppendBulkString(r.reply, "")
		}
		return
	}
	if len(cmd.Args) == 2 {
		r.reply = resp.AppendBulk(r.reply[:0], cmd.Args[1])
		return
	}
	r.reply = append(r.reply[:0], "+PONG\r\n"...)
}

func hEcho(c *client, _ *route, cmd resp.Command, _ int) {
	r := c.addReq()
	r.reply = resp.AppendBulk(r.reply[:0], cmd.Args[1])
}

func hSelect(c *client, _ *route, cmd resp.Command, _ int) {
	// As Redis' getIntFromObjectOrReply: "00", "+0" and " 0" are not
	// integers.
	n, ok := commands.ParseInt(cmd.Args[1])
	switch {
	case !ok:
		c.localError("ERR value is not an integer or out of range")
	case n < math.MinInt32 || n > math.MaxInt32:
		c.localError("ERR value is out of range, value must between -2147483648 and 2147483647")
	case n != 0:
		c.localError("ERR the ambassador serves database 0 only")
	default:
		c.localOK()
	}
}

func hQuit(c *client, _ *route, _ resp.Command, _ int) {
	c.localOK()
	c.quit = true
	c.barrier, c.sync = true, true
}

// hReset returns the connection to its initial state, as RESET does.
func hReset(c *client, _ *route, _ resp.Command, _ int) {
	c.tx = nil
	if c.watch != nil {
		c.watch.pool.discard(c.watch.bc, errRecycled)
		c.watch = nil
	}
	if c.ps != nil {
		c.ps.close()
		c.ps = nil
	}
	c.proto = 2
	c.name = ""
	c.authed = !c.f.authRequired()
	c.user = ""
	r := c.addReq()
	r.reply = append(r.reply[:0], "+RESET\r\n"...)
	c.barrier, c.sync = true, true
}

// checkAuth checks a user and password against the frontend's.
func (c *client) checkAuth(user, pass []byte) bool {
	cfg := c.f.cfg()
	u := string(user)
	if u == "" || u == "default" {
		if cfg.FrontendPassword == "" {
			return len(cfg.FrontendUsers) == 0 // nopass default user
		}
		return samePassword(pass, cfg.FrontendPassword.Reveal())
	}
	want, ok := cfg.FrontendUsers[u]
	if !ok || want == "" {
		samePassword(pass, "")
		return false
	}
	return samePassword(pass, want.Reveal())
}

// samePassword compares in constant time, the length included: both
// sides are hashed first (ConstantTimeCompare returns at once on
// different lengths), as Redis does.
func samePassword(got []byte, want string) bool {
	a, b := sha256.Sum256(got), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

const wrongPass = "WRONGPASS invalid username-password pair or user is disabled."

func hAuth(c *client, _ *route, cmd resp.Command, _ int) {
	var user, pass []byte
	switch len(cmd.Args) {
	case 2:
		pass = cmd.Args[1]
		if !c.f.authRequired() {
			c.localError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
	case 3:
		user, pass = cmd.Args[1], cmd.Args[2]
	default:
		c.localError("ERR syntax error")
		return
	}
	if !c.checkAuth(user, pass) {
		c.f.metrics.authFailures.Inc()
		c.f.log.Debug("client AUTH failed", "client", c.conn.RemoteAddr().String(), "user", string(user))
		c.localError(wrongPass)
		return
	}
	c.authed = true
	c.user = string(user)
	c.localOK()
}

// hHello switches the protocol (RESP2/RESP3), authenticates and names the
// client, and describes the server.
func hHello(c *client, _ *route, cmd resp.Command, start int) {
	args := cmd.Args[1:]
	proto := c.proto
	if len(args) > 0 {
		v64, ok := commands.ParseInt(args[0]) // strict, as Redis: "03" is not a version
		if !ok {
			c.localError("ERR Protocol version is not an integer or out of range")
			return
		}
		if v64 != 2 && v64 != 3 {
			c.localError("NOPROTO unsupported protocol version")
			return
		}
		v := int(v64)
		// A new protocol sends later commands over other backend
		// connections: earlier commands must be done first.
		if v != c.proto && c.deferUnlessFirst(start) {
			return
		}
		proto = v
		args = args[1:]
	}
	var name []byte
	authed := false
	for len(args) > 0 {
		opt := strings.ToLower(string(args[0]))
		switch {
		case opt == "auth" && len(args) >= 3:
			if !c.checkAuth(args[1], args[2]) {
				c.f.metrics.authFailures.Inc()
				c.localError(wrongPass)
				return
			}
			authed = true
			c.user = string(args[1])
			args = args[3:]
		case opt == "setname" && len(args) >= 2:
			if !validName(args[1]) {
				c.localError("ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
			name = args[1]
			args = args[2:]
		default:
			c.localError("ERR Syntax error in HELLO option '" + printableArg(args[0]) + "'")
			return
		}
	}
	if authed {
		c.authed = true
	}
	if !c.authed {
		c.localError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if name != nil {
		c.name = string(name)
	}
	if proto != c.proto && c.ps != nil && c.ps.active() {
		c.localError("ERR the ambassador cannot change the protocol of a client with subscriptions")
		return
	}
	if proto != c.proto {
		c.barrier, c.sync = true, true
		// Subscription connections left from earlier subscriptions
		// speak the old protocol (their messages would reach the client
		// in it): new ones are dialled on the next SUBSCRIBE.
		if c.ps != nil {
			c.ps.close()
			c.ps = nil
		}
	}
	c.proto = proto
	r := c.addReq()
	b := resp.AppendMap(r.reply[:0], 7, proto)
	b = resp.AppendBulkString(b, "server")
	b = resp.AppendBulkString(b, "redis")
	b = resp.AppendBulkString(b, "version")
	b = resp.AppendBulkString(b, c.f.backendVersion())
	b = resp.AppendBulkString(b, "proto")
	b = resp.AppendInt(b, int64(proto))
	b = resp.AppendBulkString(b, "id")
	b = resp.AppendInt(b, int64(c.id))
	b = resp.AppendBulkString(b, "mode")
	b = resp.AppendBulkString(b, "standalone")
	b = resp.AppendBulkString(b, "role")
	b = resp.AppendBulkString(b, "master")
	b = resp.AppendBulkString(b, "modules")
	b = resp.AppendArray(b, 0)
	r.reply = b
}

func validName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func hClientSetname(c *client, _ *route, cmd resp.Command, _ int) {
	if !validName(cmd.Args[2]) {
		c.localError("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	c.name = string(cmd.Args[2])
	c.localOK()
}

func hClientGetname(c *client, _ *route, _ resp.Command, _ int) {
	r := c.addReq()
	if c.name == "" {
		r.reply = resp.AppendNull(r.reply[:0], c.proto)
		return
	}
	r.reply = resp.AppendBulkString(r.reply[:0], c.name)
}

func hClientID(c *client, _ *route, _ resp.Command, _ int) {
	r := c.addReq()
	r.reply = resp.AppendInt(r.reply[:0], int64(c.id))
}

func hClientInfo(c *client, _ *route, _ resp.Command, _ int) {
	subs, psubs, ssubs := 0, 0, 0
	if c.ps != nil {
		subs, psubs, ssubs = c.ps.counts()
	}
	multi, flags := -1, ""
	if c.tx != nil {
		multi, flags = c.tx.n, "x"
	}
	if subs+psubs+ssubs > 0 {
		flags += "P"
	}
	if flags == "" {
		flags = "N"
	}
	// Every field of Redis 7.2's, in its order: clients parse them all
	// (redis-py's client_info() failed on a missing qbuf). The buffer
	// and memory fields are the ambassador's to know, not a node's: 0.
	line := fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=0 flags=%s db=0 sub=%d psub=%d ssub=%d multi=%d "+
		"qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info "+
		"user=%s redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
		c.id, c.conn.RemoteAddr(), c.conn.LocalAddr(), c.name, int(time.Since(c.started).Seconds()), flags,
		subs, psubs, ssubs, multi, userName(c.user), c.proto, c.libs[0], c.libs[1])
	r := c.addReq()
	r.reply = resp.AppendVerbatim(r.reply[:0], line, c.proto)
}

func userName(u string) string {
	if u == "" {
		return "default"
	}
	return u
}

func hClientOnOff(c *client, _ *route, cmd resp.Command, _ int) {
	switch strings.ToLower(string(cmd.Args[2])) {
	case "on", "off":
		c.localOK()
	default:
		c.localError("ERR syntax error")
	}
}

func hClientSetinfo(c *client, _ *route, cmd resp.Command, _ int) {
	if len(cmd.Args) != 4 {
		c.localError("ERR wrong number of arguments for 'client|setinfo' command")
		return
	}
	switch strings.ToLower(string(cmd.Args[2])) {
	case "lib-name":
		c.libs[0] = string(cmd.Args[3])
	case "lib-ver":
		c.libs[1] = string(cmd.Args[3])
	default:
		c.localError("ERR Unrecognized option '" + printableArg(cmd.Args[2]) + "'")
		return
	}
	c.localOK()
}

// supported lists the routes the ambassador runs (not the unsupported
// ones), sorted, for COMMAND.
func supported() []*route {
	var out []*route
	for _, rt := range routes { // top-level commands
		if isSupported(rt) {
			out = append(out, rt)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func isSupported(rt *route) bool {
	return rt.spec.RawInfo2 != "" && !rt.unsupported
}

var supportedCache []*route

func supportedRoutes() []*route {
	if supportedCache == nil {
		supportedCache = supported()
	}
	return supportedCache
}

func rawInfo(rt *route, proto int) string {
	if proto >= 3 {
		return rt.spec.RawInfo3
	}
	return rt.spec.RawInfo2
}

func hCommand(c *client, _ *route, _ resp.Command, _ int) {
	rts := supportedRoutes()
	r := c.addReq()
	b := resp.AppendArray(r.reply[:0], len(rts))
	for _, rt := range rts {
		b = append(b, rawInfo(rt, c.proto)...)
	}
	r.reply = b
}

func hCommandCount(c *client, _ *route, _ resp.Command, _ int) {
	r := c.addReq()
	r.reply = resp.AppendInt(r.reply[:0], int64(len(supportedRoutes())))
}

func hCommandInfo(c *client, _ *route, cmd resp.Command, _ int) {
	names := cmd.Args[2:]
	if len(names) == 0 {
		hCommand(c, nil, cmd, 0)
		return
	}
	r := c.addReq()
	b := resp.AppendArray(r.reply[:0], len(names))
	for _, n := range names {
		rt := lookupFullName(n)
		if rt == nil || !isSupported(rt) {
			b = resp.AppendNull(b, c.proto)
			continue
		}
		b = append(b, rawInfo(rt, c.proto)...)
	}
	r.reply = b
}

// lookupFullName finds a command ("get") or a subcommand ("config|get")
// by its full name, as Redis' lookupCommandBySds.
func lookupFullName(name []byte) *route {
	parent, sub, ok := bytes.Cut(name, []byte("|"))
	rt := lookupRoute(parent)
	if !ok || rt == nil {
		return rt
	}
	if rt.subs == nil || bytes.IndexByte(sub, '|') >= 0 {
		return nil
	}
	return lookupSub(rt, sub)
}

// supportedNames is every command and subcommand the ambassador runs,
// for COMMAND LIST: each command followed by its subcommands, sorted by
// name.
var supportedNames = sync.OnceValue(func() []*route {
	var out []*route
	for _, rt := range supported() {
		out = append(out, rt)
		var subs []*route
		for _, s := range rt.subs {
			if isSupported(s) {
				subs = append(subs, s)
			}
		}
		sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
		out = append(out, subs...)
	}
	return out
})

// hCommandList answers COMMAND LIST [FILTERBY MODULE name | ACLCAT cat |
// PATTERN glob] as Redis 7.0 does, over the commands and subcommands the
// ambassador runs (in its own order: Redis lists them in hash table
// order). There are no modules; an unknown ACL category matches nothing.
func hCommandList(c *client, _ *route, cmd resp.Command, _ int) {
	var match func(rt *route) bool
	switch args := cmd.Args[2:]; {
	case len(args) == 0:
	case len(args) == 3 && bytes.EqualFold(args[0], []byte("filterby")):
		arg := args[2]
		switch {
		case bytes.EqualFold(args[1], []byte("module")):
			match = func(*route) bool { return false }
		case bytes.EqualFold(args[1], []byte("aclcat")):
			cat := "@" + string(arg)
			match = func(rt *route) bool {
				for _, x := range rt.spec.ACLCategories {
					if strings.EqualFold(x, cat) {
						return true
					}
				}
				return false
			}
		case bytes.EqualFold(args[1], []byte("pattern")):
			match = func(rt *route) bool { return stringMatch(arg, []byte(rt.name), true) }
		default:
			c.localError("ERR syntax error")
			return
		}
	default:
		c.localError("ERR syntax error")
		return
	}
	rts := supportedNames()
	n := len(rts)
	if match != nil {
		n = 0
		for _, rt := range rts {
			if match(rt) {
				n++
			}
		}
	}
	r := c.addReq()
	b := resp.AppendArray(r.reply[:0], n)
	for _, rt := range rts {
		if match == nil || match(rt) {
			b = resp.AppendBulkString(b, rt.name)
		}
	}
	r.reply = b
}

// hCommandGetkeys answers COMMAND GETKEYS as redis-server 7.0 does, in
// its order: an unknown command, a command without key arguments, a wrong
// argument count, then the keys (an empty array when none are found and
// the command may have none, "Invalid arguments" otherwise).
func hCommandGetkeys(c *client, _ *route, cmd resp.Command, _ int) {
	args := cmd.Args[2:]
	rt := lookupRoute(args[0])
	if rt != nil && rt.subs != nil && len(args) > 1 {
		rt = lookupSub(rt, args[1])
	}
	if rt == nil {
		c.localError("ERR Invalid command specified")
		return
	}
	if !rt.spec.HasKeys() {
		c.localError("ERR The command has no key arguments")
		return
	}
	if !rt.spec.CheckArity(len(args)) {
		c.localError("ERR Invalid number of arguments specified for command")
		return
	}
	idx := rt.spec.GetKeys(args, nil)
	if len(idx) == 0 && !rt.spec.Has(commands.FlagNoMandatoryKeys) {
		c.localError("ERR Invalid arguments specified for command")
		return
	}
	r := c.addReq()
	b := resp.AppendArray(r.reply[:0], len(idx))
	for _, i := range idx {
		b = resp.AppendBulk(b, args[i])
	}
	r.reply = b
}
