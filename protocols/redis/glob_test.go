package redis

import (
	"bufio"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambassador-proxy/ambassador/e2e/harness"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
)

func TestStringMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		nocase     bool
		want       bool
	}{
		{"*", "", true, false}, // as Redis: an empty string matches no pattern but ""
		{"*", "abc", false, true}, {"", "", false, true}, {"", "a", false, false},
		{"xa*", "xadd", false, true}, {"xa*", "XADD", false, false}, {"xa*", "XADD", true, true},
		{"a?c", "abc", false, true}, {"a?c", "ac", false, false}, {"a*c", "abbbc", false, true}, {"a*c", "abbb", false, false},
		{"a**", "a", false, true}, {"*b*", "abc", false, true}, {"h[ae]llo", "hello", false, true}, {"h[^e]llo", "hello", false, false},
		{"h[a-b]llo", "hbllo", false, true}, {"h[b-a]llo", "hbllo", false, true}, {"h[A-B]llo", "hbllo", true, true},
		{"h[A-B]llo", "hbllo", false, false}, {`h\*llo`, "h*llo", false, true}, {`h\*llo`, "hello", false, false},
		{"h[\\]]llo", "h]llo", false, true}, {"a[bc", "ab", false, true}, {"a[bc", "abx", false, false}, {"a[", "a", false, false},
		{`a\`, `a\`, false, true}, {"config|*", "config|get", false, true}, {"*|get", "config|get", true, true},
	} {
		if got := stringMatch([]byte(tc.pattern), []byte(tc.s), tc.nocase); got != tc.want {
			t.Errorf("stringMatch(%q, %q, nocase %v) = %v, want %v", tc.pattern, tc.s, tc.nocase, got, tc.want)
		}
	}
}

// TestStringMatchVsServer checks stringMatch against redis-server's own
// stringmatchlen: KEYS (case-sensitive) over a set of keys, and COMMAND
// LIST FILTERBY PATTERN (case-insensitive) over the command names.
func TestStringMatchVsServer(t *testing.T) {
	node := harness.RedisNodes(t, 1)[0]
	conn, err := net.DialTimeout("tcp", node.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	do := func(args ...string) []string {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(resp.AppendCommandStrings(nil, args...)); err != nil {
			t.Fatal(err)
		}
		return readStrings(t, rd)
	}
	keys := []string{"a", "b", "ab", "abc", "aXc", "a*c", "a]c", "a-c", "a\\c", "hello", "hallo", "hxllo", "Hello", "h[llo", "x", "xy", "xyz", "[", "]", "^", "-", "ba", "bab", "abab", "aab"}
	for _, k := range keys {
		do("SET", k, "1")
	}
	patterns := []string{"*", "a*", "*c", "a?c", "a[bX]c", "a[^b]c", "a[a-c]c", "a[c-a]c", "a[\\]]c", "a\\*c", "a[*]c", "h[ae]llo", "h[^e]llo",
		"h[a-z]llo", "h[A-Z]llo", "[", "[[]", "[]]", "[^]", "a[", "a[b", "a[bc", "a[b-", "a[b-]c", "a\\", "\\", "*b*", "*a*b", "**", "?", "??", "???",
		"a*b*", "*ab", "[a-]", "[-a]", "[\\-]", "x*y*z", "x*z", "h?llo", "[Hh]ello", "[^Hh]ello", "*\\c", "a\\\\c", "[x-y]*", "*[b]", "b*b", "*a?"}
	for _, p := range patterns {
		want := do("KEYS", p)
		var got []string
		for _, k := range keys {
			if stringMatch([]byte(p), []byte(k), false) {
				got = append(got, k)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("KEYS %q: server %q, stringMatch %q", p, want, got)
		}
	}
	names := do("COMMAND", "LIST")
	for _, p := range []string{"xa*", "X[A-D]*", "*|get", "CONFIG|*", "?et", "[^a-x]*", "*o*o*", "client|[g-i]*"} {
		want := do("COMMAND", "LIST", "FILTERBY", "PATTERN", p)
		var got []string
		for _, n := range names {
			if stringMatch([]byte(p), []byte(n), true) {
				got = append(got, n)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("COMMAND LIST FILTERBY PATTERN %q: server %q, stringMatch %q", p, want, got)
		}
	}
}

// readStrings reads an array of bulk strings (or fails t on anything else).
func readStrings(t *testing.T, rd *bufio.Reader) []string {
	t.Helper()
	line := func() string {
		s, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(s, "\r\n")
	}
	h := line()
	switch h[0] {
	case '+':
		return []string{h[1:]}
	case '*':
	default:
		t.Fatalf("reply %q", h)
	}
	n, _ := strconv.Atoi(h[1:])
	out := make([]string, n)
	for i := range out {
		b := line()
		l, err := strconv.Atoi(b[1:])
		if b[0] != '$' || err != nil {
			t.Fatalf("element %q", b)
		}
		buf := make([]byte, l+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			t.Fatal(err)
		}
		out[i] = string(buf[:l])
	}
	return out
}
