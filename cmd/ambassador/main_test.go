package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cleanEnv unsets every variable the configuration reads, so that the
// machine's environment cannot change the outcome, then sets kv.
func cleanEnv(t *testing.T, kv ...string) {
	t.Helper()
	prefixes := []string{"REDIS_", "RABBITMQ_", "KAFKA_", "ADMIN_", "LOG_", "HEALTH_", "CIRCUIT_", "TLS_", "AMBASSADOR_",
		"CLUSTER_MODE", "CONSISTENT_HASHING", "LOAD_BALANCE", "ROUTING_STRATEGY", "REGION_PREFERENCE", "MAX_CONNECTIONS",
		"CONNECTION_TIMEOUT", "IDLE_TIMEOUT", "CONFIG_RELOAD", "SHUTDOWN_TIMEOUT", "AUTH_ENABLED"}
	for _, e := range os.Environ() {
		name, _, _ := strings.Cut(e, "=")
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				t.Setenv(name, "")
			}
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

func runCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd("version")
	if code != 0 || out != "ambassador "+version+"\n" {
		t.Errorf("version = %d %q", code, out)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		code, out, _ := runCmd(arg)
		if code != 0 || !strings.Contains(out, "Usage") || !strings.Contains(out, "-redis-nodes") || !strings.Contains(out, "validate") {
			t.Errorf("%s = %d:\n%s", arg, code, out)
		}
	}
}

func TestValidateGood(t *testing.T) {
	cleanEnv(t, "REDIS_CLUSTER_NODES", "127.0.0.1:7000,127.0.0.1:7001:2", "REDIS_PASSWORD", "topsecret-1")
	file := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(file, []byte("redis:\n  frontend_password: topsecret-2\nload_balance: least_connections\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("validate", "--config", file, "--redis-listen", "127.0.0.1:16379")
	if code != 0 || errOut != "" {
		t.Fatalf("validate = %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"configuration is valid", "127.0.0.1:7001", "weight: 2", "least_connections", "127.0.0.1:16379", "<redacted>"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "topsecret") {
		t.Errorf("validate printed a secret:\n%s", out)
	}
}

func TestValidateBad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(file, []byte("redis:\n  nodes: [127.0.0.1:7000]\n  listen: localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"env", []string{"REDIS_CLUSTER_NODES", "127.0.0.1:7000,redis-b", "HEALTH_CHECK_INTERVAL", "5", "TLS_ENABLED", "true"}, nil,
			[]string{"REDIS_CLUSTER_NODES", `"redis-b"`, "HEALTH_CHECK_INTERVAL", `"5"`, "TLS_ENABLED", "not supported yet"}},
		{"validation", []string{"REDIS_CLUSTER_NODES", "127.0.0.1:7000", "LOAD_BALANCE_ALGORITHM", "random", "LOG_LEVEL", "loud"}, nil,
			[]string{"load_balance", `"random"`, "log.level", `"loud"`}},
		{"file", nil, []string{"--config", file},
			[]string{"redis.listen", `"localhost"`, "port"}},
		{"nothing", nil, nil,
			[]string{"nothing to proxy", "REDIS_CLUSTER_NODES", "KAFKA_BOOTSTRAP_SERVERS"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t, tc.env...)
			code, out, errOut := runCmd(append([]string{"validate"}, tc.args...)...)
			if code != 1 {
				t.Errorf("validate exit code %d, want 1", code)
			}
			if strings.Contains(out, "valid") {
				t.Errorf("validate printed %q for a bad configuration", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestRunRefusesBadConfig: serving with no or a bad configuration exits
// non-zero at once, saying what to set.
func TestRunRefusesBadConfig(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{nil, {"run"}} {
		code, _, errOut := runCmd(args...)
		if code == 0 {
			t.Errorf("%q with nothing configured exited 0", args)
		}
		if !strings.Contains(errOut, "REDIS_CLUSTER_NODES") || !strings.Contains(errOut, "nothing to proxy") {
			t.Errorf("%q stderr does not say what to set:\n%s", args, errOut)
		}
	}
	cleanEnv(t, "REDIS_CLUSTER_NODES", "127.0.0.1:7000", "IDLE_TIMEOUT", "abc")
	code, _, errOut := runCmd()
	if code == 0 || !strings.Contains(errOut, "IDLE_TIMEOUT") || !strings.Contains(errOut, `"abc"`) {
		t.Errorf("run with IDLE_TIMEOUT=abc = %d:\n%s", code, errOut)
	}
	code, _, errOut = runCmd("--no-such-flag")
	if code == 0 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("run with an unknown flag = %d:\n%s", code, errOut)
	}
}
