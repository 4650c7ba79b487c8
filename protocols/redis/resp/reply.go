package resp

import (
	"bytes"
	"strconv"
)

// maxReplyCount bounds an aggregate's element count in a reply, to refuse
// garbage rather than loop on it.
const maxReplyCount = 1 << 32

// ReplyLen returns the length of the one complete reply (of any RESP2 or
// RESP3 type, nested to any depth) at the start of buf, ErrIncomplete when
// more bytes are needed, or a *ProtocolError when the bytes are not RESP.
// It does not allocate.
func ReplyLen(buf []byte) (int, error) {
	pos := 0
	remaining := int64(1)
	for remaining > 0 {
		if pos >= len(buf) {
			return 0, ErrIncomplete
		}
		t := buf[pos]
		nl := bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			return 0, ErrIncomplete
		}
		lineEnd := pos + nl // index of '\n'
		if nl < 2 || buf[lineEnd-1] != '\r' {
			return 0, &ProtocolError{"malformed reply line"}
		}
		line := buf[pos+1 : lineEnd-1]
		pos = lineEnd + 1
		remaining--
		switch t {
		case '+', '-', ':', ',', '#', '(', '_':
			// one line
		case '$', '!', '=':
			n, ok := atoi(line)
			if !ok {
				return 0, &ProtocolError{"bad bulk length in reply"}
			}
			if n < 0 {
				if t != '$' || n != -1 {
					return 0, &ProtocolError{"bad bulk length in reply"}
				}
				continue
			}
			if n > int64(len(buf)-pos)-2 { // not n+2: n may be near MaxInt64
				return 0, ErrIncomplete
			}
			pos += int(n)
			if buf[pos] != '\r' || buf[pos+1] != '\n' {
				return 0, &ProtocolError{"bulk reply without CRLF"}
			}
			pos += 2
		case '*', '~', '>', '%', '|':
			n, ok := atoi(line)
			if !ok || n > maxReplyCount {
				return 0, &ProtocolError{"bad aggregate length in reply"}
			}
			if n < 0 {
				if t != '*' || n != -1 {
					return 0, &ProtocolError{"bad aggregate length in reply"}
				}
				continue
			}
			switch t {
			case '%':
				n *= 2
			case '|':
				n = n*2 + 1 // the attribute's pairs, then the value it annotates
			}
			remaining += n
		default:
			return 0, &ProtocolError{"unknown reply type " + strconv.Quote(string(t))}
		}
	}
	return pos, nil
}

func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// IsError reports whether a reply is an error (simple or RESP3 blob).
func IsError(reply []byte) bool {
	return len(reply) > 0 && (reply[0] == '-' || reply[0] == '!')
}

// ErrorText returns an error reply's message (without the type byte).
func ErrorText(reply []byte) string {
	if len(reply) == 0 {
		return ""
	}
	if reply[0] == '!' {
		if b, ok := Bulk(reply); ok {
			return string(b)
		}
	}
	return string(bytes.TrimRight(reply[1:], "\r\n"))
}

// Int returns the value of an integer reply.
func Int(reply []byte) (int64, bool) {
	if len(reply) < 4 || reply[0] != ':' {
		return 0, false
	}
	return atoi(reply[1 : len(reply)-2])
}

// Bulk returns the payload of a bulk, verbatim (without its "txt:"
// prefix), simple string or blob error reply. ok is false for a null.
func Bulk(reply []byte) ([]byte, bool) {
	if len(reply) < 3 {
		return nil, false
	}
	switch reply[0] {
	case '+', '-':
		return reply[1 : len(reply)-2], true
	case '$', '!', '=':
		nl := bytes.IndexByte(reply, '\n')
		n, ok := atoi(reply[1 : nl-1])
		if !ok || n < 0 || n > int64(len(reply)-nl-1) {
			return nil, false
		}
		b := reply[nl+1 : nl+1+int(n)]
		if reply[0] == '=' && len(b) >= 4 {
			b = b[4:]
		}
		return b, true
	}
	return nil, false
}

// Elems splits an aggregate reply (array, set, push, or a map as a flat
// list of keys and values) into its elements, appended to dst. typ is the
// aggregate's type byte; null is true for a null array.
func Elems(reply []byte, dst [][]byte) (elems [][]byte, typ byte, null bool, err error) {
	if len(reply) == 0 {
		return dst, 0, false, ErrIncomplete
	}
	typ = reply[0]
	switch typ {
	case '*', '~', '>', '%':
	default:
		return dst, typ, false, &ProtocolError{"not an aggregate reply"}
	}
	nl := bytes.IndexByte(reply, '\n')
	if nl < 2 {
		return dst, typ, false, ErrIncomplete
	}
	n, ok := atoi(reply[1 : nl-1])
	if !ok {
		return dst, typ, false, &ProtocolError{"bad aggregate length in reply"}
	}
	if n < 0 {
		return dst, typ, true, nil
	}
	if typ == '%' {
		n *= 2
	}
	pos := nl + 1
	for range n {
		l, err := ReplyLen(reply[pos:])
		if err != nil {
			return dst, typ, false, err
		}
		dst = append(dst, reply[pos:pos+l])
		pos += l
	}
	return dst, typ, false, nil
}
