package resp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// seedFiles adds every golden frame under testdata/dir to the corpus.
func seedFiles(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.resp"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParse: random bytes never panic; what parses is consistent with
// itself and round-trips through AppendCommand.
func FuzzParse(f *testing.F) {
	seedFiles(f, "requests")
	for _, s := range []string{pipeline, "*1\r\n$4\r\nPING\r\n", "ECHO \"a\\x41\" 'b\\'c'\r\n", "*-1\r\n", "*1\r\n$03\r\nabc\r\n",
		"*2\r\n$3\r\nGET\r\n$9223372036854775807\r\n", "*99999999999999999999\r\n", "\x00\r\n", "\"\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		p := Parser{Limits: Limits{MaxBulkLen: 1 << 16, MaxMultibulkLen: 1 << 10, MaxInlineLen: 1 << 12}}
		cmd, n, need, err := p.Parse(buf)
		// The same bytes arriving a few at a time (the buffer moving
		// between calls, as a client's does) parse the same.
		for _, step := range []int{1, 3, 7, 64} {
			step = max(step, len(buf)/256) // bounded work on large inputs
			if err == nil {
				cmd = Command{Args: cloneArgs(cmd.Args), Raw: cmd.Raw}
			}
			pc := Parser{Limits: p.Limits}
			cmdc, nc, _, errc := feed(&pc, buf, step)
			errMatch := (err == nil) == (errc == nil) && (err == ErrIncomplete) == (errc == ErrIncomplete)
			if pe, ok := err.(*ProtocolError); ok {
				pc, okc := errc.(*ProtocolError)
				errMatch = okc && pc.Msg == pe.Msg
			}
			if !errMatch || (err == nil && (nc != n || !sameArgs(cmdc.Args, cmd.Args))) {
				t.Fatalf("in steps of %d: n %d err %v args %q; at once: n %d err %v args %q", step, nc, errc, cmdc.Args, n, err, cmd.Args)
			}
		}
		switch {
		case err == ErrIncomplete:
			if n != 0 || need <= len(buf) {
				t.Fatalf("incomplete with n %d need %d for %d bytes", n, need, len(buf))
			}
			return
		case err != nil:
			if _, ok := err.(*ProtocolError); !ok {
				t.Fatalf("error %T %v, want *ProtocolError", err, err)
			}
			return
		}
		if n <= 0 || n > len(buf) {
			t.Fatalf("consumed %d of %d", n, len(buf))
		}
		if cmd.Raw != nil && !bytes.Equal(cmd.Raw, buf[:n]) {
			t.Fatalf("Raw %q is not the %d bytes consumed", cmd.Raw, n)
		}
		args := make([][]byte, len(cmd.Args))
		for i, a := range cmd.Args {
			args[i] = bytes.Clone(a)
		}
		// A command does not depend on the bytes after it.
		var p2 Parser
		p2.Limits = p.Limits
		cmd2, n2, _, err2 := p2.Parse(bytes.Clone(buf[:n]))
		if err2 != nil || n2 != n || !sameArgs(cmd2.Args, args) {
			t.Fatalf("alone: n %d err %v args %q; with the rest: n %d args %q", n2, err2, cmd2.Args, n, args)
		}
		if len(args) == 0 {
			return // an empty command
		}
		// Round trip: re-encoded, it parses to the same arguments (this
		// is what the ambassador forwards for an inline command).
		enc := AppendCommand(nil, args...)
		var p3 Parser
		cmd3, n3, _, err3 := p3.Parse(enc)
		if err3 != nil || n3 != len(enc) || !sameArgs(cmd3.Args, args) || !bytes.Equal(cmd3.Raw, enc) {
			t.Fatalf("round trip of %q: %q n %d err %v", args, cmd3.Args, n3, err3)
		}
	})
}

// feed gives p growing prefixes of buf, step bytes more each time, each
// in a fresh copy, until a command parses or fails, and returns that.
func feed(p *Parser, buf []byte, step int) (Command, int, int, error) {
	for l := min(step, len(buf)); ; l = min(l+step, len(buf)) {
		cmd, n, need, err := p.Parse(bytes.Clone(buf[:l]))
		if err != ErrIncomplete || l == len(buf) {
			return cmd, n, need, err
		}
	}
}

func cloneArgs(args [][]byte) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = bytes.Clone(a)
	}
	return out
}

func sameArgs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzReplyLen: random bytes never panic; a length is that of one whole
// reply, whose every shorter prefix is incomplete.
func FuzzReplyLen(f *testing.F) {
	seedFiles(f, "replies")
	for _, r := range replies {
		if len(r.reply) < 4096 {
			f.Add([]byte(r.reply))
		}
	}
	for _, s := range []string{"$9223372036854775807\r\n", "*4294967296\r\n", "|1\r\n+a\r\n", "%1\r\n", "=-1\r\n", "*1\r\n$1\r\nab\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		n, err := ReplyLen(buf)
		if err != nil {
			if err != ErrIncomplete {
				if _, ok := err.(*ProtocolError); !ok {
					t.Fatalf("error %T %v", err, err)
				}
				return
			}
			// incomplete data stays incomplete when cut shorter
			if _, err := ReplyLen(buf[:len(buf)/2]); err != ErrIncomplete {
				t.Fatalf("%q incomplete but its first half: %v", buf, err)
			}
			return
		}
		if n < 3 || n > len(buf) {
			t.Fatalf("length %d of %d bytes", n, len(buf))
		}
		if m, err := ReplyLen(buf[:n]); m != n || err != nil {
			t.Fatalf("alone: %d, %v; want %d", m, err, n)
		}
		if _, err := ReplyLen(buf[:n-1]); err != ErrIncomplete {
			t.Fatalf("one byte short: %v, want ErrIncomplete", err)
		}
		switch buf[0] {
		case '*', '~', '>', '%':
			_, _, _, _ = Elems(buf[:n], nil) // must not panic
		case '$', '+', '-', '!', '=':
			_, _ = Bulk(buf[:n])
		case ':':
			_, _ = Int(buf[:n])
		}
		_ = ErrorText(buf[:n])
	})
}
