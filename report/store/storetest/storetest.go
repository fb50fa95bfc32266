// Package storetest is the conformance suite of report/store: every driver
// of store.Store must pass Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
)

// Opener opens a new, empty store for one test, closed at the test's end.
type Opener func(t testing.TB, opts store.Options) store.Store

// T0 is the start of the day the suite's rows are in.
var T0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// Day is the period of T0's day.
var Day = store.Period{Begin: T0, End: T0.Add(24 * time.Hour)}

// Policy returns a published policy of domain with a rua.
func Policy(domain string) report.Published {
	return report.Published{Domain: domain, ADKIM: "r", ASPF: "r", P: "reject", Pct: 100,
		DiscoveryMethod: "treewalk", RUA: []string{"mailto:dmarc@" + domain}}
}

// Row returns a row of a message from ip about domain at t, changed by
// the options.
func Row(domain string, t time.Time, ip string, opts ...func(*report.Row)) report.Row {
	r := report.Row{
		Time:         t,
		Published:    Policy(domain),
		SourceIP:     netip.MustParseAddr(ip),
		HeaderFrom:   domain,
		EnvelopeFrom: domain,
		EnvelopeTo:   []string{"example.net"},
		Result:       "pass",
		Disposition:  "none",
		DKIMAligned:  true,
		SPFAligned:   true,
		DKIM:         []report.DKIMResult{{Domain: domain, Selector: "s1", Result: "pass"}},
		SPF:          []report.SPFResult{{Domain: domain, Scope: "mfrom", Result: "pass"}},
	}
	for _, o := range opts {
		o(&r)
	}
	return r
}

// Ingest writes rows to s in one batch.
func Ingest(t testing.TB, s store.Store, rows ...report.Row) {
	t.Helper()
	var b store.Batch
	for _, r := range rows {
		b.Add(r)
	}
	if err := s.Ingest(context.Background(), &b); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
}

// Records returns the records of domain in p.
func Records(t testing.TB, s store.Store, domain string, p store.Period) []store.Record {
	t.Helper()
	var out []store.Record
	if err := s.Records(context.Background(), domain, p, func(r store.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("Records(%s, %v): %v", domain, p, err)
	}
	return out
}

// ReportRecords returns the frozen records of report id.
func ReportRecords(t testing.TB, s store.Store, id string) []store.Record {
	t.Helper()
	var out []store.Record
	if err := s.ReportRecords(context.Background(), id, func(r store.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("ReportRecords(%s): %v", id, err)
	}
	return out
}

// Total returns the sum of the counts of rs.
func Total(rs []store.Record) int64 {
	var n int64
	for _, r := range rs {
		n += r.Count
	}
	return n
}

func hours(n int) time.Duration { return time.Duration(n) * time.Hour }

func period(from, to int) store.Period {
	return store.Period{Begin: T0.Add(hours(from)), End: T0.Add(hours(to))}
}

func dest(addrs ...string) []store.Destination {
	var ds []store.Destination
	for _, a := range addrs {
		ds = append(ds, store.Destination{Address: a})
	}
	return ds
}

// Run runs the conformance suite against the stores open makes.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()
	tests := []struct {
		name string
		f    func(t *testing.T, s store.Store)
	}{
		{"equal rows roll up into one record with their count", func(t *testing.T, s store.Store) {
			var rows []report.Row
			for i := range 1000 {
				rows = append(rows, Row("example.com", T0.Add(time.Duration(i)*time.Second), "192.0.2.1"))
			}
			Ingest(t, s, rows...)
			rs := Records(t, s, "example.com", Day)
			if len(rs) != 1 || rs[0].Count != 1000 {
				t.Fatalf("records = %+v, want one with count 1000", rs)
			}
			want := store.KeyOf(rows[0])
			if got := rs[0].Key; got.Hash() != want.Hash() {
				t.Errorf("key read back = %+v, want %+v", got, want)
			}
		}},
		{"rows differing only in list order, case and duplicates are one record", func(t *testing.T, s store.Store) {
			a := Row("example.com", T0, "192.0.2.1", func(r *report.Row) {
				r.EnvelopeTo = []string{"b.example", "a.example"}
				r.DKIM = append(r.DKIM, report.DKIMResult{Domain: "other.example", Selector: "x", Result: "fail"})
				r.Overrides = []report.Override{{Type: "mailing_list", Comment: "list"}, {Type: "local_policy"}}
			})
			b := Row("EXAMPLE.com.", T0.Add(time.Minute), "::ffff:192.0.2.1", func(r *report.Row) {
				r.HeaderFrom = "Example.COM"
				r.EnvelopeTo = []string{"A.example", "b.example", "a.example"}
				r.DKIM = []report.DKIMResult{{Domain: "other.example", Selector: "X", Result: "FAIL"}, r.DKIM[0]}
				r.Overrides = []report.Override{{Type: "local_policy"}, {Type: "mailing_list", Comment: "list"}}
			})
			Ingest(t, s, a, b)
			rs := Records(t, s, "example.com", Day)
			if len(rs) != 1 || rs[0].Count != 2 {
				t.Fatalf("records = %+v, want one with count 2", rs)
			}
			k := rs[0].Key
			if !slices.Equal(k.EnvelopeTo, []string{"a.example", "b.example"}) || len(k.AuthDKIM) != 2 || len(k.Reasons) != 2 ||
				k.SourceIP != netip.MustParseAddr("192.0.2.1") || k.HeaderFrom != "example.com" {
				t.Errorf("key = %+v, want canonical lists and IPv4 source", k)
			}
		}},
		{"text with quotes, backslashes, controls and UTF-8 reads back as written", func(t *testing.T, s store.Store) {
			r := Row("example.com", T0, "192.0.2.1", func(r *report.Row) {
				r.Overrides = []report.Override{{Type: "other", Comment: "a \"quoted\" \\ back\tslash, \x01, ü, 日本, </x>"}}
				r.DKIM[0].Selector = "sel\"ector"
			})
			Ingest(t, s, r)
			rs := Records(t, s, "example.com", Day)
			want := store.KeyOf(r)
			if len(rs) != 1 || rs[0].Key.Hash() != want.Hash() || rs[0].Reasons[0] != want.Reasons[0] {
				t.Fatalf("read back %+v, want %+v", rs, want)
			}
		}},
		{"each field of the key tells records apart", func(t *testing.T, s store.Store) {
			changes := []func(*report.Row){
				func(r *report.Row) {},
				func(r *report.Row) { r.SourceIP = netip.MustParseAddr("2001:db8::1") },
				func(r *report.Row) { r.HeaderFrom = "sub.example.com" },
				func(r *report.Row) { r.EnvelopeFrom = "" },
				func(r *report.Row) { r.EnvelopeTo = nil },
				func(r *report.Row) { r.Disposition = "reject" },
				func(r *report.Row) { r.DKIMAligned = false },
				func(r *report.Row) { r.SPFAligned = false },
				func(r *report.Row) { r.Overrides = []report.Override{{Type: "local_policy"}} },
				func(r *report.Row) { r.Overrides = []report.Override{{Type: "local_policy", Comment: "x"}} },
				func(r *report.Row) { r.DKIM = nil },
				func(r *report.Row) { r.DKIM[0].Selector = "s2" },
				func(r *report.Row) {
					r.SPF = []report.SPFResult{{Domain: "example.com", Scope: "helo", Result: "pass"}}
				},
			}
			var rows []report.Row
			for _, c := range changes {
				rows = append(rows, Row("example.com", T0, "192.0.2.1", c))
			}
			Ingest(t, s, rows...)
			if rs := Records(t, s, "example.com", Day); len(rs) != len(changes) {
				t.Fatalf("%d records, want %d", len(rs), len(changes))
			}
		}},
		{"counts from several batches and concurrent writers add up", func(t *testing.T, s store.Store) {
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 25 {
						var b store.Batch
						for j := range 40 {
							b.Add(Row("example.com", T0.Add(hours((i+j+g)%5)), fmt.Sprintf("192.0.2.%d", j%7)))
						}
						if err := s.Ingest(ctx, &b); err != nil {
							t.Errorf("Ingest: %v", err)
						}
					}
				})
			}
			wg.Wait()
			rs := Records(t, s, "example.com", Day)
			if n := Total(rs); n != 4*25*40 || len(rs) != 7 {
				t.Fatalf("%d records totalling %d, want 7 totalling %d", len(rs), n, 4*25*40)
			}
		}},
		{"records of a period add up its hours and nothing outside", func(t *testing.T, s store.Store) {
			for h := -1; h <= 24; h++ {
				Ingest(t, s, Row("example.com", T0.Add(hours(h)+30*time.Minute), "192.0.2.1"))
			}
			Ingest(t, s, Row("other.example", T0, "192.0.2.1"))
			for _, c := range []struct {
				p    store.Period
				want int64
			}{{Day, 24}, {period(0, 1), 1}, {period(6, 12), 6}, {period(-1, 25), 26}} {
				if n := Total(Records(t, s, "example.com", c.p)); n != c.want {
					t.Errorf("%v: total %d, want %d", c.p, n, c.want)
				}
			}
			c, err := s.Count(ctx, "example.com", period(6, 12))
			if err != nil || c != (store.Counts{Records: 1, Messages: 6}) {
				t.Errorf("Count = %+v, %v, want 1 record of 6 messages", c, err)
			}
		}},
		{"rows without a published policy are not stored", func(t *testing.T, s store.Store) {
			r := Row("example.com", T0, "192.0.2.1")
			r.Published = report.Published{}
			var b store.Batch
			if b.Add(r) || b.Skipped() != 1 {
				t.Fatalf("Add of a row without policy: kept, skipped %d", b.Skipped())
			}
			if err := s.Ingest(ctx, &b); err != nil {
				t.Fatal(err)
			}
			if u, err := s.Unreported(ctx, store.UnreportedQuery{Before: T0.Add(48 * time.Hour), All: true}); err != nil || len(u) != 0 {
				t.Errorf("Unreported = %+v, %v, want nothing", u, err)
			}
		}},
		{"the policy of a period is the latest one seen in it", func(t *testing.T, s store.Store) {
			old, new := Policy("example.com"), Policy("example.com")
			new.P, new.RUA = "quarantine", []string{"mailto:new@example.com"}
			Ingest(t, s,
				Row("example.com", T0.Add(hours(5)), "192.0.2.1", func(r *report.Row) { r.Published = new }),
				Row("example.com", T0.Add(hours(1)), "192.0.2.1", func(r *report.Row) { r.Published = old }))
			Ingest(t, s, Row("example.com", T0.Add(hours(2)), "192.0.2.1", func(r *report.Row) { r.Published = old }))
			for _, c := range []struct {
				p    store.Period
				want string
			}{{Day, "quarantine"}, {period(0, 3), "reject"}} {
				pub, ok, err := s.Policy(ctx, "example.com", c.p)
				if err != nil || !ok || pub.P != c.want {
					t.Errorf("Policy(%v) = %+v, %v, %v, want p=%s", c.p, pub, ok, err, c.want)
				}
			}
			if _, ok, err := s.Policy(ctx, "example.com", period(10, 11)); ok || err != nil {
				t.Errorf("Policy of an empty period: %v, %v, want none", ok, err)
			}
		}},
		{"an hour keeps the policy seen last, when it changes back, and every message", func(t *testing.T, s store.Store) {
			// Batches of one hour: the policy is written again only
			// when it changes, and the messages still add up.
			a, b := Policy("example.com"), Policy("example.com")
			b.P = "none"
			for i, pub := range []report.Published{a, a, b, b, a} {
				Ingest(t, s, Row("example.com", T0.Add(time.Duration(i)*time.Minute), "192.0.2.1", func(r *report.Row) { r.Published = pub }),
					Row("example.com", T0.Add(time.Duration(i)*time.Minute), "192.0.2.2", func(r *report.Row) { r.Published = pub }))
				pol, ok, err := s.Policy(ctx, "example.com", period(0, 1))
				if err != nil || !ok || pol.P != pub.P {
					t.Fatalf("after batch %d: Policy = p=%s, %v, %v; want p=%s", i, pol.P, ok, err, pub.P)
				}
			}
			u, err := s.Unreported(ctx, store.UnreportedQuery{Before: T0.Add(hours(2)), Messages: true})
			want := []store.HourCount{{Hour: T0, Messages: 10}}
			if err != nil || len(u) != 1 || !slices.Equal(u[0].Hours, want) || u[0].Policy.P != "reject" {
				t.Fatalf("Unreported = %+v, %v; want example.com, p=reject, %v", u, err, want)
			}
		}},
		{"unreported lists whole hours before the cutoff of domains with a rua", func(t *testing.T, s store.Store) {
			Ingest(t, s,
				Row("example.com", T0.Add(hours(1)), "192.0.2.1"),
				Row("example.com", T0.Add(hours(1)), "192.0.2.2"),
				Row("example.com", T0.Add(hours(3)), "192.0.2.1"),
				Row("example.com", T0.Add(hours(5)), "192.0.2.1"),
				Row("norua.example", T0, "192.0.2.1", func(r *report.Row) { r.Published.RUA = nil }))
			u, err := s.Unreported(ctx, store.UnreportedQuery{Before: T0.Add(hours(5) + 59*time.Minute), Messages: true})
			if err != nil {
				t.Fatal(err)
			}
			want := []store.HourCount{{Hour: T0.Add(hours(1)), Messages: 2}, {Hour: T0.Add(hours(3)), Messages: 1}}
			if len(u) != 1 || u[0].Domain != "example.com" || !slices.Equal(u[0].Hours, want) || !u[0].HasRUA || u[0].Policy.P != "reject" {
				t.Fatalf("Unreported = %+v, want example.com with %v", u, want)
			}
			u, err = s.Unreported(ctx, store.UnreportedQuery{Before: T0.Add(hours(6)), All: true})
			if err != nil || len(u) != 2 || len(u[0].Hours) != 3 || u[1].Domain != "norua.example" || u[1].HasRUA {
				t.Fatalf("Unreported all = %+v, %v, want both domains, example.com with 3 hours", u, err)
			}
		}},
		{"creating a report twice gives the same report and ID", func(t *testing.T, s store.Store) {
			Ingest(t, s, Row("example.com", T0, "192.0.2.1"), Row("example.com", T0, "192.0.2.2"))
			nr := store.NewReport{Domain: "example.com", Period: Day, Destinations: dest("dmarc@example.com")}
			a, created, err := s.CreateReport(ctx, nr)
			if err != nil || !created {
				t.Fatalf("CreateReport: %v, created %v", err, created)
			}
			if a.ID != store.ReportID("", "example.com", Day) || a.State != store.ReportPending ||
				a.Records != 2 || a.Messages != 2 || a.Policy.P != "reject" || !a.NextAttempt.Equal(a.Created) {
				t.Errorf("report = %+v", a)
			}
			nr.Destinations = dest("other@example.net")
			b, created, err := s.CreateReport(ctx, nr)
			if err != nil || created || b.ID != a.ID {
				t.Fatalf("again: %+v, created %v, %v; want the first", b, created, err)
			}
			ds, err := s.Deliveries(ctx, a.ID)
			if err != nil || len(ds) != 1 || ds[0].Destination.Address != "dmarc@example.com" {
				t.Errorf("deliveries = %+v, %v, want only the first call's", ds, err)
			}
			got, err := s.Report(ctx, a.ID)
			if err != nil || got.ID != a.ID || got.Period != Day {
				t.Errorf("Report(%s) = %+v, %v", a.ID, got, err)
			}
			if _, err := s.Report(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Report(nope) = %v, want ErrNotFound", err)
			}
		}},
		{"a report's records are frozen when it is created", func(t *testing.T, s store.Store) {
			Ingest(t, s, Row("example.com", T0, "192.0.2.1"), Row("example.com", T0.Add(hours(2)), "192.0.2.2"))
			rep, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: Day, Destinations: dest("a@example.com")})
			if err != nil {
				t.Fatal(err)
			}
			before := ReportRecords(t, s, rep.ID)
			Ingest(t, s, Row("example.com", T0, "192.0.2.1"), Row("example.com", T0, "192.0.2.9"))
			after := ReportRecords(t, s, rep.ID)
			if Total(before) != 2 || len(after) != len(before) || Total(after) != 2 {
				t.Errorf("frozen records changed: %d then %d records", len(before), len(after))
			}
			for i := range after {
				if after[i].Key.Hash() != before[i].Key.Hash() || after[i].Count != before[i].Count {
					t.Errorf("record %d changed: %+v then %+v", i, before[i], after[i])
				}
			}
			if n := Total(Records(t, s, "example.com", Day)); n != 4 {
				t.Errorf("live records total %d, want 4", n)
			}
		}},
		{"overlapping reports and empty periods are refused", func(t *testing.T, s store.Store) {
			Ingest(t, s, Row("example.com", T0, "192.0.2.1"), Row("example.com", T0.Add(hours(30)), "192.0.2.1"))
			if _, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: Day}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				p    store.Period
				want error
			}{
				{period(12, 36), store.ErrOverlap},
				{period(-24, 1), store.ErrOverlap},
				{period(48, 72), store.ErrNoData},
				{store.Period{Begin: T0.Add(30 * time.Minute), End: T0.Add(hours(48))}, store.ErrBadPeriod},
				{period(30, 30), store.ErrBadPeriod},
			} {
				if _, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: c.p}); !errors.Is(err, c.want) {
					t.Errorf("CreateReport(%v) = %v, want %v", c.p, err, c.want)
				}
			}
			if _, created, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: period(24, 48)}); err != nil || !created {
				t.Errorf("the next day: created %v, %v", created, err)
			}
		}},
		{"unreported starts where the domain's latest report ends", func(t *testing.T, s store.Store) {
			Ingest(t, s, Row("example.com", T0.Add(hours(2)), "192.0.2.1"), Row("example.com", T0.Add(hours(26)), "192.0.2.1"),
				Row("example.org", T0.Add(hours(2)), "192.0.2.1"))
			if _, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: Day}); err != nil {
				t.Fatal(err)
			}
			// Late data for a reported hour is not listed again.
			Ingest(t, s, Row("example.com", T0.Add(hours(3)), "192.0.2.1"))
			u, err := s.Unreported(ctx, store.UnreportedQuery{Before: T0.Add(hours(48))})
			if err != nil || len(u) != 2 {
				t.Fatalf("Unreported = %+v, %v", u, err)
			}
			if u[0].Domain != "example.com" || len(u[0].Hours) != 1 || !u[0].Hours[0].Hour.Equal(T0.Add(hours(26))) {
				t.Errorf("example.com: %+v, want only hour 26", u[0])
			}
			if u[1].Domain != "example.org" || len(u[1].Hours) != 1 {
				t.Errorf("example.org: %+v, want its hour", u[1])
			}
		}},
		{"a report without destinations is skipped", func(t *testing.T, s store.Store) {
			Ingest(t, s, Row("example.com", T0, "192.0.2.1"))
			rep, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: Day})
			if err != nil || rep.State != store.ReportSkipped {
				t.Fatalf("report = %+v, %v, want skipped", rep, err)
			}
		}},
		{"deliveries go pending, retried, then sent or failed, and the report follows", func(t *testing.T, s store.Store) {
			Ingest(t, s, Row("example.com", T0, "192.0.2.1"))
			created := T0.Add(hours(25))
			rep, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: Day, NotBefore: created,
				Destinations: []store.Destination{{Address: "A@Example.com", MaxSize: 10 << 20}, {Address: "b@example.net"}, {Address: "a@example.com"}}})
			if err != nil {
				t.Fatal(err)
			}
			if due, err := s.Due(ctx, created.Add(-time.Second), 10); err != nil || len(due) != 0 {
				t.Fatalf("Due before NotBefore = %+v, %v", due, err)
			}
			due, err := s.Due(ctx, created, 10)
			if err != nil || len(due) != 2 {
				t.Fatalf("Due = %+v, %v, want 2", due, err)
			}
			a, b := due[0], due[1]
			if a.Destination != (store.Destination{Address: "a@example.com", MaxSize: 10 << 20}) || a.ReportID != rep.ID || a.Domain != "example.com" || a.Period != Day {
				t.Errorf("delivery = %+v", a)
			}
			next := created.Add(time.Hour)
			d, err := s.RecordAttempt(ctx, store.Attempt{Delivery: a.ID, At: created, Outcome: store.TempFailed, Error: "451 try later", Next: next})
			if err != nil || d.State != store.DeliveryPending || d.Attempts != 1 || !d.NextAttempt.Equal(next) || d.LastError != "451 try later" {
				t.Fatalf("after a temporary failure: %+v, %v", d, err)
			}
			if due, _ := s.Due(ctx, created.Add(time.Minute), 10); len(due) != 1 || due[0].ID != b.ID {
				t.Errorf("Due after the retry was put off = %+v, want only the other", due)
			}
			if _, err := s.RecordAttempt(ctx, store.Attempt{Delivery: b.ID, At: created, Outcome: store.PermFailed, Error: "550 no such user"}); err != nil {
				t.Fatal(err)
			}
			r, _ := s.Report(ctx, rep.ID)
			if r.State != store.ReportPending || r.Attempts != 2 || !r.NextAttempt.Equal(next) || r.LastError != "550 no such user" {
				t.Errorf("report with one delivery pending = %+v", r)
			}
			d, err = s.RecordAttempt(ctx, store.Attempt{Delivery: a.ID, At: next, Outcome: store.Delivered})
			if err != nil || d.State != store.DeliverySent || !d.Sent.Equal(next) || d.Attempts != 2 || !d.NextAttempt.IsZero() {
				t.Fatalf("after delivery: %+v, %v", d, err)
			}
			r, _ = s.Report(ctx, rep.ID)
			if r.State != store.ReportSent || !r.NextAttempt.IsZero() || r.Attempts != 3 {
				t.Errorf("report = %+v, want sent", r)
			}
			if _, err := s.RecordAttempt(ctx, store.Attempt{Delivery: a.ID, Outcome: store.Delivered}); !errors.Is(err, store.ErrNotPending) {
				t.Errorf("attempt at a sent delivery: %v, want ErrNotPending", err)
			}
			if _, err := s.RecordAttempt(ctx, store.Attempt{Delivery: 1 << 40, Outcome: store.Delivered}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("attempt at no delivery: %v, want ErrNotFound", err)
			}
			att, err := s.Attempted(ctx, created)
			if err != nil || len(att) != 2 || att[0] != (store.DestinationCount{Destination: "a@example.com", Domain: "example.com", Count: 1}) {
				t.Errorf("Attempted = %+v, %v", att, err)
			}
		}},
		{"a report whose every delivery failed is failed", func(t *testing.T, s store.Store) {
			Ingest(t, s, Row("example.com", T0, "192.0.2.1"))
			rep, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: Day, Destinations: dest("a@example.com")})
			if err != nil {
				t.Fatal(err)
			}
			ds, _ := s.Deliveries(ctx, rep.ID)
			if _, err := s.RecordAttempt(ctx, store.Attempt{Delivery: ds[0].ID, Outcome: store.PermFailed, Error: "550"}); err != nil {
				t.Fatal(err)
			}
			if r, _ := s.Report(ctx, rep.ID); r.State != store.ReportFailed {
				t.Errorf("state %s, want failed", r.State)
			}
			if rs, err := s.Reports(ctx, store.ReportFilter{State: store.ReportFailed}); err != nil || len(rs) != 1 || rs[0].ID != rep.ID {
				t.Errorf("Reports(failed) = %+v, %v", rs, err)
			}
		}},
		{"a destination failing permanently in a row is suppressed", func(t *testing.T, s store.Store) {
			for day := range 4 {
				p := period(24*day, 24*day+24)
				Ingest(t, s, Row("example.com", p.Begin, "192.0.2.1"))
				rep, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: p, Destinations: dest("dead@example.net")})
				if err != nil {
					t.Fatal(err)
				}
				if day == 3 {
					if rep.State != store.ReportSkipped {
						t.Errorf("report after suppression: %s, want skipped", rep.State)
					}
					break
				}
				ds, _ := s.Deliveries(ctx, rep.ID)
				if _, err := s.RecordAttempt(ctx, store.Attempt{Delivery: ds[0].ID, Outcome: store.PermFailed, Error: "550 unknown"}); err != nil {
					t.Fatal(err)
				}
			}
			sup, err := s.Suppressions(ctx)
			if err != nil || len(sup) != 1 || sup[0].Pattern != "dead@example.net" || !sup[0].Auto {
				t.Fatalf("Suppressions = %+v, %v", sup, err)
			}
		}},
		{"success resets the failure count", func(t *testing.T, s store.Store) {
			for day := range 5 {
				p := period(24*day, 24*day+24)
				Ingest(t, s, Row("example.com", p.Begin, "192.0.2.1"))
				rep, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: p, Destinations: dest("flaky@example.net")})
				if err != nil {
					t.Fatal(err)
				}
				o := store.PermFailed
				if day == 2 {
					o = store.Delivered
				}
				ds, _ := s.Deliveries(ctx, rep.ID)
				if _, err := s.RecordAttempt(ctx, store.Attempt{Delivery: ds[0].ID, Outcome: o}); err != nil {
					t.Fatal(err)
				}
			}
			if sup, _ := s.Suppressions(ctx); len(sup) != 0 {
				t.Errorf("Suppressions = %+v, want none", sup)
			}
		}},
		{"suppressing a domain stops due deliveries to it", func(t *testing.T, s store.Store) {
			Ingest(t, s, Row("example.com", T0, "192.0.2.1"))
			rep, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: Day, NotBefore: T0.Add(hours(25)),
				Destinations: dest("a@mx.example.net", "b@example.org")})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Suppress(ctx, store.Suppression{Pattern: "Example.NET", Reason: "asked us to stop"}); err != nil {
				t.Fatal(err)
			}
			due, err := s.Due(ctx, T0.Add(hours(48)), 10)
			if err != nil || len(due) != 1 || due[0].Destination.Address != "b@example.org" {
				t.Fatalf("Due = %+v, %v, want only example.org", due, err)
			}
			ds, _ := s.Deliveries(ctx, rep.ID)
			if ds[0].State != store.DeliverySuppressed {
				t.Errorf("delivery to example.net: %s, want suppressed", ds[0].State)
			}
			sup, _ := s.Suppressions(ctx)
			if len(sup) != 1 || sup[0].Pattern != "example.net" || sup[0].Auto || sup[0].Reason != "asked us to stop" {
				t.Errorf("Suppressions = %+v", sup)
			}
			if err := s.Unsuppress(ctx, "example.net"); err != nil {
				t.Fatal(err)
			}
			if sup, _ := s.Suppressions(ctx); len(sup) != 0 {
				t.Errorf("after Unsuppress: %+v", sup)
			}
		}},
		{"one holder of a lease at a time", func(t *testing.T, s store.Store) {
			name := fmt.Sprintf("sender-%d", time.Now().UnixNano())
			a, err := s.TryLease(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.TryLease(ctx, name); !errors.Is(err, store.ErrLeaseHeld) {
				t.Fatalf("second TryLease = %v, want ErrLeaseHeld", err)
			}
			other, err := s.TryLease(ctx, name+"-other")
			if err != nil {
				t.Fatalf("another name: %v", err)
			}
			other.Release(ctx)
			if err := a.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.Release(ctx); err != nil {
				t.Errorf("second Release: %v", err)
			}
			b, err := s.TryLease(ctx, name)
			if err != nil {
				t.Fatalf("TryLease after release: %v", err)
			}
			select {
			case <-b.Lost():
				t.Error("fresh lease lost")
			default:
			}
			b.Release(ctx)
		}},
		{"expiry deletes old data and finished reports, keeps pending ones", func(t *testing.T, s store.Store) {
			for day := range 3 {
				Ingest(t, s, Row("example.com", T0.Add(hours(24*day)), "192.0.2.1"),
					Row("example.com", T0.Add(hours(24*day)), fmt.Sprintf("198.51.100.%d", day)))
			}
			sent, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: period(0, 24), Destinations: dest("a@example.com")})
			if err != nil {
				t.Fatal(err)
			}
			ds, _ := s.Deliveries(ctx, sent.ID)
			s.RecordAttempt(ctx, store.Attempt{Delivery: ds[0].ID, Outcome: store.Delivered})
			pending, _, err := s.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: period(24, 48), Destinations: dest("a@example.com")})
			if err != nil {
				t.Fatal(err)
			}
			x, err := s.Expire(ctx, T0.Add(hours(48)))
			if err != nil {
				t.Fatal(err)
			}
			if x.Reports != 1 || x.Counts != 4 || x.Hours != 2 || x.Keys != 1 {
				t.Errorf("Expire = %+v, want 1 report, 4 counts, 2 hours, 1 key", x)
			}
			if _, err := s.Report(ctx, sent.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("sent report after expiry: %v", err)
			}
			if n := Total(ReportRecords(t, s, pending.ID)); n != 2 {
				t.Errorf("pending report's records total %d after expiry, want 2", n)
			}
			if n := Total(Records(t, s, "example.com", period(0, 72))); n != 2 {
				t.Errorf("records left total %d, want the last day's 2", n)
			}
		}},
		{"records stream in a stable order and an error stops them", func(t *testing.T, s store.Store) {
			var rows []report.Row
			for i := range 50 {
				rows = append(rows, Row("example.com", T0, fmt.Sprintf("192.0.2.%d", i)))
			}
			Ingest(t, s, rows...)
			a, b := Records(t, s, "example.com", Day), Records(t, s, "example.com", Day)
			for i := range a {
				if a[i].Key.Hash() != b[i].Key.Hash() {
					t.Fatalf("order differs at %d", i)
				}
			}
			stop := errors.New("stop")
			n := 0
			err := s.Records(ctx, "example.com", Day, func(store.Record) error {
				n++
				if n == 3 {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) || n != 3 {
				t.Errorf("Records with a failing fn: %v after %d, want stop after 3", err, n)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, store.Options{SuppressAfter: 3, Logger: slog.New(slog.DiscardHandler)})
			tc.f(t, s)
		})
	}
}
