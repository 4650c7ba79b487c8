package resp

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// parseAll parses every complete command at the start of buf, as the
// client loop does, and returns them (args copied), the bytes consumed,
// and the error that stopped it (ErrIncomplete at the end of the data).
func parseAll(p *Parser, buf []byte) (cmds [][]string, consumed int, err error) {
	for {
		cmd, n, _, err := p.Parse(buf[consumed:])
		if err != nil {
			return cmds, consumed, err
		}
		consumed += n
		if len(cmd.Args) == 0 {
			continue
		}
		args := make([]string, len(cmd.Args))
		for i, a := range cmd.Args {
			args[i] = string(a)
		}
		cmds = append(cmds, args)
	}
}

func mb(args ...string) string { return string(AppendCommandStrings(nil, args...)) }

func TestParseMultibulk(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"get", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", []string{"GET", "k"}},
		{"empty arg", "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n", []string{"SET", "", ""}},
		{"binary", "*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\x00\xff\"\r\n", []string{"ECHO", "a\r\n\x00\xff\""}},
		{"crlf inside bulk", mb("SET", "k\r\n", "\r\n\r\n"), []string{"SET", "k\r\n", "\r\n\r\n"}},
		{"1 MiB bulk", mb("SET", "k", big), []string{"SET", "k", big}},
		{"many args", mb(strings.Split(strings.Repeat("a ", 1000)+"b", " ")...), strings.Split(strings.Repeat("a ", 1000)+"b", " ")},
		{"lowercase", "*1\r\n$4\r\nping\r\n", []string{"ping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Parser
			buf := []byte(tt.in + "*1\r\n$4\r\nNEXT\r\n")
			cmd, n, need, err := p.Parse(buf)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n != len(tt.in) || need != 0 {
				t.Errorf("consumed %d need %d, want %d and 0", n, need, len(tt.in))
			}
			if !bytes.Equal(cmd.Raw, []byte(tt.in)) {
				t.Errorf("Raw = %q, want the request as received", cmd.Raw)
			}
			if got := strs(cmd.Args); !equal(got, tt.want) {
				t.Errorf("args = %.80q, want %.80q", got, tt.want)
			}
			// zero-copy: every argument is a slice of buf, capped so an
			// append cannot overwrite the next bytes
			for i, a := range cmd.Args {
				if len(a) > 0 && !within(buf, a) {
					t.Errorf("arg %d is a copy, not a slice of the buffer", i)
				}
				if cap(a) != len(a) {
					t.Errorf("arg %d has cap %d > len %d", i, cap(a), len(a))
				}
			}
			if cap(cmd.Raw) != len(cmd.Raw) {
				t.Errorf("Raw has spare capacity %d: an append would clobber the next command", cap(cmd.Raw)-len(cmd.Raw))
			}
		})
	}
}

func within(buf, s []byte) bool {
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= b && p+uintptr(len(s)) <= b+uintptr(len(buf))
}

func strs(args [][]byte) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = string(a)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Inline commands with Redis's quoting rules. The expectations were
// checked against redis-server 7.0 (ECHO of each argument).
func TestParseInline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"PING\r\n", []string{"PING"}},
		{"PING\n", []string{"PING"}},
		{"  SET   k  v  \r\n", []string{"SET", "k", "v"}},
		{"SET\tk\tv\r\n", []string{"SET", "k", "v"}},
		{"SET k \"hello world\"\r\n", []string{"SET", "k", "hello world"}},
		{"ECHO \"a\\x41\\n\"\r\n", []string{"ECHO", "aA\n"}},
		{"ECHO \"\\r\\t\\b\\a\\\\\\\"\"\r\n", []string{"ECHO", "\r\t\b\a\\\""}},
		{"ECHO \"\\xzz\"\r\n", []string{"ECHO", "xzz"}},
		{"ECHO \"\\x4\"\r\n", []string{"ECHO", "x4"}},
		{"ECHO \"\\q\"\r\n", []string{"ECHO", "q"}},
		{"ECHO 'a\\'b'\r\n", []string{"ECHO", "a'b"}},
		{"ECHO 'a\\nb'\r\n", []string{"ECHO", "a\\nb"}},
		{"ECHO \"\"\r\n", []string{"ECHO", ""}},
		{"ECHO ''\r\n", []string{"ECHO", ""}},
		{"ECHO a\"b c\"\r\n", []string{"ECHO", "ab c"}}, // a quote opens mid-word, as in sdssplitargs
		{"ECHO \"a b\" 'c d'\r\n", []string{"ECHO", "a b", "c d"}},
		{"ECHO \"\\xFf\\x00\"\r\n", []string{"ECHO", "\xff\x00"}},
	}
	for _, tt := range tests {
		var p Parser
		cmd, n, _, err := p.Parse([]byte(tt.in + "REST"))
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if n != len(tt.in) {
			t.Errorf("%q: consumed %d, want %d", tt.in, n, len(tt.in))
		}
		if cmd.Raw != nil {
			t.Errorf("%q: Raw = %q, want nil for an inline command (it must be re-encoded)", tt.in, cmd.Raw)
		}
		if got := strs(cmd.Args); !equal(got, tt.want) {
			t.Errorf("%q: args %q, want %q", tt.in, got, tt.want)
		}
	}
}

// An empty line, "*0" and a negative count are empty commands: consumed,
// no reply (Redis answers the PING after them only).
func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"\r\n", "\n", "   \r\n", "\t\n", "*0\r\n", "*-1\r\n", "*-5\r\n"} {
		var p Parser
		cmd, n, need, err := p.Parse([]byte(in + "PING\r\n"))
		if err != nil || n != len(in) || need != 0 || len(cmd.Args) != 0 {
			t.Errorf("%q: args %q n %d need %d err %v; want an empty command of %d bytes", in, cmd.Args, n, need, err, len(in))
		}
	}
}

// Errors carry Redis's exact message (checked against redis-server 7.0,
// which replies "-ERR " + the message and closes the connection).
func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"*abc\r\n", "Protocol error: invalid multibulk length"},
		{"*\r\n", "Protocol error: invalid multibulk length"},
		{"*1\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"},
		{"*03\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"},
		{"*-0\r\n", "Protocol error: invalid multibulk length"},
		{"*+1\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"},
		{"*1 \r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"},
		{"*3\r\n:1\r\n", "Protocol error: expected '$', got ':'"},
		{"*1\r\n*1\r\n", "Protocol error: expected '$', got '*'"},
		{"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$-0\r\n\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$03\r\nfoo\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$+3\r\nfoo\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$3\nfoo\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$4\r\nPINGxx", "Protocol error: invalid bulk length"}, // Redis skips 2 bytes unchecked; the ambassador refuses
		{"PING \"a\r\n", "Protocol error: unbalanced quotes in request"},
		{"ECHO \"a\"b\r\n", "Protocol error: unbalanced quotes in request"},
		{"ECHO 'a'b\r\n", "Protocol error: unbalanced quotes in request"},
		{"ECHO a\"b c\"d\r\n", "Protocol error: unbalanced quotes in request"},
		{"ECHO 'abc\r\n", "Protocol error: unbalanced quotes in request"},
	}
	for _, tt := range tests {
		var p Parser
		_, n, _, err := p.Parse([]byte(tt.in))
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%q: err %v (n %d), want a *ProtocolError", tt.in, err, n)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, err.Error(), tt.want)
		}
	}
}

func TestParseLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		in     string
		want   string // "" = parses
	}{
		{"bulk at the limit", Limits{MaxBulkLen: 5}, mb("SET", "k", "12345"), ""},
		{"bulk over the limit", Limits{MaxBulkLen: 5}, mb("SET", "k", "123456"), "Protocol error: invalid bulk length"},
		{"bulk header over the limit, no data yet", Limits{MaxBulkLen: 1 << 20}, "*1\r\n$2000000\r\n", "Protocol error: invalid bulk length"},
		{"default bulk limit 512 MB", Limits{}, "*1\r\n$536870913\r\n", "Protocol error: invalid bulk length"},
		{"count at the limit", Limits{MaxMultibulkLen: 3}, mb("A", "B", "C"), ""},
		{"count over the limit", Limits{MaxMultibulkLen: 3}, "*4\r\n", "Protocol error: invalid multibulk length"},
		{"default count limit 1M", Limits{}, "*1048577\r\n", "Protocol error: invalid multibulk length"},
		{"unauthenticated: at most 10 arguments", Limits{Unauthenticated: true}, "*11\r\n", "Protocol error: unauthenticated multibulk length"},
		{"unauthenticated: 10 arguments", Limits{Unauthenticated: true}, mb("A", "B", "C", "D", "E", "F", "G", "H", "I", "J"), ""},
		{"unauthenticated: arguments of at most 16 KB", Limits{Unauthenticated: true}, "*1\r\n$16385\r\n", "Protocol error: unauthenticated bulk length"},
		{"unauthenticated: a 16 KB argument", Limits{Unauthenticated: true}, mb(strings.Repeat("x", 16384)), ""},
		{"count limit at most INT_MAX, as Redis 7", Limits{MaxMultibulkLen: 1<<31 - 1}, "*2147483648\r\n", "Protocol error: invalid multibulk length"},
		{"inline too big", Limits{MaxInlineLen: 10}, "GET 12345678", "Protocol error: too big inline request"},
		{"default inline limit 64 KB", Limits{}, strings.Repeat("x", 64<<10+1), "Protocol error: too big inline request"},
		{"inline with newline over the size is fine", Limits{MaxInlineLen: 10}, "GET 12345678901234\r\n", ""},
		{"count string too big", Limits{MaxInlineLen: 10}, "*11111111111", "Protocol error: too big mbulk count string"},
		{"bulk count string too big", Limits{MaxInlineLen: 10}, "*1\r\n$11111111111", "Protocol error: too big bulk count string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Parser{Limits: tt.limits}
			_, _, _, err := p.Parse([]byte(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err %v, want a command", err)
				}
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || err.Error() != tt.want {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	// Under the limit, a large count is just incomplete.
	p := Parser{Limits: Limits{MaxMultibulkLen: 1<<31 - 1}}
	for _, in := range []string{"*1048576\r\n", "*1048577\r\n", "*2147483647\r\n"} {
		if _, _, _, err := p.Parse([]byte(in)); err != ErrIncomplete {
			t.Errorf("%q: %v, want ErrIncomplete", in, err)
		}
	}
}

// A declared count costs nothing ahead: the arguments are held as they
// arrive, so a client declaring INT_MAX arguments and sending three costs
// what it sent, and the parser waits for more (as Redis does).
func TestParseHugeCountAllocatesAsArgumentsArrive(t *testing.T) {
	in := []byte("*2147483647\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
	p := Parser{Limits: Limits{MaxMultibulkLen: 1<<31 - 1}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		_, n, need, err := p.Parse(in)
		if err != ErrIncomplete || n != 0 || need != len(in)+1 {
			t.Fatalf("Parse = n %d, need %d, %v; want ErrIncomplete and need %d", n, need, err, len(in)+1)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("10 parses of a 3-argument prefix of *2147483647 allocated %d bytes", got)
	}
	if cap(p.args) > 1024 {
		t.Errorf("the parser holds %d argument slots for 3 arguments", cap(p.args))
	}

	// Over 1M arguments parse when the limit allows them.
	const n = 1<<20 + 10
	var b []byte
	b = append(b, "*"+strconv.Itoa(n)+"\r\n"...)
	for range n {
		b = append(b, "$1\r\nx\r\n"...)
	}
	cmd, used, _, err := p.Parse(b)
	if err != nil || used != len(b) || len(cmd.Args) != n {
		t.Fatalf("%d arguments: %d args, %d of %d bytes, %v", n, len(cmd.Args), used, len(b), err)
	}
	// and the parser does not keep that many slots for the next command
	if _, _, _, err := p.Parse([]byte(mb("GET", "k"))); err != nil || cap(p.args) > maxKeepArgs {
		t.Errorf("after a huge command: %v, %d slots kept", err, cap(p.args))
	}
}

// need tells the caller how much to read: exact once a bulk header is in.
func TestParseNeed(t *testing.T) {
	full := mb("SET", "key", "hello world")
	var p Parser
	for k := 0; k < len(full); k++ {
		_, n, need, err := p.Parse([]byte(full[:k]))
		if err != ErrIncomplete || n != 0 {
			t.Fatalf("prefix %d: n %d err %v, want ErrIncomplete", k, n, err)
		}
		if need <= k || need > len(full) {
			t.Fatalf("prefix %d %q: need %d, want in (%d, %d]", k, full[:k], need, k, len(full))
		}
	}
	// once the last bulk's header is read, need is the whole command
	hdr := strings.Index(full, "$11\r\n") + len("$11\r\n")
	_, _, need, _ := p.Parse([]byte(full[:hdr+2]))
	if need != len(full) {
		t.Errorf("need %d after the last header, want %d", need, len(full))
	}
}

// pipeline mixes every request form the client loop meets.
var pipeline = strings.Join([]string{
	mb("SET", "k1", "v1"),
	"GET k1\r\n",
	"\r\n",
	"*0\r\n",
	mb("MSET", "a", "1", "b", "\r\n"),
	"ECHO \"x y\" 'z'\n",
	mb("GET", ""),
	mb(strings.Repeat("L", 300)),
	"   \r\n",
	"PING\r\n",
}, "")

var pipelineWant = [][]string{
	{"SET", "k1", "v1"}, {"GET", "k1"}, {"MSET", "a", "1", "b", "\r\n"}, {"ECHO", "x y", "z"},
	{"GET", ""}, {strings.Repeat("L", 300)}, {"PING"},
}

// A pipeline cut at every byte boundary parses to the same commands: the
// first part up to its last whole command, the rest after more bytes come.
func TestParsePipelineEveryBoundary(t *testing.T) {
	buf := []byte(pipeline)
	for cut := 0; cut <= len(buf); cut++ {
		var p Parser
		first, n, err := parseAll(&p, buf[:cut])
		if err != ErrIncomplete {
			t.Fatalf("cut %d: %v, want ErrIncomplete at the end", cut, err)
		}
		// the client keeps the unparsed tail and appends what comes next
		rest := append(append([]byte(nil), buf[n:cut]...), buf[cut:]...)
		second, m, err := parseAll(&p, rest)
		if err != ErrIncomplete || m != len(rest) {
			t.Fatalf("cut %d: second part consumed %d of %d, err %v", cut, m, len(rest), err)
		}
		got := append(first, second...)
		if len(got) != len(pipelineWant) {
			t.Fatalf("cut %d: %d commands %q, want %d", cut, len(got), got, len(pipelineWant))
		}
		for i := range got {
			if !equal(got[i], pipelineWant[i]) {
				t.Fatalf("cut %d: command %d = %q, want %q", cut, i, got[i], pipelineWant[i])
			}
		}
	}
}

// Byte by byte, as a slow client sends, honouring need.
func TestParseByteByByte(t *testing.T) {
	var p Parser
	var buf []byte
	var got [][]string
	need := 0
	for i := 0; i < len(pipeline); i++ {
		buf = append(buf, pipeline[i])
		if len(buf) < need {
			continue
		}
		for {
			cmd, n, nd, err := p.Parse(buf)
			if err == ErrIncomplete {
				need = nd
				break
			}
			if err != nil {
				t.Fatalf("byte %d: %v", i, err)
			}
			need = 0
			if len(cmd.Args) > 0 {
				got = append(got, strs(cmd.Args))
			}
			buf = buf[n:]
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(pipelineWant) {
		t.Fatalf("got %q, want %q", got, pipelineWant)
	}
}

// SplitArgs against the cases of Redis's sdssplitargs.
func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: unbalanced
	}{
		{"", []string{}},
		{"   ", []string{}},
		{"a b  c", []string{"a", "b", "c"}},
		{"\"a\"", []string{"a"}},
		{"\"a\" ", []string{"a"}},
		{"\"a\"b", nil},
		{"'a'b", nil},
		{"\"a", nil},
		{"'a", nil},
		{"\"\\\"", nil},
		{"'\\''", []string{"'"}},
		{"\"\\x41\\x4a\"", []string{"AJ"}},
		{"x\"y z\"", []string{"xy z"}},
		{"\"\\n\\r\\t\\b\\a\"", []string{"\n\r\t\b\a"}},
		{"a\x0bb", []string{"a\x0bb"}}, // \v separates only before an argument, as in sdssplitargs
		{"\x0ba", []string{"a"}},
	}
	for _, tt := range tests {
		got, ok := SplitArgs([]byte(tt.in), nil)
		if tt.want == nil {
			if ok {
				t.Errorf("%q: %q, want unbalanced", tt.in, strs(got))
			}
			continue
		}
		if !ok || !equal(strs(got), tt.want) {
			t.Errorf("%q: %q ok=%v, want %q", tt.in, strs(got), ok, tt.want)
		}
	}
}

// The args slice is reused from call to call (no per-command allocation),
// so the previous command's Args are invalid after the next Parse.
func TestParseReusesArgs(t *testing.T) {
	var p Parser
	a, _, _, _ := p.Parse([]byte(mb("GET", "a")))
	first := &a.Args[0]
	b, _, _, _ := p.Parse([]byte(mb("GET", "b")))
	if &b.Args[0] != first {
		t.Errorf("Parse allocated a new args slice for the second command")
	}
}

// A command of many arguments received over many reads is checked once,
// not from its start on every read; in pieces it parses as at once, and
// the limits it was checked under still hold when they change between
// the pieces (a RESET before it in the pipeline).
func TestParseInPieces(t *testing.T) {
	const n = 100000
	var b []byte
	b = append(b, "*"+strconv.Itoa(n)+"\r\n"...)
	for i := range n {
		b = AppendBulkString(b, strconv.Itoa(i))
	}
	var p Parser
	var buf []byte
	calls := 0
	for off := 0; ; {
		next := min(off+4096, len(b))
		buf = append(buf[:0:0], b[:next]...) // a new buffer each time, as a growing read buffer
		off = next
		calls++
		cmd, used, need, err := p.Parse(buf)
		if err == ErrIncomplete {
			if need <= len(buf) || off == len(b) {
				t.Fatalf("incomplete at %d of %d bytes, need %d", len(buf), len(b), need)
			}
			if p.part.pos > len(buf) || p.part.pos < len(buf)-64 {
				t.Fatalf("checked up to %d of %d bytes received", p.part.pos, len(buf))
			}
			continue
		}
		if err != nil || used != len(b) || len(cmd.Args) != n {
			t.Fatalf("%d args, %d of %d bytes, %v", len(cmd.Args), used, len(b), err)
		}
		for i, a := range cmd.Args {
			if string(a) != strconv.Itoa(i) {
				t.Fatalf("arg %d = %q", i, a)
			}
		}
		if !bytes.Equal(cmd.Raw, b) {
			t.Fatal("Raw is not the command")
		}
		break
	}
	if calls < 100 {
		t.Fatalf("only %d calls: the test did not feed pieces", calls)
	}

	// Checked while authenticated, the rest arrives after the client
	// became unauthenticated: the whole command is checked again.
	big := mb("SET", "k", strings.Repeat("v", 20000))
	p = Parser{}
	if _, _, _, err := p.Parse([]byte(big[:30])); err != ErrIncomplete {
		t.Fatalf("prefix: %v", err)
	}
	p.Limits.Unauthenticated = true
	if _, _, _, err := p.Parse([]byte(big)); err == nil || err.Error() != "Protocol error: unauthenticated bulk length" {
		t.Fatalf("after becoming unauthenticated: %v", err)
	}

	// Another command after Reset, or one that plainly is not the same,
	// is parsed from its start.
	p = Parser{}
	if _, _, _, err := p.Parse(b[:5000]); err != ErrIncomplete {
		t.Fatal(err)
	}
	p.Reset()
	if cmd, _, _, err := p.Parse([]byte(mb("GET", "k"))); err != nil || len(cmd.Args) != 2 {
		t.Fatalf("after Reset: %q %v", cmd.Args, err)
	}
	if _, _, _, err := p.Parse(b[:5000]); err != ErrIncomplete {
		t.Fatal(err)
	}
	if cmd, _, _, err := p.Parse([]byte(mb("GET", "k"))); err != nil || len(cmd.Args) != 2 {
		t.Fatalf("a different command: %q %v", cmd.Args, err)
	}
}
