package scheduler

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/aggregate"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

func TestCatchUpSendsEachMissingPeriodOnceInOrder(t *testing.T) {
	e := newEnv(t, testConfig(), Deps{})
	e.ingest("example.com", day(0).Add(10*time.Hour), ip(1), 3)
	e.ingest("example.com", day(1).Add(23*time.Hour), ip(2), 5)
	// day 2: no mail at all, so no report
	e.ingest("example.com", day(3).Add(time.Hour), ip(3), 2)

	// The scheduler was down for four days; it starts on day 4.
	e.clock.Set(day(4).Add(10 * time.Minute))
	sum := e.runOnce()
	if sum.Created != 3 || sum.Sent != 3 {
		t.Fatalf("created %d, sent %d; want 3 and 3", sum.Created, sum.Sent)
	}
	sent := e.sender.Sent()
	wantDays := []int{0, 1, 3}
	wantCounts := []int64{3, 5, 2}
	for i, s := range sent {
		p := parseMail(t, s.Data)
		period := store.Period{Begin: day(wantDays[i]), End: day(wantDays[i] + 1)}
		if p.Report.Metadata.Begin != period.Begin.Unix() || p.Report.Metadata.End != period.End.Unix()-1 {
			t.Errorf("report %d covers %d-%d, want day %d (%v)", i, p.Report.Metadata.Begin, p.Report.Metadata.End, wantDays[i], period)
		}
		if got := p.Report.total(); got != wantCounts[i] {
			t.Errorf("report %d counts %d messages, want %d", i, got, wantCounts[i])
		}
		if id := store.ReportID("Test Org", "example.com", period); p.Report.Metadata.ReportID != id {
			t.Errorf("report %d has ID %s, want %s", i, p.Report.Metadata.ReportID, id)
		}
		if s.To != "dmarc@example.com" || s.From != "dmarc-reports@reporter.test" {
			t.Errorf("report %d went from %s to %s", i, s.From, s.To)
		}
	}

	t.Run("running again sends nothing more", func(t *testing.T) {
		e.clock.Add(time.Hour)
		if sum := e.runOnce(); sum.Created != 0 || sum.Sent != 0 {
			t.Errorf("second run created %d, sent %d", sum.Created, sum.Sent)
		}
	})
	t.Run("a restarted scheduler sends nothing more", func(t *testing.T) {
		s2, err := New(testConfig(), Deps{Store: e.db, Sender: e.sender, Now: e.clock.Now, Logger: e.s.log})
		if err != nil {
			t.Fatal(err)
		}
		if sum, err := s2.RunOnce(context.Background(), RunOptions{}); err != nil || sum.Created != 0 || sum.Sent != 0 {
			t.Errorf("after restart: %+v, %v", sum, err)
		}
	})
	t.Run("the next day is reported when it closes, not before", func(t *testing.T) {
		e.ingest("example.com", day(4).Add(2*time.Hour), ip(4), 7)
		e.clock.Set(day(5).Add(4 * time.Minute)) // within the close delay
		if sum := e.runOnce(); sum.Created != 0 {
			t.Errorf("created %d reports before the close delay ran out", sum.Created)
		}
		e.clock.Set(day(5).Add(5 * time.Minute))
		if sum := e.runOnce(); sum.Created != 1 || sum.Sent != 1 {
			t.Errorf("at the close delay: %+v", sum)
		}
		if n := len(e.sender.Sent()); n != 4 {
			t.Errorf("%d reports sent in all, want 4", n)
		}
	})
}

func TestRowsArrivingForAReportedPeriodAreNotReportedTwice(t *testing.T) {
	e := newEnv(t, testConfig(), Deps{})
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 4)
	e.clock.Set(day(1).Add(10 * time.Minute))
	e.runOnce()
	e.ingest("example.com", day(0).Add(2*time.Hour), ip(2), 9) // late
	e.clock.Add(24 * time.Hour)
	if sum := e.runOnce(); sum.Created != 0 || sum.Sent != 0 {
		t.Errorf("late rows made another report: %+v", sum)
	}
	if reps := e.reports("example.com"); len(reps) != 1 || reps[0].Messages != 4 {
		t.Errorf("reports %+v, want one of 4 messages", reps)
	}
}

func TestRecordsRIWithinTheBounds(t *testing.T) {
	res := &dmarc.MapResolver{TXT: map[string][]string{
		"_dmarc.example.com": {"v=DMARC1; p=none; ri=3600; rua=mailto:dmarc@example.com"},
	}}
	for _, tc := range []struct {
		name    string
		floor   time.Duration
		reports int
	}{
		{"an hourly floor gives one report per hour with data", Hourly, 3},
		{"a daily floor gives one report for the day", Daily, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Floor = tc.floor
			e := newEnv(t, cfg, Deps{Resolver: res})
			for _, h := range []time.Duration{10*time.Hour + 30*time.Minute, 11*time.Hour + 30*time.Minute, 13*time.Hour + 15*time.Minute} {
				e.ingest("example.com", day(0).Add(h), ip(1), 1, rfc7489)
			}
			e.clock.Set(day(1).Add(10 * time.Minute))
			e.runOnce()
			if n := len(e.reports("example.com")); n != tc.reports {
				t.Errorf("%d reports, want %d", n, tc.reports)
			}
		})
	}
	t.Run("the ri the milter saw is used without asking DNS", func(t *testing.T) {
		cfg := testConfig()
		cfg.Floor = Hourly
		e := newEnv(t, cfg, Deps{Resolver: &dmarc.MapResolver{}}) // no record: a lookup would mean daily
		withRI := func(r *report.Row) { r.Published.DiscoveryMethod, r.Published.RI = "psl", 3600 }
		for _, h := range []time.Duration{10*time.Hour + 30*time.Minute, 11*time.Hour + 30*time.Minute, 13*time.Hour + 15*time.Minute} {
			e.ingest("example.com", day(0).Add(h), ip(1), 1, withRI)
		}
		e.clock.Set(day(1).Add(10 * time.Minute))
		e.runOnce()
		if n := len(e.reports("example.com")); n != 3 {
			t.Errorf("%d reports, want 3 hourly ones", n)
		}
	})
	t.Run("RFC 9989 domains are reported daily whatever their ri", func(t *testing.T) {
		e := newEnv(t, testConfig(), Deps{Resolver: res})
		e.ingest("example.com", day(0).Add(10*time.Hour), ip(1), 1)
		e.ingest("example.com", day(0).Add(12*time.Hour), ip(1), 1)
		e.clock.Set(day(1).Add(10 * time.Minute))
		e.runOnce()
		if n := len(e.reports("example.com")); n != 1 {
			t.Errorf("%d reports, want 1", n)
		}
	})
}

func TestAChangedIntervalLeavesNoGapAndNoOverlap(t *testing.T) {
	res := &dmarc.MapResolver{TXT: map[string][]string{
		"_dmarc.example.com": {"v=DMARC1; p=none; ri=3600; rua=mailto:dmarc@example.com"},
	}}
	e := newEnv(t, testConfig(), Deps{Resolver: res})
	for h := range 24 {
		e.ingest("example.com", day(0).Add(time.Duration(h)*time.Hour), ip(1), 1, rfc7489)
	}
	e.clock.Set(day(0).Add(12*time.Hour + 10*time.Minute))
	e.runOnce() // hourly reports for 00:00 to 12:00
	res.TXT["_dmarc.example.com"] = []string{"v=DMARC1; p=none; rua=mailto:dmarc@example.com"}
	e.clock.Set(day(1).Add(10 * time.Minute))
	e.runOnce()
	reps := e.reports("example.com")
	if len(reps) != 13 {
		t.Fatalf("%d reports, want 12 hourly and one for the rest of the day", len(reps))
	}
	var total int64
	for i, r := range reps {
		total += r.Messages
		if i > 0 && !r.Period.Begin.Equal(reps[i-1].Period.End) {
			t.Errorf("report %d begins %v, the previous ended %v", i, r.Period.Begin, reps[i-1].Period.End)
		}
	}
	last := reps[12].Period
	if !last.Begin.Equal(day(0).Add(12*time.Hour)) || !last.End.Equal(day(1)) {
		t.Errorf("last period %v, want 12:00 to midnight", last)
	}
	if total != 24 {
		t.Errorf("reports count %d messages, want 24", total)
	}
}

func TestPeriodsOlderThanTheBacklogAreSkippedNotSent(t *testing.T) {
	e := newEnv(t, testConfig(), Deps{})
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 1)
	e.ingest("example.com", day(9).Add(time.Hour), ip(1), 1)
	e.clock.Set(day(10).Add(10 * time.Minute))
	sum := e.runOnce()
	if sum.Created != 2 || sum.Skipped != 1 || sum.Sent != 1 {
		t.Errorf("%+v, want the old period skipped and the recent one sent", sum)
	}
	if reps := e.reports("example.com"); len(reps) != 2 || reps[0].State != store.ReportSkipped || reps[1].State != store.ReportSent {
		t.Errorf("reports %+v", reps)
	}
}

func TestRateLimits(t *testing.T) {
	t.Run("per destination domain", func(t *testing.T) {
		cfg := testConfig()
		cfg.PerDestination = Rate{N: 2, Per: time.Hour}
		e := newEnv(t, cfg, Deps{})
		for i := range 6 {
			d := fmt.Sprintf("d%d.test", i)
			e.ingest(d, day(0).Add(time.Hour), ip(1), 1, withRUA(fmt.Sprintf("mailto:%s@agg.test", d)))
		}
		e.ingest("other.test", day(0).Add(time.Hour), ip(1), 1, withRUA("mailto:dmarc@other.test"))
		start := day(1).Add(10 * time.Minute)
		for _, step := range []struct {
			at            time.Duration
			sent, limited int
		}{
			{0, 3, 4},                           // two to agg.test, one to other.test
			{30 * time.Minute, 0, 4},            // the hour is not over
			{time.Hour, 0, 4},                   // exactly an hour: the first attempts still count
			{time.Hour + time.Second, 2, 2},     // they left the window (at +1h1s, those sent then count)
			{2*time.Hour + 2*time.Second, 2, 0}, // the last two
		} {
			e.clock.Set(start.Add(step.at))
			if sum := e.runOnce(); sum.Sent != step.sent || sum.Limited != step.limited {
				t.Errorf("at +%v: sent %d, limited %d; want %d and %d", step.at, sum.Sent, sum.Limited, step.sent, step.limited)
			}
		}
	})
	t.Run("global", func(t *testing.T) {
		cfg := testConfig()
		cfg.Global = Rate{N: 3, Per: 30 * time.Minute}
		cfg.Concurrency = 1
		e := newEnv(t, cfg, Deps{})
		for i := range 7 {
			e.ingest(fmt.Sprintf("d%d.test", i), day(0).Add(time.Hour), ip(1), 1)
		}
		e.clock.Set(day(1).Add(10 * time.Minute))
		var got []int
		for range 4 {
			got = append(got, e.runOnce().Sent)
			e.clock.Add(30*time.Minute + time.Second)
		}
		if !slices.Equal(got, []int{3, 3, 1, 0}) {
			t.Errorf("sent per half hour %v, want [3 3 1 0]", got)
		}
	})
	t.Run("a new node counts what the previous one sent", func(t *testing.T) {
		cfg := testConfig()
		cfg.Global = Rate{N: 2, Per: time.Hour}
		e := newEnv(t, cfg, Deps{})
		for i := range 4 {
			e.ingest(fmt.Sprintf("d%d.test", i), day(0).Add(time.Hour), ip(1), 1)
		}
		e.clock.Set(day(1).Add(10 * time.Minute))
		e.runOnce()
		s2, err := New(cfg, Deps{Store: e.db, Sender: e.sender, Now: e.clock.Now, Logger: e.s.log})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
		if sum, _ := s2.RunOnce(context.Background(), RunOptions{}); sum.Sent != 0 || sum.Limited != 2 {
			t.Errorf("the new scheduler %+v, want all held back", sum)
		}
	})
}

func TestSendsAreSpreadOverTheWindow(t *testing.T) {
	cfg := testConfig()
	cfg.Spread = 2 * time.Hour
	e := newEnv(t, cfg, Deps{})
	const domains = 30
	for i := range domains {
		e.ingest(fmt.Sprintf("d%02d.test", i), day(0).Add(time.Hour), ip(1), 1)
	}
	const poll = 10 * time.Minute
	runs := map[time.Time]int{}
	for at := day(1); !at.After(day(1).Add(3 * time.Hour)); at = at.Add(poll) {
		e.clock.Set(at)
		if n := e.runOnce().Sent; n > 0 {
			runs[at] = n
		}
	}
	sent := e.sender.Sent()
	if len(sent) != domains {
		t.Fatalf("%d reports sent, want %d", len(sent), domains)
	}
	p := store.Period{Begin: day(0), End: day(1)}
	for _, s := range sent {
		domain := strings.TrimPrefix(s.To, "dmarc@")
		due := day(1).Add(cfg.CloseDelay).Add(spreadOffset(domain, p, cfg.Spread))
		if s.At.Before(due) || !s.At.Before(due.Add(poll)) {
			t.Errorf("%s sent at %v, due at %v", domain, s.At.Format(time.TimeOnly), due.Format(time.TimeOnly))
		}
		if s.At.After(day(1).Add(cfg.CloseDelay + cfg.Spread + poll)) {
			t.Errorf("%s sent at %v, after the window", domain, s.At)
		}
	}
	if len(runs) < 8 {
		t.Errorf("the 30 reports left in %d of the 12 polls of the window: %v", len(runs), runs)
	}
	t.Run("the spread window is capped at the period", func(t *testing.T) {
		if o := spreadOffset("d01.test", p, min(cfg.Spread, time.Hour)); o >= time.Hour {
			t.Errorf("offset %v for an hourly period", o)
		}
	})
}

// tempFail is a 450 to RCPT.
func tempFail() error {
	return &delivery.Error{Stage: "rcpt", Code: 450, Temporary: true, Err: &smtp.SMTPError{Code: 450, Message: "try later"}}
}

func TestRetries(t *testing.T) {
	t.Run("temporary failures back off and the report stays pending until delivered", func(t *testing.T) {
		e := newEnv(t, testConfig(), Deps{})
		e.sender.fail = func(_ string, n int) error {
			if n <= 2 {
				return tempFail()
			}
			return nil
		}
		e.ingest("example.com", day(0).Add(time.Hour), ip(1), 1)
		start := day(1).Add(10 * time.Minute)
		for _, step := range []struct {
			at             time.Duration
			sent, deferred int
			state          store.ReportState
		}{
			{0, 0, 1, store.ReportPending},                // first attempt; next in 5m
			{4 * time.Minute, 0, 0, store.ReportPending},  // not yet
			{5 * time.Minute, 0, 1, store.ReportPending},  // second; next in 10m
			{14 * time.Minute, 0, 0, store.ReportPending}, // not yet
			{15 * time.Minute, 1, 0, store.ReportSent},    // third succeeds
			{100 * time.Minute, 0, 0, store.ReportSent},   // and nothing more
		} {
			e.clock.Set(start.Add(step.at))
			sum := e.runOnce()
			if sum.Sent != step.sent || sum.Deferred != step.deferred {
				t.Errorf("at +%v: sent %d, deferred %d; want %d and %d", step.at, sum.Sent, sum.Deferred, step.sent, step.deferred)
			}
			if st := e.reports("example.com")[0].State; st != step.state {
				t.Errorf("at +%v: report %s, want %s", step.at, st, step.state)
			}
		}
	})
	t.Run("a permanent refusal fails the delivery at once", func(t *testing.T) {
		e := newEnv(t, testConfig(), Deps{})
		e.sender.fail = func(string, int) error {
			return &delivery.Error{Stage: "rcpt", Code: 550, Err: &smtp.SMTPError{Code: 550, Message: "no such user"}}
		}
		e.ingest("example.com", day(0).Add(time.Hour), ip(1), 1)
		e.clock.Set(day(1).Add(10 * time.Minute))
		if sum := e.runOnce(); sum.Failed != 1 {
			t.Errorf("%+v, want one failure", sum)
		}
		e.clock.Add(time.Hour)
		if sum := e.runOnce(); sum.Failed+sum.Deferred+sum.Sent != 0 {
			t.Errorf("tried again: %+v", sum)
		}
		if rep := e.reports("example.com")[0]; rep.State != store.ReportFailed || !strings.Contains(rep.LastError, "550") {
			t.Errorf("report %s %q", rep.State, rep.LastError)
		}
	})
	t.Run("a destination deferring for longer than the maximum age is given up", func(t *testing.T) {
		cfg := testConfig()
		cfg.RetryMaxAge = 2 * time.Hour
		e := newEnv(t, cfg, Deps{})
		e.sender.fail = func(string, int) error { return tempFail() }
		e.ingest("example.com", day(0).Add(time.Hour), ip(1), 1)
		for at := day(1).Add(10 * time.Minute); at.Before(day(1).Add(4 * time.Hour)); at = at.Add(10 * time.Minute) {
			e.clock.Set(at)
			e.runOnce()
		}
		if rep := e.reports("example.com")[0]; rep.State != store.ReportFailed || !strings.Contains(rep.LastError, "gave up") {
			t.Errorf("report %s %q, want failed after giving up", rep.State, rep.LastError)
		}
	})
	t.Run("a relay that is down is retried without end", func(t *testing.T) {
		cfg := testConfig()
		cfg.RetryMaxAge = 2 * time.Hour
		e := newEnv(t, cfg, Deps{})
		e.sender.fail = func(string, int) error {
			return &delivery.Error{Stage: "connect", Temporary: true, Err: errors.New("connection refused")}
		}
		e.ingest("example.com", day(0).Add(time.Hour), ip(1), 1)
		for at := day(1).Add(10 * time.Minute); at.Before(day(3)); at = at.Add(time.Hour) {
			e.clock.Set(at)
			e.runOnce()
		}
		rep := e.reports("example.com")[0]
		if rep.State != store.ReportPending || rep.Attempts < 5 {
			t.Errorf("report %s after %d attempts, want still pending", rep.State, rep.Attempts)
		}
		e.sender.fail = nil
		e.clock.Add(5 * time.Hour)
		if sum := e.runOnce(); sum.Sent != 1 {
			t.Errorf("once the relay is back: %+v", sum)
		}
	})
}

// countingVerifier counts the checks of each destination.
type countingVerifier struct {
	v  Verifier
	mu sync.Mutex
	n  map[string]int
}

func (c *countingVerifier) VerifyDestination(ctx context.Context, domain string, u dmarc.URI, tag string) (dmarc.Destination, error) {
	c.mu.Lock()
	c.n[domain+" "+u.Raw]++
	c.mu.Unlock()
	return c.v.VerifyDestination(ctx, domain, u, tag)
}

func TestExternalDestinations(t *testing.T) {
	res := &dmarc.MapResolver{
		TXT: map[string][]string{
			"_dmarc.example.com":                           {"v=DMARC1; p=none"},
			"example.com._report._dmarc.authorized.test":   {"v=DMARC1"},
			"example.com._report._dmarc.override.test":     {"v=DMARC1; rua=mailto:reports@override.test"},
			"example.com._report._dmarc.elsewhere.test":    {"v=DMARC1; rua=mailto:x@third.test"},
			"example.com._report._dmarc.flaky.test":        {"v=DMARC1"},
			"other.example._report._dmarc.authorized.test": {"v=DMARC1"},
		},
		Fail: map[string]error{},
	}
	v := &countingVerifier{v: &dmarc.Evaluator{Resolver: res}, n: map[string]int{}}
	e := newEnv(t, testConfig(), Deps{Verifier: v})
	rua := withRUA("mailto:dmarc@example.com", "mailto:sub@mail.example.com", "mailto:a@authorized.test",
		"mailto:b@unauthorized.test", "mailto:c@override.test", "mailto:d@elsewhere.test")
	for d := range 3 {
		e.ingest("example.com", day(d).Add(time.Hour), ip(1), 1, rua)
	}
	e.clock.Set(day(3).Add(10 * time.Minute))
	e.runOnce()

	got := map[string]int{}
	for _, s := range e.sender.Sent() {
		got[s.To]++
	}
	want := map[string]int{"dmarc@example.com": 3, "sub@mail.example.com": 3, "a@authorized.test": 3, "reports@override.test": 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent to %v, want %v", got, want)
	}
	for k, n := range v.n {
		if n != 1 {
			t.Errorf("%s checked %d times in one run of three periods, want once", k, n)
		}
	}

	t.Run("a destination that cannot be verified now postpones the domain's reports", func(t *testing.T) {
		res.Fail["example.com._report._dmarc.flaky.test"] = fmt.Errorf("%w: SERVFAIL", dmarc.ErrTemporary)
		e.ingest("example.com", day(3).Add(time.Hour), ip(1), 1, withRUA("mailto:dmarc@example.com", "mailto:f@flaky.test"))
		e.ingest("example.com", day(4).Add(time.Hour), ip(1), 1, withRUA("mailto:dmarc@example.com", "mailto:f@flaky.test"))
		e.ingest("other.example", day(3).Add(time.Hour), ip(1), 1, withRUA("mailto:a@authorized.test"))
		e.clock.Set(day(5).Add(10 * time.Minute))
		sum := e.runOnce()
		if sum.Postponed != 1 || sum.Created != 1 {
			t.Errorf("%+v, want example.com postponed and other.example served", sum)
		}
		delete(res.Fail, "example.com._report._dmarc.flaky.test")
		e.clock.Add(time.Minute)
		if sum := e.runOnce(); sum.Created != 2 {
			t.Errorf("after the DNS recovered: %+v, want both days created", sum)
		}
		reps := e.reports("example.com")
		if n := len(reps); n != 5 || !reps[3].Period.Begin.Equal(day(3)) || !reps[4].Period.Begin.Equal(day(4)) {
			t.Errorf("reports %v", reps)
		}
		ds, _ := e.db.Deliveries(context.Background(), reps[4].ID)
		if len(ds) != 2 {
			t.Errorf("deliveries %+v, want example.com and flaky.test", ds)
		}
	})
}

func TestSizeLimits(t *testing.T) {
	// Many distinct sources make a report of a few kilobytes compressed.
	many := func(e *env) {
		var b store.Batch
		for i := range 600 {
			b.Add(storetest.Row("example.com", day(0).Add(time.Hour), fmt.Sprintf("10.%d.%d.%d", i%7, i/250, i%250),
				rfc7489, withRUA("mailto:small@example.com!2k", "mailto:big@example.com")))
		}
		if err := e.db.Ingest(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a destination whose size limit the report exceeds gets nothing, the others get it", func(t *testing.T) {
		e := newEnv(t, testConfig(), Deps{})
		many(e)
		e.clock.Set(day(1).Add(10 * time.Minute))
		sum := e.runOnce()
		if sum.Sent != 1 || sum.Failed != 1 {
			t.Errorf("%+v, want one sent and one failed", sum)
		}
		for _, s := range e.sender.Sent() {
			if s.To != "big@example.com" {
				t.Errorf("sent to %s", s.To)
			}
		}
	})
	t.Run("a report too large for every destination sends the RFC 7489 error report instead", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxSize = 2048
		e := newEnv(t, cfg, Deps{})
		many(e)
		e.clock.Set(day(1).Add(10 * time.Minute))
		sum := e.runOnce()
		if sum.Failed != 2 {
			t.Errorf("%+v, want both deliveries failed", sum)
		}
		sent := e.sender.Sent()
		if len(sent) != 2 {
			t.Fatalf("%d messages sent, want an error report to each destination", len(sent))
		}
		for _, s := range sent {
			msg := string(s.Data)
			if !strings.Contains(msg, "Content-Type: text/plain") || !strings.Contains(msg, "Report-Size: ") ||
				!strings.Contains(msg, "Subject: Report Domain: example.com Submitter: reporter.test Report-ID: <") ||
				strings.Contains(msg, "application/gzip") {
				t.Errorf("error report to %s:\n%s", s.To, msg)
			}
		}
		rep := e.reports("example.com")[0]
		if rep.State != store.ReportFailed || !strings.Contains(rep.LastError, "error report sent") {
			t.Errorf("report %s %q", rep.State, rep.LastError)
		}
	})
}

func TestFormatsPerDestination(t *testing.T) {
	cfg := testConfig()
	cfg.Formats = []FormatRule{{Match: "nine.test", Format: aggregate.RFC9990}}
	e := newEnv(t, cfg, Deps{})
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 2, withRUA("mailto:dmarc@example.com", "mailto:r@reports.nine.test"))
	e.ingest("example.com", day(0).Add(time.Hour), "2001:db8::1", 1, withRUA("mailto:dmarc@example.com", "mailto:r@reports.nine.test"))
	e.clock.Set(day(1).Add(10 * time.Minute))
	if sum := e.runOnce(); sum.Sent != 2 {
		t.Fatalf("%+v", sum)
	}
	ids := map[string]bool{}
	for _, s := range e.sender.Sent() {
		p := parseMail(t, s.Data)
		ids[p.Header.Get("Message-Id")] = true
		ns, schema := "", "rfc7489.xsd"
		if s.To == "r@reports.nine.test" {
			ns, schema = aggregate.Namespace9990, "rfc9990-draft32-aggregate.xsd"
		}
		if p.Report.XMLName.Space != ns {
			t.Errorf("report to %s in namespace %q, want %q", s.To, p.Report.XMLName.Space, ns)
		}
		if p.Report.total() != 3 {
			t.Errorf("report to %s counts %d", s.To, p.Report.total())
		}
		if msg := xmllint(t, schema, p.XML); msg != "" {
			t.Errorf("report to %s does not validate against %s: %s", s.To, schema, msg)
		}
	}
	if len(ids) != 2 {
		t.Errorf("Message-IDs %v: the two formats are two messages", ids)
	}
}

var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func TestReportMailIsSignedWithBothKeys(t *testing.T) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Signers = []delivery.Signer{
		{Domain: "reporter.test", Selector: "rsa", Key: testRSAKey()},
		{Domain: "reporter.test", Selector: "ed", Key: ed},
	}
	e := newEnv(t, cfg, Deps{})
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 1)
	e.clock.Set(day(1).Add(10 * time.Minute))
	e.runOnce()
	sent := e.sender.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d sent", len(sent))
	}
	rsaRec, _ := delivery.DNSRecord(testRSAKey().Public())
	edRec, _ := delivery.DNSRecord(ed.Public())
	keys := map[string]string{"rsa._domainkey.reporter.test": rsaRec, "ed._domainkey.reporter.test": edRec}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(sent[0].Data), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if k, ok := keys[name]; ok {
			return []string{k}, nil
		}
		return nil, errors.New("no such record")
	}})
	if err != nil || len(vs) != 2 {
		t.Fatalf("%d verifications, %v", len(vs), err)
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "reporter.test" {
			t.Errorf("signature d=%s: %v", v.Domain, v.Err)
		}
	}
	p := parseMail(t, sent[0].Data)
	if got := p.Header.Get("Subject"); !strings.HasPrefix(got, "Report Domain: example.com Submitter: reporter.test Report-ID: <") {
		t.Errorf("Subject %q", got)
	}
	if !strings.HasPrefix(p.FileName, "reporter.test!example.com!") || !strings.HasSuffix(p.FileName, ".xml.gz") {
		t.Errorf("file name %q", p.FileName)
	}
}

func TestRetriesSendTheSameMessage(t *testing.T) {
	e := newEnv(t, testConfig(), Deps{})
	var first []byte
	e.sender.fail = func(_ string, n int) error {
		if n == 1 {
			return tempFail()
		}
		return nil
	}
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 1)
	e.clock.Set(day(1).Add(10 * time.Minute))
	// Build what the first attempt sent, from a dry run at the same time.
	dir := t.TempDir()
	e.runOnce(RunOptions{DryRun: dir})
	e.runOnce()
	e.clock.Add(time.Hour)
	e.runOnce()
	sent := e.sender.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d sent", len(sent))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("dry run wrote %v", files)
	}
	first, _ = os.ReadFile(files[0])
	// The dry run dates the message now; the report, created a run later
	// at the same clock, has the same date. Everything else depends on
	// the report alone.
	if !bytes.Equal(first, sent[0].Data) {
		t.Errorf("the retry sent other bytes than the report as planned:\n%s\n---\n%s", first, sent[0].Data)
	}
}

func TestDryRunWritesFilesAndChangesNothing(t *testing.T) {
	e := newEnv(t, testConfig(), Deps{})
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 3, withRUA("mailto:a@example.com", "mailto:b@example.com"))
	e.clock.Set(day(1).Add(10 * time.Minute))
	dir := t.TempDir()
	sum := e.runOnce(RunOptions{DryRun: dir})
	if len(sum.Files) != 4 {
		t.Errorf("files %v, want an .xml.gz and an .eml per destination", sum.Files)
	}
	for _, f := range sum.Files {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
		if strings.HasSuffix(f, ".eml") {
			data, _ := os.ReadFile(f)
			if p := parseMail(t, data); p.Report.total() != 3 {
				t.Errorf("%s counts %d", f, p.Report.total())
			}
		}
	}
	if reps := e.reports("example.com"); len(reps) != 0 {
		t.Errorf("a dry run created %d reports", len(reps))
	}
	if n := len(e.sender.Sent()); n != 0 {
		t.Errorf("a dry run sent %d messages", n)
	}
}

func TestConfiguredSuppressions(t *testing.T) {
	cfg := testConfig()
	cfg.Suppress = []string{"example.com"}
	e := newEnv(t, cfg, Deps{})
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 1, withRUA("mailto:dmarc@example.com", "mailto:r@other.test"))
	e.clock.Set(day(1).Add(10 * time.Minute))
	if sum := e.runOnce(); sum.Sent != 1 {
		t.Errorf("%+v, want only other.test served", sum)
	}
	for _, s := range e.sender.Sent() {
		if s.To != "r@other.test" {
			t.Errorf("sent to suppressed %s", s.To)
		}
	}
	t.Run("removing an entry from the configuration removes it from the store", func(t *testing.T) {
		cfg.Suppress = nil
		if err := e.s.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		if err := e.db.Suppress(context.Background(), store.Suppression{Pattern: "manual.test", Reason: "by hand"}); err != nil {
			t.Fatal(err)
		}
		e.runOnce()
		sups, _ := e.db.Suppressions(context.Background())
		if len(sups) != 1 || sups[0].Pattern != "manual.test" {
			t.Errorf("suppressions %+v, want only the manual one", sups)
		}
	})
}

func TestPendingAndPreview(t *testing.T) {
	e := newEnv(t, testConfig(), Deps{})
	e.sender.fail = func(string, int) error { return tempFail() }
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 3)
	e.ingest("example.com", day(1).Add(time.Hour), ip(2), 2)
	e.ingest("example.com", day(1).Add(time.Hour), ip(3), 1)
	e.clock.Set(day(1).Add(2 * time.Minute))
	ctx := context.Background()

	ps, err := e.s.Pending(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].State != StateClosing || ps[0].Messages != 3 || ps[1].State != StateOpen || ps[1].Records != 2 || ps[1].Messages != 3 {
		t.Errorf("pending %+v", ps)
	}
	var b bytes.Buffer
	if err := e.s.Preview(ctx, &b, "example.com", PreviewOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "<report_id>"+store.ReportID("Test Org", "example.com", store.Period{Begin: day(0), End: day(1)})+"</report_id>") {
		t.Errorf("preview before the report is made:\n%s", b.String())
	}

	e.clock.Set(day(1).Add(10 * time.Minute))
	e.runOnce()
	ps, _ = e.s.Pending(ctx, false)
	if len(ps) != 2 || ps[0].State != StateRetrying || len(ps[0].Destinations) != 1 || ps[0].LastError == "" {
		t.Errorf("pending after a failed attempt %+v", ps)
	}
	b.Reset()
	nine := aggregate.RFC9990
	if err := e.s.Preview(ctx, &b, "EXAMPLE.com.", PreviewOptions{Format: &nine}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), aggregate.Namespace9990) || !strings.Contains(b.String(), "<report_id>"+ps[0].ReportID+"</report_id>") {
		t.Errorf("preview of the pending report:\n%s", b.String())
	}
	if err := e.s.Preview(ctx, &b, "nothing.test", PreviewOptions{}); !errors.Is(err, ErrNothingToPreview) {
		t.Errorf("preview of an unknown domain: %v", err)
	}
}

func TestOnlyTheLeaseHolderSends(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dmarcd.db")
	clk := &clock{t: day(1).Add(10 * time.Minute)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	senders := make([]*fakeSender, 3)
	var wg sync.WaitGroup
	for i := range senders {
		db, err := store.OpenSQLite(ctx, path, store.Options{Reporter: "Test Org", Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if i == 0 {
			var b store.Batch
			for d := range 5 {
				b.Add(storetest.Row(fmt.Sprintf("d%d.test", d), day(0).Add(time.Hour), ip(1)))
			}
			if err := db.Ingest(ctx, &b); err != nil {
				t.Fatal(err)
			}
		}
		senders[i] = &fakeSender{clock: clk}
		s, err := New(testConfig(), Deps{Store: db, Sender: senders[i], Now: clk.Now, Poll: 10 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Run(ctx)
		}()
	}
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	total, senderCount := 0, 0
	for _, s := range senders {
		if n := len(s.Sent()); n > 0 {
			total += n
			senderCount++
		}
	}
	if total != 5 || senderCount != 1 {
		t.Errorf("%d reports sent by %d schedulers, want 5 by one", total, senderCount)
	}
}

func TestFilesACrashLeftInTheSpoolAreRemoved(t *testing.T) {
	cfg := testConfig()
	cfg.SpoolDir = t.TempDir()
	e := newEnv(t, cfg, Deps{})
	old := filepath.Join(cfg.SpoolDir, "report-123.eml")
	fresh := filepath.Join(cfg.SpoolDir, "report-456.xml.gz")
	other := filepath.Join(cfg.SpoolDir, "keep.txt")
	for _, f := range []string{old, fresh, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.runOnce()
	for f, want := range map[string]bool{old: false, fresh: true, other: true} {
		if _, err := os.Stat(f); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(f), err == nil, want)
		}
	}
}
