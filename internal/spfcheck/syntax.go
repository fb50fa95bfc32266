package spfcheck

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// syntaxError is the error of an SPF record that does not follow the
// grammar of RFC 7208 §12. It makes the result permerror wherever in the
// record it is, even after a mechanism that matched (§4.6).
//
// It is deliberately not a *net.DNSError: blitiri.com.ar/go/spf reads any
// other error from the resolver as a permanent one, which is what makes
// its evaluation permerror.
type syntaxError struct {
	domain string // where the record was found
	term   string // the term at fault, "" for the record as a whole
	reason string
}

func (e *syntaxError) Error() string {
	if e.term == "" {
		return fmt.Sprintf("SPF record at %s: %s", e.domain, e.reason)
	}
	return fmt.Sprintf("SPF record at %s: term %q: %s", e.domain, e.term, e.reason)
}

// isSPFRecord reports whether a TXT record is an SPF record: it starts with
// the version "v=spf1" (case-insensitive), followed by a space or nothing
// (RFC 7208 §4.5). This is the rule blitiri.com.ar/go/spf selects records
// by, so that both agree on which record is checked.
func isSPFRecord(txt string) bool {
	const version = "v=spf1"
	return len(txt) >= len(version) && strings.EqualFold(txt[:len(version)], version) &&
		(len(txt) == len(version) || txt[len(version)] == ' ')
}

// checkRecord returns the first syntax error of an SPF record (which
// isSPFRecord accepted), as a *syntaxError for domain, or nil if the record
// follows the grammar of RFC 7208 §12:
//
//   - only printable ASCII and spaces (the grammar has no room for
//     anything else, and the RFC 7208 test suite wants permerror);
//   - known mechanisms with their arguments: domain-specs that end with a
//     macro or a valid top label (§7.1), macros that parse and use only the
//     letters allowed outside "exp" text (§7.3), IP addresses of the right
//     family, CIDR lengths in range without leading zeros;
//   - modifiers with a name of the right shape, "redirect" and "exp" at
//     most once each (§6), unknown modifiers with a valid macro-string.
//
// It does not allocate unless the record is invalid.
func checkRecord(domain, record string) error {
	fail := func(term, reason string) error {
		return &syntaxError{domain: domain, term: term, reason: reason}
	}
	for i := 0; i < len(record); i++ {
		if c := record[i]; c != ' ' && (c < 0x21 || c > 0x7e) {
			return fail("", fmt.Sprintf("byte 0x%02x at offset %d: only printable ASCII is allowed", c, i))
		}
	}
	var redirects, exps int
	rest := record[len("v=spf1"):]
	for rest != "" {
		var term string
		term, rest, _ = strings.Cut(rest, " ")
		if term == "" {
			continue // several spaces
		}
		if name, value, ok := modifier(term); ok {
			var err error
			switch {
			case strings.EqualFold(name, "redirect"):
				redirects++
				if redirects > 1 {
					return fail(term, `"redirect" appears more than once`)
				}
				err = checkDomainSpec(value)
			case strings.EqualFold(name, "exp"):
				exps++
				if exps > 1 {
					return fail(term, `"exp" appears more than once`)
				}
				err = checkDomainSpec(value)
			default:
				err = checkMacroString(value, true)
			}
			if err != nil {
				return fail(term, err.Error())
			}
			continue
		}
		if err := checkDirective(term); err != nil {
			return fail(term, err.Error())
		}
	}
	return nil
}

// modifier splits a term of the form name "=" value, name being ALPHA *(
// ALPHA / DIGIT / "-" / "_" / "." ) (RFC 7208 §4.6.1, §12). ok is false
// for anything else, which must then be a directive.
func modifier(term string) (name, value string, ok bool) {
	if term == "" || !isAlpha(term[0]) {
		return "", "", false
	}
	for i := 1; i < len(term); i++ {
		switch c := term[i]; {
		case c == '=':
			return term[:i], term[i+1:], true
		case isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.':
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// checkDirective checks [ qualifier ] mechanism.
func checkDirective(term string) error {
	switch term[0] {
	case '+', '-', '~', '?':
		term = term[1:]
	}
	// The mechanism's name runs to its ":" or "/" (RFC 7208 §12).
	n := strings.IndexAny(term, ":/")
	if n < 0 {
		n = len(term)
	}
	name, args := term[:n], term[n:]
	switch {
	case strings.EqualFold(name, "all"):
		if args != "" {
			return errors.New(`"all" takes no argument`)
		}
	case strings.EqualFold(name, "include"), strings.EqualFold(name, "exists"):
		if !strings.HasPrefix(args, ":") {
			return fmt.Errorf("%q needs a domain", strings.ToLower(name))
		}
		return checkDomainSpec(args[1:])
	case strings.EqualFold(name, "a"), strings.EqualFold(name, "mx"):
		spec, err := trimDualCIDR(args)
		if err != nil {
			return err
		}
		switch {
		case spec == "":
			return nil
		case spec[0] != ':':
			return errors.New("unexpected text after the mechanism name")
		}
		return checkDomainSpec(spec[1:])
	case strings.EqualFold(name, "ptr"):
		if args == "" {
			return nil
		}
		if args[0] != ':' {
			return errors.New(`"ptr" takes no CIDR length`)
		}
		return checkDomainSpec(args[1:])
	case strings.EqualFold(name, "ip4"), strings.EqualFold(name, "ip6"):
		v6 := name[2] == '6'
		if !strings.HasPrefix(args, ":") {
			return fmt.Errorf("%q needs a network", strings.ToLower(name))
		}
		network, length, hasLength := strings.Cut(args[1:], "/")
		addr, err := netip.ParseAddr(network)
		switch {
		case err != nil || addr.Zone() != "":
			return fmt.Errorf("%q is not an IP address", network)
		case !v6 && !addr.Is4():
			return fmt.Errorf("%q is not an IPv4 address", network)
		case v6 && (!addr.Is6() || !strings.Contains(network, ":")):
			return fmt.Errorf("%q is not an IPv6 address", network)
		case hasLength:
			return checkCIDRLength(length, v6)
		}
	case name == "":
		return errors.New("empty mechanism")
	default:
		return fmt.Errorf("unknown mechanism %q", name)
	}
	return nil
}

// trimDualCIDR removes and checks the dual-cidr-length at the end of the
// arguments of "a" or "mx": [ "/" ip4-cidr-length ] [ "//" ip6-cidr-length ].
func trimDualCIDR(args string) (string, error) {
	if i := strings.LastIndex(args, "//"); i >= 0 && allDigits(args[i+2:]) {
		if err := checkCIDRLength(args[i+2:], true); err != nil {
			return "", err
		}
		args = args[:i]
	}
	if i := strings.LastIndexByte(args, '/'); i >= 0 && allDigits(args[i+1:]) {
		if err := checkCIDRLength(args[i+1:], false); err != nil {
			return "", err
		}
		args = args[:i]
	}
	return args, nil
}

// checkCIDRLength checks a prefix length: decimal without leading zeros,
// at most 32 for IPv4 or 128 for IPv6.
func checkCIDRLength(s string, v6 bool) error {
	limit := 32
	if v6 {
		limit = 128
	}
	if s == "" || len(s) > 3 || !allDigits(s) || (len(s) > 1 && s[0] == '0') {
		return fmt.Errorf("bad CIDR length %q", s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	if n > limit {
		return fmt.Errorf("CIDR length /%d is over %d", n, limit)
	}
	return nil
}

// checkDomainSpec checks domain-spec = macro-string domain-end, domain-end
// = ( "." toplabel [ "." ] ) / macro-expand (RFC 7208 §7.1). The macro
// letters c, r and t are refused: they are allowed only in "exp" text
// (§7.3), which is not a domain-spec.
func checkDomainSpec(s string) error {
	if s == "" {
		return errors.New("empty domain")
	}
	if err := checkMacroString(s, false); err != nil {
		return err
	}
	if endsWithMacro(s) {
		return nil
	}
	t := strings.TrimSuffix(s, ".")
	i := strings.LastIndexByte(t, '.')
	if i < 0 || !isTopLabel(t[i+1:]) {
		return fmt.Errorf("domain %q does not end with a macro or a valid top-level label", s)
	}
	return nil
}

// checkMacroString checks a macro-string: literal characters (printable
// ASCII but "%", which the caller checked) and macro-expands: "%%", "%_",
// "%-" or "%{" letter *DIGIT [ "r" ] *delimiter "}" (RFC 7208 §7.1). A
// digit transformer must not be zero (§7.3). The letters c, r and t are
// allowed only when exp is true.
func checkMacroString(s string, exp bool) error {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+1 == len(s) {
			return errors.New(`"%" at the end`)
		}
		i++
		switch s[i] {
		case '%', '_', '-':
			continue
		case '{':
		default:
			return fmt.Errorf(`"%%%c" is not a macro`, s[i])
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return errors.New("unterminated macro")
		}
		if err := checkMacro(s[i+1:i+end], exp); err != nil {
			return err
		}
		i += end
	}
	return nil
}

// checkMacro checks the inside of "%{...}".
func checkMacro(m string, exp bool) error {
	bad := func(why string) error { return fmt.Errorf("macro %%{%s}: %s", m, why) }
	if m == "" {
		return bad("no letter")
	}
	switch lowerASCII(m[0]) {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if !exp {
			return bad(`the letters c, r and t are allowed only in "exp" text`)
		}
	default:
		return bad("unknown letter")
	}
	rest := m[1:]
	digits := 0
	for digits < len(rest) && isDigit(rest[digits]) {
		digits++
	}
	if digits > 0 && strings.Trim(rest[:digits], "0") == "" {
		return bad("the number of parts must not be zero")
	}
	rest = rest[digits:]
	if rest != "" && lowerASCII(rest[0]) == 'r' {
		rest = rest[1:]
	}
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '.', '-', '+', ',', '/', '_', '=':
		default:
			return bad(fmt.Sprintf("%q is not a delimiter", rest[i]))
		}
	}
	return nil
}

// endsWithMacro reports whether a valid macro-string ends with a
// macro-expand.
func endsWithMacro(s string) bool {
	if strings.HasSuffix(s, "}") {
		if i := strings.LastIndex(s, "%{"); i >= 0 && !strings.Contains(s[i:len(s)-1], "}") {
			return !escapedPercent(s, i)
		}
	}
	n := len(s)
	return n >= 2 && s[n-2] == '%' && strings.IndexByte("%_-", s[n-1]) >= 0 && !escapedPercent(s, n-2)
}

// escapedPercent reports whether the "%" at s[i] is the second of a "%%".
func escapedPercent(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '%'; j-- {
		n++
	}
	return n%2 == 1
}

// isTopLabel checks toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum
// "-" *( alphanum / "-" ) alphanum ): letters, digits and inner hyphens, not
// all digits (RFC 7208 §7.1).
func isTopLabel(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	numeric := true
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case isAlpha(c), c == '-':
			numeric = false
		case isDigit(c):
		default:
			return false
		}
	}
	return !numeric
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
