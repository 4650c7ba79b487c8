package config

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted returns the effective configuration as YAML with every secret
// replaced by "<redacted>".
func (c *Config) Redacted() []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	_ = enc.Encode(c)
	_ = enc.Close()
	return b.Bytes()
}

// Reference returns the configuration reference: each key, its
// variables and flag, its default and what it does, as a Markdown table.
func Reference() string {
	d := Default()
	var b bytes.Buffer
	b.WriteString("| file key | variables | flag | default | meaning |\n|---|---|---|---|---|\n")
	for _, s := range settings {
		flag := ""
		if s.Flag != "" {
			flag = "`--" + s.Flag + "`"
		}
		vars := ""
		for i, e := range s.Env {
			if i > 0 {
				vars += ", "
			}
			vars += "`" + e + "`"
		}
		b.WriteString("| `" + s.Key + "` | " + vars + " | " + flag + " | " + defaultOf(d, s.Key) + " | " + s.Doc + " |\n")
	}
	for _, s := range fileOnly {
		b.WriteString("| `" + s.Key + "` |  |  | " + defaultOf(d, s.Key) + " | " + s.Doc + " |\n")
	}
	return b.String()
}

func defaultOf(d *Config, key string) string {
	n := defaultNode(d, key)
	if n == nil || n.Kind != yaml.ScalarNode || n.Value == "" {
		return ""
	}
	return "`" + n.Value + "`"
}

// isBool reports whether a setting is a boolean (its default is).
func isBool(d *Config, key string) bool {
	n := defaultNode(d, key)
	return n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!bool"
}

// defaultNode is the YAML node of a key in d, or nil.
func defaultNode(d *Config, key string) *yaml.Node {
	var root yaml.Node
	if err := root.Encode(d); err != nil {
		return nil
	}
	n := &root
	for _, part := range splitKey(key) {
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

func splitKey(k string) []string {
	var out []string
	start := 0
	for i := 0; i < len(k); i++ {
		if k[i] == '.' {
			out = append(out, k[start:i])
			start = i + 1
		}
	}
	return append(out, k[start:])
}

// fileOnly are the keys that only the config file sets.
var fileOnly = []struct{ Key, Doc string }{
	{"redis.frontend_users", "ACL users (name: password) clients may AUTH as"},
	{"redis.max_bulk_len", "largest bulk string a client may send, in bytes"},
	{"redis.max_multibulk_len", "most arguments in one client command"},
	{"kafka.max_request_size", "largest request a client may send, in bytes (at least 1024); a larger one closes the connection"},
}

const (
	refBegin = "<!-- reference:begin"
	refEnd   = "<!-- reference:end -->"
)

// SpliceReference returns doc with the text between its reference markers
// replaced by Reference().
func SpliceReference(doc string) (string, error) {
	b := strings.Index(doc, refBegin)
	e := strings.Index(doc, refEnd)
	if b < 0 || e < b {
		return "", fmt.Errorf("no %s ... %s markers", refBegin, refEnd)
	}
	nl := strings.Index(doc[b:], "\n")
	if nl < 0 {
		return "", fmt.Errorf("marker line not ended")
	}
	head := doc[:b+nl+1]
	return head + "\n" + Reference() + "\n" + doc[e:], nil
}
