package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ambassador-proxy/ambassador/config"
)

// envOf is a LookupEnv over a map, so tests never read the real environment.
func envOf(m map[string]string) config.LookupEnv {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// writeFile writes a config file into a temporary directory.
func writeFile(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ambassador.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const nodesEnv = "REDIS_CLUSTER_NODES"

func mustLoad(t *testing.T, args []string, env map[string]string) *config.Config {
	t.Helper()
	c, err := config.Load(args, envOf(env))
	if err != nil {
		t.Fatalf("Load(%q, %v): %v", args, env, err)
	}
	return c
}

// loadErr loads and returns the error text, failing when there is none.
func loadErr(t *testing.T, args []string, env map[string]string) string {
	t.Helper()
	c, err := config.Load(args, envOf(env))
	if err == nil {
		t.Fatalf("Load(%q, %v) = %+v, want an error", args, env, c)
	}
	if c != nil {
		t.Errorf("Load returned a config with the error %v", err)
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("error %v is not config.ErrInvalid", err)
	}
	return err.Error()
}

func wantAll(t *testing.T, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not contain %q", msg, p)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000"})
	if c.Admin.Listen != "127.0.0.1:9901" || c.Redis.Listen != "127.0.0.1:6379" ||
		c.RabbitMQ.Listen != "127.0.0.1:5672" || c.Kafka.Listen != "127.0.0.1:9092" {
		t.Errorf("default listen addresses: admin %s redis %s rabbitmq %s kafka %s",
			c.Admin.Listen, c.Redis.Listen, c.RabbitMQ.Listen, c.Kafka.Listen)
	}
	if c.LoadBalance != "round_robin" || c.Health.Interval.D() != 5*time.Second || c.Log.Level != "info" {
		t.Errorf("defaults: policy %s interval %v level %s", c.LoadBalance, c.Health.Interval, c.Log.Level)
	}
	if !c.Redis.Enabled() || c.Kafka.Enabled() || c.RabbitMQ.Enabled() {
		t.Errorf("only redis should be on: redis %v kafka %v rabbitmq %v", c.Redis.Enabled(), c.Kafka.Enabled(), c.RabbitMQ.Enabled())
	}
	if got := c.Source("redis.nodes"); got != nodesEnv {
		t.Errorf("Source(redis.nodes) = %q, want %s", got, nodesEnv)
	}
	if got := c.Source("admin.listen"); got != "default" {
		t.Errorf("Source(admin.listen) = %q, want default", got)
	}
	if c.Redis.MaxMultibulkLen != 1<<20 {
		t.Errorf("redis.max_multibulk_len default %d, want 1048576", c.Redis.MaxMultibulkLen)
	}
}

// TestPrecedence sets the same keys at every level and checks that each
// level overrides the one below: defaults < file < env < flags.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
admin:
  listen: 127.0.0.1:1001
health:
  interval: 1s
load_balance: least_connections
redis:
  nodes: ["127.0.0.1:7001"]
`)
	type level struct {
		name  string
		args  []string
		env   map[string]string
		admin string
		intv  time.Duration
		lb    string
		node  string
		src   string
	}
	levels := []level{
		{"default", nil, map[string]string{nodesEnv: "127.0.0.1:7000"},
			"127.0.0.1:9901", 5 * time.Second, "round_robin", "127.0.0.1:7000", "default"},
		{"file", []string{"--config", file}, nil,
			"127.0.0.1:1001", time.Second, "least_connections", "127.0.0.1:7001", file + ": admin.listen"},
		{"env", []string{"--config", file}, map[string]string{
			"ADMIN_LISTEN": "127.0.0.1:1002", "HEALTH_CHECK_INTERVAL": "2s",
			"LOAD_BALANCE_ALGORITHM": "latency_based", nodesEnv: "127.0.0.1:7002"},
			"127.0.0.1:1002", 2 * time.Second, "latency_based", "127.0.0.1:7002", "ADMIN_LISTEN"},
		{"flags", []string{"--config", file, "--admin-listen", "127.0.0.1:1003", "--health-check-interval", "3s",
			"--load-balance", "round_robin", "--redis-nodes", "127.0.0.1:7003"}, map[string]string{
			"ADMIN_LISTEN": "127.0.0.1:1002", "HEALTH_CHECK_INTERVAL": "2s",
			"LOAD_BALANCE_ALGORITHM": "latency_based", nodesEnv: "127.0.0.1:7002"},
			"127.0.0.1:1003", 3 * time.Second, "round_robin", "127.0.0.1:7003", "--admin-listen"},
	}
	for _, l := range levels {
		t.Run(l.name, func(t *testing.T) {
			c := mustLoad(t, l.args, l.env)
			if c.Admin.Listen != l.admin {
				t.Errorf("admin.listen = %s, want %s", c.Admin.Listen, l.admin)
			}
			if c.Health.Interval.D() != l.intv {
				t.Errorf("health.interval = %v, want %v", c.Health.Interval, l.intv)
			}
			if c.LoadBalance != l.lb {
				t.Errorf("load_balance = %s, want %s", c.LoadBalance, l.lb)
			}
			if len(c.Redis.Nodes) != 1 || c.Redis.Nodes[0].Addr != l.node {
				t.Errorf("redis.nodes = %v, want [%s]", c.Redis.Nodes, l.node)
			}
			if got := c.Source("admin.listen"); got != l.src {
				t.Errorf("Source(admin.listen) = %q, want %q", got, l.src)
			}
		})
	}
}

// TestProbeTimeoutFollowsInterval: a short interval shortens the default
// probe timeout, so a hung node is found down within a few intervals; a
// timeout that is set is kept.
func TestProbeTimeoutFollowsInterval(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "HEALTH_CHECK_INTERVAL": "500ms"})
	if c.Health.Timeout.D() != 500*time.Millisecond {
		t.Errorf("health.timeout = %v with a 500ms interval, want 500ms", c.Health.Timeout)
	}
	c = mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "HEALTH_CHECK_INTERVAL": "500ms", "HEALTH_CHECK_TIMEOUT": "1s"})
	if c.Health.Timeout.D() != time.Second {
		t.Errorf("health.timeout = %v, want the 1s set", c.Health.Timeout)
	}
	c = mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000"})
	if c.Health.Timeout.D() != 2*time.Second {
		t.Errorf("default health.timeout = %v, want 2s", c.Health.Timeout)
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	file := writeFile(t, "redis:\n  nodes: [127.0.0.1:7010]\n")
	c := mustLoad(t, nil, map[string]string{"AMBASSADOR_CONFIG": file})
	if c.File != file || len(c.Redis.Nodes) != 1 || c.Redis.Nodes[0].Addr != "127.0.0.1:7010" {
		t.Errorf("AMBASSADOR_CONFIG not read: file %q nodes %v", c.File, c.Redis.Nodes)
	}
}

// TestFileForms reads every kind of value from a file: node text and
// mapping forms, secrets, booleans, lists.
func TestFileForms(t *testing.T) {
	file := writeFile(t, `
region_preference: [eu-west-1, us-east-1]
circuit_breaker:
  enabled: true
  open_timeout: 250ms
redis:
  listen: 127.0.0.1:16379
  password: s3cret
  nodes:
    - 10.0.0.1:6379:2@eu-west-1 shard-a
    - addr: "[::1]:6380"
      weight: 3
      region: us-east-1
      name: shard-b
kafka:
  listen: 127.0.0.1:19092
  bootstrap_servers: [127.0.0.1:9093]
`)
	c := mustLoad(t, []string{"--config", file}, nil)
	want := []config.Node{
		{Addr: "10.0.0.1:6379", Weight: 2, Region: "eu-west-1", Name: "shard-a"},
		{Addr: "[::1]:6380", Weight: 3, Region: "us-east-1", Name: "shard-b"},
	}
	if !reflect.DeepEqual(c.Redis.Nodes, want) {
		t.Errorf("redis.nodes = %+v, want %+v", c.Redis.Nodes, want)
	}
	if c.Redis.Password.Reveal() != "s3cret" {
		t.Errorf("password = %q", c.Redis.Password.Reveal())
	}
	if !c.CircuitBreaker.Enabled || c.CircuitBreaker.OpenTimeout.D() != 250*time.Millisecond {
		t.Errorf("circuit_breaker = %+v", c.CircuitBreaker)
	}
	if !reflect.DeepEqual(c.RegionPreference, []string{"eu-west-1", "us-east-1"}) {
		t.Errorf("region_preference = %v", c.RegionPreference)
	}
	if !c.Kafka.Enabled() || c.Kafka.BootstrapServers[0].Addr != "127.0.0.1:9093" {
		t.Errorf("kafka = %+v", c.Kafka)
	}
}

// TestBoolFlags: a boolean setting's flag alone is true, and takes the
// variables' values after "=" (it needed a value: "--circuit-breaker
// --log-level debug" was refused).
func TestBoolFlags(t *testing.T) {
	c := mustLoad(t, []string{"--redis-nodes", "127.0.0.1:7000", "--circuit-breaker", "--redis-auto-eject", "--log-level", "debug"}, nil)
	if !c.CircuitBreaker.Enabled || !c.Redis.AutoEject || c.Log.Level != "debug" {
		t.Errorf("bare boolean flags: breaker %v auto-eject %v log %s", c.CircuitBreaker.Enabled, c.Redis.AutoEject, c.Log.Level)
	}
	c = mustLoad(t, []string{"--redis-nodes", "127.0.0.1:7000", "--circuit-breaker=enabled", "--redis-auto-eject=off"}, nil)
	if !c.CircuitBreaker.Enabled || c.Redis.AutoEject {
		t.Errorf("boolean flags with values: breaker %v auto-eject %v", c.CircuitBreaker.Enabled, c.Redis.AutoEject)
	}
	if _, err := config.Load([]string{"--redis-nodes", "127.0.0.1:7000", "--circuit-breaker=maybe"}, envOf(nil)); err == nil || !strings.Contains(err.Error(), "--circuit-breaker") {
		t.Errorf("--circuit-breaker=maybe: %v", err)
	}
}

func TestEnvForms(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{
		"REDIS_BACKENDS":          " 127.0.0.1:7000:2@eu , 127.0.0.1:7001 ",
		"CIRCUIT_BREAKER_ENABLED": "enabled",
		"REGION_PREFERENCE":       "eu, us",
		"ROUTING_STRATEGY":        "least-connections",
		"MAX_CONNECTIONS":         "100",
		"IDLE_TIMEOUT":            "1m30s",
		"CONSISTENT_HASHING":      "false",
		"REDIS_HASH":              "FNV1A_64",
		"REDIS_HASH_TAG":          "none",
		"LOG_LEVEL":               "DEBUG",
	})
	if len(c.Redis.Nodes) != 2 || c.Redis.Nodes[0] != (config.Node{Addr: "127.0.0.1:7000", Weight: 2, Region: "eu"}) {
		t.Errorf("REDIS_BACKENDS parsed as %+v", c.Redis.Nodes)
	}
	if !c.CircuitBreaker.Enabled || c.LoadBalance != "least_connections" || c.Limits.MaxConnections != 100 ||
		c.Limits.IdleTimeout.D() != 90*time.Second || c.Log.Level != "debug" {
		t.Errorf("env settings not applied: %+v %s %+v %s", c.CircuitBreaker, c.LoadBalance, c.Limits, c.Log.Level)
	}
	if !reflect.DeepEqual(c.RegionPreference, []string{"eu", "us"}) {
		t.Errorf("REGION_PREFERENCE = %v", c.RegionPreference)
	}
	if c.Redis.Distribution != "modula" || c.Redis.Hash != "fnv1a_64" || c.Redis.HashTag != "" {
		t.Errorf("hash settings: %s %s %q", c.Redis.Distribution, c.Redis.Hash, c.Redis.HashTag)
	}
	// CONSISTENT_HASHING and REDIS_DISTRIBUTION may both be set when they agree
	if c := mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "CONSISTENT_HASHING": "off", "REDIS_DISTRIBUTION": "MODULA"}); c.Redis.Distribution != "modula" {
		t.Errorf("CONSISTENT_HASHING=off and REDIS_DISTRIBUTION=MODULA: %s", c.Redis.Distribution)
	}
	// the two aliases may both be set when they agree
	mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "REDIS_BACKENDS": "127.0.0.1:7000"})
	// a "not supported yet" variable set to false is accepted
	mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "TLS_ENABLED": "false", "CLUSTER_MODE": "disabled"})
}

// TestErrors checks that every error names the key or variable and the bad
// value.
func TestErrors(t *testing.T) {
	base := map[string]string{nodesEnv: "127.0.0.1:7000"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name string
		file string // YAML, when set
		args []string
		env  map[string]string
		want []string
	}{
		{name: "unknown top-level file key", file: "redis:\n  nodes: [127.0.0.1:7000]\nlisten_addr: 1\n",
			want: []string{"listen_addr", "line 3"}},
		{name: "unknown nested file key", file: "redis:\n  nodes: [127.0.0.1:7000]\n  pasword: x\n",
			want: []string{"redis.pasword", "line 3"}},
		{name: "unknown node key", file: "redis:\n  nodes:\n    - addr: 127.0.0.1:7000\n      weigth: 2\n",
			want: []string{"redis.nodes", "weigth"}},
		{name: "file duration without unit", file: "health:\n  interval: 5\nredis:\n  nodes: [127.0.0.1:7000]\n",
			want: []string{"health.interval", `"5"`}},
		{name: "file duration garbage", file: "redis:\n  nodes: [127.0.0.1:7000]\n  request_timeout: abc\n",
			want: []string{"redis.request_timeout", `"abc"`}},
		{name: "multibulk limit over Redis's INT_MAX", file: "redis:\n  nodes: [127.0.0.1:7000]\n  max_multibulk_len: 2147483648\n",
			want: []string{"redis.max_multibulk_len", "2147483648 is over 2147483647"}},
		{name: "env duration without unit", env: with("HEALTH_CHECK_INTERVAL", "5"),
			want: []string{"HEALTH_CHECK_INTERVAL", `"5"`}},
		{name: "env duration garbage", env: with("CONNECTION_TIMEOUT", "abc"),
			want: []string{"CONNECTION_TIMEOUT", `"abc"`}},
		{name: "env negative duration", env: with("IDLE_TIMEOUT", "-1s"),
			want: []string{"IDLE_TIMEOUT", `"-1s"`}},
		{name: "flag duration", args: []string{"--health-check-interval", "5"}, env: base,
			want: []string{"--health-check-interval", `"5"`}},
		{name: "unknown policy env", env: with("LOAD_BALANCE_ALGORITHM", "random"),
			want: []string{"load_balance", "LOAD_BALANCE_ALGORITHM", `"random"`}},
		{name: "unknown policy file", file: "load_balance: fastest\nredis:\n  nodes: [127.0.0.1:7000]\n",
			want: []string{"load_balance", `"fastest"`}},
		{name: "listen without port env", env: with("REDIS_LISTEN", "127.0.0.1"),
			want: []string{"REDIS_LISTEN", `"127.0.0.1"`, "port"}},
		{name: "listen without port file", file: "admin:\n  listen: localhost\nredis:\n  nodes: [127.0.0.1:7000]\n",
			want: []string{"admin.listen", `"localhost"`, "port"}},
		{name: "node without port env", env: map[string]string{nodesEnv: "127.0.0.1:7000,redis-b"},
			want: []string{nodesEnv, `"redis-b"`, "port"}},
		{name: "node without port file", file: "kafka:\n  bootstrap_servers: [broker-1]\n",
			want: []string{"kafka.bootstrap_servers", `"broker-1"`, "port"}},
		{name: "node mapping without port", file: "redis:\n  nodes:\n    - addr: redis-a\n",
			want: []string{"redis.nodes", `"redis-a"`, "port"}},
		{name: "bad weight env", env: map[string]string{nodesEnv: "127.0.0.1:7000:heavy"},
			want: []string{nodesEnv, `"heavy"`, "weight"}},
		{name: "zero weight env", env: map[string]string{nodesEnv: "127.0.0.1:7000:0"},
			want: []string{nodesEnv, `"0"`, "weight"}},
		{name: "bad weight file", file: "redis:\n  nodes:\n    - addr: 127.0.0.1:7000\n      weight: 20000\n",
			want: []string{"redis.nodes", "20000", "weight"}},
		{name: "duplicate nodes env", env: map[string]string{nodesEnv: "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7000:2"},
			want: []string{"redis.nodes", nodesEnv, "127.0.0.1:7000", "twice"}},
		{name: "duplicate nodes file", file: "redis:\n  nodes: [127.0.0.1:7000, 127.0.0.1:7000]\n",
			want: []string{"redis.nodes", "127.0.0.1:7000", "twice"}},
		{name: "duplicate node names", env: map[string]string{nodesEnv: "127.0.0.1:7000 a,127.0.0.1:7001 a"},
			want: []string{"redis.nodes", `"a"`, "twice"}},
		{name: "aliases disagree", env: map[string]string{nodesEnv: "127.0.0.1:7000", "REDIS_BACKENDS": "127.0.0.1:7001"},
			want: []string{nodesEnv, "REDIS_BACKENDS", "127.0.0.1:7000", "127.0.0.1:7001", "disagree"}},
		{name: "policy aliases disagree", env: with("LOAD_BALANCE_ALGORITHM", "round_robin", "ROUTING_STRATEGY", "least_connections"),
			want: []string{"LOAD_BALANCE_ALGORITHM", "ROUTING_STRATEGY", "disagree"}},
		{name: "TLS not supported yet", env: with("TLS_ENABLED", "true"),
			want: []string{"TLS_ENABLED", `"true"`, "not supported yet"}},
		{name: "secret not supported yet is redacted", env: with("RABBITMQ_PASSWORD", "hunter2"),
			want: []string{"RABBITMQ_PASSWORD", "not supported yet"}},
		{name: "cluster mode not supported yet", env: with("CLUSTER_MODE", "enabled"),
			want: []string{"redis.cluster_mode", "CLUSTER_MODE", "not supported yet"}},
		{name: "cluster mode refused with Kafka only", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "CLUSTER_MODE": "true"},
			want: []string{"redis.cluster_mode", "CLUSTER_MODE", "not supported yet"}},
		{name: "rabbitmq pooling refused with Kafka only", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "RABBITMQ_CONNECTION_POOLING": "true"},
			want: []string{"rabbitmq.connection_pooling", "RABBITMQ_CONNECTION_POOLING", "not supported yet"}},
		{name: "consistent hashing and distribution disagree", env: with("CONSISTENT_HASHING", "false", "REDIS_DISTRIBUTION", "ketama"),
			want: []string{"CONSISTENT_HASHING", "REDIS_DISTRIBUTION", "disagree"}},
		{name: "rabbitmq not supported yet", env: map[string]string{"RABBITMQ_CLUSTER_NODES": "127.0.0.1:5673"},
			want: []string{"rabbitmq.nodes", "RABBITMQ_CLUSTER_NODES", "not supported yet"}},
		{name: "bad boolean", env: with("CIRCUIT_BREAKER_ENABLED", "maybe"),
			want: []string{"CIRCUIT_BREAKER_ENABLED", `"maybe"`}},
		{name: "bad integer", env: with("MAX_CONNECTIONS", "lots"),
			want: []string{"MAX_CONNECTIONS", `"lots"`}},
		{name: "negative integer", env: with("MAX_CONNECTIONS", "-1"),
			want: []string{"limits.max_connections", "MAX_CONNECTIONS", "-1"}},
		{name: "bad log level", env: with("LOG_LEVEL", "verbose"),
			want: []string{"log.level", "LOG_LEVEL", `"verbose"`}},
		{name: "bad hash", env: with("REDIS_HASH", "sha1"),
			want: []string{"redis.hash", "REDIS_HASH", `"sha1"`}},
		{name: "zero interval", env: with("HEALTH_CHECK_INTERVAL", "0s"),
			want: []string{"health.interval", "HEALTH_CHECK_INTERVAL"}},
		{name: "nothing configured", env: map[string]string{},
			want: []string{"nothing to proxy", "REDIS_CLUSTER_NODES", "KAFKA_BOOTSTRAP_SERVERS"}},
		{name: "listen collision env", env: with("REDIS_LISTEN", "127.0.0.1:9901"),
			want: []string{"redis.listen", "REDIS_LISTEN", "127.0.0.1:9901", "admin.listen"}},
		{name: "listen collision frontends", env: with("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9093", "KAFKA_LISTEN", "127.0.0.1:6379"),
			want: []string{"kafka.listen", "KAFKA_LISTEN", "127.0.0.1:6379", "redis.listen"}},
		{name: "unknown flag", args: []string{"--redis-nodez", "x"}, env: base,
			want: []string{"redis-nodez"}},
		{name: "stray argument", args: []string{"serve"}, env: base,
			want: []string{`"serve"`}},
		{name: "missing file", args: []string{"--config", "/nonexistent/ambassador.yaml"}, env: base,
			want: []string{"--config", "/nonexistent/ambassador.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			msg := loadErr(t, args, tc.env)
			wantAll(t, msg, tc.want...)
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q shows a secret", msg)
			}
		})
	}
}

// TestErrorsAllReported: several independent mistakes are reported
// together, so a user fixes them in one go.
func TestErrorsAllReported(t *testing.T) {
	msg := loadErr(t, nil, map[string]string{
		nodesEnv: "127.0.0.1:7000", "HEALTH_CHECK_INTERVAL": "5", "LOAD_BALANCE_ALGORITHM": "random", "TLS_ENABLED": "1",
	})
	wantAll(t, msg, "HEALTH_CHECK_INTERVAL", "TLS_ENABLED")
	msg = loadErr(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "LOG_FORMAT": "xml", "LOAD_BALANCE_ALGORITHM": "random"})
	wantAll(t, msg, "LOG_FORMAT", "LOAD_BALANCE_ALGORITHM", "2 problems")
}

// TestListenPortZero: port 0 (any free port, as tests use) on several
// listeners is not a collision.
func TestListenPortZero(t *testing.T) {
	mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "ADMIN_LISTEN": "127.0.0.1:0", "REDIS_LISTEN": "127.0.0.1:0",
		"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9093", "KAFKA_LISTEN": "127.0.0.1:0"})
}

func TestRedactedHidesSecrets(t *testing.T) {
	file := writeFile(t, `
redis:
  nodes: [127.0.0.1:7000]
  password: file-secret-1
  frontend_users:
    alice: file-secret-2
`)
	c := mustLoad(t, []string{"--config", file}, map[string]string{"REDIS_FRONTEND_PASSWORD": "env-secret-3", "REDIS_USERNAME": "amb"})
	if c.Redis.FrontendUsers["alice"].Reveal() != "file-secret-2" || c.Redis.FrontendPassword.Reveal() != "env-secret-3" {
		t.Fatalf("secrets not loaded: %+v", c.Redis)
	}
	out := string(c.Redacted())
	for _, s := range []string{"file-secret-1", "file-secret-2", "env-secret-3"} {
		if strings.Contains(out, s) {
			t.Errorf("Redacted() contains %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "<redacted>") || !strings.Contains(out, "username: amb") || !strings.Contains(out, "127.0.0.1:7000") {
		t.Errorf("Redacted() lacks the redacted markers or the plain settings:\n%s", out)
	}
	// the same through JSON (the /config endpoint) and %v
	js, err := jsonMarshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"file-secret-1", "file-secret-2", "env-secret-3"} {
		if strings.Contains(js, s) {
			t.Errorf("JSON contains %q", s)
		}
		if strings.Contains(sprintf(c), s) {
			t.Errorf("%%+v contains %q", s)
		}
	}
	// the redacted YAML is itself a valid configuration file
	var back config.Config
	if err := yaml.Unmarshal(c.Redacted(), &back); err != nil {
		t.Errorf("Redacted() does not decode: %v", err)
	}
}

func TestParseNode(t *testing.T) {
	cases := []struct {
		in   string
		want config.Node
		err  string
	}{
		{in: "10.0.0.1:6379", want: config.Node{Addr: "10.0.0.1:6379", Weight: 1}},
		{in: "redis-a.svc:6379:3", want: config.Node{Addr: "redis-a.svc:6379", Weight: 3}},
		{in: "10.0.0.1:6379@eu-west-1", want: config.Node{Addr: "10.0.0.1:6379", Weight: 1, Region: "eu-west-1"}},
		{in: "10.0.0.1:6379:2@eu-west-1 shard-a", want: config.Node{Addr: "10.0.0.1:6379", Weight: 2, Region: "eu-west-1", Name: "shard-a"}},
		{in: " 10.0.0.1:6379 server1", want: config.Node{Addr: "10.0.0.1:6379", Weight: 1, Name: "server1"}},
		{in: "[::1]:6379", want: config.Node{Addr: "[::1]:6379", Weight: 1}},
		{in: "[::1]:6379:2", want: config.Node{Addr: "[::1]:6379", Weight: 2}},
		{in: "[fe80::1]:6379:4@az1 n1", want: config.Node{Addr: "[fe80::1]:6379", Weight: 4, Region: "az1", Name: "n1"}},
		{in: "", err: "empty"},
		{in: "10.0.0.1", err: "port"},
		{in: "[::1]", err: "port"},
		{in: "::1:6379", err: "colons"},
		{in: "[::1:6379", err: "["},
		{in: "10.0.0.1:6379:x", err: `"x"`},
		{in: "10.0.0.1:6379:-1", err: `"-1"`},
		{in: "10.0.0.1:6379:10001", err: `"10001"`},
		{in: "10.0.0.1:99999", err: `"99999"`},
		{in: "10.0.0.1:http", err: `"http"`},
		{in: "10.0.0.1:6379@", err: "region"},
		{in: "10.0.0.1:6379 a b", err: "name"},
		{in: "10.0.0.1:0", err: "port 0"},
		{in: ":6379", err: "no host"},
		{in: "10.0.0.1:6379 10.0.0.2:6379", err: "commas"},
		{in: "10.0.0.1:6379 10.0.0.2:6379:2@eu", err: "commas"},
		{in: "10.0.0.1:6379 a 10.0.0.2:6379", err: "commas"},
	}
	for _, tc := range cases {
		got, err := config.ParseNode(tc.in)
		if tc.err != "" {
			if err == nil {
				t.Errorf("ParseNode(%q) = %+v, want an error", tc.in, got)
			} else if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseNode(%q) error %q does not contain %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseNode(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		// the text form parses back to the same node
		back, err := config.ParseNode(got.String())
		if err != nil || back != got {
			t.Errorf("ParseNode(%q.String() = %q) = %+v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestParseNodes(t *testing.T) {
	ns, err := config.ParseNodes("a:1, b:2:3 ,,c:4@r")
	if err != nil || len(ns) != 3 || ns[1].Weight != 3 || ns[2].Region != "r" {
		t.Errorf("ParseNodes = %+v, %v", ns, err)
	}
	if _, err := config.ParseNodes(" , "); err == nil {
		t.Error("ParseNodes(\" , \") accepted a list without a node")
	}
}

func TestParseBool(t *testing.T) {
	for _, s := range []string{"1", "t", "true", "TRUE", "True", "yes", "y", "on", "enable", "enabled", "Enabled", " true "} {
		if b, err := config.ParseBool(s); err != nil || !b {
			t.Errorf("ParseBool(%q) = %v, %v; want true", s, b, err)
		}
	}
	for _, s := range []string{"0", "f", "false", "FALSE", "no", "n", "off", "disable", "disabled", "Disabled"} {
		if b, err := config.ParseBool(s); err != nil || b {
			t.Errorf("ParseBool(%q) = %v, %v; want false", s, b, err)
		}
	}
	for _, s := range []string{"", "2", "maybe", "truee", "nope"} {
		if _, err := config.ParseBool(s); err == nil || !strings.Contains(err.Error(), `"`+s+`"`) {
			t.Errorf("ParseBool(%q) error %v, want one naming the value", s, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	if d, err := config.ParseDuration("1m30s"); err != nil || d.D() != 90*time.Second {
		t.Errorf("ParseDuration(1m30s) = %v, %v", d, err)
	}
	for _, s := range []string{"5", "abc", "-1s", "", "5 s"} {
		if _, err := config.ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) accepted", s)
		}
	}
}

// TestReferenceCoversEverySetting: every file key of the configuration
// (every leaf of the YAML of the defaults) and every variable and flag
// appears in the reference the README is written from.
func TestReferenceCoversEverySetting(t *testing.T) {
	ref := config.Reference()
	var root yaml.Node
	if err := root.Encode(config.Default()); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode || len(n.Content) == 0 && prefix != "" {
			keys = append(keys, prefix) // a value, a list or an empty map
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if prefix != "" {
				k = prefix + "." + k
			}
			walk(n.Content[i+1], k)
		}
	}
	walk(&root, "")
	if len(keys) < 30 {
		t.Fatalf("only %d keys found: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.Contains(ref, "`"+k+"`") {
			t.Errorf("Reference() lacks the file key %s", k)
		}
	}
	for _, v := range []string{"ADMIN_LISTEN", "LOG_LEVEL", "LOG_FORMAT", "REDIS_CLUSTER_NODES", "REDIS_BACKENDS", "REDIS_LISTEN",
		"CLUSTER_MODE", "CONSISTENT_HASHING", "REDIS_HASH", "REDIS_DISTRIBUTION", "REDIS_HASH_TAG", "REDIS_USERNAME", "REDIS_PASSWORD",
		"RABBITMQ_CLUSTER_NODES", "RABBITMQ_BACKENDS", "RABBITMQ_LISTEN", "LOAD_BALANCE_ALGORITHM", "ROUTING_STRATEGY",
		"RABBITMQ_CONNECTION_POOLING", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BACKENDS", "KAFKA_LISTEN", "HEALTH_CHECK_INTERVAL",
		"CIRCUIT_BREAKER_ENABLED", "REGION_PREFERENCE", "MAX_CONNECTIONS", "CONNECTION_TIMEOUT", "IDLE_TIMEOUT", "CONFIG_RELOAD_INTERVAL"} {
		if !strings.Contains(ref, "`"+v+"`") {
			t.Errorf("Reference() lacks the variable %s", v)
		}
	}
	// every flag of the usage text is in the reference
	for _, line := range strings.Split(config.FlagUsage(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-") {
			continue
		}
		name := strings.Fields(line)[0]
		if name == "-config" {
			continue
		}
		if !strings.Contains(ref, "`-"+name+"`") {
			t.Errorf("Reference() lacks the flag -%s", name)
		}
	}
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func sprintf(v any) string { return fmt.Sprintf("%+v %v", v, v) }

// loadFileEnv loads with the YAML file body (when not empty) and the
// variables.
func loadFileEnv(t *testing.T, yml string, env map[string]string) (*config.Config, error) {
	t.Helper()
	var args []string
	if yml != "" {
		args = []string{"--config", writeFile(t, yml)}
	}
	return config.Load(args, envOf(env))
}

// TestFileAndEnvAcceptTheSameValues: a value given in the file is
// normalised as the same value of the variable is (case, aliases, "none",
// spaces, the spellings of booleans), so both load alike.
// agreeCase is one value given in the file and in a variable.
type agreeCase struct {
	section, key string // the file key is section.key ("" section: top level)
	fileVal      string // as written in YAML
	env, envVal  string
	extraYAML    string // more lines of the section
	extraEnv     map[string]string
	get          func(c *config.Config) any
	want         any
}

func TestFileAndEnvAcceptTheSameValues(t *testing.T) {
	const node = "127.0.0.1:7001"
	kafkaSASL := "  bootstrap_servers: [127.0.0.1:9093]\n  sasl: {username: u, password: p}\n"
	kafkaSASLEnv := map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9093", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
	cases := []agreeCase{
		{"", "load_balance", "least_conn", "LOAD_BALANCE_ALGORITHM", "least_conn", "", nil,
			func(c *config.Config) any { return c.LoadBalance }, "least_connections"},
		{"", "load_balance", "least-connections", "ROUTING_STRATEGY", "least-connections", "", nil,
			func(c *config.Config) any { return c.LoadBalance }, "least_connections"},
		{"", "load_balance", "Round-Robin", "LOAD_BALANCE_ALGORITHM", "Round-Robin", "", nil,
			func(c *config.Config) any { return c.LoadBalance }, "round_robin"},
		{"log", "level", "INFO", "LOG_LEVEL", "INFO", "", nil,
			func(c *config.Config) any { return c.Log.Level }, "info"},
		{"log", "level", `"warn "`, "LOG_LEVEL", "warn ", "", nil,
			func(c *config.Config) any { return c.Log.Level }, "warn"},
		{"log", "format", "JSON", "LOG_FORMAT", "JSON", "", nil,
			func(c *config.Config) any { return c.Log.Format }, "json"},
		{"redis", "hash", "FNV1A_64", "REDIS_HASH", "FNV1A_64", "", nil,
			func(c *config.Config) any { return c.Redis.Hash }, "fnv1a_64"},
		{"redis", "distribution", "KETAMA", "REDIS_DISTRIBUTION", "KETAMA", "", nil,
			func(c *config.Config) any { return c.Redis.Distribution }, "ketama"},
		{"redis", "hash_tag", "none", "REDIS_HASH_TAG", "none", "", nil,
			func(c *config.Config) any { return c.Redis.HashTag }, ""},
		{"redis", "hash_tag", "NONE", "REDIS_HASH_TAG", "NONE", "", nil,
			func(c *config.Config) any { return c.Redis.HashTag }, ""},
		{"kafka", "sasl.mechanism", "scram-sha-256", "KAFKA_SASL_MECHANISM", "scram-sha-256", kafkaSASL, kafkaSASLEnv,
			func(c *config.Config) any { return c.Kafka.SASL.Mechanism }, "SCRAM-SHA-256"},
		{"kafka", "sasl.mechanism", `" plain "`, "KAFKA_SASL_MECHANISM", " plain ", kafkaSASL, kafkaSASLEnv,
			func(c *config.Config) any { return c.Kafka.SASL.Mechanism }, "PLAIN"},
	}
	for _, word := range []string{"enabled", "1", "on", "yes", "true", "Enabled", `"true"`, "y"} {
		cases = append(cases, agreeCase{"circuit_breaker", "enabled", word, "CIRCUIT_BREAKER_ENABLED", strings.Trim(word, `"`), "", nil,
			func(c *config.Config) any { return c.CircuitBreaker.Enabled }, true})
	}
	for _, word := range []string{"disabled", "0", "off", "no", "false", "n"} {
		// fetch_read_ahead is true by default, so false must be read
		cases = append(cases, agreeCase{"kafka", "fetch_read_ahead", word, "KAFKA_FETCH_READ_AHEAD", word, "  bootstrap_servers: [127.0.0.1:9093]\n",
			map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9093"},
			func(c *config.Config) any { return c.Kafka.FetchReadAhead }, false})
	}
	cases = append(cases, agreeCase{"redis", "auto_eject", "on", "REDIS_AUTO_EJECT", "on", "", nil,
		func(c *config.Config) any { return c.Redis.AutoEject }, true})

	for _, tc := range cases {
		key := tc.key
		if tc.section != "" {
			key = tc.section + "." + tc.key
		}
		t.Run(key+"="+tc.fileVal, func(t *testing.T) {
			// the file: the value, nested under its section
			var yml string
			nested := tc.key
			indent := ""
			if tc.section != "" {
				yml = tc.section + ":\n"
				indent = "  "
			}
			parts := strings.Split(nested, ".")
			for i, p := range parts {
				yml += indent + strings.Repeat("  ", i) + p + ":"
				if i == len(parts)-1 {
					yml += " " + tc.fileVal
				}
				yml += "\n"
			}
			if tc.extraYAML != "" {
				yml = strings.Replace(yml, "  sasl:\n", "", 1)
				yml += strings.Replace(tc.extraYAML, "  sasl: {", "  sasl: {mechanism: "+tc.fileVal+", ", 1)
				yml = strings.Replace(yml, "    mechanism: "+tc.fileVal+"\n", "", 1)
			}
			if tc.section != "redis" {
				yml += "redis:\n"
			}
			yml += "  nodes: [" + node + "]\n"
			fromFile, err := loadFileEnv(t, yml, nil)
			if err != nil {
				t.Fatalf("file\n%s: %v", yml, err)
			}
			env := map[string]string{nodesEnv: node, tc.env: tc.envVal}
			for k, v := range tc.extraEnv {
				env[k] = v
			}
			fromEnv, err := loadFileEnv(t, "", env)
			if err != nil {
				t.Fatalf("%s=%q: %v", tc.env, tc.envVal, err)
			}
			if got := tc.get(fromFile); got != tc.want {
				t.Errorf("file\n%s: %s = %#v, want %#v", yml, key, got, tc.want)
			}
			if got := tc.get(fromEnv); got != tc.want {
				t.Errorf("%s=%q: %s = %#v, want %#v", tc.env, tc.envVal, key, got, tc.want)
			}
		})
	}
}

// TestFileBooleans: booleans in the file take the variables' spellings,
// a bad one is refused naming the file key, null keeps the default, and
// the file stays strict about unknown keys.
func TestFileBooleans(t *testing.T) {
	c, err := loadFileEnv(t, `
circuit_breaker: {enabled: enabled, failure_threshold: 2}
kafka:
  bootstrap_servers: [127.0.0.1:9093]
  fetch_read_ahead: 0
  tls:
    enabled: 'yes'
    insecure_skip_verify: on
redis:
  nodes: [127.0.0.1:7001]
  auto_eject:
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.CircuitBreaker.Enabled || c.CircuitBreaker.FailureThreshold != 2 || c.Kafka.FetchReadAhead ||
		!c.Kafka.TLS.Enabled || !c.Kafka.TLS.InsecureSkipVerify || c.Redis.AutoEject {
		t.Errorf("booleans misread: breaker %+v kafka %+v auto_eject %v", c.CircuitBreaker, c.Kafka, c.Redis.AutoEject)
	}
	if got := c.Source("kafka.tls.enabled"); !strings.HasSuffix(got, ": kafka.tls.enabled") {
		t.Errorf("Source(kafka.tls.enabled) = %q", got)
	}

	for _, tc := range []struct{ yml, key, val, line string }{
		{"circuit_breaker: {enabled: maybe, failure_threshold: 2}\nredis: {nodes: [127.0.0.1:7001]}\n",
			"circuit_breaker.enabled", `"maybe"`, "line 1"},
		{"redis:\n  nodes: [127.0.0.1:7001]\nkafka:\n  bootstrap_servers: [127.0.0.1:9093]\n  tls:\n    enabled: 2\n",
			"kafka.tls.enabled", `"2"`, "line 6"},
		{"redis:\n  nodes: [127.0.0.1:7001]\n  auto_eject: [true]\n", "redis.auto_eject", "", "line 3"},
	} {
		msg := loadErr(t, []string{"--config", writeFile(t, tc.yml)}, nil)
		wantAll(t, msg, tc.key, tc.val, tc.line)
	}
	// unknown keys are still refused, with the booleans rewritten
	msg := loadErr(t, []string{"--config", writeFile(t, "circuit_breaker: {enabled: on}\nredis:\n  nodes: [127.0.0.1:7001]\n  pasword: x\n")}, nil)
	wantAll(t, msg, "redis.pasword", "line 4")
	// and a bad boolean and an unknown key are reported together
	msg = loadErr(t, []string{"--config", writeFile(t, "circuit_breaker: {enabled: sure}\nredis:\n  nodes: [127.0.0.1:7001]\n  pasword: x\n")}, nil)
	wantAll(t, msg, "2 problems", "circuit_breaker.enabled", `"sure"`, "redis.pasword")
}

// TestEmptySectionKeepsDefaults: a section with nothing under it leaves
// its defaults.
func TestEmptySectionKeepsDefaults(t *testing.T) {
	def := config.Default()
	for _, yml := range []string{
		"health:\nredis: {nodes: [127.0.0.1:7001]}\n",
		"log:\ncircuit_breaker:\nredis: {nodes: [127.0.0.1:7001]}\n",
		"redis:\n  nodes: [127.0.0.1:7001]\nkafka:\n",
		"redis:\n  nodes: [127.0.0.1:7001]\nkafka:\n  tls:\n  sasl:\n",
	} {
		c, err := loadFileEnv(t, yml, nil)
		if err != nil {
			t.Errorf("file %q: %v", yml, err)
			continue
		}
		if c.Health != def.Health || c.Log != def.Log || c.CircuitBreaker != def.CircuitBreaker ||
			c.Kafka.Listen != def.Kafka.Listen || c.Kafka.MetadataRefresh != def.Kafka.MetadataRefresh || !c.Kafka.FetchReadAhead {
			t.Errorf("file %q lost defaults: health %+v log %+v breaker %+v kafka %+v", yml, c.Health, c.Log, c.CircuitBreaker, c.Kafka)
		}
	}
}

// TestNodeWeightZero: weight 0 is refused alike in the text form and in
// the mapping form; a mapping without weight has weight 1.
func TestNodeWeightZero(t *testing.T) {
	msg := loadErr(t, []string{"--config", writeFile(t, "redis:\n  nodes:\n    - addr: 127.0.0.1:7000\n      weight: 0\n")}, nil)
	wantAll(t, msg, "redis.nodes", "weight 0", "1 to 10000")
	msg = loadErr(t, []string{"--config", writeFile(t, "redis:\n  nodes: [127.0.0.1:7000:0]\n")}, nil)
	wantAll(t, msg, "redis.nodes", `"0"`, "weight")
	msg = loadErr(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000:0"})
	wantAll(t, msg, nodesEnv, `"0"`, "weight")

	c := mustLoad(t, []string{"--config", writeFile(t, "redis:\n  nodes:\n    - addr: 127.0.0.1:7000\n    - {addr: 127.0.0.1:7001, weight: 2}\n    - {addr: 127.0.0.1:7002, weight: ~}\n")}, nil)
	if w := []int{c.Redis.Nodes[0].Weight, c.Redis.Nodes[1].Weight, c.Redis.Nodes[2].Weight}; !reflect.DeepEqual(w, []int{1, 2, 1}) {
		t.Errorf("weights %v, want [1 2 1]", w)
	}
}

// TestSpaceSeparatedNodes: a node list separated by spaces is not one
// node named after the second address; Kafka bootstrap servers take no
// name, weight or region.
func TestSpaceSeparatedNodes(t *testing.T) {
	for _, tc := range []struct {
		file string
		env  map[string]string
		want []string
	}{
		{env: map[string]string{nodesEnv: "127.0.0.1:7001 127.0.0.1:7002"},
			want: []string{nodesEnv, `"127.0.0.1:7002"`, "commas"}},
		{env: map[string]string{nodesEnv: "127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003"},
			want: []string{nodesEnv, "commas"}},
		{env: map[string]string{nodesEnv: "127.0.0.1:7001 redis-b:6379:2@eu"},
			want: []string{nodesEnv, "commas"}},
		{env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "k0:9092 k1:9092"},
			want: []string{"KAFKA_BOOTSTRAP_SERVERS", `"k1:9092"`, "commas"}},
		{file: "redis:\n  nodes: [\"127.0.0.1:7001 127.0.0.1:7002\"]\n",
			want: []string{"redis.nodes", "commas"}},
		// bootstrap servers: no names, weights or regions
		{env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "k0:9092 broker-0"},
			want: []string{"kafka.bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS", `"broker-0"`, "name"}},
		{env: map[string]string{"KAFKA_BACKENDS": "k0:9092:2,k1:9092"},
			want: []string{"kafka.bootstrap_servers", "KAFKA_BACKENDS", "weight"}},
		{env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "k0:9092@eu-west-1"},
			want: []string{"kafka.bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS", `"eu-west-1"`, "region"}},
		{file: "kafka:\n  bootstrap_servers:\n    - {addr: k0:9092, name: b0}\n",
			want: []string{": kafka.bootstrap_servers", `"b0"`, "name"}},
	} {
		var args []string
		if tc.file != "" {
			args = []string{"--config", writeFile(t, tc.file)}
		}
		wantAll(t, loadErr(t, args, tc.env), tc.want...)
	}
	// a name that is not an address is fine
	c := mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7001 shard-a,127.0.0.1:7002:2@eu shard-b"})
	if c.Redis.Nodes[0].Name != "shard-a" || c.Redis.Nodes[1].Name != "shard-b" {
		t.Errorf("names: %+v", c.Redis.Nodes)
	}
	// so is an address as a name given explicitly in the mapping form
	// (a node moved to a new address keeps its place on the ring)
	c = mustLoad(t, []string{"--config", writeFile(t, "redis:\n  nodes:\n    - {addr: 127.0.0.1:7001, name: \"10.0.0.9:6379\"}\n")}, nil)
	if c.Redis.Nodes[0].Name != "10.0.0.9:6379" {
		t.Errorf("explicit name: %+v", c.Redis.Nodes)
	}
}

// TestNodeAddressNeedsHostAndPort: a backend node needs a host and a port
// 1-65535, whereas a listen address may have port 0 and no host.
func TestNodeAddressNeedsHostAndPort(t *testing.T) {
	for _, tc := range []struct {
		file string
		env  map[string]string
		want []string
	}{
		{env: map[string]string{nodesEnv: "127.0.0.1:0"}, want: []string{nodesEnv, "127.0.0.1:0", "port 0"}},
		{env: map[string]string{nodesEnv: ":6379"}, want: []string{nodesEnv, `":6379"`, "no host"}},
		{env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": ":0"}, want: []string{"KAFKA_BOOTSTRAP_SERVERS", `":0"`}},
		{env: map[string]string{"RABBITMQ_CLUSTER_NODES": "127.0.0.1:0"}, want: []string{"RABBITMQ_CLUSTER_NODES", "port 0"}},
		{file: "redis:\n  nodes: [127.0.0.1:0]\n", want: []string{"redis.nodes", "port 0"}},
		{file: "redis:\n  nodes:\n    - addr: \":6379\"\n", want: []string{"redis.nodes", "no host"}},
		{file: "kafka:\n  bootstrap_servers: [\"[::1]:0\"]\n", want: []string{"kafka.bootstrap_servers", "port 0"}},
	} {
		var args []string
		if tc.file != "" {
			args = []string{"--config", writeFile(t, tc.file)}
		}
		wantAll(t, loadErr(t, args, tc.env), tc.want...)
	}
	// Validate checks nodes built by hand too
	c := config.Default()
	c.Redis.Nodes = []config.Node{{Addr: "127.0.0.1:0", Weight: 1}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "port 0") {
		t.Errorf("Validate of a node at port 0: %v", err)
	}
	// listen addresses keep port 0 and an empty host
	mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "REDIS_LISTEN": ":0", "ADMIN_LISTEN": "127.0.0.1:0"})
	for _, a := range []string{":0", "127.0.0.1:0", ":6379"} {
		if err := config.CheckAddr(a); err != nil {
			t.Errorf("CheckAddr(%q) = %v", a, err)
		}
		if err := config.CheckNodeAddr(a); err == nil {
			t.Errorf("CheckNodeAddr(%q) accepted", a)
		}
	}
	for _, a := range []string{"127.0.0.1:1", "redis-a:65535", "[::1]:6379"} {
		if err := config.CheckNodeAddr(a); err != nil {
			t.Errorf("CheckNodeAddr(%q) = %v", a, err)
		}
	}
}

// writeCertPair writes a self-signed certificate and its key as PEM files
// and returns their paths.
func writeCertPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ambassador test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestKafkaSecurityConsistency: TLS settings while TLS is off and SASL
// credentials without a mechanism are refused rather than ignored, and
// with TLS on the files are loaded as the Kafka frontend loads them, so
// that what validates also starts.
func TestKafkaSecurityConsistency(t *testing.T) {
	certFile, keyFile := writeCertPair(t)
	otherCert, _ := writeCertPair(t)
	notPEM := writeFile(t, "not a certificate\n")
	kafka := func(kv ...string) map[string]string {
		m := map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9093"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		file string
		env  map[string]string
		want []string
	}{
		{name: "ca_file without TLS", env: kafka("KAFKA_TLS_CA_FILE", certFile),
			want: []string{"kafka.tls.ca_file", "KAFKA_TLS_CA_FILE", "KAFKA_TLS", "off"}},
		{name: "cert_file without TLS", env: kafka("KAFKA_TLS_CERT_FILE", certFile, "KAFKA_TLS_KEY_FILE", keyFile),
			want: []string{"2 problems", "KAFKA_TLS_CERT_FILE", "KAFKA_TLS_KEY_FILE", "off"}},
		{name: "server_name without TLS", env: kafka("KAFKA_TLS_SERVER_NAME", "kafka.internal", "KAFKA_TLS", "false"),
			want: []string{"kafka.tls.server_name", "KAFKA_TLS_SERVER_NAME", "kafka.tls.enabled (KAFKA_TLS)"}},
		{name: "insecure_skip_verify without TLS", env: kafka("KAFKA_TLS_INSECURE_SKIP_VERIFY", "true"),
			want: []string{"kafka.tls.insecure_skip_verify", "KAFKA_TLS_INSECURE_SKIP_VERIFY"}},
		{name: "file: ca_file without TLS", file: "kafka:\n  bootstrap_servers: [127.0.0.1:9093]\n  tls: {ca_file: " + certFile + "}\n",
			want: []string{": kafka.tls.ca_file", "kafka.tls.enabled", "off"}},
		{name: "username without mechanism", env: kafka("KAFKA_SASL_USERNAME", "amb"),
			want: []string{"kafka.sasl.username", "KAFKA_SASL_USERNAME", "KAFKA_SASL_MECHANISM"}},
		{name: "password without mechanism", env: kafka("KAFKA_SASL_PASSWORD", "hunter2"),
			want: []string{"kafka.sasl.password", "KAFKA_SASL_PASSWORD", "mechanism"}},
		{name: "file: credentials without mechanism", file: "kafka:\n  bootstrap_servers: [127.0.0.1:9093]\n  sasl: {username: amb, password: hunter2}\n",
			want: []string{": kafka.sasl.username", ": kafka.sasl.password", "mechanism"}},
		{name: "mechanism without password", env: kafka("KAFKA_SASL_MECHANISM", "plain", "KAFKA_SASL_USERNAME", "amb"),
			want: []string{"kafka.sasl.password", "PLAIN"}},
		{name: "unknown mechanism", env: kafka("KAFKA_SASL_MECHANISM", "gssapi", "KAFKA_SASL_USERNAME", "amb", "KAFKA_SASL_PASSWORD", "hunter2"),
			want: []string{"kafka.sasl.mechanism", "KAFKA_SASL_MECHANISM", `"GSSAPI"`}},
		{name: "missing CA file", env: kafka("KAFKA_TLS", "1", "KAFKA_TLS_CA_FILE", "/nonexistent/ca.pem"),
			want: []string{"kafka.tls.ca_file", "KAFKA_TLS_CA_FILE", "/nonexistent/ca.pem"}},
		{name: "CA file not PEM", env: kafka("KAFKA_TLS", "1", "KAFKA_TLS_CA_FILE", notPEM),
			want: []string{"kafka.tls.ca_file", "KAFKA_TLS_CA_FILE", "no PEM certificate"}},
		{name: "cert without key", env: kafka("KAFKA_TLS", "1", "KAFKA_TLS_CERT_FILE", certFile),
			want: []string{"kafka.tls.cert_file", "KAFKA_TLS_CERT_FILE", "kafka.tls.key_file"}},
		{name: "key without cert", env: kafka("KAFKA_TLS", "1", "KAFKA_TLS_KEY_FILE", keyFile),
			want: []string{"kafka.tls.key_file", "KAFKA_TLS_KEY_FILE", "kafka.tls.cert_file"}},
		{name: "key of another certificate", env: kafka("KAFKA_TLS", "1", "KAFKA_TLS_CERT_FILE", otherCert, "KAFKA_TLS_KEY_FILE", keyFile),
			want: []string{"kafka.tls.cert_file", "KAFKA_TLS_CERT_FILE", "KAFKA_TLS_KEY_FILE"}},
		{name: "file: key not PEM", file: "kafka:\n  bootstrap_servers: [127.0.0.1:9093]\n  tls: {enabled: true, cert_file: " + certFile + ", key_file: " + notPEM + "}\n",
			want: []string{": kafka.tls.cert_file", ": kafka.tls.key_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.file != "" {
				args = []string{"--config", writeFile(t, tc.file)}
			}
			msg := loadErr(t, args, tc.env)
			wantAll(t, msg, tc.want...)
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q shows a secret", msg)
			}
		})
	}
	// consistent settings load
	c := mustLoad(t, nil, kafka("KAFKA_TLS", "enabled", "KAFKA_TLS_CA_FILE", certFile, "KAFKA_TLS_CERT_FILE", certFile,
		"KAFKA_TLS_KEY_FILE", keyFile, "KAFKA_TLS_SERVER_NAME", "kafka.internal",
		"KAFKA_SASL_MECHANISM", "scram-sha-512", "KAFKA_SASL_USERNAME", "amb", "KAFKA_SASL_PASSWORD", "s3cret"))
	if c.Kafka.SASL.Mechanism != "SCRAM-SHA-512" || !c.Kafka.TLS.Enabled {
		t.Errorf("kafka security: %+v", c.Kafka)
	}
	// Validate compares the mechanism as the Kafka frontend does: a
	// Config built by hand with a lower-case one is refused.
	c.Kafka.SASL.Mechanism = "scram-sha-512"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "kafka.sasl.mechanism") {
		t.Errorf("Validate with mechanism scram-sha-512: %v", err)
	}
}

// TestIntervalLowerBounds: intervals that drive a loop have a lower
// bound, stated in the error; the values the tests and the docs use pass.
func TestIntervalLowerBounds(t *testing.T) {
	file := writeFile(t, "redis:\n  nodes: [127.0.0.1:7000]\n")
	base := map[string]string{nodesEnv: "127.0.0.1:7000", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9093"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		env, val, key, bound string
	}{
		{"HEALTH_CHECK_INTERVAL", "1ns", "health.interval", "100ms"},
		{"HEALTH_CHECK_INTERVAL", "99ms", "health.interval", "100ms"},
		{"KAFKA_METADATA_REFRESH", "1ms", "kafka.metadata_refresh", "1s"},
		{"KAFKA_METADATA_REFRESH", "999ms", "kafka.metadata_refresh", "1s"},
		{"KAFKA_METADATA_REFRESH", "0s", "kafka.metadata_refresh", "1s"},
		{"CONFIG_RELOAD_INTERVAL", "1ns", "config_reload_interval", "50ms"},
		{"CONFIG_RELOAD_INTERVAL", "10ms", "config_reload_interval", "50ms"},
	} {
		msg := loadErr(t, []string{"--config", file}, with(tc.env, tc.val))
		wantAll(t, msg, tc.key, tc.env, tc.bound)
	}
	msg := loadErr(t, []string{"--config", writeFile(t, "health: {interval: 1ms}\nredis:\n  nodes: [127.0.0.1:7000]\n")}, nil)
	wantAll(t, msg, ": health.interval", "1ms", "100ms")
	// the values used by the tests, the demo and the docs
	for _, kv := range [][2]string{
		{"HEALTH_CHECK_INTERVAL", "100ms"}, {"HEALTH_CHECK_INTERVAL", "200ms"}, {"HEALTH_CHECK_INTERVAL", "300ms"},
		{"HEALTH_CHECK_INTERVAL", "500ms"}, {"HEALTH_CHECK_INTERVAL", "2s"}, {"HEALTH_CHECK_INTERVAL", "30s"},
		{"KAFKA_METADATA_REFRESH", "1s"}, {"KAFKA_METADATA_REFRESH", "30s"},
		{"CONFIG_RELOAD_INTERVAL", "50ms"}, {"CONFIG_RELOAD_INTERVAL", "0s"}, {"CONFIG_RELOAD_INTERVAL", "5s"},
	} {
		mustLoad(t, []string{"--config", file}, with(kv[0], kv[1]))
	}
}

// TestReloadIntervalNeedsFile: there is nothing to poll without a config
// file, so CONFIG_RELOAD_INTERVAL alone is refused, not ignored.
func TestReloadIntervalNeedsFile(t *testing.T) {
	msg := loadErr(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "CONFIG_RELOAD_INTERVAL": "5s"})
	wantAll(t, msg, "config_reload_interval", "CONFIG_RELOAD_INTERVAL", "needs a config file")
	msg = loadErr(t, []string{"--config-reload-interval", "5s"}, map[string]string{nodesEnv: "127.0.0.1:7000"})
	wantAll(t, msg, "--config-reload-interval", "needs a config file")
	mustLoad(t, nil, map[string]string{nodesEnv: "127.0.0.1:7000", "CONFIG_RELOAD_INTERVAL": "0s"})
	file := writeFile(t, "redis:\n  nodes: [127.0.0.1:7000]\n")
	c := mustLoad(t, nil, map[string]string{"AMBASSADOR_CONFIG": file, "CONFIG_RELOAD_INTERVAL": "5s"})
	if c.ConfigReloadInterval.D() != 5*time.Second {
		t.Errorf("config_reload_interval = %v", c.ConfigReloadInterval)
	}
	mustLoad(t, []string{"--config", writeFile(t, "config_reload_interval: 1s\nredis:\n  nodes: [127.0.0.1:7000]\n")}, nil)
}

// A frontend user with an empty password would let anyone log in as it;
// "default" is the frontend password's user.
func TestFrontendUsersRefused(t *testing.T) {
	for _, tc := range []struct{ users, want string }{
		{"    alice: \"\"\n", `user "alice" has an empty password`},
		{"    default: pw\n", `user "default" is set by redis.frontend_password`},
	} {
		file := writeFile(t, "redis:\n  nodes: [127.0.0.1:7000]\n  frontend_users:\n"+tc.users)
		wantAll(t, loadErr(t, []string{"--config", file}, nil), "redis.frontend_users", tc.want)
	}
}
