package redis

import (
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ambassador-proxy/ambassador/protocols/redis/commands"
)

// Every command and subcommand of the table has a route with a handler;
// the route table names only commands that exist (a typo would silently
// leave a command on its default route).
func TestRouteTableComplete(t *testing.T) {
	n := 0
	for _, spec := range commands.All() {
		rt := routes[spec.Name]
		if rt == nil || rt.h == nil {
			t.Errorf("%s: no route", spec.Name)
			continue
		}
		n++
		for _, sub := range spec.Subcommands {
			name := strings.TrimPrefix(sub.Name, spec.Name+"|")
			srt := rt.subs[name]
			if srt == nil || srt.h == nil {
				t.Errorf("%s: no route", sub.Name)
			}
		}
	}
	if n < 200 {
		t.Fatalf("only %d commands routed", n)
	}
	// newer than the server the table comes from (Redis 7.2): routed
	// when the table has them
	newer := map[string]bool{"client|no-touch": true, "waitaof": true}
	for name := range routeTable {
		if findRoute(name) == nil && !newer[name] {
			t.Errorf("routeTable names %q, which is not in the command table", name)
		}
	}
	for name := range unsupportedCommands {
		if findRoute(name) == nil && !newer[name] {
			t.Errorf("unsupportedCommands names %q, which is not in the command table", name)
		}
	}
}

func findRoute(name string) *route {
	parent, sub, ok := strings.Cut(name, "|")
	rt := routes[parent]
	if !ok || rt == nil {
		return rt
	}
	return rt.subs[sub]
}

func sameHandler(a, b handler) bool {
	return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}

// The classes of the issue: each command is run by the handler of its
// class.
func TestRouteClasses(t *testing.T) {
	tests := []struct {
		h     handler
		names []string
	}{
		{hKeyed, []string{"get", "set", "hset", "zadd", "xadd", "rename", "smove", "lmove", "sinterstore", "zunionstore",
			"pfmerge", "bitop", "eval", "evalsha", "fcall", "msetnx", "object|encoding", "memory|usage", "xinfo|stream"}},
		{hCopy, []string{"copy"}},
		{hMget, []string{"mget"}},
		{hMset, []string{"mset"}},
		{hSumKeys, []string{"del", "unlink", "exists", "touch"}},
		{hAllConcat, []string{"keys"}},
		{hScan, []string{"scan"}},
		{hAllSum, []string{"dbsize"}},
		{hRandomKey, []string{"randomkey"}},
		{hAllOK, []string{"flushdb", "flushall", "config|resetstat", "script|flush"}},
		{hAllSame, []string{"script|load", "function|load"}},
		{hScriptExists, []string{"script|exists"}},
		{hInfo, []string{"info"}},
		{hAny, []string{"time"}}, {hConfigSet, []string{"config|set"}}, {hConfigGet, []string{"config|get"}},
		{hBlocking, []string{"blpop", "brpop", "blmove", "brpoplpush", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "xread", "xreadgroup"}},
		{hWait, []string{"wait"}},
		{hPing, []string{"ping"}}, {hEcho, []string{"echo"}}, {hSelect, []string{"select"}}, {hQuit, []string{"quit"}},
		{hReset, []string{"reset"}}, {hHello, []string{"hello"}}, {hAuth, []string{"auth"}},
		{hMulti, []string{"multi"}}, {hExec, []string{"exec"}}, {hDiscard, []string{"discard"}}, {hWatch, []string{"watch"}},
		{hSubscribe, []string{"subscribe", "psubscribe", "ssubscribe"}},
		{hUnsubscribe, []string{"unsubscribe", "punsubscribe", "sunsubscribe"}},
		{hChannel, []string{"publish", "spublish"}},
		{hUnsupported, []string{"monitor", "debug", "cluster|info", "shutdown", "swapdb", "move", "client|kill", "client|list",
			"config|rewrite", "acl|setuser", "module|list", "save", "replicaof", "failover", "slowlog|get", "migrate"}},
	}
	for _, tt := range tests {
		for _, name := range tt.names {
			rt := findRoute(name)
			if rt == nil {
				t.Errorf("%s: no route", name)
				continue
			}
			if !sameHandler(rt.h, tt.h) {
				t.Errorf("%s runs %s, want %s", name, runtimeName(rt.h), runtimeName(tt.h))
			}
		}
	}
}

func runtimeName(h handler) string {
	return strings.TrimPrefix(runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name(), "github.com/ambassador-proxy/ambassador/protocols/redis.")
}

// Transaction and Pub/Sub classes.
func TestRouteFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tx        txMode
		noMulti   bool
		pubsubOK  bool
		txControl bool
		noAuth    bool
	}{
		{name: "get", tx: txKeyed},
		{name: "mget", tx: txKeyed},
		{name: "blpop", tx: txKeyed},
		{name: "publish", tx: txKeyed},
		{name: "ping", tx: txAny, pubsubOK: true},
		{name: "time", tx: txAny},
		{name: "keys", tx: txRefuse},
		{name: "subscribe", tx: txRefuse, noMulti: true, pubsubOK: true},
		{name: "psubscribe", tx: txRefuse, noMulti: true, pubsubOK: true},
		{name: "watch", tx: txKeyed, txControl: true}, // txControl: never queued
		{name: "multi", tx: txRefuse, txControl: true},
		{name: "exec", tx: txRefuse, txControl: true},
		{name: "quit", tx: txRefuse, pubsubOK: true, txControl: true, noAuth: true},
		{name: "reset", tx: txRefuse, pubsubOK: true, txControl: true, noAuth: true},
		{name: "auth", tx: txRefuse, noAuth: true},
		{name: "hello", tx: txRefuse, noAuth: true},
		{name: "monitor", tx: txRefuse},
	} {
		rt := findRoute(tc.name)
		if rt == nil {
			t.Errorf("%s: no route", tc.name)
			continue
		}
		got := struct {
			tx                                   txMode
			noMulti, pubsubOK, txControl, noAuth bool
		}{rt.txMode, rt.noMulti, rt.pubsubOK, rt.txControl, rt.noAuth}
		want := struct {
			tx                                   txMode
			noMulti, pubsubOK, txControl, noAuth bool
		}{tc.tx, tc.noMulti, tc.pubsubOK, tc.txControl, tc.noAuth}
		if got != want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, want)
		}
	}
}

func TestLookupRoute(t *testing.T) {
	for _, name := range []string{"get", "GET", "gEt"} {
		if rt := lookupRoute([]byte(name)); rt == nil || rt.name != "get" {
			t.Errorf("lookupRoute(%q) = %v", name, rt)
		}
	}
	if rt := lookupRoute([]byte("nosuchcommand")); rt != nil {
		t.Errorf("lookupRoute(nosuchcommand) = %v", rt.name)
	}
	if rt := lookupRoute([]byte(strings.Repeat("g", 100))); rt != nil {
		t.Errorf("lookupRoute of a long name = %v", rt.name)
	}
	cfg := lookupRoute([]byte("CONFIG"))
	if sub := lookupSub(cfg, []byte("GeT")); sub == nil || sub.name != "config|get" {
		t.Errorf("lookupSub(config, GeT) = %v", sub)
	}
	name := []byte("ZRANGEBYSCORE")
	if a := testing.AllocsPerRun(100, func() { lookupRoute(name) }); a != 0 {
		t.Errorf("lookupRoute allocates %v times", a)
	}
}

func TestUnknownCommandText(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"FOOBAR"}, "ERR unknown command 'FOOBAR', with args beginning with: "},
		{[]string{"FOOBAR", "a", "b"}, "ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b' "},
		{[]string{"x\r\ny", "a\nb"}, "ERR unknown command 'x  y', with args beginning with: 'a b' "},
	} {
		args := make([][]byte, len(tc.args))
		for i, a := range tc.args {
			args[i] = []byte(a)
		}
		if got := unknownCommand(args); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
	// long arguments are cut, the message stays one line of bounded size
	long := [][]byte{[]byte("X")}
	for range 100 {
		long = append(long, []byte(strings.Repeat("a", 200)))
	}
	if got := unknownCommand(long); len(got) > 1024 || strings.ContainsAny(got, "\r\n") {
		t.Errorf("unknown command message of %d bytes", len(got))
	}
}

func TestBlockTimeout(t *testing.T) {
	tests := []struct {
		name string
		args []string
		d    time.Duration
		ok   bool
	}{
		{"blpop", []string{"blpop", "a", "b", "0"}, -1, true},
		{"blpop", []string{"blpop", "a", "1.5"}, 1500 * time.Millisecond, true},
		{"brpop", []string{"brpop", "a", "0.01"}, 10 * time.Millisecond, true},
		{"blmove", []string{"blmove", "a", "b", "LEFT", "RIGHT", "2"}, 2 * time.Second, true},
		{"blmpop", []string{"blmpop", "3", "2", "a", "b", "LEFT"}, 3 * time.Second, true},
		{"bzmpop", []string{"bzmpop", "0", "1", "z", "MIN"}, -1, true},
		{"xread", []string{"xread", "COUNT", "1", "STREAMS", "s", "0"}, 0, false},
		{"xread", []string{"xread", "BLOCK", "250", "STREAMS", "s", "$"}, 250 * time.Millisecond, true},
		{"xread", []string{"xread", "block", "0", "STREAMS", "s", "$"}, -1, true},
		{"xread", []string{"xread", "STREAMS", "block", "s", "0", "0"}, 0, false}, // "block" is a key here
		{"xreadgroup", []string{"xreadgroup", "GROUP", "g", "c", "BLOCK", "100", "STREAMS", "s", ">"}, 100 * time.Millisecond, true},
		{"wait", []string{"wait", "1", "500"}, 500 * time.Millisecond, true},
		{"wait", []string{"wait", "0", "0"}, -1, true},
		{"blpop", []string{"blpop", "a", "notanumber"}, 0, true},
		{"blpop", []string{"blpop", "a", "-1"}, 0, true},
		{"blpop", []string{"blpop", "a", "inf"}, 0, true},
	}
	for _, tt := range tests {
		args := make([][]byte, len(tt.args))
		for i, a := range tt.args {
			args[i] = []byte(a)
		}
		d, ok := blockTimeout(tt.name, args)
		if d != tt.d || ok != tt.ok {
			t.Errorf("%q: %v, %v; want %v, %v", tt.args, d, ok, tt.d, tt.ok)
		}
	}
}

// TestBackgroundPanicContained: a panic on a background goroutine (a bug)
// ends it with a log line; the process goes on and Shutdown's wait ends.
func TestBackgroundPanicContained(t *testing.T) {
	var logged strings.Builder
	f := &Frontend{log: slog.New(slog.NewTextHandler(&logged, nil))}
	f.goBackground(func() { panic("bug") })
	done := make(chan struct{})
	go func() { f.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the goroutine that panicked was not waited for")
	}
	if !strings.Contains(logged.String(), "panic") || !strings.Contains(logged.String(), "bug") {
		t.Errorf("log: %q", logged.String())
	}
}
