package web

import (
	"cmp"
	"context"
	"slices"

	"github.com/dmarcd/dmarcd/report/received"
	"github.com/dmarcd/dmarcd/report/store"
)

// ReceivedSource is the Source of the report store: the aggregate reports
// dmarcd import stored, read through report/received's query API. With
// Service.Names set, sources come with their PTR names.
type ReceivedSource struct {
	Service *received.Service
}

var _ Source = ReceivedSource{}

func rangeOf(q Query) received.Range { return received.Range{From: q.From, To: q.To} }

// countsOf maps report/received's counts onto the dashboard's.
func countsOf(c store.ReceivedCounts) Counts {
	return Counts{
		Messages:    c.Messages,
		Compliant:   c.Compliant,
		Quarantined: c.Quarantine,
		Rejected:    c.Reject,
		SPFPass:     c.SPFAligned,
		SPFFail:     c.Messages - c.SPFAligned,
		DKIMPass:    c.DKIMAligned,
		DKIMFail:    c.Messages - c.DKIMAligned,
	}
}

// Domains implements Source: every domain ever reported on, with its
// counts in q's days.
func (r ReceivedSource) Domains(ctx context.Context, q Query) ([]DomainRow, error) {
	all, err := r.Service.Domains(ctx, received.Range{})
	if err != nil {
		return nil, err
	}
	days, err := r.Service.Store.ReceivedDays(ctx, store.ReceivedFilter{From: q.From, To: q.To})
	if err != nil {
		return nil, err
	}
	rows := make([]DomainRow, 0, len(all))
	index := map[string]int{}
	for _, d := range all {
		index[d.Domain] = len(rows)
		rows = append(rows, DomainRow{Domain: d.Domain, Last: d.Last})
	}
	for _, d := range days {
		i, ok := index[d.Domain]
		if !ok { // reported on since the first query
			i = len(rows)
			index[d.Domain] = i
			rows = append(rows, DomainRow{Domain: d.Domain, Last: d.Day})
		}
		rows[i].Reports += d.Reports
		rows[i].Counts.Add(countsOf(d.ReceivedCounts))
	}
	slices.SortFunc(rows, func(a, b DomainRow) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), cmp.Compare(a.Domain, b.Domain))
	})
	return rows, nil
}

// Summary implements Source.
func (r ReceivedSource) Summary(ctx context.Context, q Query) (Summary, error) {
	s := Summary{Domain: q.Domain, From: q.From, To: q.To}
	series, err := r.Service.Series(ctx, q.Domain, rangeOf(q))
	if err != nil {
		return s, err
	}
	for _, d := range series {
		c := countsOf(d.ReceivedCounts)
		s.Days = append(s.Days, Day{Date: d.Day, Counts: c})
		s.Totals.Add(c)
		s.Reports += d.Reports
	}
	reporters, err := r.Service.Reporters(ctx, q.Domain, rangeOf(q), maxRows)
	if err != nil {
		return s, err
	}
	s.Reporters = len(reporters)
	return s, nil
}

// maxRows stands for "all of them" where the query API wants a limit.
const maxRows = 100000

// Sources implements Source. The query API does not say which domains a
// source sent for: Domains stays nil.
func (r ReceivedSource) Sources(ctx context.Context, q Query) ([]SourceRow, error) {
	limit := cmp.Or(q.Limit, maxRows)
	var rows []received.Source
	var err error
	if q.Failing {
		rows, err = r.Service.FailingSources(ctx, q.Domain, rangeOf(q), limit)
	} else {
		rows, err = r.Service.Sources(ctx, q.Domain, rangeOf(q), limit)
	}
	if err != nil {
		return nil, err
	}
	out := make([]SourceRow, len(rows))
	for i, x := range rows {
		out[i] = SourceRow{IP: x.IP, PTR: x.Name, Counts: countsOf(x.ReceivedCounts)}
	}
	return out, nil
}

// Reporters implements Source. The query API counts messages and
// compliant ones per reporter, not the rest.
func (r ReceivedSource) Reporters(ctx context.Context, q Query) ([]Reporter, error) {
	rows, err := r.Service.Reporters(ctx, q.Domain, rangeOf(q), maxRows)
	if err != nil {
		return nil, err
	}
	out := make([]Reporter, len(rows))
	for i, x := range rows {
		out[i] = Reporter{Org: x.Org, Email: x.Email, Reports: x.Reports, Last: x.Last,
			Counts: Counts{Messages: x.Messages, Compliant: x.Compliant}}
	}
	return out, nil
}

// Totals implements Source, from the per-domain counts of reports (a
// small table, unlike the records): cheap enough for every scrape.
func (r ReceivedSource) Totals(ctx context.Context) (Totals, error) {
	doms, err := r.Service.Domains(ctx, received.Range{})
	if err != nil {
		return Totals{}, err
	}
	out := Totals{Domains: len(doms)}
	for _, d := range doms {
		out.Reports += d.Reports
		out.Failures += d.Failures
		out.Messages += d.Messages
	}
	return out, nil
}
