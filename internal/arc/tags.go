package arc

import (
	"errors"
	"fmt"
	"strings"
)

// maxTags bounds the tags of one tag-list. An ARC-Seal has six, an
// ARC-Message-Signature about ten, a key record four; more is hostile.
const maxTags = 64

// tag is one tag=value pair of a tag-list (RFC 6376 §3.2).
type tag struct {
	name  string
	value string // trimmed of surrounding FWS; internal FWS kept
	// start and end delimit, in the string parsed, everything between the
	// '=' and the ';' (or the end) that closes the tag: the value with the
	// whitespace around it. Emptying b= removes exactly that.
	start, end int
}

// tagList is a parsed tag-list, in the order written.
type tagList []tag

// get returns the value of the tag named name (case-sensitive, as RFC 6376
// §3.2 says tag names are).
func (l tagList) get(name string) (string, bool) {
	for _, t := range l {
		if t.name == name {
			return t.value, true
		}
	}
	return "", false
}

func (l tagList) find(name string) (tag, bool) {
	for _, t := range l {
		if t.name == name {
			return t, true
		}
	}
	return tag{}, false
}

var errEmptyTagList = errors.New("empty tag-list")

// parseTags parses a tag-list:
//
//	tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//	tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//	tag-name  =  ALPHA *ALNUMPUNC
//	tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
//	tval      =  1*VALCHAR            ; %x21-3A / %x3C-7E
//
// Folding may use CRLF or a bare LF. A tag named twice, an empty tag-spec
// (";;") and a character outside the grammar make the whole list invalid.
func parseTags(s string) (tagList, error) { return parseTagList(s, true) }

// parseKeyTags parses a key record's tag-list, letting values hold any
// byte but ';': publishers write free text in n= (notes), and a key must
// not become unusable for a tag nobody reads.
func parseKeyTags(s string) (tagList, error) { return parseTagList(s, false) }

func parseTagList(s string, strict bool) (tagList, error) {
	var l tagList
	pos := 0
	for pos <= len(s) {
		end := strings.IndexByte(s[pos:], ';')
		last := end < 0
		if last {
			end = len(s)
		} else {
			end += pos
		}
		spec := s[pos:end]
		if isFWS(spec) {
			// Only the part after a trailing ';' may be empty, and only
			// when something came before it.
			if !last || len(l) == 0 {
				if last {
					return nil, errEmptyTagList
				}
				return nil, errors.New("empty tag (\";;\")")
			}
			break
		}
		eq := strings.IndexByte(spec, '=')
		if eq < 0 {
			return nil, fmt.Errorf("tag without '=': %q", truncate(trimFWS(spec)))
		}
		name := trimFWS(spec[:eq])
		if !isTagName(name) {
			return nil, fmt.Errorf("invalid tag name %q", truncate(name))
		}
		value := trimFWS(spec[eq+1:])
		if strict && !isTagValue(value) {
			return nil, fmt.Errorf("invalid value for tag %s", name)
		}
		if _, dup := l.get(name); dup {
			return nil, fmt.Errorf("tag %s given twice", name)
		}
		if len(l) == maxTags {
			return nil, fmt.Errorf("more than %d tags", maxTags)
		}
		l = append(l, tag{name: name, value: value, start: pos + eq + 1, end: end})
		if last {
			break
		}
		pos = end + 1
	}
	return l, nil
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// isFWSByte reports whether c may be part of folding whitespace.
func isFWSByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isFWS(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isFWSByte(s[i]) {
			return false
		}
	}
	return true
}

func trimFWS(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r < 0x80 && isFWSByte(byte(r)) })
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// isTagValue checks the characters of a trimmed tag-value: VALCHARs
// separated by folding whitespace. A line break must be followed by
// whitespace, or it would end the header field.
func isTagValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x21 && c <= 0x7e && c != ';':
		case isWSP(c):
		case c == '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				return false
			}
		case c == '\n':
			if i+1 >= len(s) || !isWSP(s[i+1]) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// stripFWS removes all folding whitespace, as b=, bh=, h= and p= values
// are read (RFC 6376 §3.5: "whitespace is ignored in this value").
func stripFWS(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if !isFWSByte(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
