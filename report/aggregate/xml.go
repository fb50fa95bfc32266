package aggregate

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dmarcd/dmarcd/report"
)

// errWriter remembers the first error of the writer under the buffer, so
// that a long report stops soon after w fails instead of being rendered to
// the end.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// xmlWriter writes the report by hand: the layout is fixed, the values are
// escaped by text, and nothing is allocated per record.
type xmlWriter struct {
	f       Format
	ew      errWriter
	bw      *bufio.Writer
	scratch []byte
}

func newXMLWriter(w io.Writer, f Format) *xmlWriter {
	x := &xmlWriter{f: f, ew: errWriter{w: w}, scratch: make([]byte, 0, 64)}
	x.bw = bufio.NewWriterSize(&x.ew, 32<<10)
	return x
}

func (x *xmlWriter) failed() bool { return x.ew.err != nil }

func (x *xmlWriter) flush() error {
	if err := x.bw.Flush(); err != nil {
		return err
	}
	return x.ew.err
}

// raw writes markup. Errors surface through errWriter and flush.
func (x *xmlWriter) raw(s string) { _, _ = x.bw.WriteString(s) }

// replacement stands for what XML 1.0 cannot carry: invalid UTF-8 and the
// control characters other than tab, newline and carriage return (these
// are not allowed even as character references), and, to keep consumers'
// dashboards sane, DEL and the C1 controls, which XML allows.
const replacement = "\uFFFD"

// text writes s as character data. &, < and > are escaped (> so that "]]>"
// cannot appear), carriage return as a reference (a literal one would be
// normalized away by the reader), and anything XML cannot carry becomes
// U+FFFD. The result is always well-formed, whatever s holds: names from
// DNS and headers are chosen by whoever sends the mail.
func (x *xmlWriter) text(s string) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			esc := ""
			switch {
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '&':
				esc = "&amp;"
			case c == '\r':
				esc = "&#xD;"
			case c == '\t' || c == '\n':
			case c < 0x20 || c == 0x7f:
				esc = replacement
			}
			if esc != "" {
				x.raw(s[start:i])
				x.raw(esc)
				start = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r <= 0x9f || r == 0xfffe || r == 0xffff {
			x.raw(s[start:i])
			x.raw(replacement)
			start = i + size
		}
		i += size
	}
	x.raw(s[start:])
}

// elem writes prefix, the escaped value and suffix: prefix is the
// indentation and opening tag, suffix the closing tag and newline.
func (x *xmlWriter) elem(prefix, value, suffix string) {
	x.raw(prefix)
	x.text(value)
	x.raw(suffix)
}

func (x *xmlWriter) int(prefix string, n int64, suffix string) {
	x.raw(prefix)
	x.scratch = strconv.AppendInt(x.scratch[:0], n, 10)
	_, _ = x.bw.Write(x.scratch)
	x.raw(suffix)
}

func (x *xmlWriter) header(m Metadata, p Policy) {
	x.raw(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	if x.f == RFC9990 {
		x.raw(`<feedback xmlns="` + Namespace9990 + `">` + "\n")
	} else {
		x.raw("<feedback>\n")
	}
	// RFC 9990: "version ... MUST have the value 1.0" (the namespace says
	// 2.0, the version element does not). RFC 7489's schema requires the
	// element without fixing the value; real reports say 1.0.
	x.raw("  <version>1.0</version>\n")

	x.raw("  <report_metadata>\n")
	x.elem("    <org_name>", m.OrgName, "</org_name>\n")
	x.elem("    <email>", m.Email, "</email>\n")
	if m.ExtraContactInfo != "" {
		x.elem("    <extra_contact_info>", m.ExtraContactInfo, "</extra_contact_info>\n")
	}
	x.elem("    <report_id>", m.ReportID, "</report_id>\n")
	x.raw("    <date_range>\n")
	x.int("      <begin>", m.Begin.Unix(), "</begin>\n")
	x.int("      <end>", m.End.Unix(), "</end>\n")
	x.raw("    </date_range>\n")
	if x.f == RFC9990 {
		first := true
		for _, e := range m.Errors {
			if strings.TrimSpace(e) == "" {
				continue
			}
			if first {
				x.raw("    <error>")
				first = false
			} else {
				x.raw("; ")
			}
			x.text(e)
		}
		if !first {
			x.raw("</error>\n")
		}
		if m.Generator != "" {
			x.elem("    <generator>", m.Generator, "</generator>\n")
		}
	} else {
		for _, e := range m.Errors {
			if strings.TrimSpace(e) != "" {
				x.elem("    <error>", e, "</error>\n")
			}
		}
	}
	x.raw("  </report_metadata>\n")

	pol := policyValue(p.P)
	if pol == "" {
		pol = "none"
	}
	sp := policyValue(p.SP)
	if sp == "" {
		sp = pol
	}
	fo := strings.TrimSpace(p.FO)
	if fo == "" {
		fo = "0"
	}
	x.raw("  <policy_published>\n")
	x.elem("    <domain>", p.Domain, "</domain>\n")
	if x.f == RFC9990 {
		switch dm := lower(p.DiscoveryMethod); dm {
		case "psl", "treewalk":
			x.elem("    <discovery_method>", dm, "</discovery_method>\n")
		}
		np := policyValue(p.NP)
		if np == "" {
			np = sp
		}
		x.elem("    <p>", pol, "</p>\n")
		x.elem("    <sp>", sp, "</sp>\n")
		x.elem("    <np>", np, "</np>\n")
		x.elem("    <fo>", fo, "</fo>\n")
		x.elem("    <adkim>", alignmentValue(p.ADKIM), "</adkim>\n")
		x.elem("    <aspf>", alignmentValue(p.ASPF), "</aspf>\n")
		if p.Testing {
			x.raw("    <testing>y</testing>\n")
		} else {
			x.raw("    <testing>n</testing>\n")
		}
	} else {
		// RFC 7489 requires sp, pct and fo. A testing domain (RFC 9989
		// t=y, which has no pct) is reported as pct 0, the value RFC 9989
		// says t=y stands for.
		pct := min(max(p.Pct, 0), 100)
		if p.Testing {
			pct = 0
		}
		x.elem("    <adkim>", alignmentValue(p.ADKIM), "</adkim>\n")
		x.elem("    <aspf>", alignmentValue(p.ASPF), "</aspf>\n")
		x.elem("    <p>", pol, "</p>\n")
		x.elem("    <sp>", sp, "</sp>\n")
		x.int("    <pct>", int64(pct), "</pct>\n")
		x.elem("    <fo>", fo, "</fo>\n")
	}
	x.raw("  </policy_published>\n")
}

// sourceIP writes the address. An IPv4-mapped IPv6 address is the IPv4
// client it stands for, and a zone is dropped. RFC 7489's IPAddress pattern
// accepts IPv6 only as eight groups, so IPv6 is written uncompressed there
// ("2001:db8:0:0:0:0:0:1", RFC 4291 §2.2 form 1, which every address
// parser reads); RFC 9990 takes any RFC 3986 form and gets the RFC 5952
// canonical one.
func (x *xmlWriter) sourceIP(a netip.Addr) {
	a = a.Unmap().WithZone("")
	b := x.scratch[:0]
	if a.Is4() || x.f == RFC9990 {
		b = a.AppendTo(b)
	} else {
		s := a.As16()
		for i := 0; i < 16; i += 2 {
			if i > 0 {
				b = append(b, ':')
			}
			b = strconv.AppendUint(b, uint64(s[i])<<8|uint64(s[i+1]), 16)
		}
	}
	x.scratch = b
	x.raw("      <source_ip>")
	_, _ = x.bw.Write(b)
	x.raw("</source_ip>\n")
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

func (x *xmlWriter) record(r *Record) {
	x.raw("  <record>\n    <row>\n")
	x.sourceIP(r.SourceIP)
	x.int("      <count>", r.Count, "</count>\n")
	x.raw("      <policy_evaluated>\n")
	x.elem("        <disposition>", dispositionValue(x.f, r.Disposition), "</disposition>\n")
	x.elem("        <dkim>", passFail(r.DKIMAligned), "</dkim>\n")
	x.elem("        <spf>", passFail(r.SPFAligned), "</spf>\n")
	for _, o := range r.Reasons {
		typ, note := reasonValue(x.f, o.Type)
		x.raw("        <reason>\n")
		x.elem("          <type>", typ, "</type>\n")
		if note != "" || o.Comment != "" {
			x.raw("          <comment>")
			x.text(note)
			if note != "" && o.Comment != "" {
				x.raw(": ")
			}
			x.text(o.Comment)
			x.raw("</comment>\n")
		}
		x.raw("        </reason>\n")
	}
	x.raw("      </policy_evaluated>\n    </row>\n")

	to := envelopeTo(r.EnvelopeTo)
	x.raw("    <identifiers>\n")
	if x.f == RFC9990 {
		x.elem("      <header_from>", r.HeaderFrom, "</header_from>\n")
		x.elem("      <envelope_from>", r.EnvelopeFrom, "</envelope_from>\n")
		if to != "" {
			x.elem("      <envelope_to>", to, "</envelope_to>\n")
		}
	} else {
		if to != "" {
			x.elem("      <envelope_to>", to, "</envelope_to>\n")
		}
		x.elem("      <envelope_from>", r.EnvelopeFrom, "</envelope_from>\n")
		x.elem("      <header_from>", r.HeaderFrom, "</header_from>\n")
	}
	x.raw("    </identifiers>\n")

	x.raw("    <auth_results>\n")
	if len(r.DKIM) <= MaxDKIMPerRecord {
		for i := range r.DKIM {
			x.dkim(&r.DKIM[i])
		}
	} else {
		n := 0
		for class := 0; class < 4 && n < MaxDKIMPerRecord; class++ {
			for i := range r.DKIM {
				if n == MaxDKIMPerRecord {
					break
				}
				if dkimClass(r.DKIM[i], r.HeaderFrom) == class {
					x.dkim(&r.DKIM[i])
					n++
				}
			}
		}
	}
	x.spf(r)
	x.raw("    </auth_results>\n  </record>\n")
}

// dkim writes one signature's result. RFC 9990 requires the selector; RFC
// 7489 leaves it optional and it is left out when unknown.
func (x *xmlWriter) dkim(d *report.DKIMResult) {
	x.raw("      <dkim>\n")
	x.elem("        <domain>", d.Domain, "</domain>\n")
	if d.Selector != "" || x.f == RFC9990 {
		x.elem("        <selector>", d.Selector, "</selector>\n")
	}
	x.elem("        <result>", dkimResultValue(d.Result), "</result>\n")
	x.raw("      </dkim>\n")
}

func (x *xmlWriter) spfElem(domain, scope, result string) {
	x.raw("      <spf>\n")
	x.elem("        <domain>", domain, "</domain>\n")
	x.elem("        <scope>", scope, "</scope>\n")
	x.elem("        <result>", result, "</result>\n")
	x.raw("      </spf>\n")
}

// spf writes the SPF results.
//
// RFC 7489 wants at least one and knows the scopes mfrom and helo: every
// result is written (an unknown scope counts as mfrom), and when there is
// none, a "none" result for the MAIL FROM domain stands in, as RFC 8601
// defines none for "no domain to check" too.
//
// RFC 9990 allows at most one, with scope mfrom only ("Only the MAIL FROM
// identity is used in DMARC"): the first mfrom result is written. A HELO
// result is written, as mfrom, only for the null sender, where RFC 7208
// §2.4 defines the MAIL FROM identity as postmaster@ the HELO name, so it
// is the MAIL FROM check; for any other sender it is left out. No result
// means no spf element.
func (x *xmlWriter) spf(r *Record) {
	if x.f == RFC7489 {
		if len(r.SPF) == 0 {
			x.spfElem(r.EnvelopeFrom, "mfrom", "none")
			return
		}
		for i := range r.SPF {
			s := &r.SPF[i]
			scope := "mfrom"
			if lower(s.Scope) == "helo" {
				scope = "helo"
			}
			x.spfElem(s.Domain, scope, spfResultValue(x.f, s.Result))
		}
		return
	}
	var helo *report.SPFResult
	for i := range r.SPF {
		s := &r.SPF[i]
		if lower(s.Scope) != "helo" {
			x.spfElem(s.Domain, "mfrom", spfResultValue(x.f, s.Result))
			return
		}
		if helo == nil {
			helo = s
		}
	}
	if helo != nil && strings.TrimSpace(r.EnvelopeFrom) == "" {
		x.spfElem(helo.Domain, "mfrom", spfResultValue(x.f, helo.Result))
	}
}
