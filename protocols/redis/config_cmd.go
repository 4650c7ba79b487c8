package redis

import (
	"strings"

	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

// The nodes' secrets and the settings that decide who may reach them or
// where they write are the operator's: a client of the ambassador needs
// no backend credentials and must not learn or change them.
var (
	// secretConfig are left out of CONFIG GET replies.
	secretConfig = map[string]bool{"requirepass": true, "masterauth": true, "masteruser": true}
	// guardedConfig are refused by CONFIG SET (with "tls-*").
	guardedConfig = map[string]bool{
		"requirepass": true, "masterauth": true, "masteruser": true, "aclfile": true,
		"bind": true, "bind-source-addr": true, "port": true, "tls-port": true, "protected-mode": true,
		"unixsocket": true, "unixsocketperm": true, "dir": true, "dbfilename": true,
		"appendfilename": true, "appenddirname": true, "logfile": true,
	}
)

// hConfigSet refuses guarded settings, else sets them on every node.
func hConfigSet(c *client, rt *route, cmd resp.Command, start int) {
	for i := 2; i < len(cmd.Args); i += 2 {
		name := strings.ToLower(string(cmd.Args[i]))
		if guardedConfig[name] || strings.HasPrefix(name, "tls-") {
			c.localError("ERR CONFIG SET " + printableArg(cmd.Args[i]) + " is refused by the ambassador: the nodes' credentials, addresses and files are the operator's settings")
			return
		}
	}
	hAllOK(c, rt, cmd, start)
}

// hConfigGet asks any node and leaves the secrets out of its reply.
func hConfigGet(c *client, _ *route, cmd resp.Command, _ int) {
	pool, err := c.anyNode()
	if err != nil {
		c.localError(replyFor(err))
		return
	}
	r := c.addReq()
	r.merge = mergeConfigGet
	sub := c.newReq()
	r.subs = append(r.subs, sub)
	c.forwardBytes(pool.sharedConn(c.proto, c.id), sub, c.encode(cmd.Args))
}

func mergeConfigGet(c *client, r *request) {
	reply := r.subs[0].reply
	elems, typ, _, err := resp.Elems(reply, nil)
	if resp.IsError(reply) || err != nil || len(elems)%2 != 0 {
		c.out = append(c.out, reply...)
		return
	}
	keep := 0
	for i := 0; i < len(elems); i += 2 {
		if name, _ := resp.Bulk(elems[i]); !secretConfig[strings.ToLower(string(name))] {
			keep++
		}
	}
	if typ == '%' {
		c.out = resp.AppendMap(c.out, keep, c.proto)
	} else {
		c.out = resp.AppendArray(c.out, 2*keep)
	}
	for i := 0; i < len(elems); i += 2 {
		if name, _ := resp.Bulk(elems[i]); !secretConfig[strings.ToLower(string(name))] {
			c.out = append(c.out, elems[i]...)
			c.out = append(c.out, elems[i+1]...)
		}
	}
}
