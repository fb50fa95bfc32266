package store_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

func TestKeyOf(t *testing.T) {
	tests := []struct {
		name string
		row  func(r *report.Row)
		want func(k *store.Key)
	}{
		{"domains are lower case without the final dot", func(r *report.Row) {
			r.Published.Domain, r.HeaderFrom, r.EnvelopeFrom = "Example.COM.", "Mail.Example.com", "BOUNCE.example.com."
		}, func(k *store.Key) {
			k.PolicyDomain, k.HeaderFrom, k.EnvelopeFrom = "example.com", "mail.example.com", "bounce.example.com"
		}},
		{"an IPv4-mapped IPv6 source is IPv4", func(r *report.Row) {
			r.SourceIP = netip.MustParseAddr("::ffff:198.51.100.7")
		}, func(k *store.Key) { k.SourceIP = netip.MustParseAddr("198.51.100.7") }},
		{"recipient domains are sorted, unique, without empties", func(r *report.Row) {
			r.EnvelopeTo = []string{"b.example", "", "A.example", "a.example."}
		}, func(k *store.Key) { k.EnvelopeTo = []string{"a.example", "b.example"} }},
		{"alignment results read pass or fail", func(r *report.Row) {
			r.DKIMAligned, r.SPFAligned = false, true
		}, func(k *store.Key) { k.DKIM, k.SPF = "fail", "pass" }},
		{"override reasons are sorted and unique, comments kept as written", func(r *report.Row) {
			r.Overrides = []report.Override{{Type: "Mailing_List", Comment: "List X"}, {Type: "local_policy"}, {Type: "mailing_list", Comment: "List X"}}
		}, func(k *store.Key) {
			k.Reasons = []report.Override{{Type: "local_policy"}, {Type: "mailing_list", Comment: "List X"}}
		}},
		{"DKIM results are sorted and lower case", func(r *report.Row) {
			r.DKIM = []report.DKIMResult{{Domain: "z.example", Selector: "S2", Result: "FAIL"}, {Domain: "a.example", Selector: "s1", Result: "pass"}}
		}, func(k *store.Key) {
			k.AuthDKIM = []report.DKIMResult{{Domain: "a.example", Selector: "s1", Result: "pass"}, {Domain: "z.example", Selector: "s2", Result: "fail"}}
		}},
		{"text is made valid UTF-8 without NUL", func(r *report.Row) {
			r.Overrides = []report.Override{{Type: "other", Comment: "bad\xff\x00byte"}}
		}, func(k *store.Key) { k.Reasons = []report.Override{{Type: "other", Comment: "bad\uFFFDbyte"}} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := storetest.Row("example.com", storetest.T0, "192.0.2.1")
			want := store.KeyOf(base)
			tc.want(&want)
			r := storetest.Row("example.com", storetest.T0, "192.0.2.1")
			tc.row(&r)
			got := store.KeyOf(r)
			if got.Hash() != want.Hash() {
				t.Errorf("KeyOf = %+v\nwant     %+v", got, want)
			}
		})
	}
}

func TestKeyOfDoesNotChangeTheRow(t *testing.T) {
	r := storetest.Row("example.com", storetest.T0, "192.0.2.1")
	r.EnvelopeTo = []string{"b.example", "a.example"}
	store.KeyOf(r)
	if !slices.Equal(r.EnvelopeTo, []string{"b.example", "a.example"}) {
		t.Errorf("row's list changed to %v", r.EnvelopeTo)
	}
}

// TestHashesAreStable pins the encodings stored in databases: a change
// would split every key in two, or give a report a second ID.
func TestHashesAreStable(t *testing.T) {
	k := store.KeyOf(storetest.Row("example.com", storetest.T0, "192.0.2.1"))
	if got, want := k.Hash().String(), "3cf3ac217ab27001ad62e956f8e95f94"; got != want {
		t.Errorf("key hash = %s, want %s", got, want)
	}
	if got, want := store.ReportID("Example Org", "example.com", storetest.Day), "005087dae2012334cccb56d2007261f6"; got != want {
		t.Errorf("ReportID = %s, want %s", got, want)
	}
	if a, b := store.ReportID("", "example.com", storetest.Day), store.ReportID("other", "example.com", storetest.Day); a == b {
		t.Error("two reporters made the same report ID")
	}
}

func TestSuppressionMatches(t *testing.T) {
	tests := []struct {
		pattern, address string
		want             bool
	}{
		{"dmarc@example.com", "dmarc@example.com", true},
		{"DMARC@Example.com", "dmarc@EXAMPLE.com", true},
		{"dmarc@example.com", "other@example.com", false},
		{"example.com", "dmarc@example.com", true},
		{"example.com", "dmarc@reports.example.com", true},
		{".example.com", "dmarc@reports.example.com", true},
		{"*.example.com", "dmarc@reports.example.com", true},
		{"example.com", "dmarc@badexample.com", false},
		{"example.com", "dmarc@example.com.evil.example", false},
		{"", "dmarc@example.com", false},
	}
	for _, tc := range tests {
		if got := (store.Suppression{Pattern: tc.pattern}).Matches(tc.address); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.address, got, tc.want)
		}
	}
}

func TestPeriod(t *testing.T) {
	tests := []struct {
		name string
		p    store.Period
		ok   bool
	}{
		{"a day is a period", storetest.Day, true},
		{"an hour is a period", store.Period{Begin: storetest.T0, End: storetest.T0.Add(time.Hour)}, true},
		{"an empty period is not", store.Period{Begin: storetest.T0, End: storetest.T0}, false},
		{"a backwards period is not", store.Period{Begin: storetest.T0.Add(time.Hour), End: storetest.T0}, false},
		{"a period off the hour is not", store.Period{Begin: storetest.T0.Add(time.Minute), End: storetest.T0.Add(time.Hour)}, false},
	}
	for _, tc := range tests {
		if err := tc.p.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v", tc.name, err)
		}
	}
	if !storetest.Day.Contains(storetest.T0) || storetest.Day.Contains(storetest.Day.End) {
		t.Error("Contains is not half-open")
	}
}
