package ingest

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report"
)

// providerTotals is what our own testdata reports hold, written by hand
// beside them.
var providerTotals = []struct {
	file     string
	format   string
	records  int
	messages int64
	id, org  string
}{
	{"google.xml", FormatRFC7489, 5, 164, "5310771542185718426", "google.com"},
	{"microsoft.xml", FormatRFC7489, 3, 26, "9d4e2c8b7a1f4e0fa3c5b6d7e8f90a1b", "Enterprise Outlook"},
	{"yahoo.xml", FormatRFC7489, 3, 260, "1735718400.612385", "Yahoo"},
	{"gmx-rfc9990.xml", FormatRFC9990, 2, 8, "f3b2c1d0-1111-4c8e-9a5b-0d1e2f3a4b5c", "GMX"},
}

func TestProviderShapes(t *testing.T) {
	for _, p := range providerTotals {
		t.Run(p.file, func(t *testing.T) {
			a, err := ParseAggregate(bytes.NewReader(readTestdata(t, p.file)), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			checkAggregate(t, p.file, a)
			if a.Format != p.format || len(a.Records) != p.records || a.Messages() != p.messages || a.ReportID != p.id || a.Org != p.org || a.Policy.Domain != "example.org" {
				t.Errorf("got %s %d records %d messages id %q org %q domain %q", a.Format, len(a.Records), a.Messages(), a.ReportID, a.Org, a.Policy.Domain)
			}
			if len(a.Warnings) != 0 {
				t.Errorf("warnings: %q", a.Warnings)
			}
		})
	}
}

// TestGoogleDetails checks one report field by field.
func TestGoogleDetails(t *testing.T) {
	a, err := ParseAggregate(bytes.NewReader(readTestdata(t, "google.xml")), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	wantPolicy := report.Published{Domain: "example.org", ADKIM: "r", ASPF: "r", P: "quarantine", SP: "quarantine", NP: "reject", Pct: 100}
	if fmt.Sprint(a.Policy) != fmt.Sprint(wantPolicy) {
		t.Errorf("policy %+v, want %+v", a.Policy, wantPolicy)
	}
	if a.Begin != time.Unix(1735689600, 0).UTC() || a.End != time.Unix(1735775999, 0).UTC() || a.Email != "noreply-dmarc-support@google.com" ||
		a.ExtraContact != "https://support.google.com/a/answer/2466580" || a.Version != "" {
		t.Errorf("metadata %+v", a)
	}
	r := a.Records[1]
	if r.SourceIP != netip.MustParseAddr("2a00:1450:4864:20::12f") || r.Count != 37 || r.DKIM != "pass" || r.SPF != "fail" {
		t.Errorf("record 2: %+v", r)
	}
	wantDKIM := []report.DKIMResult{{Domain: "example.org", Selector: "k1", Result: "pass"}, {Domain: "mcsv.net", Selector: "k2", Result: "pass"}}
	if !slices.Equal(r.DKIMResults, wantDKIM) {
		t.Errorf("dkim %+v", r.DKIMResults)
	}
	if got := a.Records[3].SourceIP.String(); got != "2001:db8::99" {
		t.Errorf("uncompressed IPv6 read as %s", got)
	}
	if rs := a.Records[3].Reasons; len(rs) != 1 || rs[0] != (report.Override{Type: "local_policy", Comment: "arc=pass as.1.google.com=pass"}) {
		t.Errorf("reasons %+v", rs)
	}
	if s := a.Records[2].SPFResults; len(s) != 1 || s[0] != (report.SPFResult{Domain: "example.org", Result: "softfail"}) {
		t.Errorf("spf %+v", s)
	}
}

func TestRFC9990Details(t *testing.T) {
	a, err := ParseAggregate(bytes.NewReader(readTestdata(t, "gmx-rfc9990.xml")), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if p := a.Policy; !p.Testing || p.DiscoveryMethod != "treewalk" || p.NP != "reject" || p.SP != "none" || p.FO != "0" {
		t.Errorf("policy %+v", p)
	}
	if a.Generator != "Example Reporter 2.1" || !slices.Equal(a.Errors, []string{"DNS timeout for _dmarc.example.org, retried"}) || a.Version != "1.0" {
		t.Errorf("metadata: generator %q errors %q version %q", a.Generator, a.Errors, a.Version)
	}
	r0, r1 := a.Records[0], a.Records[1]
	if r0.Disposition != "pass" || r0.EnvelopeTo != "gmx.de" || r0.DKIMResults[0].Selector != "mail" {
		t.Errorf("record 1 %+v", r0)
	}
	if r1.Reasons[0].Type != "policy_test_mode" || r1.DKIMResults[0].Result != "permerror" || r1.SPFResults[0] != (report.SPFResult{Domain: "spoof.example", Scope: "mfrom", Result: "softfail"}) {
		t.Errorf("record 2 %+v", r1)
	}
}

// doc builds a small report around the given pieces; "" takes the default.
func doc(root, meta, policy, records string) string {
	if root == "" {
		root = "<feedback>"
	}
	if meta == "" {
		meta = `<report_metadata><org_name>Example</org_name><email>r@example.net</email><report_id>r1</report_id>
<date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>`
	}
	if policy == "" {
		policy = `<policy_published><domain>example.com</domain><p>none</p></policy_published>`
	}
	if records == "" {
		records = rec("192.0.2.1", "3")
	}
	return root + "\n" + meta + "\n" + policy + "\n" + records + "\n</feedback>\n"
}

func rec(ip, count string) string {
	return `<record><row><source_ip>` + ip + `</source_ip><count>` + count + `</count>
<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
<identifiers><header_from>example.com</header_from></identifiers>
<auth_results><dkim><domain>example.com</domain><selector>s</selector><result>pass</result></dkim></auth_results></record>`
}

func parse(t *testing.T, s string) (*Aggregate, error) {
	t.Helper()
	a, err := ParseAggregate(strings.NewReader(s), DefaultLimits())
	if err == nil {
		checkAggregate(t, "doc", a)
	} else if a != nil {
		t.Errorf("refused report returned data: %+v", a)
	}
	return a, err
}

func TestTolerated(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		warn string // "" for no warning
		chk  func(*Aggregate) bool
	}{
		{"plain", doc("", "", "", ""), "", func(a *Aggregate) bool { return a.Messages() == 3 && a.Format == FormatRFC7489 }},
		{"namespace 2.0", doc(`<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">`, "", "", ""), "",
			func(a *Aggregate) bool { return a.Format == FormatRFC9990 && a.Messages() == 3 }},
		{"prefixed namespace", strings.NewReplacer("<feedback>", `<d:feedback xmlns:d="urn:ietf:params:xml:ns:dmarc-2.0">`, "</feedback>", "</d:feedback>").
			Replace(doc("", "", "", "")), "", func(a *Aggregate) bool { return a.Format == FormatRFC9990 && a.Messages() == 3 }},
		{"draft namespace", doc(`<feedback xmlns="http://dmarc.org/dmarc-xml/0.1">`, "", "", ""), "",
			func(a *Aggregate) bool { return a.Format == FormatDraft }},
		{"unknown namespace", doc(`<feedback xmlns="http://example.com/x">`, "", "", ""), "unknown namespace",
			func(a *Aggregate) bool { return a.Format == FormatRFC7489 && a.Messages() == 3 }},
		{"upper case words", doc("", "", `<policy_published><domain>Example.COM.</domain><P>Reject</P><adkim>S</adkim></policy_published>`,
			strings.NewReplacer("<disposition>none", "<disposition>Quarantine", "<result>pass", "<result>PASS").Replace(rec("192.0.2.1", "1"))), "",
			func(a *Aggregate) bool {
				return a.Policy.Domain == "example.com" && a.Policy.P == "reject" && a.Policy.ADKIM == "s" &&
					a.Records[0].Disposition == "quarantine" && a.Records[0].DKIMResults[0].Result == "pass"
			}},
		{"unknown words kept", doc("", "", "", strings.NewReplacer("<disposition>none", "<disposition>Delivered", "<result>pass", "<result>hardfail").
			Replace(rec("192.0.2.1", "1"))), `"delivered" is not one of`,
			func(a *Aggregate) bool {
				return a.Records[0].Disposition == "delivered" && a.Records[0].DKIMResults[0].Result == "hardfail"
			}},
		{"ipv6 forms", doc("", "", "", rec("2001:DB8::1", "1")+rec("2001:0db8:0000:0000:0000:0000:0000:0002", "1")+
			rec("::ffff:192.0.2.9", "1")+rec("[2001:db8::3]", "1")+rec("fe80::1%eth0", "1")), "",
			func(a *Aggregate) bool {
				var got []string
				for _, r := range a.Records {
					got = append(got, r.SourceIP.String())
				}
				return slices.Equal(got, []string{"2001:db8::1", "2001:db8::2", "192.0.2.9", "2001:db8::3", "fe80::1"})
			}},
		{"missing version and envelope_to", doc("", "", "", ""), "", func(a *Aggregate) bool { return a.Version == "" && a.Records[0].EnvelopeTo == "" }},
		{"extra elements", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "</row>", "<colour>blue</colour></row>", 1)),
			"unknown element <colour> in <row> ignored", func(a *Aggregate) bool { return a.Messages() == 1 }},
		{"namespaced extension silently skipped", doc(`<feedback xmlns:x="urn:x">`, "", "",
			strings.Replace(rec("192.0.2.1", "1"), "</record>", "<x:ext><x:deep><x:er/></x:deep></x:ext></record>", 1)+`<x:more/>`), "",
			func(a *Aggregate) bool { return a.Messages() == 1 }},
		{"element order free", doc("", `<report_metadata><date_range><end>1700086399</end><begin>1700000000</begin></date_range>
<report_id>r1</report_id><email>r@example.net</email><org_name>Example</org_name></report_metadata>`, "", ""), "",
			func(a *Aggregate) bool { return a.ReportID == "r1" }},
		{"several spf", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "</auth_results>",
			"<spf><domain>a.example</domain><scope>helo</scope><result>none</result></spf><spf><domain>b.example</domain><result>pass</result></spf></auth_results>", 1)), "",
			func(a *Aggregate) bool {
				return len(a.Records[0].SPFResults) == 2 && a.Records[0].SPFResults[0].Scope == "helo"
			}},
		{"several errors", doc("", `<report_metadata><org_name>E</org_name><email>e@x</email><report_id>r</report_id>
<date_range><begin>1</begin><end>2</end></date_range><error>one</error><error>two</error></report_metadata>`, "", ""), "",
			func(a *Aggregate) bool { return slices.Equal(a.Errors, []string{"one", "two"}) }},
		{"empty reason", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "</policy_evaluated>", "<reason><type/><comment/></reason></policy_evaluated>", 1)),
			"empty <reason> ignored", func(a *Aggregate) bool { return len(a.Records[0].Reasons) == 0 }},
		{"stray wrapper", `<?xml version="1.0"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">` + doc("", "", "", ""),
			"wrapped in a stray <schema>", func(a *Aggregate) bool { return a.Messages() == 3 }},
		{"closed wrapper", `<wrap>` + doc("", "", "", "") + `</wrap>`, "wrapped in a stray <wrap>", func(a *Aggregate) bool { return a.Messages() == 3 }},
		{"trailing garbage", doc("", "", "", "") + "<feedback><oops", "after </feedback>", func(a *Aggregate) bool { return a.Messages() == 3 }},
		{"stray text", doc("", "", `<policy_published><domain>example.com</domain>11<p>none</p></policy_published>`, ""),
			`stray text "11"`, func(a *Aggregate) bool { return a.Policy.P == "none" }},
		{"invalid utf-8 repaired", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "<header_from>example.com", "<header_from>ex\x91ample.com", 1)),
			"replaced by U+FFFD", func(a *Aggregate) bool { return a.Records[0].HeaderFrom == "ex\uFFFDample.com" }},
		{"control character repaired", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "<selector>s", "<selector>s\x01", 1)),
			"replaced by U+FFFD", func(a *Aggregate) bool { return a.Records[0].DKIMResults[0].Selector == "s\uFFFD" }},
		{"latin-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?>` + doc("", strings.Replace(doc("", "", "", "")[:0]+
			`<report_metadata><org_name>Caf`+"\xe9"+`</org_name><email>r@example.net</email><report_id>r1</report_id>
<date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>`, "", "", 1), "", ""), "",
			func(a *Aggregate) bool { return a.Org == "Café" }},
		{"utf-8 bom", "\xef\xbb\xbf" + `<?xml version="1.0" encoding="utf-8"?>` + doc("", "", "", ""), "", func(a *Aggregate) bool { return a.Messages() == 3 }},
		{"utf-16 with bom", utf16le("\ufeff" + `<?xml version="1.0" encoding="UTF-16"?>` + strings.Replace(doc("", "", "", ""), "<org_name>Example", "<org_name>Exämple", 1)), "",
			func(a *Aggregate) bool { return a.Org == "Exämple" && a.Messages() == 3 }},
		{"utf-16 declared, 8-bit written", `<?xml version="1.0" encoding="UTF-16"?>` + doc("", "", "", ""), `declares encoding "utf-16" but is written in 8 bits`,
			func(a *Aggregate) bool { return a.Messages() == 3 }},
		{"us-ascii declared", `<?xml version="1.0" encoding="US-ASCII"?>` + doc("", "", "", ""), "", func(a *Aggregate) bool { return a.Messages() == 3 }},
		{"empty org uses email in key", doc("", `<report_metadata><org_name></org_name><email>R@Example.net</email><report_id>r9</report_id>
<date_range><begin>1</begin><end>1</end></date_range></report_metadata>`, "", ""), "org_name empty",
			func(a *Aggregate) bool { return a.Key() == "r@example.net\x00r9" }},
		{"no records", doc("", "", "", "<!-- none -->"), "no <record>", func(a *Aggregate) bool { return len(a.Records) == 0 }},
		{"zero count", doc("", "", "", rec("192.0.2.1", "0")), "", func(a *Aggregate) bool { return a.Records[0].Count == 0 }},
		{"9990 by content", doc("", "", `<policy_published><domain>example.com</domain><p>none</p><discovery_method>psl</discovery_method></policy_published>`, ""), "",
			func(a *Aggregate) bool { return a.Format == FormatRFC9990 && a.Policy.DiscoveryMethod == "psl" }},
		{"bad pct", doc("", "", `<policy_published><domain>example.com</domain><p>none</p><pct>abc</pct></policy_published>`, ""), "<pct>",
			func(a *Aggregate) bool { return a.Policy.Pct == 100 }},
		{"pct 0", doc("", "", `<policy_published><domain>example.com</domain><p>none</p><pct>0</pct></policy_published>`, ""), "",
			func(a *Aggregate) bool { return a.Policy.Pct == 0 }},
		{"descriptive duplicate", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "<result>pass</result></dkim>",
			"<result>pass</result><human_result>a</human_result><human_result>b</human_result></dkim>", 1)),
			"<human_result> given again; the first kept", func(a *Aggregate) bool { return a.Messages() == 1 }},
		{"empty dkim result", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "</auth_results>", "<dkim/><spf><domain/><result/></spf></auth_results>", 1)),
			"empty <dkim> result ignored", func(a *Aggregate) bool {
				return len(a.Records[0].DKIMResults) == 1 && len(a.Records[0].SPFResults) == 0 && hasWarning(a.Warnings, "empty <spf> result ignored")
			}},
		{"comments and cdata", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "<count>1</count>", "<count><!-- c --><![CDATA[1]]></count>", 1)), "",
			func(a *Aggregate) bool { return a.Messages() == 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := parse(t, c.doc)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.warn == "" && len(a.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", a.Warnings)
			}
			if c.warn != "" && !hasWarning(a.Warnings, c.warn) {
				t.Errorf("warnings %q lack %q", a.Warnings, c.warn)
			}
			if !c.chk(a) {
				t.Errorf("unexpected result: %+v", a)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	meta := func(id, begin, end string) string {
		return `<report_metadata><org_name>E</org_name><email>e@x</email><report_id>` + id + `</report_id>
<date_range><begin>` + begin + `</begin><end>` + end + `</end></date_range></report_metadata>`
	}
	cases := []struct {
		name string
		doc  string
		kind error
		line int
		text string
	}{
		{"empty", "", ErrEmpty, 0, ""},
		{"white space", " \n\t\n", ErrEmpty, 0, ""},
		{"much white space", strings.Repeat(" ", 5000), ErrEmpty, 0, ""},
		{"not xml", "hello", ErrNotReport, 0, ""},
		{"other root", "<html><body/></html>", ErrNotReport, 0, "holds <body>, not <feedback>"},
		{"broken", doc("", "", "", "") + "", nil, 0, ""}, // placeholder replaced below
		{"truncated", doc("", "", "", "")[:200], ErrNotWellFormed, strings.Count(doc("", "", "", "")[:200], "\n") + 1, "unexpected EOF"},
		{"mismatched tag", "<feedback>\n<report_metadata>\n</policy_published>", ErrNotWellFormed, 3, "element <report_metadata> closed by </policy_published>"},
		{"undefined entity", doc("", meta("r&x;", "1", "2"), "", ""), ErrNotWellFormed, 2, "entity &x;"},
		{"no report_id", doc("", meta(" ", "1", "2"), "", ""), ErrInvalid, 0, "no report_id"},
		{"end before begin", doc("", meta("r", "20", "10"), "", ""), ErrInvalid, 0, "ends (10) before it begins (20)"},
		{"bad begin", doc("", meta("r", "yesterday", "10"), "", ""), ErrInvalid, 0, "<begin>"},
		{"no date range", doc("", `<report_metadata><org_name>E</org_name><report_id>r</report_id></report_metadata>`, "", ""), ErrInvalid, 0, "no date_range"},
		{"no reporter", doc("", `<report_metadata><report_id>r</report_id><date_range><begin>1</begin><end>1</end></date_range></report_metadata>`, "", ""),
			ErrInvalid, 0, "neither org_name nor email"},
		{"no domain", doc("", "", "<policy_published><p>none</p></policy_published>", ""), ErrInvalid, 0, "no domain"},
		{"no metadata", "<feedback>" + rec("192.0.2.1", "1") + "</feedback>", ErrInvalid, 0, "no <report_metadata>"},
		{"negative count", doc("", "", "", rec("192.0.2.1", "-1")), ErrInvalid, 0, `count "-1"`},
		{"fractional count", doc("", "", "", rec("192.0.2.1", "1.5")), ErrInvalid, 0, `count "1.5"`},
		{"bad ip", doc("", "", "", rec("192.0.2.300", "1")), ErrInvalid, 0, `source_ip "192.0.2.300"`},
		{"no ip", doc("", "", "", rec("", "1")), ErrInvalid, 0, "no source_ip"},
		{"duplicate count", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "<count>1</count>", "<count>1</count><count>5</count>", 1)),
			ErrInvalid, 0, "<count> appears more than once"},
		{"duplicate report_id", doc("", strings.Replace(meta("a", "1", "2"), "<report_id>", "<report_id>b</report_id><report_id>", 1), "", ""),
			ErrInvalid, 0, "<report_id> appears more than once"},
		{"no row", doc("", "", "", "<record><identifiers/></record>"), ErrInvalid, 0, "no <row>"},
		{"overflow", doc("", "", "", rec("192.0.2.1", "9223372036854775807")+rec("192.0.2.2", "1")), ErrInvalid, 0, "overflow"},
		{"unknown encoding", `<?xml version="1.0" encoding="x-klingon"?><feedback/>`, ErrUnsupported, 1, "x-klingon"},
		{"doctype", `<?xml version="1.0"?>` + "\n<!DOCTYPE feedback>\n" + doc("", "", "", ""), ErrDTD, 2, "<!DOCTYPE refused"},
		{"deep", "<feedback>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</feedback>", ErrLimit, 0, "nested deeper than 64"},
		{"too many tokens in a record", doc("", "", "", strings.Replace(rec("192.0.2.1", "1"), "</auth_results>",
			strings.Repeat("<dkim><domain>d</domain><result>pass</result></dkim>", 5000)+"</auth_results>", 1)), ErrLimit, 0, "XML tokens"},
	}
	cases[5] = struct {
		name string
		doc  string
		kind error
		line int
		text string
	}{"parsedmarc-like broken", "<?xml version=\"1.0\"?>\n<feedback>\n<report_metadata>\n<email><bad@x></email>", ErrNotWellFormed, 4, "not well-formed XML"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := parse(t, c.doc)
			if a != nil {
				t.Fatalf("accepted: %+v", a)
			}
			wantErr(t, err, c.kind, c.text)
			if c.line != 0 && errLine(err) != c.line {
				t.Errorf("line %d, want %d (%v)", errLine(err), c.line, err)
			}
		})
	}
}

func TestMaxRecords(t *testing.T) {
	var b strings.Builder
	for i := range 11 {
		b.WriteString(rec(fmt.Sprintf("192.0.2.%d", i+1), "1"))
	}
	s := doc("", "", "", b.String())
	lim := DefaultLimits()
	lim.MaxRecords = 10
	if _, err := ParseAggregate(strings.NewReader(s), lim); err == nil {
		t.Fatal("11 records accepted with MaxRecords 10")
	} else {
		wantErr(t, err, ErrLimit, "more than 10 records")
	}
	lim.MaxRecords = 11
	if a, err := ParseAggregate(strings.NewReader(s), lim); err != nil || len(a.Records) != 11 {
		t.Fatalf("11 records with MaxRecords 11: %v", err)
	}
	lim.MaxDecompressed = int64(len(s) - 1)
	_, err := ParseAggregate(strings.NewReader(s), lim)
	wantErr(t, err, ErrLimit, "larger than")
	lim.MaxDecompressed = int64(len(s))
	if _, err := ParseAggregate(strings.NewReader(s), lim); err != nil {
		t.Fatalf("document of exactly MaxDecompressed bytes: %v", err)
	}
}

// TestXXE refuses a document that would read /etc/passwd through an
// external entity, and shows nothing of the file in the refusal.
func TestXXE(t *testing.T) {
	for name, s := range map[string]string{
		"external entity": `<?xml version="1.0"?>
<!DOCTYPE feedback [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<feedback><report_metadata><org_name>&xxe;</org_name><email>e@x</email><report_id>&xxe;</report_id>
<date_range><begin>1</begin><end>2</end></date_range></report_metadata>
<policy_published><domain>example.com</domain><p>none</p></policy_published></feedback>`,
		"parameter entity": `<?xml version="1.0"?>
<!DOCTYPE feedback [ <!ENTITY % p SYSTEM "http://127.0.0.1:1/evil.dtd"> %p; ]>
<feedback/>`,
		"billion laughs": `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>`,
		"doctype inside the document": "<feedback>\n<!DOCTYPE x>\n</feedback>",
	} {
		t.Run(name, func(t *testing.T) {
			a, err := ParseAggregate(strings.NewReader(s), DefaultLimits())
			if a != nil {
				t.Fatalf("accepted: %+v", a)
			}
			wantErr(t, err, ErrDTD, "refused")
			for _, leak := range []string{"root:", "/bin/", "lollol"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("refusal %q leaks %q", err, leak)
				}
			}
		})
	}
	// The same through Walk, from a file.
	p := filepath.Join(t.TempDir(), "xxe.xml")
	writeFile(t, p, []byte(`<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><feedback>&xxe;</feedback>`))
	items := walkAll(t, p, DefaultLimits())
	if len(items) != 1 || items[0].Err == nil {
		t.Fatalf("items %+v", items)
	}
	wantErr(t, items[0].Err, ErrDTD, p+":1: DTD not allowed")
}

// TestParseAggregateGzip: ParseAggregate takes gzip as well as XML, and
// sends a zip to Walk or ParseMessage.
func TestParseAggregateGzip(t *testing.T) {
	x := readTestdata(t, "google.xml")
	a, err := ParseAggregate(bytes.NewReader(gzipBytes(t, x)), DefaultLimits())
	if err != nil || a.Messages() != 164 {
		t.Fatalf("%v %+v", err, a)
	}
	_, err = ParseAggregate(bytes.NewReader(zipBytes(t, "g.xml", string(x))), DefaultLimits())
	wantErr(t, err, ErrUnsupported, "zip archive")
	lim := DefaultLimits()
	lim.MaxRatio = -1
	lim.MaxDecompressed = 2 << 20
	_, err = ParseAggregate(bytes.NewReader(gzipRepeat(t, 20)), lim)
	wantErr(t, err, ErrLimit, "decompresses to more than 2 MiB")
}

func TestLimitsDefaults(t *testing.T) {
	if (Limits{}).withDefaults() != DefaultLimits() {
		t.Errorf("Limits{} is not DefaultLimits()")
	}
	l := Limits{MaxRecords: 5, MaxRatio: -1}.withDefaults()
	if l.MaxRecords != 5 || l.MaxRatio != 0 || l.MaxDecompressed != DefaultLimits().MaxDecompressed {
		t.Errorf("%+v", l)
	}
}

func utf16le(s string) string {
	var b []byte
	for _, r := range s {
		if r > 0xffff {
			panic("BMP only")
		}
		b = append(b, byte(r), byte(r>>8))
	}
	return string(b)
}
