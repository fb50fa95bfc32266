package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
)

// ReceivedOpener opens a new, empty store for one test of RunReceived,
// closed at the test's end.
type ReceivedOpener func(t testing.TB, opts store.Options) store.Received

// Received returns an aggregate report from org with id about domain,
// for the day of begin, with the given records.
func Received(org, id, domain string, begin time.Time, recs ...store.ReceivedRecord) *store.ReceivedReport {
	return &store.ReceivedReport{
		Key:      org + "\x00" + id,
		Org:      org,
		Email:    "dmarc@" + org,
		ReportID: id,
		Begin:    begin,
		End:      begin.Add(24*time.Hour - time.Second),
		Policy:   report.Published{Domain: domain, ADKIM: "r", ASPF: "r", P: "none", Pct: 100},
		Format:   "rfc7489",
		Source:   "test/" + id + ".xml",
		Records:  recs,
	}
}

// Rec returns a record of n messages from ip. dkim and spf are the
// policy_evaluated results; the auth_results say the same for the
// header_from domain.
func Rec(ip string, n int64, dkim, spf string) store.ReceivedRecord {
	return store.ReceivedRecord{
		SourceIP: netip.MustParseAddr(ip), Count: n, Disposition: "none", DKIM: dkim, SPF: spf,
		HeaderFrom: "example.com", EnvelopeFrom: "example.com",
		AuthDKIM: []report.DKIMResult{{Domain: "example.com", Selector: "s1", Result: dkim}},
		AuthSPF:  []report.SPFResult{{Domain: "example.com", Scope: "mfrom", Result: spf}},
	}
}

// Totals returns the row counts of s's received tables.
func Totals(t testing.TB, s store.Received) store.ReceivedTotals {
	t.Helper()
	n, err := s.ReceivedTotals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func add(t testing.TB, s store.Received, r *store.ReceivedReport) int64 {
	t.Helper()
	id, added, err := s.AddReceived(context.Background(), r)
	if err != nil || !added {
		t.Fatalf("AddReceived(%s) = %d, %v, %v", r.ReportID, id, added, err)
	}
	return id
}

// RunReceived runs the conformance suite of store.Received against the
// stores open makes.
func RunReceived(t *testing.T, open ReceivedOpener) {
	ctx := context.Background()
	day := func(n int) time.Time { return T0.Add(time.Duration(n) * 24 * time.Hour) }
	tests := []struct {
		name string
		f    func(t *testing.T, s store.Received)
	}{
		{"a received report is stored whole and reads back as written", func(t *testing.T, s store.Received) {
			r := Received("google.com", "1", "example.com", T0,
				Rec("192.0.2.1", 10, "pass", "pass"),
				Rec("2001:db8::1", 3, "fail", "pass"),
				store.ReceivedRecord{SourceIP: netip.MustParseAddr("198.51.100.7"), Count: 2, Disposition: "quarantine",
					DKIM: "fail", SPF: "fail", HeaderFrom: "example.com", EnvelopeTo: "example.net",
					Reasons:  []report.Override{{Type: "local_policy", Comment: `a "quoted" ü, </x>`}},
					AuthDKIM: []report.DKIMResult{{Domain: "spoof.example", Selector: "x", Result: "pass"}, {Domain: "example.com", Result: "fail"}},
				})
			r.Errors, r.Warnings, r.Generator = []string{"an error"}, []string{"line 3: a warning"}, "gen 1.0"
			id := add(t, s, r)
			if r.ID != id || r.Messages != 15 || r.NumRecords != 3 || r.Compliant != 13 || !r.Day.Equal(T0) {
				t.Errorf("report after add: id %d/%d, %d messages, %d records, %d compliant, day %v", r.ID, id, r.Messages, r.NumRecords, r.Compliant, r.Day)
			}
			got, err := s.ReceivedReports(ctx, store.ReceivedFilter{}, 0)
			if err != nil || len(got) != 1 {
				t.Fatalf("ReceivedReports = %+v, %v", got, err)
			}
			g := got[0]
			if g.ID != id || g.Org != "google.com" || g.ReportID != "1" || !g.Begin.Equal(r.Begin) || !g.End.Equal(r.End) ||
				g.Policy.Domain != "example.com" || g.Policy.P != "none" || g.Messages != 15 || g.NumRecords != 3 ||
				g.Compliant != 13 || g.Generator != "gen 1.0" || !reflect.DeepEqual(g.Errors, r.Errors) ||
				!reflect.DeepEqual(g.Warnings, r.Warnings) || g.Source != r.Source || g.Imported.IsZero() {
				t.Errorf("read back %+v", g)
			}
			var recs []store.ReceivedRecord
			if err := s.ReceivedRecords(ctx, id, func(rec store.ReceivedRecord) error {
				recs = append(recs, rec)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(recs, r.Records) {
				t.Errorf("records read back\n%+v\nwant\n%+v", recs, r.Records)
			}
			if err := s.ReceivedRecords(ctx, id+100, func(store.ReceivedRecord) error { return nil }); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("records of an unknown report: %v, want ErrNotFound", err)
			}
		}},
		{"a report added twice is stored once, another organisation's same id is another", func(t *testing.T, s store.Received) {
			id := add(t, s, Received("google.com", "1", "example.com", T0, Rec("192.0.2.1", 10, "pass", "pass")))
			again, added, err := s.AddReceived(ctx, Received("google.com", "1", "example.com", T0, Rec("192.0.2.1", 10, "pass", "pass")))
			if err != nil || added || again != id {
				t.Errorf("second add = %d, %v, %v; want %d, false, nil", again, added, err, id)
			}
			add(t, s, Received("yahoo.com", "1", "example.com", T0, Rec("192.0.2.1", 5, "pass", "pass")))
			if n := Totals(t, s); n != (store.ReceivedTotals{Reports: 2, Records: 2}) {
				t.Errorf("totals %+v, want 2 reports and 2 records", n)
			}
		}},
		{"the same report added at once by many importers is stored once", func(t *testing.T, s store.Received) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			added := 0
			for range 8 {
				wg.Go(func() {
					var recs []store.ReceivedRecord
					for i := range 50 {
						recs = append(recs, Rec(fmt.Sprintf("192.0.2.%d", i), 1, "pass", "pass"))
					}
					_, ok, err := s.AddReceived(ctx, Received("google.com", "1", "example.com", T0, recs...))
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					if ok {
						added++
					}
					mu.Unlock()
				})
			}
			wg.Wait()
			if n := Totals(t, s); added != 1 || n != (store.ReceivedTotals{Reports: 1, Records: 50}) {
				t.Errorf("%d adds succeeded, totals %+v; want 1 and 1 report of 50 records", added, n)
			}
		}},
		{"a report without key or domain is refused and nothing is stored", func(t *testing.T, s store.Received) {
			noKey := Received("google.com", "1", "example.com", T0, Rec("192.0.2.1", 1, "pass", "pass"))
			noKey.Key = ""
			noDomain := Received("google.com", "2", "", T0, Rec("192.0.2.1", 1, "pass", "pass"))
			negative := Received("google.com", "3", "example.com", T0, Rec("192.0.2.1", 1, "pass", "pass"), Rec("192.0.2.2", -1, "pass", "pass"))
			for _, r := range []*store.ReceivedReport{noKey, noDomain, negative} {
				if _, _, err := s.AddReceived(ctx, r); err == nil {
					t.Errorf("report %s accepted", r.ReportID)
				}
			}
			if n := Totals(t, s); n != (store.ReceivedTotals{}) {
				t.Errorf("totals %+v, want nothing", n)
			}
		}},
		{"counts follow their definitions", func(t *testing.T, s store.Received) {
			unaligned := Rec("192.0.2.3", 4, "fail", "fail")
			unaligned.AuthSPF[0] = report.SPFResult{Domain: "mailer.example", Scope: "mfrom", Result: "pass"}
			noAuth := Rec("192.0.2.4", 8, "pass", "fail")
			noAuth.AuthDKIM, noAuth.AuthSPF = nil, nil
			rejected := Rec("192.0.2.5", 16, "fail", "fail")
			rejected.Disposition = "reject"
			quarantined := Rec("192.0.2.6", 32, "fail", "fail")
			quarantined.Disposition = "Quarantine"
			passed := Rec("192.0.2.7", 64, "pass", "pass")
			passed.Disposition = "pass"
			odd := Rec("192.0.2.8", 128, "fail", "pass")
			odd.Disposition = "delivered"
			add(t, s, Received("google.com", "1", "example.com", T0,
				Rec("192.0.2.1", 1, "pass", "fail"), Rec("192.0.2.2", 2, "fail", "pass"), unaligned, noAuth, rejected, quarantined, passed, odd))
			days, err := s.ReceivedDays(ctx, store.ReceivedFilter{Domain: "example.com"})
			if err != nil || len(days) != 1 {
				t.Fatalf("ReceivedDays = %+v, %v", days, err)
			}
			want := store.ReceivedCounts{
				Messages:    255,
				Compliant:   1 + 2 + 8 + 64 + 128,
				DKIMAligned: 1 + 8 + 64,
				SPFAligned:  2 + 64 + 128,
				DKIMPass:    1 + 64,
				SPFPass:     2 + 4 + 64 + 128,
				// DKIMPass, SPFPass or Compliant.
				Authenticated:    1 + 2 + 4 + 8 + 64 + 128,
				None:             1 + 2 + 4 + 8 + 64,
				Quarantine:       32,
				Reject:           16,
				OtherDisposition: 128,
			}
			if d := days[0]; d.ReceivedCounts != want || d.Reports != 1 || d.Domain != "example.com" || !d.Day.Equal(T0) {
				t.Errorf("day %+v\nwant counts %+v", d, want)
			}
		}},
		{"a report counts on the UTC day holding the middle of its range", func(t *testing.T, s store.Received) {
			for i, c := range []struct {
				begin, end time.Time
				want       time.Time
			}{
				{T0, T0.Add(24*time.Hour - time.Second), T0},                             // Google: 00:00 to 23:59:59
				{T0, T0.Add(24 * time.Hour), T0},                                         // Microsoft: 00:00 to 00:00
				{T0.Add(8 * time.Hour), T0.Add(32 * time.Hour), T0},                      // a day in UTC-8
				{T0.Add(-time.Hour), T0.Add(23 * time.Hour), T0},                         // a day in UTC+1
				{T0.Add(20 * time.Hour), T0.Add(30 * time.Hour), T0.Add(24 * time.Hour)}, // mostly the next day
			} {
				r := Received("r.example", fmt.Sprint(i), "example.com", c.begin, Rec("192.0.2.1", 1, "pass", "pass"))
				r.End = c.end
				add(t, s, r)
				if !r.Day.Equal(c.want) {
					t.Errorf("%v to %v counts on %v, want %v", c.begin, c.end, r.Day, c.want)
				}
			}
		}},
		{"filters select the domain and the days", func(t *testing.T, s store.Received) {
			for d := range 3 {
				add(t, s, Received("google.com", fmt.Sprint("a", d), "example.com", day(d), Rec("192.0.2.1", int64(1+d), "pass", "pass")))
				add(t, s, Received("google.com", fmt.Sprint("b", d), "Example.NET.", day(d), Rec("192.0.2.2", 10, "fail", "fail")))
			}
			doms, err := s.ReceivedDomains(ctx, store.ReceivedFilter{From: day(1), To: day(3)})
			if err != nil || len(doms) != 2 || doms[0].Domain != "example.com" || doms[0].Reports != 2 || doms[0].Messages != 5 ||
				!doms[0].First.Equal(day(1)) || !doms[0].Last.Equal(day(2)) || doms[1].Domain != "example.net" || doms[1].Messages != 20 {
				t.Errorf("ReceivedDomains = %+v, %v", doms, err)
			}
			days, err := s.ReceivedDays(ctx, store.ReceivedFilter{Domain: "EXAMPLE.com", From: day(1).Add(5 * time.Hour), To: day(2)})
			if err != nil || len(days) != 1 || !days[0].Day.Equal(day(1)) || days[0].Messages != 2 {
				t.Errorf("ReceivedDays of one day = %+v, %v", days, err)
			}
			all, err := s.ReceivedDays(ctx, store.ReceivedFilter{})
			if err != nil || len(all) != 6 || all[0].Domain != "example.com" || all[5].Domain != "example.net" || !all[5].Day.Equal(day(2)) {
				t.Errorf("ReceivedDays of all = %+v, %v", all, err)
			}
			reps, err := s.ReceivedReports(ctx, store.ReceivedFilter{Domain: "example.net"}, 2)
			if err != nil || len(reps) != 2 || reps[0].ReportID != "b2" || reps[1].ReportID != "b1" {
				t.Errorf("ReceivedReports newest first, limit 2 = %+v, %v", reps, err)
			}
		}},
		{"sources are ordered by messages, failing ones by non-compliant messages", func(t *testing.T, s store.Received) {
			add(t, s, Received("google.com", "1", "example.com", T0,
				Rec("192.0.2.1", 100, "pass", "pass"), Rec("192.0.2.2", 50, "fail", "fail"), Rec("192.0.2.3", 60, "pass", "fail")))
			add(t, s, Received("yahoo.com", "1", "example.com", T0,
				Rec("192.0.2.2", 20, "fail", "fail"), Rec("192.0.2.3", 40, "fail", "fail"), Rec("2001:db8::9", 1, "fail", "fail")))
			top, err := s.ReceivedSources(ctx, store.ReceivedFilter{Domain: "example.com"}, store.SourceQuery{Limit: 2})
			// A tie of 100 messages, broken by address.
			if err != nil || len(top) != 2 || top[0].IP.String() != "192.0.2.1" || top[0].Messages != 100 || top[0].Reports != 1 ||
				top[1].IP.String() != "192.0.2.3" || top[1].Messages != 100 || top[1].Compliant != 60 || top[1].Reports != 2 {
				t.Errorf("top sources = %+v, %v", top, err)
			}
			failing, err := s.ReceivedSources(ctx, store.ReceivedFilter{}, store.SourceQuery{Failing: true})
			var order []string
			for _, f := range failing {
				order = append(order, fmt.Sprint(f.IP, "=", f.Messages-f.Compliant))
			}
			if err != nil || fmt.Sprint(order) != "[192.0.2.2=70 192.0.2.3=40 2001:db8::9=1]" {
				t.Errorf("failing sources = %v, %v", order, err)
			}
		}},
		{"reporters group by organisation, policies by day and p", func(t *testing.T, s store.Received) {
			add(t, s, Received("google.com", "1", "example.com", T0, Rec("192.0.2.1", 10, "pass", "pass")))
			g2 := Received("Google.com", "2", "example.com", day(1), Rec("192.0.2.1", 5, "fail", "fail"))
			g2.Policy.P = "quarantine"
			add(t, s, g2)
			noOrg := Received("", "3", "example.com", day(1), Rec("192.0.2.1", 1, "pass", "pass"))
			noOrg.Email = "Reports@small.example"
			add(t, s, noOrg)
			reps, err := s.ReceivedReporters(ctx, store.ReceivedFilter{Domain: "example.com"}, 0)
			if err != nil || len(reps) != 2 || reps[0].Reporter != "google.com" || reps[0].Reports != 2 || reps[0].Messages != 15 ||
				reps[0].Compliant != 10 || !reps[0].First.Equal(T0) || !reps[0].Last.Equal(day(1)) ||
				reps[1].Reporter != "reports@small.example" || reps[1].Messages != 1 {
				t.Errorf("ReceivedReporters = %+v, %v", reps, err)
			}
			pols, err := s.ReceivedPolicies(ctx, store.ReceivedFilter{Domain: "example.com"})
			if err != nil || len(pols) != 3 ||
				pols[0].P != "none" || !pols[0].Day.Equal(T0) || pols[0].Reports != 1 ||
				pols[1].P != "none" || !pols[1].Day.Equal(day(1)) || pols[1].Messages != 1 ||
				pols[2].P != "quarantine" || pols[2].Messages != 5 || !pols[2].LastEnd.Equal(g2.End) {
				t.Errorf("ReceivedPolicies = %+v, %v", pols, err)
			}
		}},
		{"failure reports are stored once and read back", func(t *testing.T, s store.Received) {
			arrival := T0.Add(10 * time.Hour)
			f := &store.ReceivedFailure{
				Key: "abuse@163.com\x00<1@163.com>", ReportedDomain: "Example.com", SourceIP: netip.MustParseAddr("2001:db8::77"),
				FeedbackType: "auth-failure", Version: "1", UserAgent: "r/1", AuthFailure: "dmarc", DeliveryResult: "reject",
				IdentityAlignment: []string{"dkim", "spf"}, Incidents: 3, ArrivalDate: arrival,
				OriginalMailFrom: "bounce@spoof.example", OriginalRcptTo: []string{"a@example.net", "b@example.net"},
				OriginalFrom: "Café <billing@example.com>", OriginalSubject: "Your invoice", OriginalMessageID: "x@spoof.example",
				DKIMDomain: "example.com", DKIMSelector: "s1", SPFDNS: []string{`txt : example.com : "v=spf1 -all"`},
				AuthenticationResults: []string{"mx; dmarc=fail"}, Reporter: "abuse@163.com", ReporterName: "Abuse",
				ReportMessageID: "1@163.com", ReportSubject: "DMARC failure", Headers: "From: x\nSubject: Your invoice\n",
				Fields: [][2]string{{"Feedback-Type", "auth-failure"}, {"Incidents", "3"}}, Warnings: []string{"no Reported-URI"},
				Source: "ruf.eml",
			}
			id, added, err := s.AddFailure(ctx, f)
			if err != nil || !added || !f.Day.Equal(T0) {
				t.Fatalf("AddFailure = %d, %v, %v; day %v", id, added, err, f.Day)
			}
			if again, added, err := s.AddFailure(ctx, f); err != nil || added || again != id {
				t.Errorf("second AddFailure = %d, %v, %v", again, added, err)
			}
			got, err := s.ReceivedFailures(ctx, store.ReceivedFilter{Domain: "example.com", From: T0, To: day(1)}, 0)
			if err != nil || len(got) != 1 {
				t.Fatalf("ReceivedFailures = %+v, %v", got, err)
			}
			want := *f
			want.Key, want.ReportedDomain = "", "example.com"
			if g := got[0]; !reflect.DeepEqual(g, want) {
				t.Errorf("read back\n%+v\nwant\n%+v", g, want)
			}
			doms, err := s.ReceivedDomains(ctx, store.ReceivedFilter{})
			if err != nil || len(doms) != 1 || doms[0].Failures != 1 || doms[0].Reports != 0 || !doms[0].First.Equal(T0) {
				t.Errorf("ReceivedDomains = %+v, %v", doms, err)
			}
			if n := Totals(t, s); n != (store.ReceivedTotals{Failures: 1}) {
				t.Errorf("totals %+v", n)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, store.Options{Logger: slog.New(slog.DiscardHandler)})
			tc.f(t, s)
		})
	}
}
