package redis

import "testing"

// parseCursor reads as Redis's strtoul: "" is 0, a sign is taken, a space
// or anything after the digits is an invalid cursor.
func TestParseCursor(t *testing.T) {
	for in, want := range map[string]uint64{
		"": 0, "0": 0, "17": 17, "+5": 5, "-1": 1<<64 - 1, "007": 7, "18446744073709551615": 1<<64 - 1,
	} {
		if got, ok := parseCursor([]byte(in)); !ok || got != want {
			t.Errorf("parseCursor(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"+", "-", " 1", "1 ", "1x", "x", "18446744073709551616"} {
		if got, ok := parseCursor([]byte(in)); ok {
			t.Errorf("parseCursor(%q) = %d, ok; want invalid", in, got)
		}
	}
}
