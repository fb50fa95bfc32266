package ingest

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

// agg is what a reference aggregate report must parse to.
type agg struct {
	format   string
	records  int
	messages int64 // sum of the counts
	id, org  string
	domain   string
	warn     string // a fragment one warning holds; "" for none at all
}

// arf is what a reference failure report must parse to.
type arf struct {
	authFailure, domain, ip, mailFrom string
	rcptTo                            []string
	delivery                          string
	reporter, userAgent               string
	alignment                         []string
	origSubject                       string
	warn                              string
}

// refusal is the class and a fragment of why.
type refusal struct {
	kind error
	line int
	text string
}

// want is one item expected from a reference file: its Source after the
// file's path, and one of the three.
type want struct {
	suffix string
	agg    *agg
	arf    *arf
	err    *refusal
}

// referenceTable lists every file of reference/reports, with what each
// must yield. TestReferenceConformance fails on a file missing from it.
var referenceTable = map[string][]want{
	// aggregate/
	"draft-ietf-dmarc-aggregate-reporting__dmarc-xml-0.2.xml": {{agg: &agg{
		format: FormatRFC9990, records: 1, messages: 123, id: "3v98abbp8ya9n3va8yr8oa3ya", org: "Sample Reporter", domain: "example.com"}}},
	"draft-ietf-dmarc-aggregate-reporting__dmarc-xmlalt-0.2.xml": {{agg: &agg{
		format: FormatDraft, records: 1, messages: 123, id: "3v98abbp8ya9n3va8yr8oa3ya", org: "Sample Reporter", domain: "example.com",
		warn: "unknown element <added> in <record> ignored"}}},
	"parsedmarc__!example.com!1538204542!1538463818.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "example.com:1538463741", org: "", domain: "example.com", warn: "org_name empty"}}},
	"parsedmarc__!large-example.com!1711897200!1711983600.xml": {{agg: &agg{
		format: FormatRFC7489, records: 2286, messages: 2286, id: "example.com:1711897200", org: "", domain: "example.com", warn: "org_name empty"}}},
	"parsedmarc__Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml": {{
		suffix: ":google.com!borschow.com!1549929600!1550015999.zip:google.com!borschow.com!1549929600!1550015999.xml",
		agg:    &agg{format: FormatRFC7489, records: 1, messages: 1, id: "949348866075514174", org: "google.com", domain: "borschow.com"}}},
	"parsedmarc__addisonfoods.com!example.com!1536105600!1536191999.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "3ceb5548498640beaeb47327e202b0b9", org: "addisonfoods.com", domain: "example.com"}}},
	"parsedmarc__changed-input.xml": {{agg: &agg{
		format: FormatRFC7489, records: 20, messages: 3047, id: "11038226378739404135", org: "fred.com", domain: "example.com"}}},
	"parsedmarc__empty.xml": {{err: &refusal{kind: ErrEmpty}}},
	"parsedmarc__empty_reason.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 2, id: "20240125141224705995", org: "example.org", domain: "example.com", warn: "empty <reason> ignored"}}},
	"parsedmarc__estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip": {{
		suffix: ":estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml",
		agg:    &agg{format: FormatRFC7489, records: 1, messages: 1, id: "2940", org: "XYZ Corporation", domain: "example.com"}}},
	"parsedmarc__example.net!example.com!1529366400!1529452799.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "b043f0e264cf4ea995e93765242f6dfb", org: "example.net", domain: "example.com",
		warn: `stray text "11" in <policy_published> ignored`}}},
	"parsedmarc__fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "102675056", org: "FastMail Pty Ltd", domain: "indemed.com"}}},
	"parsedmarc__ikea.com!example.de!1538690400!1538776800.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "aggr_report_2018_10_05_5bc7e9b4f3e8a", org: "ikea.com", domain: "example.de",
		warn: "report wrapped in a stray <schema> element"}}},
	"parsedmarc__invalid_utf_8.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "example.com:1538463741", org: "", domain: "example.com",
		warn: "line 31: 1 invalid byte sequence(s) or control character(s) replaced by U+FFFD"}}},
	"parsedmarc__invalid_xml.xml": {{err: &refusal{kind: ErrNotWellFormed, line: 5, text: "parsedmarc__invalid_xml.xml:5: not well-formed XML"}}},
	"parsedmarc__mimecast-weird-gzip.eml": {{
		suffix: ":mimecast.org!ab.id.au!1693353600!1693439999!157a5fe30ec76f4bc0d8bccfc96c118a167a1280fee7c7465af5115e73082e5e.xml.gz",
		agg: &agg{format: FormatRFC7489, records: 1, messages: 1, id: "157a5fe30ec76f4bc0d8bccfc96c118a167a1280fee7c7465af5115e73082e5e",
			org: "Mimecast", domain: "ab.id.au"}}},
	"parsedmarc__nice-input.xml": {{agg: &agg{
		format: FormatRFC7489, records: 20, messages: 3047, id: "11038226378739404135", org: "google.com", domain: "example.com"}}},
	"parsedmarc__nice-input.xml.gz": {{agg: &agg{
		format: FormatRFC7489, records: 20, messages: 3047, id: "11038226378739404135", org: "google.com", domain: "example.com"}}},
	"parsedmarc__nice-input.xml.zip": {{suffix: ":nice-input.xml", agg: &agg{
		format: FormatRFC7489, records: 20, messages: 3047, id: "11038226378739404135", org: "google.com", domain: "example.com"}}},
	"parsedmarc__old_draft_from_wiki.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 2, id: "9391651994964116463", org: "acme.com", domain: "example.com"}}},
	"parsedmarc__protection.outlook.com!example.com!1711756800!1711843200.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "cfeafefe4129445e8c81018bd9177197", org: "Outlook.com", domain: "example.com"}}},
	"parsedmarc__report_with_upper_cased_pass.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "aggr_report_example.com_20191202_1638", org: "example.com", domain: "example.com"}}},
	"parsedmarc__rfc9990-example.net!example.com!1700000000!1700086399.xml": {{agg: &agg{
		format: FormatRFC9990, records: 2, messages: 7, id: "dmarcbis-test-report-001", org: "example.net", domain: "example.com"}}},
	"parsedmarc__rfc9990-sample.xml": {{agg: &agg{
		format: FormatRFC9990, records: 1, messages: 123, id: "3v98abbp8ya9n3va8yr8oa3ya", org: "Sample Reporter", domain: "example.com"}}},
	"parsedmarc__twilight.eml": {{
		suffix: ":google.com!twlnet.com!1549756800!1549843199.zip:google.com!twlnet.com!1549756800!1549843199.xml",
		agg:    &agg{format: FormatRFC7489, records: 1, messages: 1, id: "1627703331531660819", org: "google.com", domain: "twlnet.com"}}},
	"parsedmarc__usssa.com!example.com!1538784000!1538870399.xml": {{agg: &agg{
		format: FormatRFC7489, records: 2, messages: 2, id: "8953b4d4a4ee4218b6ac0e2cb2667ee1", org: "usssa.com", domain: "example.com"}}},
	"parsedmarc__veeam.com!example.com!1530133200!1530219600.xml": {{agg: &agg{
		format: FormatRFC7489, records: 1, messages: 1, id: "sonexushealth.com:1530233361", org: "veeam.com", domain: "example.com"}}},

	// failure/
	"parsedmarc__DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml": {{arf: &arf{
		authFailure: "dmarc", domain: "domain.de", ip: "10.10.10.10", mailFrom: "sharepoint@domain.de", rcptTo: []string{"peter.pan@domain.de"},
		delivery: "smg-policy-action", reporter: "dmarc-report@domain.de", userAgent: "Lua/1.0", origSubject: "Subject"}}},
	"parsedmarc__[Netease DMARC Failure Report] Rent Reminder.eml": {{arf: &arf{
		authFailure: "", domain: "cardinal.com", ip: "167.89.69.24", mailFrom: "bounces+1137616-c1ad-xsj399=163.com@email.entrata.com",
		delivery: "delivered", reporter: "abuse@163.com", userAgent: "NtesDmarcReporter/1.0", alignment: []string{"spf", "dkim"},
		origSubject: "Rent Reminder", warn: "no Auth-Failure field"}}},
	"parsedmarc__dmarc_ruf_report_linkedin.crlf.eml": {{suffix: "#1", arf: &arf{
		authFailure: "dmarc", domain: "example.com", ip: "10.10.10.10", mailFrom: "", rcptTo: []string{"recipient@linkedin.com"},
		delivery: "delivered", reporter: "dmarc-noreply@linkedin.com", userAgent: "Lua/1.0", origSubject: "Subject line, could be UTF8 encoded"}}},
	"parsedmarc__dmarc_ruf_report_linkedin.eml": {{suffix: "#1", arf: &arf{
		authFailure: "dmarc", domain: "example.com", ip: "10.10.10.10", mailFrom: "", rcptTo: []string{"recipient@linkedin.com"},
		delivery: "delivered", reporter: "dmarc-noreply@linkedin.com", userAgent: "Lua/1.0", origSubject: "Subject line, could be UTF8 encoded"}}},
	"parsedmarc__exim_plain_text_only_no_arf_part.eml": {{err: &refusal{kind: ErrNotReport, text: "a plain-text notice, not an RFC 6591 report"}}},
}

// TestReferenceConformance parses every file of reference/reports and
// compares with referenceTable: exact totals for what parses, the class of
// refusal for what does not.
func TestReferenceConformance(t *testing.T) {
	ref := testenv.ReferenceDir(t, "reports")
	seen := map[string]bool{}
	items := map[string][]Item{}
	for _, sub := range []string{"aggregate", "failure"} {
		dir := filepath.Join(ref, "reports", sub)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			name := e.Name()
			seen[name] = true
			path := filepath.Join(dir, name)
			wants, ok := referenceTable[name]
			if !ok {
				t.Errorf("%s/%s is not in referenceTable: add what it must yield", sub, name)
				continue
			}
			t.Run(name, func(t *testing.T) {
				got := walkAll(t, path, DefaultLimits())
				items[name] = got
				if len(got) != len(wants) {
					t.Fatalf("%d items, want %d: %+v", len(got), len(wants), got)
				}
				for i, w := range wants {
					checkReference(t, path, got[i], w)
				}
			})
		}
	}
	for name := range referenceTable {
		if !seen[name] {
			t.Errorf("referenceTable lists %s, which is not in the reference folder", name)
		}
	}
	if t.Failed() {
		return
	}

	// Idempotence keys: the same report in three containers is one
	// report; another org with the same report_id is another.
	key := func(name string) string {
		it := items[name][0]
		if it.Aggregate != nil {
			return it.Aggregate.Key()
		}
		return it.Failure.Key()
	}
	same := [][]string{
		{"parsedmarc__nice-input.xml", "parsedmarc__nice-input.xml.gz", "parsedmarc__nice-input.xml.zip"},
		{"parsedmarc__!example.com!1538204542!1538463818.xml", "parsedmarc__invalid_utf_8.xml"},
		{"parsedmarc__dmarc_ruf_report_linkedin.crlf.eml", "parsedmarc__dmarc_ruf_report_linkedin.eml"},
	}
	for _, group := range same {
		for _, n := range group[1:] {
			if key(n) != key(group[0]) {
				t.Errorf("Key(%s) = %q, differs from Key(%s) = %q", n, key(n), group[0], key(group[0]))
			}
		}
	}
	if key("parsedmarc__changed-input.xml") == key("parsedmarc__nice-input.xml") {
		t.Errorf("changed-input (org fred.com) has nice-input's key")
	}
	if key("parsedmarc__dmarc_ruf_report_linkedin.eml") == key("parsedmarc__DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml") {
		t.Errorf("two different failure reports share a key")
	}
}

func checkReference(t *testing.T, path string, it Item, w want) {
	t.Helper()
	if it.Source != path+w.suffix {
		t.Errorf("Source %q, want %q", it.Source, path+w.suffix)
	}
	switch {
	case w.err != nil:
		if it.Err == nil {
			t.Fatalf("accepted, want refusal %v", w.err.kind)
		}
		wantErr(t, it.Err, w.err.kind, w.err.text)
		if w.err.line != 0 && errLine(it.Err) != w.err.line {
			t.Errorf("line %d, want %d", errLine(it.Err), w.err.line)
		}
	case w.agg != nil:
		a := it.Aggregate
		if a == nil {
			t.Fatalf("not an aggregate report: %+v", it)
		}
		g := agg{a.Format, len(a.Records), a.Messages(), a.ReportID, a.Org, a.Policy.Domain, w.agg.warn}
		if g != *w.agg {
			t.Errorf("got  %+v\nwant %+v", g, *w.agg)
		}
		if w.agg.warn == "" && len(a.Warnings) > 0 {
			t.Errorf("unexpected warnings %q", a.Warnings)
		}
		if w.agg.warn != "" && !hasWarning(a.Warnings, w.agg.warn) {
			t.Errorf("warnings %q lack %q", a.Warnings, w.agg.warn)
		}
	case w.arf != nil:
		f := it.Failure
		if f == nil {
			t.Fatalf("not a failure report: %+v", it)
		}
		ip := ""
		if f.SourceIP.IsValid() {
			ip = f.SourceIP.String()
		}
		g := arf{f.AuthFailure, f.ReportedDomain, ip, f.OriginalMailFrom, f.OriginalRcptTo, f.DeliveryResult,
			f.Reporter.From, f.Reporter.UserAgent, f.IdentityAlignment, f.OriginalSubject, w.arf.warn}
		if g.authFailure != w.arf.authFailure || g.domain != w.arf.domain || g.ip != w.arf.ip || g.mailFrom != w.arf.mailFrom ||
			!slices.Equal(g.rcptTo, w.arf.rcptTo) || g.delivery != w.arf.delivery || g.reporter != w.arf.reporter ||
			g.userAgent != w.arf.userAgent || !slices.Equal(g.alignment, w.arf.alignment) || g.origSubject != w.arf.origSubject {
			t.Errorf("got  %+v\nwant %+v", g, *w.arf)
		}
		if f.FeedbackType != "auth-failure" {
			t.Errorf("FeedbackType %q", f.FeedbackType)
		}
		if f.Headers == "" || f.HeadersTruncated {
			t.Errorf("original headers missing (%d bytes, truncated %v)", len(f.Headers), f.HeadersTruncated)
		}
		if strings.Contains(f.Headers, "\r") {
			t.Errorf("headers keep CR")
		}
		if f.ArrivalDate.IsZero() {
			t.Errorf("no arrival date")
		}
		if w.arf.warn != "" && !hasWarning(f.Warnings, w.arf.warn) {
			t.Errorf("warnings %q lack %q", f.Warnings, w.arf.warn)
		}
	}
}

// TestReferenceDetails checks values inside the reference reports that
// the totals do not show.
func TestReferenceDetails(t *testing.T) {
	ref := testenv.ReferenceDir(t, "reports")
	one := func(name string) *Aggregate {
		t.Helper()
		items := walkAll(t, filepath.Join(ref, "reports", "aggregate", name), DefaultLimits())
		if len(items) != 1 || items[0].Aggregate == nil {
			t.Fatalf("%s: %+v", name, items)
		}
		return items[0].Aggregate
	}

	nice := one("parsedmarc__nice-input.xml")
	var v6 *Record
	multi := 0
	for i := range nice.Records {
		r := &nice.Records[i]
		if r.SourceIP == netip.MustParseAddr("2607:f8b0:4864:20::132") {
			v6 = r
		}
		if len(r.DKIMResults) > 1 {
			multi++
		}
	}
	if v6 == nil || v6.Count != 1 {
		t.Errorf("IPv6 record 2607:f8b0:4864:20::132 count 1 not found")
	}
	if multi == 0 {
		t.Errorf("no record with several DKIM results")
	}
	if nice.Policy.NP != "none" || nice.Policy.Pct != 100 || nice.Begin.Unix() != 1718236800 || nice.End.Unix() != 1718323199 {
		t.Errorf("policy/date: %+v %v %v", nice.Policy, nice.Begin, nice.End)
	}

	up := one("parsedmarc__report_with_upper_cased_pass.xml")
	r := up.Records[0]
	if r.Disposition != "none" || r.DKIM != "pass" || r.SPF != "pass" || r.DKIMResults[0].Result != "pass" || r.SPFResults[0].Result != "pass" {
		t.Errorf("upper-cased words not lower-cased: %+v", r)
	}

	bad := one("parsedmarc__invalid_utf_8.xml")
	if got := bad.Records[0].HeaderFrom; got != "bad_byte\uFFFD" {
		t.Errorf("header_from %q, want the bad byte repaired to U+FFFD", got)
	}

	outlook := one("parsedmarc__protection.outlook.com!example.com!1711756800!1711843200.xml")
	if o := outlook.Records[0]; o.EnvelopeTo != "hotmail.com" || o.SPFResults[0].Scope != "mfrom" {
		t.Errorf("outlook record %+v", o)
	}

	er := one("parsedmarc__empty_reason.xml")
	if len(er.Records[0].Reasons) != 0 {
		t.Errorf("empty reason kept: %+v", er.Records[0].Reasons)
	}

	nine := one("parsedmarc__rfc9990-example.net!example.com!1700000000!1700086399.xml")
	if p := nine.Policy; !p.Testing || p.DiscoveryMethod != "treewalk" || p.NP != "reject" || p.ADKIM != "s" {
		t.Errorf("rfc9990 policy %+v", p)
	}
	if rs := nine.Records[1].Reasons; len(rs) != 1 || rs[0].Type != "other" || rs[0].Comment != "sender not authorized" {
		t.Errorf("reasons %+v", rs)
	}
	sample := one("parsedmarc__rfc9990-sample.xml")
	if sample.Generator != "Example DMARC Aggregate Reporter v1.2" || sample.Records[0].Disposition != "pass" {
		t.Errorf("rfc9990 sample: generator %q disposition %q", sample.Generator, sample.Records[0].Disposition)
	}

	old := one("parsedmarc__old_draft_from_wiki.xml")
	if old.Version != "" || old.ExtraContact != "http://acme.com/dmarc/support" {
		t.Errorf("old draft: %+v", old)
	}
}
