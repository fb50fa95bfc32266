package scheduler

import "sync/atomic"

// Stats counts what a Scheduler did since it started, for metrics. The
// counts come from RunOnce (Run's rounds and direct calls alike), added
// when a round ends; dry runs do not count.
type Stats struct {
	// Runs counts the rounds; Errors those that returned an error.
	Runs, Errors uint64
	// Created counts the reports created; Skipped those among them with
	// no destination to go to (or skipped for being too old).
	Created, Skipped uint64
	// Postponed counts the periods left for a later round because a
	// destination could not be verified.
	Postponed uint64
	// Sent, Deferred and Failed count delivery attempts by outcome: one
	// report to one destination, delivered, failed temporarily (to be
	// retried), or failed for good. Limited counts the due deliveries the
	// rate limits held back.
	Sent, Deferred, Failed, Limited uint64
	// Sender is true while this scheduler holds the sender lease: with
	// several nodes on one PostgreSQL database, exactly one shows true.
	Sender bool
}

// totals are the live values behind Stats.
type totals struct {
	runs, errors, created, skipped, postponed atomic.Uint64
	sent, deferred, failed, limited           atomic.Uint64
	sender                                    atomic.Bool
}

// add counts one round's summary.
func (t *totals) add(s Summary, err error) {
	t.runs.Add(1)
	if err != nil {
		t.errors.Add(1)
	}
	t.created.Add(uint64(s.Created))
	t.skipped.Add(uint64(s.Skipped))
	t.postponed.Add(uint64(s.Postponed))
	t.sent.Add(uint64(s.Sent))
	t.deferred.Add(uint64(s.Deferred))
	t.failed.Add(uint64(s.Failed))
	t.limited.Add(uint64(s.Limited))
}

// Stats returns the counters as they are now.
func (s *Scheduler) Stats() Stats {
	t := &s.totals
	return Stats{
		Runs:      t.runs.Load(),
		Errors:    t.errors.Load(),
		Created:   t.created.Load(),
		Skipped:   t.skipped.Load(),
		Postponed: t.postponed.Load(),
		Sent:      t.sent.Load(),
		Deferred:  t.deferred.Load(),
		Failed:    t.failed.Load(),
		Limited:   t.limited.Load(),
		Sender:    t.sender.Load(),
	}
}
