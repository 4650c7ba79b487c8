package resp

import (
	"bytes"
	"errors"
)

// ErrIncomplete means the buffer holds only part of a command or reply.
var ErrIncomplete = errors.New("resp: incomplete")

// ProtocolError is a request that breaks the protocol. Its Error is the
// text Redis replies with (after "-ERR "), and the connection must be
// closed after replying, as Redis does.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// Limits bound a request. Zero fields take Redis's defaults.
type Limits struct {
	MaxBulkLen      int64 // proto-max-bulk-len, default 512 MB
	MaxMultibulkLen int64 // arguments per command, default 1024*1024 (Redis 7 allows up to INT_MAX)
	MaxInlineLen    int   // inline command or count line, default 64 KB
	// Unauthenticated holds a client that must still authenticate to
	// Redis 7's tighter limits: at most 10 arguments of at most 16 KB
	// each, so that it cannot make the server hold much before AUTH.
	Unauthenticated bool
}

// The limits of a client that has not authenticated yet (Redis 7).
const (
	unauthMaxMultibulkLen = 10
	unauthMaxBulkLen      = 16384
)

// Defaults as Redis has them.
const (
	DefaultMaxBulkLen      = 512 << 20
	DefaultMaxMultibulkLen = 1 << 20
	DefaultMaxInlineLen    = 64 << 10
)

func (l *Limits) norm() (int64, int64, int) {
	bulk, multi, inline := l.MaxBulkLen, l.MaxMultibulkLen, l.MaxInlineLen
	if bulk <= 0 {
		bulk = DefaultMaxBulkLen
	}
	if multi <= 0 {
		multi = DefaultMaxMultibulkLen
	}
	if inline <= 0 {
		inline = DefaultMaxInlineLen
	}
	return bulk, multi, inline
}

// Parser parses commands out of a buffer; it keeps the args slice between
// calls so that steady-state parsing does not allocate.
//
// The args slice grows as arguments arrive, never by the declared count:
// a client declaring *2147483647 costs what it sends (Redis likewise
// allocates at most 1024 argument slots ahead). After a command of more
// than maxKeepArgs arguments the slice is dropped rather than kept.
//
// A multibulk command that arrives over many reads is not parsed again
// from its start each time: the Parser remembers how far it has checked
// it, so a command of many arguments costs time in proportion to its size
// (Redis keeps the same state in its client struct). Hence the contract:
// after ErrIncomplete, the next call must be given the same command's
// bytes at the start of buf (the buffer may have moved and grown); call
// Reset before giving it anything else.
type Parser struct {
	Limits Limits
	args   [][]byte
	part   partial
}

// partial is how far a multibulk command received in part was checked.
type partial struct {
	on     bool
	unauth bool  // the limits it was checked under
	count  int64 // arguments declared
	first  int   // where its first argument starts (after "*<count>\r\n")
	done   int64 // arguments complete and checked
	pos    int   // where the next argument starts
}

// Reset forgets a command received in part.
func (p *Parser) Reset() { p.part = partial{} }

// Command is one parsed request.
type Command struct {
	// Args are the command name and its arguments, slices of the buffer
	// (or, for inline commands, of a fresh copy).
	Args [][]byte
	// Raw is the request exactly as received, when it was multibulk;
	// nil for inline commands, which must be re-encoded to forward.
	Raw []byte
}

// Parse reads one command from the start of buf. It returns the bytes
// consumed. An empty command (an empty line, "*0") consumes its bytes and
// has no Args. On ErrIncomplete, need is the total buffer size known to
// be needed so far (at least len(buf)+1), so that the caller can read that
// much before trying again.
//
// The returned Args are valid until the next call to Parse.
func (p *Parser) Parse(buf []byte) (cmd Command, n int, need int, err error) {
	if len(buf) == 0 {
		p.part = partial{}
		return cmd, 0, 1, ErrIncomplete
	}
	maxBulk, maxMulti, maxInline := p.Limits.norm()
	if buf[0] != '*' {
		p.part = partial{}
		return p.parseInline(buf, maxInline)
	}
	if pt := p.part; pt.on && pt.unauth == p.Limits.Unauthenticated && pt.pos <= len(buf) && p.same(buf) {
		// The rest of a command received in part: check the arguments
		// that came since, then slice them all out in one walk.
		pos, done, need, err := p.check(buf, pt.pos, pt.done, pt.count, maxBulk, maxInline)
		if err != nil {
			if err == ErrIncomplete {
				p.part.pos, p.part.done = pos, done
				return cmd, 0, need, err
			}
			p.part = partial{}
			return cmd, 0, 0, err
		}
		p.part = partial{}
		return p.slice(buf, pt.count, pos), pos, 0, nil
	}
	p.part = partial{}
	// *<count>\r\n
	count, pos, err := parseLine(buf, 1, maxInline, "too big mbulk count string")
	if err != nil {
		if err == ErrIncomplete {
			return cmd, 0, len(buf) + 1, err
		}
		return cmd, 0, 0, err
	}
	if count.bad || count.v > maxMulti {
		return cmd, 0, 0, &ProtocolError{"invalid multibulk length"}
	}
	if p.Limits.Unauthenticated && count.v > unauthMaxMultibulkLen {
		return cmd, 0, 0, &ProtocolError{"unauthenticated multibulk length"}
	}
	if count.v <= 0 {
		return cmd, pos, 0, nil
	}
	args := p.args[:0]
	first := pos
	for i := range count.v {
		if pos >= len(buf) {
			p.args = args
			p.part = partial{on: true, unauth: p.Limits.Unauthenticated, count: count.v, first: first, done: i, pos: pos}
			return cmd, 0, pos + 1, ErrIncomplete
		}
		l, next, err := p.argHeader(buf, pos, maxBulk, maxInline)
		if err != nil {
			p.args = args
			if err == ErrIncomplete {
				p.part = partial{on: true, unauth: p.Limits.Unauthenticated, count: count.v, first: first, done: i, pos: pos}
				return cmd, 0, len(buf) + 1, err
			}
			return cmd, 0, 0, err
		}
		end := next + l
		if end+2 > len(buf) {
			p.args = args
			p.part = partial{on: true, unauth: p.Limits.Unauthenticated, count: count.v, first: first, done: i, pos: pos}
			return cmd, 0, end + 2, ErrIncomplete
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			// Redis skips the two bytes after the payload unchecked; the
			// ambassador refuses what is not CRLF (stricter, never
			// desynchronised).
			return cmd, 0, 0, &ProtocolError{"invalid bulk length"}
		}
		args = append(args, buf[next:end:end])
		pos = end + 2
	}
	return p.done(args, buf, pos), pos, 0, nil
}

// same is a cheap check that buf holds the command received in part: its
// count line, and a CRLF before where the next argument starts.
func (p *Parser) same(buf []byte) bool {
	pt := p.part
	c, first, err := parseLine(buf, 1, pt.first, "")
	return err == nil && !c.bad && c.v == pt.count && first == pt.first &&
		buf[pt.pos-2] == '\r' && buf[pt.pos-1] == '\n'
}

// argHeader checks the "$<len>\r\n" of an argument at buf[pos] and
// returns its length and where its payload starts.
func (p *Parser) argHeader(buf []byte, pos int, maxBulk int64, maxInline int) (int, int, error) {
	if buf[pos] != '$' {
		return 0, 0, &ProtocolError{"expected '$', got '" + printable(buf[pos]) + "'"}
	}
	l, next, err := parseLine(buf, pos+1, maxInline, "too big bulk count string")
	if err != nil {
		return 0, 0, err
	}
	if l.bad || l.v < 0 || l.v > maxBulk {
		return 0, 0, &ProtocolError{"invalid bulk length"}
	}
	if p.Limits.Unauthenticated && l.v > unauthMaxBulkLen {
		return 0, 0, &ProtocolError{"unauthenticated bulk length"}
	}
	return int(l.v), next, nil
}

// check checks arguments done..count of a command from buf[pos] without
// collecting them. It returns where it stopped, how many are complete,
// and on ErrIncomplete the buffer size needed.
func (p *Parser) check(buf []byte, pos int, done, count, maxBulk int64, maxInline int) (int, int64, int, error) {
	for ; done < count; done++ {
		if pos >= len(buf) {
			return pos, done, pos + 1, ErrIncomplete
		}
		l, next, err := p.argHeader(buf, pos, maxBulk, maxInline)
		if err != nil {
			return pos, done, len(buf) + 1, err
		}
		end := next + l
		if end+2 > len(buf) {
			return pos, done, end + 2, ErrIncomplete
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return pos, done, 0, &ProtocolError{"invalid bulk length"}
		}
		pos = end + 2
	}
	return pos, done, 0, nil
}

// slice collects the count arguments of a command already checked up to
// end.
func (p *Parser) slice(buf []byte, count int64, end int) Command {
	i := bytes.IndexByte(buf, '\n')
	pos := i + 1
	args := p.args[:0]
	for range count {
		j := pos + 1
		l := 0
		for buf[j] != '\r' {
			l = l*10 + int(buf[j]-'0')
			j++
		}
		next := j + 2
		args = append(args, buf[next:next+l:next+l])
		pos = next + l + 2
	}
	return p.done(args, buf, end)
}

// done keeps args for the next command, unless it grew large, and makes
// the Command.
func (p *Parser) done(args [][]byte, buf []byte, end int) Command {
	p.args = args
	if cap(args) > maxKeepArgs {
		p.args = nil // the command keeps it; later ones start small
	}
	return Command{Args: args, Raw: buf[:end:end]}
}

// maxKeepArgs is the most argument slots a Parser keeps between commands.
const maxKeepArgs = 1 << 16

type num struct {
	v   int64
	bad bool
}

// parseLine parses a decimal integer from buf[start:] up to CRLF and
// returns it with the position after the CRLF.
func parseLine(buf []byte, start, maxLine int, tooBig string) (num, int, error) {
	i := bytes.IndexByte(buf[start:], '\n')
	if i < 0 {
		if len(buf)-start > maxLine {
			return num{}, 0, &ProtocolError{tooBig}
		}
		return num{}, 0, ErrIncomplete
	}
	end := start + i // index of '\n'
	if end == start || buf[end-1] != '\r' {
		return num{bad: true}, end + 1, nil
	}
	digits := buf[start : end-1]
	var n num
	neg := false
	if len(digits) > 0 && digits[0] == '-' {
		neg = true
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		n.bad = true
	}
	// As Redis's string2ll: no leading zeros, no "-0". Anything Redis
	// refuses must be refused here, or the raw bytes forwarded to a
	// shared backend connection would make the node close it.
	if len(digits) > 0 && digits[0] == '0' && (len(digits) > 1 || neg) {
		n.bad = true
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			n.bad = true
			break
		}
		n.v = n.v*10 + int64(c-'0')
	}
	if neg {
		n.v = -n.v
	}
	return n, end + 1, nil
}

func printable(c byte) string {
	if c >= 32 && c < 127 {
		return string(rune(c))
	}
	return "\\x" + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15])
}

// parseInline parses a command written as a line of words (telnet style),
// with Redis's quoting rules.
func (p *Parser) parseInline(buf []byte, maxInline int) (Command, int, int, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if len(buf) > maxInline {
			return Command{}, 0, 0, &ProtocolError{"too big inline request"}
		}
		return Command{}, 0, len(buf) + 1, ErrIncomplete
	}
	line := buf[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args, ok := SplitArgs(line, p.args[:0])
	if !ok {
		return Command{}, 0, 0, &ProtocolError{"unbalanced quotes in request"}
	}
	p.args = args
	return Command{Args: args}, i + 1, 0, nil
}

// SplitArgs splits an inline command line into arguments as Redis's
// sdssplitargs does: spaces separate, "double quotes" take \n \r \t \b \a
// \\ \" and \xHH escapes, 'single quotes' take \'. A closing quote must be
// followed by a space or the end. ok is false for unbalanced quotes.
func SplitArgs(line []byte, dst [][]byte) (args [][]byte, ok bool) {
	args = dst
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			return args, true
		}
		var cur []byte
		inDQ, inSQ, done := false, false, false
		for !done {
			if inDQ {
				if i >= len(line) {
					return nil, false
				}
				c := line[i]
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					cur = append(cur, hexVal(line[i+2])<<4|hexVal(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					switch line[i] {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, line[i])
					}
				case c == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, false
					}
					done = true
				default:
					cur = append(cur, c)
				}
			} else if inSQ {
				if i >= len(line) {
					return nil, false
				}
				c := line[i]
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					cur = append(cur, '\'')
				case c == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, false
					}
					done = true
				default:
					cur = append(cur, c)
				}
			} else {
				if i >= len(line) {
					break
				}
				switch c := line[i]; c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inDQ = true
				case '\'':
					inSQ = true
				default:
					cur = append(cur, c)
				}
			}
			if i < len(line) {
				i++
			}
			if i >= len(line) && !inDQ && !inSQ {
				done = true
			}
		}
		if cur == nil {
			cur = []byte{}
		}
		args = append(args, cur)
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
