package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ambassador-proxy/ambassador/config"
)

// composeFile is the part of the Compose format the checks read.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     any               `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	DependsOn   []string          `yaml:"depends_on"`
	NetworkMode string            `yaml:"network_mode"`
}

// TestComposeFiles validates the compose files users run (no Docker engine
// here): each parses, every reference names a service of the file, and the
// ambassador service's environment is a configuration the ambassador
// accepts.
func TestComposeFiles(t *testing.T) {
	files, err := filepath.Glob("../compose/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no compose files found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var cf composeFile
			if err := yaml.Unmarshal(data, &cf); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(cf.Services) == 0 {
				t.Fatal("no services")
			}
			amb, ok := cf.Services["ambassador"]
			if !ok {
				t.Fatal("no ambassador service")
			}
			for name, s := range cf.Services {
				if s.Image == "" && s.Build == nil {
					t.Errorf("service %s has neither image nor build", name)
				}
				for _, d := range s.DependsOn {
					if _, ok := cf.Services[d]; !ok {
						t.Errorf("service %s depends on unknown service %s", name, d)
					}
				}
				if m, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
					if _, ok := cf.Services[m]; !ok {
						t.Errorf("service %s shares the network of unknown service %s", name, m)
					}
				}
			}
			env := amb.Environment
			cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatalf("the ambassador refuses this environment: %v", err)
			}
			// Every backend host the ambassador is pointed at is a service.
			var nodes []config.Node
			nodes = append(nodes, cfg.Redis.Nodes...)
			nodes = append(nodes, cfg.Kafka.BootstrapServers...)
			for _, n := range nodes {
				host := n.Addr[:strings.LastIndexByte(n.Addr, ':')]
				if _, ok := cf.Services[host]; !ok {
					t.Errorf("backend %s is not a service of the file", n.Addr)
				}
			}
			var keys []string
			for k := range env {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			t.Logf("ambassador env ok: %s", strings.Join(keys, " "))
		})
	}
}
