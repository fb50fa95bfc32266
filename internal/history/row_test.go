package history

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/report"
)

func TestFromRow(t *testing.T) {
	pub := report.Published{Domain: "example.com", ADKIM: "s", ASPF: "r", P: "reject", SP: "quarantine", Pct: 50,
		RUA: []string{"mailto:a@example.com"}}
	base := report.Row{
		Time: t0, SourceIP: netip.MustParseAddr("192.0.2.1"), HeaderFrom: "example.com",
		EnvelopeFrom: "example.com", Result: "fail", Disposition: "reject", Published: pub,
		SPF: []report.SPFResult{{Domain: "example.com", Scope: "mfrom", Result: "softfail"}},
	}

	r := FromRow(base, "Q1", "mx")
	if r.JobID != "Q1" || r.Reporter != "mx" || !r.Received.Equal(t0) || r.IP != base.SourceIP ||
		r.From != "example.com" || r.MailFrom != "example.com" || r.SPF != "softfail" {
		t.Errorf("facts not copied: %+v", r)
	}
	if r.Requested != "reject" {
		t.Errorf("From domain with its own record: requested %q, want p (reject)", r.Requested)
	}
	if r.ADKIM != "s" || r.ASPF != "r" || r.P != "reject" || r.SP != "quarantine" || r.Pct != 50 || r.PolicyDomain != "example.com" {
		t.Errorf("published values not copied: %+v", r)
	}
	if r.AlignDKIM != NotAligned || r.AlignSPF != NotAligned || r.Action != ActionReject {
		t.Errorf("alignment %v/%v, action %v", r.AlignDKIM, r.AlignSPF, r.Action)
	}
	r.RUA[0] = "changed"
	if base.Published.RUA[0] != "mailto:a@example.com" {
		t.Error("FromRow shares the row's RUA slice")
	}

	sub := base
	sub.HeaderFrom, sub.Disposition = "a.example.com", "quarantine"
	if r := FromRow(sub, "", ""); r.Requested != "quarantine" || r.Action != ActionQuarantine || PolicyCode(r.Result, r.Requested) != PolicyQuarantine {
		t.Errorf("inherited record: requested %q action %v, want sp (quarantine)", r.Requested, r.Action)
	}
	noSP := sub
	noSP.Published.SP = ""
	if r := FromRow(noSP, "", ""); r.Requested != "reject" {
		t.Errorf("inherited record without sp: requested %q, want p", r.Requested)
	}

	// A record without a usable p counts as p=none; missing modes as r.
	bare := base
	bare.Published = report.Published{Domain: "example.com"}
	if r := FromRow(bare, "", ""); r.P != "none" || r.ADKIM != "r" || r.ASPF != "r" || TagCode(r.P) != 110 {
		t.Errorf("bare record: %+v", r)
	}

	// No record: zeros everywhere OpenDMARC writes them.
	none := base
	none.Published, none.Result, none.Disposition, none.SPF = report.Published{}, "none", "none", nil
	r = FromRow(none, "", "")
	if r.PolicyDomain != "example.com" || r.Pct != 0 || r.P != "" || r.SP != "" || r.ADKIM != "" || r.RUA != nil ||
		r.AlignDKIM != Unchecked || r.AlignSPF != Unchecked || r.SPF != "" || r.Action != ActionAccept {
		t.Errorf("no record: %+v", r)
	}

	// A DNS failure with a record in hand does not claim alignment.
	temp := base
	temp.Result, temp.Disposition, temp.DKIMAligned = "temperror", "none", true
	if r := FromRow(temp, "", ""); r.AlignDKIM != Unchecked || PolicyCode(r.Result, r.Requested) != PolicyAbsent {
		t.Errorf("temperror: align %v policy %d", r.AlignDKIM, PolicyCode(r.Result, r.Requested))
	}

	pass := base
	pass.Result, pass.Disposition, pass.DKIMAligned = "pass", "none", true
	if r := FromRow(pass, "", ""); r.AlignDKIM != Aligned || r.AlignSPF != NotAligned || r.Action != ActionAccept {
		t.Errorf("pass: %v/%v %v", r.AlignDKIM, r.AlignSPF, r.Action)
	}
}

func TestFromRowCarriesTheARCResult(t *testing.T) {
	row := report.Row{Time: t0, HeaderFrom: "example.com", Result: "fail", Disposition: "none", Action: "accept",
		Published: report.Published{Domain: "example.com", P: "reject"}, ARC: "pass",
		Overrides: []report.Override{{Type: report.OverrideTrustedForwarder, Comment: "arc=pass as[2].d=lists.example"}}}
	r := FromRow(row, "Q1", "mx")
	if r.ARC != "pass" || !r.ARCPolicyPass {
		t.Errorf("ARC %q, policy pass %v; want pass, true", r.ARC, r.ARCPolicyPass)
	}
	text := string(Format(r))
	if !strings.Contains(text, "\narc 0\n") || !strings.Contains(text, "\narc_policy 0 json:[]\n") {
		t.Errorf("history record:\n%s\nwant arc 0 (pass) and arc_policy 0", text)
	}
	row.ARC, row.Overrides = "", nil
	text = string(Format(FromRow(row, "Q1", "mx")))
	if !strings.Contains(text, "\narc 7\n") || !strings.Contains(text, "\narc_policy 2 json:[]\n") {
		t.Errorf("history record without ARC:\n%s\nwant arc 7 and arc_policy 2, as OpenDMARC writes", text)
	}
}

func TestWanted(t *testing.T) {
	for _, c := range []struct {
		result    string
		recordAll bool
		want      bool
	}{
		{"pass", false, true}, {"fail", false, true}, {"temperror", false, true},
		{"none", false, false}, {"permerror", false, false},
		{"none", true, true}, {"permerror", true, true},
	} {
		if got := Wanted(report.Row{Result: c.result}, c.recordAll); got != c.want {
			t.Errorf("Wanted(%s, recordAll=%v) = %v, want %v", c.result, c.recordAll, got, c.want)
		}
	}
}
