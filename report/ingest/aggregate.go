package ingest

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/report"
)

// The formats an aggregate report is read as.
const (
	// FormatRFC7489 is RFC 7489 Appendix C: no namespace, pct, and the
	// shape nearly every receiver sends. The pre-RFC draft of the
	// dmarc.org wiki has the same elements and reads as this too.
	FormatRFC7489 = "rfc7489"
	// FormatRFC9990 is RFC 9990: the urn:ietf:params:xml:ns:dmarc-2.0
	// namespace, or no namespace but elements only RFC 9990 has
	// (generator, discovery_method, testing).
	FormatRFC9990 = "rfc9990"
	// FormatDraft is the namespace of the dmarc.org drafts,
	// http://dmarc.org/dmarc-xml/0.1 and 0.2.
	FormatDraft = "draft"
)

// The XML namespaces of the DMARC aggregate formats.
const (
	NamespaceRFC9990 = "urn:ietf:params:xml:ns:dmarc-2.0"
	namespaceDraft   = "http://dmarc.org/dmarc-xml/"
)

// Aggregate is one aggregate report as its sender wrote it, checked and
// normalised: enumerated words lower-cased, domains lower-cased, text
// trimmed. Absent optional values are "" (Pct: 100, the DMARC default).
type Aggregate struct {
	Format  string // FormatRFC7489, FormatRFC9990 or FormatDraft
	Version string // <version> as written, "" when absent (most reports)

	Org, Email, ExtraContact, ReportID string
	Begin, End                         time.Time // UTC
	Errors                             []string  // <error> elements
	Generator                          string    // RFC 9990

	// Policy is policy_published. RUA is never set.
	Policy report.Published

	Records []Record

	// Warnings lists what the report had that the RFC does not allow but
	// that was tolerated, each with its line: unknown words kept as
	// written, unknown elements skipped, bytes repaired, a missing
	// required element. Empty for a conforming report.
	Warnings []string
}

// Record is one <record>.
type Record struct {
	SourceIP netip.Addr // IPv4-mapped addresses unmapped, zones dropped
	Count    int64

	// policy_evaluated
	Disposition string // none, quarantine, reject, pass (RFC 9990)
	DKIM, SPF   string // pass, fail
	Reasons     []report.Override

	// identifiers
	HeaderFrom, EnvelopeFrom, EnvelopeTo string

	// auth_results, in document order. human_result is not kept.
	DKIMResults []report.DKIMResult
	SPFResults  []report.SPFResult
}

// Key identifies a report for idempotent import: the same report sent
// twice (re-sent, or reached us by two routes) has the same key. It is the
// reporting organisation (its contact e-mail when org_name is empty),
// lower-cased, and the report_id, as RFC 9990 §3.1.1 makes report_id
// unique per reporter.
func (a *Aggregate) Key() string {
	org := strings.ToLower(a.Org)
	if org == "" {
		org = strings.ToLower(a.Email)
	}
	return org + "\x00" + a.ReportID
}

// Messages returns the sum of the records' counts.
func (a *Aggregate) Messages() int64 {
	var n int64
	for i := range a.Records {
		n += a.Records[i].Count
	}
	return n
}

// Caps inside one document, beside Limits.
const (
	maxXMLDepth      = 64      // element nesting
	maxElementTokens = 20000   // XML tokens in one first-level element (a record with 100 DKIM results takes ~1,500)
	maxTextLen       = 1 << 16 // bytes kept of one element's text
)

// ParseAggregate reads one aggregate report, XML with or without a
// namespace. It returns the report, or an *Error (class ErrEmpty,
// ErrNotWellFormed, ErrDTD, ErrInvalid, ErrLimit, ErrUnsupported or
// ErrNotReport) and no report: nothing of a refused report is returned.
// It reads at most lim.MaxDecompressed bytes.
//
// Gzip-compressed input is decompressed transparently (with the Limits'
// compression caps); a zip archive, which may hold several reports, is
// refused with ErrUnsupported: use Walk or ParseMessage for those.
func ParseAggregate(r io.Reader, lim Limits) (*Aggregate, error) {
	lim = lim.withDefaults()
	br := bufio.NewReader(r)
	head, _ := br.Peek(4)
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return gunzipAggregate(br, lim)
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return nil, newErr(ErrUnsupported, 0, "a zip archive: read it with Walk or ParseMessage")
	}
	return parseAggregate(&cappedReader{r: br, n: lim.MaxDecompressed, what: "XML document"}, lim)
}

// cappedReader fails with a limitError once more than n bytes were read.
type cappedReader struct {
	r    io.Reader
	n    int64
	what string
	read int64
	err  error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.read >= c.n {
		// Probe one byte: exactly n bytes is fine.
		var one [1]byte
		k, err := io.ReadFull(c.r, one[:])
		if k == 0 {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return 0, err
		}
		c.err = &limitError{msg: c.what + " larger than " + size(c.n)}
		return 0, c.err
	}
	if int64(len(p)) > c.n-c.read {
		p = p[:c.n-c.read]
	}
	k, err := c.r.Read(p)
	c.read += int64(k)
	return k, err
}

func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// node is an element read whole: a record, report_metadata,
// policy_published. Names are local names, lower-cased.
type node struct {
	name  string
	space string
	line  int
	text  string
	kids  []*node
	stray string // non-space text beside child elements
}

type aggParser struct {
	d        *xml.Decoder
	in       *xmlInput
	lim      Limits
	w        warnings
	rootNS   string
	tokens   int
	tokenCap int
	sawText  bool
	scratch  [][]byte // text buffers by depth
}

func parseAggregate(r io.Reader, lim Limits) (*Aggregate, error) {
	in, err := prepareXML(r)
	if err != nil {
		return nil, classify(err, 0)
	}
	if in.empty {
		return nil, newErr(ErrEmpty, 0, "no content")
	}
	d := xml.NewDecoder(in.r)
	d.Strict = true
	d.CharsetReader = in.charsetReader
	p := &aggParser{d: d, in: in, lim: lim, tokenCap: maxElementTokens}
	a, err := p.document()
	if err != nil {
		return nil, err
	}
	if in.mislabeled {
		p.w.add(1, "declares encoding %q but is written in 8 bits; read as UTF-8", in.encoding)
	}
	if in.rep.bad > 0 {
		p.w.add(in.rep.badLine, "%d invalid byte sequence(s) or control character(s) replaced by U+FFFD", in.rep.bad)
	}
	a.Warnings = p.w.result()
	return a, nil
}

// classify turns an error met while reading the XML into an *Error.
func classify(err error, line int) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var le *limitError
	if errors.As(err, &le) {
		return newErr(ErrLimit, line, "%s", le.msg)
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return newErr(ErrNotWellFormed, se.Line, "%s", se.Msg)
	}
	var ce *corruptError
	if errors.As(err, &ce) {
		return &Error{Kind: ErrCorrupt, Msg: ce.Error(), Err: ce.err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return newErr(ErrNotWellFormed, line, "unexpected end of input")
	}
	if strings.HasPrefix(err.Error(), "xml: ") {
		// encoding/xml's own errors without a line (CharsetReader).
		return newErr(ErrUnsupported, line, "%s", strings.TrimPrefix(err.Error(), "xml: "))
	}
	return &Error{Kind: ErrIO, Line: line, Msg: err.Error(), Err: err}
}

func (p *aggParser) line() int {
	l, _ := p.d.InputPos()
	return l
}

// budget resets the token count: each first-level element may take up to
// n tokens. The white space and comments between them are not counted;
// they cost time in proportion to the input, not memory.
func (p *aggParser) budget(n int) {
	p.tokens = 0
	p.tokenCap = n
}

// token returns the next token, refusing DTDs and counting against the
// current token cap.
func (p *aggParser) token() (xml.Token, error) {
	t, err := p.d.Token()
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		return nil, classify(err, p.line())
	}
	p.tokens++
	if p.tokens > p.tokenCap {
		return nil, newErr(ErrLimit, p.line(), "more than %d XML tokens", p.tokenCap)
	}
	if dir, ok := t.(xml.Directive); ok {
		kind := "declaration"
		if f := strings.Fields(string(dir)); len(f) > 0 {
			kind = "<!" + f[0]
		}
		return nil, newErr(ErrDTD, p.line(), "%s refused: reports need no DTD, and refusing it rules out external entities and entity expansion", kind)
	}
	return t, nil
}

// document reads the prolog, the root and what follows it.
func (p *aggParser) document() (*Aggregate, error) {
	var wrapper *xml.StartElement
	wrapperLine := 0
	for {
		t, err := p.token()
		if err == io.EOF {
			if wrapper != nil {
				return nil, newErr(ErrNotReport, p.line(), "root element <%s> holds no <feedback>", wrapper.Name.Local)
			}
			if p.sawText {
				return nil, newErr(ErrNotReport, p.line(), "no XML element")
			}
			return nil, newErr(ErrEmpty, 0, "no XML element")
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) > 0 {
				p.sawText = true
			}
		case xml.StartElement:
			if strings.EqualFold(t.Name.Local, "feedback") {
				a, err := p.feedback(t)
				if err != nil {
					return nil, err
				}
				if wrapper != nil {
					p.w.add(wrapperLine, "report wrapped in a stray <%s> element, which was ignored", wrapper.Name.Local)
				}
				if err := p.epilog(wrapper != nil); err != nil {
					return nil, err
				}
				return a, nil
			}
			if wrapper != nil {
				return nil, newErr(ErrNotReport, p.line(), "root element <%s> holds <%s>, not <feedback>", wrapper.Name.Local, t.Name.Local)
			}
			// A stray element before <feedback> (seen: an unclosed
			// <xs:schema> start tag copied from the XSD). When
			// <feedback> is its first child, the meaning is clear.
			c := t.Copy()
			wrapper, wrapperLine = &c, p.line()
		case xml.EndElement:
			return nil, newErr(ErrNotReport, p.line(), "root element <%s> holds no <feedback>", t.Name.Local)
		}
	}
}

// epilog reads what follows </feedback>. The report is complete by then:
// what comes after (another element, text, broken XML, an unclosed
// wrapper) is ignored with a warning, not a refusal. Errors that are not
// the XML's (a limit crossed, a damaged container) still refuse.
func (p *aggParser) epilog(wrapped bool) error {
	p.budget(math.MaxInt) // nothing here is kept: only time, bounded by the size cap
	for {
		t, err := p.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind != ErrNotWellFormed {
				return err
			}
			if wrapped && strings.Contains(e.Msg, "unexpected EOF") {
				return nil // the wrapper was never closed: expected
			}
			p.w.add(e.Line, "after </feedback>: %s (ignored)", e.Msg)
			return nil
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) > 0 {
				p.w.add(p.line(), "text after </feedback> ignored")
				return p.drain()
			}
		case xml.StartElement:
			p.w.add(p.line(), "element <%s> after </feedback> ignored", t.Name.Local)
			return p.drain()
		case xml.EndElement:
			if !wrapped {
				return nil
			}
		}
	}
}

// drain reads the rest of the input without parsing it, so that a limit
// or a damaged container past the report is still noticed.
func (p *aggParser) drain() error {
	if _, err := io.Copy(io.Discard, p.in.r); err != nil {
		return classify(err, 0)
	}
	return nil
}

// ours reports whether an element belongs to the report rather than to an
// extension: no namespace, the root's, or one of the DMARC namespaces.
// RFC 9990 §3.1.1.4 requires extension elements to be namespaced.
func (p *aggParser) ours(space string) bool {
	return space == "" || space == p.rootNS || space == NamespaceRFC9990 || strings.HasPrefix(space, namespaceDraft)
}

func (p *aggParser) feedback(root xml.StartElement) (*Aggregate, error) {
	a := &Aggregate{}
	p.rootNS = root.Name.Space
	switch {
	case root.Name.Space == NamespaceRFC9990:
		a.Format = FormatRFC9990
	case strings.HasPrefix(root.Name.Space, namespaceDraft):
		a.Format = FormatDraft
	case root.Name.Space == "":
		a.Format = FormatRFC7489 // may turn RFC 9990 below
	default:
		a.Format = FormatRFC7489
		p.w.add(p.line(), "unknown namespace %q on <feedback>; read as RFC 7489", root.Name.Space)
	}
	var meta, policy, version *node
	records := 0
	only9990 := false // an element only RFC 9990 has
	for {
		t, err := p.token()
		if err == io.EOF {
			return nil, newErr(ErrNotWellFormed, p.line(), "unexpected end of input inside <feedback>")
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.EndElement:
			// Required elements.
			if meta == nil {
				return nil, newErr(ErrInvalid, p.line(), "no <report_metadata>")
			}
			if policy == nil {
				return nil, newErr(ErrInvalid, p.line(), "no <policy_published>")
			}
			if err := p.metadata(a, meta); err != nil {
				return nil, err
			}
			if err := p.policy(a, policy, &only9990); err != nil {
				return nil, err
			}
			if version != nil {
				a.Version = version.text
				if a.Version != "1.0" && a.Version != "2.0" {
					p.w.add(version.line, "version %q", a.Version)
				}
			}
			if a.Generator != "" {
				only9990 = true
			}
			if a.Format == FormatRFC7489 && p.rootNS == "" && only9990 {
				a.Format = FormatRFC9990
			}
			if records == 0 {
				p.w.add(p.line(), "no <record>: the report counts no messages")
			}
			var total int64
			for i := range a.Records {
				if a.Records[i].Count > math.MaxInt64-total {
					return nil, newErr(ErrInvalid, 0, "the counts overflow a 64-bit sum")
				}
				total += a.Records[i].Count
			}
			return a, nil
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" {
				p.w.add(p.line(), "stray text %q in <feedback> ignored", clip(s))
			}
		case xml.StartElement:
			line := p.line()
			p.budget(maxElementTokens)
			if !p.ours(t.Name.Space) {
				if err := p.skip(1); err != nil {
					return nil, err
				}
				continue
			}
			switch strings.ToLower(t.Name.Local) {
			case "version":
				n, err := p.element(t, 1)
				if err != nil {
					return nil, err
				}
				if version != nil {
					p.w.add(n.line, "<version> given again; the first kept")
					continue
				}
				version = n
			case "report_metadata":
				n, err := p.element(t, 1)
				if err != nil {
					return nil, err
				}
				if meta != nil {
					return nil, dup(n)
				}
				meta = n
			case "policy_published":
				n, err := p.element(t, 1)
				if err != nil {
					return nil, err
				}
				if policy != nil {
					return nil, dup(n)
				}
				policy = n
			case "extension":
				if err := p.skip(1); err != nil {
					return nil, err
				}
			case "record":
				records++
				if records > p.lim.MaxRecords {
					return nil, newErr(ErrLimit, line, "more than %d records", p.lim.MaxRecords)
				}
				n, err := p.element(t, 1)
				if err != nil {
					return nil, err
				}
				rec, err := p.record(n)
				if err != nil {
					return nil, err
				}
				a.Records = append(a.Records, rec)
			default:
				p.w.add(line, "unknown element <%s> in <feedback> ignored", t.Name.Local)
				if err := p.skip(1); err != nil {
					return nil, err
				}
			}
		}
	}
}

// element reads the element whose start tag was just read into a node.
// A leaf's text is usually one CharData token, taken as it is; in an
// element with children only non-space text is kept (as stray).
func (p *aggParser) element(start xml.StartElement, depth int) (*node, error) {
	if depth > maxXMLDepth {
		return nil, newErr(ErrLimit, p.line(), "elements nested deeper than %d", maxXMLDepth)
	}
	n := &node{name: lowerName(start.Name.Local), space: start.Name.Space, line: p.line()}
	// The text goes to a buffer per depth, reused from element to element.
	for len(p.scratch) <= depth {
		p.scratch = append(p.scratch, nil)
	}
	text := p.scratch[depth][:0]
	defer func() { p.scratch[depth] = text[:0] }()
	for {
		t, err := p.token()
		if err == io.EOF {
			return nil, newErr(ErrNotWellFormed, p.line(), "unexpected end of input inside <%s>", start.Name.Local)
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if !p.ours(t.Name.Space) {
				if err := p.skip(depth + 1); err != nil {
					return nil, err
				}
				continue
			}
			k, err := p.element(t, depth+1)
			if err != nil {
				return nil, err
			}
			if n.kids == nil {
				n.kids = make([]*node, 0, 4)
			}
			n.kids = append(n.kids, k)
		case xml.CharData:
			if (len(n.kids) > 0 || len(text) == 0) && isSpace(t) {
				continue // formatting
			}
			if len(text) <= maxTextLen {
				text = append(text, t...)
			}
		case xml.EndElement:
			s := string(bytes.TrimSpace(text))
			if len(n.kids) > 0 {
				n.stray = s
			} else {
				if len(s) > maxTextLen {
					p.w.add(n.line, "text of <%s> cut to %d bytes", n.name, maxTextLen)
					s = s[:maxTextLen]
				}
				n.text = s
			}
			return n, nil
		}
	}
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// lowerName lower-cases an element name, without allocating for the
// usual all-lower-case one.
func lowerName(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// skip reads past the element whose start tag was just read.
func (p *aggParser) skip(depth int) error {
	level := 1
	for level > 0 {
		if depth+level > maxXMLDepth {
			return newErr(ErrLimit, p.line(), "elements nested deeper than %d", maxXMLDepth)
		}
		t, err := p.token()
		if err == io.EOF {
			return newErr(ErrNotWellFormed, p.line(), "unexpected end of input")
		}
		if err != nil {
			return err
		}
		switch t.(type) {
		case xml.StartElement:
			level++
		case xml.EndElement:
			level--
		}
	}
	return nil
}

func dup(n *node) error {
	return newErr(ErrInvalid, n.line, "<%s> appears more than once: the report is ambiguous", n.name)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// descriptive lists the elements whose repetition changes no count,
// policy or identity: the first is kept and the others noted. Any other
// single-valued element given twice refuses the report.
var descriptive = map[string]bool{
	"extra_contact_info": true, "generator": true, "human_result": true, "comment": true, "version": true,
}

// picked holds the children scan found, by their position in its list.
type picked struct {
	names []string
	nodes [12]*node
}

func (m *picked) get(name string) *node {
	for i, n := range m.names {
		if n == name {
			return m.nodes[i]
		}
	}
	return nil
}

func (m *picked) text(name string) string {
	if n := m.get(name); n != nil {
		return n.text
	}
	return ""
}

// scan reads a container node's children. Each name in single (at most
// 12) may appear once (a second is an ambiguity and refuses the report);
// names in repeatable go to fn; unknown names are noted and skipped.
func (p *aggParser) scan(n *node, single []string, repeatable []string, fn func(k *node) error) (picked, error) {
	got := picked{names: single}
	if n.stray != "" {
		p.w.add(n.line, "stray text %q in <%s> ignored", clip(n.stray), n.name)
	}
	if n.text != "" && len(n.kids) == 0 && len(single)+len(repeatable) > 0 {
		p.w.add(n.line, "text %q in <%s>, which holds elements, ignored", clip(n.text), n.name)
	}
next:
	for _, k := range n.kids {
		for i, s := range single {
			if k.name == s {
				if got.nodes[i] != nil {
					if descriptive[s] {
						p.w.add(k.line, "<%s> given again; the first kept", k.name)
						continue next
					}
					return got, dup(k)
				}
				got.nodes[i] = k
				if len(k.kids) > 0 {
					p.w.add(k.line, "elements inside <%s> ignored", k.name)
				}
				continue next
			}
		}
		for _, s := range repeatable {
			if k.name == s {
				if err := fn(k); err != nil {
					return got, err
				}
				continue next
			}
		}
		p.w.add(k.line, "unknown element <%s> in <%s> ignored", k.name, n.name)
	}
	return got, nil
}

func (p *aggParser) metadata(a *Aggregate, n *node) error {
	var dr *node
	m, err := p.scan(n, []string{"org_name", "email", "extra_contact_info", "report_id", "generator"},
		[]string{"date_range", "error"}, func(k *node) error {
			switch k.name {
			case "date_range":
				if dr != nil {
					return dup(k)
				}
				dr = k
			case "error":
				if k.text != "" {
					a.Errors = append(a.Errors, k.text)
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	a.Org = m.text("org_name")
	a.Email = m.text("email")
	a.ExtraContact = m.text("extra_contact_info")
	a.ReportID = m.text("report_id")
	a.Generator = m.text("generator")
	if a.ReportID == "" {
		return newErr(ErrInvalid, n.line, "no report_id: the report cannot be told from others")
	}
	if a.Org == "" {
		p.w.add(n.line, "org_name empty")
		if a.Email == "" {
			return newErr(ErrInvalid, n.line, "neither org_name nor email: the reporter is unknown")
		}
	}
	if a.Email == "" {
		p.w.add(n.line, "email empty")
	}
	if dr == nil {
		return newErr(ErrInvalid, n.line, "no date_range")
	}
	d, err := p.scan(dr, []string{"begin", "end"}, nil, nil)
	if err != nil {
		return err
	}
	begin, err := timestamp(d, "begin", dr)
	if err != nil {
		return err
	}
	end, err := timestamp(d, "end", dr)
	if err != nil {
		return err
	}
	if end < begin {
		return newErr(ErrInvalid, dr.line, "date_range ends (%d) before it begins (%d)", end, begin)
	}
	a.Begin, a.End = time.Unix(begin, 0).UTC(), time.Unix(end, 0).UTC()
	return nil
}

func timestamp(m picked, name string, parent *node) (int64, error) {
	n := m.get(name)
	if n == nil {
		return 0, newErr(ErrInvalid, parent.line, "date_range has no <%s>", name)
	}
	v, err := strconv.ParseInt(n.text, 10, 64)
	if err != nil || v < 0 || v > 1<<40 {
		return 0, newErr(ErrInvalid, n.line, "<%s> %q is not a time in seconds since 1970", name, clip(n.text))
	}
	return v, nil
}

var (
	alignWords       = []string{"r", "s"}
	policyWords      = []string{"none", "quarantine", "reject"}
	dispositionWords = []string{"none", "quarantine", "reject", "pass"}
	dmarcWords       = []string{"pass", "fail"}
	discoveryWords   = []string{"psl", "treewalk"}
	dkimWords        = []string{"none", "pass", "fail", "policy", "neutral", "temperror", "permerror"}
	spfWords         = []string{"none", "neutral", "pass", "fail", "softfail", "policy", "temperror", "permerror"}
	scopeWords       = []string{"mfrom", "helo"}
	reasonWords      = []string{"forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy", "policy_test_mode", "other"}
)

// word lower-cases an enumerated value; a word outside the list is kept
// (lower-cased) and noted, so that no data is lost nor passes unseen.
func (p *aggParser) word(n *node, allowed []string) string {
	if n == nil || n.text == "" {
		return ""
	}
	w := strings.ToLower(n.text)
	for _, a := range allowed {
		if w == a {
			return w
		}
	}
	p.w.add(n.line, "<%s> %q is not one of %s; kept as written", n.name, clip(w), strings.Join(allowed, ", "))
	return w
}

func domain(s string) string {
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

func (p *aggParser) policy(a *Aggregate, n *node, only9990 *bool) error {
	m, err := p.scan(n, []string{"domain", "adkim", "aspf", "p", "sp", "np", "pct", "fo", "testing", "discovery_method"}, nil, nil)
	if err != nil {
		return err
	}
	pol := &a.Policy
	pol.Domain = domain(m.text("domain"))
	if pol.Domain == "" {
		return newErr(ErrInvalid, n.line, "policy_published has no domain: the report is about no one")
	}
	pol.ADKIM = p.word(m.get("adkim"), alignWords)
	pol.ASPF = p.word(m.get("aspf"), alignWords)
	pol.P = p.word(m.get("p"), policyWords)
	if pol.P == "" {
		p.w.add(n.line, "policy_published has no <p>")
	}
	pol.SP = p.word(m.get("sp"), policyWords)
	pol.NP = p.word(m.get("np"), policyWords)
	pol.FO = m.text("fo")
	pol.Pct = 100
	if k := m.get("pct"); k != nil && k.text != "" {
		v, err := strconv.Atoi(k.text)
		if err != nil || v < 0 || v > 100 {
			p.w.add(k.line, "<pct> %q is not 0 to 100; read as 100", clip(k.text))
		} else {
			pol.Pct = v
		}
	}
	if k := m.get("testing"); k != nil {
		*only9990 = true
		switch strings.ToLower(k.text) {
		case "y":
			pol.Testing = true
		case "n", "":
		default:
			p.w.add(k.line, "<testing> %q is neither y nor n; read as n", clip(k.text))
		}
	}
	if k := m.get("discovery_method"); k != nil {
		*only9990 = true
		pol.DiscoveryMethod = p.word(k, discoveryWords)
	}
	return nil
}

func (p *aggParser) record(n *node) (Record, error) {
	var rec Record
	var row, ids, auth *node
	_, err := p.scan(n, nil, []string{"row", "identifiers", "auth_results"}, func(k *node) error {
		var slot **node
		switch k.name {
		case "row":
			slot = &row
		case "identifiers":
			slot = &ids
		case "auth_results":
			slot = &auth
		}
		if *slot != nil {
			return dup(k)
		}
		*slot = k
		return nil
	})
	if err != nil {
		return rec, err
	}
	if row == nil {
		return rec, newErr(ErrInvalid, n.line, "record has no <row>")
	}

	// row
	var pe *node
	m, err := p.scan(row, []string{"source_ip", "count"}, []string{"policy_evaluated"}, func(k *node) error {
		if pe != nil {
			return dup(k)
		}
		pe = k
		return nil
	})
	if err != nil {
		return rec, err
	}
	ipn := m.get("source_ip")
	if ipn == nil || ipn.text == "" {
		return rec, newErr(ErrInvalid, row.line, "row has no source_ip")
	}
	ip, err := parseIP(ipn.text)
	if err != nil {
		return rec, newErr(ErrInvalid, ipn.line, "source_ip %q is not an IP address", clip(ipn.text))
	}
	rec.SourceIP = ip
	cn := m.get("count")
	if cn == nil || cn.text == "" {
		return rec, newErr(ErrInvalid, row.line, "row has no count")
	}
	c, err := strconv.ParseInt(cn.text, 10, 64)
	if err != nil || c < 0 {
		return rec, newErr(ErrInvalid, cn.line, "count %q is not a whole number of messages", clip(cn.text))
	}
	rec.Count = c
	if pe == nil {
		p.w.add(row.line, "row has no policy_evaluated")
	} else {
		m, err := p.scan(pe, []string{"disposition", "dkim", "spf"}, []string{"reason"}, func(k *node) error {
			r, err := p.scan(k, []string{"type", "comment"}, nil, nil)
			if err != nil {
				return err
			}
			o := report.Override{Type: p.word(r.get("type"), reasonWords), Comment: r.text("comment")}
			if o.Type == "" && o.Comment == "" {
				p.w.add(k.line, "empty <reason> ignored")
				return nil
			}
			if o.Type == "" {
				p.w.add(k.line, "<reason> without a type")
			}
			rec.Reasons = append(rec.Reasons, o)
			return nil
		})
		if err != nil {
			return rec, err
		}
		rec.Disposition = p.word(m.get("disposition"), dispositionWords)
		rec.DKIM = p.word(m.get("dkim"), dmarcWords)
		rec.SPF = p.word(m.get("spf"), dmarcWords)
	}

	// identifiers
	if ids == nil {
		p.w.add(n.line, "record has no identifiers")
	} else {
		m, err := p.scan(ids, []string{"header_from", "envelope_from", "envelope_to"}, nil, nil)
		if err != nil {
			return rec, err
		}
		rec.HeaderFrom = domain(m.text("header_from"))
		rec.EnvelopeFrom = domain(m.text("envelope_from"))
		rec.EnvelopeTo = domain(m.text("envelope_to"))
		if rec.HeaderFrom == "" {
			p.w.add(ids.line, "identifiers have no header_from")
		}
	}

	// auth_results
	if auth == nil {
		p.w.add(n.line, "record has no auth_results")
		return rec, nil
	}
	_, err = p.scan(auth, nil, []string{"dkim", "spf"}, func(k *node) error {
		switch k.name {
		case "dkim":
			m, err := p.scan(k, []string{"domain", "selector", "result", "human_result"}, nil, nil)
			if err != nil {
				return err
			}
			r := report.DKIMResult{
				Domain:   domain(m.text("domain")),
				Selector: m.text("selector"),
				Result:   p.word(m.get("result"), dkimWords),
			}
			if r == (report.DKIMResult{}) {
				p.w.add(k.line, "empty <dkim> result ignored")
				return nil
			}
			rec.DKIMResults = append(rec.DKIMResults, r)
		case "spf":
			m, err := p.scan(k, []string{"domain", "scope", "result", "human_result"}, nil, nil)
			if err != nil {
				return err
			}
			r := report.SPFResult{
				Domain: domain(m.text("domain")),
				Scope:  p.word(m.get("scope"), scopeWords),
				Result: p.word(m.get("result"), spfWords),
			}
			if r == (report.SPFResult{}) {
				p.w.add(k.line, "empty <spf> result ignored")
				return nil
			}
			rec.SPFResults = append(rec.SPFResults, r)
		}
		return nil
	})
	return rec, err
}

// parseIP reads an IPv4 or IPv6 address, compressed or not, tolerating
// brackets; IPv4-mapped IPv6 addresses become IPv4 and zones are dropped.
func parseIP(s string) (netip.Addr, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ip, err
	}
	return ip.Unmap().WithZone(""), nil
}
