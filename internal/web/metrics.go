package web

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// Stats are where /metrics reads its numbers: each function is called at
// scrape time and returns the counters of one part of the daemon as they
// are then, so serving metrics costs the mail path nothing. A nil
// function leaves its metrics out.
type Stats struct {
	Milter    func() MilterStats
	DNS       func() dnscache.Stats
	Writer    func() store.WriterStats
	Scheduler func() scheduler.Stats
	// FailureReports counts the failure reports by what became of them:
	// "queued", "duplicate", "queue_full" (the milter's side), "sent",
	// "deferred", "failed", and the reasons they were dropped
	// ("rate_limited", "unauthorized", ...).
	FailureReports func() map[string]int64
}

// MilterStats are the milter's counters (milter.StatsSnapshot).
type MilterStats struct {
	// Messages counts the messages evaluated; Skipped those passed
	// without evaluation (ignored hosts, authenticated senders...).
	Messages, Skipped int64
	// ByResult counts DMARC results ("pass", "fail", "none",
	// "temperror", "permerror"), one per From domain evaluated.
	ByResult map[string]int64
	// ByAction counts what was done with the messages: "accept",
	// "quarantine", "reject", "tempfail".
	ByAction map[string]int64
	// ByResultAction counts the messages by the DMARC result that
	// decided their fate and the action taken; nil when the milter does
	// not count it.
	ByResultAction map[ResultAction]int64
	// Sessions counts MTA connections; nil when the milter does not.
	Sessions *Sessions
	// Panics counts handler bugs caught.
	Panics int64
}

// ResultAction is a message's DMARC result and the milter's action.
type ResultAction struct{ Result, Action string }

// Sessions count milter connections from the MTA.
type Sessions struct {
	Total  int64 // ever accepted
	Active int64 // open now
}

// scrapeTimeout bounds the store query of a scrape.
const scrapeTimeout = 5 * time.Second

// collector turns Stats (and the Source's totals) into metrics at scrape
// time.
type collector struct {
	stats  Stats
	source Source
	log    *slog.Logger
	descs  []*prometheus.Desc // all of the below, for Describe

	// milter
	messages, results, actions, skipped, panics *prometheus.Desc
	evaluated, sessions, sessionsActive         *prometheus.Desc
	// DNS
	dnsHits, dnsMisses, dnsCoalesced, dnsEntries, dnsEvictions *prometheus.Desc
	dnsQueries, dnsErrors, dnsQuerySeconds, dnsMissResults     *prometheus.Desc
	// store
	queueRows, rowsAdded, rowsWritten, rowsDropped, rowsSkipped *prometheus.Desc
	flushes, flushFailures, lastFlush                           *prometheus.Desc
	// scheduler
	reportsCreated, reportsSkipped, reportsSent, reportsDeferred *prometheus.Desc
	reportsFailed, reportsLimited, reportsPostponed              *prometheus.Desc
	reportRuns, reportRunErrors, reportSender                    *prometheus.Desc
	failureReports                                               *prometheus.Desc
	// received reports
	ingested, ingestedMessages, receivedDomains *prometheus.Desc
}

func newCollector(stats Stats, source Source, log *slog.Logger) *collector {
	var all []*prometheus.Desc
	d := func(name, help string, labels ...string) *prometheus.Desc {
		desc := prometheus.NewDesc("dmarcd_"+name, help, labels, nil)
		all = append(all, desc)
		return desc
	}
	c := &collector{
		stats: stats, source: source, log: log,

		messages:       d("messages_total", "Messages evaluated, by the DMARC result that decided them and what was done (disposition: accept, quarantine, reject, tempfail).", "result", "disposition"),
		evaluated:      d("milter_messages_total", "Messages evaluated by the milter."),
		results:        d("dmarc_results_total", "DMARC evaluations by result, one per From domain of each message.", "result"),
		actions:        d("milter_actions_total", "Messages by what the milter did with them.", "action"),
		skipped:        d("milter_messages_skipped_total", "Messages passed without evaluation (ignored hosts, authenticated senders, ignored domains)."),
		panics:         d("milter_panics_total", "Bugs caught in milter handlers; each ended its own session only."),
		sessions:       d("milter_sessions_total", "Milter connections from the MTA."),
		sessionsActive: d("milter_sessions", "Milter connections from the MTA open now."),

		dnsHits:         d("dns_cache_hits_total", "DNS lookups answered from the cache, by kind of answer (positive, negative: NXDOMAIN or NODATA, failure: a cached server failure).", "kind"),
		dnsMisses:       d("dns_cache_misses_total", "DNS lookups sent to the nameservers."),
		dnsCoalesced:    d("dns_cache_coalesced_total", "DNS lookups that joined a query already under way."),
		dnsMissResults:  d("dns_cache_miss_results_total", "DNS cache misses by outcome (nxdomain, nodata, temporary failure).", "result"),
		dnsEntries:      d("dns_cache_entries", "Answers in the DNS cache."),
		dnsEvictions:    d("dns_cache_evictions_total", "Unexpired answers dropped to keep the cache within its size."),
		dnsQueries:      d("dns_queries_total", "Queries sent to the nameservers, retries and TCP included."),
		dnsErrors:       d("dns_query_errors_total", "Queries that failed, by reason (timeout, network, servfail, refused, other_rcode).", "reason"),
		dnsQuerySeconds: d("dns_query_seconds", "Round-trip time of the answered queries to the nameservers."),

		queueRows:     d("store_queue_rows", "Report rows waiting to be written to the store, or being written."),
		rowsAdded:     d("store_rows_added_total", "Report rows queued for the store."),
		rowsWritten:   d("store_rows_written_total", "Report rows committed to the store."),
		rowsSkipped:   d("store_rows_skipped_total", "Report rows left out for having no DMARC policy."),
		rowsDropped:   d("store_rows_dropped_total", "Report rows dropped because the queue was full (the store too slow or down)."),
		flushes:       d("store_flushes_total", "Store transactions that wrote queued rows."),
		flushFailures: d("store_flush_failures_total", "Store transactions that failed (their rows are retried)."),
		lastFlush:     d("store_last_flush_seconds", "Duration of the latest store transaction."),

		reportsCreated:   d("reports_created_total", "Aggregate reports created (this node, while it held the sender lease)."),
		reportsSkipped:   d("reports_skipped_total", "Aggregate reports created with nowhere to send them, or too old to send."),
		reportsSent:      d("reports_sent_total", "Aggregate report deliveries that succeeded (one report to one destination)."),
		reportsDeferred:  d("reports_deferred_total", "Aggregate report deliveries that failed temporarily and will be retried."),
		reportsFailed:    d("reports_failed_total", "Aggregate report deliveries that failed for good or were given up."),
		reportsLimited:   d("reports_rate_limited_total", "Due aggregate report deliveries held back by the rate limits."),
		reportsPostponed: d("reports_postponed_total", "Report periods postponed because a destination could not be verified."),
		reportRuns:       d("report_runs_total", "Rounds of the report scheduler."),
		reportRunErrors:  d("report_run_errors_total", "Rounds of the report scheduler that ended with an error."),
		reportSender:     d("report_sender", "1 while this node holds the sender lease and sends the aggregate reports."),
		failureReports:   d("failure_reports_total", "Failure reports by what became of them: queued, duplicate, queue_full (on this node's milter side); sent, deferred, failed, and dropped by reason (rate_limited, unauthorized, too_large, suppressed, expired) by the node sending them.", "result"),

		ingested:         d("reports_ingested", "Reports received from other receivers and kept in the store (every node and dmarcd import), by kind (aggregate, failure).", "kind"),
		ingestedMessages: d("reports_ingested_messages", "Messages counted by the aggregate reports kept in the store."),
		receivedDomains:  d("reports_ingested_domains", "Policy domains with aggregate reports in the store."),
	}
	c.descs = all
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.stats.Milter != nil {
		m := c.stats.Milter()
		counter(c.evaluated, float64(m.Messages))
		counter(c.skipped, float64(m.Skipped))
		counter(c.panics, float64(m.Panics))
		for _, k := range slices.Sorted(maps.Keys(m.ByResult)) {
			counter(c.results, float64(m.ByResult[k]), k)
		}
		for _, k := range slices.Sorted(maps.Keys(m.ByAction)) {
			counter(c.actions, float64(m.ByAction[k]), k)
		}
		for k, n := range m.ByResultAction {
			counter(c.messages, float64(n), k.Result, k.Action)
		}
		if m.Sessions != nil {
			counter(c.sessions, float64(m.Sessions.Total))
			gauge(c.sessionsActive, float64(m.Sessions.Active))
		}
	}
	if c.stats.DNS != nil {
		s := c.stats.DNS()
		counter(c.dnsHits, float64(s.Hits), "positive")
		counter(c.dnsHits, float64(s.NegativeHits), "negative")
		counter(c.dnsHits, float64(s.FailureHits), "failure")
		counter(c.dnsMisses, float64(s.Misses))
		counter(c.dnsCoalesced, float64(s.Coalesced))
		counter(c.dnsMissResults, float64(s.NXDomain), "nxdomain")
		counter(c.dnsMissResults, float64(s.NoData), "nodata")
		counter(c.dnsMissResults, float64(s.Temporary), "temporary")
		gauge(c.dnsEntries, float64(s.Entries))
		counter(c.dnsEvictions, float64(s.Evictions))
		counter(c.dnsQueries, float64(s.Queries))
		counter(c.dnsErrors, float64(s.Timeouts), "timeout")
		counter(c.dnsErrors, float64(s.NetworkErrors), "network")
		counter(c.dnsErrors, float64(s.ServerFailures), "servfail")
		counter(c.dnsErrors, float64(s.Refused), "refused")
		counter(c.dnsErrors, float64(s.OtherRcodes), "other_rcode")
		ch <- prometheus.MustNewConstSummary(c.dnsQuerySeconds, s.Answered, s.Latency.Seconds(), nil)
	}
	if c.stats.Writer != nil {
		w := c.stats.Writer()
		gauge(c.queueRows, float64(int64(w.Queued)+w.Pending))
		counter(c.rowsAdded, float64(w.Added))
		counter(c.rowsWritten, float64(w.Written))
		counter(c.rowsSkipped, float64(w.Skipped))
		counter(c.rowsDropped, float64(w.Dropped))
		counter(c.flushes, float64(w.Flushes))
		counter(c.flushFailures, float64(w.Failures))
		gauge(c.lastFlush, w.LastFlush.Seconds())
	}
	if c.stats.Scheduler != nil {
		s := c.stats.Scheduler()
		counter(c.reportsCreated, float64(s.Created))
		counter(c.reportsSkipped, float64(s.Skipped))
		counter(c.reportsSent, float64(s.Sent))
		counter(c.reportsDeferred, float64(s.Deferred))
		counter(c.reportsFailed, float64(s.Failed))
		counter(c.reportsLimited, float64(s.Limited))
		counter(c.reportsPostponed, float64(s.Postponed))
		counter(c.reportRuns, float64(s.Runs))
		counter(c.reportRunErrors, float64(s.Errors))
		sender := 0.0
		if s.Sender {
			sender = 1
		}
		gauge(c.reportSender, sender)
	}
	if c.stats.FailureReports != nil {
		f := c.stats.FailureReports()
		for _, k := range slices.Sorted(maps.Keys(f)) {
			counter(c.failureReports, float64(f[k]), k)
		}
	}
	if c.source != nil {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		t, err := c.source.Totals(ctx)
		if err != nil {
			// Left out of this scrape, which the other metrics still make.
			c.log.Warn("metrics: received report totals", "error", err)
			return
		}
		gauge(c.ingested, float64(t.Reports), "aggregate")
		gauge(c.ingested, float64(t.Failures), "failure")
		gauge(c.ingestedMessages, float64(t.Messages))
		gauge(c.receivedDomains, float64(t.Domains))
	}
}

// newRegistry returns the registry /metrics serves: dmarcd's collector,
// the Go runtime's and the process's, and dmarcd_build_info.
func newRegistry(stats Stats, source Source, version string, log *slog.Logger) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "dmarcd_build_info",
		Help:        "Always 1; the version label is dmarcd's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	for _, c := range []prometheus.Collector{
		newCollector(stats, source, log),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
