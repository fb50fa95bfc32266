package dmarc

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// MaxRecordLen caps the length of a record Parse accepts. Real records are
// well under 1 KiB; the cap keeps a hostile 64 KiB TXT answer from costing
// more than a glance.
const MaxRecordLen = 8192

// maxURIs caps the rua and ruf lists; RFC 7489 §6.2 asks receivers to
// support at least two, and nobody needs more than a handful.
const maxURIs = 32

// ErrNotDMARC is wrapped by Parse when the text does not start with the tag
// v=DMARC1. Such TXT records are not DMARC records and discovery discards
// them silently (RFC 9989 §4.10 step 2), so they never cause permerror.
var ErrNotDMARC = errors.New("not a DMARC record")

// ErrUnusable is wrapped by Parse when the text is a DMARC record that
// cannot be applied: no valid p (or an invalid sp or np) and no valid rua to
// fall back on (RFC 7489 §6.6.3, RFC 9989 §4.10.1). Evaluation reports it as
// permerror.
var ErrUnusable = errors.New("unusable DMARC record")

// A ParseError describes what is wrong with a record and where.
type ParseError struct {
	Offset int    // byte offset in the record text
	Tag    string // the tag concerned, if any
	Msg    string
	Err    error // ErrNotDMARC or ErrUnusable
}

func (e *ParseError) Error() string {
	if e.Tag != "" {
		return fmt.Sprintf("%v: %s at offset %d (tag %s)", e.Err, e.Msg, e.Offset, e.Tag)
	}
	return fmt.Sprintf("%v: %s at offset %d", e.Err, e.Msg, e.Offset)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Severity grades a Problem.
type Severity uint8

// The severities, mildest first.
const (
	// Info notes something worth knowing that is not wrong.
	Info Severity = iota
	// Warning is something a domain owner should fix; the record still works.
	Warning
	// Error is something the record cannot be used with as written; a
	// fallback or default was applied.
	Error
)

// String returns "info", "warning" or "error".
func (s Severity) String() string {
	switch s {
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "info"
}

// MarshalText writes the severity as String does, for JSON output.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// A Problem is something Parse noticed about a record: a syntax error with
// the fallback it took, a duplicate, a tag the spec does not know.
type Problem struct {
	Severity Severity
	Offset   int    // byte offset in the record text
	Tag      string // tag name as written, lowercased; "" for the record
	Msg      string
}

func (p Problem) String() string {
	if p.Tag == "" {
		return fmt.Sprintf("%s at offset %d: %s", p.Severity, p.Offset, p.Msg)
	}
	return fmt.Sprintf("%s at offset %d (%s): %s", p.Severity, p.Offset, p.Tag, p.Msg)
}

// Tag is one tag=value pair as written in the record.
type Tag struct {
	Name   string // lowercased
	Value  string // as written, surrounding whitespace removed
	Offset int    // byte offset of the name
}

// A URI is one entry of rua or ruf.
type URI struct {
	Raw string // as written, including any size suffix
	// URL is the parsed URI without the size suffix.
	URL *url.URL
	// Address is the mailbox of a mailto: URI ("" for other schemes). Only
	// mailto: URIs are acted on.
	Address string
	// MaxSize is the "!size" limit in bytes, 0 for none. Kept in RFC 7489
	// mode only: RFC 9989 makes the suffix obsolete and reporters ignore it.
	MaxSize uint64
}

// Domain returns the domain part of a mailto: address, lowercased.
func (u URI) Domain() string {
	i := strings.LastIndexByte(u.Address, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(u.Address[i+1:])
}

// FailureOptions is the fo tag as a set of flags.
type FailureOptions uint8

// The fo values. The default is FO0.
const (
	FO0 FailureOptions = 1 << iota // report when all mechanisms fail to align
	FO1                            // report when any mechanism fails to align
	FOD                            // report DKIM signatures that fail
	FOS                            // report SPF failures
)

// String returns the tag value in canonical order, e.g. "1:d".
func (f FailureOptions) String() string {
	var parts []string
	for _, o := range []struct {
		bit FailureOptions
		s   string
	}{{FO0, "0"}, {FO1, "1"}, {FOD, "d"}, {FOS, "s"}} {
		if f&o.bit != 0 {
			parts = append(parts, o.s)
		}
	}
	return strings.Join(parts, ":")
}

// Record is a parsed DMARC policy record. Fields hold effective values:
// defaults filled in, invalid values replaced by their fallbacks, tags the
// spec does not know left at their zero value. Tags and Problems say what
// was written and what was wrong with it.
type Record struct {
	Spec Spec   // the spec the record was read under
	Raw  string // the record text

	P  Policy // effective p; PolicyNone when the rua fallback applied
	SP Policy // PolicyUnset when absent: p applies to subdomains
	NP Policy // PolicyUnset when absent or under RFC 7489

	ADKIM Alignment
	ASPF  Alignment

	// Pct is the sampling rate, 0–100 (RFC 7489; always 100 under RFC 9989).
	Pct int
	// Testing is t=y (RFC 9989): apply one level below the policy.
	Testing bool
	// PSD is the psd tag (RFC 9989).
	PSD PSD

	FO FailureOptions
	RF []string // RFC 7489 only; default ["afrf"]
	RI uint32   // RFC 7489 only; seconds, default 86400

	RUA []URI // syntactically valid URIs, in order
	RUF []URI

	// PFallback is true when p was missing or invalid (or sp/np invalid)
	// and the record is applied as p=none because it has a valid rua.
	PFallback bool

	Tags     []Tag
	Problems []Problem
}

// Tag returns the value of the named tag as written and whether it was
// present.
func (r *Record) Tag(name string) (string, bool) {
	for _, t := range r.Tags {
		if t.Name == name {
			return t.Value, true
		}
	}
	return "", false
}

// Worst returns the highest severity among the record's problems, and false
// when there are none.
func (r *Record) Worst() (Severity, bool) {
	worst, any := Info, false
	for _, p := range r.Problems {
		if !any || p.Severity > worst {
			worst, any = p.Severity, true
		}
	}
	return worst, any
}

// removedIn9989 are the RFC 7489 tags that RFC 9989 Appendix C.5.2 removed.
var removedIn9989 = map[string]string{
	"pct": "RFC 9989 removed pct (Appendix A.6); use t=y for testing",
	"rf":  "RFC 9989 removed rf; failure reports are AFRF only",
	"ri":  "RFC 9989 removed ri; aggregate reports cover whole days",
}

// addedIn9989 are the tags RFC 7489 does not know.
var addedIn9989 = map[string]string{
	"np":  "np is an RFC 9989 tag (from RFC 9091); RFC 7489 receivers ignore it",
	"psd": "psd is an RFC 9989 tag; RFC 7489 receivers ignore it",
	"t":   "t is an RFC 9989 tag; RFC 7489 receivers ignore it and read pct instead",
}

// Parse reads a DMARC record under spec. It returns an error wrapping
// ErrNotDMARC when the text does not begin with v=DMARC1, and one wrapping
// ErrUnusable when the record cannot be applied; in the second case the
// partial record is returned too, for diagnostics. Other syntax errors fall
// back to defaults and are listed in Record.Problems, as both RFCs require
// ("syntax errors in the remainder of the record MUST be discarded in favor
// of default values").
func Parse(txt string, spec Spec) (*Record, error) {
	r := &Record{Spec: spec, Raw: txt, Pct: 100, RI: 86400}
	p := parser{rec: r}
	if len(txt) > MaxRecordLen {
		// Read just enough to know whether it claims to be DMARC: an
		// over-long DMARC record is a permerror, other TXT is ignored.
		head, _, _ := strings.Cut(txt[:64], ";")
		if err := p.version(head, 0); err != nil {
			return nil, err
		}
		r.Raw = clip(txt)
		return r, &ParseError{Offset: MaxRecordLen, Msg: fmt.Sprintf("record is %d bytes, over the %d-byte limit", len(txt), MaxRecordLen), Err: ErrUnusable}
	}
	// One tag per ";" at most: the Tags kept in the record cache are
	// then allocated once, at their size.
	r.Tags = make([]Tag, 0, strings.Count(txt, ";")+1)
	if err := p.tags(txt); err != nil {
		return nil, err
	}
	p.apply()
	if err := p.finish(); err != nil {
		return r, err
	}
	return r, nil
}

// parser carries the state of one Parse call.
type parser struct {
	rec *Record
	// seen holds the tag names read, the first ones in an array: a
	// record has a dozen tags, and a map per Parse was half of what it
	// allocated.
	seen         [16]string
	nSeen        int
	seenMore     map[string]bool
	pSet, pValid bool
	pOffset      int
	badSub       string // "sp" or "np" when that tag was present but invalid
	badSubOffset int
}

// saw reports whether a tag named name was read before, and notes that it
// was.
func (p *parser) saw(name string) bool {
	for _, n := range p.seen[:p.nSeen] {
		if n == name {
			return true
		}
	}
	if p.seenMore[name] {
		return true
	}
	if p.nSeen < len(p.seen) {
		p.seen[p.nSeen] = name
		p.nSeen++
		return false
	}
	if p.seenMore == nil {
		p.seenMore = make(map[string]bool)
	}
	p.seenMore[name] = true
	return false
}

func (p *parser) problem(sev Severity, off int, tag, format string, args ...any) {
	p.rec.Problems = append(p.rec.Problems, Problem{Severity: sev, Offset: off, Tag: tag, Msg: fmt.Sprintf(format, args...)})
}

// isWSP reports RFC 5234 WSP: space and horizontal tab.
func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// trimWSP removes leading and trailing WSP and returns the offset of the
// first byte kept.
func trimWSP(s string, off int) (string, int) {
	i, j := 0, len(s)
	for i < j && isWSP(s[i]) {
		i++
	}
	for j > i && isWSP(s[j-1]) {
		j--
	}
	return s[i:j], off + i
}

// tags splits the text into tag=value pairs and checks the version tag.
func (p *parser) tags(txt string) error {
	off := 0
	first := true
	for off <= len(txt) {
		end := strings.IndexByte(txt[off:], ';')
		if end < 0 {
			end = len(txt) - off
		}
		part, at := trimWSP(txt[off:off+end], off)
		next := off + end + 1
		if first {
			if err := p.version(part, at); err != nil {
				return err
			}
			first = false
			off = next
			continue
		}
		off = next
		if part == "" {
			continue // "v=DMARC1;;" has an empty tag-spec: nothing to read
		}
		eq := strings.IndexByte(part, '=')
		if eq < 0 {
			p.problem(Warning, at, "", "%q is not a tag=value pair; ignored", clip(part))
			continue
		}
		name, _ := trimWSP(part[:eq], at)
		value, vat := trimWSP(part[eq+1:], at+eq+1)
		if !isAlpha(name) {
			p.problem(Warning, at, "", "%q is not a valid tag name; ignored", clip(name))
			continue
		}
		name = strings.ToLower(name)
		if p.saw(name) {
			p.problem(Warning, at, name, "duplicate tag; only the first is read")
			continue
		}
		bad := ""
		if value == "" {
			bad = "tag has no value; ignored"
		} else if i := badValueByte(value); i >= 0 {
			bad, vat = fmt.Sprintf("value contains byte 0x%02x, outside printable ASCII; ignored", value[i]), vat+i
		}
		if bad != "" {
			// An empty or unprintable p, sp or np is an invalid one, with
			// the same fallback as p=bogus.
			p.problem(Warning, vat, name, "%s", bad)
			if name == "p" {
				p.pSet, p.pOffset = true, vat
			}
			p.noteBadSub(name, vat)
			continue
		}
		p.rec.Tags = append(p.rec.Tags, Tag{Name: name, Value: value, Offset: at})
	}
	return nil
}

// version checks that the first tag is v=DMARC1: the tag name is an ABNF
// literal and so case-insensitive, the value is %s"DMARC1", case-sensitive.
func (p *parser) version(part string, at int) error {
	eq := strings.IndexByte(part, '=')
	if eq < 0 {
		return &ParseError{Offset: at, Msg: "record does not start with v=DMARC1", Err: ErrNotDMARC}
	}
	name, _ := trimWSP(part[:eq], at)
	value, vat := trimWSP(part[eq+1:], at+eq+1)
	if !strings.EqualFold(name, "v") {
		return &ParseError{Offset: at, Msg: "first tag is not v", Err: ErrNotDMARC}
	}
	if value != "DMARC1" {
		return &ParseError{Offset: vat, Tag: "v", Msg: fmt.Sprintf("version %q is not DMARC1", clip(value)), Err: ErrNotDMARC}
	}
	p.rec.Tags = append(p.rec.Tags, Tag{Name: "v", Value: value, Offset: at})
	p.saw("v")
	return nil
}

// noteBadSub remembers an invalid sp or np, which makes the record fall back
// like an invalid p does.
func (p *parser) noteBadSub(name string, off int) {
	if p.badSub != "" {
		return
	}
	if name == "sp" || (name == "np" && p.rec.Spec == RFC9989) {
		p.badSub, p.badSubOffset = name, off
	}
}

// apply turns the collected tags into effective values.
func (p *parser) apply() {
	r := p.rec
	for _, t := range r.Tags[1:] {
		if msg, ok := removedIn9989[t.Name]; ok && r.Spec == RFC9989 {
			p.problem(Warning, t.Offset, t.Name, "%s; ignored", msg)
			continue
		}
		if msg, ok := addedIn9989[t.Name]; ok && r.Spec == RFC7489 {
			p.problem(Info, t.Offset, t.Name, "%s", msg)
			continue
		}
		switch t.Name {
		case "p":
			p.pSet, p.pOffset = true, t.Offset
			r.P, p.pValid = parsePolicy(t.Value)
			if t.Offset != r.Tags[1].Offset {
				p.problem(Warning, t.Offset, t.Name, "p is not the tag after v; RFC 7489 requires that order and some receivers insist on it")
			}
			if !p.pValid {
				p.problem(Error, t.Offset, t.Name, "invalid policy %q (want none, quarantine or reject)", clip(t.Value))
			}
		case "sp", "np":
			pol, ok := parsePolicy(t.Value)
			if !ok {
				p.problem(Error, t.Offset, t.Name, "invalid policy %q (want none, quarantine or reject)", clip(t.Value))
				p.noteBadSub(t.Name, t.Offset)
				continue
			}
			if t.Name == "sp" {
				r.SP = pol
			} else {
				r.NP = pol
			}
		case "adkim", "aspf":
			a, ok := parseAlignment(t.Value)
			if !ok {
				p.problem(Warning, t.Offset, t.Name, "invalid alignment mode %q (want r or s); relaxed applies", clip(t.Value))
			}
			if t.Name == "adkim" {
				r.ADKIM = a
			} else {
				r.ASPF = a
			}
		case "pct":
			n, err := strconv.Atoi(t.Value)
			if !isDigits(t.Value, 3) || err != nil || n > 100 {
				p.problem(Warning, t.Offset, t.Name, "invalid percentage %q (want 0 to 100); 100 applies", clip(t.Value))
				continue
			}
			r.Pct = n
		case "t":
			switch strings.ToLower(t.Value) {
			case "y":
				r.Testing = true
			case "n":
			default:
				p.problem(Warning, t.Offset, t.Name, "invalid value %q (want y or n); n applies", clip(t.Value))
			}
		case "psd":
			switch strings.ToLower(t.Value) {
			case "y":
				r.PSD = PSDYes
			case "n":
				r.PSD = PSDNo
			case "u":
			default:
				p.problem(Warning, t.Offset, t.Name, "invalid value %q (want y, n or u); u applies", clip(t.Value))
			}
		case "fo":
			r.FO = p.failureOptions(t)
		case "rf":
			r.RF = p.reportFormats(t)
		case "ri":
			n, err := strconv.ParseUint(t.Value, 10, 32)
			if !isDigits(t.Value, 10) || err != nil {
				p.problem(Warning, t.Offset, t.Name, "invalid interval %q (want seconds); 86400 applies", clip(t.Value))
				continue
			}
			r.RI = uint32(n)
		case "rua":
			r.RUA = p.uris(t)
		case "ruf":
			r.RUF = p.uris(t)
		case "v":
			// A second v is caught as a duplicate before this point.
		default:
			p.problem(Info, t.Offset, t.Name, "unknown tag; ignored")
		}
	}
	if r.FO == 0 {
		r.FO = FO0
	}
	if r.Spec == RFC7489 && r.RF == nil {
		r.RF = []string{"afrf"}
	}
	if r.Spec == RFC9989 {
		r.RF, r.RI, r.Pct = nil, 0, 100
	}
}

// finish applies the p fallback: RFC 7489 §6.6.3 and RFC 9989 §4.10.1 treat
// a record with no valid p, or with an invalid sp or np, as p=none when it
// has at least one valid rua URI, and as unusable otherwise.
func (p *parser) finish() error {
	r := p.rec
	if p.pValid && p.badSub == "" {
		return nil
	}
	what, off, tag := "no p tag", len(r.Raw), "p"
	switch {
	case p.pSet && !p.pValid:
		what, off = "invalid p tag", p.pOffset
	case p.badSub != "":
		what, off, tag = "invalid "+p.badSub+" tag", p.badSubOffset, p.badSub
	}
	if len(r.RUA) == 0 {
		return &ParseError{Offset: off, Tag: tag, Msg: what + " and no valid rua to fall back on", Err: ErrUnusable}
	}
	r.P, r.SP, r.NP, r.PFallback = PolicyNone, PolicyUnset, PolicyUnset, true
	r.Testing = false
	p.problem(Error, off, tag, "%s; applied as p=none because the record has a valid rua", what)
	return nil
}

func parseAlignment(v string) (Alignment, bool) {
	switch strings.ToLower(v) {
	case "r":
		return Relaxed, true
	case "s":
		return Strict, true
	}
	return Relaxed, false
}

// failureOptions reads fo: a colon-separated list of 0, 1, d and s. An
// invalid list falls back to the default 0 as a whole, since a partial
// reading could ask for more reports than the owner wanted.
func (p *parser) failureOptions(t Tag) FailureOptions {
	var fo FailureOptions
	for _, v := range strings.Split(t.Value, ":") {
		v, _ = trimWSP(v, 0)
		var bit FailureOptions
		switch strings.ToLower(v) {
		case "0":
			bit = FO0
		case "1":
			bit = FO1
		case "d":
			bit = FOD
		case "s":
			bit = FOS
		default:
			p.problem(Warning, t.Offset, t.Name, "invalid failure option %q (want 0, 1, d or s); fo=0 applies", clip(v))
			return FO0
		}
		if fo&bit != 0 {
			p.problem(Warning, t.Offset, t.Name, "failure option %q repeated", v)
		}
		fo |= bit
	}
	if fo&FO0 != 0 && fo&FO1 != 0 {
		p.problem(Warning, t.Offset, t.Name, "fo values 0 and 1 are mutually exclusive; 1 applies")
		fo &^= FO0
	}
	return fo
}

// reportFormats reads the RFC 7489 rf list. Only afrf exists in practice;
// unknown formats are dropped and afrf applies if nothing is left.
func (p *parser) reportFormats(t Tag) []string {
	var out []string
	for _, v := range strings.Split(t.Value, ":") {
		v, _ = trimWSP(v, 0)
		v = strings.ToLower(v)
		if v == "afrf" || v == "iodef" {
			out = append(out, v)
			continue
		}
		p.problem(Warning, t.Offset, t.Name, "unknown report format %q; ignored", clip(v))
	}
	if len(out) == 0 {
		return []string{"afrf"}
	}
	return out
}

// uris reads a comma-separated rua or ruf list. Invalid URIs are dropped
// with a problem; the rest stay usable.
func (p *parser) uris(t Tag) []URI {
	var out []URI
	for _, raw := range strings.Split(t.Value, ",") {
		raw, _ = trimWSP(raw, 0)
		if raw == "" {
			p.problem(Warning, t.Offset, t.Name, "empty URI in list")
			continue
		}
		u, err := parseURI(raw, p.rec.Spec)
		if err != nil {
			p.problem(Warning, t.Offset, t.Name, "%v; ignored", err)
			continue
		}
		if u.Address == "" {
			p.problem(Warning, t.Offset, t.Name, "URI %q uses scheme %q; only mailto: is supported", clip(raw), u.URL.Scheme)
		}
		if p.rec.Spec == RFC9989 && strings.IndexByte(raw, '!') >= 0 {
			p.problem(Warning, t.Offset, t.Name, "the size limit in %q is obsolete under RFC 9989 and ignored", clip(raw))
		}
		if len(out) == maxURIs {
			p.problem(Warning, t.Offset, t.Name, "more than %d URIs; the rest are ignored", maxURIs)
			break
		}
		out = append(out, u)
	}
	return out
}

// parseURI reads one DMARC URI with its optional "!size" suffix.
func parseURI(raw string, spec Spec) (URI, error) {
	u := URI{Raw: raw}
	body := raw
	if i := strings.LastIndexByte(raw, '!'); i >= 0 {
		size, err := parseSize(raw[i+1:])
		if err != nil {
			return u, fmt.Errorf("URI %q: %v", clip(raw), err)
		}
		body = raw[:i]
		if spec == RFC7489 {
			u.MaxSize = size
		}
	}
	parsed, err := url.Parse(body)
	if err != nil || parsed.Scheme == "" || parsed.Opaque == "" && parsed.Host == "" {
		return u, fmt.Errorf("URI %q is not a valid absolute URI", clip(raw))
	}
	u.URL = parsed
	if !strings.EqualFold(parsed.Scheme, "mailto") {
		return u, nil
	}
	addr, err := url.PathUnescape(parsed.Opaque)
	if err != nil {
		return u, fmt.Errorf("URI %q: bad escape", clip(raw))
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || !isCanonical(lowerASCII(addr[at+1:])) {
		return u, fmt.Errorf("URI %q has no valid mailbox", clip(raw))
	}
	u.Address = addr
	return u, nil
}

// parseSize reads the digits and optional unit of a "!size" suffix.
func parseSize(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty size after '!'")
	}
	mult := uint64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	digits := s
	if mult != 1 {
		digits = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q after '!'", clip(s))
	}
	if n > (1<<64-1)/mult {
		return 0, fmt.Errorf("size %q after '!' overflows", clip(s))
	}
	return n * mult, nil
}

// isDigits reports whether s is 1 to max ASCII digits: the ABNF of pct
// (1*3DIGIT) and ri (1*DIGIT) allow no sign and no space.
func isDigits(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlpha(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// badValueByte returns the index of the first byte outside dmarc-value
// (%x20-3A / %x3C-7E, plus WSP inside lists), or -1.
func badValueByte(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return i
		}
	}
	return -1
}

// clip shortens a value for a message, so that a 64 KiB value does not
// become a 64 KiB log line.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
