package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
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
	// A probe that outlasts the interval delays every node's next probe:
	// unless set, the timeout is at most the interval.
	if c.Source("health.timeout") == "default" && c.Health.Interval > 0 && c.Health.Timeout > c.Health.Interval {
		c.Health.Timeout = c.Health.Interval
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
	d := Default()
	for _, s := range settings {
		if s.Flag == "" {
			continue
		}
		if isBool(d, s.Key) {
			fs.Var(new(boolFlag), s.Flag, s.Doc)
		} else {
			fs.String(s.Flag, "", s.Doc)
		}
		vals[s.Flag] = s
	}
	return fs, vals, file
}

// boolFlag is a boolean setting's flag: alone (--circuit-breaker) it is
// true; with a value (--circuit-breaker=off) it takes what the variable
// takes.
type boolFlag struct{ v string }

func (b *boolFlag) String() string     { return b.v }
func (b *boolFlag) Set(v string) error { b.v = v; return nil }
func (b *boolFlag) IsBoolFlag() bool   { return true }

// FlagUsage is the usage text of the flags Load accepts.
func FlagUsage() string {
	fs, _, _ := newFlagSet()
	var b bytes.Buffer
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

// decodeFile reads the YAML file strictly over the defaults, then
// normalises its values as the variables' setters do, so that the file and
// the variables accept the same values.
func (c *Config) decodeFile(data []byte, name string) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, name, nameKeys(data, err.Error()))
	}
	if len(root.Content) == 0 {
		return nil // an empty file
	}
	// Booleans take the spellings the variables take (ParseBool): the
	// scalars of bool fields are rewritten before decoding.
	var problems []string
	rewriteBools(root.Content[0], reflect.TypeOf(*c), "", &problems)
	for i := range problems {
		problems[i] = name + ": " + problems[i]
	}
	if err := root.Decode(c); err != nil {
		problems = append(problems, yamlProblems(data, name, err)...)
	}
	// Node.Decode has no strict mode: the strict decoder finds the unknown
	// keys (its other complaints, about the original booleans, are moot).
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var te *yaml.TypeError
	if err := dec.Decode(Default()); errors.As(err, &te) {
		for _, e := range te.Errors {
			if strings.Contains(e, " not found in type ") {
				problems = append(problems, name+": "+nameKeys(data, e))
			}
		}
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	c.normalize()
	// Record which keys the file set, to name them in errors.
	walkKeys(root.Content[0], "", func(key string) { c.setSource(key, name+": "+key) })
	return nil
}

// yamlProblems splits a YAML decoding error into one problem per line,
// each naming its key.
func yamlProblems(data []byte, name string, err error) []string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []string{name + ": " + nameKeys(data, err.Error())}
	}
	out := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		out[i] = name + ": " + nameKeys(data, e)
	}
	return out
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// rewriteBools walks the YAML node n alongside the Go type t it decodes
// into and rewrites the scalars of bool fields written as ParseBool
// accepts them (enabled, 1, off...) to true or false. key is the file key
// of n, to name it in the problems it appends.
func rewriteBools(n *yaml.Node, t reflect.Type, key string, problems *[]string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return // decodes itself (Node, Duration)
	}
	switch t.Kind() {
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
			return // not a scalar: the decoder says so; null: unchanged
		}
		b, err := ParseBool(n.Value)
		if err != nil {
			*problems = append(*problems, fmt.Sprintf("%s: line %d: %v", key, n.Line, err))
			n.Tag, n.Value, n.Style = "!!null", "", 0 // reported: not again by the decoder
			return
		}
		n.Tag, n.Value, n.Style = "!!bool", strconv.FormatBool(b), 0
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if f, ok := yamlField(t, k); ok {
				rewriteBools(n.Content[i+1], f.Type, joinKey(key, k), problems)
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			rewriteBools(item, t.Elem(), fmt.Sprintf("%s[%d]", key, i), problems)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			rewriteBools(n.Content[i+1], t.Elem(), joinKey(key, n.Content[i].Value), problems)
		}
	}
}

// yamlField finds the field of struct type t that the YAML key k sets.
func yamlField(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == k {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// normalize writes the values as the setters of the variables and flags
// write them (trimmed, in their canonical case, aliases resolved), so
// that a value the file gives is accepted, or refused, as the same value
// of a variable.
func (c *Config) normalize() {
	c.Admin.Listen = strings.TrimSpace(c.Admin.Listen)
	c.Log.Level = normLower(c.Log.Level)
	c.Log.Format = normLower(c.Log.Format)
	c.LoadBalance = normalizePolicy(c.LoadBalance)
	var regions []string
	for _, r := range c.RegionPreference {
		if r = strings.TrimSpace(r); r != "" {
			regions = append(regions, r)
		}
	}
	if len(c.RegionPreference) > 0 {
		c.RegionPreference = regions
	}
	c.Redis.Listen = strings.TrimSpace(c.Redis.Listen)
	c.Redis.Hash = normLower(c.Redis.Hash)
	c.Redis.Distribution = normLower(c.Redis.Distribution)
	c.Redis.HashTag = normHashTag(c.Redis.HashTag)
	c.RabbitMQ.Listen = strings.TrimSpace(c.RabbitMQ.Listen)
	c.Kafka.Listen = strings.TrimSpace(c.Kafka.Listen)
	c.Kafka.AdvertisedAddr = strings.TrimSpace(c.Kafka.AdvertisedAddr)
	c.Kafka.SASL.Mechanism = normMechanism(c.Kafka.SASL.Mechanism)
}

var lineRE = regexp.MustCompile(`line (\d+): `)

// nameKeys puts the key of each "line N: " of a YAML decoding error in
// front of it, so that the message names the key (e.g. health.interval or
// redis.nodes[1]) as well as the line.
func nameKeys(data []byte, msg string) string {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return msg
	}
	type at struct {
		key   string
		depth int
	}
	byLine := map[int]at{}
	set := func(line int, key, parent string, depth int) {
		old, ok := byLine[line]
		switch {
		case !ok || depth > old.depth:
			byLine[line] = at{key, depth}
		case depth == old.depth && old.key != key && old.key != parent:
			byLine[line] = at{parent, depth} // two keys on one line
		}
	}
	var mark func(n *yaml.Node, key, parent string, depth int)
	mark = func(n *yaml.Node, key, parent string, depth int) {
		set(n.Line, key, parent, depth)
		for _, c := range n.Content {
			mark(c, key, parent, depth)
		}
	}
	var walk func(n *yaml.Node, prefix string, depth int)
	walk = func(n *yaml.Node, prefix string, depth int) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				if prefix != "" {
					key = prefix + "." + key
				}
				set(n.Content[i].Line, key, prefix, depth+1)
				walk(n.Content[i+1], key, depth+1)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				mark(item, fmt.Sprintf("%s[%d]", prefix, i), prefix, depth+1)
			}
		}
	}
	walk(root.Content[0], "", 0)
	return lineRE.ReplaceAllStringFunc(msg, func(m string) string {
		line, _ := strconv.Atoi(lineRE.FindStringSubmatch(m)[1])
		if a, ok := byLine[line]; ok && a.key != "" {
			return a.key + ": " + m
		}
		return m
	})
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
		walkKeys(n.Content[i+1], key, fn)
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
	// CONSISTENT_HASHING is a second way to set the distribution: set
	// with REDIS_DISTRIBUTION, the later one would silently win.
	if ch, ok := env("CONSISTENT_HASHING"); ok && strings.TrimSpace(ch) != "" {
		if d, ok := env("REDIS_DISTRIBUTION"); ok && strings.TrimSpace(d) != "" {
			var on bool
			if setBool(&on, ch) == nil && (normLower(d) == "ketama") != on {
				errs = append(errs, fmt.Errorf("CONSISTENT_HASHING=%q and REDIS_DISTRIBUTION=%q disagree; set one", ch, d))
			}
		}
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
