package authres

import (
	"strings"
	"unicode/utf8"
)

// Parse parses one Authentication-Results header field value: what follows
// "Authentication-Results:", folded or not.
//
// The returned error says how much of the result to trust:
//
//   - nil: the whole field parsed cleanly.
//   - a *SyntaxError and a nil Header: the field is unusable as a whole.
//   - an error and a non-nil Header: the Header holds the clauses that parsed
//     cleanly; the error wraps a *SyntaxError for each dropped clause
//     (errors.As finds the first) and ErrNoAuthServID when the field has no
//     authserv-id (errors.Is). A caller that trusts only trusted
//     authserv-ids rejects the latter by that rule alone.
//
// The package documentation lists the rules for odd input.
func Parse(value string) (*Header, error) {
	if len(value) > maxLength {
		return nil, errAt(maxLength, "header field longer than %d bytes", maxLength)
	}
	if err := checkBytes(value); err != nil {
		return nil, err
	}
	p := &scanner{s: value}
	if _, err := p.cfws(false); err != nil {
		return nil, err
	}
	if p.eof() {
		return nil, errAt(p.i, "empty header field")
	}

	h := &Header{}
	var errs []error
	// first is true while the next clause has no ';' before it, which
	// happens only when the field starts with a result.
	first := false
	if p.peek() == ';' || p.atMethodspec() {
		errs = append(errs, ErrNoAuthServID)
		first = p.peek() != ';'
	} else if err := p.authservID(h); err != nil {
		return nil, err
	}

	var results []Result
	spans := make([]span, 0, 8)
	clauses, noneAt := 0, -1
	for !p.eof() {
		if !first {
			p.i++ // the ';' every clause loop ends on
		}
		first = false
		start := p.i
		r, sp, kind, err := p.clause()
		if kind != clauseEmpty {
			if clauses++; clauses > maxResults {
				return nil, errAt(start, "more than %d results", maxResults)
			}
		}
		switch {
		case err != nil:
			errs = append(errs, err)
			p.skip()
		case kind == clauseNone:
			noneAt = start
		case kind == clauseResult:
			if results == nil {
				results = make([]Result, 0, 4)
			}
			results = append(results, r)
			spans = append(spans, sp)
		}
	}
	notes := string(p.notes)
	for i, sp := range spans {
		if sp.props < sp.propsEnd {
			// Capped, so that appending to one result's Props cannot
			// overwrite the next one's.
			results[i].Props = p.props[sp.props:sp.propsEnd:sp.propsEnd]
		}
		results[i].Comment = notes[sp.notes:sp.notesEnd]
	}
	h.Results = results
	if noneAt >= 0 && clauses > 1 {
		errs = append(errs, errAt(noneAt, `"none" together with other results`))
	}

	switch len(errs) {
	case 0:
		return h, nil
	case 1:
		return h, errs[0]
	}
	return h, joinedError(errs)
}

// atMethodspec reports, without consuming anything, whether the input starts
// with "method [/ version] =", that is a result rather than an authserv-id.
func (p *scanner) atMethodspec() bool {
	save := p.i
	defer func() { p.i = save }()
	if p.keyword() == "" {
		return false
	}
	if _, err := p.cfws(false); err != nil {
		return false
	}
	if p.peek() == '/' {
		p.i++
		if _, err := p.cfws(false); err != nil {
			return false
		}
		if _, ok := p.number(); !ok {
			return false
		}
		if _, err := p.cfws(false); err != nil {
			return false
		}
	}
	return p.peek() == '='
}

// authservID parses `authserv-id [CFWS authres-version] [CFWS]` and leaves
// p on the ';' that must follow. Comments there are dropped: they describe
// the service, not a result.
func (p *scanner) authservID(h *Header) error {
	start := p.i
	if p.peek() == '"' {
		id, err := p.quotedString()
		if err != nil {
			return err
		}
		h.AuthServID = id
	} else {
		h.AuthServID = p.run(isIDChar)
	}
	if h.AuthServID == "" {
		return errAt(start, "expected authserv-id")
	}
	sep, err := p.cfws(false)
	if err != nil {
		return err
	}
	if sep && isDigit(p.peek()) {
		at := p.i
		v, ok := p.number()
		if !ok {
			return errAt(at, "authres-version too long")
		}
		h.Version = v
		if _, err := p.cfws(false); err != nil {
			return err
		}
	}
	switch {
	case p.eof():
		return errAt(p.i, `expected ";" after authserv-id`)
	case p.peek() != ';':
		return errAt(p.i, "unexpected %q after authserv-id", p.peek())
	}
	return nil
}

type clauseKind int

const (
	clauseEmpty  clauseKind = iota // nothing but CFWS
	clauseNone                     // the no-result "none"
	clauseResult                   // a resinfo, parsed or not
)

// span locates a result's properties in scanner.props and its comment text
// in scanner.notes.
type span struct{ props, propsEnd, notes, notesEnd int }

// clause parses one result clause with resinfo and keeps its properties and
// comment text only when it returns a clean result.
func (p *scanner) clause() (Result, span, clauseKind, error) {
	sp := span{props: len(p.props), notes: len(p.notes)}
	p.notesStart = sp.notes
	r, kind, err := p.resinfo()
	if err != nil || kind != clauseResult {
		p.props, p.notes = p.props[:sp.props], p.notes[:sp.notes]
		return r, sp, kind, err
	}
	sp.propsEnd, sp.notesEnd = len(p.props), len(p.notes)
	return r, sp, kind, nil
}

// resinfo parses one result clause up to the next ';' or the end of input:
//
//	[CFWS] method [[CFWS] "/" [CFWS] version] [CFWS] "=" [CFWS] result
//	    *( [CFWS] ( reason "=" pvalue / ptype "." name "=" pvalue / name "=" pvalue ) ) [CFWS]
//
// On error p is at or before the point of failure, never inside a comment or
// quoted-string, which is what skip needs.
func (p *scanner) resinfo() (Result, clauseKind, error) {
	var r Result
	base := len(p.props) // this clause's properties are p.props[base:]
	if _, err := p.cfws(true); err != nil {
		return r, clauseResult, err
	}
	if p.eof() || p.peek() == ';' {
		return r, clauseEmpty, nil
	}

	at := p.i
	method := p.keyword()
	if method == "" {
		return r, clauseResult, errAt(at, "expected method, found %q", p.peek())
	}
	if _, err := p.cfws(true); err != nil {
		return r, clauseResult, err
	}
	if strings.EqualFold(method, "none") && (p.eof() || p.peek() == ';') {
		return r, clauseNone, nil
	}
	r.Method = strings.ToLower(method)
	if p.peek() == '/' {
		p.i++
		if _, err := p.cfws(true); err != nil {
			return r, clauseResult, err
		}
		at := p.i
		v, ok := p.number()
		if !ok {
			return r, clauseResult, errAt(at, "expected method version")
		}
		r.MethodVersion = v
		if _, err := p.cfws(true); err != nil {
			return r, clauseResult, err
		}
	}
	if p.peek() != '=' {
		return r, clauseResult, errAt(p.i, `expected "=" after method %q`, snippet(method))
	}
	p.i++
	if _, err := p.cfws(true); err != nil {
		return r, clauseResult, err
	}
	at = p.i
	value := p.keyword()
	if value == "" {
		return r, clauseResult, errAt(at, "expected result for method %q", snippet(method))
	}
	r.Value = strings.ToLower(value)

	hasReason := false
	for {
		if _, err := p.cfws(true); err != nil {
			return r, clauseResult, err
		}
		if p.eof() || p.peek() == ';' {
			break
		}
		at := p.i
		ptype := p.keyword()
		if ptype == "" {
			return r, clauseResult, errAt(at, "expected property, found %q", p.peek())
		}
		if _, err := p.cfws(true); err != nil {
			return r, clauseResult, err
		}
		var name string
		switch p.peek() {
		case '.':
			p.i++
			if _, err := p.cfws(true); err != nil {
				return r, clauseResult, err
			}
			nameAt := p.i
			if name = p.keyword(); name == "" {
				return r, clauseResult, errAt(nameAt, "expected property name after %q", snippet(ptype)+".")
			}
			if _, err := p.cfws(true); err != nil {
				return r, clauseResult, err
			}
			if p.peek() != '=' {
				return r, clauseResult, errAt(p.i, `expected "=" after %q`, snippet(ptype+"."+name))
			}
		case '=':
			ptype, name = "", ptype
		default:
			return r, clauseResult, errAt(p.i, `expected "." or "=" after %q`, snippet(ptype))
		}
		p.i++ // '='
		v, err := p.pvalue()
		if err != nil {
			return r, clauseResult, err
		}

		ptype, name = strings.ToLower(ptype), strings.ToLower(name)
		if ptype == "" && name == "reason" {
			if hasReason {
				return r, clauseResult, errAt(at, "reason given twice")
			}
			r.Reason, hasReason = v, true
			continue
		}
		for _, q := range p.props[base:] {
			if q.Type == ptype && q.Name == name {
				return r, clauseResult, errAt(at, "property %q given twice", snippet(joinName(ptype, name)))
			}
		}
		if len(p.props)-base == maxProps {
			return r, clauseResult, errAt(at, "more than %d properties", maxProps)
		}
		if p.props == nil {
			p.props = make([]Property, 0, 16)
		}
		p.props = append(p.props, Property{Type: ptype, Name: name, Value: v})
	}
	return r, clauseResult, nil
}

// pvalue parses the value after a property's '=':
//
//	[CFWS] ( quoted-string [ "@" domain ] / 1*value-char / nothing before ";" or the end )
//
// RFC 8601 has no empty value, but "smtp.mailfrom=;" is harmless and seen.
func (p *scanner) pvalue() (string, error) {
	sep, err := p.cfws(true)
	if err != nil {
		return "", err
	}
	switch c := p.peek(); {
	case c == '"':
		v, err := p.quotedString()
		if err != nil {
			return "", err
		}
		if p.peek() != '@' {
			return v, nil
		}
		// A quoted local-part: "first last"@example.com.
		p.i++
		at := p.i
		d := p.run(isValueChar)
		if d == "" {
			return "", errAt(at, `expected domain after "@"`)
		}
		return v + "@" + d, nil
	case c == 0 || c == ';':
		return "", nil
	default:
		at := p.i
		v := p.run(isValueChar)
		if v == "" {
			return "", errAt(at, "expected value, found %q", c)
		}
		if sep && strings.IndexByte(v, '=') >= 0 {
			// "header.d= header.s=sel": an empty value followed by the
			// next property, or a value after a space? Refuse to guess.
			return "", errAt(at, "value %q after whitespace contains \"=\"", snippet(v))
		}
		return v, nil
	}
}

// snippet shortens text quoted in an error message: errors end up in log
// lines, and a hostile header may hold a 64 KiB keyword.
func snippet(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

func joinName(ptype, name string) string {
	if ptype == "" {
		return name
	}
	return ptype + "." + name
}

// joinedError is errors.Join without the newlines, which do not belong in a
// one-line log message.
type joinedError []error

func (e joinedError) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e joinedError) Unwrap() []error { return e }

// AuthServIDOf returns the authserv-id that a header field value claims, or
// "" if it claims none, even when the rest of the field does not parse. The
// milter uses it to remove every field that claims to come from its own
// authserv-id: a forged field must go even if it is malformed, because
// whatever reads the message after us may be more lenient than Parse.
// For a field that Parse accepts it returns Header.AuthServID.
func AuthServIDOf(value string) string {
	p := &scanner{s: value}
	if _, err := p.cfws(false); err != nil || p.peek() == ';' || p.atMethodspec() {
		return ""
	}
	if p.peek() == '"' {
		id, err := p.quotedString()
		if err != nil {
			return ""
		}
		return id
	}
	return p.run(isIDChar)
}
