package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCountRecord(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		spf, dkim, disposition string
		want                   Counts
	}{
		{"both aligned and passing is compliant", "pass", "pass", "none",
			Counts{Messages: 7, Compliant: 7, SPFPass: 7, DKIMPass: 7}},
		{"DKIM alone is enough", "fail", "pass", "none",
			Counts{Messages: 7, Compliant: 7, SPFFail: 7, DKIMPass: 7}},
		{"SPF alone is enough, even when quarantined by local policy", "pass", "fail", "quarantine",
			Counts{Messages: 7, Compliant: 7, Quarantined: 7, SPFPass: 7, DKIMFail: 7}},
		{"a failure under p=none is delivered", "fail", "fail", "none",
			Counts{Messages: 7, SPFFail: 7, DKIMFail: 7}},
		{"a quarantined failure", "fail", "fail", "quarantine",
			Counts{Messages: 7, Quarantined: 7, SPFFail: 7, DKIMFail: 7}},
		{"a rejected failure, whatever the case of the words", "FAIL", "Fail", "Reject",
			Counts{Messages: 7, Rejected: 7, SPFFail: 7, DKIMFail: 7}},
		{"missing results fail", "", "", "reject",
			Counts{Messages: 7, Rejected: 7, SPFFail: 7, DKIMFail: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CountRecord(7, tc.spf, tc.dkim, tc.disposition); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPartsAddUpToTheMessages(t *testing.T) {
	for _, tc := range []struct {
		name                                   string
		c                                      Counts
		compliant, failed, quarantined, reject int64
	}{
		{"nothing", Counts{}, 0, 0, 0, 0},
		{"all compliant", Counts{Messages: 10, Compliant: 10}, 10, 0, 0, 0},
		{"failures under p=none are delivered", Counts{Messages: 10, Compliant: 7}, 7, 3, 0, 0},
		{"failures by disposition", Counts{Messages: 10, Compliant: 4, Quarantined: 2, Rejected: 3}, 4, 1, 2, 3},
		{"a compliant message quarantined by local policy counts as compliant", Counts{Messages: 10, Compliant: 10, Quarantined: 1}, 10, 0, 0, 0},
		{"rejections first when dispositions outnumber failures", Counts{Messages: 10, Compliant: 8, Quarantined: 2, Rejected: 1}, 8, 0, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f, q, r := tc.c.Parts()
			if c != tc.compliant || f != tc.failed || q != tc.quarantined || r != tc.reject {
				t.Errorf("parts %d %d %d %d, want %d %d %d %d", c, f, q, r, tc.compliant, tc.failed, tc.quarantined, tc.reject)
			}
			if c+f+q+r != tc.c.Messages {
				t.Errorf("parts add up to %d, not %d", c+f+q+r, tc.c.Messages)
			}
		})
	}
}

func TestMemorySourceSummary(t *testing.T) {
	src := NewMemorySource(fixtureReports(t)...)
	q15 := Query{From: day(11, 14), To: day(11, 29)}
	for _, tc := range []struct {
		name      string
		domain    string
		q         Query
		want      Counts
		reports   int64
		reporters int
	}{
		{"every domain over 15 days", "", q15,
			Counts{Messages: 2918, Compliant: 2831, Quarantined: 50, Rejected: 34, SPFPass: 2811, SPFFail: 107, DKIMPass: 2831, DKIMFail: 87}, 4, 2},
		{"one domain over 15 days", "example.com", q15,
			Counts{Messages: 2838, Compliant: 2754, Quarantined: 50, Rejected: 34, SPFPass: 2734, SPFFail: 104, DKIMPass: 2754, DKIMFail: 84}, 3, 2},
		{"one day", "example.org", Query{From: day(11, 27), To: day(11, 28)},
			Counts{Messages: 80, Compliant: 77, SPFPass: 77, SPFFail: 3, DKIMPass: 77, DKIMFail: 3}, 1, 1},
		{"a window without reports", "example.com", Query{From: day(11, 1), To: day(11, 8)},
			Counts{}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Domain = tc.domain
			s, err := src.Summary(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if s.Totals != tc.want || s.Reports != tc.reports || s.Reporters != tc.reporters {
				t.Errorf("totals %+v, %d reports from %d reporters;\nwant %+v, %d from %d", s.Totals, s.Reports, s.Reporters, tc.want, tc.reports, tc.reporters)
			}
			if len(s.Days) != tc.q.Days() {
				t.Fatalf("%d days, want %d", len(s.Days), tc.q.Days())
			}
			var sum Counts
			for i, d := range s.Days {
				if want := tc.q.From.AddDate(0, 0, i); !d.Date.Equal(want) {
					t.Errorf("day %d is %v, want %v", i, d.Date, want)
				}
				sum.Add(d.Counts)
			}
			if sum != s.Totals {
				t.Errorf("the days add up to %+v, not to the totals", sum)
			}
		})
	}
}

func TestReportDayIsTheMiddleOfThePeriod(t *testing.T) {
	for _, tc := range []struct {
		name       string
		begin, end time.Time
		want       time.Time
	}{
		{"a UTC day", day(11, 27), day(11, 28).Add(-time.Second), day(11, 27)},
		{"a day in UTC-8", day(11, 27).Add(8 * time.Hour), day(11, 28).Add(8*time.Hour - time.Second), day(11, 27)},
		{"a day in UTC+10", day(11, 27).Add(-10 * time.Hour), day(11, 28).Add(-10*time.Hour - time.Second), day(11, 27)},
		{"an hour", day(11, 27).Add(23 * time.Hour), day(11, 28), day(11, 27)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReportDay(tc.begin, tc.end); !got.Equal(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMemorySourceSkipsAReportImportedTwice(t *testing.T) {
	reps := fixtureReports(t)
	src := NewMemorySource(reps...)
	src.Add(fixtureReports(t)...)
	tot, _ := src.Totals(context.Background())
	if want := (Totals{Reports: 5, Messages: 2918 + 999999, Domains: 2}); tot != want {
		t.Errorf("totals %+v, want %+v", tot, want)
	}
}

func TestSourcesAndFailingSources(t *testing.T) {
	src := NewMemorySource(fixtureReports(t)...)
	q := Query{Domain: "example.com", From: day(11, 14), To: day(11, 29)}
	rows, _ := src.Sources(context.Background(), q)
	var ips []string
	for _, r := range rows {
		ips = append(ips, r.IP.String())
	}
	if got, want := strings.Join(ips, " "), "192.0.2.10 203.0.113.25 198.51.100.7"; got != want {
		t.Errorf("sources %s, want %s (most messages first)", got, want)
	}
	q.Domain, q.Failing = "", true
	rows, _ = src.Sources(context.Background(), q)
	ips = nil
	for _, r := range rows {
		ips = append(ips, r.IP.String()+"="+formatInt(r.Failing()))
	}
	if got, want := strings.Join(ips, " "), "203.0.113.25=50 198.51.100.7=34 192.0.2.99=3"; got != want {
		t.Errorf("failing sources %s, want %s (most failing first, compliant ones left out)", got, want)
	}
	q.Limit = 1
	if rows, _ = src.Sources(context.Background(), q); len(rows) != 1 {
		t.Errorf("%d rows with limit 1", len(rows))
	}
}

func TestDashboard(t *testing.T) {
	s := newTestServer(t, nil)
	for _, tc := range []struct {
		name     string
		path     string
		want     []string
		dontWant []string
	}{
		{
			name: "every domain shows the totals, the chart, the tables and the domains",
			path: "/",
			want: []string{
				`<svg id="compliance-chart"`, `role="img"`, `<title id="chart-title">DMARC compliance of all domains, 14 Nov 2026 to 28 Nov 2026</title>`,
				`<dd id="total-messages">2,918</dd>`, `<dd id="total-compliant">2,831</dd>`, `<dd class="sub" id="total-compliance">97.0%</dd>`,
				`<dd id="total-quarantined">50</dd>`, `<dd id="total-rejected">34</dd>`, `<dd id="total-failed">3</dd>`,
				`<span id="total-spf-pass">2,811</span>`, `<span id="total-dkim-fail">87</span>`,
				`<dd id="total-reports">4</dd>`, `from 2 reporters`,
				`<table id="domains">`, `href="/?domain=example.com&amp;days=15"`,
				`<td>mail.example.com</td>`, `<td>news.mailer.example</td>`,
				`<th scope="row">Yahoo</th>`, `<td>dmarchelp@yahooinc.com</td>`,
				`<code>198.51.100.7</code>`, "Neither SPF nor DKIM aligned",
				`data-date="2026-11-27"`, `class="bar compliant" data-value="1631"`,
				`dmarcd 1.2.3-test`,
			},
			dontWant: []string{"999,999", "<script"},
		},
		{
			name: "one domain shows its own numbers only",
			path: "/?domain=Example.COM.&days=30",
			want: []string{
				`<title id="chart-title">DMARC compliance of example.com, 30 Oct 2026 to 28 Nov 2026</title>`,
				`<dd id="total-messages">2,838</dd>`, `<option value="example.com" selected>`, `<option value="30" selected>`,
				`href="/api/summary?days=30&amp;domain=example.com"`,
			},
			dontWant: []string{`<table id="domains">`, "192.0.2.99"},
		},
		{
			name: "a window without reports says so",
			path: "/?domain=example.org&days=1",
			want: []string{`id="no-reports"`, `<dd id="total-messages">0</dd>`, `id="no-failing"`, `<svg id="compliance-chart"`},
		},
		{
			name: "until ends the window on an earlier day and the links keep it",
			path: "/?days=7&until=2026-11-26",
			want: []string{
				`<title id="chart-title">DMARC compliance of all domains, 20 Nov 2026 to 26 Nov 2026</title>`,
				`<input type="date" name="until" value="2026-11-26"`, `<option value="7" selected>7 days</option>`,
				`data-date="2026-11-26"`, `href="/?domain=example.com&amp;days=7&amp;until=2026-11-26"`,
				`href="/api/domains?days=7&amp;until=2026-11-26"`, "the 7 days to 2026-11-26",
			},
			dontWant: []string{`data-date="2026-11-27"`},
		},
		{
			name: "an unusual number of days is offered in the form",
			path: "/?days=60",
			want: []string{`<option value="60" selected>last 60 days</option>`, `DMARC compliance of all domains, 30 Sep 2026 to 28 Nov 2026`, "999,999"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(t, s.Handler(), tc.path)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("the page lacks %s", w)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(body, w) {
					t.Errorf("the page has %s", w)
				}
			}
			if t.Failed() {
				t.Logf("page:\n%s", body)
			}
		})
	}
}

func TestTheChartHasABarForEveryDay(t *testing.T) {
	s := newTestServer(t, nil)
	for _, days := range []int{1, 7, 15, 90} {
		_, body := get(t, s.Handler(), "/?days="+formatInt(int64(days)))
		if n := strings.Count(body, `<g class="day"`); n != days {
			t.Errorf("%d days: %d bars", days, n)
		}
	}
}

func TestThePageFetchesNothingFromElsewhere(t *testing.T) {
	s := newTestServer(t, nil)
	res, body := get(t, s.Handler(), "/")
	// The only absolute URL is SVG's namespace name, which is not fetched.
	body = strings.ReplaceAll(body, `xmlns="http://www.w3.org/2000/svg"`, "")
	if m := regexp.MustCompile(`(?i)(src|href|action)="(https?:)?//`).FindString(body); m != "" {
		t.Errorf("the page refers to another site: %s", m)
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script")
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, w := range []string{"default-src 'none'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, w) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, w)
		}
	}
	res, css := get(t, s.Handler(), "/static/dashboard.css")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") || !strings.Contains(css, "--compliant") {
		t.Errorf("stylesheet: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if strings.Contains(css, "url(") || strings.Contains(css, "@import") {
		t.Error("the stylesheet fetches something")
	}
}

func TestBadParametersAreRefused(t *testing.T) {
	s := newTestServer(t, nil)
	for _, tc := range []struct{ name, path string }{
		{"no days", "/?days=0"},
		{"too many days", "/?days=367"},
		{"days that are no number", "/?days=two"},
		{"an until that is no day", "/?until=yesterday"},
		{"an until in another format", "/api/summary?until=26.11.2026"},
		{"a domain with markup", "/?domain=%3Cscript%3E"},
		{"a domain with a space", "/?domain=a%20b.example"},
		{"an empty label", "/?domain=a..example"},
		{"a limit of the API out of range", "/api/sources?limit=0"},
		{"a failing flag that is no boolean", "/api/sources?failing=maybe"},
		{"a bad domain in the API", "/api/summary?domain=%2Fetc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(t, s.Handler(), tc.path)
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400: %s", res.StatusCode, body)
			}
			if strings.Contains(body, "<script>") {
				t.Errorf("the answer echoes markup: %s", body)
			}
		})
	}
}

func TestOnlyGETIsServed(t *testing.T) {
	s := newTestServer(t, nil)
	for _, path := range []string{"/", "/api/summary", "/metrics"} {
		req, _ := http.NewRequest(http.MethodPost, path, nil)
		w := &recorder{header: http.Header{}}
		s.Handler().ServeHTTP(w, req)
		if w.status != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: status %d, want 405", path, w.status)
		}
	}
}

// recorder is the least http.ResponseWriter.
type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(p), nil
}
func (r *recorder) WriteHeader(s int) { r.status = s }

func TestAPI(t *testing.T) {
	s := newTestServer(t, nil)
	t.Run("the summary has the totals and every day", func(t *testing.T) {
		var out struct {
			Domain  string `json:"domain"`
			Days    int    `json:"days"`
			Reports int64  `json:"reports"`
			Totals  struct {
				Messages, Compliant, Failed, Quarantined, Rejected int64
				Compliance                                         float64
			} `json:"totals"`
			Daily []struct {
				Date     string `json:"date"`
				Messages int64  `json:"messages"`
			} `json:"daily"`
		}
		getJSON(t, s, "/api/summary?domain=example.com", &out)
		tot := out.Totals
		if out.Domain != "example.com" || out.Days != 15 || out.Reports != 3 || tot.Messages != 2838 || tot.Compliant != 2754 ||
			tot.Quarantined != 50 || tot.Rejected != 34 || tot.Failed != 0 {
			t.Errorf("summary %+v", out)
		}
		if len(out.Daily) != 15 || out.Daily[0].Date != "2026-11-14" || out.Daily[12].Date != "2026-11-26" || out.Daily[12].Messages != 1280 ||
			out.Daily[13].Messages != 1558 {
			t.Errorf("daily %+v", out.Daily)
		}
	})
	t.Run("until ends the window of the summary", func(t *testing.T) {
		var out struct {
			Days  int `json:"days"`
			Daily []struct {
				Date     string `json:"date"`
				Messages int64  `json:"messages"`
			} `json:"daily"`
		}
		getJSON(t, s, "/api/summary?domain=example.com&days=3&until=2026-11-26", &out)
		if out.Days != 3 || len(out.Daily) != 3 || out.Daily[0].Date != "2026-11-24" || out.Daily[2].Date != "2026-11-26" || out.Daily[2].Messages != 1280 {
			t.Errorf("summary %+v", out)
		}
	})
	t.Run("sources carry their names and domains", func(t *testing.T) {
		var out struct {
			Failing bool `json:"failing"`
			Sources []struct {
				IP, PTR  string
				Domains  []string
				Messages int64
				Failed   int64
			} `json:"sources"`
		}
		getJSON(t, s, "/api/sources?failing=true&limit=2", &out)
		if !out.Failing || len(out.Sources) != 2 || out.Sources[0].IP != "203.0.113.25" || out.Sources[0].PTR != "news.mailer.example" ||
			out.Sources[1].IP != "198.51.100.7" || out.Sources[1].PTR != "" || strings.Join(out.Sources[1].Domains, ",") != "example.com" {
			t.Errorf("sources %+v", out)
		}
	})
	t.Run("reporters", func(t *testing.T) {
		var out struct {
			Reporters []struct {
				Org, Email string
				Reports    int64
				Messages   int64
				Last       time.Time `json:"last_report"`
			} `json:"reporters"`
		}
		getJSON(t, s, "/api/reporters", &out)
		if len(out.Reporters) != 2 || out.Reporters[0].Org != "google.com" || out.Reporters[0].Reports != 3 || out.Reporters[0].Messages != 2680 ||
			out.Reporters[1].Org != "Yahoo" || !out.Reporters[1].Last.Equal(day(11, 27)) {
			t.Errorf("reporters %+v", out)
		}
	})
	t.Run("domains list even those without reports in the window", func(t *testing.T) {
		var out struct {
			Domains []struct {
				Domain   string
				Messages int64
				Reports  int64
			} `json:"domains"`
		}
		getJSON(t, s, "/api/domains?days=1", &out)
		if len(out.Domains) != 2 || out.Domains[0].Domain != "example.com" || out.Domains[0].Messages != 0 || out.Domains[1].Messages != 0 {
			t.Errorf("domains %+v", out)
		}
	})
	t.Run("the index lists the endpoints", func(t *testing.T) {
		var out map[string]string
		getJSON(t, s, "/api/", &out)
		if len(out) != 4 {
			t.Errorf("index %v", out)
		}
	})
	t.Run("a bad parameter is a JSON error", func(t *testing.T) {
		res, body := get(t, s.Handler(), "/api/summary?days=x")
		var out map[string]string
		if res.StatusCode != http.StatusBadRequest || json.Unmarshal([]byte(body), &out) != nil || !strings.Contains(out["error"], "days") {
			t.Errorf("%d %s", res.StatusCode, body)
		}
	})
}

func getJSON(t *testing.T, s *Server, path string, v any) {
	t.Helper()
	res, body := get(t, s.Handler(), path)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("GET %s: %d %s %s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// failingSource is a Source whose store is down.
type failingSource struct{ Source }

var errDown = errors.New("connection refused")

func (failingSource) Domains(context.Context, Query) ([]DomainRow, error) { return nil, errDown }
func (failingSource) Totals(context.Context) (Totals, error)              { return Totals{}, errDown }

func TestWithoutAStore(t *testing.T) {
	for _, tc := range []struct {
		name       string
		source     Source
		status     int
		want       string
		apiStatus  int
		apiWant    string
		metricsHas bool
	}{
		{"no source shows an empty dashboard", nil, http.StatusOK, `id="no-source"`, http.StatusOK, `"domains": []`, false},
		{"a source that fails says so without details", failingSource{}, http.StatusInternalServerError, `role="alert"`,
			http.StatusInternalServerError, `"error": "the report store could not be read"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(o *Options) { o.Source = tc.source })
			res, body := get(t, s.Handler(), "/")
			if res.StatusCode != tc.status || !strings.Contains(body, tc.want) || !strings.Contains(body, `<svg id="compliance-chart"`) {
				t.Errorf("dashboard: %d\n%s", res.StatusCode, body)
			}
			if strings.Contains(body, errDown.Error()) {
				t.Error("the page shows the store's error")
			}
			res, body = get(t, s.Handler(), "/api/domains")
			if res.StatusCode != tc.apiStatus || !strings.Contains(body, tc.apiWant) {
				t.Errorf("API: %d %s", res.StatusCode, body)
			}
			res, body = get(t, s.Handler(), "/metrics")
			if res.StatusCode != http.StatusOK || strings.Contains(body, "dmarcd_reports_ingested{") || !strings.Contains(body, "go_goroutines") {
				t.Errorf("metrics: %d, ingested reports shown or Go's metrics missing", res.StatusCode)
			}
		})
	}
}

func TestBasicAuthentication(t *testing.T) {
	s := newTestServer(t, func(o *Options) { o.User, o.Password = "admin", "correct horse" })
	basic := func(user, pass string) []string {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(user, pass)
		return []string{"Authorization", req.Header.Get("Authorization")}
	}
	for _, tc := range []struct {
		name   string
		path   string
		header []string
		status int
	}{
		{"the dashboard needs a password", "/", nil, http.StatusUnauthorized},
		{"the API needs a password", "/api/summary", nil, http.StatusUnauthorized},
		{"the metrics need a password", "/metrics", nil, http.StatusUnauthorized},
		{"the stylesheet needs a password", "/static/dashboard.css", nil, http.StatusUnauthorized},
		{"a wrong password is refused", "/", basic("admin", "correct horse "), http.StatusUnauthorized},
		{"a wrong user is refused", "/", basic("Admin", "correct horse"), http.StatusUnauthorized},
		{"an empty password is refused", "/", basic("admin", ""), http.StatusUnauthorized},
		{"another scheme is refused", "/", []string{"Authorization", "Bearer correct horse"}, http.StatusUnauthorized},
		{"the right password opens the dashboard", "/", basic("admin", "correct horse"), http.StatusOK},
		{"the right password opens the metrics", "/metrics", basic("admin", "correct horse"), http.StatusOK},
		{"the health check needs none", "/healthz", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := get(t, s.Handler(), tc.path, tc.header...)
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.status == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") != `Basic realm="dmarcd", charset="UTF-8"` {
				t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	for _, tc := range []struct {
		name   string
		health func(context.Context) (string, error)
		status int
		body   string
	}{
		{"no check is healthy", nil, http.StatusOK, "ok\n"},
		{"a passing check is healthy", func(context.Context) (string, error) { return "", nil }, http.StatusOK, "ok\n"},
		{"a failing check names the part, not the error", func(context.Context) (string, error) { return "store", errDown },
			http.StatusServiceUnavailable, "unhealthy: store\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(o *Options) { o.Health = tc.health })
			res, body := get(t, s.Handler(), "/healthz")
			if res.StatusCode != tc.status || body != tc.body {
				t.Errorf("%d %q, want %d %q", res.StatusCode, body, tc.status, tc.body)
			}
		})
	}
}

func TestPProfIsServedOnlyWhenEnabled(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pprof  bool
		status int
	}{
		{"off by default", false, http.StatusNotFound},
		{"on when asked for", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(o *Options) { o.PProf = tc.pprof })
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/vars"} {
				res, body := get(t, s.Handler(), path)
				if res.StatusCode != tc.status {
					t.Errorf("%s: status %d, want %d", path, res.StatusCode, tc.status)
				}
				if tc.pprof && path == "/debug/vars" && (!strings.Contains(body, `"goroutines":`) || !strings.Contains(body, `"memstats":`)) {
					t.Errorf("/debug/vars lacks goroutines or memstats")
				}
			}
		})
	}
}

func TestServeAndShutdown(t *testing.T) {
	s := newTestServer(t, nil)
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("status %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve returned %v after Shutdown, want nil", err)
	}
}
