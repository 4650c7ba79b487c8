package resp

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tidwall/redcon"
)

// Cross-checks against github.com/tidwall/redcon, an independent RESP
// implementation, on random valid input.

func randBytes(r *rand.Rand, max int) []byte {
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

// randPipeline returns random multibulk commands, and the arguments.
func randPipeline(r *rand.Rand) ([]byte, [][]string) {
	var buf []byte
	var want [][]string
	for range 1 + r.IntN(8) {
		args := make([][]byte, 1+r.IntN(6))
		for i := range args {
			args[i] = randBytes(r, 40)
		}
		buf = AppendCommand(buf, args...)
		want = append(want, strs(args))
	}
	return buf, want
}

const wordChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-.{}*$+"

// randInline returns an inline command in the subset of the syntax both
// parsers read the same way: plain words and double-quoted words with
// \n \r \t \\ \" escapes.
func randInline(r *rand.Rand) (string, []string) {
	var b strings.Builder
	var want []string
	b.WriteString(strings.Repeat(" ", r.IntN(2)))
	for i := range 1 + r.IntN(6) {
		if i > 0 {
			b.WriteString(strings.Repeat(" ", 1+r.IntN(2)))
		}
		if r.IntN(3) == 0 {
			var arg, lit strings.Builder
			for range r.IntN(10) {
				switch r.IntN(8) {
				case 0:
					lit.WriteString(`\n`)
					arg.WriteByte('\n')
				case 1:
					lit.WriteString(`\"`)
					arg.WriteByte('"')
				case 2:
					lit.WriteString(`\\`)
					arg.WriteByte('\\')
				case 3:
					lit.WriteByte(' ')
					arg.WriteByte(' ')
				default:
					c := wordChars[r.IntN(len(wordChars))]
					lit.WriteByte(c)
					arg.WriteByte(c)
				}
			}
			b.WriteString(`"` + lit.String() + `"`)
			want = append(want, arg.String())
			continue
		}
		w := make([]byte, 1+r.IntN(12))
		for j := range w {
			w[j] = wordChars[r.IntN(len(wordChars))]
		}
		if w[0] == '*' || w[0] == '$' { // not a multibulk or tile38 line
			w[0] = 'x'
		}
		b.Write(w)
		want = append(want, string(w))
	}
	if r.IntN(2) == 0 {
		b.WriteString("\r\n")
	} else {
		b.WriteString("\n")
	}
	return b.String(), want
}

func redconAll(t *testing.T, buf []byte) [][]string {
	t.Helper()
	var out [][]string
	for len(buf) > 0 {
		complete, args, _, left, err := redcon.ReadNextCommand(buf, nil)
		if err != nil {
			t.Fatalf("redcon: %v on %q", err, buf)
		}
		if !complete {
			t.Fatalf("redcon: incomplete %q", buf)
		}
		out = append(out, strs(args))
		buf = left
	}
	return out
}

func TestParseMatchesRedcon(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		var buf []byte
		var want [][]string
		if iter%2 == 0 {
			buf, want = randPipeline(r)
		} else {
			for range 1 + r.IntN(4) {
				line, args := randInline(r)
				buf = append(buf, line...)
				want = append(want, args)
			}
		}
		var p Parser
		got, n, err := parseAll(&p, buf)
		if err != ErrIncomplete || n != len(buf) {
			t.Fatalf("iter %d: consumed %d of %d: %v\n%q", iter, n, len(buf), err, buf)
		}
		ref := redconAll(t, buf)
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", ref) {
			t.Fatalf("iter %d: %q\nresp:   %q\nredcon: %q", iter, buf, got, ref)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("iter %d: %q\nresp: %q\nwant: %q", iter, buf, got, want)
		}
	}
}

// randReply returns a random RESP2 reply (the types redcon reads).
func randReply(r *rand.Rand, depth int) []byte {
	k := r.IntN(7)
	if depth > 3 {
		k = r.IntN(5)
	}
	switch k {
	case 0:
		return AppendSimple(nil, strings.ReplaceAll(strings.ReplaceAll(string(randBytes(r, 20)), "\r", ""), "\n", ""))
	case 1:
		return AppendError(nil, "ERR "+string(wordChars[:r.IntN(len(wordChars))]))
	case 2:
		return AppendInt(nil, r.Int64()-r.Int64())
	case 3:
		return AppendBulk(nil, randBytes(r, 100))
	case 4:
		return []byte("$-1\r\n")
	case 5:
		return []byte("*-1\r\n")
	default:
		n := r.IntN(5)
		b := AppendArray(nil, n)
		for range n {
			b = append(b, randReply(r, depth+1)...)
		}
		return b
	}
}

func TestReplyLenMatchesRedcon(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := range 3000 {
		var stream []byte
		var lens []int
		for range 1 + r.IntN(5) {
			rep := randReply(r, 0)
			stream = append(stream, rep...)
			lens = append(lens, len(rep))
		}
		buf := stream
		for i, want := range lens {
			n, err := ReplyLen(buf)
			rn, rresp := redcon.ReadNextRESP(buf)
			if err != nil || n != want || rn != n || rresp.Type == 0 {
				t.Fatalf("iter %d reply %d: ReplyLen %d, %v; redcon %d; want %d\n%q", iter, i, n, err, rn, want, buf)
			}
			buf = buf[n:]
		}
		// a truncated stream: ReplyLen says incomplete where redcon finds
		// nothing either
		cut := r.IntN(len(stream))
		n, err := ReplyLen(stream[:cut])
		rn, _ := redcon.ReadNextRESP(stream[:cut])
		if (err == ErrIncomplete) != (rn == 0) || (err == nil && n != rn) {
			t.Fatalf("iter %d cut %d: ReplyLen %d, %v; redcon %d\n%q", iter, cut, n, err, rn, stream[:cut])
		}
	}
}
