package milter

// Reading the Author Domain(s) out of the RFC5322.From header fields.
//
// Every field is parsed twice, by two parsers that must agree:
//
//   - net/mail's AddressParser (with an RFC 2047 word decoder) reads the
//     fields that follow RFC 5322, RFC 6854 (groups in From) and RFC 6532
//     (UTF-8): display names, quoted local parts, comments after an
//     address, groups, U-label domains.
//   - fromScan, a lenient scanner of our own, reads everything net/mail
//     rejects but real mail carries: CFWS folded over lines, comments
//     inside the address, obsolete routes (<@relay:user@example.com>),
//     trailing-dot domains, unquoted dots, at-signs, brackets, colons or
//     commas in display names ("Doe, John <j@example.com>"), a missing
//     closing ">", text after the angle-addr, ";" as a list separator,
//     a group missing its ";", charsets the word decoder does not know,
//     raw 8-bit display names.
//
// When net/mail accepts a field, its mailboxes are used and the scanner
// must find the same domains in the same order; if it does not, the field
// is refused as ambiguous, because two readings of one From field are
// exactly what an attacker needs to make the domain DMARC checks differ
// from the one the reader is shown. When net/mail rejects a field, the
// scanner's reading is used and the mailboxes are marked Lenient.
//
// The scanner splits a field at "," and ";" only outside quoted strings,
// comments and angle brackets, so a quote or a parenthesis cannot hide an
// address from it; the opposite mistake (an unbalanced quote or comment, a
// stray ")" or ">", a backslash outside a quoted string) makes the whole
// field unreadable rather than guessed at.
//
// The fields of nearly all mail (one plain mailbox, at most a plain
// display name) are read by fromSimple instead, which the two parsers
// would read alike, at an eighth of their cost; FuzzFromDomains checks
// that its reading is theirs.

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	"golang.org/x/text/encoding/ianaindex"

	"github.com/dmarcd/dmarcd/dmarc"
)

// Limits on what parseFrom reads. Postfix's header_size_limit is 100 KiB
// for all header fields together; a From field needs a small fraction.
const (
	// maxFromFieldBytes caps one From field value, folding included.
	maxFromFieldBytes = 16 << 10
	// maxFromAddresses caps the mailboxes of all From fields together,
	// and the number of From fields.
	maxFromAddresses = 100
)

// Errors of parseFrom, to be tested with errors.Is. Each one means that
// DMARC cannot be applied as usual; what to do then is the milter's
// configuration's decision (OpenDMARC rejects or accepts, by option).
var (
	// errNoFrom: the message has no From field.
	errNoFrom = errors.New("no From header field")
	// errNoMailbox: the From fields hold no mailbox: empty, only a
	// display name, only empty groups ("undisclosed-recipients:;"), or
	// the null address "<>".
	errNoMailbox = errors.New("no mailbox in From")
	// errFromSyntax: a From field cannot be read without guessing.
	errFromSyntax = errors.New("unreadable From field")
	// errFromDomain: a mailbox has no domain, a domain literal
	// ("user@[192.0.2.1]"), or a domain that is not a DNS name.
	errFromDomain = errors.New("no DNS domain in From address")
	// errFromLimit: a From field is longer than maxFromFieldBytes, or
	// the From fields hold more than maxFromAddresses mailboxes.
	errFromLimit = errors.New("From fields over limits")
)

// fromMailbox is one mailbox read from a From field.
type fromMailbox struct {
	// Name is the display name, RFC 2047 words decoded when the charset
	// is known, for logs only: it never affects Domain and must never be
	// trusted.
	Name string
	// Address is the addr-spec as read, for logs: local part unquoted,
	// "@", the domain as written.
	Address string
	// Domain is the Author Domain: A-labels, lower case, no trailing dot
	// (dmarc.NormalizeDomain).
	Domain string
	// Field is the index, in the values given to parseFrom, of the field
	// the mailbox came from.
	Field int
	// Lenient is set when net/mail rejected the field and the lenient
	// scanner read it.
	Lenient bool
}

// fromResult is what parseFrom found in the From fields of a message.
type fromResult struct {
	// Mailboxes holds every mailbox of every field, in order, duplicates
	// kept. It is never empty when parseFrom returns no error.
	Mailboxes []fromMailbox
	// Fields is the number of From fields.
	Fields int
	// Groups is the number of group constructs seen, empty ones included.
	Groups int
}

// Domains returns the Author Domain of every mailbox, in order, duplicates
// kept.
func (r fromResult) Domains() []string {
	ds := make([]string, len(r.Mailboxes))
	for i, m := range r.Mailboxes {
		ds[i] = m.Domain
	}
	return ds
}

// UniqueDomains returns the distinct Author Domains in order of first
// appearance: what "evaluate all and apply the strictest" iterates over.
func (r fromResult) UniqueDomains() []string {
	var ds []string
	seen := make(map[string]bool, len(r.Mailboxes))
	for _, m := range r.Mailboxes {
		if !seen[m.Domain] {
			seen[m.Domain] = true
			ds = append(ds, m.Domain)
		}
	}
	return ds
}

// Single reports whether the message has exactly one From field holding
// exactly one mailbox: the only case where RFC 9989 applies without a
// local decision (§5.3.1).
func (r fromResult) Single() bool {
	return r.Fields == 1 && len(r.Mailboxes) == 1
}

// Lenient reports whether any mailbox was read by the lenient scanner.
func (r fromResult) Lenient() bool {
	for _, m := range r.Mailboxes {
		if m.Lenient {
			return true
		}
	}
	return false
}

// fromDomains returns the normalized (A-label, lowercase) domain of every
// mailbox in the From field values given (one per From header field), in
// order, with duplicates kept, or an error wrapping one of errNoFrom,
// errNoMailbox, errFromSyntax, errFromDomain or errFromLimit. The slice is
// never empty when the error is nil; several domains are returned as they
// are, for the caller to reject, evaluate the first or evaluate them all.
func fromDomains(values []string) ([]string, error) {
	r, err := parseFrom(values)
	if err != nil {
		return nil, err
	}
	return r.Domains(), nil
}

// parseFrom reads the From field values given, one per From header field,
// as the MTA passes them (folded with CRLF or LF or not, raw UTF-8 or
// other 8-bit bytes, RFC 2047 words). On error it returns a zero result:
// one unreadable field makes the whole From unusable, so that a bad field
// cannot be used to have only the other ones checked. Fields without a
// mailbox (empty, an empty group) are not errors by themselves, but
// Fields counts them; if no field holds a mailbox, the error is
// errNoMailbox. The lenient scanner is linear in the input; net/mail is
// nearly so (slightly worse on runs of quotes), and maxFromFieldBytes
// bounds both: about 2 ms for the worst 16 KiB field we found.
func parseFrom(values []string) (fromResult, error) {
	if len(values) == 0 {
		return fromResult{}, errNoFrom
	}
	if len(values) > maxFromAddresses {
		return fromResult{}, fmt.Errorf("%w: %d From fields", errFromLimit, len(values))
	}
	res := fromResult{Fields: len(values)}
	for i, v := range values {
		if len(v) > maxFromFieldBytes {
			return fromResult{}, fmt.Errorf("%w: From field %d has %d bytes, more than %d",
				errFromLimit, i+1, len(v), maxFromFieldBytes)
		}
		mbs, groups, err := parseFromField(fromUnfold(v), i, maxFromAddresses-len(res.Mailboxes))
		if err != nil {
			if len(values) > 1 {
				return fromResult{}, fmt.Errorf("From field %d %q: %w", i+1, fromClip(v), err)
			}
			return fromResult{}, fmt.Errorf("From %q: %w", fromClip(v), err)
		}
		res.Mailboxes = append(res.Mailboxes, mbs...)
		res.Groups += groups
	}
	if len(res.Mailboxes) == 0 {
		return fromResult{}, errNoMailbox
	}
	return res, nil
}

// parseFromField reads one unfolded From field with net/mail and with the
// lenient scanner, as described at the top of this file. limit is the
// number of mailboxes still allowed.
func parseFromField(s string, field, limit int) ([]fromMailbox, int, error) {
	if limit > 0 {
		if mb, ok := fromSimple(s, field); ok {
			return []fromMailbox{mb}, 0, nil
		}
	}
	return parseFromFieldBoth(s, field, limit)
}

// parseFromFieldBoth is parseFromField without the shortcut of fromSimple.
func parseFromFieldBoth(s string, field, limit int) ([]fromMailbox, int, error) {
	lax, groups, laxErr := fromScan(s, field, limit)
	if errors.Is(laxErr, errFromLimit) {
		return nil, 0, laxErr // spare net/mail thousands of addresses
	}

	p := mail.AddressParser{WordDecoder: fromWordDecoder}
	addrs, err := p.ParseList(s)
	if err != nil {
		// net/mail does not read it: the scanner's reading, if any, is
		// all there is.
		if laxErr != nil {
			return nil, 0, laxErr
		}
		for i := range lax {
			lax[i].Lenient = true
		}
		return lax, groups, nil
	}
	if len(addrs) > limit {
		return nil, 0, fmt.Errorf("%w: more than %d mailboxes", errFromLimit, maxFromAddresses)
	}
	mbs := make([]fromMailbox, 0, len(addrs))
	for _, a := range addrs {
		d, err := fromMailDomain(a.Address)
		if err != nil {
			return nil, 0, err
		}
		mbs = append(mbs, fromMailbox{
			Name:    strings.ToValidUTF8(a.Name, "\uFFFD"),
			Address: a.Address,
			Domain:  d,
			Field:   field,
		})
	}
	// The two parsers must agree. A disagreement is a bug in one of them
	// or an input crafted to be read two ways; either way, refuse.
	if laxErr != nil {
		return nil, 0, fmt.Errorf("%w: read by net/mail but not by the lenient scanner: %v", errFromSyntax, laxErr)
	}
	if !fromSameDomains(mbs, lax) {
		return nil, 0, fmt.Errorf("%w: net/mail and the lenient scanner disagree", errFromSyntax)
	}
	return mbs, groups, nil
}

// fromMailDomain returns the normalized domain of an addr-spec returned by
// net/mail: local part unquoted (it may hold "@"), "@", then a dot-atom or
// a domain literal. A domain never holds "@" except in a literal, which is
// refused anyway, so the last "@" splits.
func fromMailDomain(addr string) (string, error) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return "", fmt.Errorf("%w: %q has no domain", errFromDomain, fromClip(addr))
	}
	return fromNormalize(addr[i+1:])
}

// fromNormalize checks and normalizes a domain as written in an address.
func fromNormalize(d string) (string, error) {
	switch {
	case d == "":
		return "", fmt.Errorf("%w: empty domain", errFromDomain)
	case d[0] == '[' || strings.HasSuffix(d, "]"):
		return "", fmt.Errorf("%w: domain literal %q", errFromDomain, fromClip(d))
	}
	n, err := dmarc.NormalizeDomain(d)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errFromDomain, err)
	}
	return n, nil
}

// fromSameDomains reports whether two readings found the same domains in
// the same order.
func fromSameDomains(a, b []fromMailbox) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Domain != b[i].Domain {
			return false
		}
	}
	return true
}

// fromWordDecoder decodes RFC 2047 encoded words in display names. It
// knows every charset of the IANA registry that x/text implements; words
// in other charsets make net/mail give up, and the lenient scanner then
// keeps them undecoded. Display names are informational only.
var fromWordDecoder = &mime.WordDecoder{CharsetReader: fromCharsetReader}

// fromCharsetReader is the mime.WordDecoder CharsetReader: utf-8,
// iso-8859-1 and us-ascii never reach it.
func fromCharsetReader(charset string, input io.Reader) (io.Reader, error) {
	enc, err := ianaindex.MIME.Encoding(charset)
	if err != nil {
		return nil, err
	}
	if enc == nil { // registered name that x/text does not implement
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}
	return enc.NewDecoder().Reader(input), nil
}

// fromUnfold undoes header folding (RFC 5322 §2.2.3): a line break
// followed by white space is removed. A line break that is not (the MTA
// should never pass one) becomes a space, so that it cannot glue two
// tokens into one.
func fromUnfold(s string) string {
	if strings.IndexAny(s, "\r\n") < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
			continue
		}
		j := i
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		if j == len(s) || (s[j] != ' ' && s[j] != '\t') {
			b.WriteByte(' ')
		}
		i = j - 1
	}
	return b.String()
}

// fromScan is the lenient scanner. It walks the field once, keeping track
// of quoted strings, nested comments and angle brackets, and cuts it into
// elements at "," and ";" outside all three; ":" outside all three opens
// a group (its name is dropped) and the next ";" closes it. Each element
// is then read by fromScanElement. It returns the mailboxes with a
// domain, the number of groups, or the first error.
//
// Unlike net/mail it accepts an element holding no "@" and no "<" (a
// piece of a display name cut by an unquoted comma, "Doe, John <j@x>"):
// it has no address and is skipped, unless it hides an "@" in a quoted
// string (`"admin@paypal.com", evil@attacker.example` is refused, as a
// reader may show the quoted text as an address). Comments are comments
// wherever they are, "@" or not.
func fromScan(s string, field, limit int) ([]fromMailbox, int, error) {
	var (
		mbs     []fromMailbox
		groups  int
		depth   int  // comment nesting
		inQuote bool // in a quoted string
		inAngle bool // between "<" and ">"
		inGroup bool // after a group's ":", before its ";"
		e       fromElement
	)
	e.reset(0)
	end := func(i int) error {
		m, ok, err := e.read(s, i)
		if err != nil {
			return err
		}
		if ok {
			if len(mbs) >= limit {
				return fmt.Errorf("%w: more than %d mailboxes", errFromLimit, maxFromAddresses)
			}
			m.Field = field
			mbs = append(mbs, m)
		}
		e.reset(i + 1)
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			switch c {
			case '\\':
				i++ // quoted-pair
			case '"':
				inQuote = false
			case '@':
				switch {
				case inAngle: // a quoted local part
				case e.angle >= 0:
					e.atAfter = true
				default:
					e.atHidden = true
				}
			}
		case depth > 0:
			switch c {
			case '\\':
				i++ // quoted-pair
			case '(':
				depth++
			case ')':
				depth--
			}
		default:
			switch c {
			case '"':
				inQuote = true
			case '(':
				depth = 1
			case ')':
				return nil, 0, fmt.Errorf("%w: unbalanced %q", errFromSyntax, ")")
			case '\\':
				return nil, 0, fmt.Errorf("%w: backslash outside a quoted string", errFromSyntax)
			case '<':
				if inAngle {
					return nil, 0, fmt.Errorf("%w: %q inside an angle-addr", errFromSyntax, "<")
				}
				if e.angle >= 0 {
					return nil, 0, fmt.Errorf("%w: two angle-addrs in one mailbox", errFromSyntax)
				}
				inAngle = true
				e.angle = i
			case '>':
				if !inAngle {
					return nil, 0, fmt.Errorf("%w: %q without %q", errFromSyntax, ">", "<")
				}
				inAngle = false
				e.angleEnd = i
			case '@':
				if inAngle {
					break
				}
				if e.angle >= 0 {
					e.atAfter = true
				} else {
					e.atBefore = true
				}
			case ',':
				if !inAngle {
					if err := end(i); err != nil {
						return nil, 0, err
					}
				}
			case ';':
				if !inAngle {
					if err := end(i); err != nil {
						return nil, 0, err
					}
					inGroup = false
				}
			case ':':
				if inAngle {
					break // obs-route
				}
				if inGroup {
					return nil, 0, fmt.Errorf("%w: group inside a group", errFromSyntax)
				}
				if e.atBefore || e.angle >= 0 {
					return nil, 0, fmt.Errorf("%w: %q after an address", errFromSyntax, ":")
				}
				groups++
				inGroup = true
				e.reset(i + 1) // the group's name is a display name: dropped
			}
		}
	}
	switch {
	case inQuote:
		return nil, 0, fmt.Errorf("%w: unterminated quoted string", errFromSyntax)
	case depth > 0:
		return nil, 0, fmt.Errorf("%w: unterminated comment", errFromSyntax)
	}
	if inAngle {
		e.angleEnd = len(s) // "Name <user@example.com": lenient
	}
	// A group missing its ";" ends with the field.
	if err := end(len(s)); err != nil {
		return nil, 0, err
	}
	return mbs, groups, nil
}

// fromElement is what fromScan records about the element being scanned.
type fromElement struct {
	start    int  // offset of the element in the field
	angle    int  // offset of its "<", or -1
	angleEnd int  // offset of its ">", or of the field's end if unclosed
	atBefore bool // "@" outside quotes and comments, and before any "<"
	atAfter  bool // "@" outside comments after the angle-addr
	atHidden bool // "@" in a quoted string, no angle-addr yet
}

func (e *fromElement) reset(start int) {
	*e = fromElement{start: start, angle: -1, angleEnd: -1}
}

// read reads the element s[e.start:end]: a name-addr (anything, then one
// angle-addr, then text without "@"), a bare addr-spec, or a piece of
// display name without an address. ok is false for the latter.
//
// A name-addr's display name may hold an unquoted "@": RFC 5322 forbids
// it, but broken software writes "john@example.com <john@example.com>"
// all the time, and the address of a name-addr is its angle-addr, which
// is also what mail readers show as the address. So
// `evil@attacker.example <admin@paypal.com>` is read as paypal.com (and
// fails DMARC), and `admin@paypal.com <evil@attacker.example>` as
// attacker.example, exactly like its quoted form
// `"admin@paypal.com" <evil@attacker.example>`: a display name never
// counts. An "@" after the angle-addr, outside a comment, is refused: the
// element would then carry two candidate addresses.
func (e *fromElement) read(s string, end int) (m fromMailbox, ok bool, err error) {
	if e.angle < 0 {
		if !e.atBefore {
			if e.atHidden {
				return m, false, fmt.Errorf("%w: an address-like quoted string without an address", errFromSyntax)
			}
			return m, false, nil // empty, or a piece of display name
		}
		local, domain, err := fromAddrSpec(s[e.start:end])
		if err != nil {
			return m, false, err
		}
		m.Address = local + "@" + domain
		m.Domain, err = fromNormalize(domain)
		return m, err == nil, err
	}
	if e.atAfter {
		return m, false, fmt.Errorf("%w: an address after the angle-addr", errFromSyntax)
	}
	spec := s[e.angle+1 : e.angleEnd]
	if strings.TrimLeft(spec, " \t") == "" {
		return m, false, fmt.Errorf("%w: null address <>", errNoMailbox)
	}
	local, domain, err := fromAddrSpec(spec)
	if err != nil {
		return m, false, err
	}
	m.Address = local + "@" + domain
	m.Domain, err = fromNormalize(domain)
	if err != nil {
		return m, false, err
	}
	m.Name = fromDisplayName(s[e.start:e.angle])
	return m, true, nil
}

// fromAddrSpec splits an addr-spec, with optional CFWS anywhere and an
// optional obsolete route ("@relay1,@relay2:"), into its unquoted local
// part and its domain, white space around dots removed. It refuses a
// missing or doubled "@", an empty local part, and anything between words
// but dots and comments.
func fromAddrSpec(s string) (local, domain string, err error) {
	s = strings.Trim(fromStripComments(s), " \t")
	if strings.HasPrefix(s, "@") { // obs-route, ignored like every reader does
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return "", "", fmt.Errorf("%w: address begins with %q", errFromSyntax, "@")
		}
		for _, hop := range strings.Split(s[:i], ",") {
			hop = strings.Trim(hop, " \t")
			if hop != "" && (hop[0] != '@' || strings.ContainsAny(hop[1:], "@\"")) {
				return "", "", fmt.Errorf("%w: bad route %q", errFromSyntax, fromClip(s[:i]))
			}
		}
		s = strings.Trim(s[i+1:], " \t")
	}
	at, n, inQuote := -1, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '@' && !inQuote:
			at = i
			n++
		}
	}
	switch {
	case inQuote: // cannot happen after fromScan; kept for safety
		return "", "", fmt.Errorf("%w: unterminated quoted string", errFromSyntax)
	case n == 0:
		return "", "", fmt.Errorf("%w: address %q has no domain", errFromDomain, fromClip(s))
	case n > 1:
		return "", "", fmt.Errorf("%w: %d %q in one address", errFromSyntax, n, "@")
	}
	local, ok := fromSqueeze(s[:at])
	if !ok || local == "" {
		return "", "", fmt.Errorf("%w: bad local part %q", errFromSyntax, fromClip(s[:at]))
	}
	domain, ok = fromSqueeze(s[at+1:])
	if !ok {
		return "", "", fmt.Errorf("%w: bad domain %q", errFromDomain, fromClip(s[at+1:]))
	}
	return fromUnquote(local), domain, nil
}

// fromSqueeze removes the white space around the words of a local part or
// domain and around the dots between them (obs-local-part, obs-domain).
// It reports false if white space separates two words with no dot, or if
// a special, a control character or a quote (in a domain) shows up
// outside quotes.
func fromSqueeze(s string) (string, bool) {
	s = strings.Trim(s, " \t")
	var b strings.Builder
	inQuote, space := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inQuote {
			b.WriteByte(c)
			switch c {
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			case '"':
				inQuote = false
			}
			continue
		}
		switch {
		case c == ' ' || c == '\t':
			space = true
			continue
		case c < 0x20 || c == 0x7f || strings.IndexByte("(),:;<>[]\\@", c) >= 0:
			return "", false
		}
		if space {
			// Only "word . word" may be spread out.
			last := b.String()
			if c != '.' && (last == "" || last[len(last)-1] != '.') {
				return "", false
			}
			space = false
		}
		if c == '"' {
			inQuote = true
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// fromStripComments replaces the comments outside quoted strings by a
// space. Quotes and comments are balanced (fromScan checked).
func fromStripComments(s string) string {
	if strings.IndexByte(s, '(') < 0 {
		return s
	}
	var b strings.Builder
	depth, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				inQuote = false
			}
		case depth > 0:
			switch c {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					b.WriteByte(' ')
				}
			}
		case c == '(':
			depth = 1
		default:
			if c == '"' {
				inQuote = true
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// fromUnquote removes the quotes and quoted-pair backslashes of s.
func fromUnquote(s string) string {
	if strings.IndexByte(s, '"') < 0 {
		return s
	}
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
		case inQuote && c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// fromDisplayName turns the raw text before an angle-addr into a display
// name for logs: comments dropped, quotes removed, white space collapsed,
// RFC 2047 words decoded when possible (left as they are otherwise),
// invalid UTF-8 replaced.
func fromDisplayName(raw string) string {
	name := strings.Join(strings.Fields(fromUnquote(fromStripComments(raw))), " ")
	if strings.Contains(name, "=?") {
		if d, err := fromWordDecoder.DecodeHeader(name); err == nil {
			name = d
		}
	}
	return strings.ToValidUTF8(name, "\uFFFD")
}

// fromClip shortens s for an error message.
func fromClip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
