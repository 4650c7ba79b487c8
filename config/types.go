package config

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "5s", "250ms", "1m30s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration parses a Go duration with a unit; a bare number is refused
// because its unit would be a guess.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want e.g. 5s, 500ms, 1m)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Duration(v), nil
}

// UnmarshalYAML accepts a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 5s", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Secret is a password or token: printed as "<redacted>" when set.
type Secret string

const redacted = "<redacted>"

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return redacted, nil
}

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + redacted + `"`), nil // unescaped: not "\u003credacted\u003e"
}

// String redacts the secret, so that a %v never prints it.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// Node is one backend node: an address with an optional weight, region and
// name. Its text form is "host:port[:weight][@region][ name]", e.g.
// "10.0.0.1:6379:2@eu-west-1 shard-a"; the name (twemproxy's server name)
// defaults to host:port and is what the hash ring places.
type Node struct {
	Addr   string `yaml:"addr" json:"addr"`
	Weight int    `yaml:"weight,omitempty" json:"weight,omitempty"`
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	Name   string `yaml:"name,omitempty" json:"name,omitempty"`
}

// ParseNode parses the text form of a node.
func ParseNode(s string) (Node, error) {
	orig := s
	s = strings.TrimSpace(s)
	var n Node
	if s == "" {
		return n, fmt.Errorf("empty node address")
	}
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		n.Name = strings.TrimSpace(s[i+1:])
		s = s[:i]
		for _, f := range strings.Fields(n.Name) {
			if looksLikeAddr(f) {
				return n, fmt.Errorf("node %q: %q is an address, not a node name: separate nodes with commas (host:port,host:port)", orig, f)
			}
		}
		if strings.ContainsAny(n.Name, " \t") {
			return n, fmt.Errorf("node %q: want host:port[:weight][@region][ name]", orig)
		}
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		n.Region = s[i+1:]
		s = s[:i]
		if n.Region == "" {
			return n, fmt.Errorf("node %q: empty region after @", orig)
		}
	}
	hostport, weight, err := splitWeight(s)
	if err != nil {
		return n, fmt.Errorf("node %q: %w", orig, err)
	}
	if err := CheckNodeAddr(hostport); err != nil {
		return n, fmt.Errorf("node %q: %w", orig, err)
	}
	n.Addr = hostport
	n.Weight = weight
	return n, nil
}

// looksLikeAddr reports whether a node name is itself a node address
// (host:port[:weight][@region]): most likely a list separated by spaces
// instead of commas.
func looksLikeAddr(name string) bool {
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	hostport, _, err := splitWeight(name)
	return err == nil && CheckNodeAddr(hostport) == nil
}

// splitWeight splits "host:port:weight" into "host:port" and the weight (1
// when absent). IPv6 hosts must be bracketed.
func splitWeight(s string) (string, int, error) {
	rest := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("unclosed [ in IPv6 address")
		}
		rest = s[end+1:]
		// rest is ":port" or ":port:weight"
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 2:
			return s, 1, nil
		case 3:
			w, err := parseWeight(parts[2])
			return s[:end+1] + ":" + parts[1], w, err
		default:
			return "", 0, fmt.Errorf("missing port (want host:port[:weight])")
		}
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 1:
		return "", 0, fmt.Errorf("missing port (want host:port[:weight])")
	case 2:
		return s, 1, nil
	case 3:
		w, err := parseWeight(parts[2])
		return parts[0] + ":" + parts[1], w, err
	default:
		return "", 0, fmt.Errorf("too many colons (want host:port[:weight]; bracket IPv6 hosts)")
	}
}

func parseWeight(s string) (int, error) {
	w, err := strconv.Atoi(s)
	if err != nil || w < 1 || w > 10000 {
		return 0, fmt.Errorf("weight %q is not an integer from 1 to 10000", s)
	}
	return w, nil
}

// CheckAddr checks a listen address: host:port with a numeric port
// 0-65535 (0: any free port); the host may be empty (all interfaces).
func CheckAddr(addr string) error {
	_, _, err := splitAddr(addr)
	return err
}

// CheckNodeAddr checks the address of a backend node: a host and a port
// 1-65535.
func CheckNodeAddr(addr string) error {
	host, port, err := splitAddr(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("address %q has no host (want host:port)", addr)
	}
	if port == 0 {
		return fmt.Errorf("address %q: port 0 is not a port to connect to (want 1 to 65535)", addr)
	}
	return nil
}

func splitAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return "", 0, fmt.Errorf("address %q has no port (want host:port)", addr)
		}
		return "", 0, fmt.Errorf("address %q: %v", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if strings.ContainsAny(host, " \t/@") {
		return "", 0, fmt.Errorf("address %q: bad host %q", addr, host)
	}
	return host, p, nil
}

// String is the text form of the node.
func (n Node) String() string {
	s := n.Addr
	if n.Weight > 1 {
		s += ":" + strconv.Itoa(n.Weight)
	}
	if n.Region != "" {
		s += "@" + n.Region
	}
	if n.Name != "" {
		s += " " + n.Name
	}
	return s
}

// UnmarshalYAML accepts the text form or a mapping with addr, weight,
// region and name.
func (n *Node) UnmarshalYAML(v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		p, err := ParseNode(v.Value)
		if err != nil {
			return fmt.Errorf("line %d: %w", v.Line, err)
		}
		*n = p
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			switch k := v.Content[i].Value; k {
			case "addr", "weight", "region", "name":
			default:
				return fmt.Errorf("line %d: unknown node key %q (want addr, weight, region, name)", v.Content[i].Line, k)
			}
		}
		type plain Node
		var p plain
		if err := v.Decode(&p); err != nil {
			return err
		}
		p.Addr = strings.TrimSpace(p.Addr)
		if p.Addr == "" {
			return fmt.Errorf("line %d: node without addr", v.Line)
		}
		if err := CheckNodeAddr(p.Addr); err != nil {
			return fmt.Errorf("line %d: %w", v.Line, err)
		}
		weightSet := false
		for i := 0; i+1 < len(v.Content); i += 2 {
			if v.Content[i].Value == "weight" && v.Content[i+1].Tag != "!!null" {
				weightSet = true
			}
		}
		if !weightSet {
			p.Weight = 1
		}
		if p.Weight < 1 || p.Weight > 10000 {
			return fmt.Errorf("line %d: node %s: weight %d is not an integer from 1 to 10000", v.Line, p.Addr, p.Weight)
		}
		if strings.ContainsAny(p.Name, " \t") {
			return fmt.Errorf("line %d: node %s: name %q has a space", v.Line, p.Addr, p.Name)
		}
		*n = Node(p)
		return nil
	default:
		return fmt.Errorf("line %d: want a node as \"host:port[:weight]\" or a mapping with addr", v.Line)
	}
}

// ParseNodes parses a comma-separated node list.
func ParseNodes(s string) ([]Node, error) {
	var out []Node
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		n, err := ParseNode(part)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 0 && strings.TrimSpace(s) != "" {
		return nil, fmt.Errorf("no node in %q", s)
	}
	return out, nil
}
