package redisserver

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Info is one entry of the COMMAND reply, parsed.
type Info struct {
	Name                    string
	Arity                   int
	Flags                   []string
	FirstKey, LastKey, Step int
	ACLCategories           []string
	Tips                    []string
	KeySpecs                []KeySpec
	Subcommands             []*Info // sorted by name
	Raw2, Raw3              []byte  // normalized: subcommands sorted by name
	Doc                     *Doc    // from COMMAND DOCS; nil when the server has none
}

// KeySpec is one key specification of a COMMAND entry.
type KeySpec struct {
	Notes       string
	Flags       []string
	BeginSearch string // "index", "keyword" or "unknown"
	Index       int
	Keyword     string
	StartFrom   int
	FindKeys    string // "range", "keynum" or "unknown"
	LastKey     int
	KeyStep     int
	Limit       int
	KeyNumIdx   int
	FirstKey    int
}

// Doc is one entry of the COMMAND DOCS reply (the parts we keep).
type Doc struct {
	Summary, Since, Group, Complexity string
	DeprecatedSince, ReplacedBy       string
	DocFlags                          []string
	Subcommands                       map[string]*Doc
}

// Table is everything the generator needs from one server.
type Table struct {
	Version  string
	Commands []*Info // sorted by name
}

// Fetch asks the server at addr for COMMAND over RESP2 and over RESP3
// (after HELLO 3), for COMMAND DOCS and for its version.
func Fetch(addr string) (*Table, error) {
	c2, err := Dial(addr)
	if err != nil {
		return nil, err
	}
	defer c2.Close()
	c3, err := Dial(addr)
	if err != nil {
		return nil, err
	}
	defer c3.Close()

	version := ""
	info, err := c2.Do("INFO", "server")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(info.Str, "\r\n") {
		if v, ok := strings.CutPrefix(l, "redis_version:"); ok {
			version = v
		}
	}
	if version == "" {
		return nil, fmt.Errorf("redisserver: no redis_version in INFO server")
	}

	r2, err := c2.Do("COMMAND")
	if err != nil {
		return nil, err
	}
	cmds, err := ParseCommandReply(r2)
	if err != nil {
		return nil, fmt.Errorf("redisserver: RESP2 COMMAND: %w", err)
	}

	if h, err := c3.Do("HELLO", "3"); err != nil {
		return nil, err
	} else if h.IsError() {
		return nil, fmt.Errorf("redisserver: HELLO 3: %s", h.Str)
	}
	r3, err := c3.Do("COMMAND")
	if err != nil {
		return nil, err
	}
	cmds3, err := ParseCommandReply(r3)
	if err != nil {
		return nil, fmt.Errorf("redisserver: RESP3 COMMAND: %w", err)
	}
	if err := attachRaw3(cmds, cmds3); err != nil {
		return nil, err
	}

	d, err := c2.Do("COMMAND", "DOCS")
	if err != nil {
		return nil, err
	}
	docs, err := ParseDocs(d)
	if err != nil {
		return nil, err
	}
	for _, c := range cmds {
		c.Doc = docs[c.Name]
		for _, s := range c.Subcommands {
			if c.Doc != nil {
				s.Doc = c.Doc.Subcommands[s.Name]
			}
		}
	}
	return &Table{Version: version, Commands: cmds}, nil
}

func attachRaw3(cmds, cmds3 []*Info) error {
	if len(cmds) != len(cmds3) {
		return fmt.Errorf("redisserver: RESP2 COMMAND has %d entries, RESP3 %d", len(cmds), len(cmds3))
	}
	for i, c := range cmds {
		c3 := cmds3[i]
		if c.Name != c3.Name {
			return fmt.Errorf("redisserver: RESP2/RESP3 COMMAND mismatch: %q vs %q", c.Name, c3.Name)
		}
		c.Raw3 = c3.Raw2
		if err := attachRaw3(c.Subcommands, c3.Subcommands); err != nil {
			return err
		}
	}
	return nil
}

// ParseCommandReply parses the reply to COMMAND (or COMMAND INFO ...),
// sorted by name. Null entries (unknown commands) are skipped.
func ParseCommandReply(v *Value) ([]*Info, error) {
	if v.IsError() {
		return nil, fmt.Errorf("redisserver: %s", v.Str)
	}
	if !v.IsAggregate() {
		return nil, fmt.Errorf("redisserver: COMMAND reply is %q, not an array", v.Kind)
	}
	out := make([]*Info, 0, len(v.Elems))
	for _, e := range v.Elems {
		if e.Null {
			continue
		}
		in, err := ParseInfo(e)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func intOf(v *Value, what string) (int, error) {
	if v == nil || v.Kind != ':' {
		return 0, fmt.Errorf("redisserver: %s is not an integer", what)
	}
	return int(v.Int), nil
}

// ParseInfo parses one COMMAND entry (RESP2 or RESP3). Raw2 is set to the
// normalized bytes of the entry in whichever protocol it came.
func ParseInfo(v *Value) (*Info, error) {
	if !v.IsAggregate() || len(v.Elems) < 10 {
		return nil, fmt.Errorf("redisserver: COMMAND entry %q has %d elements, want 10", v.Raw, len(v.Elems))
	}
	e := v.Elems
	in := &Info{Name: strings.ToLower(e[0].Str)}
	var err error
	if in.Arity, err = intOf(e[1], in.Name+" arity"); err != nil {
		return nil, err
	}
	in.Flags = e[2].Strings()
	if in.FirstKey, err = intOf(e[3], in.Name+" first key"); err != nil {
		return nil, err
	}
	if in.LastKey, err = intOf(e[4], in.Name+" last key"); err != nil {
		return nil, err
	}
	if in.Step, err = intOf(e[5], in.Name+" step"); err != nil {
		return nil, err
	}
	in.ACLCategories = e[6].Strings()
	in.Tips = e[7].Strings()
	for _, ks := range e[8].Elems {
		spec, err := parseKeySpec(in.Name, ks)
		if err != nil {
			return nil, err
		}
		in.KeySpecs = append(in.KeySpecs, spec)
	}
	for _, s := range e[9].Elems {
		sub, err := ParseInfo(s)
		if err != nil {
			return nil, err
		}
		in.Subcommands = append(in.Subcommands, sub)
	}
	sort.Slice(in.Subcommands, func(i, j int) bool { return in.Subcommands[i].Name < in.Subcommands[j].Name })
	in.Raw2 = Normalize(v)
	return in, nil
}

func parseKeySpec(name string, v *Value) (KeySpec, error) {
	var ks KeySpec
	if n := v.Get("notes"); n != nil {
		ks.Notes = n.Str
	}
	if f := v.Get("flags"); f != nil {
		ks.Flags = f.Strings()
	}
	bs, fk := v.Get("begin_search"), v.Get("find_keys")
	if bs == nil || fk == nil {
		return ks, fmt.Errorf("redisserver: %s: key spec %q lacks begin_search or find_keys", name, v.Raw)
	}
	var err error
	if t := bs.Get("type"); t != nil {
		ks.BeginSearch = t.Str
	}
	spec := bs.Get("spec")
	switch ks.BeginSearch {
	case "index":
		if ks.Index, err = intOf(spec.Get("index"), name+" begin_search index"); err != nil {
			return ks, err
		}
	case "keyword":
		kw := spec.Get("keyword")
		if kw == nil {
			return ks, fmt.Errorf("redisserver: %s: keyword spec without keyword", name)
		}
		ks.Keyword = kw.Str
		if ks.StartFrom, err = intOf(spec.Get("startfrom"), name+" startfrom"); err != nil {
			return ks, err
		}
	case "unknown":
	default:
		return ks, fmt.Errorf("redisserver: %s: unknown begin_search type %q", name, ks.BeginSearch)
	}
	if t := fk.Get("type"); t != nil {
		ks.FindKeys = t.Str
	}
	spec = fk.Get("spec")
	switch ks.FindKeys {
	case "range":
		if ks.LastKey, err = intOf(spec.Get("lastkey"), name+" lastkey"); err != nil {
			return ks, err
		}
		if ks.KeyStep, err = intOf(spec.Get("keystep"), name+" keystep"); err != nil {
			return ks, err
		}
		if ks.Limit, err = intOf(spec.Get("limit"), name+" limit"); err != nil {
			return ks, err
		}
	case "keynum":
		if ks.KeyNumIdx, err = intOf(spec.Get("keynumidx"), name+" keynumidx"); err != nil {
			return ks, err
		}
		if ks.FirstKey, err = intOf(spec.Get("firstkey"), name+" firstkey"); err != nil {
			return ks, err
		}
		if ks.KeyStep, err = intOf(spec.Get("keystep"), name+" keystep"); err != nil {
			return ks, err
		}
	case "unknown":
	default:
		return ks, fmt.Errorf("redisserver: %s: unknown find_keys type %q", name, ks.FindKeys)
	}
	return ks, nil
}

// Normalize returns the bytes of a COMMAND entry with its subcommands
// sorted by name. The server lists subcommands in hash-table order, which
// changes from one server start to the next; sorting makes the generated
// table reproducible. Clients see an equivalent reply.
func Normalize(v *Value) []byte {
	if len(v.Elems) < 10 || len(v.Elems[9].Elems) == 0 {
		return append([]byte(nil), v.Raw...)
	}
	subs := append([]*Value(nil), v.Elems[9].Elems...)
	sort.SliceStable(subs, func(i, j int) bool {
		return subName(subs[i]) < subName(subs[j])
	})
	var b bytes.Buffer
	writeHeader(&b, v.Kind, len(v.Elems))
	for _, e := range v.Elems[:9] {
		b.Write(e.Raw)
	}
	writeHeader(&b, v.Elems[9].Kind, len(subs))
	for _, s := range subs {
		b.Write(Normalize(s))
	}
	for _, e := range v.Elems[10:] {
		b.Write(e.Raw)
	}
	return b.Bytes()
}

func subName(v *Value) string {
	if len(v.Elems) == 0 {
		return ""
	}
	return v.Elems[0].Str
}

func writeHeader(b *bytes.Buffer, kind byte, n int) {
	b.WriteByte(kind)
	b.WriteString(strconv.Itoa(n))
	b.WriteString("\r\n")
}

// ParseDocs parses the reply to COMMAND DOCS: command name -> doc.
func ParseDocs(v *Value) (map[string]*Doc, error) {
	if v.IsError() {
		return nil, fmt.Errorf("redisserver: COMMAND DOCS: %s", v.Str)
	}
	names, vals, err := v.Pairs()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Doc, len(names))
	for i, n := range names {
		d, err := parseDoc(vals[i])
		if err != nil {
			return nil, fmt.Errorf("redisserver: COMMAND DOCS %s: %w", n, err)
		}
		out[strings.ToLower(n)] = d
	}
	return out, nil
}

func parseDoc(v *Value) (*Doc, error) {
	keys, vals, err := v.Pairs()
	if err != nil {
		return nil, err
	}
	d := &Doc{}
	for i, k := range keys {
		switch k {
		case "summary":
			d.Summary = vals[i].Str
		case "since":
			d.Since = vals[i].Str
		case "group":
			d.Group = vals[i].Str
		case "complexity":
			d.Complexity = vals[i].Str
		case "deprecated_since":
			d.DeprecatedSince = vals[i].Str
		case "replaced_by":
			d.ReplacedBy = vals[i].Str
		case "doc_flags":
			d.DocFlags = vals[i].Strings()
		case "subcommands":
			subs, err := ParseDocs(vals[i])
			if err != nil {
				return nil, err
			}
			d.Subcommands = subs
		}
	}
	return d, nil
}
