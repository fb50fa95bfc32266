package history

import (
	"net/netip"
	"time"

	"github.com/dmarcd/dmarcd/report"
)

// t0 is 2026-01-01T00:00:00Z, Unix 1767225600.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// historyCase is a representative record, with a golden file
// testdata/<name>.history.
type historyCase struct {
	name string
	rec  Record
}

// cases are the golden records: most built from a report.Row the way the
// milter will, so that FromRow is covered too.
func cases() []historyCase {
	var out []historyCase
	add := func(name string, r Record) { out = append(out, historyCase{name, r}) }

	add("pass", FromRow(report.Row{
		Time:         t0,
		Spec:         "rfc9989",
		SourceIP:     netip.MustParseAddr("192.0.2.25"),
		HeaderFrom:   "example.com",
		EnvelopeFrom: "bounce.example.com",
		EnvelopeTo:   []string{"example.net"},
		Result:       "pass",
		Disposition:  "none",
		DKIMAligned:  true,
		SPFAligned:   true,
		Published: report.Published{Domain: "example.com", ADKIM: "r", ASPF: "r", P: "reject", Pct: 100,
			RUA: []string{"mailto:dmarc@example.com", "mailto:agg@reports.example.net!10m"}},
		DKIM: []report.DKIMResult{{Domain: "example.com", Selector: "sel1", Result: "pass"}},
		SPF:  []report.SPFResult{{Domain: "bounce.example.com", Scope: "mfrom", Result: "pass"}},
	}, "4Zx1Lq0fz3z9t1", "mx1.example.net"))

	add("fail_reject", FromRow(report.Row{
		Time:         t0.Add(1 * time.Second),
		Spec:         "rfc7489",
		SourceIP:     netip.MustParseAddr("198.51.100.7"),
		HeaderFrom:   "example.org",
		EnvelopeFrom: "mailer.example.net",
		Result:       "fail",
		Disposition:  "reject",
		Published: report.Published{Domain: "example.org", ADKIM: "s", ASPF: "s", P: "reject", SP: "none", Pct: 100,
			RUA: []string{"mailto:rua@example.org"}},
		DKIM: []report.DKIMResult{{Domain: "mailer.example.net", Selector: "s2024", Result: "pass"}},
		SPF:  []report.SPFResult{{Domain: "mailer.example.net", Scope: "mfrom", Result: "softfail"}},
	}, "4Zx1Lr2kQmz9t2", "mx1.example.net"))

	// A subdomain under an inherited record: sp is what is enforced.
	add("quarantine_subdomain", FromRow(report.Row{
		Time:         t0.Add(2 * time.Second),
		Spec:         "rfc9989",
		SourceIP:     netip.MustParseAddr("203.0.113.9"),
		HeaderFrom:   "news.example.com",
		EnvelopeFrom: "news.example.com",
		Result:       "fail",
		Disposition:  "quarantine",
		Published: report.Published{Domain: "example.com", ADKIM: "r", ASPF: "r", P: "reject", SP: "quarantine", Pct: 100,
			RUA: []string{"mailto:dmarc@example.com"}},
		SPF: []report.SPFResult{{Domain: "news.example.com", Scope: "mfrom", Result: "fail"}},
	}, "4Zx1Ls3", "mx1.example.net"))

	add("none_no_record", FromRow(report.Row{
		Time:         t0.Add(3 * time.Second),
		Spec:         "rfc9989",
		SourceIP:     netip.MustParseAddr("192.0.2.80"),
		HeaderFrom:   "no-dmarc.example",
		EnvelopeFrom: "no-dmarc.example",
		Result:       "none",
		Disposition:  "none",
		DKIM:         []report.DKIMResult{{Domain: "no-dmarc.example", Selector: "k1", Result: "pass"}},
		SPF:          []report.SPFResult{{Domain: "no-dmarc.example", Scope: "mfrom", Result: "pass"}},
	}, "4Zx1Lt4", "mx1.example.net"))

	add("several_dkim", FromRow(report.Row{
		Time:         t0.Add(4 * time.Second),
		Spec:         "rfc7489",
		SourceIP:     netip.MustParseAddr("192.0.2.81"),
		HeaderFrom:   "example.net",
		EnvelopeFrom: "esp.example",
		Result:       "pass",
		Disposition:  "none",
		DKIMAligned:  true,
		Published:    report.Published{Domain: "example.net", ADKIM: "r", ASPF: "r", P: "none", SP: "none", Pct: 100},
		DKIM: []report.DKIMResult{
			{Domain: "example.net", Selector: "sel1", Result: "fail"},
			{Domain: "example.net", Selector: "sel2", Result: "pass"},
			{Domain: "esp.example", Selector: "s1", Result: "temperror"},
			{Domain: "third.example", Selector: "", Result: "permerror"},
			{Domain: "", Selector: "orphan", Result: "pass"}, // no d=: not written
		},
		SPF: []report.SPFResult{{Domain: "esp.example", Scope: "mfrom", Result: "neutral"}},
	}, "4Zx1Lv5", "mx2.example.net"))

	// IPv6, and a failure that pct sampling let through: the policy line
	// keeps the requested quarantine, the action is accept.
	add("ipv6_sampled_out", FromRow(report.Row{
		Time:         t0.Add(5 * time.Second),
		Spec:         "rfc7489",
		SourceIP:     netip.MustParseAddr("2001:db8::25"),
		HeaderFrom:   "example.com",
		EnvelopeFrom: "example.com",
		Result:       "fail",
		Disposition:  "none",
		Overrides:    []report.Override{{Type: report.OverrideSampledOut, Comment: "pct=25"}},
		Published:    report.Published{Domain: "example.com", ADKIM: "r", ASPF: "s", P: "quarantine", Pct: 25},
		SPF:          []report.SPFResult{{Domain: "example.com", Scope: "mfrom", Result: "none"}},
	}, "4Zx1Lw6", "mx1.example.net"))

	// A bounce: MAIL FROM <>, SPF of the HELO name.
	add("null_sender", FromRow(report.Row{
		Time:         t0.Add(6 * time.Second),
		Spec:         "rfc9989",
		SourceIP:     netip.MustParseAddr("192.0.2.99"),
		Helo:         "mx.example.org",
		HeaderFrom:   "example.org",
		EnvelopeFrom: "",
		Result:       "pass",
		Disposition:  "none",
		SPFAligned:   true,
		Published:    report.Published{Domain: "example.org", ADKIM: "r", ASPF: "r", P: "none", Pct: 100},
		SPF:          []report.SPFResult{{Domain: "mx.example.org", Scope: "helo", Result: "pass"}},
	}, "4Zx1Lx7", "mx1.example.net"))

	// A DNS failure answered with 4xx, without queue id nor client address.
	tf := FromRow(report.Row{
		Time:         t0.Add(7 * time.Second),
		Spec:         "rfc9989",
		HeaderFrom:   "broken-dns.example",
		EnvelopeFrom: "broken-dns.example",
		Result:       "temperror",
		Disposition:  "none",
	}, "", "mx1.example.net")
	tf.Action = ActionTempfail
	add("temperror_tempfail", tf)

	// What OpenDMARC records when ARC overrides a reject: every ARC field
	// the format has, which dmarcd does not fill in yet.
	add("arc_override", Record{
		JobID:        "4Zx1Ly8",
		Reporter:     "mx1.example.net",
		Received:     t0.Add(8 * time.Second),
		IP:           netip.MustParseAddr("209.85.220.41"),
		From:         "example.com",
		MailFrom:     "lists.example.org",
		DKIM:         []DKIM{{Domain: "example.com", Selector: "sel1", Result: "fail"}, {Domain: "lists.example.org", Selector: "ml", Result: "pass"}},
		SPF:          "pass",
		PolicyDomain: "example.com",
		Result:       "fail",
		Requested:    "reject",
		RUA:          []string{"mailto:dmarc@example.com"},
		Pct:          100,
		ADKIM:        "r", ASPF: "r", P: "reject", SP: "reject",
		AlignDKIM: NotAligned, AlignSPF: NotAligned,
		ARC:           "pass",
		ARCPolicyPass: true,
		ARCSeals: []ARCSeal{
			{Instance: 2, Domain: "lists.example.org", Selector: "arc2", ClientIP: "198.51.100.1"},
			{Instance: 1, Domain: "example.com", Selector: "arc1", ClientIP: "192.0.2.1"},
		},
		Action: ActionAccept,
	})

	// Values that would break the line grammar: each must stay on its line.
	add("escaping", Record{
		JobID:        "job with space",
		Reporter:     "mx1.example.net",
		Received:     t0.Add(9 * time.Second),
		IP:           netip.MustParseAddr("192.0.2.1"),
		From:         "evil.example\njob forged",
		MailFrom:     "tab\there.example",
		DKIM:         []DKIM{{Domain: "evil.example", Selector: "a b\r\n", Result: "pass"}},
		SPF:          "pass",
		PolicyDomain: "evil.example",
		Result:       "pass",
		RUA:          []string{"mailto:a@evil.example\naction 0"},
		Pct:          100,
		ADKIM:        "r", ASPF: "r", P: "none",
		AlignDKIM: Aligned, AlignSPF: Aligned,
		ARCSeals: []ARCSeal{{Instance: 1, Domain: "quo\"te.example", Selector: "x\ny", ClientIP: ""}},
		Action:   ActionAccept,
	})
	return out
}
