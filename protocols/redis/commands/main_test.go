package commands

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ambassador-proxy/ambassador/protocols/redis/commands/internal/redisserver"
)

// One redis-server for the whole test binary, started on first use.
var (
	srvOnce sync.Once
	srv     *redisserver.Server
	srvErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if srv != nil {
		srv.Close()
	}
	os.Exit(code)
}

// server returns the shared redis-server, starting it if needed.
func server(t testing.TB) *redisserver.Server {
	t.Helper()
	srvOnce.Do(func() { srv, srvErr = redisserver.Start("") })
	if errors.Is(srvErr, redisserver.ErrNotInstalled) {
		t.Fatal("install it: apt-get install -y redis-server")
	}
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	return srv
}

// dial opens a connection to the shared server, closed at the end of t.
func dial(t testing.TB) *redisserver.Conn {
	t.Helper()
	c, err := redisserver.Dial(server(t).Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do runs a command and fails t on a connection error (not on a Redis
// error reply).
func do(t testing.TB, c *redisserver.Conn, args ...string) *redisserver.Value {
	t.Helper()
	v, err := c.Do(args...)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return v
}

// splitLine splits a command line on spaces; "double quotes" group words
// and "" is the empty argument.
func splitLine(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"':
			inQuote = !inQuote
			have = true
		case ch == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func bytesArgs(args []string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}
