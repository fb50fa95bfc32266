// Package web is dmarcd's HTTP listener: a dashboard of the aggregate
// reports received for our domains, the JSON API behind it, /metrics for
// Prometheus, /healthz, and on request Go's profiles.
//
// # Routes
//
//	GET /                     the dashboard (?domain=&days=&until=)
//	GET /static/dashboard.css its stylesheet, embedded
//	GET /api/                 the list of the API's endpoints
//	GET /api/domains          policy domains and their counts (?days=&until=)
//	GET /api/summary          totals and per-day counts (?domain=&days=&until=)
//	GET /api/sources          sending addresses (?domain=&days=&until=&failing=&limit=)
//	GET /api/reporters        organisations that sent reports (?domain=&days=&until=)
//	GET /metrics              Prometheus (text or OpenMetrics)
//	GET /healthz              "ok", or 503 "unhealthy: <part>"
//	    /debug/pprof/...      net/http/pprof, with Options.PProf only
//	GET /debug/vars           expvar (memstats, goroutines), with Options.PProf only
//
// days is the last N days, today (UTC) included, 1 to 366 (15 by
// default, as in Xeams' summary view, the model of the dashboard); domain
// is a policy domain, absent for all of them. The API's answers are
// documented on its handlers (api.go).
//
// With Options.User set, every route but /healthz asks for HTTP basic
// authentication; the password is compared in constant time. /healthz
// says which part is unhealthy and nothing more.
//
// # The dashboard
//
// The page is rendered on the server with html/template: totals
// (messages; compliant, failed but delivered, quarantined and rejected;
// aligned SPF and DKIM pass and fail; reports and reporters), an inline SVG
// chart of each day (stacked bars of the four kinds of messages and a line
// of the day's compliance, with a title, a description and a tooltip per
// day for screen readers and mice, and the same numbers in a table), the
// domains, the failing sources with what to do about them, every source
// with its PTR name, and the reporters. It needs no JavaScript and fetches
// nothing from elsewhere: one embedded stylesheet, and a
// Content-Security-Policy that allows nothing more.
//
// A message is compliant when the reporter found aligned SPF or DKIM
// passing (policy_evaluated); a failing one counts by its disposition as
// quarantined, rejected, or failed but delivered (p=none). A report counts
// on the UTC day in the middle of the period it covers. The numbers come
// from a Source: the received-report store, or MemorySource.
//
// # Metrics
//
// /metrics serves a registry of its own: Go's and the process's
// collectors, dmarcd_build_info{version}, and a collector that reads the
// daemon's counters at scrape time (Stats), so that the mail path does no
// work for metrics:
//
//	dmarcd_messages_total{result,disposition}   messages by deciding DMARC result and action
//	dmarcd_milter_messages_total                messages evaluated
//	dmarcd_milter_messages_skipped_total        messages passed unevaluated
//	dmarcd_milter_actions_total{action}         accept, quarantine, reject, tempfail
//	dmarcd_dmarc_results_total{result}          one per From domain evaluated
//	dmarcd_milter_sessions_total                MTA connections
//	dmarcd_milter_sessions                      MTA connections open now
//	dmarcd_milter_panics_total                  handler bugs caught
//	dmarcd_dns_cache_hits_total{kind}           positive, negative, failure
//	dmarcd_dns_cache_misses_total               lookups sent to the nameservers
//	dmarcd_dns_cache_coalesced_total            lookups that joined one under way
//	dmarcd_dns_cache_miss_results_total{result} nxdomain, nodata, temporary
//	dmarcd_dns_cache_entries                    answers cached
//	dmarcd_dns_cache_evictions_total            answers dropped for room
//	dmarcd_dns_queries_total                    queries sent
//	dmarcd_dns_query_errors_total{reason}       timeout, network, servfail, refused, other_rcode
//	dmarcd_dns_query_seconds                    summary (sum, count) of the answered queries' round trips
//	dmarcd_store_queue_rows                     report rows waiting for the store
//	dmarcd_store_rows_{added,written,skipped,dropped}_total
//	dmarcd_store_flushes_total, dmarcd_store_flush_failures_total
//	dmarcd_store_last_flush_seconds
//	dmarcd_reports_{created,skipped,sent,deferred,failed}_total
//	dmarcd_reports_rate_limited_total, dmarcd_reports_postponed_total
//	dmarcd_report_runs_total, dmarcd_report_run_errors_total
//	dmarcd_report_sender                        1 on the node holding the sender lease
//	dmarcd_reports_ingested{kind}               received reports in the store: aggregate, failure
//	dmarcd_reports_ingested_messages            messages they count
//	dmarcd_reports_ingested_domains             policy domains they cover
//
// The dns_query_seconds summary has no quantiles: the resolver keeps a sum
// and a count, so rate(sum)/rate(count) is the mean round trip. The
// reports_ingested gauges count what the store holds (every node's
// imports, less expiry); the report counters count what this node's
// scheduler did since it started.
package web
