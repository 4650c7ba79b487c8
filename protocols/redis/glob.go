package redis

// stringMatch reports whether s matches the glob pattern as Redis's
// pattern matching reads it (KEYS, COMMAND LIST FILTERBY PATTERN): '*'
// any run of bytes, '?' one byte, '[abc]', '[^abc]' and '[a-z]' classes
// (a reversed range counts as its ordered form, "b-]" is a range up to
// ']'; an unclosed class runs to the end of the pattern), '\x' the byte
// x; with nocase, ASCII letters match either case.
//
// It walks pattern and string together and, on a mismatch, goes back to
// the last '*' and lets it take one more byte: a '*' never needs to
// revisit an earlier one, so the cost is at most len(pattern)*len(s).
func stringMatch(pattern, s []byte, nocase bool) bool {
	eq := func(a, b byte) bool {
		return a == b || nocase && lowerASCII(a) == lowerASCII(b)
	}
	if len(s) == 0 {
		return len(pattern) == 0 // as Redis: even "*" does not match "" (KEYS * lists every key without matching)
	}
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if ok, next := matchClass(pattern, p+1, s[i], nocase); ok {
					p, i = next, i+1
					continue
				}
			case '\\':
				if p+1 < len(pattern) {
					if eq(pattern[p+1], s[i]) {
						p, i = p+2, i+1
						continue
					}
					break
				}
				fallthrough // a trailing backslash stands for itself
			default:
				if eq(c, s[i]) {
					p, i = p+1, i+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches b against the class that starts at pattern[p] (just
// after its '['); it returns whether b is in it and where the pattern
// goes on after the class.
func matchClass(pattern []byte, p int, b byte, nocase bool) (bool, int) {
	not := p < len(pattern) && pattern[p] == '^'
	if not {
		p++
	}
	in := false
	for p < len(pattern) && pattern[p] != ']' {
		c := pattern[p]
		switch {
		case c == '\\' && p+1 < len(pattern):
			p++
			in = in || pattern[p] == b || nocase && lowerASCII(pattern[p]) == lowerASCII(b)
		case p+2 < len(pattern) && pattern[p+1] == '-': // even "b-]": a range up to ']'; the class goes on
			lo, hi, x := c, pattern[p+2], b
			if lo > hi {
				lo, hi = hi, lo
			}
			if nocase {
				lo, hi, x = lowerASCII(lo), lowerASCII(hi), lowerASCII(x)
			}
			in = in || lo <= x && x <= hi
			p += 2
		default:
			in = in || c == b || nocase && lowerASCII(c) == lowerASCII(b)
		}
		p++
	}
	if p < len(pattern) {
		p++ // the ']'
	}
	return in != not, p
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
