package config

import (
	"strconv"
	"strings"
)

// Key paths name a value in the file: the keys from the root joined by
// dots, with the index of an array element or of an [[array]] table in
// brackets: "milter.dns_budget", "listener[1].address", "ignore.hosts[2]".
// Keys that are not bare TOML keys are quoted: `policy."odd key"`.

// joinKey appends key to the path prefix.
func joinKey(prefix, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// indexKey appends an array index to the path prefix.
func indexKey(prefix string, i int) string {
	return prefix + "[" + strconv.Itoa(i) + "]"
}

// parentKey returns the path one level up: "listener[1].address" gives
// "listener[1]", which gives "listener", which gives "". It does not look
// inside quoted keys, which only unknown keys have, and those are always
// found in the file themselves.
func parentKey(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// genericKey drops the array indices: "listener[1].address" gives
// "listener.address".
func genericKey(p string) string {
	if !strings.Contains(p, "[") {
		return p
	}
	var b strings.Builder
	skip := false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// lineIndex maps key paths to the 1-based line where they first appear.
type lineIndex map[string]int

// find returns the line of path p or, when p is not in the file (a default
// value that fails a check), of its nearest ancestor; 0 if none is.
func (ix lineIndex) find(p string) int {
	for ; p != ""; p = parentKey(p) {
		if n, ok := ix[p]; ok {
			return n
		}
	}
	return 0
}

// indexLines finds the line of every key path in a TOML document that has
// already been parsed successfully; on invalid input it returns what it
// found without failing. It follows what real configuration files use:
//
//   - [table] and [[array]] headers, with dotted and quoted keys; an
//     [[array]] header opens element n of that array, and later [a.b]
//     headers resolve a to its last element, as TOML does;
//   - dotted keys (a.b.c = 1), which also record a and a.b;
//   - inline tables ({ k = v, ... }) and arrays, nested and spanning lines,
//     with the line each array element starts on;
//   - all four kinds of string, multi-line ones included, and comments.
//
// A table or key defined implicitly (a in [a.b]) gets the line that first
// mentions it. Quoted keys with escapes other than Go's are recorded as
// written.
func indexLines(src string) lineIndex {
	s := &scanner{src: strings.TrimPrefix(src, "\uFEFF"), line: 1, lines: lineIndex{}, aot: map[string]int{}}
	s.document()
	return s.lines
}

type scanner struct {
	src   string
	pos   int
	line  int
	lines lineIndex
	aot   map[string]int // array-of-tables path (parents resolved) -> element count
}

func (s *scanner) peek() byte {
	if s.pos < len(s.src) {
		return s.src[s.pos]
	}
	return 0
}

func (s *scanner) eof() bool { return s.pos >= len(s.src) }

func (s *scanner) record(p string, line int) {
	if _, ok := s.lines[p]; !ok {
		s.lines[p] = line
	}
}

// skipSpace skips spaces and tabs.
func (s *scanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.pos++
	}
}

// skipBlank skips white space, newlines and comments.
func (s *scanner) skipBlank() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r':
			s.pos++
		case '\n':
			s.pos++
			s.line++
		case '#':
			s.skipComment()
		default:
			return
		}
	}
}

func (s *scanner) skipComment() {
	for !s.eof() && s.peek() != '\n' {
		s.pos++
	}
}

func (s *scanner) document() {
	table := ""
	for !s.eof() {
		start := s.pos
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			table = s.header()
		} else {
			s.keyValue(table)
		}
		if s.pos == start { // not TOML; do not loop
			s.pos++
		}
	}
}

// header reads a [table] or [[array]] header and returns its resolved path.
func (s *scanner) header() string {
	line := s.line
	aot := strings.HasPrefix(s.src[s.pos:], "[[")
	if aot {
		s.pos += 2
	} else {
		s.pos++
	}
	keys := s.keys()
	s.skipSpace()
	if aot && strings.HasPrefix(s.src[s.pos:], "]]") {
		s.pos += 2
	} else if s.peek() == ']' {
		s.pos++
	}
	p := ""
	for i, k := range keys {
		p = joinKey(p, k)
		if aot && i == len(keys)-1 {
			n := s.aot[p]
			s.aot[p] = n + 1
			s.record(p, line)
			p = indexKey(p, n)
		} else if n, ok := s.aot[p]; ok && n > 0 {
			s.record(p, line)
			p = indexKey(p, n-1)
		}
		s.record(p, line)
	}
	return p
}

// keys reads a dotted key: a, a.b, "a b".'c'.
func (s *scanner) keys() []string {
	var ks []string
	for {
		s.skipSpace()
		ks = append(ks, s.key())
		s.skipSpace()
		if s.peek() != '.' {
			return ks
		}
		s.pos++
	}
}

func (s *scanner) key() string {
	switch s.peek() {
	case '"':
		start := s.pos
		s.basicString()
		raw := s.src[start:s.pos]
		if k, err := strconv.Unquote(raw); err == nil {
			return k
		}
		return strings.Trim(raw, `"`)
	case '\'':
		start := s.pos
		s.literalString()
		return strings.Trim(s.src[start:s.pos], "'")
	}
	start := s.pos
	for isBareKey(string(s.peek())) {
		s.pos++
	}
	return s.src[start:s.pos]
}

func (s *scanner) keyValue(table string) {
	line := s.line
	p := table
	for _, k := range s.keys() {
		p = joinKey(p, k)
		s.record(p, line)
	}
	s.skipSpace()
	if s.peek() == '=' {
		s.pos++
	}
	s.skipSpace()
	s.value(p)
}

// value skips one value; p is its path, for the elements of arrays and
// inline tables.
func (s *scanner) value(p string) {
	rest := s.src[s.pos:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		s.multiLineString(`"""`, true)
	case strings.HasPrefix(rest, `'''`):
		s.multiLineString(`'''`, false)
	case s.peek() == '"':
		s.basicString()
	case s.peek() == '\'':
		s.literalString()
	case s.peek() == '[':
		s.array(p)
	case s.peek() == '{':
		s.inlineTable(p)
	default: // number, boolean, date-time: up to a delimiter
		for !s.eof() && !strings.ContainsRune(",]}#\r\n", rune(s.peek())) {
			s.pos++
		}
	}
}

func (s *scanner) basicString() {
	s.pos++ // "
	for !s.eof() {
		switch s.peek() {
		case '\\':
			s.pos = min(s.pos+2, len(s.src))
			continue
		case '"':
			s.pos++
			return
		case '\n':
			return
		}
		s.pos++
	}
}

func (s *scanner) literalString() {
	s.pos++ // '
	for !s.eof() {
		switch s.peek() {
		case '\'':
			s.pos++
			return
		case '\n':
			return
		}
		s.pos++
	}
}

func (s *scanner) multiLineString(delim string, escapes bool) {
	s.pos += 3
	for !s.eof() {
		c := s.peek()
		switch {
		case escapes && c == '\\':
			s.pos++
			if s.peek() == '\n' {
				s.line++
			}
			s.pos = min(s.pos+1, len(s.src))
			continue
		case c == '\n':
			s.line++
		case strings.HasPrefix(s.src[s.pos:], delim):
			s.pos += 3
			// Up to two more quotes belong to the content before the
			// closing delimiter: """a"""" is `a"`.
			for i := 0; i < 2 && s.peek() == delim[0]; i++ {
				s.pos++
			}
			return
		}
		s.pos++
	}
}

func (s *scanner) array(p string) {
	s.pos++ // [
	for i := 0; ; {
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.peek() == ']' {
			s.pos++
			return
		}
		start := s.pos
		ep := indexKey(p, i)
		s.record(ep, s.line)
		s.value(ep)
		i++
		s.skipBlank()
		if s.peek() == ',' {
			s.pos++
		}
		if s.pos == start {
			s.pos++
		}
	}
}

func (s *scanner) inlineTable(p string) {
	s.pos++ // {
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.peek() == '}' {
			s.pos++
			return
		}
		start := s.pos
		line := s.line
		kp := p
		for _, k := range s.keys() {
			kp = joinKey(kp, k)
			s.record(kp, line)
		}
		s.skipSpace()
		if s.peek() == '=' {
			s.pos++
		}
		s.skipSpace()
		s.value(kp)
		s.skipBlank()
		if s.peek() == ',' {
			s.pos++
		}
		if s.pos == start {
			s.pos++
		}
	}
}
