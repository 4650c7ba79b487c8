package redis

// stringMatch is Redis' stringmatchlen (util.c, 7.0): glob-style matching
// with '*', '?', '[...]' (with '^' negation and 'a-z' ranges) and '\'
// escapes, ASCII case-insensitively when nocase is set. Patterns and
// strings are bytes; where the C code reads the NUL terminator past the
// end of the pattern, at reads 0.
func stringMatch(pattern, s []byte, nocase bool) bool {
	skip := false
	return stringMatchImpl(pattern, s, nocase, &skip, 0)
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func stringMatchImpl(p, s []byte, nocase bool, skipLonger *bool, nesting int) bool {
	// Protection against abusive patterns.
	if nesting > 1000 {
		return false
	}
	at := func(b []byte, i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if stringMatchImpl(p[1:], s, nocase, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			// No match for the rest of the pattern from anywhere in the
			// rest of the string: longer matches of earlier stars cannot
			// help either.
			*skipLonger = true
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := at(p, 0) == '^'
			if not {
				p = p[1:]
			}
			match := false
			for {
				if at(p, 0) == '\\' && len(p) >= 2 {
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				} else if at(p, 0) == ']' {
					break
				} else if len(p) == 0 {
					// Unterminated class: the C code steps back onto the
					// last byte, which the step below takes again: the
					// pattern is done.
					break
				} else if len(p) >= 3 && p[1] == '-' {
					start, end, c := p[0], p[2], s[0]
					if start > end {
						start, end = end, start
					}
					if nocase {
						start, end, c = lowerASCII(start), lowerASCII(end), lowerASCII(c)
					}
					p = p[2:]
					if c >= start && c <= end {
						match = true
					}
				} else if p[0] == s[0] || nocase && lowerASCII(p[0]) == lowerASCII(s[0]) {
					match = true
				}
				p = p[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] && !(nocase && lowerASCII(p[0]) == lowerASCII(s[0])) {
				return false
			}
			s = s[1:]
		}
		if len(p) > 0 { // empty only after an unterminated class
			p = p[1:]
		}
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}
