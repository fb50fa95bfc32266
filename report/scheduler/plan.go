package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
)

// planned is one report to create: a closed period of one domain.
type planned struct {
	domain   string
	period   store.Period
	interval time.Duration
	policy   report.Published
	uris     []dmarc.URI
	tooOld   bool // ended more than MaxBacklog ago
}

// verdict is the outcome of verifying one destination.
type verdict struct {
	dest dmarc.Destination
	err  error
}

// plan creates the reports of the periods that closed: for each domain
// with unreported hours, the periods of its interval that ended at least
// CloseDelay ago, oldest first. A domain whose destinations cannot be
// verified now (DNS failure) keeps its periods for the next run, so that
// its reports stay in order and none is skipped.
func (r *run) plan(ctx context.Context) error {
	closed := r.now.Add(-r.cfg.CloseDelay)
	us, err := r.s.st.Unreported(ctx, store.UnreportedQuery{Before: closed})
	if err != nil {
		return err
	}
	var domains [][]*planned
	var errs []error
	for _, u := range us {
		ps, err := r.periods(ctx, u, closed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(ps) > 0 {
			domains = append(domains, ps)
		}
	}
	verdicts := r.verify(ctx, domains)
	for _, ps := range domains {
		if err := r.create(ctx, ps, verdicts); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// periods returns the closed periods of u's hours, oldest first.
func (r *run) periods(ctx context.Context, u store.Unreported, closed time.Time) ([]*planned, error) {
	iv := r.interval(ctx, u.Policy)
	last, err := r.s.lastEnd(ctx, u.Domain)
	if err != nil {
		return nil, err
	}
	var out []*planned
	for _, h := range u.Hours {
		p := PeriodOf(h.Hour, iv)
		if p.Begin.Before(last) {
			// The interval changed since the last report: this period
			// starts where that one ended, and ends on a boundary.
			p.Begin = last
		}
		if p.End.After(closed) {
			break
		}
		if n := len(out); n > 0 && out[n-1].period.Begin.Equal(p.Begin) {
			continue
		}
		pol, ok, err := r.s.st.Policy(ctx, u.Domain, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		out = append(out, &planned{domain: u.Domain, period: p, interval: iv, policy: pol,
			uris: parseRUA(pol), tooOld: closed.Sub(p.End) > r.cfg.MaxBacklog})
	}
	return out, nil
}

// lastEnd returns the end of the latest report of domain, the zero time
// when it has none.
func (s *Scheduler) lastEnd(ctx context.Context, domain string) (time.Time, error) {
	reps, err := s.st.Reports(ctx, store.ReportFilter{Domain: domain, Limit: 1})
	if err != nil || len(reps) == 0 {
		return time.Time{}, err
	}
	return reps[0].Period.End, nil
}

// interval returns the period length of a domain with policy pol: its
// record's ri under RFC 7489, a day under RFC 9989, within the bounds.
func (r *run) interval(ctx context.Context, pol report.Published) time.Duration {
	ri := DefaultRI
	switch {
	case pol.DiscoveryMethod != "psl":
	case pol.RI > 0:
		ri = time.Duration(pol.RI) * time.Second
	default: // stored before rows kept ri
		ri = r.lookupRI(ctx, pol.Domain)
	}
	return Interval(ri, r.cfg.Floor, r.cfg.Ceiling)
}

// lookupRI reads the ri of the record at _dmarc.domain now, once per run,
// for a policy stored without its ri; a failure means DefaultRI.
func (r *run) lookupRI(ctx context.Context, domain string) time.Duration {
	if ri, ok := r.ri[domain]; ok {
		return ri
	}
	ri := DefaultRI
	if r.s.resolver != nil {
		txts, err := r.s.resolver.LookupTXT(ctx, "_dmarc."+domain)
		if err != nil {
			r.s.log.Debug("ri lookup failed; reporting daily", "domain", domain, "err", err)
		}
		for _, t := range txts {
			rec, err := dmarc.Parse(t, dmarc.RFC7489)
			if rec == nil || errors.Is(err, dmarc.ErrNotDMARC) {
				continue
			}
			if rec.RI > 0 {
				ri = time.Duration(rec.RI) * time.Second
			}
			break
		}
	}
	r.ri[domain] = ri
	return ri
}

// parseRUA reads the rua URIs of a policy as the record parser does, with
// their "!size" limits under RFC 7489 (the store keeps them as written).
// A URI list cannot hold ';' or ',' inside a URI, so the list rejoined is
// exactly the tag as published.
func parseRUA(p report.Published) []dmarc.URI {
	if len(p.RUA) == 0 {
		return nil
	}
	spec := dmarc.RFC9989
	if p.DiscoveryMethod == "psl" {
		spec = dmarc.RFC7489
	}
	rec, _ := dmarc.Parse("v=DMARC1; p=none; rua="+strings.Join(p.RUA, ","), spec)
	if rec == nil {
		return nil
	}
	return rec.RUA
}

// verdictKey identifies one destination check: the policy domain and the
// URI as published. The check is done once per run, whatever number of
// periods and domains share it.
func verdictKey(domain string, u dmarc.URI) string {
	return domain + "\x00" + u.Raw
}

// verify checks every mailto destination of the planned reports, each
// once, at most Concurrency at a time.
func (r *run) verify(ctx context.Context, domains [][]*planned) map[string]verdict {
	type job struct {
		key    string
		domain string
		uri    dmarc.URI
	}
	var jobs []job
	seen := map[string]bool{}
	for _, ps := range domains {
		for _, p := range ps {
			if p.tooOld {
				continue
			}
			for _, u := range p.uris {
				k := verdictKey(p.domain, u)
				if u.Address == "" || seen[k] {
					continue
				}
				seen[k] = true
				jobs = append(jobs, job{k, p.domain, u})
			}
		}
	}
	out := make(map[string]verdict, len(jobs))
	var mu sync.Mutex
	work := make(chan job)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				var v verdict
				if r.s.verifier == nil {
					v.dest = dmarc.Destination{URI: j.uri, Authorized: true, Send: []dmarc.URI{j.uri}}
				} else {
					v.dest, v.err = r.s.verifier.VerifyDestination(ctx, j.domain, j.uri, "rua")
				}
				mu.Lock()
				out[j.key] = v
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	return out
}

// create creates the reports of one domain's periods, in order, stopping
// at the first that must wait.
func (r *run) create(ctx context.Context, ps []*planned, verdicts map[string]verdict) error {
	log := r.s.log
	for _, p := range ps {
		var dests []store.Destination
		if p.tooOld {
			log.Warn("aggregate report period too old to send; recorded as skipped (reports.max_backlog)",
				"domain", p.domain, "period", p.period.String())
		} else {
			var failed error
			dests, failed = r.destinations(p, verdicts)
			age := r.now.Sub(p.period.End)
			if failed != nil && age <= r.cfg.RetryMaxAge {
				log.Warn("aggregate report postponed: a destination could not be verified",
					"domain", p.domain, "period", p.period.String(), "err", failed)
				r.count(func(s *Summary) { s.Postponed++ })
				return nil // the later periods wait too, to stay in order
			}
			if failed != nil {
				log.Warn("aggregate report sent without the destinations that could not be verified for "+age.Round(time.Hour).String(),
					"domain", p.domain, "period", p.period.String(), "err", failed)
			}
		}
		window := min(r.cfg.Spread, p.interval)
		nr := store.NewReport{Domain: p.domain, Period: p.period, Policy: p.policy, Destinations: dests,
			NotBefore: p.period.End.Add(r.cfg.CloseDelay).Add(spreadOffset(p.domain, p.period, window))}
		if r.opts.DryRun != "" {
			if err := r.dryPlanned(ctx, nr); err != nil {
				return err
			}
			continue
		}
		rep, created, err := r.s.st.CreateReport(ctx, nr)
		switch {
		case errors.Is(err, store.ErrNoData):
			continue
		case err != nil:
			return err
		case !created:
			continue
		}
		r.count(func(s *Summary) {
			s.Created++
			if rep.State == store.ReportSkipped {
				s.Skipped++
			}
		})
		log.Info("aggregate report created", "domain", p.domain, "period", p.period.String(), "report_id", rep.ID,
			"records", rep.Records, "messages", rep.Messages, "destinations", len(dests), "state", string(rep.State),
			"not_before", nr.NotBefore.Format(time.RFC3339))
	}
	return nil
}

// destinations returns where the report of p goes: the authorized mailto
// destinations (or their same-host replacements, RFC 7489 §7.1), and the
// error of the first that could not be verified.
func (r *run) destinations(p *planned, verdicts map[string]verdict) ([]store.Destination, error) {
	var out []store.Destination
	var failed error
	for _, u := range p.uris {
		if u.Address == "" {
			continue
		}
		v, ok := verdicts[verdictKey(p.domain, u)]
		switch {
		case !ok:
			continue
		case v.err != nil:
			if failed == nil {
				failed = v.err
			}
			continue
		case !v.dest.Authorized:
			r.s.log.Info("aggregate report destination not authorized; not sending to it",
				"domain", p.domain, "rua", u.Raw, "reason", v.dest.Reason)
			continue
		}
		for _, s := range v.dest.Send {
			if s.Address != "" {
				out = append(out, store.Destination{Address: s.Address, MaxSize: int64(s.MaxSize)})
			}
		}
	}
	return out, failed
}
