package resp

import (
	"strings"
	"testing"
)

var (
	benchSet      = AppendCommandStrings(nil, "SET", "key:000123", strings.Repeat("v", 100))
	benchPipeline = func() []byte {
		var b []byte
		for range 16 {
			b = AppendCommandStrings(b, "GET", "key:000123")
		}
		return b
	}()
	benchInline = []byte("SET key:000123 \"hello world\"\r\n")
	benchBulk   = AppendBulkString(nil, strings.Repeat("v", 100))
	benchArray  = func() []byte {
		b := AppendArray(nil, 10)
		for range 10 {
			b = AppendBulkString(b, strings.Repeat("v", 100))
		}
		return b
	}()
	benchNestedMap = []byte("%2\r\n+a\r\n%1\r\n+x\r\n~1\r\n:1\r\n+b\r\n*3\r\n$-1\r\n_\r\n,1.5\r\n")
)

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		buf  []byte
	}{{"set", benchSet}, {"pipeline16", benchPipeline}, {"inline", benchInline}} {
		b.Run(bc.name, func(b *testing.B) {
			var p Parser
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.buf)))
			for b.Loop() {
				buf := bc.buf
				for len(buf) > 0 {
					_, n, _, err := p.Parse(buf)
					if err != nil {
						b.Fatal(err)
					}
					buf = buf[n:]
				}
			}
		})
	}
}

// BenchmarkParsePieces: a command of 1M small arguments (about 10 MB)
// arriving 64 KB at a time.
func BenchmarkParsePieces(b *testing.B) {
	const n = 1 << 20
	buf := AppendArray(nil, n)
	for range n {
		buf = AppendBulkString(buf, "member")
	}
	b.SetBytes(int64(len(buf)))
	var p Parser
	for b.Loop() {
		for l := 64 << 10; ; l += 64 << 10 {
			_, _, _, err := p.Parse(buf[:min(l, len(buf))])
			if err == nil {
				break
			}
			if err != ErrIncomplete {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkReplyLen(b *testing.B) {
	for _, bc := range []struct {
		name string
		buf  []byte
	}{{"bulk100", benchBulk}, {"array10", benchArray}, {"nestedmap", benchNestedMap}, {"ok", []byte("+OK\r\n")}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.buf)))
			for b.Loop() {
				if _, err := ReplyLen(bc.buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The hot paths do not allocate: multibulk parsing once the parser's args
// slice has grown, and ReplyLen always.
func TestZeroAllocs(t *testing.T) {
	var p Parser
	parse := func() {
		buf := benchPipeline
		for len(buf) > 0 {
			_, n, _, _ := p.Parse(buf)
			buf = buf[n:]
		}
		_, _, _, _ = p.Parse(benchSet)
		_, _, _, _ = p.Parse(benchSet[:len(benchSet)-3]) // incomplete
	}
	parse()
	if a := testing.AllocsPerRun(100, parse); a != 0 {
		t.Errorf("Parse: %v allocs per run, want 0", a)
	}
	replyLen := func() {
		for _, b := range [][]byte{benchBulk, benchArray, benchNestedMap, benchArray[:50]} {
			_, _ = ReplyLen(b)
		}
	}
	if a := testing.AllocsPerRun(100, replyLen); a != 0 {
		t.Errorf("ReplyLen: %v allocs per run, want 0", a)
	}
}
