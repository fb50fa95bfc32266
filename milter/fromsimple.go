package milter

import "strings"

// fromSimple reads the From fields nearly all mail carries, one mailbox
// with at most a plain display name:
//
//	news@example.com
//	<news@example.com>
//	Jane Doe <jane@example.com>
//	"News from Example, Inc." <news@example.com>
//
// Both of parseFromField's parsers read these alike, and running them was
// a tenth of dmarcd's CPU time per message. Anything else (a comment, a
// backslash, an encoded word, a group, a second mailbox, an 8-bit byte, a
// domain NormalizeDomain refuses) returns false, and the field takes the
// two-parser path. The result is the one that path would give, which
// FuzzFromDomains checks on every input.
func fromSimple(s string, field int) (fromMailbox, bool) {
	s = strings.Trim(s, " \t")
	name, rest, angle, ok := fromSimpleName(s)
	if !ok {
		return fromMailbox{}, false
	}
	addr := rest
	if angle {
		if len(rest) < 2 || rest[0] != '<' || rest[len(rest)-1] != '>' {
			return fromMailbox{}, false
		}
		addr = rest[1 : len(rest)-1]
	}
	at := strings.IndexByte(addr, '@')
	if at < 0 || !fromSimpleDotAtom(addr[:at], isSimpleLocal) || !fromSimpleDotAtom(addr[at+1:], isSimpleDomain) {
		return fromMailbox{}, false
	}
	d, err := fromNormalize(addr[at+1:])
	if err != nil {
		return fromMailbox{}, false
	}
	return fromMailbox{Name: name, Address: addr, Domain: d, Field: field}, true
}

// fromSimpleName splits s into a display name and what follows it, which
// must then be an angle address (angle is set). Without a display name,
// rest is s and angle tells whether it starts with "<". The name is one
// quoted string without backslashes, or words of letters, digits and a
// few punctuation characters separated by spaces (joined by one space, as
// net/mail does).
func fromSimpleName(s string) (name, rest string, angle, ok bool) {
	switch {
	case s == "":
		return "", "", false, false
	case s[0] == '<':
		return "", s, true, true
	case s[0] == '"':
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return "", "", false, false
		}
		name = s[1 : 1+end]
		for i := 0; i < len(name); i++ {
			if c := name[i]; c < ' ' || c > '~' || c == '\\' {
				return "", "", false, false
			}
		}
		return name, strings.TrimLeft(s[2+end:], " \t"), true, true
	}
	lt := strings.IndexByte(s, '<')
	if lt < 0 {
		return "", s, false, true // a bare addr-spec, or not simple
	}
	phrase := s[:lt]
	for i := 0; i < len(phrase); i++ {
		if c := phrase[i]; c != ' ' && c != '\t' && !isSimpleWord(c) {
			return "", "", false, false
		}
	}
	words := strings.FieldsFunc(phrase, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(words) == 0 {
		return "", "", false, false
	}
	return strings.Join(words, " "), s[lt:], true, true
}

// fromSimpleDotAtom reports whether s is one or more runs of bytes
// allowed by ok, separated by single dots.
func fromSimpleDotAtom(s string, ok func(byte) bool) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if run == 0 {
				return false
			}
			run = 0
		case ok(c):
			run++
		default:
			return false
		}
	}
	return run > 0
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isSimpleWord: a display-name byte. No "=" or "?", so that no word can
// be an RFC 2047 encoded word.
func isSimpleWord(c byte) bool {
	return isAlnum(c) || strings.IndexByte(".-_'&+!", c) >= 0
}

// isSimpleLocal: a local-part byte (RFC 5322 atext).
func isSimpleLocal(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isSimpleDomain: a domain byte (letters, digits, hyphen).
func isSimpleDomain(c byte) bool {
	return isAlnum(c) || c == '-'
}
