package resp

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Golden frames: testdata/requests/*.resp are requests (one or a
// pipeline), testdata/replies/*.resp one reply each, many captured from a
// real redis-server 7. Each has a .golden file with what the codec makes
// of it. -update rewrites the .golden files; -capture (needs redis-server
// in PATH) re-captures the real replies first.
var (
	update  = flag.Bool("update", false, "rewrite testdata/*/*.golden")
	capture = flag.Bool("capture", false, "re-capture testdata/replies/redis7_*.resp from a real redis-server")
)

func TestGoldenRequests(t *testing.T) {
	files, _ := filepath.Glob("testdata/requests/*.resp")
	if len(files) < 10 {
		t.Fatalf("only %d request frames in testdata/requests", len(files))
	}
	for _, file := range files {
		in, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got := describeRequests(in)
		checkGolden(t, strings.TrimSuffix(file, ".resp")+".golden", got)
	}
}

// describeRequests renders what Parse makes of a request stream, one
// line per command, then how the stream ends.
func describeRequests(buf []byte) string {
	var b strings.Builder
	var p Parser
	pos := 0
	for {
		cmd, n, need, err := p.Parse(buf[pos:])
		if err == ErrIncomplete {
			if pos == len(buf) {
				b.WriteString("end\n")
			} else {
				fmt.Fprintf(&b, "incomplete: %d bytes left, need %d\n", len(buf)-pos, need)
			}
			return b.String()
		}
		if err != nil {
			fmt.Fprintf(&b, "error: %s\n", err)
			return b.String()
		}
		kind := "inline"
		if cmd.Raw != nil {
			kind = "multibulk"
		}
		if len(cmd.Args) == 0 {
			fmt.Fprintf(&b, "empty (%d bytes)\n", n)
		} else {
			fmt.Fprintf(&b, "%s (%d bytes):", kind, n)
			for _, a := range cmd.Args {
				fmt.Fprintf(&b, " %q", a)
			}
			b.WriteString("\n")
		}
		pos += n
	}
}

func TestGoldenReplies(t *testing.T) {
	if *capture {
		captureReplies(t)
	}
	files, _ := filepath.Glob("testdata/replies/*.resp")
	if len(files) < 20 {
		t.Fatalf("only %d reply frames in testdata/replies", len(files))
	}
	var stream []byte
	var lens []int
	for _, file := range files {
		in, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n, err := ReplyLen(in)
		if err != nil || n != len(in) {
			t.Errorf("%s: ReplyLen %d, %v; the file is one reply of %d bytes", file, n, err, len(in))
			continue
		}
		for k := 0; k < len(in); k++ {
			if _, err := ReplyLen(in[:k]); err != ErrIncomplete {
				t.Errorf("%s[:%d]: %v, want ErrIncomplete", file, k, err)
				break
			}
		}
		stream = append(stream, in...)
		lens = append(lens, len(in))
		checkGolden(t, strings.TrimSuffix(file, ".resp")+".golden", describeReply(in, ""))
	}
	// all of them back to back, as a backend connection delivers them
	for i, l := range lens {
		n, err := ReplyLen(stream)
		if err != nil || n != l {
			t.Fatalf("stream reply %d: %d, %v; want %d", i, n, err, l)
		}
		stream = stream[n:]
	}
}

// describeReply renders a reply as a tree, using the package's own
// helpers (ReplyLen, Elems, Bulk, Int).
func describeReply(r []byte, indent string) string {
	var b strings.Builder
	switch r[0] {
	case '*', '~', '>', '%':
		elems, typ, null, err := Elems(r, nil)
		if err != nil {
			return indent + "ERROR " + err.Error() + "\n"
		}
		name := map[byte]string{'*': "array", '~': "set", '>': "push", '%': "map"}[typ]
		if null {
			return indent + "null " + name + "\n"
		}
		n := len(elems)
		if typ == '%' {
			n /= 2
		}
		fmt.Fprintf(&b, "%s%s(%d)\n", indent, name, n)
		for _, e := range elems {
			b.WriteString(describeReply(e, indent+"  "))
		}
	case '|':
		nl := bytes.IndexByte(r, '\n')
		cnt, _ := strconv.Atoi(string(r[1 : nl-1]))
		fmt.Fprintf(&b, "%sattribute(%d)\n", indent, cnt)
		pos := nl + 1
		for range 2 * cnt {
			l, _ := ReplyLen(r[pos:])
			b.WriteString(describeReply(r[pos:pos+l], indent+"  "))
			pos += l
		}
		b.WriteString(indent + "then\n")
		b.WriteString(describeReply(r[pos:], indent+"  "))
	case ':':
		v, ok := Int(r)
		fmt.Fprintf(&b, "%sint %d %v\n", indent, v, ok)
	case '$', '=', '!', '+', '-':
		name := map[byte]string{'$': "bulk", '=': "verbatim", '!': "blob error", '+': "simple", '-': "error"}[r[0]]
		v, ok := Bulk(r)
		if !ok {
			return indent + "null " + name + "\n"
		}
		if IsError(r) {
			name += " (IsError)"
		}
		if len(v) > 64 {
			fmt.Fprintf(&b, "%s%s %d bytes %q...\n", indent, name, len(v), v[:64])
		} else {
			fmt.Fprintf(&b, "%s%s %q\n", indent, name, v)
		}
	default:
		fmt.Fprintf(&b, "%sline %q\n", indent, bytes.TrimRight(r, "\r\n"))
	}
	return b.String()
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}

// captureReplies starts a redis-server and records its replies, in RESP2
// and RESP3, to commands that produce every reply type.
func captureReplies(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("-capture needs redis-server: apt-get install -y redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--enable-debug-command", "yes", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var conn net.Conn
	for range 100 {
		if conn, err = net.Dial("tcp", l.Addr().String()); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var buf []byte
	do := func(args ...string) []byte {
		_, _ = conn.Write(AppendCommandStrings(nil, args...))
		tmp := make([]byte, 1<<16)
		for {
			if n, err := ReplyLen(buf); err == nil {
				r := bytes.Clone(buf[:n])
				buf = buf[n:]
				return r
			}
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(tmp)
			if err != nil {
				t.Fatalf("%q: %v", args, err)
			}
			buf = append(buf, tmp[:n]...)
		}
	}
	save := func(name string, r []byte) {
		if err := os.WriteFile(filepath.Join("testdata/replies", "redis7_"+name+".resp"), r, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do("RPUSH", "list", "a", "b", "c")
	do("HSET", "hash", "f1", "v1", "f2", "v2")
	do("ZADD", "z", "1.5", "m1", "2", "m2")
	do("SET", "big", strings.Repeat("0123456789", 2000))
	for _, proto := range []string{"2", "3"} {
		save("resp"+proto+"_hello", do("HELLO", proto))
		types := []string{"string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "verbatim", "true", "false"}
		for _, typ := range types {
			save("resp"+proto+"_debug_protocol_"+typ, do("DEBUG", "PROTOCOL", typ))
		}
		save("resp"+proto+"_command_info_get", do("COMMAND", "INFO", "GET"))
		save("resp"+proto+"_hgetall", do("HGETALL", "hash"))
		save("resp"+proto+"_zrange_withscores", do("ZRANGE", "z", "0", "-1", "WITHSCORES"))
		save("resp"+proto+"_lrange", do("LRANGE", "list", "0", "-1"))
		save("resp"+proto+"_get_missing", do("GET", "missing"))
		save("resp"+proto+"_get_big", do("GET", "big"))
		save("resp"+proto+"_blpop_timeout", do("BLPOP", "nolist", "0.01"))
		save("resp"+proto+"_unknown_command", do("NOSUCHCMD", "a"))
		save("resp"+proto+"_wrongtype", do("LPUSH", "hash", "x"))
		save("resp"+proto+"_info_keyspace", do("INFO", "keyspace"))
		save("resp"+proto+"_scan", do("SCAN", "0", "COUNT", "100"))
		save("resp"+proto+"_exec_empty", do("EXEC"))
	}
	// RESP3 only: a push (the reply to SUBSCRIBE) and a push followed by
	// its reply (DEBUG PROTOCOL push) -- two frames
	save("resp3_subscribe_push", do("SUBSCRIBE", "ch"))
}
