package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/report/aggregate"
	"github.com/dmarcd/dmarcd/report/store"
)

// The states of a Pending period.
const (
	// StateOpen: the period has not ended; data still comes in.
	StateOpen = "open"
	// StateClosing: the period ended; its report is made once
	// CloseDelay has passed (or when its destinations can be verified).
	StateClosing = "closing"
	// StateQueued: the report is made and waits for its first attempt.
	StateQueued = "queued"
	// StateRetrying: an attempt failed temporarily; another is due.
	StateRetrying = "retrying"
)

// Pending is one period of one domain that has not been delivered yet.
type Pending struct {
	Domain string
	Period store.Period
	State  string
	// Records and Messages count the period's distinct records and
	// messages so far (frozen once the report is made).
	Records, Messages int64
	// ReportID is the report's ID: the one it has, or will have.
	ReportID string
	// Destinations are the pending deliveries' addresses (queued and
	// retrying states).
	Destinations []string
	// NextAttempt is the earliest next delivery attempt (queued and
	// retrying); for the other states, when the report will be made.
	NextAttempt time.Time
	Attempts    int
	LastError   string
}

// Pending lists what is waiting to be reported, per domain and oldest
// period first: the periods not reported yet (open or closing, with
// their counts so far) of the domains whose policy has an rua, and the
// reports waiting for delivery. With all, domains without an rua are
// listed too.
func (s *Scheduler) Pending(ctx context.Context, all bool) ([]Pending, error) {
	r := &run{s: s, cfg: s.cfg.Load(), now: s.now().UTC(), ri: map[string]time.Duration{}}
	var out []Pending
	reps, err := s.st.Reports(ctx, store.ReportFilter{State: store.ReportPending, Limit: 100_000})
	if err != nil {
		return nil, err
	}
	for _, rep := range reps {
		p := Pending{Domain: rep.Domain, Period: rep.Period, State: StateQueued, Records: rep.Records,
			Messages: rep.Messages, ReportID: rep.ID, NextAttempt: rep.NextAttempt, Attempts: rep.Attempts, LastError: rep.LastError}
		if rep.Attempts > 0 {
			p.State = StateRetrying
		}
		ds, err := s.st.Deliveries(ctx, rep.ID)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.State == store.DeliveryPending {
				p.Destinations = append(p.Destinations, d.Destination.Address)
			}
		}
		out = append(out, p)
	}
	// Every hour with data, the one in progress included (and, should a
	// node's clock run ahead, those after it).
	us, err := s.st.Unreported(ctx, store.UnreportedQuery{Before: r.now.Add(Daily), All: all})
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		iv := r.interval(ctx, u.Policy)
		last, err := s.lastEnd(ctx, u.Domain)
		if err != nil {
			return nil, err
		}
		var prev time.Time
		for _, h := range u.Hours {
			p := PeriodOf(h.Hour, iv)
			if p.Begin.Before(last) {
				p.Begin = last
			}
			if p.Begin.Equal(prev) {
				continue
			}
			prev = p.Begin
			c, err := s.st.Count(ctx, u.Domain, p)
			if err != nil {
				return nil, err
			}
			e := Pending{Domain: u.Domain, Period: p, State: StateClosing, Records: c.Records, Messages: c.Messages,
				ReportID: store.ReportID(r.cfg.OrgName, u.Domain, p), NextAttempt: p.End.Add(r.cfg.CloseDelay)}
			if p.End.After(r.now) {
				e.State = StateOpen
			}
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Pending) int {
		return cmp.Or(strings.Compare(a.Domain, b.Domain), a.Period.Begin.Compare(b.Period.Begin))
	})
	return out, nil
}

// ErrNothingToPreview is returned by Preview for a domain with no report
// waiting and no data.
var ErrNothingToPreview = errors.New("no report pending and no data for this domain")

// PreviewOptions change what Preview shows.
type PreviewOptions struct {
	// Format overrides the format; nil means the format of the report's
	// first destination (or the configured default).
	Format *aggregate.Format
}

// Preview writes to w the XML of the next report of domain, uncompressed:
// its oldest report waiting for delivery, or else the report of its
// oldest period not reported yet, as it would be if it were made now
// (the period in progress included, with the data so far).
func (s *Scheduler) Preview(ctx context.Context, w io.Writer, domain string, opts PreviewOptions) error {
	c := s.cfg.Load()
	domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	reps, err := s.st.Reports(ctx, store.ReportFilter{Domain: domain, State: store.ReportPending, Limit: 100_000})
	if err != nil {
		return err
	}
	f := c.Format
	if len(reps) > 0 {
		rep := reps[len(reps)-1] // newest first: the last is the oldest
		if ds, err := s.st.Deliveries(ctx, rep.ID); err == nil && len(ds) > 0 {
			f = c.formatFor(ds[0].Destination.Address)
		}
		if opts.Format != nil {
			f = *opts.Format
		}
		return c.writeXML(ctx, w, f, s.reportSource(rep))
	}
	now := s.now().UTC()
	us, err := s.st.Unreported(ctx, store.UnreportedQuery{Before: now.Add(Daily), All: true})
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.Domain != domain || len(u.Hours) == 0 {
			continue
		}
		r := &run{s: s, cfg: c, now: now, ri: map[string]time.Duration{}}
		p := PeriodOf(u.Hours[0].Hour, r.interval(ctx, u.Policy))
		last, err := s.lastEnd(ctx, domain)
		if err != nil {
			return err
		}
		if p.Begin.Before(last) {
			p.Begin = last
		}
		pol, ok, err := s.st.Policy(ctx, domain, p)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if us := parseRUA(pol); len(us) > 0 && us[0].Address != "" {
			f = c.formatFor(us[0].Address)
		}
		if opts.Format != nil {
			f = *opts.Format
		}
		return c.writeXML(ctx, w, f, s.liveSource(c, domain, p, pol, now))
	}
	return fmt.Errorf("%s: %w", domain, ErrNothingToPreview)
}
