package received

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dmarcd/dmarcd/report/store"
)

// The thresholds of the rollout hint. Common DMARC rollout guidance
// (RFC 9989's advice to domain owners; M3AAWG's and the large mailbox
// providers' guides) is to publish p=none, read the aggregate reports
// until every legitimate source authenticates with an aligned identifier,
// about 90 days, then move to p=quarantine, watch again, then p=reject.
const (
	// RolloutMinCompliance is the DMARC pass rate (Compliant / Messages)
	// at or above which a domain is ready for a stricter policy, over
	// the whole window and over its recent days alike. Not 100%: some
	// mail always fails (spoofing, which enforcement is for; forwarding
	// that breaks SPF and DKIM).
	RolloutMinCompliance = 0.98
	// RolloutNoneDays is how long a domain should have been at p=none,
	// with reports, before p=quarantine: about 90 days, so that monthly
	// and quarterly senders (invoicing, newsletters) have shown up.
	RolloutNoneDays = 90
	// RolloutQuarantineDays is how long at p=quarantine before p=reject.
	RolloutQuarantineDays = 30
	// RolloutRecentDays is the recent part of the window that must be
	// compliant too, so that a new sender not yet set up delays the
	// hint even when the long window looks good.
	RolloutRecentDays = 14
	// RolloutMinMessages is the fewest messages the window must hold for
	// its rate to mean anything.
	RolloutMinMessages = 100
	// RolloutLookback is how far back the policy history is read.
	RolloutLookback = 400 * 24 * time.Hour
)

// The advice of a Rollout.
const (
	// AdviceNoData: no reports about the domain.
	AdviceNoData = "no-data"
	// AdviceWait: too few days or messages at the current policy yet.
	AdviceWait = "wait"
	// AdviceFix: compliance is below RolloutMinCompliance: fix the
	// failing sources (FailingSources) first.
	AdviceFix = "fix"
	// AdviceQuarantine: ready to move from p=none to p=quarantine.
	AdviceQuarantine = "quarantine"
	// AdviceReject: ready to move from p=quarantine to p=reject.
	AdviceReject = "reject"
	// AdviceEnforced: at p=reject already.
	AdviceEnforced = "enforced"
)

// Rollout is where a domain is in its DMARC rollout, and what to do next.
type Rollout struct {
	Domain string `json:"domain"`
	// Policy is the p the reports saw on the latest day with reports:
	// on each day, the p most reports of the day saw (ties: the report
	// that ended last). "" without reports.
	Policy string `json:"policy"`
	// Since is the first day of the run of days with reports at Policy
	// that ends at Last; Days counts the calendar days from Since to
	// Last, both included.
	Since time.Time `json:"since"`
	Last  time.Time `json:"last"`
	Days  int       `json:"days"`
	// Messages and Compliance are over the window: the last
	// RolloutNoneDays (at p=none; RolloutQuarantineDays at quarantine)
	// days of the run. RecentCompliance is over its last
	// RolloutRecentDays days.
	Messages         int64   `json:"messages"`
	Compliance       float64 `json:"compliance"`
	RecentCompliance float64 `json:"recent_compliance"`
	// Advice is one of the Advice constants; Text says it in a sentence.
	Advice string `json:"advice"`
	Text   string `json:"text"`
}

// Rollout returns the rollout hint of domain as of asOf (zero means now),
// from the reports of the RolloutLookback before it.
func (s *Service) Rollout(ctx context.Context, domain string, asOf time.Time) (Rollout, error) {
	if asOf.IsZero() {
		asOf = s.now()
	}
	out := Rollout{Domain: domain}
	f := store.ReceivedFilter{Domain: domain, From: asOf.Add(-RolloutLookback), To: day(asOf).AddDate(0, 0, 1)}
	pols, err := s.Store.ReceivedPolicies(ctx, f)
	if err != nil {
		return out, fmt.Errorf("rollout of %s: %w", domain, err)
	}
	if len(pols) == 0 {
		out.Advice, out.Text = AdviceNoData, fmt.Sprintf("%s: no aggregate reports yet", domain)
		return out, nil
	}
	// The policy of each day: the most reports, then the latest end.
	type dayPolicy struct {
		day  time.Time
		best store.ReceivedPolicy
	}
	var days []dayPolicy
	for _, p := range pols {
		if n := len(days); n > 0 && days[n-1].day.Equal(p.Day) {
			b := &days[n-1].best
			if cmp.Or(cmp.Compare(p.Reports, b.Reports), p.LastEnd.Compare(b.LastEnd)) > 0 {
				*b = p
			}
			continue
		}
		days = append(days, dayPolicy{p.Day, p})
	}
	last := days[len(days)-1]
	out.Policy, out.Last, out.Since = last.best.P, last.day, last.day
	for i := len(days) - 1; i >= 0 && days[i].best.P == out.Policy; i-- {
		out.Since = days[i].day
	}
	out.Days = int(out.Last.Sub(out.Since)/(24*time.Hour)) + 1

	need := RolloutNoneDays
	if out.Policy == "quarantine" {
		need = RolloutQuarantineDays
	}
	windowFrom := out.Last.AddDate(0, 0, 1-need)
	if windowFrom.Before(out.Since) {
		windowFrom = out.Since
	}
	recentFrom := out.Last.AddDate(0, 0, 1-RolloutRecentDays)
	if recentFrom.Before(out.Since) {
		recentFrom = out.Since
	}
	rows, err := s.Store.ReceivedDays(ctx, store.ReceivedFilter{Domain: domain, From: windowFrom, To: out.Last.AddDate(0, 0, 1)})
	if err != nil {
		return out, fmt.Errorf("rollout of %s: %w", domain, err)
	}
	var window, recent store.ReceivedCounts
	for _, r := range rows {
		window.Add(r.ReceivedCounts)
		if !r.Day.Before(recentFrom) {
			recent.Add(r.ReceivedCounts)
		}
	}
	out.Messages = window.Messages
	out.Compliance = ratio(window.Compliant, window.Messages)
	out.RecentCompliance = ratio(recent.Compliant, recent.Messages)
	out.Advice, out.Text = advise(out, need)
	return out, nil
}

// advise words the hint of r, need being the days its policy should have
// lasted.
func advise(r Rollout, need int) (string, string) {
	pct := Percent
	at := fmt.Sprintf("%s has been at p=%s for %d %s", r.Domain, r.Policy, r.Days, plural(r.Days, "day", "days"))
	next := map[string]string{"none": "quarantine", "quarantine": "reject"}[r.Policy]
	switch {
	case r.Policy == "reject":
		return AdviceEnforced, fmt.Sprintf("%s is at p=reject: DMARC is enforced; keep reading the reports for new senders", r.Domain)
	case next == "":
		return AdviceWait, fmt.Sprintf("%s: the reports do not say which policy is published (p=%q)", r.Domain, r.Policy)
	case r.Messages < RolloutMinMessages:
		return AdviceWait, fmt.Sprintf("%s with only %d messages reported: wait for at least %d before deciding", at, r.Messages, RolloutMinMessages)
	case r.Compliance < RolloutMinCompliance:
		return AdviceFix, fmt.Sprintf("%s with %s compliance over the last %d days (%s needed): authenticate and align the failing sources before p=%s",
			at, pct(r.Compliance), min(r.Days, need), pct(RolloutMinCompliance), next)
	case r.RecentCompliance < RolloutMinCompliance:
		return AdviceFix, fmt.Sprintf("%s, but compliance fell to %s over the last %d days: fix the new failing sources before p=%s",
			at, pct(r.RecentCompliance), min(r.Days, RolloutRecentDays), next)
	case r.Days < need:
		return AdviceWait, fmt.Sprintf("%s with %s compliance: keep p=%s until %d days (%d to go) before p=%s",
			at, pct(r.Compliance), r.Policy, need, need-r.Days, next)
	}
	advice := AdviceQuarantine
	if next == "reject" {
		advice = AdviceReject
	}
	return advice, fmt.Sprintf("%s with ≥ %s compliance (%s over the last %d days): consider p=%s, as DMARC rollout guidance advises (RFC 9989 §5.1.7)",
		at, pct(RolloutMinCompliance), pct(r.Compliance), need, next)
}

// Percent formats a rate as a percentage with one decimal, rounded down so
// that 97.98% does not read as the 98.0% it falls short of.
func Percent(f float64) string {
	return fmt.Sprintf("%.1f%%", math.Floor(1000*f+1e-9)/10)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func sortTimes(ts []time.Time) {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
}
