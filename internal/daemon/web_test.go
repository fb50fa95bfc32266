package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/dnstest"
	"github.com/dmarcd/dmarcd/internal/postfixtest"
	"github.com/dmarcd/dmarcd/milter"
	"github.com/dmarcd/dmarcd/report/received"
)

// httpGet fetches url, with basic authentication when user is not "".
func httpGet(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// samples reads Prometheus' text format: the value of each sample, by
// its name and labels as written ("name{k=\"v\"}").
func samples(body string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestHTTPListenerShowsTheDaemonsCounters runs the milter, the DNS cache,
// the report store with its Writer and scheduler, and the [http] listener
// as Run wires them, sends mail through the milter as an MTA does, and
// scrapes /metrics for what the mail did.
func TestHTTPListenerShowsTheDaemonsCounters(t *testing.T) {
	dns := dnstest.Start(t, zone...)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.DNS.Nameservers = []string{dns.Addr()}
	cfg.Store.FlushInterval = config.Duration(20 * time.Millisecond)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	})

	resolver, err := dnscache.New(ResolverConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	mcfg, err := milterConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := deps(cfg, resolver)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := openReporting(cfg, secrets{}, d.Evaluator, resolver, Options{ReportPoll: 20 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	closeStore := func() {
		if !closed {
			closed = true
			if err := rep.close(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(closeStore)
	srv := milter.New(mcfg, d, fanout{rep.writer}, log)
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(mln, listenerMode(config.ModeStrict))
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	pwFile := filepath.Join(dir, "http-password")
	if err := os.WriteFile(pwFile, []byte("s3cret pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := config.DefaultHTTP()
	h.Listen, h.User, h.PasswordFile = "127.0.0.1:0", "prometheus", pwFile
	wl, err := openWeb(h, config.DefaultReceived(), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := wl.start(srv, resolver, rep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := wl.close(ctx); err != nil {
			t.Errorf("closing the HTTP listener: %v", err)
		}
	})
	base := "http://" + wl.Addrs()[0].String()

	for i, m := range []struct{ from, want string }{
		{"reject.test", "reject"}, {"reject.test", "reject"}, {"quarantine.test", "accept"},
	} {
		got, err := milterMessage(mln.Addr().String(), "192.0.2.1", m.from, fmt.Sprintf("Q%d", i))
		if err != nil || got != m.want {
			t.Fatalf("message from %s: %s, %v; want %s", m.from, got, err, m.want)
		}
	}

	// A report another receiver sent about our domain, imported as
	// dmarcd import does, into the daemon's store.
	xml := filepath.Join(dir, "google.xml")
	yesterday := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	os.WriteFile(xml, fmt.Appendf(nil, `<?xml version="1.0"?><feedback><report_metadata><org_name>google.com</org_name>
<email>noreply-dmarc-support@google.com</email><report_id>123</report_id><date_range><begin>%d</begin><end>%d</end></date_range>
</report_metadata><policy_published><domain>ours.test</domain><p>reject</p></policy_published>
<record><row><source_ip>192.0.2.25</source_ip><count>4321</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
<identifiers><header_from>ours.test</header_from></identifiers><auth_results><spf><domain>ours.test</domain><result>pass</result></spf></auth_results></record>
</feedback>`, yesterday.Unix(), yesterday.Add(24*time.Hour-time.Second).Unix()), 0o644)
	if sum, err := (&received.Importer{Store: rep.db}).Import(context.Background(), xml); err != nil || sum.Reports != 1 {
		t.Fatalf("import: %+v, %v", sum, err)
	}

	if code, _ := httpGet(t, base+"/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a password: %d", code)
	}
	var got map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := httpGet(t, base+"/metrics", "prometheus", "s3cret pass")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d %s", code, body)
		}
		got = samples(body)
		// Rows reach the store within the flush interval; the scheduler
		// takes the lease, then counts its first round when it ends.
		if got["dmarcd_store_rows_written_total"] == 3 && got["dmarcd_report_sender"] == 1 && got["dmarcd_report_runs_total"] >= 1 ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct {
		name   string
		sample string
		check  func(float64) bool
		want   string
	}{
		{"every message evaluated", "dmarcd_milter_messages_total", eq(3), "3"},
		{"two rejected", `dmarcd_milter_actions_total{action="reject"}`, eq(2), "2"},
		{"one quarantined", `dmarcd_milter_actions_total{action="quarantine"}`, eq(1), "1"},
		{"three DMARC failures", `dmarcd_dmarc_results_total{result="fail"}`, eq(3), "3"},
		{"no passes", `dmarcd_dmarc_results_total{result="pass"}`, eq(0), "0"},
		{"lookups that went to the DNS server", "dmarcd_dns_cache_misses_total", atLeast(2), "2 or more"},
		{"the second message's policy from the cache", `dmarcd_dns_cache_hits_total{kind="positive"}`, atLeast(1), "1 or more"},
		{"DNS round trips timed", "dmarcd_dns_query_seconds_count", atLeast(2), "2 or more"},
		{"DNS round trips took time", "dmarcd_dns_query_seconds_sum", atLeast(1e-9), "more than 0"},
		{"rows queued for the store", "dmarcd_store_rows_added_total", eq(3), "3"},
		{"rows written to the store", "dmarcd_store_rows_written_total", eq(3), "3"},
		{"the queue empty again", "dmarcd_store_queue_rows", eq(0), "0"},
		{"the scheduler ran", "dmarcd_report_runs_total", atLeast(1), "1 or more"},
		{"this node sends the reports", "dmarcd_report_sender", eq(1), "1"},
		{"no report sent: reports are off", "dmarcd_reports_sent_total", eq(0), "0"},
		{"the imported report", `dmarcd_reports_ingested{kind="aggregate"}`, eq(1), "1"},
		{"its messages", "dmarcd_reports_ingested_messages", eq(4321), "4321"},
		{"the version", `dmarcd_build_info{version="dev"}`, eq(1), "1"},
		{"the process", "process_open_fds", atLeast(1), "1 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := got[tc.sample]
			if !ok {
				t.Fatalf("%s missing from /metrics", tc.sample)
			}
			if !tc.check(v) {
				t.Errorf("%s = %v, want %s", tc.sample, v, tc.want)
			}
		})
	}

	t.Run("the dashboard shows the imported report", func(t *testing.T) {
		code, body := httpGet(t, base+"/?domain=ours.test&days=7", "prometheus", "s3cret pass")
		if code != http.StatusOK || !strings.Contains(body, `<dd id="total-messages">4,321</dd>`) || !strings.Contains(body, "<svg") {
			t.Errorf("dashboard: %d\n%s", code, body)
		}
	})
	t.Run("the health check follows the store", func(t *testing.T) {
		if code, body := httpGet(t, base+"/healthz", "", ""); code != http.StatusOK || body != "ok\n" {
			t.Errorf("/healthz: %d %q", code, body)
		}
		closeStore()
		if code, body := httpGet(t, base+"/healthz", "", ""); code != http.StatusServiceUnavailable || body != "unhealthy: store\n" {
			t.Errorf("/healthz with the store closed: %d %q", code, body)
		}
	})
}

func eq(want float64) func(float64) bool      { return func(v float64) bool { return v == want } }
func atLeast(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }

func TestOpenWeb(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\r\nsecond line\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name    string
		h       config.HTTP
		err     string
		addrs   int
		warning string
	}{
		{"off opens nothing", config.HTTP{}, "", 0, ""},
		{"an address opens one listener", config.HTTP{Listen: "127.0.0.1:0"}, "", 1, ""},
		{"the password is the first line", config.HTTP{Listen: "127.0.0.1:0", User: "u", PasswordFile: pw}, "", 1,
			"can be read by others"},
		{"a missing password file stops start-up", config.HTTP{Listen: "127.0.0.1:0", User: "u", PasswordFile: filepath.Join(dir, "none")},
			"http.password_file", 0, ""},
		{"an empty password stops start-up", config.HTTP{Listen: "127.0.0.1:0", User: "u", PasswordFile: empty},
			"first line is empty", 0, ""},
		{"a port in use stops start-up", config.HTTP{Listen: busy.Addr().String()}, "address already in use", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			w, err := openWeb(tc.h, config.DefaultReceived(), slog.New(slog.NewTextHandler(logs, nil)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.close(context.Background())
			if n := len(w.Addrs()); n != tc.addrs {
				t.Errorf("%d listeners, want %d", n, tc.addrs)
			}
			if tc.h.PasswordFile == pw && w.password != "secret" {
				t.Errorf("password %q", w.password)
			}
			if !strings.Contains(logs.String(), tc.warning) {
				t.Errorf("log %q lacks %q", logs, tc.warning)
			}
		})
	}
}

// TestRunServesHTTP starts dmarcd as serve does, with an [http] table in
// its configuration file, sends mail through a real Postfix and reads the
// verdicts back from /metrics and the dashboard.
func TestRunServesHTTP(t *testing.T) {
	httpAddr := make(chan net.Addr, 1)
	s := startStackOpts(t, "\n[http]\nlisten = \"127.0.0.1:0\"\n", postfixtest.Options{}, func(o *Options) {
		o.HTTPReady = func(a []net.Addr) { httpAddr <- a[0] }
	})
	var base string
	select {
	case a := <-httpAddr:
		base = "http://" + a.String()
	default:
		t.Fatal("Run did not report the HTTP listener's address")
	}
	if code, body := httpGet(t, base+"/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	r := s.pf.Send(t, postfixtest.Message{From: "x@evil.test", To: []string{"user@mx.dmarcd.test"}, Data: message("ceo@reject.test")})
	if r.Code != 550 {
		t.Fatalf("reply %q, want 550", r.Reply.String())
	}
	want := `dmarcd_messages_total{disposition="reject",result="fail"}`
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := httpGet(t, base+"/metrics", "", "")
		got := samples(body)
		if code == http.StatusOK && got[want] == 1 && got["dmarcd_milter_sessions_total"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics: %d, %s = %v; body:\n%s", code, want, got[want], body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := httpGet(t, base+"/", "", ""); code != http.StatusOK || !strings.Contains(body, "<svg") && !strings.Contains(body, "dmarcd") {
		t.Errorf("dashboard: %d\n%s", code, body)
	}
	if code, _ := httpGet(t, base+"/debug/pprof/", "", ""); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ answered %d with http.pprof off, want 404", code)
	}
}

// TestReportMailboxMailIsStoredAsItPasses sends a report mail as Google
// does to the configured report mailbox through a real Postfix: it is
// delivered, and its report is in the store, shown by the dashboard's API.
func TestReportMailboxMailIsStoredAsItPasses(t *testing.T) {
	httpAddr := make(chan net.Addr, 1)
	s := startStackOpts(t, "\n[received]\nmailboxes = [\"DMARC-Reports@mx.dmarcd.test\"]\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
		postfixtest.Options{}, func(o *Options) { o.HTTPReady = func(a []net.Addr) { httpAddr <- a[0] } })
	base := "http://" + (<-httpAddr).String()
	raw, err := os.ReadFile("../../report/ingest/testdata/google-message.eml")
	if err != nil {
		t.Fatal(err)
	}
	// The report is about example.org; the mail comes from a domain of the
	// test DNS without a DMARC record: DMARC applies to report mail too.
	msg := strings.ReplaceAll(string(raw), "From: noreply-dmarc-support@google.com", "From: noreply-dmarc-support@reporter.test")
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	r := s.pf.Send(t, postfixtest.Message{From: "bounce@pass.test", To: []string{"dmarc-reports@mx.dmarcd.test"}, Data: []byte(msg)})
	if !r.Accepted() {
		t.Fatalf("reply %q, want accepted", r.Reply.String())
	}
	if got := s.pf.DeliveredQueueID(t, r.QueueID, 10*time.Second); len(got) != 1 {
		t.Fatalf("delivered %d copies, want 1", len(got))
	}
	waitFor(t, "the report in the store", 10*time.Second, func() bool {
		_, body := httpGet(t, base+"/api/domains", "", "")
		return strings.Contains(body, "example.org")
	})
	if !strings.Contains(s.logs.String(), "report mailbox: message read") {
		t.Errorf("no log line for the report mail")
	}
}
