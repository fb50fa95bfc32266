package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/ingest"
	"github.com/dmarcd/dmarcd/report/received"
	"github.com/dmarcd/dmarcd/report/store"
)

// now is the tests' clock: the 15 days before it run from 14 to 28
// November 2026.
var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func day(month time.Month, d int) time.Time { return time.Date(2026, month, d, 0, 0, 0, 0, time.UTC) }

// rec is one <record> of a test report.
type rec struct {
	ip          string
	count       int64
	dkim, spf   string
	disposition string
}

// reportXML writes an aggregate report as a reporter would send it, in
// RFC 7489's format: one day from begin.
func reportXML(org, email, id, domain string, begin time.Time, recs ...rec) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>%s</org_name>
    <email>%s</email>
    <report_id>%s</report_id>
    <date_range><begin>%d</begin><end>%d</end></date_range>
  </report_metadata>
  <policy_published><domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct></policy_published>
`, org, email, id, begin.Unix(), begin.Add(24*time.Hour-time.Second).Unix(), domain)
	for _, r := range recs {
		spfResult := "pass"
		if r.spf != "pass" {
			spfResult = "fail"
		}
		fmt.Fprintf(&b, `  <record>
    <row><source_ip>%s</source_ip><count>%d</count>
      <policy_evaluated><disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated></row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results><spf><domain>%s</domain><result>%s</result></spf></auth_results>
  </record>
`, r.ip, r.count, r.disposition, r.dkim, r.spf, domain, domain, spfResult)
	}
	b.WriteString("</feedback>\n")
	return b.String()
}

// importReport parses a report as dmarcd import does.
func importReport(t testing.TB, xml string) *ingest.Aggregate {
	t.Helper()
	a, err := ingest.ParseAggregate(strings.NewReader(xml), ingest.Limits{})
	if err != nil {
		t.Fatalf("parsing a test report: %v", err)
	}
	return a
}

// fixtureReports are the reports the tests import: within the 15 days of
// now, example.com has 2,838 messages (2,754 compliant, 50 quarantined,
// 34 rejected) in 3 reports from 2 reporters; example.org 80 (77
// compliant, 3 failed and delivered) in one; and one report of October,
// outside the window, counts 999,999 more for example.com.
func fixtureReports(t testing.TB) []*ingest.Aggregate {
	var out []*ingest.Aggregate
	for _, x := range fixtureXML() {
		out = append(out, importReport(t, x))
	}
	return out
}

// fixtureXML are the reports of fixtureReports as their senders wrote them.
func fixtureXML() []string {
	const google, yahoo = "google.com", "Yahoo"
	const gmail, ymail = "noreply-dmarc-support@google.com", "dmarchelp@yahooinc.com"
	pass := func(ip string, n int64) rec { return rec{ip, n, "pass", "pass", "none"} }
	return []string{
		reportXML(google, gmail, "g-1126", "example.com", day(11, 26),
			pass("192.0.2.10", 1200),
			rec{"198.51.100.7", 30, "fail", "fail", "reject"},
			rec{"203.0.113.25", 50, "fail", "fail", "quarantine"}),
		reportXML(google, gmail, "g-1127", "example.com", day(11, 27),
			pass("192.0.2.10", 1300),
			rec{"203.0.113.25", 20, "pass", "fail", "none"}),
		reportXML(yahoo, ymail, "y-1127", "example.com", day(11, 27),
			pass("192.0.2.10", 234),
			rec{"198.51.100.7", 4, "fail", "fail", "reject"}),
		reportXML(google, gmail, "g-org-1127", "example.org", day(11, 27),
			pass("192.0.2.10", 77),
			rec{"192.0.2.99", 3, "fail", "fail", "none"}),
		reportXML(google, gmail, "g-1001", "example.com", day(10, 1),
			pass("192.0.2.10", 999999)),
	}
}

// importedSource stores the fixture's reports as dmarcd import does, in
// a SQLite store of its own, and returns the Source that reads them
// through report/received, names looked up through testNames.
func importedSource(t testing.TB) ReceivedSource {
	t.Helper()
	dir := t.TempDir()
	for i, x := range fixtureXML() {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("report-%d.xml", i)), []byte(x), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "dmarcd.db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sum, err := (&received.Importer{Store: db}).Import(ctx, dir)
	if err != nil || sum.Reports != 5 {
		t.Fatalf("import: %+v, %v", sum, err)
	}
	return ReceivedSource{Service: &received.Service{Store: db, Names: &received.Names{Resolver: testNames}, Now: func() time.Time { return now }}}
}

// fakePTR answers reverse lookups from a map.
type fakePTR map[string]string

func (f fakePTR) LookupAddr(_ context.Context, addr string) ([]string, error) {
	if n, ok := f[addr]; ok {
		return []string{n + "."}, nil
	}
	return nil, fmt.Errorf("lookup %s: no PTR", addr)
}

var testNames = fakePTR{"192.0.2.10": "mail.example.com", "203.0.113.25": "news.mailer.example"}

// newTestServer returns a Server over the fixture, tweaked by the caller.
func newTestServer(t testing.TB, tweak func(*Options)) *Server {
	t.Helper()
	o := Options{
		Source:   NewMemorySource(fixtureReports(t)...),
		Resolver: testNames,
		Version:  "1.2.3-test",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      func() time.Time { return now },
	}
	if tweak != nil {
		tweak(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get requests path from h and returns the response and its body.
func get(t testing.TB, h http.Handler, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// listen opens a TCP listener on a free loopback port.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
