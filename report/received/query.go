package received

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
)

// Service answers questions about the received reports: the query API of
// `dmarcd summary` and of the dashboard. Every method is safe for
// concurrent use and returns plain data with JSON tags.
type Service struct {
	// Store is where the reports are.
	Store store.Received
	// Names, when set, gives source IPs their PTR names.
	Names *Names
	// Now is the clock, for Rollout; nil means time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Range is a span of whole UTC days, [From, To): From is the first day,
// To the day after the last. A zero From or To leaves that side open.
type Range struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// LastDays is the range of the n UTC days that end with the day of t,
// that day included.
func LastDays(t time.Time, n int) Range {
	end := day(t).AddDate(0, 0, 1)
	return Range{From: end.AddDate(0, 0, -max(n, 1)), To: end}
}

// Days returns how many days r spans, 0 when a side is open.
func (r Range) Days() int {
	if r.From.IsZero() || r.To.IsZero() || !r.From.Before(r.To) {
		return 0
	}
	return int(day(r.To).Sub(day(r.From)) / (24 * time.Hour))
}

func (r Range) filter(domain string) store.ReceivedFilter {
	return store.ReceivedFilter{Domain: domain, From: r.From, To: r.To}
}

// day returns the start of t's UTC day.
func day(t time.Time) time.Time {
	return t.UTC().Truncate(24 * time.Hour)
}

// Counts are messages and how they fared, with the rates over them. The
// counts are defined in the package documentation and on
// store.ReceivedCounts.
type Counts struct {
	store.ReceivedCounts
	Rates Rates `json:"rates"`
}

// Rates are fractions from 0 to 1 (0 when there are no messages):
//
//   - Compliance: Compliant / Messages, the DMARC pass rate.
//   - DKIMPass, SPFPass: DKIMPass / Messages, SPFPass / Messages, the
//     share of messages with a passing DKIM (SPF) result in auth_results,
//     aligned or not.
//   - DKIMAligned, SPFAligned: DKIMAligned / Messages, SPFAligned /
//     Messages, from policy_evaluated.
//   - Aligned: Compliant / Authenticated, the share of authenticated mail
//     whose authentication was aligned with the From domain.
//   - Quarantined, Rejected: Quarantine / Messages, Reject / Messages.
type Rates struct {
	Compliance  float64 `json:"compliance"`
	DKIMPass    float64 `json:"dkim_pass"`
	SPFPass     float64 `json:"spf_pass"`
	DKIMAligned float64 `json:"dkim_aligned"`
	SPFAligned  float64 `json:"spf_aligned"`
	Aligned     float64 `json:"aligned"`
	Quarantined float64 `json:"quarantined"`
	Rejected    float64 `json:"rejected"`
}

func ratio(n, d int64) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// CountsOf computes the rates of c.
func CountsOf(c store.ReceivedCounts) Counts {
	m := c.Messages
	return Counts{ReceivedCounts: c, Rates: Rates{
		Compliance:  ratio(c.Compliant, m),
		DKIMPass:    ratio(c.DKIMPass, m),
		SPFPass:     ratio(c.SPFPass, m),
		DKIMAligned: ratio(c.DKIMAligned, m),
		SPFAligned:  ratio(c.SPFAligned, m),
		Aligned:     ratio(c.Compliant, c.Authenticated),
		Quarantined: ratio(c.Quarantine, m),
		Rejected:    ratio(c.Reject, m),
	}}
}

// NonCompliant returns the messages that failed DMARC.
func (c Counts) NonCompliant() int64 { return c.Messages - c.Compliant }

// Domain is one policy domain with received reports.
type Domain struct {
	Domain   string `json:"domain"`
	Reports  int64  `json:"reports"`  // aggregate reports
	Messages int64  `json:"messages"` // in them
	Failures int64  `json:"failures"` // failure reports
	// First and Last are the first and last UTC days with a report.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Day is the data of one UTC day.
type Day struct {
	Day     time.Time `json:"day"`
	Reports int64     `json:"reports"`
	Counts
}

// Source is one source IP.
type Source struct {
	IP netip.Addr `json:"ip"`
	// Name is its PTR name, "" when unknown (not looked up, none, or the
	// lookup failed or was not done in time).
	Name string `json:"name,omitempty"`
	// Reports is how many reports name it.
	Reports int64 `json:"reports"`
	Counts
}

// Reporter is one organisation that sends reports.
type Reporter struct {
	Org   string `json:"org"`
	Email string `json:"email,omitempty"`
	// Reports, with their messages and how many were compliant.
	Reports    int64   `json:"reports"`
	Messages   int64   `json:"messages"`
	Compliant  int64   `json:"compliant"`
	Compliance float64 `json:"compliance"`
	// First and Last are the first and last UTC days reported on.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Report is one stored aggregate report, without its records.
type Report = store.ReceivedReport

// Record is one record of an aggregate report.
type Record = store.ReceivedRecord

// Failure is one stored failure report.
type Failure = store.ReceivedFailure

// ErrNotFound is returned for a report that is not stored.
var ErrNotFound = store.ErrNotFound

// Domains lists the domains with reports in r, sorted by name.
func (s *Service) Domains(ctx context.Context, r Range) ([]Domain, error) {
	ds, err := s.Store.ReceivedDomains(ctx, r.filter(""))
	if err != nil {
		return nil, err
	}
	out := make([]Domain, len(ds))
	for i, d := range ds {
		out[i] = Domain{Domain: d.Domain, Reports: d.Reports, Messages: d.Messages, Failures: d.Failures, First: d.First, Last: d.Last}
	}
	return out, nil
}

// maxSeriesDays bounds the days Series fills in.
const maxSeriesDays = 3660

// Series returns domain's data per UTC day over r ("" sums all domains),
// oldest first. When r is bounded on both sides (and spans at most ten
// years), every day of it is there, those without data with zero counts;
// otherwise only the days with data are.
func (s *Service) Series(ctx context.Context, domain string, r Range) ([]Day, error) {
	rows, err := s.Store.ReceivedDays(ctx, r.filter(domain))
	if err != nil {
		return nil, err
	}
	byDay := map[time.Time]*Day{}
	var order []time.Time
	for _, x := range rows {
		d, ok := byDay[x.Day]
		if !ok {
			d = &Day{Day: x.Day}
			byDay[x.Day] = d
			order = append(order, x.Day)
		}
		d.Reports += x.Reports
		d.ReceivedCounts.Add(x.ReceivedCounts)
	}
	var out []Day
	if n := r.Days(); n > 0 && n <= maxSeriesDays {
		for t := day(r.From); t.Before(r.To); t = t.AddDate(0, 0, 1) {
			d := Day{Day: t}
			if x, ok := byDay[t]; ok {
				d = *x
			}
			d.Counts = CountsOf(d.ReceivedCounts)
			out = append(out, d)
		}
		return out, nil
	}
	sortTimes(order)
	for _, t := range order {
		d := *byDay[t]
		d.Counts = CountsOf(d.ReceivedCounts)
		out = append(out, d)
	}
	return out, nil
}

// Totals returns the counts of domain ("" for all) over r, and the number
// of reports.
func (s *Service) Totals(ctx context.Context, domain string, r Range) (Counts, int64, error) {
	rows, err := s.Store.ReceivedDays(ctx, r.filter(domain))
	if err != nil {
		return Counts{}, 0, err
	}
	var c store.ReceivedCounts
	var n int64
	for _, x := range rows {
		c.Add(x.ReceivedCounts)
		n += x.Reports
	}
	return CountsOf(c), n, nil
}

// Sources returns the source IPs of domain ("" for all) over r with the
// most messages, at most limit (0 means 10), with their PTR names when
// the Service has Names.
func (s *Service) Sources(ctx context.Context, domain string, r Range, limit int) ([]Source, error) {
	return s.sources(ctx, domain, r, store.SourceQuery{Limit: topLimit(limit)})
}

// FailingSources returns the source IPs of domain ("" for all) over r
// with the most non-compliant messages, at most limit (0 means 10): the
// senders to fix (authenticate, align) or, when they are not yours, the
// ones an enforced policy would stop.
func (s *Service) FailingSources(ctx context.Context, domain string, r Range, limit int) ([]Source, error) {
	return s.sources(ctx, domain, r, store.SourceQuery{Limit: topLimit(limit), Failing: true})
}

func topLimit(n int) int {
	if n <= 0 {
		return 10
	}
	return n
}

func (s *Service) sources(ctx context.Context, domain string, r Range, q store.SourceQuery) ([]Source, error) {
	rows, err := s.Store.ReceivedSources(ctx, r.filter(domain), q)
	if err != nil {
		return nil, err
	}
	out := make([]Source, len(rows))
	addrs := make([]netip.Addr, len(rows))
	for i, x := range rows {
		out[i] = Source{IP: x.IP, Reports: x.Reports, Counts: CountsOf(x.ReceivedCounts)}
		addrs[i] = x.IP
	}
	if s.Names != nil {
		names := s.Names.Lookup(ctx, addrs)
		for i := range out {
			out[i].Name = names[out[i].IP]
		}
	}
	return out, nil
}

// Reporters returns who reported on domain ("" for all) over r, the most
// messages first, at most limit (0 means 10).
func (s *Service) Reporters(ctx context.Context, domain string, r Range, limit int) ([]Reporter, error) {
	rows, err := s.Store.ReceivedReporters(ctx, r.filter(domain), topLimit(limit))
	if err != nil {
		return nil, err
	}
	out := make([]Reporter, len(rows))
	for i, x := range rows {
		org := x.Org
		if org == "" {
			org = x.Email
		}
		out[i] = Reporter{Org: org, Email: x.Email, Reports: x.Reports, Messages: x.Messages, Compliant: x.Compliant,
			Compliance: ratio(x.Compliant, x.Messages), First: x.First, Last: x.Last}
	}
	return out, nil
}

// Reports lists the aggregate reports about domain ("" for all) over r,
// newest first, at most limit (0 means 100).
func (s *Service) Reports(ctx context.Context, domain string, r Range, limit int) ([]Report, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.Store.ReceivedReports(ctx, r.filter(domain), limit)
}

// Records returns the records of report id, in document order, or an
// error wrapping ErrNotFound.
func (s *Service) Records(ctx context.Context, id int64) ([]Record, error) {
	var out []Record
	err := s.Store.ReceivedRecords(ctx, id, func(r Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// Failures lists the failure reports about domain ("" for all) over r,
// newest first, at most limit (0 means 100).
func (s *Service) Failures(ctx context.Context, domain string, r Range, limit int) ([]Failure, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.Store.ReceivedFailures(ctx, r.filter(domain), limit)
}

// Summary is everything about one domain over a range: what `dmarcd
// summary` prints and a dashboard page shows.
type Summary struct {
	Domain string `json:"domain"`
	Range  Range  `json:"range"`
	// Reports and Failures count the aggregate and failure reports.
	Reports  int64 `json:"reports"`
	Failures int64 `json:"failures"`
	Counts
	// Policy is the policy published, as the latest report in the range
	// that saw Rollout.Policy saw it; nil without reports.
	Policy *report.Published `json:"policy,omitempty"`
	// Days is the series, one per UTC day of the range.
	Days []Day `json:"days"`
	// Sources are the top source IPs, Failing those with the most
	// non-compliant messages.
	Sources []Source `json:"sources"`
	Failing []Source `json:"failing"`
	// Reporters are who sent the reports, the most messages first.
	Reporters []Reporter `json:"reporters"`
	// Rollout is the policy advice, as of the end of the range.
	Rollout Rollout `json:"rollout"`
}

// SummaryOptions shape a Summary.
type SummaryOptions struct {
	// Top is how many sources, failing sources and reporters; 0 means 10.
	Top int
}

// Summary returns everything about domain over r.
func (s *Service) Summary(ctx context.Context, domain string, r Range, o SummaryOptions) (*Summary, error) {
	if domain == "" {
		return nil, errors.New("summary: no domain")
	}
	sum := &Summary{Domain: domain, Range: r}
	var err error
	if sum.Days, err = s.Series(ctx, domain, r); err != nil {
		return nil, fmt.Errorf("summary of %s: %w", domain, err)
	}
	var c store.ReceivedCounts
	for _, d := range sum.Days {
		c.Add(d.ReceivedCounts)
		sum.Reports += d.Reports
	}
	sum.Counts = CountsOf(c)
	doms, err := s.Store.ReceivedDomains(ctx, r.filter(domain))
	if err != nil {
		return nil, fmt.Errorf("summary of %s: %w", domain, err)
	}
	for _, d := range doms {
		sum.Failures += d.Failures
	}
	// The two source lists look their names up together.
	names := s.Names
	s2 := *s
	s2.Names = nil
	if sum.Sources, err = s2.Sources(ctx, domain, r, o.Top); err != nil {
		return nil, fmt.Errorf("summary of %s: %w", domain, err)
	}
	if sum.Failing, err = s2.FailingSources(ctx, domain, r, o.Top); err != nil {
		return nil, fmt.Errorf("summary of %s: %w", domain, err)
	}
	if names != nil {
		var addrs []netip.Addr
		for _, l := range [][]Source{sum.Sources, sum.Failing} {
			for _, x := range l {
				addrs = append(addrs, x.IP)
			}
		}
		got := names.Lookup(ctx, addrs)
		for _, l := range [][]Source{sum.Sources, sum.Failing} {
			for i := range l {
				l[i].Name = got[l[i].IP]
			}
		}
	}
	if sum.Reporters, err = s.Reporters(ctx, domain, r, o.Top); err != nil {
		return nil, fmt.Errorf("summary of %s: %w", domain, err)
	}
	asOf := s.now()
	if !r.To.IsZero() && r.To.Before(asOf) {
		asOf = r.To.Add(-time.Second)
	}
	if sum.Rollout, err = s.Rollout(ctx, domain, asOf); err != nil {
		return nil, fmt.Errorf("summary of %s: %w", domain, err)
	}
	// The policy: of the latest report that saw the one Rollout settled
	// on (reporters may disagree while a new record propagates).
	latest, err := s.Store.ReceivedReports(ctx, r.filter(domain), 100)
	if err != nil {
		return nil, fmt.Errorf("summary of %s: %w", domain, err)
	}
	for i := range latest {
		if latest[i].Policy.P == sum.Rollout.Policy || sum.Policy == nil {
			sum.Policy = &latest[i].Policy
			if latest[i].Policy.P == sum.Rollout.Policy {
				break
			}
		}
	}
	return sum, nil
}

// Summaries returns the Summary of every domain with reports in r.
func (s *Service) Summaries(ctx context.Context, r Range, o SummaryOptions) ([]*Summary, error) {
	doms, err := s.Domains(ctx, r)
	if err != nil {
		return nil, err
	}
	out := make([]*Summary, 0, len(doms))
	for _, d := range doms {
		sum, err := s.Summary(ctx, d.Domain, r, o)
		if err != nil {
			return nil, err
		}
		out = append(out, sum)
	}
	return out, nil
}
