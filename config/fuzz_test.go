package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambassador-proxy/ambassador/config"
)

// FuzzLoad feeds random file bytes and variable values to Load: it never
// panics, returns either a configuration or an ErrInvalid error, and a
// configuration it accepts is valid and prints to a file it accepts again.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("redis:\n  nodes: [127.0.0.1:7000]\n"), "", "", "", "")
	f.Add([]byte("health:\n  interval: 5\n"), "127.0.0.1:7000", "5s", "round_robin", "10")
	f.Add([]byte("redis:\n  nodes:\n    - addr: \"[::1]:1\"\n      weight: 2\n      region: eu\n"), "", "1m", "latency", "x")
	f.Add([]byte("kafka:\n  bootstrap_servers: [a:1]\nload_balance: least_connections\nregion_preference: [a, b]\n"), "b:2:3@eu n", "", "rr", "-1")
	f.Add([]byte("{{{"), "a", "b", "c", "d")
	f.Add([]byte("redis: [1, 2]\n"), "a:1,a:1", "0s", "", "")
	f.Add([]byte("redis:\n  frontend_users: {a: b}\n  nodes: [x:1]\n  password: p\n"), "", "", "", "")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte, nodes, interval, policy, maxConns string) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{
			"REDIS_BACKENDS":         nodes,
			"HEALTH_CHECK_INTERVAL":  interval,
			"LOAD_BALANCE_ALGORITHM": policy,
			"MAX_CONNECTIONS":        maxConns,
		}
		c, err := config.Load([]string{"--config", path}, envOf(env))
		if (c == nil) == (err == nil) {
			t.Fatalf("Load returned config %v and error %v", c, err)
		}
		if err != nil {
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			if strings.TrimSpace(err.Error()) == "config:" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted a configuration that Validate refuses: %v", err)
		}
		// What validate prints is a configuration Load accepts again.
		out := c.Redacted()
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load([]string{"--config", path}, envOf(nil)); err != nil {
			t.Fatalf("Redacted() output\n%s\nis refused: %v", out, err)
		}
	})
}
