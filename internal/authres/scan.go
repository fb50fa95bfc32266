package authres

import (
	"strings"
	"unicode/utf8"
)

// Limits that keep a hostile header cheap. Real fields are a few hundred
// bytes with a handful of clauses, properties and one level of comments.
const (
	maxLength       = 64 << 10
	maxResults      = 256
	maxProps        = 64
	maxCommentDepth = 16
	maxDigits       = 9 // fits an int on every platform
)

// checkBytes rejects what can never be part of one well-formed header field
// value, so that the scanner below may treat CR and LF as plain folding
// whitespace: control characters, line breaks that do not fold (they would
// start another header field), and invalid UTF-8 (RFC 6532 allows UTF-8 in
// header fields, nothing else).
func checkBytes(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if ' ' <= c && c < 0x7f {
			i++ // printable ASCII, nearly every byte
			continue
		}
		switch {
		case c == '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				return errAt(i, "CR not followed by LF")
			}
		case c == '\n':
			if i+1 < len(s) && s[i+1] != ' ' && s[i+1] != '\t' {
				return errAt(i, "line break not followed by whitespace")
			}
		case c == 0x7f || c < ' ' && c != '\t':
			return errAt(i, "control character %#02x", c)
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return errAt(i, "invalid UTF-8")
			}
			i += n
			continue
		}
		i++
	}
	return nil
}

// scanner is the tokenizer. It works on a value that passed checkBytes, so a
// NUL byte never occurs and peek can use 0 for the end of input.
type scanner struct {
	s string
	i int

	// All properties and comment text of the field, in the order of the
	// clauses: each Result gets a sub-slice of these, so that a field costs
	// a handful of allocations however many results it has.
	props []Property
	notes []byte
	// notesStart is where the current clause's comment text starts in notes.
	notesStart int
}

func (p *scanner) eof() bool { return p.i >= len(p.s) }

func (p *scanner) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isKeywordChar reports whether c may appear in a Keyword (RFC 5321 Ldh-str),
// plus '_' which some producers use in property names.
func isKeywordChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '-' || c == '_'
}

// isValueChar reports whether c may appear in an unquoted property value.
// This is wider than RFC 2045 token and RFC 5322 dot-atom together because
// producers write base64, IPv6 addresses and SRS addresses bare; it stops
// only at what delimits values: whitespace, comments, quotes and ';'.
// Bytes of multi-byte UTF-8 sequences (RFC 8616) are value characters.
func isValueChar(c byte) bool {
	switch c {
	case '(', ')', ';', '"', '\\', 0x7f:
		return false
	}
	return c > ' '
}

// isIDChar reports whether c may appear in an unquoted authserv-id: a value
// character except '=', which marks a result (a field without authserv-id).
func isIDChar(c byte) bool { return c != '=' && isValueChar(c) }

// run consumes and returns the longest run of bytes satisfying ok.
func (p *scanner) run(ok func(byte) bool) string {
	start := p.i
	for p.i < len(p.s) && ok(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *scanner) keyword() string { return p.run(isKeywordChar) }

// number consumes 1*DIGIT. It fails on no digits and on more than maxDigits,
// without consuming anything.
func (p *scanner) number() (int, bool) {
	start := p.i
	v := 0
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		if p.i-start == maxDigits {
			p.i = start
			return 0, false
		}
		v = v*10 + int(p.s[p.i]-'0')
		p.i++
	}
	return v, p.i > start
}

// cfws consumes optional comments and folding whitespace and reports whether
// it consumed anything. If keep is set, the text of each non-empty comment is
// appended to the current clause's comment text, separated by a space. On
// error p.i is left on the '(' that opened the bad comment, so that skip can
// walk over it.
func (p *scanner) cfws(keep bool) (bool, error) {
	start := p.i
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case isWSP(c):
			p.i++
		case c == '(':
			if err := p.comment(keep); err != nil {
				return true, err
			}
		default:
			return p.i > start, nil
		}
	}
	return p.i > start, nil
}

// comment consumes one comment (RFC 5322 section 3.2.2) starting at '('.
// Nested comments are kept with their parentheses, quoted-pairs are
// unescaped and line breaks of folds are removed. It loops instead of
// recursing, so depth costs no stack; maxCommentDepth is policy.
func (p *scanner) comment(keep bool) error {
	start := p.i
	if keep && p.notes == nil {
		p.notes = make([]byte, 0, 256) // enough for the comments of most fields
	}
	mark := len(p.notes)
	if keep && mark > p.notesStart {
		p.notes = append(p.notes, ' ')
	}
	body := len(p.notes)
	fail := func(msg string) error {
		p.i = start
		p.notes = p.notes[:mark]
		return errAt(start, "%s", msg)
	}
	p.i++ // '('
	depth := 1
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '\\':
			if p.i+1 >= len(p.s) {
				return fail("unterminated comment")
			}
			if c = p.s[p.i+1]; c == '\r' || c == '\n' {
				return fail("quoted-pair of a line break in comment")
			}
			p.i++
		case '(':
			depth++
			if depth > maxCommentDepth {
				return fail("comments nested too deeply")
			}
		case ')':
			depth--
			if depth == 0 {
				p.i++
				if len(p.notes) == body {
					p.notes = p.notes[:mark] // "()" adds nothing, not even a space
				}
				return nil
			}
		case '\r', '\n':
			p.i++
			continue
		}
		if keep {
			p.notes = append(p.notes, c)
		}
		p.i++
	}
	return fail("unterminated comment")
}

// quotedString consumes a quoted-string (RFC 5322 section 3.2.4) starting at
// '"' and returns its content with quoted-pairs unescaped and folds
// unfolded. On error p.i is left on the opening quote.
func (p *scanner) quotedString() (string, error) {
	start := p.i
	p.i++         // '"'
	plain := true // no quoted-pair, no fold: the content is a substring
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '"':
			p.i++
			if plain {
				return p.s[start+1 : p.i-1], nil
			}
			return unquote(p.s[start+1 : p.i-1]), nil
		case '\\':
			if p.i+1 >= len(p.s) {
				p.i = start
				return "", errAt(start, "unterminated quoted-string")
			}
			if c := p.s[p.i+1]; c == '\r' || c == '\n' {
				p.i = start
				return "", errAt(start, "quoted-pair of a line break in quoted-string")
			}
			plain = false
			p.i += 2
		case '\r', '\n':
			plain = false
			p.i++
		default:
			p.i++
		}
	}
	p.i = start
	return "", errAt(start, "unterminated quoted-string")
}

// unquote unescapes the content of a quoted-string already checked by
// quotedString.
func unquote(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			i++
			b.WriteByte(s[i])
		case '\r', '\n':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// skip moves to the next ';' outside comments and quoted-strings, or to the
// end of input. It is the recovery after a bad clause and deliberately knows
// nothing of the grammar beyond the delimiters, and it has no depth limit:
// it only counts.
func (p *scanner) skip() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ';':
			return
		case '"':
			p.i++
			for p.i < len(p.s) {
				c := p.s[p.i]
				p.i++
				if c == '\\' {
					p.i++
				} else if c == '"' {
					break
				}
			}
		case '(':
			p.i++
			for depth := 1; depth > 0 && p.i < len(p.s); {
				switch p.s[p.i] {
				case '\\':
					p.i++
				case '(':
					depth++
				case ')':
					depth--
				}
				p.i++
			}
		default:
			p.i++
		}
	}
	p.i = len(p.s) // a trailing '\' may have stepped past the end
}
