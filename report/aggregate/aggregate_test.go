package aggregate

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/testenv"
	"github.com/dmarcd/dmarcd/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	day0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	day1 = day0.Add(24*time.Hour - time.Second)
)

func testMeta() Metadata {
	return Metadata{
		OrgName:  "mx.example.net",
		Email:    "dmarc-reports@example.net",
		ReportID: "R1777593600EXAMPLECOM",
		Begin:    day0,
		End:      day1,
	}
}

func testPolicy() Policy {
	return Policy{
		Domain:          "example.com",
		ADKIM:           "r",
		ASPF:            "r",
		P:               "reject",
		SP:              "quarantine",
		Pct:             100,
		FO:              "0",
		DiscoveryMethod: "psl",
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func passRecord(addr string, n int64) Record {
	return Record{
		SourceIP:     ip(addr),
		Count:        n,
		Disposition:  "none",
		DKIMAligned:  true,
		SPFAligned:   true,
		HeaderFrom:   "example.com",
		EnvelopeFrom: "example.com",
		EnvelopeTo:   []string{"example.net"},
		DKIM:         []report.DKIMResult{{Domain: "example.com", Selector: "s2026", Result: "pass"}},
		SPF:          []report.SPFResult{{Domain: "example.com", Scope: "mfrom", Result: "pass"}},
	}
}

// hostile holds what an attacker can put in the names the milter records:
// markup, an entity, a CDATA end, control bytes, CR LF, invalid UTF-8, a C1
// control, U+FFFE, and valid non-ASCII that must survive.
const hostile = "<evil>&amp;]]>\x00\x01\x1b\x7f\r\nx\xff\xfe\xc3(\u0085\ufffe é 漢 😀 \"'"

type reportCase struct {
	name    string
	meta    func(*Metadata)
	policy  func(*Policy)
	records []Record
}

func cases() []reportCase {
	nullSender := passRecord("203.0.113.9", 2)
	nullSender.EnvelopeFrom = ""
	nullSender.SPFAligned = false
	nullSender.DKIM = nil
	nullSender.DKIMAligned = false
	nullSender.Disposition = "reject"
	nullSender.SPF = []report.SPFResult{{Domain: "mail.example.org", Scope: "helo", Result: "pass"}}

	heloAndMfrom := passRecord("198.51.100.20", 3)
	heloAndMfrom.SPF = []report.SPFResult{
		{Domain: "mx1.example.com", Scope: "helo", Result: "pass"},
		{Domain: "example.com", Scope: "mfrom", Result: "softfail"},
	}
	heloAndMfrom.SPFAligned = false
	heloOnly := passRecord("198.51.100.21", 1)
	heloOnly.SPF = []report.SPFResult{{Domain: "mx2.example.com", Scope: "helo", Result: "fail"}}
	heloOnly.SPFAligned = false

	noDKIM := passRecord("192.0.2.44", 7)
	noDKIM.DKIM = nil
	noDKIM.DKIMAligned = false

	severalDKIM := passRecord("192.0.2.45", 12)
	severalDKIM.DKIM = []report.DKIMResult{
		{Domain: "example.com", Selector: "s2026", Result: "pass"},
		{Domain: "esp.example", Selector: "k1", Result: "PASS"},
		{Domain: "example.com", Selector: "old", Result: "fail"},
		{Domain: "mailer.example.com", Selector: "", Result: "hardfail"},
		{Domain: "x.example", Selector: "x", Result: "temperror"},
		{Domain: "y.example", Selector: "y", Result: "something-new"},
	}

	overrides := passRecord("192.0.2.50", 4)
	overrides.DKIMAligned, overrides.SPFAligned = false, false
	overrides.Disposition = "quarantine"
	overrides.Reasons = []report.Override{
		{Type: "policy_test_mode", Comment: "t=y"},
		{Type: "local_policy", Comment: "trusted host list (203.0.113.0/24)"},
		{Type: "sampled_out", Comment: "pct=50"},
		{Type: "forwarded"},
		{Type: "trusted_forwarder", Comment: "ARC sealed by lists.example.org"},
		{Type: "mailing_list"},
		{Type: "Other", Comment: "upper-case type"},
		{Type: "arc_override", Comment: "a type neither format knows"},
		{Type: ""},
	}

	return []reportCase{
		{name: "one_record", records: []Record{passRecord("192.0.2.1", 1)}},
		{name: "many_records", records: []Record{
			passRecord("192.0.2.1", 1000),
			passRecord("192.0.2.2", 1),
			noDKIM,
			{SourceIP: ip("198.51.100.99"), Count: 9, Disposition: "reject", HeaderFrom: "sub.example.com",
				EnvelopeFrom: "spoof.example", EnvelopeTo: []string{"example.net", "EXAMPLE.NET."},
				SPF: []report.SPFResult{{Domain: "spoof.example", Scope: "mfrom", Result: "fail"}}},
			{SourceIP: ip("198.51.100.100"), Count: 3, Disposition: "pass", DKIMAligned: true, HeaderFrom: "example.com",
				EnvelopeFrom: "bounce.esp.example", EnvelopeTo: []string{"example.net", "example.org"},
				DKIM: []report.DKIMResult{{Domain: "example.com", Selector: "esp", Result: "pass"}},
				SPF:  []report.SPFResult{{Domain: "bounce.esp.example", Result: "pass"}}},
		}},
		{name: "ipv4_ipv6", records: []Record{
			passRecord("192.0.2.1", 1),
			passRecord("2001:db8::1", 2),
			passRecord("2001:db8:0:0:1:0:0:1", 3),
			passRecord("::ffff:198.51.100.7", 4),
			passRecord("fe80::1%eth0", 5),
			passRecord("2607:f8b0:4864:20::132", 6),
			passRecord("::", 7),
		}},
		{
			name:    "overrides",
			policy:  func(p *Policy) { p.Testing, p.DiscoveryMethod, p.NP = true, "treewalk", "reject" },
			records: []Record{overrides},
		},
		{name: "no_dkim", records: []Record{noDKIM}},
		{name: "several_dkim", records: []Record{severalDKIM}},
		{name: "null_sender", records: []Record{nullSender}},
		{name: "helo_scope", records: []Record{heloAndMfrom, heloOnly}},
		{name: "no_spf", records: []Record{func() Record { r := passRecord("192.0.2.60", 1); r.SPF = nil; r.SPFAligned = false; return r }()}},
		{
			name: "hostile",
			meta: func(m *Metadata) {
				m.OrgName, m.Email, m.ExtraContactInfo = "Org "+hostile, "a&b<c>@example.net", hostile
				m.ReportID, m.Errors, m.Generator = "id"+hostile, []string{hostile}, "gen "+hostile
			},
			policy: func(p *Policy) { p.Domain, p.FO = "example.com"+hostile, "1:d"+hostile },
			records: []Record{{
				SourceIP: ip("192.0.2.66"), Count: 1, Disposition: hostile, HeaderFrom: hostile + ".example",
				EnvelopeFrom: "x" + hostile, EnvelopeTo: []string{hostile},
				Reasons: []report.Override{{Type: hostile, Comment: hostile}, {Type: "local_policy", Comment: hostile}},
				DKIM:    []report.DKIMResult{{Domain: hostile, Selector: hostile, Result: hostile}},
				SPF:     []report.SPFResult{{Domain: hostile, Scope: hostile, Result: hostile}},
			}},
		},
		{
			name: "errors_metadata",
			meta: func(m *Metadata) {
				m.ExtraContactInfo = "https://mx.example.net/dmarc"
				m.Errors = []string{"duplicate sp tag; the first applies", "", "rua=mailto:x@example.org: external destination not authorized"}
				m.Generator = "dmarcd 0.1.0"
			},
			records: []Record{passRecord("192.0.2.1", 1)},
		},
		{
			name: "policy_defaults",
			policy: func(p *Policy) {
				*p = Policy{Domain: "example.org", P: "Quarantine", Pct: 100}
			},
			records: []Record{passRecord("192.0.2.1", 1)},
		},
	}
}

func render(t testing.TB, f Format, c reportCase) []byte {
	t.Helper()
	m, p := testMeta(), testPolicy()
	if c.meta != nil {
		c.meta(&m)
	}
	if c.policy != nil {
		c.policy(&p)
	}
	var buf bytes.Buffer
	if err := Write(&buf, f, m, p, FromSlice(c.records)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// TestGolden writes every case in both formats, compares the output with
// testdata/ (go test -update rewrites it) and checks encoding/xml reads it.
func TestGolden(t *testing.T) {
	for _, f := range []Format{RFC7489, RFC9990} {
		for _, c := range cases() {
			t.Run(c.name+"."+f.String(), func(t *testing.T) {
				got := render(t, f, c)
				golden := filepath.Join("testdata", c.name+"."+f.String()+".xml")
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, got)
				}
				fb := parse(t, got)
				if len(fb.Records) != len(c.records) {
					t.Errorf("read back %d records, wrote %d", len(fb.Records), len(c.records))
				}
			})
		}
	}
}

// TestSchemaValid validates every case, in both formats, against the
// format's schema with xmllint (skipped without xmllint or the reference
// schemas, failed under DMARCD_CI).
func TestSchemaValid(t *testing.T) {
	for _, f := range []Format{RFC7489, RFC9990} {
		for _, c := range cases() {
			t.Run(c.name+"."+f.String(), func(t *testing.T) {
				doc := render(t, f, c)
				if msg := xmllint(t, f, doc); msg != "" {
					t.Errorf("not valid against the %s schema: %s\n%s", f, msg, doc)
				}
			})
		}
	}
}

// TestRoundTrip reads reports back with encoding/xml and checks each
// value, including the mapping decisions per format.
func TestRoundTrip(t *testing.T) {
	all := cases()
	byName := map[string]reportCase{}
	for _, c := range all {
		byName[c.name] = c
	}
	for _, f := range []Format{RFC7489, RFC9990} {
		t.Run(f.String(), func(t *testing.T) {
			fb := parse(t, render(t, f, byName["errors_metadata"]))
			if fb.Version != "1.0" {
				t.Errorf("version = %q, want 1.0", fb.Version)
			}
			wantNS := ""
			if f == RFC9990 {
				wantNS = Namespace9990
			}
			if fb.XMLName.Space != wantNS {
				t.Errorf("namespace = %q, want %q", fb.XMLName.Space, wantNS)
			}
			md := fb.Metadata
			if md.OrgName != "mx.example.net" || md.Email != "dmarc-reports@example.net" || md.ReportID != "R1777593600EXAMPLECOM" {
				t.Errorf("metadata = %+v", md)
			}
			if md.Begin != day0.Unix() || md.End != day1.Unix() {
				t.Errorf("date_range = %d..%d, want %d..%d", md.Begin, md.End, day0.Unix(), day1.Unix())
			}
			wantErrors := []string{"duplicate sp tag; the first applies", "rua=mailto:x@example.org: external destination not authorized"}
			wantGen := ""
			if f == RFC9990 {
				wantErrors = []string{strings.Join(wantErrors, "; ")}
				wantGen = "dmarcd 0.1.0"
			}
			if fmt.Sprint(md.Errors) != fmt.Sprint(wantErrors) {
				t.Errorf("errors = %q, want %q", md.Errors, wantErrors)
			}
			if md.Generator != wantGen {
				t.Errorf("generator = %q, want %q", md.Generator, wantGen)
			}
			if md.ExtraContactInfo != "https://mx.example.net/dmarc" {
				t.Errorf("extra_contact_info = %q", md.ExtraContactInfo)
			}

			// Policy: discovered values, defaults filled in.
			pp := parse(t, render(t, f, byName["policy_defaults"])).Policy
			want := "example.org r r quarantine quarantine 100 0  "
			if f == RFC9990 {
				want = "example.org r r quarantine quarantine  0 quarantine n"
			}
			if got := strings.Join([]string{pp.Domain, pp.ADKIM, pp.ASPF, pp.P, pp.SP, pp.Pct, pp.FO, pp.NP, pp.Testing}, " "); got != want {
				t.Errorf("policy_published = %q, want %q", got, want)
			}
			pp = parse(t, render(t, f, byName["overrides"])).Policy
			switch f {
			case RFC7489:
				if pp.Pct != "0" || pp.NP != "" || pp.Testing != "" || pp.DiscoveryMethod != "" {
					t.Errorf("RFC 7489 testing policy: pct=%q np=%q testing=%q discovery=%q; want pct 0 and no RFC 9990 elements", pp.Pct, pp.NP, pp.Testing, pp.DiscoveryMethod)
				}
			case RFC9990:
				if pp.Pct != "" || pp.NP != "reject" || pp.Testing != "y" || pp.DiscoveryMethod != "treewalk" {
					t.Errorf("RFC 9990 testing policy: pct=%q np=%q testing=%q discovery=%q", pp.Pct, pp.NP, pp.Testing, pp.DiscoveryMethod)
				}
			}

			// Overrides: types mapped to each enumeration, the lost word kept
			// at the head of the comment.
			rec := parse(t, render(t, f, byName["overrides"])).Records[0]
			var reasons []string
			for _, r := range rec.Reasons {
				reasons = append(reasons, r.Type+"="+ptr(r.Comment))
			}
			wantReasons := map[Format]string{
				RFC7489: "[sampled_out=policy_test_mode: t=y local_policy=trusted host list (203.0.113.0/24) sampled_out=pct=50 forwarded=<absent> " +
					"trusted_forwarder=ARC sealed by lists.example.org mailing_list=<absent> other=upper-case type other=arc_override: a type neither format knows other=<absent>]",
				RFC9990: "[policy_test_mode=t=y local_policy=trusted host list (203.0.113.0/24) other=sampled_out: pct=50 other=forwarded " +
					"trusted_forwarder=ARC sealed by lists.example.org mailing_list=<absent> other=upper-case type other=arc_override: a type neither format knows other=<absent>]",
			}[f]
			if got := fmt.Sprint(reasons); got != wantReasons {
				t.Errorf("reasons =\n%s\nwant\n%s", got, wantReasons)
			}
			if rec.Disposition != "quarantine" || rec.DKIM != "fail" || rec.SPF != "fail" {
				t.Errorf("policy_evaluated = %s/%s/%s", rec.Disposition, rec.DKIM, rec.SPF)
			}

			// Disposition pass exists in RFC 9990 only; envelope_to only when
			// the record has one recipient domain.
			many := parse(t, render(t, f, byName["many_records"])).Records
			wantDisp := map[Format]string{RFC7489: "none", RFC9990: "pass"}[f]
			if many[4].Disposition != wantDisp {
				t.Errorf("disposition pass written as %q, want %q", many[4].Disposition, wantDisp)
			}
			if got := ptr(many[3].EnvelopeTo); got != "example.net" {
				t.Errorf("envelope_to of one domain twice = %q", got)
			}
			if got := ptr(many[4].EnvelopeTo); got != "<absent>" {
				t.Errorf("envelope_to of two domains = %q, want none", got)
			}
			if many[0].Count != 1000 {
				t.Errorf("count = %d", many[0].Count)
			}

			// Addresses read back as the same address.
			for i, r := range parse(t, render(t, f, byName["ipv4_ipv6"])).Records {
				a, err := netip.ParseAddr(r.SourceIP)
				if err != nil {
					t.Errorf("source_ip %q: %v", r.SourceIP, err)
					continue
				}
				in := byName["ipv4_ipv6"].records[i].SourceIP.Unmap().WithZone("")
				if a != in {
					t.Errorf("source_ip %q reads as %v, want %v", r.SourceIP, a, in)
				}
				if f == RFC7489 && a.Is6() && strings.Count(r.SourceIP, ":") != 7 {
					t.Errorf("RFC 7489 IPv6 %q not in eight groups", r.SourceIP)
				}
			}

			// Null sender: envelope_from present and empty; the HELO result
			// stays helo under RFC 7489 and is the MAIL FROM identity (RFC
			// 7208 §2.4) under RFC 9990.
			ns := parse(t, render(t, f, byName["null_sender"])).Records[0]
			if ns.EnvelopeFrom == nil || *ns.EnvelopeFrom != "" {
				t.Errorf("null sender envelope_from = %q, want present and empty", ptr(ns.EnvelopeFrom))
			}
			wantScope := map[Format]string{RFC7489: "helo", RFC9990: "mfrom"}[f]
			if len(ns.AuthSPF) != 1 || ns.AuthSPF[0].Scope != wantScope || ns.AuthSPF[0].Domain != "mail.example.org" {
				t.Errorf("null sender spf = %+v, want one %s result for mail.example.org", ns.AuthSPF, wantScope)
			}

			// HELO results of a non-null sender: kept by RFC 7489, dropped by
			// RFC 9990 (mfrom only, at most one).
			hs := parse(t, render(t, f, byName["helo_scope"])).Records
			got := fmt.Sprint(hs[0].AuthSPF, hs[1].AuthSPF)
			wantSPF := map[Format]string{
				RFC7489: "[{mx1.example.com helo pass} {example.com mfrom softfail}] [{mx2.example.com helo fail}]",
				RFC9990: "[{example.com mfrom softfail}] []",
			}[f]
			if got != wantSPF {
				t.Errorf("helo-scope spf = %s, want %s", got, wantSPF)
			}

			// No SPF at all: RFC 7489 needs one, RFC 9990 none.
			nsp := parse(t, render(t, f, byName["no_spf"])).Records[0].AuthSPF
			wantNoSPF := map[Format]string{RFC7489: "[{example.com mfrom none}]", RFC9990: "[]"}[f]
			if fmt.Sprint(nsp) != wantNoSPF {
				t.Errorf("no spf = %v, want %s", nsp, wantNoSPF)
			}

			// DKIM: results mapped, selector required by RFC 9990 only.
			var dk []string
			for _, d := range parse(t, render(t, f, byName["several_dkim"])).Records[0].AuthDKIM {
				dk = append(dk, d.Domain+"/"+ptr(d.Selector)+"/"+d.Result)
			}
			wantDK := "[example.com/s2026/pass esp.example/k1/pass example.com/old/fail mailer.example.com/<absent>/fail x.example/x/temperror y.example/y/neutral]"
			if f == RFC9990 {
				wantDK = strings.Replace(wantDK, "<absent>", "", 1)
			}
			if fmt.Sprint(dk) != wantDK {
				t.Errorf("dkim = %v\nwant %s", dk, wantDK)
			}
			if d := parse(t, render(t, f, byName["no_dkim"])).Records[0]; len(d.AuthDKIM) != 0 || d.DKIM != "fail" {
				t.Errorf("no dkim: %d results, aligned %s", len(d.AuthDKIM), d.DKIM)
			}
		})
	}
}

// expectedText is what text should make of s: each rune that XML 1.0 can
// carry (DEL and C1 controls excepted), U+FFFD for the rest. for range
// yields U+FFFD for each invalid byte, as the writer does.
func expectedText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20 || r >= 0x7f && r <= 0x9f || r == 0xfffe || r == 0xffff:
			r = 0xfffd
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestHostileStrings checks that attacker-controlled text comes back as
// written, with only what XML cannot carry replaced.
func TestHostileStrings(t *testing.T) {
	var c reportCase
	for _, x := range cases() {
		if x.name == "hostile" {
			c = x
		}
	}
	for _, f := range []Format{RFC7489, RFC9990} {
		doc := render(t, f, c)
		fb := parse(t, doc)
		want := expectedText(hostile)
		r := fb.Records[0]
		checks := map[string][2]string{
			"org_name":           {fb.Metadata.OrgName, "Org " + want},
			"email":              {fb.Metadata.Email, "a&b<c>@example.net"},
			"extra_contact_info": {fb.Metadata.ExtraContactInfo, want},
			"report_id":          {fb.Metadata.ReportID, "id" + want},
			"domain":             {fb.Policy.Domain, "example.com" + want},
			"fo":                 {fb.Policy.FO, "1:d" + want},
			"header_from":        {ptr(r.HeaderFrom), want + ".example"},
			"envelope_from":      {ptr(r.EnvelopeFrom), "x" + want},
			"envelope_to":        {ptr(r.EnvelopeTo), want},
			"dkim domain":        {r.AuthDKIM[0].Domain, want},
			"dkim selector":      {ptr(r.AuthDKIM[0].Selector), want},
			"reason comment":     {ptr(r.Reasons[0].Comment), hostile2(want)},
			"reason comment 2":   {ptr(r.Reasons[1].Comment), want},
			"disposition":        {r.Disposition, "none"},
			"dkim result":        {r.AuthDKIM[0].Result, "neutral"},
			"spf result":         {r.AuthSPF[0].Result, "neutral"},
			"reason type":        {r.Reasons[0].Type, "other"},
		}
		for name, c := range checks {
			if c[0] != c[1] {
				t.Errorf("%s: %s = %q, want %q", f, name, c[0], c[1])
			}
		}
		if bytes.Contains(doc, []byte("<evil>")) || bytes.Contains(doc, []byte("]]>")) || bytes.ContainsAny(doc, "\x00\x01\x1b\x7f\r") {
			t.Errorf("%s: raw hostile bytes in the output", f)
		}
	}
}

// hostile2 is the comment of a reason whose type is hostile too: the
// type is kept at the head of the comment.
func hostile2(want string) string { return want + ": " + want }

// TestManyDKIMIsCappedByPriority checks the 100-signature cap and its
// order: strictly aligned passes, relaxed passes, other passes, the rest.
func TestManyDKIMIsCappedByPriority(t *testing.T) {
	r := passRecord("192.0.2.1", 1)
	r.HeaderFrom = "mail.example.com"
	r.DKIM = nil
	for i := range 150 {
		r.DKIM = append(r.DKIM, report.DKIMResult{Domain: fmt.Sprintf("fail%d.example", i), Selector: "s", Result: "fail"})
	}
	r.DKIM = append(r.DKIM,
		report.DKIMResult{Domain: "other.example", Selector: "o", Result: "pass"},
		report.DKIMResult{Domain: "example.com", Selector: "relaxed", Result: "pass"},
		report.DKIMResult{Domain: "MAIL.example.com.", Selector: "strict", Result: "pass"},
	)
	for _, f := range []Format{RFC7489, RFC9990} {
		var buf bytes.Buffer
		if err := Write(&buf, f, testMeta(), testPolicy(), FromSlice([]Record{r})); err != nil {
			t.Fatal(err)
		}
		got := parse(t, buf.Bytes()).Records[0].AuthDKIM
		if len(got) != MaxDKIMPerRecord {
			t.Fatalf("%s: %d dkim results, want %d", f, len(got), MaxDKIMPerRecord)
		}
		order := []string{ptr(got[0].Selector), ptr(got[1].Selector), ptr(got[2].Selector), got[3].Domain, got[99].Domain}
		if fmt.Sprint(order) != "[strict relaxed o fail0.example fail96.example]" {
			t.Errorf("%s: order = %v", f, order)
		}
		t.Run("schema."+f.String(), func(t *testing.T) {
			if msg := xmllint(t, f, buf.Bytes()); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	good := FromSlice([]Record{passRecord("192.0.2.1", 1)})
	tests := []struct {
		name string
		f    Format
		m    func(*Metadata)
		p    func(*Policy)
		next func() (Record, bool, error)
		want error
		text string
	}{
		{name: "no records", next: FromSlice(nil), want: ErrNoRecords},
		{name: "next fails at once", next: func() (Record, bool, error) { return Record{}, false, errors.New("disk on fire") }, text: "disk on fire"},
		{name: "no org_name", m: func(m *Metadata) { m.OrgName = " " }, want: ErrInvalid, text: "org_name"},
		{name: "no email nor id", m: func(m *Metadata) { m.Email, m.ReportID = "", "" }, want: ErrInvalid, text: "email, report_id"},
		{name: "no dates", m: func(m *Metadata) { m.Begin = time.Time{} }, want: ErrInvalid, text: "date_range"},
		{name: "backwards", m: func(m *Metadata) { m.Begin, m.End = m.End, m.Begin }, want: ErrInvalid, text: "ends"},
		{name: "no policy domain", p: func(p *Policy) { p.Domain = "" }, want: ErrInvalid},
		{name: "unknown format", f: Format(7), want: ErrInvalid},
		{name: "no source ip", next: FromSlice([]Record{{Count: 1}}), want: ErrInvalid, text: "source IP"},
		{name: "zero count", next: FromSlice([]Record{{SourceIP: ip("192.0.2.1")}}), want: ErrInvalid, text: "count 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, p := testMeta(), testPolicy()
			if tc.m != nil {
				tc.m(&m)
			}
			if tc.p != nil {
				tc.p(&p)
			}
			next := tc.next
			if next == nil {
				next = good
			}
			var buf bytes.Buffer
			err := Write(&buf, tc.f, m, p, next)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
			if buf.Len() != 0 && tc.name != "no source ip" && tc.name != "zero count" {
				t.Errorf("%d bytes written before the error", buf.Len())
			}
		})
	}

	// An error from next after some records is returned with its place.
	n := 0
	err := Write(&bytes.Buffer{}, RFC7489, testMeta(), testPolicy(), func() (Record, bool, error) {
		n++
		if n == 3 {
			return Record{}, false, errors.New("store went away")
		}
		return passRecord("192.0.2.1", 1), true, nil
	})
	if err == nil || !strings.Contains(err.Error(), "record 3") || !strings.Contains(err.Error(), "store went away") {
		t.Errorf("late next error = %v", err)
	}
}

// failingWriter fails after limit bytes.
type failingWriter struct{ n, limit int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		return 0, errors.New("connection reset")
	}
	w.n += len(p)
	return len(p), nil
}

// TestWriteStopsWhenTheWriterFails: a broken writer ends the report soon,
// without reading every record first.
func TestWriteStopsWhenTheWriterFails(t *testing.T) {
	read := 0
	next := func() (Record, bool, error) {
		read++
		return passRecord("192.0.2.1", 1), read <= 1_000_000, nil
	}
	err := Write(&failingWriter{limit: 100 << 10}, RFC7489, testMeta(), testPolicy(), next)
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("error = %v", err)
	}
	if read > 10_000 {
		t.Errorf("read %d records after the writer failed", read)
	}
}

// TestSchemasAreUsable is the control experiment for the schema tests: the
// RFC 9990 sample and a real RFC 7489 report validate, and a compressed
// IPv6 address fails RFC 7489's pattern (why IPv6 is written in full).
func TestSchemasAreUsable(t *testing.T) {
	dir := testenv.ReferenceDir(t, "schemas")
	sample, err := os.ReadFile(filepath.Join(dir, "reports", "aggregate", "draft-ietf-dmarc-aggregate-reporting__dmarc-xml-0.2.xml"))
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	if msg := xmllint(t, RFC9990, sample); msg != "" {
		t.Errorf("the RFC 9990 sample does not validate: %s", msg)
	}
	doc := render(t, RFC7489, reportCase{records: []Record{passRecord("2001:db8::1", 1)}})
	if msg := xmllint(t, RFC7489, doc); msg != "" {
		t.Fatalf("our IPv6 report does not validate: %s", msg)
	}
	compressed := bytes.Replace(doc, []byte("2001:db8:0:0:0:0:0:1"), []byte("2001:db8::1"), 1)
	if bytes.Equal(compressed, doc) {
		t.Fatal("expanded address not found in the output")
	}
	if msg := xmllint(t, RFC7489, compressed); msg == "" {
		t.Error("a compressed IPv6 address validates against RFC 7489; the expansion would be unnecessary")
	}
}

func TestFromRow(t *testing.T) {
	row := report.Row{
		SourceIP: ip("192.0.2.7"), HeaderFrom: "example.com", EnvelopeFrom: "example.com",
		EnvelopeTo: []string{"example.net"}, Disposition: "quarantine", DKIMAligned: true,
		Overrides: []report.Override{{Type: report.OverrideLocalPolicy}},
		DKIM:      []report.DKIMResult{{Domain: "example.com", Selector: "s", Result: "pass"}},
		SPF:       []report.SPFResult{{Domain: "example.com", Scope: "mfrom", Result: "fail"}},
	}
	r := FromRow(row)
	if r.Count != 1 || r.SourceIP != row.SourceIP || r.Disposition != "quarantine" || !r.DKIMAligned || r.SPFAligned ||
		len(r.Reasons) != 1 || len(r.DKIM) != 1 || len(r.SPF) != 1 || r.EnvelopeTo[0] != "example.net" {
		t.Errorf("FromRow = %+v", r)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"rfc7489": RFC7489, " 7489": RFC7489, "RFC9990": RFC9990, "9990": RFC9990, "dmarcbis": RFC9990} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) succeeded")
	}
	if RFC7489.String() != "rfc7489" || RFC9990.String() != "rfc9990" || Format(9).String() != "Format(9)" {
		t.Error("Format.String")
	}
}

// FuzzText checks that any text in any field yields a report encoding/xml
// reads, with the text back as written except what XML cannot carry.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "example.com", hostile, "]]>", "\r\n", "\xed\xa0\x80", "\U0010FFFF", "&#0;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := passRecord("192.0.2.1", 1)
		r.HeaderFrom = s
		r.Reasons = []report.Override{{Type: "other", Comment: s}}
		m := testMeta()
		m.OrgName = "o" + s
		var buf bytes.Buffer
		if err := Write(&buf, RFC9990, m, testPolicy(), FromSlice([]Record{r})); err != nil {
			t.Fatal(err)
		}
		fb := parse(t, buf.Bytes())
		want := expectedText(s)
		if got := ptr(fb.Records[0].HeaderFrom); got != want {
			t.Errorf("header_from %q read back as %q, want %q", s, got, want)
		}
		if got := fb.Metadata.OrgName; got != "o"+want {
			t.Errorf("org_name %q read back as %q", s, got)
		}
	})
}
