package commands

import (
	"bytes"
	"testing"
)

func BenchmarkLookup(b *testing.B) {
	names := [][]byte{[]byte("GET"), []byte("set"), []byte("ZUNIONSTORE"), []byte("hGetAll"), []byte("georadiusbymember_ro"), []byte("nosuch")}
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if Lookup(names[i%len(names)]) != nil {
			n++
		}
	}
	_ = n
}

func BenchmarkSub(b *testing.B) {
	cfg := LookupString("config")
	arg := []byte("GET")
	b.ReportAllocs()
	for b.Loop() {
		if cfg.Sub(arg) == nil {
			b.Fatal("no config|get")
		}
	}
}

func BenchmarkKeys(b *testing.B) {
	for _, line := range []string{
		"GET k",
		"MSET k1 v1 k2 v2 k3 v3",
		`EVAL "return 1" 3 k1 k2 k3 a`,
		"ZUNIONSTORE d 2 a b WEIGHTS 1 2",
		"XREAD COUNT 10 STREAMS a b 0 0",
		"SORT k BY w_* GET o_* STORE d",
		"OBJECT ENCODING k",
		"GEORADIUS g 1 2 3 km STORE d",
	} {
		args := bytesArgs(splitLine(line))
		cmd := Lookup(args[0])
		name := string(bytes.ToLower(args[0]))
		b.Run(name, func(b *testing.B) {
			dst := make([]int, 0, 16)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = cmd.Keys(args, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
