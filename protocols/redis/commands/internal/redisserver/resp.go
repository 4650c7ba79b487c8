package redisserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Value is one RESP2 or RESP3 reply. Raw holds the exact bytes the server
// sent for it (including its nested values).
type Value struct {
	// Kind is the RESP type byte: '+' '-' ':' '$' '*' and, in RESP3,
	// '_' ',' '#' '(' '=' '!' '~' '%' '>'.
	Kind  byte
	Str   string   // simple, bulk, verbatim, error, double, big number text
	Int   int64    // integers; 1/0 for booleans
	Null  bool     // RESP2 null bulk/array, RESP3 '_'
	Elems []*Value // arrays, sets, pushes; maps as key, value, key, value...
	Raw   []byte
}

// IsError tells whether the reply is an error ('-' or '!').
func (v *Value) IsError() bool { return v.Kind == '-' || v.Kind == '!' }

// IsAggregate tells whether the value holds elements.
func (v *Value) IsAggregate() bool {
	switch v.Kind {
	case '*', '~', '%', '>':
		return !v.Null
	}
	return false
}

// Pairs returns key/value pairs of a RESP3 map or of a RESP2 flat
// key-value array. Keys are the string form of the key values.
func (v *Value) Pairs() ([]string, []*Value, error) {
	if !v.IsAggregate() || len(v.Elems)%2 != 0 {
		return nil, nil, fmt.Errorf("redisserver: %q is not a map", v.Raw)
	}
	keys := make([]string, 0, len(v.Elems)/2)
	vals := make([]*Value, 0, len(v.Elems)/2)
	for i := 0; i < len(v.Elems); i += 2 {
		keys = append(keys, v.Elems[i].Str)
		vals = append(vals, v.Elems[i+1])
	}
	return keys, vals, nil
}

// Get returns the value stored under key in a map (or flat key-value
// array), or nil.
func (v *Value) Get(key string) *Value {
	if !v.IsAggregate() {
		return nil
	}
	for i := 0; i+1 < len(v.Elems); i += 2 {
		if v.Elems[i].Str == key {
			return v.Elems[i+1]
		}
	}
	return nil
}

// Strings returns the string form of each element.
func (v *Value) Strings() []string {
	out := make([]string, 0, len(v.Elems))
	for _, e := range v.Elems {
		out = append(out, e.Str)
	}
	return out
}

var errIncomplete = errors.New("incomplete")

// Parse parses one RESP value at b[0:] and returns it with the number of
// bytes it took. It returns an error wrapping "incomplete" when b holds a
// prefix of a value only.
func Parse(b []byte) (*Value, int, error) {
	v, n, err := parse(b, 0, 0)
	if err != nil {
		return nil, 0, err
	}
	return v, n, nil
}

func line(b []byte, pos int) (string, int, error) {
	i := bytes.Index(b[pos:], []byte("\r\n"))
	if i < 0 {
		return "", 0, errIncomplete
	}
	return string(b[pos : pos+i]), pos + i + 2, nil
}

func parse(b []byte, pos, depth int) (*Value, int, error) {
	if depth > 64 {
		return nil, 0, errors.New("redisserver: reply nested too deeply")
	}
	start := pos
	if pos >= len(b) {
		return nil, 0, errIncomplete
	}
	kind := b[pos]
	text, pos, err := line(b, pos+1)
	if err != nil {
		return nil, 0, err
	}
	v := &Value{Kind: kind}
	switch kind {
	case '+', '-', ',', '(':
		v.Str = text
	case ':':
		if v.Int, err = strconv.ParseInt(text, 10, 64); err != nil {
			return nil, 0, fmt.Errorf("redisserver: bad integer %q", text)
		}
		v.Str = text
	case '#':
		v.Int = 0
		if text == "t" {
			v.Int = 1
		}
		v.Str = text
	case '_':
		v.Null = true
	case '$', '=', '!':
		n, err := strconv.Atoi(text)
		if err != nil {
			return nil, 0, fmt.Errorf("redisserver: bad length %q", text)
		}
		if n < 0 {
			v.Null = true
			break
		}
		if len(b) < pos+n+2 {
			return nil, 0, errIncomplete
		}
		v.Str = string(b[pos : pos+n])
		pos += n + 2
	case '*', '~', '%', '>':
		n, err := strconv.Atoi(text)
		if err != nil {
			return nil, 0, fmt.Errorf("redisserver: bad length %q", text)
		}
		if n < 0 {
			v.Null = true
			break
		}
		if kind == '%' {
			n *= 2
		}
		v.Elems = make([]*Value, 0, n)
		for i := 0; i < n; i++ {
			e, next, err := parse(b, pos, depth+1)
			if err != nil {
				return nil, 0, err
			}
			v.Elems = append(v.Elems, e)
			pos = next
		}
	default:
		return nil, 0, fmt.Errorf("redisserver: unsupported RESP type %q", kind)
	}
	v.Raw = b[start:pos:pos]
	return v, pos, nil
}

// Conn is a plain, synchronous RESP connection.
type Conn struct {
	c   net.Conn
	buf []byte
}

// Dial connects to addr.
func Dial(addr string) (*Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// AppendCommand appends args as a RESP array of bulk strings.
func AppendCommand(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, "\r\n"...)
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, "\r\n"...)
		dst = append(dst, a...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// Do sends one command and reads its reply. A Redis error reply is
// returned as a Value (see IsError), not as an error.
func (c *Conn) Do(args ...string) (*Value, error) {
	if err := c.c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := c.c.Write(AppendCommand(nil, args...)); err != nil {
		return nil, err
	}
	chunk := make([]byte, 64<<10)
	for {
		if len(c.buf) > 0 {
			v, n, err := Parse(c.buf)
			if err == nil {
				// Copy so that Raw slices stay valid while c.buf is reused.
				rest := append([]byte(nil), c.buf[n:]...)
				c.buf = rest
				return v, nil
			}
			if !errors.Is(err, errIncomplete) {
				return nil, err
			}
		}
		n, err := c.c.Read(chunk)
		if n > 0 {
			c.buf = append(c.buf, chunk[:n]...)
		}
		if err != nil {
			return nil, fmt.Errorf("redisserver: reading reply to %q: %w", args, err)
		}
	}
}
