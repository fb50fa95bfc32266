package failure

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Redactor removes personal data from an Incident before it is stored
// (RFC 6590, as RFC 9991 recommends): the local parts of mail
// addresses, and the values of chosen header fields.
type Redactor struct {
	// LocalParts replaces the local part of every address in the
	// envelope and the header fields (but those in Keep) with a token.
	LocalParts bool
	// Key, when set, makes the token a keyed hash of the local part
	// ("redacted-" and 16 hex digits of HMAC-SHA256), so that one
	// mailbox gives one token and reports can still be correlated; with
	// no key every local part becomes "redacted".
	Key []byte
	// Headers are field names (any case) whose values are replaced with
	// "[redacted]" as a whole.
	Headers []string
}

// keepAddresses are fields whose address-like contents identify
// messages, not people: they stay as they are. A DKIM-Signature is
// redacted like any field: its i= and z= may name a mailbox.
var keepAddresses = map[string]bool{
	"message-id": true, "in-reply-to": true, "references": true, "resent-message-id": true, "content-id": true,
}

// Redact returns inc redacted. The headers and recipients are copied:
// inc is not changed.
func (r Redactor) Redact(inc Incident) Incident {
	out := inc
	out.Headers = make([]Field, len(inc.Headers))
	for i, f := range inc.Headers {
		switch {
		case r.redactsField(f.Name):
			out.Headers[i] = Field{f.Name, " [redacted]"}
		case r.LocalParts && !keepAddresses[strings.ToLower(f.Name)]:
			out.Headers[i] = Field{f.Name, r.addresses(f.Value)}
		default:
			out.Headers[i] = f
		}
	}
	if r.LocalParts {
		out.MailFrom = r.addresses(inc.MailFrom)
		out.RcptTo = make([]string, len(inc.RcptTo))
		for i, a := range inc.RcptTo {
			out.RcptTo[i] = r.addresses(a)
		}
	}
	return out
}

func (r Redactor) redactsField(name string) bool {
	for _, h := range r.Headers {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// token is what replaces a local part.
func (r Redactor) token(local string) string {
	if len(r.Key) == 0 {
		return "redacted"
	}
	m := hmac.New(sha256.New, r.Key)
	m.Write([]byte(strings.ToLower(local)))
	return "redacted-" + hex.EncodeToString(m.Sum(nil))[:16]
}

// addresses replaces the local part of each address in s: for every "@"
// with something other than a separator after it, the dot-atom or quoted string before it. It is a
// scanner, not a parser, on purpose: header fields in spam are broken in
// every way, and whatever looks like an address should go.
func (r Redactor) addresses(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	last := 0 // s[:last] is written
	for i := 0; i < len(s); i++ {
		if s[i] != '@' || i+1 >= len(s) || isSeparator(s[i+1]) {
			continue
		}
		start := localStart(s, last, i)
		if start == i {
			continue // "@example.com" alone, a DKIM i= or a route
		}
		b.WriteString(s[last:start])
		b.WriteString(r.token(s[start:i]))
		last = i
	}
	b.WriteString(s[last:])
	return b.String()
}

// localStart returns where the local part ending before s[at] (the "@")
// begins, not before from: the run of characters up to the previous
// separator (space, angle bracket, comma and the like), quoted strings
// included whole. With an unbalanced quote, quotes are separators.
func localStart(s string, from, at int) int {
	if j, ok := scanLocal(s, from, at, true); ok {
		return j
	}
	j, _ := scanLocal(s, from, at, false)
	return j
}

func scanLocal(s string, from, at int, quotes bool) (int, bool) {
	j, inQuote := at, false
	for j > from {
		c := s[j-1]
		switch {
		case c == '"' && quotes:
			inQuote = !inQuote
		case c == '"' && !inQuote:
			return j, true
		case !inQuote && isSeparator(c):
			return j, true
		}
		j--
	}
	return j, !inQuote
}

// isSeparator reports whether c ends a local part, scanning back from the
// "@". "=" is atext, but it is taken as a separator so that tag=value
// fields (a DKIM-Signature's i=) and SRS addresses (SRS0=hash=tt=domain=
// user@forwarder) lose the mailbox, not their structure.
func isSeparator(c byte) bool {
	return c <= ' ' || c == 0x7f || strings.IndexByte("<>,;:()[]@=", c) >= 0
}
