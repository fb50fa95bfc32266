package authres

import (
	"strconv"
	"strings"
)

// QuoteValue returns s as an RFC 2045 value, the form of reason= and of the
// authserv-id: s itself when it is a token (header.from=example.com stays
// bare), otherwise a quoted-string with '"' and '\' escaped. Control
// characters cannot appear in a header field at all and become spaces, and
// invalid UTF-8 becomes U+FFFD, so that the result is always safe to write.
func QuoteValue(s string) string {
	if isToken(s) {
		return s
	}
	return quote(s)
}

// String formats h as an Authentication-Results field value on one line,
// without the field name: the authserv-id and version, then each result as
//
//	method[/version]=value (comment) reason=... ptype.name=value ...
//
// or "; none" when there are no results. Values are quoted only when needed
// (see QuoteValue; property values may also hold "@", ":", "/", "?" and "="
// bare, as in smtp.mailfrom=user@example.com). Method, result and property
// names must be keywords (letters, digits, '-', '_'); other characters are
// dropped so that the output is always one well-formed field. A Header
// without AuthServID is written without one, like the field it came from.
// Any Header that Parse returned formats to a string that Parse reads back as
// an equal Header, size limits permitting; FuzzParse checks this.
func (h *Header) String() string {
	var b strings.Builder
	if h.AuthServID != "" {
		if isBare(h.AuthServID, "/") {
			b.WriteString(h.AuthServID)
		} else {
			b.WriteString(quote(h.AuthServID))
		}
		if h.Version > 0 {
			b.WriteByte(' ')
			b.WriteString(strconv.Itoa(h.Version))
		}
		if len(h.Results) == 0 {
			b.WriteString("; none")
		}
	}
	for i, r := range h.Results {
		if i > 0 || h.AuthServID != "" {
			b.WriteString("; ")
		}
		r.format(&b)
	}
	return b.String()
}

func (r *Result) format(b *strings.Builder) {
	writeKeyword(b, r.Method)
	if r.MethodVersion > 0 {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(r.MethodVersion))
	}
	b.WriteByte('=')
	writeKeyword(b, r.Value)
	if r.Comment != "" {
		b.WriteString(" (")
		writeEscaped(b, r.Comment, `()\`)
		b.WriteByte(')')
	}
	if r.Reason != "" {
		b.WriteString(" reason=")
		b.WriteString(QuoteValue(r.Reason))
	}
	for _, p := range r.Props {
		b.WriteByte(' ')
		if p.Type != "" {
			writeKeyword(b, p.Type)
			b.WriteByte('.')
		}
		writeKeyword(b, p.Name)
		b.WriteByte('=')
		if isBare(p.Value, "@:/?=") {
			b.WriteString(p.Value)
		} else {
			b.WriteString(quote(p.Value))
		}
	}
}

func writeKeyword(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if isKeywordChar(s[i]) {
			b.WriteByte(s[i])
		}
	}
}

// tspecials are the RFC 2045 characters a token cannot hold.
const tspecials = `()<>@,;:\"/[]?=`

// isToken reports whether s is an RFC 2045 token: printable US-ASCII except
// space and tspecials.
func isToken(s string) bool { return isBare(s, "") }

// isBare reports whether s is non-empty and made of token characters and the
// characters in extra.
func isBare(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		if strings.IndexByte(tspecials, c) >= 0 && strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	writeEscaped(&b, s, `"\`)
	b.WriteByte('"')
	return b.String()
}

// writeEscaped writes s with a backslash before each byte in special,
// control characters other than tab replaced by spaces and invalid UTF-8 by
// U+FFFD.
func writeEscaped(b *strings.Builder, s, special string) {
	for _, r := range s { // ranging replaces invalid UTF-8 by U+FFFD
		switch {
		case r < ' ' && r != '\t' || r == 0x7f:
			b.WriteByte(' ')
		case r < 0x80 && strings.IndexByte(special, byte(r)) >= 0:
			b.WriteByte('\\')
			b.WriteByte(byte(r))
		default:
			b.WriteRune(r)
		}
	}
}
