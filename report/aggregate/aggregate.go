package aggregate

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/report"
)

// Format is the XML format of a report.
type Format uint8

// The report formats. RFC7489 is the zero value: it is what every report
// consumer reads today.
const (
	// RFC7489 is RFC 7489 Appendix C: no namespace, version 1.0.
	RFC7489 Format = iota
	// RFC9990 is RFC 9990 (DMARCbis aggregate reporting): namespace
	// urn:ietf:params:xml:ns:dmarc-2.0, with np, testing, discovery_method
	// and generator.
	RFC9990
)

// Namespace9990 is the XML namespace of RFC 9990 reports.
const Namespace9990 = "urn:ietf:params:xml:ns:dmarc-2.0"

// String returns "rfc7489" or "rfc9990".
func (f Format) String() string {
	switch f {
	case RFC7489:
		return "rfc7489"
	case RFC9990:
		return "rfc9990"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// ParseFormat reads a format setting: "rfc7489" (also "7489") or "rfc9990"
// (also "9990", "dmarcbis"), in any case.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "rfc7489", "7489":
		return RFC7489, nil
	case "rfc9990", "9990", "dmarcbis":
		return RFC9990, nil
	}
	return 0, fmt.Errorf("unknown aggregate report format %q (want rfc7489 or rfc9990)", s)
}

// Metadata is the report_metadata of a report.
type Metadata struct {
	OrgName          string // required
	Email            string // required: the reporting organization's contact
	ExtraContactInfo string // optional
	// ReportID is required and must be unique among the reports to one
	// domain. RFC 9990 wants the same value as the file name's unique-id:
	// NewReportID makes one that serves as both.
	ReportID string
	// Begin and End are the reporting period, written as Unix seconds.
	// Common practice (and the RFC 9990 sample) makes End the last second
	// of the period: a UTC day is 00:00:00 to 23:59:59.
	Begin, End time.Time
	// Errors are problems met with the domain's DMARC record. RFC 7489
	// allows several error elements; RFC 9990 allows one, so they are
	// joined with "; " there.
	Errors []string
	// Generator names the software (RFC 9990 only; RFC 7489 has no such
	// element and it is left out).
	Generator string
}

// Policy is policy_published: the DMARC record as discovered.
//
// Both formats report the value that applied, the discovered one or the
// default (RFC 9990 §"policy_published": "Unspecified tags have their
// default values"): sp defaults to p, np to sp, adkim and aspf to r, fo to 0.
// RFC 7489 has no np, testing or discovery_method and makes sp, pct and fo
// mandatory; RFC 9990 has no pct.
type Policy = report.Published

// Record is one record of a report: one (source IP, evaluation,
// identifiers, results) tuple and how many messages had it.
type Record struct {
	SourceIP    netip.Addr // required
	Count       int64      // at least 1
	Disposition string     // none, quarantine, reject (or pass, RFC 9990 only)
	DKIMAligned bool       // policy_evaluated dkim
	SPFAligned  bool       // policy_evaluated spf
	Reasons     []report.Override
	HeaderFrom  string
	// EnvelopeFrom is the MAIL FROM domain, "" for the null sender: it is
	// then written as an empty element (RFC 9990 "MAY be existing but
	// empty"; RFC 7489 requires the element).
	EnvelopeFrom string
	// EnvelopeTo are the recipient domains. Both schemas allow one
	// envelope_to: it is written only when all entries name the same
	// domain, as a record counting mail to several domains has no single
	// true value for it.
	EnvelopeTo []string
	DKIM       []report.DKIMResult
	SPF        []report.SPFResult
}

// FromRow returns the record of one message; the caller rolls identical
// records up and sets Count.
func FromRow(r report.Row) Record {
	return Record{
		SourceIP:     r.SourceIP,
		Count:        1,
		Disposition:  r.Disposition,
		DKIMAligned:  r.DKIMAligned,
		SPFAligned:   r.SPFAligned,
		Reasons:      r.Overrides,
		HeaderFrom:   r.HeaderFrom,
		EnvelopeFrom: r.EnvelopeFrom,
		EnvelopeTo:   r.EnvelopeTo,
		DKIM:         r.DKIM,
		SPF:          r.SPF,
	}
}

// FromSlice returns a next function for Write that yields rs in order.
func FromSlice(rs []Record) func() (Record, bool, error) {
	i := 0
	return func() (Record, bool, error) {
		if i >= len(rs) {
			return Record{}, false, nil
		}
		i++
		return rs[i-1], true, nil
	}
}

// Errors returned by Write.
var (
	// ErrNoRecords: both schemas require at least one record. Nothing has
	// been written when Write returns it.
	ErrNoRecords = errors.New("aggregate report has no records")
	// ErrInvalid wraps every complaint about the metadata, the policy or a
	// record.
	ErrInvalid = errors.New("invalid aggregate report data")
)

// MaxDKIMPerRecord is how many DKIM results a record carries at most
// (RFC 9990 "DKIM Signatures in Aggregate Reports": no more than 100, in
// decreasing priority). The cap is applied to both formats.
const MaxDKIMPerRecord = 100

// Write streams the report to w: the header, then each record next yields
// until it returns ok=false, then the closing tag. Memory stays constant in
// the number of records; the output is buffered, and flushed before Write
// returns.
//
// Nothing is written when the metadata or policy is invalid, when next
// fails at once, or when it yields no record (ErrNoRecords). An error
// later (from next, an invalid record, or w) leaves a truncated document
// in w, which the caller must discard.
func Write(w io.Writer, f Format, m Metadata, p Policy, next func() (Record, bool, error)) error {
	if f != RFC7489 && f != RFC9990 {
		return fmt.Errorf("%w: unknown format %d", ErrInvalid, f)
	}
	if err := checkMetadata(m); err != nil {
		return err
	}
	if strings.TrimSpace(p.Domain) == "" {
		return fmt.Errorf("%w: policy domain is empty", ErrInvalid)
	}
	rec, ok, err := next()
	if err != nil {
		return fmt.Errorf("aggregate report: reading records: %w", err)
	}
	if !ok {
		return ErrNoRecords
	}
	x := newXMLWriter(w, f)
	x.header(m, p)
	for n := 1; ok; n++ {
		if err := checkRecord(rec); err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		x.record(&rec)
		if x.failed() {
			return x.flush()
		}
		rec, ok, err = next()
		if err != nil {
			return fmt.Errorf("aggregate report: reading record %d: %w", n+1, err)
		}
	}
	x.raw("</feedback>\n")
	return x.flush()
}

func checkMetadata(m Metadata) error {
	var missing []string
	if strings.TrimSpace(m.OrgName) == "" {
		missing = append(missing, "org_name")
	}
	if strings.TrimSpace(m.Email) == "" {
		missing = append(missing, "email")
	}
	if strings.TrimSpace(m.ReportID) == "" {
		missing = append(missing, "report_id")
	}
	if m.Begin.IsZero() || m.End.IsZero() {
		missing = append(missing, "date_range")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: metadata lacks %s", ErrInvalid, strings.Join(missing, ", "))
	}
	if m.End.Before(m.Begin) {
		return fmt.Errorf("%w: date_range ends (%d) before it begins (%d)", ErrInvalid, m.End.Unix(), m.Begin.Unix())
	}
	return nil
}

func checkRecord(r Record) error {
	if !r.SourceIP.IsValid() {
		return fmt.Errorf("%w: no source IP", ErrInvalid)
	}
	if r.Count < 1 {
		return fmt.Errorf("%w: count %d for %s", ErrInvalid, r.Count, r.SourceIP)
	}
	return nil
}

// lower returns s trimmed and lowercased; it allocates only when s has
// upper-case letters.
func lower(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// dispositionValue maps the applied disposition. RFC 9990 adds "pass" to
// ActionDispositionType; RFC 7489 has no such value and gets "none" (no
// action was taken). Anything unknown is "none".
func dispositionValue(f Format, s string) string {
	switch lower(s) {
	case "none":
		return "none"
	case "quarantine":
		return "quarantine"
	case "reject":
		return "reject"
	case "pass":
		if f == RFC9990 {
			return "pass"
		}
	}
	return "none"
}

// policyValue maps a p, sp or np value; "" when it is not one of the three.
func policyValue(s string) string {
	switch lower(s) {
	case "none":
		return "none"
	case "quarantine":
		return "quarantine"
	case "reject":
		return "reject"
	}
	return ""
}

// alignmentValue maps adkim and aspf: "s", or the default "r".
func alignmentValue(s string) string {
	if lower(s) == "s" {
		return "s"
	}
	return "r"
}

// dkimResultValue maps a DKIM result to DKIMResultType, which is the same
// in both formats (the RFC 8601 §2.7.1 results). RFC 5451's "hardfail" is
// "fail"; anything else unknown is "neutral", which RFC 8601 defines as
// the result "also used for other failures not covered elsewhere".
func dkimResultValue(s string) string {
	switch lower(s) {
	case "none":
		return "none"
	case "pass":
		return "pass"
	case "fail", "hardfail":
		return "fail"
	case "policy":
		return "policy"
	case "temperror":
		return "temperror"
	case "permerror":
		return "permerror"
	}
	return "neutral"
}

// spfResultValue maps an SPF result to SPFResultType. RFC 4408's names are
// mapped as the RFC 7489 schema's comments say ("error" is temperror,
// "unknown" permerror, "hardfail" fail). RFC 8601's "policy" exists in RFC
// 9990 only; under RFC 7489 it, like anything unknown, is "neutral": no
// assertion either way.
func spfResultValue(f Format, s string) string {
	switch lower(s) {
	case "none":
		return "none"
	case "neutral":
		return "neutral"
	case "pass":
		return "pass"
	case "fail", "hardfail":
		return "fail"
	case "softfail":
		return "softfail"
	case "temperror", "error":
		return "temperror"
	case "permerror", "unknown":
		return "permerror"
	case "policy":
		if f == RFC9990 {
			return "policy"
		}
	}
	return "neutral"
}

// reasonValue maps an override type to the format's PolicyOverrideType. When
// the format has no word for it, the nearest one is used and note is the
// original type, to be written at the head of the comment:
//
//   - RFC 7489 has no policy_test_mode: it becomes sampled_out. RFC 9989
//     made t=y the stand-in for pct=0 ("analogous in their application")
//     and a receiver reports a pct=0 domain's failing mail as sampled_out;
//     policy_published says pct 0 for a testing domain to match.
//   - RFC 9990 has no forwarded nor sampled_out (pct is gone): they become
//     other.
//   - Anything unknown becomes other in both.
func reasonValue(f Format, typ string) (value, note string) {
	v := lower(typ)
	switch v {
	case "":
		return "other", ""
	case "other", "local_policy", "mailing_list", "trusted_forwarder":
		return v, ""
	case "forwarded", "sampled_out":
		if f == RFC7489 {
			return v, ""
		}
		return "other", v
	case "policy_test_mode":
		if f == RFC9990 {
			return v, ""
		}
		return "sampled_out", v
	}
	return "other", typ
}

// envelopeTo returns the single recipient domain of a record, or "" when
// there is none or several.
func envelopeTo(to []string) string {
	one := ""
	for _, d := range to {
		d = strings.TrimSpace(d)
		switch {
		case d == "":
		case one == "":
			one = d
		case !strings.EqualFold(strings.TrimSuffix(one, "."), strings.TrimSuffix(d, ".")):
			return ""
		}
	}
	return one
}

// dkimClass orders DKIM results by the priority of RFC 9990: a pass in
// strict alignment with the From domain, a pass in relaxed alignment, any
// other pass, the rest. Relaxed alignment is approximated without the
// public suffix list: one domain is the other or a parent of it.
func dkimClass(d report.DKIMResult, headerFrom string) int {
	if dkimResultValue(d.Result) != "pass" {
		return 3
	}
	dom := strings.TrimSuffix(strings.TrimSpace(d.Domain), ".")
	hf := strings.TrimSuffix(strings.TrimSpace(headerFrom), ".")
	switch {
	case dom == "" || hf == "":
		return 2
	case strings.EqualFold(dom, hf):
		return 0
	case isSubdomain(hf, dom) || isSubdomain(dom, hf):
		return 1
	}
	return 2
}

// isSubdomain reports whether child is below parent.
func isSubdomain(child, parent string) bool {
	return len(child) > len(parent)+1 && child[len(child)-len(parent)-1] == '.' &&
		strings.EqualFold(child[len(child)-len(parent):], parent)
}
