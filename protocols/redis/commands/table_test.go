package commands

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ambassador-proxy/ambassador/protocols/redis/commands/internal/redisserver"
)

// TestTableUpToDate compares the generated table with what the installed
// redis-server reports now. When it fails, run
// `go generate ./protocols/redis/commands/`.
func TestTableUpToDate(t *testing.T) {
	srv := server(t)
	st, err := redisserver.Fetch(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != ServerVersion {
		t.Errorf("server is redis %s, the table was generated from %s", st.Version, ServerVersion)
	}
	c := dial(t)
	if v := do(t, c, "COMMAND", "COUNT"); int(v.Int) != Count() || len(All()) != Count() {
		t.Errorf("COMMAND COUNT = %d, table has %d", v.Int, Count())
	}
	if len(st.Commands) != len(All()) {
		t.Fatalf("server has %d commands, table %d: regenerate", len(st.Commands), len(All()))
	}
	subs := 0
	for i, want := range st.Commands {
		got := All()[i]
		compareCommand(t, got, want)
		if len(got.Subcommands) != len(want.Subcommands) {
			t.Errorf("%s: %d subcommands, server %d", got.Name, len(got.Subcommands), len(want.Subcommands))
			continue
		}
		for j := range want.Subcommands {
			compareCommand(t, got.Subcommands[j], want.Subcommands[j])
			if got.Subcommands[j].Parent() != got {
				t.Errorf("%s: Parent() = %v", got.Subcommands[j].Name, got.Subcommands[j].Parent())
			}
		}
		subs += len(want.Subcommands)
	}
	t.Logf("redis %s: %d commands, %d subcommands", st.Version, len(st.Commands), subs)
}

func compareCommand(t *testing.T, got *Command, want *redisserver.Info) {
	t.Helper()
	if got.Name != want.Name {
		t.Errorf("name %q, server %q: regenerate", got.Name, want.Name)
		return
	}
	var flags Flag
	for _, n := range want.Flags {
		f, ok := ParseFlag(n)
		if !ok {
			t.Errorf("%s: server flag %q has no Flag constant", want.Name, n)
		}
		flags |= f
	}
	if got.Arity != want.Arity || got.Flags != flags || got.FirstKey != want.FirstKey || got.LastKey != want.LastKey || got.Step != want.Step {
		t.Errorf("%s: arity %d flags %s keys %d,%d,%d; server: arity %d flags %s keys %d,%d,%d",
			got.Name, got.Arity, got.Flags, got.FirstKey, got.LastKey, got.Step,
			want.Arity, flags, want.FirstKey, want.LastKey, want.Step)
	}
	if !slices.Equal(got.ACLCategories, want.ACLCategories) || !slices.Equal(got.Tips, want.Tips) {
		t.Errorf("%s: ACL %q tips %q; server %q %q", got.Name, got.ACLCategories, got.Tips, want.ACLCategories, want.Tips)
	}
	if len(got.KeySpecs) != len(want.KeySpecs) {
		t.Errorf("%s: %d key specs, server %d", got.Name, len(got.KeySpecs), len(want.KeySpecs))
	} else {
		for i, ks := range want.KeySpecs {
			if g, w := specString(got.KeySpecs[i]), wantSpecString(t, ks); g != w {
				t.Errorf("%s: key spec %d is %s, server %s", got.Name, i, g, w)
			}
		}
	}
	if got.RawInfo2 != string(want.Raw2) || got.RawInfo3 != string(want.Raw3) {
		t.Errorf("%s: raw COMMAND INFO entry differs from the server's", got.Name)
	}
	if d := want.Doc; d == nil {
		t.Errorf("%s: server has no COMMAND DOCS entry", got.Name)
	} else if got.Group != d.Group || got.Summary != d.Summary || got.Since != d.Since || got.Complexity != d.Complexity ||
		!slices.Equal(got.DocFlags, d.DocFlags) || got.DeprecatedSince != d.DeprecatedSince || got.ReplacedBy != d.ReplacedBy {
		t.Errorf("%s: docs %q/%q differ from the server's %q/%q", got.Name, got.Group, got.Summary, d.Group, d.Summary)
	}
}

func specString(ks KeySpec) string {
	var b strings.Builder
	b.WriteString(ks.Flags.String())
	switch ks.BeginSearch.Type {
	case BeginSearchIndex:
		b.WriteString(" index " + strconv.Itoa(ks.BeginSearch.Index))
	case BeginSearchKeyword:
		b.WriteString(" keyword " + ks.BeginSearch.Keyword + " " + strconv.Itoa(ks.BeginSearch.StartFrom))
	case BeginSearchUnknown:
		b.WriteString(" unknown")
	default:
		b.WriteString(" invalid")
	}
	switch ks.FindKeys.Type {
	case FindKeysRange:
		b.WriteString(" range " + strconv.Itoa(ks.FindKeys.LastKey) + " " + strconv.Itoa(ks.FindKeys.KeyStep) + " " + strconv.Itoa(ks.FindKeys.Limit))
	case FindKeysKeynum:
		b.WriteString(" keynum " + strconv.Itoa(ks.FindKeys.KeyNumIdx) + " " + strconv.Itoa(ks.FindKeys.FirstKey) + " " + strconv.Itoa(ks.FindKeys.KeyStep))
	case FindKeysUnknown:
		b.WriteString(" unknown")
	default:
		b.WriteString(" invalid")
	}
	b.WriteString(" " + strconv.Quote(ks.Notes))
	return b.String()
}

func wantSpecString(t *testing.T, w redisserver.KeySpec) string {
	var ks KeySpec
	for _, n := range w.Flags {
		f, ok := ParseKeySpecFlag(n)
		if !ok {
			t.Errorf("key-spec flag %q has no KeySpecFlag constant", n)
		}
		ks.Flags |= f
	}
	switch w.BeginSearch {
	case "index":
		ks.BeginSearch = BeginSearch{Type: BeginSearchIndex, Index: w.Index}
	case "keyword":
		ks.BeginSearch = BeginSearch{Type: BeginSearchKeyword, Keyword: w.Keyword, StartFrom: w.StartFrom}
	case "unknown":
		ks.BeginSearch = BeginSearch{Type: BeginSearchUnknown}
	}
	switch w.FindKeys {
	case "range":
		ks.FindKeys = FindKeys{Type: FindKeysRange, LastKey: w.LastKey, KeyStep: w.KeyStep, Limit: w.Limit}
	case "keynum":
		ks.FindKeys = FindKeys{Type: FindKeysKeynum, KeyNumIdx: w.KeyNumIdx, FirstKey: w.FirstKey, KeyStep: w.KeyStep}
	case "unknown":
		ks.FindKeys = FindKeys{Type: FindKeysUnknown}
	}
	ks.Notes = w.Notes
	return specString(ks)
}

// TestRawInfoIsTheServerReply checks that concatenated raw entries are what
// COMMAND INFO answers (once subcommands are put in name order), over
// RESP2 and RESP3, so that the frontend can answer it from the table.
func TestRawInfoIsTheServerReply(t *testing.T) {
	c2 := dial(t)
	c3 := dial(t)
	if v := do(t, c3, "HELLO", "3"); v.IsError() {
		t.Fatal(v.Str)
	}
	names := []string{"get", "config", "zunionstore", "xreadgroup", "object", "georadius", "config|get", "nosuchcommand"}
	for _, c := range []*redisserver.Conn{c2, c3} {
		v := do(t, c, append([]string{"COMMAND", "INFO"}, names...)...)
		var got strings.Builder
		got.WriteString("*" + strconv.Itoa(len(names)) + "\r\n")
		for _, n := range names {
			cmd := LookupFullName(n)
			switch {
			case cmd == nil && c == c2:
				got.WriteString("$-1\r\n")
			case cmd == nil:
				got.WriteString("_\r\n")
			case c == c2:
				got.WriteString(cmd.RawInfo2)
			default:
				got.WriteString(cmd.RawInfo3)
			}
		}
		var want strings.Builder
		want.WriteString("*" + strconv.Itoa(len(v.Elems)) + "\r\n")
		for _, e := range v.Elems {
			want.Write(redisserver.Normalize(e))
		}
		if got.String() != want.String() {
			t.Errorf("COMMAND INFO from the table:\n%q\nserver:\n%q", got.String(), want.String())
		}
	}
}

func TestLookup(t *testing.T) {
	get := LookupString("get")
	if get == nil || get.Name != "get" || get.Arity != 2 || !get.Has(FlagReadonly|FlagFast) || get.Has(FlagWrite) {
		t.Fatalf("get = %+v", get)
	}
	for _, n := range []string{"GET", "Get", "gEt", "get"} {
		if Lookup([]byte(n)) != get || LookupString(n) != get {
			t.Errorf("Lookup(%q) is not get", n)
		}
	}
	for _, n := range []string{"", "nosuch", "ge", "gett", "get ", "config|get", "CONFIG|GET", strings.Repeat("a", 200), "g\x00t"} {
		if c := Lookup([]byte(n)); c != nil {
			t.Errorf("Lookup(%q) = %s", n, c.Name)
		}
	}
	cfg := LookupString("CONFIG")
	cget := LookupFullName("Config|Get")
	if cfg == nil || cget == nil || cget.Name != "config|get" || cget.Parent() != cfg || !cfg.IsContainer() {
		t.Fatalf("config = %v, config|get = %v", cfg, cget)
	}
	for _, n := range []string{"get", "GET", "gEt"} {
		if cfg.Sub([]byte(n)) != cget || cfg.SubString(n) != cget {
			t.Errorf("config.Sub(%q) is not config|get", n)
		}
	}
	for _, n := range []string{"", "nosuch", "config|get", strings.Repeat("g", 100)} {
		if s := cfg.Sub([]byte(n)); s != nil {
			t.Errorf("config.Sub(%q) = %s", n, s.Name)
		}
	}
	if get.Sub([]byte("x")) != nil || (*Command)(nil).Sub([]byte("get")) != nil {
		t.Error("Sub on a plain command or nil is not nil")
	}
	if r := Resolve(bytesArgs([]string{"object", "ENCODING", "k"})); r == nil || r.Name != "object|encoding" {
		t.Errorf("Resolve(object ENCODING k) = %v", r)
	}
	if Resolve(bytesArgs([]string{"object"})) != LookupString("object") || Resolve(bytesArgs([]string{"object", "nosuch"})) != nil ||
		Resolve(nil) != nil || Resolve(bytesArgs([]string{"get", "k"})) != get || Resolve(bytesArgs([]string{"nosuch"})) != nil {
		t.Error("Resolve")
	}
	// Every entry is found by its name, top-level ones by Lookup.
	for _, c := range All() {
		if Lookup([]byte(strings.ToUpper(c.Name))) != c || LookupFullName(c.Name) != c {
			t.Errorf("%s not found by its name", c.Name)
		}
		for _, s := range c.Subcommands {
			if c.SubString(strings.ToUpper(s.Name[len(c.Name)+1:])) != s || LookupFullName(s.Name) != s {
				t.Errorf("%s not found by its name", s.Name)
			}
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		_ = Lookup([]byte("ZUNIONSTORE"))
		_ = LookupString("hGetAll")
		_ = cfg.Sub([]byte("SET"))
		_ = LookupFullName("CONFIG|SET")
	})
	if allocs != 0 {
		t.Errorf("Lookup/Sub: %v allocs", allocs)
	}
}

func TestTableShape(t *testing.T) {
	if !slices.IsSortedFunc(All(), func(a, b *Command) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("All() is not sorted")
	}
	subs := 0
	for _, c := range All() {
		if !slices.IsSortedFunc(c.Subcommands, func(a, b *Command) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("%s: subcommands not sorted", c.Name)
		}
		subs += len(c.Subcommands)
		if c.Group == "" || c.Summary == "" || c.RawInfo2 == "" || c.RawInfo3 == "" {
			t.Errorf("%s: missing group, summary or raw info", c.Name)
		}
	}
	if len(All()) < 200 || subs < 100 {
		t.Errorf("table has %d commands and %d subcommands", len(All()), subs)
	}
	// Spot checks of what a router relies on.
	checks := []struct {
		name string
		flag Flag
		tip  string
	}{
		{"dbsize", FlagReadonly | FlagFast, "request_policy:all_shards"},
		{"dbsize", 0, "response_policy:agg_sum"},
		{"keys", FlagReadonly, "request_policy:all_shards"},
		{"flushall", FlagWrite, "request_policy:all_shards"},
		{"eval", FlagNoScript | FlagMovableKeys | FlagNoMandatoryKeys, ""},
		{"multi", FlagNoScript | FlagFast | FlagAllowBusy, ""},
		{"save", FlagNoMulti | FlagAdmin, ""},
		{"blpop", FlagWrite | FlagBlocking, ""},
		{"subscribe", FlagPubSub | FlagNoScript, ""},
		{"auth", FlagNoAuth | FlagNoScript, ""},
		{"config|set", FlagAdmin, "request_policy:all_nodes"},
	}
	for _, c := range checks {
		cmd := LookupFullName(c.name)
		if cmd == nil || !cmd.Has(c.flag) || (c.tip != "" && !slices.Contains(cmd.Tips, c.tip)) {
			t.Errorf("%s: want flags %s and tip %q, have %v", c.name, c.flag, c.tip, cmd)
		}
	}
	if !slices.Contains(LookupString("get").ACLCategories, "@read") || LookupString("get").Group != "string" {
		t.Error("get: ACL categories or group")
	}
}

func TestFlagNames(t *testing.T) {
	if len(flagNames) != 28 || FlagAllowBusy != 1<<27 {
		t.Fatalf("flag names and constants disagree: %d names", len(flagNames))
	}
	for i, n := range flagNames {
		f, ok := ParseFlag(strings.ToUpper(n))
		if !ok || f != 1<<i || f.String() != n {
			t.Errorf("ParseFlag(%q) = %v, %v", n, f, ok)
		}
	}
	if s := (FlagWrite | FlagDenyOOM).String(); s != "write|denyoom" {
		t.Errorf("String = %q", s)
	}
	if _, ok := ParseFlag("nope"); ok {
		t.Error("ParseFlag(nope)")
	}
	for i, n := range keySpecFlagNames {
		f, ok := ParseKeySpecFlag(n)
		if !ok || f != 1<<i || f.String() != n {
			t.Errorf("ParseKeySpecFlag(%q) = %v, %v", n, f, ok)
		}
	}
}

func TestCheckArity(t *testing.T) {
	get, mget := LookupString("get"), LookupString("mget")
	for n, want := range map[int]bool{0: false, 1: false, 2: true, 3: false} {
		if get.CheckArity(n) != want {
			t.Errorf("get.CheckArity(%d) != %v", n, want)
		}
	}
	for n, want := range map[int]bool{1: false, 2: true, 3: true, 100: true} {
		if mget.CheckArity(n) != want {
			t.Errorf("mget.CheckArity(%d) != %v", n, want)
		}
	}
	if got := get.ArityError().Error(); got != "wrong number of arguments for 'get' command" {
		t.Errorf("ArityError = %q", got)
	}
}
