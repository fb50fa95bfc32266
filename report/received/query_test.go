package received_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/received"
)

func TestLastDaysEndsWithTodayIncluded(t *testing.T) {
	r := received.LastDays(time.Date(2025, 1, 15, 13, 0, 0, 0, time.UTC), 15)
	if !r.From.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || !r.To.Equal(time.Date(2025, 1, 16, 0, 0, 0, 0, time.UTC)) || r.Days() != 15 {
		t.Errorf("LastDays = %+v (%d days)", r, r.Days())
	}
	if (received.Range{}).Days() != 0 {
		t.Error("an open range has days")
	}
}

func TestSeriesHasEveryDayOfABoundedRange(t *testing.T) {
	db := openStore(t)
	addHistory(t, db,
		stretch{from: 1, days: 1, p: "none", messages: 10, compliant: 9},
		stretch{from: 3, days: 1, p: "none", messages: 4, compliant: 0},
		stretch{from: 3, days: 1, p: "none", messages: 6, compliant: 6, org: "yahoo.com"})
	svc := &received.Service{Store: db}
	days, err := svc.Series(context.Background(), "example.com", received.Range{From: day0, To: day0.AddDate(0, 0, 5)})
	if err != nil || len(days) != 5 {
		t.Fatalf("Series = %+v, %v", days, err)
	}
	var got []string
	for _, d := range days {
		got = append(got, d.Day.Format("01-02")+"="+itoa(d.Reports)+"/"+itoa(d.Messages)+"/"+itoa(d.Compliant)+"/"+received.Percent(d.Rates.Compliance))
	}
	want := "01-01=0/0/0/0.0% 01-02=1/10/9/90.0% 01-03=0/0/0/0.0% 01-04=2/10/6/60.0% 01-05=0/0/0/0.0%"
	if strings.Join(got, " ") != want {
		t.Errorf("series %s\nwant   %s", strings.Join(got, " "), want)
	}
	open, err := svc.Series(context.Background(), "", received.Range{})
	if err != nil || len(open) != 2 || !open[1].Day.Equal(day0.AddDate(0, 0, 3)) {
		t.Errorf("open Series = %+v, %v; want the 2 days with data", open, err)
	}
}

func TestSummaryNamesItsSourcesAndIsJSON(t *testing.T) {
	db := openStore(t)
	importAll(t, db, providers)
	res := &fakeResolver{names: map[string]string{"192.0.2.11": "mta.example.org.", "203.0.113.9": "bad.example."}}
	svc := &received.Service{Store: db, Names: &received.Names{Resolver: res}}
	rng := received.LastDays(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), 15)
	s, err := svc.Summary(context.Background(), "example.org", rng, received.SummaryOptions{Top: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Sources) != 3 || s.Sources[0].IP.String() != "192.0.2.11" || s.Sources[0].Name != "mta.example.org" || s.Sources[1].Name != "" {
		t.Errorf("sources %+v", s.Sources)
	}
	if len(s.Failing) != 3 || s.Failing[0].IP.String() != "203.0.113.9" || s.Failing[0].Name != "bad.example" ||
		s.Failing[0].NonCompliant() != 8 || s.Failing[1].IP.String() != "198.51.100.23" {
		t.Errorf("failing %+v", s.Failing)
	}
	if s.Messages != 458 || s.Reports != 4 || s.Failures != 1 || len(s.Days) != 15 || len(s.Reporters) != 3 ||
		s.Policy == nil || s.Policy.P != "quarantine" || s.Rollout.Policy != "quarantine" {
		t.Errorf("summary %+v", s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"domain":"example.org"`, `"messages":458`, `"compliant":442`, `"ip":"192.0.2.11"`,
		`"name":"mta.example.org"`, `"rates":{"compliance":0.965`, `"advice":"fix"`, `"day":"2025-01-01T00:00:00Z"`} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("JSON lacks %s", frag)
		}
	}
	if _, err := svc.Summary(context.Background(), "", rng, received.SummaryOptions{}); err == nil {
		t.Error("a summary of no domain")
	}
}
