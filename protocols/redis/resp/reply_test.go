package resp

import (
	"errors"
	"strings"
	"testing"
)

// replies holds one reply of every RESP2 and RESP3 type, nested ones
// included. ReplyLen must return len(reply) for each, whatever follows.
var replies = []struct {
	name, reply string
}{
	{"simple", "+OK\r\n"},
	{"simple empty", "+\r\n"},
	{"error", "-ERR unknown command 'x'\r\n"},
	{"integer", ":12345\r\n"},
	{"negative integer", ":-1\r\n"},
	{"bulk", "$5\r\nhello\r\n"},
	{"bulk with CRLF inside", "$4\r\n\r\n\r\n\r\n"},
	{"empty bulk", "$0\r\n\r\n"},
	{"null bulk", "$-1\r\n"},
	{"null array", "*-1\r\n"},
	{"empty array", "*0\r\n"},
	{"array", "*3\r\n:1\r\n$1\r\na\r\n+b\r\n"},
	{"array with nulls", "*3\r\n$-1\r\n*-1\r\n_\r\n"},
	{"nested array", "*2\r\n*2\r\n*1\r\n:1\r\n*0\r\n*1\r\n$3\r\nabc\r\n"},
	{"SCAN reply", "*2\r\n$2\r\n17\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
	{"null", "_\r\n"},
	{"double", ",3.141\r\n"},
	{"double inf", ",inf\r\n"},
	{"boolean", "#t\r\n"},
	{"big number", "(1234567999999999999999999999999999999\r\n"},
	{"blob error", "!21\r\nSYNTAX invalid syntax\r\n"},
	{"verbatim", "=29\r\ntxt:This is a verbatim\nstring\r\n"},
	{"map", "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n"},
	{"empty map", "%0\r\n"},
	{"set", "~3\r\n:0\r\n:1\r\n:2\r\n"},
	{"push", ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nmsg\r\n"},
	{"attribute then its value", "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n"},
	{"attribute inside an array", "*2\r\n|1\r\n+a\r\n:1\r\n:2\r\n:3\r\n"},
	{"map of maps", "%2\r\n+a\r\n%1\r\n+x\r\n~1\r\n:1\r\n+b\r\n*1\r\n%0\r\n"},
	{"deep", strings.Repeat("*1\r\n", 500) + ":1\r\n"},
	{"big bulk", "$1048576\r\n" + strings.Repeat("z", 1<<20) + "\r\n"},
}

func TestReplyLen(t *testing.T) {
	for _, tt := range replies {
		for _, tail := range []string{"", "+NEXT\r\n", "$3\r\nab"} {
			n, err := ReplyLen([]byte(tt.reply + tail))
			if err != nil || n != len(tt.reply) {
				t.Errorf("%s + %q: %d, %v; want %d", tt.name, tail, n, err, len(tt.reply))
			}
		}
	}
}

// Every proper prefix of a reply is incomplete, never an error or a
// shorter reply.
func TestReplyLenIncompleteEveryBoundary(t *testing.T) {
	for _, tt := range replies {
		if len(tt.reply) > 4096 {
			// the big bulk: every boundary of its header and tail
			for _, k := range []int{0, 1, 5, 9, 10, 11, 1000, len(tt.reply) - 2, len(tt.reply) - 1} {
				if n, err := ReplyLen([]byte(tt.reply[:k])); err != ErrIncomplete {
					t.Errorf("%s[:%d]: %d, %v; want ErrIncomplete", tt.name, k, n, err)
				}
			}
			continue
		}
		for k := 0; k < len(tt.reply); k++ {
			if n, err := ReplyLen([]byte(tt.reply[:k])); err != ErrIncomplete {
				t.Errorf("%s[:%d] %q: %d, %v; want ErrIncomplete", tt.name, k, tt.reply[:k], n, err)
			}
		}
	}
}

// A stream of replies split anywhere parses to the same replies.
func TestReplyStreamEveryBoundary(t *testing.T) {
	var stream string
	var want []string
	for _, tt := range replies {
		if len(tt.reply) < 4096 {
			stream += tt.reply
			want = append(want, tt.reply)
		}
	}
	for cut := 0; cut <= len(stream); cut += 7 {
		var got []string
		buf := []byte(stream[:cut])
		feed := stream[cut:]
		for {
			n, err := ReplyLen(buf)
			if err == ErrIncomplete {
				if feed == "" {
					break
				}
				buf = append(buf, feed...)
				feed = ""
				continue
			}
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			got = append(got, string(buf[:n]))
			buf = buf[n:]
		}
		if len(buf) != 0 || !equal(got, want) {
			t.Fatalf("cut %d: %d replies (left %q), want %d", cut, len(got), buf, len(want))
		}
	}
}

func TestReplyLenGarbage(t *testing.T) {
	for _, in := range []string{
		"x\r\n",
		"OK\r\n",
		"\r\n",
		"+OK\n",
		"$abc\r\n",
		"$-2\r\n",
		"!-1\r\n",
		"=-1\r\n",
		"$3\r\nabcde\r\n",
		"$\r\n",
		"*abc\r\n",
		"*-2\r\n",
		"~-1\r\n",
		"%-1\r\n",
		"*1\r\n?\r\n",
		"*4294967297\r\n",
		"$99999999999999999999\r\n",
		"*2\r\n:1\r\nHTTP/1.1 400 Bad Request\r\n",
	} {
		n, err := ReplyLen([]byte(in))
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%q: %d, %v; want a *ProtocolError", in, n, err)
		}
	}
}

// Lengths near the int64 limit are incomplete (or an error), never a
// panic or a wrong length.
func TestReplyLenHugeLengths(t *testing.T) {
	for _, in := range []string{
		"$9223372036854775807\r\n",
		"$9223372036854775806\r\nab",
		"!9223372036854775807\r\nxx",
		"=9223372036854775805\r\n",
		"$9223372036854775808\r\n",
		"*4294967296\r\n",
		"%4294967296\r\n",
		"|4294967296\r\n",
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%q: panic %v", in, r)
				}
			}()
			n, err := ReplyLen([]byte(in))
			if err == nil {
				t.Errorf("%q: length %d, want incomplete or an error", in, n)
			}
		}()
	}
	if _, ok := Bulk([]byte("$9223372036854775807\r\nabc\r\n")); ok {
		t.Errorf("Bulk of a reply shorter than its length: ok")
	}
}

func TestElems(t *testing.T) {
	tests := []struct {
		in   string
		typ  byte
		null bool
		want []string
	}{
		{"*2\r\n$1\r\na\r\n:1\r\n", '*', false, []string{"$1\r\na\r\n", ":1\r\n"}},
		{"*-1\r\n", '*', true, nil},
		{"*0\r\n", '*', false, nil},
		{"~1\r\n+x\r\n", '~', false, []string{"+x\r\n"}},
		{">2\r\n+a\r\n*1\r\n:1\r\n", '>', false, []string{"+a\r\n", "*1\r\n:1\r\n"}},
		{"%1\r\n+k\r\n*0\r\n", '%', false, []string{"+k\r\n", "*0\r\n"}},
	}
	for _, tt := range tests {
		dst := [][]byte{[]byte("kept")}
		elems, typ, null, err := Elems([]byte(tt.in), dst)
		if err != nil || typ != tt.typ || null != tt.null {
			t.Errorf("%q: typ %c null %v err %v", tt.in, typ, null, err)
			continue
		}
		if got := strs(elems[1:]); !equal(got, tt.want) || string(elems[0]) != "kept" {
			t.Errorf("%q: %q, want [kept] + %q", tt.in, strs(elems), tt.want)
		}
	}
	for _, in := range []string{"+OK\r\n", "$1\r\na\r\n", ":1\r\n"} {
		if _, _, _, err := Elems([]byte(in), nil); err == nil {
			t.Errorf("Elems(%q): no error for a non-aggregate", in)
		}
	}
	if _, _, _, err := Elems([]byte("*2\r\n:1\r\n"), nil); err != ErrIncomplete {
		t.Errorf("Elems of a truncated array: %v, want ErrIncomplete", err)
	}
}

func TestBulkIntErrors(t *testing.T) {
	bulks := []struct {
		in   string
		want string
		ok   bool
	}{
		{"$5\r\nhello\r\n", "hello", true},
		{"$0\r\n\r\n", "", true},
		{"$-1\r\n", "", false},
		{"+OK\r\n", "OK", true},
		{"-ERR x\r\n", "ERR x", true},
		{"!5\r\nERR x\r\n", "ERR x", true},
		{"=8\r\ntxt:abcd\r\n", "abcd", true},
		{":1\r\n", "", false},
		{"_\r\n", "", false},
	}
	for _, tt := range bulks {
		b, ok := Bulk([]byte(tt.in))
		if ok != tt.ok || string(b) != tt.want {
			t.Errorf("Bulk(%q) = %q, %v; want %q, %v", tt.in, b, ok, tt.want, tt.ok)
		}
	}
	ints := []struct {
		in   string
		want int64
		ok   bool
	}{
		{":0\r\n", 0, true}, {":-42\r\n", -42, true}, {":9223372036854775807\r\n", 1<<63 - 1, true},
		{"+1\r\n", 0, false}, {":\r\n", 0, false}, {":x\r\n", 0, false},
	}
	for _, tt := range ints {
		v, ok := Int([]byte(tt.in))
		if v != tt.want || ok != tt.ok {
			t.Errorf("Int(%q) = %d, %v; want %d, %v", tt.in, v, ok, tt.want, tt.ok)
		}
	}
	errs := []struct {
		in, text string
		is       bool
	}{
		{"-ERR bad\r\n", "ERR bad", true},
		{"!7\r\nERR bad\r\n", "ERR bad", true},
		{"+OK\r\n", "OK", false},
		{"", "", false},
	}
	for _, tt := range errs {
		if IsError([]byte(tt.in)) != tt.is {
			t.Errorf("IsError(%q) = %v", tt.in, !tt.is)
		}
		if tt.is {
			if got := ErrorText([]byte(tt.in)); got != tt.text {
				t.Errorf("ErrorText(%q) = %q, want %q", tt.in, got, tt.text)
			}
		}
	}
}
