package received_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/received"
	"github.com/dmarcd/dmarcd/report/store"
)

// day0 is the first day of the rollout histories.
var day0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// stretch is days of reports at one policy: from day From (after day0)
// for Days days, one report every Every days (1 when 0), each of
// Messages messages of which Compliant pass.
type stretch struct {
	from, days, every   int
	p                   string
	messages, compliant int64
	org                 string
}

func addHistory(t testing.TB, db store.Received, ss ...stretch) {
	t.Helper()
	for si, s := range ss {
		every := max(s.every, 1)
		for d := 0; d < s.days; d += every {
			begin := day0.AddDate(0, 0, s.from+d)
			org := s.org
			if org == "" {
				org = "google.com"
			}
			r := &store.ReceivedReport{
				Key: fmt.Sprint(org, si, d), Org: org, ReportID: fmt.Sprint(si, "-", d),
				Begin: begin, End: begin.Add(24*time.Hour - time.Second),
				Policy: report.Published{Domain: "example.com", P: s.p, Pct: 100},
				Records: []store.ReceivedRecord{
					{SourceIP: netip.MustParseAddr("192.0.2.1"), Count: s.compliant, Disposition: "none", DKIM: "pass", SPF: "pass"},
					{SourceIP: netip.MustParseAddr("198.51.100.1"), Count: s.messages - s.compliant, Disposition: s.p, DKIM: "fail", SPF: "fail"},
				},
			}
			if _, _, err := db.AddReceived(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRollout(t *testing.T) {
	cases := []struct {
		name    string
		history []stretch
		asOf    int // days after day0
		advice  string
		policy  string
		days    int
		text    string
	}{
		{"a domain without reports has no advice", nil, 10, received.AdviceNoData, "", 0, "no aggregate reports"},
		{"95 days at p=none with 99% compliance: move to quarantine",
			[]stretch{{days: 95, p: "none", messages: 1000, compliant: 990}}, 94, received.AdviceQuarantine, "none", 95,
			"example.com has been at p=none for 95 days with ≥ 98.0% compliance (99.0% over the last 90 days): consider p=quarantine"},
		{"30 days at p=none: keep collecting until 90",
			[]stretch{{days: 30, p: "none", messages: 1000, compliant: 999}}, 29, received.AdviceWait, "none", 30,
			"keep p=none until 90 days (60 to go) before p=quarantine"},
		{"95 days at p=none with 95% compliance: fix the sources",
			[]stretch{{days: 95, p: "none", messages: 1000, compliant: 950}}, 94, received.AdviceFix, "none", 95,
			"with 95.0% compliance over the last 90 days (98.0% needed)"},
		{"a recent drop in compliance delays the move",
			[]stretch{{days: 88, p: "none", messages: 1000, compliant: 999}, {from: 88, days: 7, p: "none", messages: 1000, compliant: 800}},
			94, received.AdviceFix, "none", 95, "compliance fell to 89.9% over the last 14 days"},
		{"too few messages to judge",
			[]stretch{{days: 95, p: "none", messages: 1, compliant: 1}}, 94, received.AdviceWait, "none", 95,
			"with only 90 messages reported: wait for at least 100"},
		{"weekly reports over 98 days count as 98 days",
			[]stretch{{days: 98, every: 7, p: "none", messages: 1000, compliant: 1000}}, 97, received.AdviceQuarantine, "none", 92,
			"consider p=quarantine"},
		{"40 days at quarantine after p=none: move to reject",
			[]stretch{{days: 100, p: "none", messages: 100, compliant: 100}, {from: 100, days: 40, p: "quarantine", messages: 1000, compliant: 995}},
			139, received.AdviceReject, "quarantine", 40, "consider p=reject"},
		{"10 days at quarantine: wait",
			[]stretch{{days: 100, p: "none", messages: 100, compliant: 100}, {from: 100, days: 10, p: "quarantine", messages: 1000, compliant: 995}},
			109, received.AdviceWait, "quarantine", 10, "keep p=quarantine until 30 days (20 to go)"},
		{"p=reject is enforced", []stretch{{days: 5, p: "reject", messages: 1000, compliant: 900}}, 10, received.AdviceEnforced, "reject", 5,
			"DMARC is enforced"},
		{"each day's policy is the one most reports saw",
			[]stretch{{days: 95, p: "none", messages: 1000, compliant: 995}, {days: 95, p: "none", messages: 10, compliant: 10, org: "yahoo.com"},
				{from: 94, days: 1, p: "quarantine", messages: 10, compliant: 10, org: "gmx.net"}},
			94, received.AdviceQuarantine, "none", 95, "consider p=quarantine"},
		{"history after asOf is not seen",
			[]stretch{{days: 95, p: "none", messages: 1000, compliant: 990}, {from: 95, days: 10, p: "quarantine", messages: 1000, compliant: 990}},
			94, received.AdviceQuarantine, "none", 95, "consider p=quarantine"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := openStore(t)
			addHistory(t, db, c.history...)
			svc := &received.Service{Store: db}
			r, err := svc.Rollout(context.Background(), "example.com", day0.AddDate(0, 0, c.asOf).Add(12*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if r.Advice != c.advice || r.Policy != c.policy || r.Days != c.days || !strings.Contains(r.Text, c.text) {
				t.Errorf("rollout %+v\nwant advice %s, p=%s, %d days, text with %q", r, c.advice, c.policy, c.days, c.text)
			}
		})
	}
}
