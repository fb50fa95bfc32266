package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the reports as JSON: one object for one report, an
// array for several.
func WriteJSON(w io.Writer, reports []*Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if len(reports) == 1 {
		return enc.Encode(reports[0])
	}
	if reports == nil {
		reports = []*Report{}
	}
	return enc.Encode(reports)
}

// WriteText writes the reports for people, one after the other. verbose
// adds the DNS queries made, which are otherwise shown only when no record
// was found or a lookup failed.
func WriteText(w io.Writer, reports []*Report, verbose bool) error {
	bw := bufio.NewWriter(w)
	for i, r := range reports {
		if i > 0 {
			bw.WriteString("\n")
		}
		writeText(bw, r, verbose)
	}
	return bw.Flush()
}

// caretWidth is the widest stretch of record shown above a caret.
const caretWidth = 72

func writeText(w *bufio.Writer, r *Report, verbose bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	switch {
	case r.Domain == "":
		p("%s", quoteIfOdd(r.Input))
	case r.Unicode != r.Domain:
		p("%s (A-label %s)", r.Unicode, r.Domain)
	default:
		p("%s", r.Domain)
	}
	p("  spec:                  %s", specName(r.Spec))
	if r.OrgDomain != nil {
		how := "DNS tree walk"
		if r.Spec == "rfc7489" {
			how = "public suffix list"
		}
		p("  organizational domain: %s (%s)", *r.OrgDomain, how)
	}
	if r.OrgDomain != nil || r.Record != nil {
		p("  policy domain:         %s", policySource(r))
	}
	if r.Record != nil {
		p("  record:                %s", display(*r.Record))
	}

	if len(r.Tags) > 0 {
		p("")
		p("  tags (effective values):")
		width := 0
		for _, t := range r.Tags {
			if n := len(t.Effective); n <= 12 {
				width = max(width, n)
			}
		}
		for _, t := range r.Tags {
			eff := t.Effective
			if eff == "" {
				eff = "-"
			}
			line := fmt.Sprintf("    %-5s  %-*s  %s", t.Name, width, eff, t.Note)
			p("%s", strings.TrimRight(line, " "))
		}
	}

	if pol := r.Policies; pol != nil {
		p("")
		p("  policy for mail that fails DMARC:")
		own := "p" // the tag that would apply to the domain if written
		switch {
		case val(r.Source) == "domain":
		case !pol.DomainExists && pol.Nonexistent != nil:
			own = "np"
		default:
			own = "sp"
		}
		rows := [][2]string{
			{r.Domain, policyText(r, pol.Domain, pol.DomainFrom, own)},
			{"its subdomains", policyText(r, pol.Subdomains, pol.SubdomainsFrom, "sp")},
		}
		if pol.Nonexistent != nil {
			rows = append(rows, [2]string{"its non-existent subdomains", policyText(r, *pol.Nonexistent, *pol.NonexistentFrom, "np")})
		}
		width := 0
		for _, row := range rows {
			width = max(width, len(row[0]))
		}
		for _, row := range rows {
			p("    %-*s  %s", width, row[0], row[1])
		}
	} else if r.Record != nil {
		p("")
		p("  policy for mail that fails DMARC: none applies (the record is unusable)")
	}

	if len(r.Destinations) > 0 {
		p("")
		p("  report destinations:")
		width := 0
		for _, d := range r.Destinations {
			width = max(width, len(d.URI))
		}
		for _, d := range r.Destinations {
			p("    %s %-*s  %s", d.Tag, width, display(d.URI), destinationText(d))
		}
	}

	for _, sev := range []Severity{Error, Warning, Info} {
		var group []Finding
		for _, f := range r.Findings {
			if f.Severity == sev {
				group = append(group, f)
			}
		}
		if len(group) == 0 {
			continue
		}
		p("")
		p("  %s", map[Severity]string{Error: "errors:", Warning: "warnings:", Info: "info:"}[sev])
		for i, f := range group {
			// Findings at one position share the caret under the last.
			last := i == len(group)-1 || !samePosition(f, group[i+1])
			writeFinding(w, r, f, last)
		}
	}
	if r.Status == StatusFailed && r.Record == nil && r.Domain != "" {
		p("")
		p("  The policy could not be determined; receivers asking now get temperror.")
		p("  Check the domain's nameservers, then try again.")
	}

	if verbose || r.Status == StatusFailed || r.Record == nil {
		writeLookups(w, r)
	}

	p("")
	switch r.Status {
	case StatusFailed:
		p("  status: failed (%s)", val(r.Error))
	case StatusProblems:
		counts := map[Severity]int{}
		for _, f := range r.Findings {
			counts[f.Severity]++
		}
		var parts []string
		for _, c := range []struct {
			sev  Severity
			name string
		}{{Error, "error"}, {Warning, "warning"}} {
			switch n := counts[c.sev]; n {
			case 0:
			case 1:
				parts = append(parts, "1 "+c.name)
			default:
				parts = append(parts, fmt.Sprintf("%d %ss", n, c.name))
			}
		}
		p("  status: problems (%s)", strings.Join(parts, ", "))
	default:
		p("  status: ok")
	}
}

func specName(spec string) string {
	switch spec {
	case "rfc9989":
		return "RFC 9989"
	case "rfc7489":
		return "RFC 7489"
	}
	return spec
}

func policySource(r *Report) string {
	pd := val(r.PolicyDomain)
	switch val(r.Source) {
	case "domain":
		return pd + " (published at the domain itself)"
	case "organizational":
		return pd + " (inherited from the organizational domain)"
	case "psd":
		return pd + " (from the public suffix domain, psd=y)"
	}
	return "none: no DMARC record applies"
}

// policyText describes one policy: the value, the tag it comes from
// (instead of own, which is absent), and what t=y or pct make of it.
func policyText(r *Report, policy, from, own string) string {
	pol := r.Policies
	s := policy + " (" + from + ")"
	switch {
	case from == own:
	case own == "np" && from == "p":
		s = policy + " (p; no np or sp)"
	default:
		s = policy + " (" + from + "; no " + own + ")"
	}
	if policy == "none" {
		return s + ": monitoring only"
	}
	lower := map[string]string{"reject": "quarantine", "quarantine": "none"}[policy]
	switch {
	case pol.Testing:
		s += ", applied as " + lower + " while t=y"
	case pol.Pct < 100:
		s += fmt.Sprintf(" for %d%% of failing mail, %s for the rest (pct=%d)", pol.Pct, lower, pol.Pct)
	}
	return s
}

func destinationText(d Destination) string {
	switch {
	case strings.HasPrefix(val(d.Reason), unverified):
		return val(d.Reason)
	case d.Authorized && !d.External:
		return "inside the organizational domain"
	case d.Authorized && len(d.Send) == 1 && d.Send[0] == d.URI:
		return "external, authorized by " + val(d.TXTName)
	case d.Authorized:
		return "external, authorized by " + val(d.TXTName) + "; reports go to " + strings.Join(d.Send, ",")
	case d.External:
		return "external, NOT authorized: " + val(d.Reason)
	}
	return "not used: " + val(d.Reason)
}

// samePosition reports whether two findings point at one byte of one text.
func samePosition(a, b Finding) bool {
	return a.Offset != nil && b.Offset != nil && *a.Offset == *b.Offset && val(a.Text) == val(b.Text)
}

// writeFinding writes one finding and, when withCaret and it is a warning
// or an error about a position, the record with a caret under it.
func writeFinding(w *bufio.Writer, r *Report, f Finding, withCaret bool) {
	switch {
	case f.Offset != nil && f.Tag != nil:
		fmt.Fprintf(w, "    at offset %d (%s): %s\n", *f.Offset, *f.Tag, f.Message)
	case f.Offset != nil:
		fmt.Fprintf(w, "    at offset %d: %s\n", *f.Offset, f.Message)
	default:
		fmt.Fprintf(w, "    %s\n", f.Message)
	}
	if !withCaret || f.Offset == nil || f.Severity < Warning {
		return
	}
	text := val(r.Record)
	if f.Text != nil {
		text = *f.Text
	}
	if line, mark, ok := caret(text, *f.Offset); ok {
		fmt.Fprintf(w, "      %s\n      %s\n", line, mark)
	}
}

func writeLookups(w *bufio.Writer, r *Report) {
	if len(r.Lookups) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  lookups:\n")
	width := 0
	for _, l := range r.Lookups {
		width = max(width, len(l.Name))
	}
	for _, l := range r.Lookups {
		var s string
		switch l.Result {
		case "records":
			s = plural(len(l.TXT), "record")
			if l.Type == "TXT" {
				s += fmt.Sprintf(", %d DMARC", l.DMARCRecords)
			}
		case "exists":
			s = "exists"
		case "nxdomain":
			s = "NXDOMAIN (no such name)"
		case "nodata":
			s = "NODATA (the name exists, without TXT records)"
		default:
			s = "failed: " + val(l.Error)
		}
		if l.CNAME != nil {
			s = "CNAME to " + *l.CNAME + ": " + s
		}
		if l.TCP {
			s += "; over TCP (the UDP answer was truncated)"
		}
		fmt.Fprintf(w, "    %-3s %-*s  %s\n", l.Type, width, l.Name, s)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// token returns how byte c of a record is shown: itself when printable
// ASCII, an escape otherwise, so that a hostile record cannot drive the
// terminal and the caret lines up.
func token(c byte) string {
	switch {
	case c == '\t':
		return `\t`
	case c < 0x20 || c >= 0x7f:
		return fmt.Sprintf(`\x%02x`, c)
	}
	return string(c)
}

// display returns s as shown on a terminal.
func display(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString(token(s[i]))
	}
	return b.String()
}

// quoteIfOdd shows an argument that is not a domain, quoted when it has
// bytes that display would escape or is empty.
func quoteIfOdd(s string) string {
	if s == "" || display(s) != s || strings.ContainsAny(s, " ") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// caret returns the record as displayed and a line with a caret under the
// byte at off (just past the end when off is the length), clipped to a
// window of caretWidth columns around it. ok is false when off lies outside
// text.
func caret(text string, off int) (line, mark string, ok bool) {
	if off < 0 || off > len(text) {
		return "", "", false
	}
	toks := make([]string, len(text))
	for i := 0; i < len(text); i++ {
		toks[i] = token(text[i])
	}
	// Choose the bytes [from, to) to show: up to caretWidth columns, the
	// caret about a third of the way in when the text must be cut.
	width := func(ts []string) int {
		n := 0
		for _, t := range ts {
			n += len(t)
		}
		return n
	}
	from, to := 0, len(toks)
	if width(toks) > caretWidth {
		from = off
		for from > 0 && width(toks[from-1:off]) <= caretWidth/3 {
			from--
		}
		to = from
		for to < len(toks) && width(toks[from:to+1]) <= caretWidth {
			to++
		}
	}
	var b strings.Builder
	pad := 0
	if from > 0 {
		b.WriteString("...")
		pad = 3
	}
	b.WriteString(strings.Join(toks[from:to], ""))
	if to < len(toks) {
		b.WriteString("...")
	}
	return b.String(), strings.Repeat(" ", pad+width(toks[from:off])) + "^", true
}
