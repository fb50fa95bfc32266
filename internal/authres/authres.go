// Package authres reads and writes Authentication-Results header fields
// (RFC 8601).
//
// It exists because the milter must read the SPF and DKIM verdicts that
// upstream filters (OpenDKIM, pypolicyd-spf, rspamd, ...) wrote, and those
// filters write comments containing ';' and '=' that a split-on-';' parser
// gets wrong (go-msgauth issue #74). The reader here follows RFC 8601 section
// 2.2 and the RFC 5322 lexical rules (folding whitespace, nested comments,
// quoted-strings, quoted-pairs), and is liberal where real producers are
// sloppy, but never in a way that lets text inside a comment or a quoted
// string be read as a result.
//
// # What the parser accepts beyond the grammar
//
//   - An authserv-id may contain '/' (OpenDKIM and OpenDMARC append a job id:
//     "mx.example.org/4A1B2C3D") and other printable characters except
//     '=', ';', '(', ')', '"' and '\'.
//   - A property value may be any run of printable characters except
//     ';', '(', ')', '"' and '\': base64 with '/' and '+' (header.b), IPv6
//     addresses, SRS and BATV addresses with '=' in the local-part, "<>".
//     A run holding '=' must follow the '=' of its property directly: in
//     "header.d= header.s=sel" the second pair is not header.d's value, and
//     the clause is rejected as ambiguous.
//   - A quoted local-part is unquoted: smtp.mailfrom="a b"@example.com gives
//     the value `a b@example.com`; the domain is still after the last '@'.
//   - Values are kept as written: smf-spf's smtp.mailfrom=<user@example.com>
//     keeps its angle brackets, and finding the domain is the caller's job.
//   - A bare name=value other than reason= (Office 365's action=none,
//     Cisco's d=example.com, Fastmail's x-bits=2048) is kept as a Property
//     with an empty Type.
//   - reason= may appear anywhere after the result, not only first.
//   - Keywords (methods, results, property types and names) may contain '_'
//     (Fastmail's policy.is_org) and are compared and stored lowercased.
//   - Empty clauses (";;", a trailing ';' as Office 365 writes) are ignored.
//   - A line break is a fold when followed by a space or tab; CRLF and bare
//     LF are both accepted, and a trailing line break is ignored.
//
// # What it refuses
//
// The whole field is refused (nil Header) when it is longer than 64 KiB,
// holds more than 256 non-empty clauses, is not valid UTF-8, holds a control
// character other than tab and folding line breaks (a line break followed by
// anything but whitespace would start another header field), or when its
// authserv-id part does not parse.
//
// A result clause that does not parse is dropped whole. Parsing resumes at
// the next ';' found outside comments and quoted-strings, scanning from the
// point of failure; if an unterminated comment or quoted-string caused the
// failure there is no such ';' and the rest of the field is dropped, because
// what follows an unbalanced '(' or '"' may be commented or quoted text.
// The same property given twice in one clause makes the clause invalid: we
// cannot know which one the producer meant. A clause with more than 64
// properties and comments nested deeper than 16 are invalid too.
//
// "none" is the no-result form only as the sole clause ("mx.example.org;
// none"); next to results it is reported as an error and the results stay.
//
// A field whose first word is a keyword followed by '=' (or by "/version =")
// has no authserv-id: Office 365 writes
// "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; ...". It is
// parsed and returned with an empty AuthServID together with
// ErrNoAuthServID, so that it can be logged; such a field cannot be tied to
// a trusted service and must not be trusted. The value of an
// ARC-Authentication-Results field starts with "i=N;" and looks like such a
// field: strip the instance tag before calling Parse.
package authres

import (
	"errors"
	"fmt"
	"strings"
)

// Header is one parsed Authentication-Results header field.
type Header struct {
	// AuthServID identifies the service that wrote the field, as written,
	// with quotes removed. It is empty when the field has none. RFC 8601
	// leaves its case meaningless: compare it with strings.EqualFold.
	AuthServID string
	// Version is the authres-version after the authserv-id; 0 when absent,
	// which means version 1.
	Version int
	// Results holds the result clauses in the order written; it is empty for
	// "authserv-id; none".
	Results []Result
}

// Result is one "method=result ..." clause.
type Result struct {
	// Method is the authentication method, lowercased ("dkim", "spf",
	// "dmarc", "arc", "iprev", or anything else a producer invented).
	Method string
	// MethodVersion is the number after "method/"; 0 when absent, which
	// means version 1.
	MethodVersion int
	// Value is the result keyword, lowercased ("pass", "fail", "none", ...).
	Value string
	// Reason is the reason= value as written, unquoted; empty when absent.
	Reason string
	// Props holds the ptype.property=value pairs, and bare name=value
	// extensions with an empty Type, in the order written.
	Props []Property
	// Comment is the text of the clause's comments, outer parentheses
	// removed, quoted-pairs unescaped and folds unfolded, joined by a space.
	// It is for people: producers put free text there, never results.
	Comment string
}

// Property is one "ptype.property=value" pair of a result, such as
// header.d=example.com.
type Property struct {
	// Type is the ptype, lowercased: "smtp", "header", "body", "policy", or
	// an extension; empty for a bare name=value such as Office 365's
	// action=none.
	Type string
	// Name is the property, lowercased ("mailfrom", "d", "from", ...).
	Name string
	// Value is the value as written, unquoted.
	Value string
}

// Prop returns the value of the property typ.name of r, matching the names
// case-insensitively. Pass an empty typ for a bare name=value extension.
func (r Result) Prop(typ, name string) (string, bool) {
	for _, p := range r.Props {
		if strings.EqualFold(p.Type, typ) && strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// ErrNoAuthServID is returned, together with the parsed Header, for a field
// that starts with a result instead of an authserv-id. Its results cannot be
// attributed to any service and must not be trusted.
var ErrNoAuthServID = errors.New("authres: no authserv-id")

// SyntaxError describes where and why a header field, or one of its result
// clauses, does not parse.
type SyntaxError struct {
	// Offset is the byte offset of the problem in the value given to Parse.
	Offset int
	// Msg says what is wrong.
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("authres: %s at offset %d", e.Msg, e.Offset)
}

func errAt(off int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}
