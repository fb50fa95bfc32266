package web

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd/report/ingest"
)

// Source is where the dashboard and the JSON API read the aggregate
// reports received for our domains (the reports other receivers send to
// our rua address, imported by dmarcd import). The received-report store
// implements it, or a thin adapter in front of it does; MemorySource is a
// complete implementation over reports held in memory.
//
// Every method counts the messages of the policy_evaluated part of the
// reports, by the UTC day a report covers (see Query), and must be safe
// for concurrent use.
type Source interface {
	// Domains lists every policy domain any report was received for,
	// with its counts within q's days (zero when it has none there);
	// q.Domain is ignored. Most messages first, then by name.
	Domains(ctx context.Context, q Query) ([]DomainRow, error)

	// Summary returns the totals of q and one Day for each of q's days,
	// oldest first, days without reports included (with zero counts).
	Summary(ctx context.Context, q Query) (Summary, error)

	// Sources returns the source IPs of q's reports: most messages
	// first, or with q.Failing only those with failing messages, most
	// failing first; then by address. At most q.Limit rows when q.Limit
	// is more than 0.
	Sources(ctx context.Context, q Query) ([]SourceRow, error)

	// Reporters returns the organisations that sent q's reports, most
	// messages first, then by name.
	Reporters(ctx context.Context, q Query) ([]Reporter, error)

	// Totals counts everything the source holds, for /metrics.
	Totals(ctx context.Context) (Totals, error)
}

// Query selects reports: those for one policy domain (or every domain)
// whose day falls in [From, To). Both are midnights, UTC. A report's day
// is the UTC day of the middle of the period it covers, so that a report
// from midnight to midnight in a time zone other than UTC counts on its
// own day.
type Query struct {
	// Domain is the policy domain; "" for every domain.
	Domain string
	// From and To bound the days: From included, To excluded.
	From, To time.Time
	// Failing and Limit shape Sources only.
	Failing bool
	Limit   int
}

// Days returns the number of days q covers.
func (q Query) Days() int { return int(q.To.Sub(q.From) / (24 * time.Hour)) }

// Counts are messages as the reporters evaluated them (policy_evaluated),
// counted as report/received counts them.
type Counts struct {
	// Messages counts every message.
	Messages int64 `json:"messages"`
	// Compliant counts the messages that passed DMARC: aligned SPF or
	// DKIM passed.
	Compliant int64 `json:"compliant"`
	// Quarantined and Rejected count the messages the reporter
	// quarantined or rejected: failing ones, but for a receiver's local
	// policy.
	Quarantined int64 `json:"quarantined"`
	Rejected    int64 `json:"rejected"`
	// SPFPass and DKIMPass count the messages whose SPF (DKIM) result
	// was aligned and passed; SPFFail and DKIMFail the others.
	SPFPass  int64 `json:"spf_pass"`
	SPFFail  int64 `json:"spf_fail"`
	DKIMPass int64 `json:"dkim_pass"`
	DKIMFail int64 `json:"dkim_fail"`
}

// Failing returns the messages that failed DMARC, whatever was done.
func (c Counts) Failing() int64 { return c.Messages - c.Compliant }

// Parts splits the messages in four that add up to Messages, as the
// chart stacks them: compliant ones, then the failing ones as rejected,
// quarantined, or failed and delivered all the same (disposition none,
// as p=none asks). Counts do not say which messages a disposition hit;
// rejections and quarantines are taken to be of failing messages, as
// they are but for a receiver's local policy.
func (c Counts) Parts() (compliant, failed, quarantined, rejected int64) {
	failing := max(c.Failing(), 0)
	rejected = min(c.Rejected, failing)
	quarantined = min(c.Quarantined, failing-rejected)
	return c.Compliant, failing - rejected - quarantined, quarantined, rejected
}

// Failed returns the failing messages that were delivered (see Parts).
func (c Counts) Failed() int64 {
	_, failed, _, _ := c.Parts()
	return failed
}

// Compliance returns the share of compliant messages, from 0 to 1; 0
// when there are none.
func (c Counts) Compliance() float64 {
	if c.Messages == 0 {
		return 0
	}
	return float64(c.Compliant) / float64(c.Messages)
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Messages += o.Messages
	c.Compliant += o.Compliant
	c.Quarantined += o.Quarantined
	c.Rejected += o.Rejected
	c.SPFPass += o.SPFPass
	c.SPFFail += o.SPFFail
	c.DKIMPass += o.DKIMPass
	c.DKIMFail += o.DKIMFail
}

// CountRecord returns the Counts of one report record: n messages with
// the given policy_evaluated results and disposition. A message is
// compliant when aligned SPF or DKIM passed (RFC 7489 §6.6.2, RFC 9989
// §4.7); a result other than pass, missing included, is a failure.
func CountRecord(n int64, spf, dkim, disposition string) Counts {
	c := Counts{Messages: n, SPFFail: n, DKIMFail: n}
	if strings.EqualFold(spf, "pass") {
		c.SPFPass, c.SPFFail = n, 0
	}
	if strings.EqualFold(dkim, "pass") {
		c.DKIMPass, c.DKIMFail = n, 0
	}
	if c.SPFPass > 0 || c.DKIMPass > 0 {
		c.Compliant = n
	}
	switch {
	case strings.EqualFold(disposition, "quarantine"):
		c.Quarantined = n
	case strings.EqualFold(disposition, "reject"):
		c.Rejected = n
	}
	return c
}

// Summary is what the reports of a Query say, in all and per day.
type Summary struct {
	Domain string    `json:"domain"` // "" for every domain
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Totals Counts    `json:"totals"`
	// Reports counts the reports received, Reporters the organisations
	// that sent them.
	Reports   int64 `json:"reports"`
	Reporters int   `json:"reporters"`
	Days      []Day `json:"days"`
}

// Day is the counts of the reports of one UTC day.
type Day struct {
	Date time.Time `json:"date"` // midnight UTC
	Counts
}

// DomainRow is one policy domain's counts.
type DomainRow struct {
	Domain  string `json:"domain"`
	Reports int64  `json:"reports"`
	// Last is the day (see Query) of the newest report received for the
	// domain, at any time; zero when none.
	Last time.Time `json:"last_report,omitzero"`
	Counts
}

// SourceRow is one sending IP address's counts.
type SourceRow struct {
	IP netip.Addr `json:"ip"`
	// PTR is the address's reverse DNS name, "" when unknown. Sources
	// need not fill it: the dashboard looks names up itself.
	PTR string `json:"ptr,omitempty"`
	// Domains are the policy domains it sent mail for, sorted; nil when
	// the Source does not say.
	Domains []string `json:"domains"`
	Counts
}

// Reporter is one organisation that sent reports.
type Reporter struct {
	Org     string `json:"org"`
	Email   string `json:"email"`
	Reports int64  `json:"reports"`
	// Last is the day (see Query) of its newest report.
	Last time.Time `json:"last_report"`
	// Counts: a Source may count Messages and Compliant only.
	Counts
}

// Totals count what a Source holds.
type Totals struct {
	Reports  int64 // aggregate reports
	Failures int64 // failure reports
	Messages int64 // the messages the aggregate reports count
	Domains  int   // policy domains
}

// MemorySource is a Source over aggregate reports held in memory. It
// serves tests, and any store that can list its reports.
type MemorySource struct {
	mu      sync.RWMutex
	reports []*ingest.Aggregate
	keys    map[string]bool
}

// NewMemorySource returns a MemorySource holding reports.
func NewMemorySource(reports ...*ingest.Aggregate) *MemorySource {
	m := &MemorySource{keys: map[string]bool{}}
	m.Add(reports...)
	return m
}

// Add adds reports, skipping those it holds already (by Key).
func (m *MemorySource) Add(reports ...*ingest.Aggregate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range reports {
		if k := r.Key(); !m.keys[k] {
			m.keys[k] = true
			m.reports = append(m.reports, r)
		}
	}
}

// ReportDay returns the UTC day a report counts on: that of the middle of
// the period it covers.
func ReportDay(begin, end time.Time) time.Time {
	mid := begin.Add(end.Sub(begin) / 2).UTC()
	return time.Date(mid.Year(), mid.Month(), mid.Day(), 0, 0, 0, 0, time.UTC)
}

// each calls fn for each report of q (ignoring q.Domain when all).
func (m *MemorySource) each(q Query, all bool, fn func(r *ingest.Aggregate, day time.Time)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, r := range m.reports {
		if !all && q.Domain != "" && r.Policy.Domain != q.Domain {
			continue
		}
		day := ReportDay(r.Begin, r.End)
		if day.Before(q.From) || !day.Before(q.To) {
			continue
		}
		fn(r, day)
	}
}

func recordCounts(rec *ingest.Record) Counts {
	return CountRecord(rec.Count, rec.SPF, rec.DKIM, rec.Disposition)
}

// Domains implements Source.
func (m *MemorySource) Domains(_ context.Context, q Query) ([]DomainRow, error) {
	rows := map[string]*DomainRow{}
	m.mu.RLock()
	for _, r := range m.reports {
		d := rows[r.Policy.Domain]
		if d == nil {
			d = &DomainRow{Domain: r.Policy.Domain}
			rows[r.Policy.Domain] = d
		}
		if day := ReportDay(r.Begin, r.End); day.After(d.Last) {
			d.Last = day
		}
	}
	m.mu.RUnlock()
	m.each(q, true, func(r *ingest.Aggregate, _ time.Time) {
		d := rows[r.Policy.Domain]
		d.Reports++
		for i := range r.Records {
			d.Counts.Add(recordCounts(&r.Records[i]))
		}
	})
	out := make([]DomainRow, 0, len(rows))
	for _, d := range rows {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DomainRow) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), cmp.Compare(a.Domain, b.Domain))
	})
	return out, nil
}

// Summary implements Source.
func (m *MemorySource) Summary(_ context.Context, q Query) (Summary, error) {
	s := Summary{Domain: q.Domain, From: q.From, To: q.To}
	for d := q.From; d.Before(q.To); d = d.AddDate(0, 0, 1) {
		s.Days = append(s.Days, Day{Date: d})
	}
	orgs := map[string]bool{}
	m.each(q, false, func(r *ingest.Aggregate, day time.Time) {
		s.Reports++
		orgs[reporterKey(r)] = true
		i := int(day.Sub(q.From) / (24 * time.Hour))
		for j := range r.Records {
			c := recordCounts(&r.Records[j])
			s.Totals.Add(c)
			s.Days[i].Counts.Add(c)
		}
	})
	s.Reporters = len(orgs)
	return s, nil
}

// Sources implements Source.
func (m *MemorySource) Sources(_ context.Context, q Query) ([]SourceRow, error) {
	rows := map[netip.Addr]*SourceRow{}
	m.each(q, false, func(r *ingest.Aggregate, _ time.Time) {
		for i := range r.Records {
			rec := &r.Records[i]
			s := rows[rec.SourceIP]
			if s == nil {
				s = &SourceRow{IP: rec.SourceIP}
				rows[rec.SourceIP] = s
			}
			s.Counts.Add(recordCounts(rec))
			if !slices.Contains(s.Domains, r.Policy.Domain) {
				s.Domains = append(s.Domains, r.Policy.Domain)
			}
		}
	})
	out := make([]SourceRow, 0, len(rows))
	for _, s := range rows {
		if q.Failing && s.Failing() == 0 {
			continue
		}
		slices.Sort(s.Domains)
		out = append(out, *s)
	}
	key := func(s SourceRow) int64 { return s.Messages }
	if q.Failing {
		key = func(s SourceRow) int64 { return s.Failing() }
	}
	slices.SortFunc(out, func(a, b SourceRow) int {
		return cmp.Or(cmp.Compare(key(b), key(a)), a.IP.Compare(b.IP))
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// reporterKey identifies a reporting organisation: its name, or its
// e-mail address when it gave no name.
func reporterKey(r *ingest.Aggregate) string {
	return strings.ToLower(cmp.Or(r.Org, r.Email))
}

// Reporters implements Source.
func (m *MemorySource) Reporters(_ context.Context, q Query) ([]Reporter, error) {
	rows := map[string]*Reporter{}
	m.each(q, false, func(r *ingest.Aggregate, day time.Time) {
		k := reporterKey(r)
		rep := rows[k]
		if rep == nil {
			rep = &Reporter{Org: cmp.Or(r.Org, r.Email), Email: r.Email}
			rows[k] = rep
		}
		rep.Reports++
		if day.After(rep.Last) {
			rep.Last = day
		}
		for i := range r.Records {
			rep.Counts.Add(recordCounts(&r.Records[i]))
		}
	})
	out := make([]Reporter, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Reporter) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), cmp.Compare(strings.ToLower(a.Org), strings.ToLower(b.Org)))
	})
	return out, nil
}

// Totals implements Source.
func (m *MemorySource) Totals(context.Context) (Totals, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var t Totals
	domains := map[string]bool{}
	for _, r := range m.reports {
		t.Reports++
		t.Messages += r.Messages()
		domains[r.Policy.Domain] = true
	}
	t.Domains = len(domains)
	return t, nil
}
