package resp

import (
	"strings"
	"testing"
)

func TestAppend(t *testing.T) {
	pre := []byte("pre:")
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"error", AppendError(pre, "ERR bad thing"), "-ERR bad thing\r\n"},
		{"error with newlines", AppendError(pre, "ERR a\r\nb\nc"), "-ERR a  b c\r\n"},
		{"simple", AppendSimple(pre, "QUEUED"), "+QUEUED\r\n"},
		{"ok", AppendOK(pre), "+OK\r\n"},
		{"int", AppendInt(pre, -9223372036854775808), ":-9223372036854775808\r\n"},
		{"int 0", AppendInt(pre, 0), ":0\r\n"},
		{"bulk", AppendBulk(pre, []byte("a\r\nb")), "$4\r\na\r\nb\r\n"},
		{"bulk empty", AppendBulk(pre, nil), "$0\r\n\r\n"},
		{"bulk string", AppendBulkString(pre, "héllo"), "$6\r\nhéllo\r\n"},
		{"null 2", AppendNull(pre, 2), "$-1\r\n"},
		{"null 3", AppendNull(pre, 3), "_\r\n"},
		{"null array 2", AppendNullArray(pre, 2), "*-1\r\n"},
		{"null array 3", AppendNullArray(pre, 3), "_\r\n"},
		{"array", AppendArray(pre, 3), "*3\r\n"},
		{"map 2", AppendMap(pre, 2, 2), "*4\r\n"},
		{"map 3", AppendMap(pre, 2, 3), "%2\r\n"},
		{"set 2", AppendSet(pre, 2, 2), "*2\r\n"},
		{"set 3", AppendSet(pre, 2, 3), "~2\r\n"},
		{"push 2", AppendPush(pre, 3, 2), "*3\r\n"},
		{"push 3", AppendPush(pre, 3, 3), ">3\r\n"},
		{"verbatim 2", AppendVerbatim(pre, "a\nb", 2), "$3\r\na\nb\r\n"},
		{"verbatim 3", AppendVerbatim(pre, "a\nb", 3), "=7\r\ntxt:a\nb\r\n"},
		{"command", AppendCommand(pre, []byte("SET"), []byte("k"), []byte("")), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"},
		{"command strings", AppendCommandStrings(pre, "GET", "k"), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"},
		{"command empty", AppendCommand(pre), "*0\r\n"},
	}
	for _, tt := range tests {
		if string(tt.got) != "pre:"+tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, "pre:"+tt.want)
		}
		// every reply the helpers make is one whole reply
		if tt.name != "array" && !strings.HasPrefix(tt.name, "map") && !strings.HasPrefix(tt.name, "set") &&
			!strings.HasPrefix(tt.name, "push") && !strings.HasPrefix(tt.name, "command") {
			if n, err := ReplyLen(tt.got[4:]); err != nil || n != len(tt.want) {
				t.Errorf("%s: ReplyLen %d, %v; want %d", tt.name, n, err, len(tt.want))
			}
		}
	}
}

// AppendVerbatim and Bulk agree; the headers of AppendMap etc. make
// whole replies with their elements.
func TestAppendComposes(t *testing.T) {
	for _, proto := range []int{2, 3} {
		b := AppendMap(nil, 2, proto)
		b = AppendBulkString(b, "a")
		b = AppendInt(b, 1)
		b = AppendBulkString(b, "b")
		b = AppendNull(b, proto)
		if n, err := ReplyLen(b); err != nil || n != len(b) {
			t.Errorf("proto %d map: ReplyLen %d, %v of %d bytes %q", proto, n, err, len(b), b)
		}
		elems, _, _, err := Elems(b, nil)
		if err != nil || len(elems) != 4 {
			t.Errorf("proto %d map: %d elems, %v", proto, len(elems), err)
		}
		v := AppendVerbatim(nil, "text", proto)
		if s, ok := Bulk(v); !ok || string(s) != "text" {
			t.Errorf("proto %d: Bulk(verbatim) = %q, %v", proto, s, ok)
		}
	}
}

// AppendCommand output parses back to the same arguments, with Raw equal
// to the bytes.
func TestAppendCommandRoundTrip(t *testing.T) {
	args := [][]byte{[]byte("SET"), []byte("\r\n*1\r\n"), {}, []byte(strings.Repeat("\x00", 100))}
	b := AppendCommand(nil, args...)
	var p Parser
	cmd, n, _, err := p.Parse(b)
	if err != nil || n != len(b) || string(cmd.Raw) != string(b) {
		t.Fatalf("Parse: n %d of %d, %v", n, len(b), err)
	}
	for i := range args {
		if string(cmd.Args[i]) != string(args[i]) {
			t.Errorf("arg %d %q, want %q", i, cmd.Args[i], args[i])
		}
	}
}

func TestProtocolErrorText(t *testing.T) {
	err := &ProtocolError{"invalid bulk length"}
	if got := string(AppendError(nil, "ERR "+err.Error())); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Errorf("wire error %q", got)
	}
}
