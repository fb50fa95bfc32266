package web

import (
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// scrape reads /metrics as Prometheus does and returns the samples by
// name and labels: "name{k=v,k=v}" (labels sorted), a summary as its
// _sum and _count.
func scrape(t testing.TB, s *Server, header ...string) map[string]float64 {
	t.Helper()
	res, body := get(t, s.Handler(), "/metrics", header...)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "dmarcd_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_SUMMARY:
				out[name+"_sum"] = m.GetSummary().GetSampleSum()
				out[name+"_count"] = float64(m.GetSummary().GetSampleCount())
			default:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// liveStats are counters a test moves, read at scrape time as the
// daemon's parts are.
type liveStats struct {
	messages atomic.Int64
}

func (l *liveStats) stats() Stats {
	return Stats{
		Milter: func() MilterStats {
			n := l.messages.Load()
			return MilterStats{
				Messages: n, Skipped: 4, Panics: 0,
				ByResult: map[string]int64{"pass": n - 3, "fail": 3, "none": 0, "temperror": 0, "permerror": 0},
				ByAction: map[string]int64{"accept": n - 2, "quarantine": 1, "reject": 1, "tempfail": 0},
				ByResultAction: map[ResultAction]int64{
					{"pass", "accept"}: n - 3, {"fail", "accept"}: 1, {"fail", "quarantine"}: 1, {"fail", "reject"}: 1,
				},
				Sessions: &Sessions{Total: 12, Active: 2},
			}
		},
		DNS: func() dnscache.Stats {
			return dnscache.Stats{Entries: 17, Hits: 40, NegativeHits: 5, FailureHits: 1, Misses: 20, Coalesced: 3,
				NXDomain: 4, NoData: 2, Temporary: 1, Queries: 22, Answered: 21, Latency: 420 * time.Millisecond,
				Timeouts: 1, ServerFailures: 1, Evictions: 0}
		},
		Writer: func() store.WriterStats {
			return store.WriterStats{Queued: 5, Pending: 2, Added: 100, Written: 93, Skipped: 1, Dropped: 0, Flushes: 9, Failures: 1,
				LastFlush: 1500 * time.Microsecond}
		},
		Scheduler: func() scheduler.Stats {
			return scheduler.Stats{Runs: 60, Errors: 1, Created: 4, Sent: 3, Deferred: 2, Failed: 1, Sender: true}
		},
		FailureReports: func() map[string]int64 {
			return map[string]int64{"queued": 1000, "sent": 10, "rate_limited": 990}
		},
	}
}

func TestMetricsAfterTraffic(t *testing.T) {
	live := &liveStats{}
	s := newTestServer(t, func(o *Options) { o.Stats = live.stats() })
	before := scrape(t, s)
	live.messages.Add(25) // mail arrives between two scrapes
	after := scrape(t, s)

	for _, tc := range []struct {
		name          string
		sample        string
		before, after float64
	}{
		{"messages by result and disposition move with the mail", "dmarcd_messages_total{disposition=accept,result=pass}", -3, 22},
		{"failures by disposition", "dmarcd_messages_total{disposition=reject,result=fail}", 1, 1},
		{"messages evaluated", "dmarcd_milter_messages_total", 0, 25},
		{"DMARC results per From domain", "dmarcd_dmarc_results_total{result=fail}", 3, 3},
		{"actions", "dmarcd_milter_actions_total{action=quarantine}", 1, 1},
		{"skipped messages", "dmarcd_milter_messages_skipped_total", 4, 4},
		{"milter sessions", "dmarcd_milter_sessions_total", 12, 12},
		{"open milter sessions", "dmarcd_milter_sessions", 2, 2},
		{"DNS cache hits", "dmarcd_dns_cache_hits_total{kind=positive}", 40, 40},
		{"negative DNS cache hits", "dmarcd_dns_cache_hits_total{kind=negative}", 5, 5},
		{"DNS cache misses", "dmarcd_dns_cache_misses_total", 20, 20},
		{"DNS cache size", "dmarcd_dns_cache_entries", 17, 17},
		{"DNS queries", "dmarcd_dns_queries_total", 22, 22},
		{"DNS timeouts", "dmarcd_dns_query_errors_total{reason=timeout}", 1, 1},
		{"DNS latency, summed", "dmarcd_dns_query_seconds_sum", 0.42, 0.42},
		{"DNS latency, counted", "dmarcd_dns_query_seconds_count", 21, 21},
		{"store queue depth", "dmarcd_store_queue_rows", 7, 7},
		{"rows written", "dmarcd_store_rows_written_total", 93, 93},
		{"failed flushes", "dmarcd_store_flush_failures_total", 1, 1},
		{"last flush", "dmarcd_store_last_flush_seconds", 0.0015, 0.0015},
		{"reports sent", "dmarcd_reports_sent_total", 3, 3},
		{"reports failed", "dmarcd_reports_failed_total", 1, 1},
		{"reports deferred", "dmarcd_reports_deferred_total", 2, 2},
		{"this node sends", "dmarcd_report_sender", 1, 1},
		{"failure reports sent", "dmarcd_failure_reports_total{result=sent}", 10, 10},
		{"failure reports dropped by the rate limits", "dmarcd_failure_reports_total{result=rate_limited}", 990, 990},
		{"aggregate reports ingested", "dmarcd_reports_ingested{kind=aggregate}", 5, 5},
		{"failure reports ingested", "dmarcd_reports_ingested{kind=failure}", 0, 0},
		{"messages of the reports ingested", "dmarcd_reports_ingested_messages", 2918 + 999999, 2918 + 999999},
		{"domains of the reports ingested", "dmarcd_reports_ingested_domains", 2, 2},
		{"the version", "dmarcd_build_info{version=1.2.3-test}", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, okb := before[tc.sample]
			a, oka := after[tc.sample]
			if !okb || !oka {
				t.Fatalf("%s missing from /metrics", tc.sample)
			}
			if b != tc.before || a != tc.after {
				t.Errorf("%s: %v then %v, want %v then %v", tc.sample, b, a, tc.before, tc.after)
			}
		})
	}
	t.Run("Go's and the process's metrics are there", func(t *testing.T) {
		for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
			if _, ok := after[name]; !ok {
				t.Errorf("%s missing", name)
			}
		}
	})
}

func TestMetricsLeaveOutWhatTheDaemonDoesNotCount(t *testing.T) {
	s := newTestServer(t, func(o *Options) {
		o.Source = nil
		o.Stats = Stats{Milter: func() MilterStats {
			return MilterStats{Messages: 2, ByAction: map[string]int64{"accept": 2}}
		}}
	})
	got := scrape(t, s)
	for _, name := range []string{"dmarcd_messages_total", "dmarcd_milter_sessions", "dmarcd_milter_sessions_total",
		"dmarcd_dns_cache_misses_total", "dmarcd_store_queue_rows", "dmarcd_reports_sent_total", "dmarcd_reports_ingested"} {
		for k := range got {
			if k == name || strings.HasPrefix(k, name+"{") {
				t.Errorf("%s is there", k)
			}
		}
	}
	if got["dmarcd_milter_actions_total{action=accept}"] != 2 {
		t.Errorf("the actions are missing: %v", got)
	}
}
