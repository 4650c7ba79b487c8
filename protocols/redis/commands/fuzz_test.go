package commands

import (
	"bytes"
	"testing"
)

// fuzzCommands is every command and subcommand, in a stable order.
func fuzzCommands() []*Command {
	var out []*Command
	for _, c := range All() {
		out = append(out, c)
		out = append(out, c.Subcommands...)
	}
	return out
}

// byLowerName is the reference for Lookup and Sub in FuzzKeys: every
// name, top-level ones and "container|sub" ones.
var byLowerName = func() map[string]*Command {
	m := map[string]*Command{}
	for _, c := range fuzzCommands() {
		m[c.Name] = c
	}
	return m
}()

func asciiLower(b []byte) string {
	out := make([]byte, len(b))
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		out[i] = ch
	}
	return string(out)
}

// FuzzKeys runs Keys on random arguments for random commands: it must not
// panic, and every index it returns must point into args (never at the
// command name).
func FuzzKeys(f *testing.F) {
	cmds := fuzzCommands()
	index := map[string]uint16{}
	for i, c := range cmds {
		index[c.Name] = uint16(i)
	}
	seeds := []struct{ cmd, args string }{
		{"get", "k"},
		{"mset", "a 1 b 2"},
		{"eval", "s 2 a b c"},
		{"eval", "s -1"},
		{"eval", "s 9223372036854775807 a"},
		{"fcall", "f 1"},
		{"zunionstore", "d 2 a b"},
		{"zunionstore", "d 0"},
		{"blmpop", "0 2 a b left"},
		{"xread", "count 1 streams a b 0 0"},
		{"xreadgroup", "group g c streams a >"},
		{"xread", "streams"},
		{"sort", "k limit 0 1 store d get x by y store"},
		{"migrate", "h p  0 10 auth2 u p keys a b"},
		{"migrate", "h p k 0 10 keys"},
		{"georadius", "k 1 2 3 m store d storedist e store"},
		{"object|encoding", "k"},
		{"memory|usage", "k samples 5"},
		{"set", "k v get"},
		{"bitfield", "k get u8 0 overflow sat"},
		{"sintercard", "2 a"},
		{"config|get", "x"},
		{"config|get", "GeT"},
		{"object|freq", "ENCODING"},
		{"get", "ZUNIONSTORE"},
		{"get", "georadiusBYMEMBER_ro"},
	}
	if len(byLowerName) != len(cmds) || len(cmds) < 300 {
		f.Fatalf("reference has %d names, table %d", len(byLowerName), len(cmds))
	}
	for _, s := range seeds {
		f.Add(index[s.cmd], false, []byte(s.args))
		f.Add(index[s.cmd], true, []byte(s.args))
	}
	f.Fuzz(func(t *testing.T, which uint16, viaContainer bool, data []byte) {
		c := cmds[int(which)%len(cmds)]
		var args [][]byte
		if p := c.Parent(); p != nil {
			args = append(args, []byte(p.Name), []byte(c.Name[len(p.Name)+1:]))
			if viaContainer {
				c = p
			}
		} else {
			args = append(args, []byte(c.Name))
		}
		if len(data) > 0 {
			parts := bytes.Split(data, []byte(" "))
			if len(parts) > 64 {
				parts = parts[:64]
			}
			args = append(args, parts...)
		}
		dst := []int{-7}
		got, err := c.Keys(args, dst)
		if len(got) < 1 || got[0] != -7 {
			t.Fatalf("Keys dropped dst's contents: %v", got)
		}
		if err != nil && len(got) != 1 {
			t.Fatalf("Keys(%q) = %v with error %v", args, got, err)
		}
		for _, i := range got[1:] {
			if i < 1 || i >= len(args) {
				t.Fatalf("Keys(%q) = %v: index %d out of range", args, got, i)
			}
		}
		if err == nil && !c.CheckArity(len(args)) {
			t.Fatalf("Keys(%q) accepted %d arguments, arity %d", args, len(args), c.Arity)
		}
		if got, want := Lookup(data), byLowerName[asciiLower(data)]; got != want || LookupString(string(data)) != want {
			t.Fatalf("Lookup(%q) = %v, want %v", data, got, want)
		}
		if p := c.Parent(); p != nil {
			if got, want := p.Sub(data), byLowerName[p.Name+"|"+asciiLower(data)]; got != want || p.SubString(string(data)) != want {
				t.Fatalf("%s.Sub(%q) = %v, want %v", p.Name, data, got, want)
			}
		}
		_ = Resolve(args)
	})
}
