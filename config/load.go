package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid wraps every configuration error.
var ErrInvalid = errors.New("config")

// LookupEnv reads one environment variable, like os.LookupEnv.
type LookupEnv func(name string) (string, bool)

// Load builds the configuration from defaults, the file named by --config
// (or AMBASSADOR_CONFIG), the environment and the flags in args, then
// validates it. All errors are returned together.
func Load(args []string, env LookupEnv) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	fs, flagVals, file := newFlagSet()
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", ErrInvalid, fs.Arg(0))
	}
	if *file == "" {
		if v, ok := env("AMBASSADOR_CONFIG"); ok && v != "" {
			*file = v
		}
	}
	c := Default()
	var errs []error
	if *file != "" {
		data, err := os.ReadFile(*file)
		if err != nil {
			return nil, fmt.Errorf("%w: --config: %v", ErrInvalid, err)
		}
		if err := c.decodeFile(data, *file); err != nil {
			return nil, err
		}
		c.File = *file
	}
	errs = append(errs, c.applyEnv(env)...)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		s := flagVals[f.Name]
		if err := s.Set(c, f.Value.String()); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.Name, err))
			return
		}
		c.setSource(s.Key, "--"+f.Name)
	})
	if len(errs) > 0 {
		return nil, joinInvalid(errs)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func newFlagSet() (*flag.FlagSet, map[string]setting, *string) {
	fs := flag.NewFlagSet("ambassador", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "YAML configuration file")
	vals := map[string]setting{}
	for _, s := range settings {
		if s.Flag == "" {
			continue
		}
		fs.String(s.Flag, "", s.Doc)
		vals[s.Flag] = s
	}
	return fs, vals, file
}

// FlagUsage is the usage text of the flags Load accepts.
func FlagUsage() string {
	fs, _, _ := newFlagSet()
	var b bytes.Buffer
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

// decodeFile reads the YAML file strictly over the defaults.
func (c *Config) decodeFile(data []byte, name string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	// Record which keys the file set, to name them in errors.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil && len(root.Content) > 0 {
		walkKeys(root.Content[0], "", func(key string) { c.setSource(key, name+": "+key) })
	}
	return nil
}

func walkKeys(n *yaml.Node, prefix string, fn func(string)) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		if prefix != "" {
			key = prefix + "." + key
		}
		fn(key)
		if prefix == "" {
			walkKeys(n.Content[i+1], key, fn)
		}
	}
}

func (c *Config) applyEnv(env LookupEnv) []error {
	var errs []error
	for _, s := range settings {
		var used, usedVal string
		for _, name := range s.Env {
			v, ok := env(name)
			if !ok || strings.TrimSpace(v) == "" {
				continue
			}
			if used != "" {
				if v != usedVal {
					errs = append(errs, fmt.Errorf("%s=%q and %s=%q disagree; set one", used, usedVal, name, v))
				}
				continue
			}
			used, usedVal = name, v
		}
		if used == "" {
			continue
		}
		if err := s.Set(c, usedVal); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", used, err))
			continue
		}
		c.setSource(s.Key, used)
	}
	var later []string
	for name := range laterSettings {
		later = append(later, name)
	}
	sort.Strings(later)
	for _, name := range later {
		v, ok := env(name)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		if b, err := ParseBool(v); err == nil && !b {
			continue
		}
		errs = append(errs, fmt.Errorf("%s=%q: %s is not supported yet", name, redactIfSecret(name, v), laterSettings[name]))
	}
	return errs
}

func redactIfSecret(name, v string) string {
	if strings.Contains(name, "PASSWORD") || strings.Contains(name, "TOKEN") || strings.Contains(name, "SECRET") {
		return redacted
	}
	return v
}

func joinInvalid(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &Error{Problems: msgs}
}

// Error lists every problem found in a configuration.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0]
	}
	return "config: " + fmt.Sprint(len(e.Problems)) + " problems:\n  " + strings.Join(e.Problems, "\n  ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }
