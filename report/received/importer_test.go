package received_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/ingest/ingesttest"
	"github.com/dmarcd/dmarcd/report/received"
	"github.com/dmarcd/dmarcd/report/store"
)

// TestImportProviderShapes imports the reports of four providers, each as
// XML and three again inside the mail that carried them, and a failure
// report, then checks every total through the query API.
func TestImportProviderShapes(t *testing.T) {
	db := openStore(t)
	sum := importAll(t, db, providers)
	want := received.ImportSummary{Files: 8, Reports: 4, Records: 13, Messages: 458, Failures: 1, Duplicates: 3}
	if sum.Files != want.Files || sum.Reports != want.Reports || sum.Records != want.Records || sum.Messages != want.Messages ||
		sum.Failures != want.Failures || sum.Duplicates != want.Duplicates || sum.Rejected != 0 || sum.Warned != 0 {
		t.Errorf("import summary %+v, want %+v", sum, want)
	}
	ctx := context.Background()
	svc := &received.Service{Store: db}
	all := received.Range{}

	doms, err := svc.Domains(ctx, all)
	if err != nil || len(doms) != 1 {
		t.Fatalf("Domains = %+v, %v", doms, err)
	}
	if d := doms[0]; d.Domain != "example.org" || d.Reports != 4 || d.Messages != 458 || d.Failures != 1 ||
		d.First != time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC) || d.Last != time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC) {
		t.Errorf("domain %+v", d)
	}

	// Counted by hand from the four XML files.
	c, n, err := svc.Totals(ctx, "example.org", all)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := store.ReceivedCounts{
		Messages:      458,
		Compliant:     159 + 18 + 259 + 6, // google, microsoft, yahoo, gmx
		DKIMAligned:   157 + 18 + 259 + 6,
		SPFAligned:    122 + 15 + 259 + 6,
		DKIMPass:      157 + 18 + 259 + 6,
		SPFPass:       160 + 18 + 260 + 6,
		Authenticated: 444,
		None:          445, Quarantine: 4 + 8, Reject: 1,
	}
	if n != 4 || c.ReceivedCounts != wantCounts {
		t.Errorf("totals of %d reports\n%+v\nwant\n%+v", n, c.ReceivedCounts, wantCounts)
	}
	if c.Rates.Compliance != 442.0/458 || c.Rates.Aligned != 442.0/444 || c.Rates.SPFAligned != 402.0/458 {
		t.Errorf("rates %+v", c.Rates)
	}

	reps, err := svc.Reporters(ctx, "example.org", all, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reps {
		got = append(got, r.Org+" "+itoa(r.Reports)+"/"+itoa(r.Messages)+"/"+itoa(r.Compliant))
	}
	if strings.Join(got, ", ") != "Yahoo 1/260/259, google.com 1/164/159, Enterprise Outlook 1/26/18, GMX 1/8/6" {
		t.Errorf("reporters %s", strings.Join(got, ", "))
	}

	reports, err := svc.Reports(ctx, "", all, 0)
	if err != nil || len(reports) != 4 {
		t.Fatalf("Reports = %+v, %v", reports, err)
	}
	// Each is stored from where it was met first, in lexical order:
	// "microsoft-message.eml" comes before "microsoft.xml".
	sources := map[string]string{}
	for _, r := range reports {
		sources[r.Org] = strings.TrimPrefix(r.Source, providers+"/")
	}
	if sources["GMX"] != "gmx-rfc9990.xml" || sources["google.com"] != "google-message.eml:google.com!example.org!1735689600!1735775999.zip:google.com!example.org!1735689600!1735775999.xml" ||
		sources["Enterprise Outlook"] != "microsoft-message.eml:enterprise.protection.outlook.com!example.org!1735603200!1735689600.xml.gz" ||
		sources["Yahoo"] != "yahoo-message.eml:yahoo.com!example.org!1735689600!1735775999.xml.gz" {
		t.Errorf("sources %q", sources)
	}
	google := reports[len(reports)-1]
	for _, r := range reports {
		if r.Org == "google.com" {
			google = r
		}
	}
	recs, err := svc.Records(ctx, google.ID)
	if err != nil || len(recs) != 5 || recs[1].SourceIP.String() != "2a00:1450:4864:20::12f" || recs[1].Count != 37 ||
		len(recs[1].AuthDKIM) != 2 || recs[3].SourceIP.String() != "2001:db8::99" || recs[3].Reasons[0].Type != "local_policy" {
		t.Errorf("google's records %+v, %v", recs, err)
	}

	fails, err := svc.Failures(ctx, "example.org", all, 0)
	if err != nil || len(fails) != 1 {
		t.Fatalf("Failures = %+v, %v", fails, err)
	}
	if f := fails[0]; f.AuthFailure != "dmarc" || f.SourceIP.String() != "2001:db8:77::1" || f.Incidents != 3 ||
		f.OriginalSubject != "Your invoice" || len(f.OriginalRcptTo) != 2 || f.Headers == "" ||
		f.Day != time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC) {
		t.Errorf("failure report %+v", f)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestImportingAgainAddsNothing(t *testing.T) {
	db := openStore(t)
	first := importAll(t, db, providers)
	before := totals(t, db)
	again := importAll(t, db, providers)
	if again.Reports != 0 || again.Failures != 0 || again.Duplicates != first.Reports+first.Failures+first.Duplicates {
		t.Errorf("second import %+v, want everything a duplicate", again)
	}
	if after := totals(t, db); after != before {
		t.Errorf("rows %+v after the second import, %+v before", after, before)
	}
}

// TestHostileInputsAreRefusedWithNothingStored feeds bombs, entity
// tricks and reports broken half-way; none may leave a row, and a good
// report beside them is imported.
func TestHostileInputsAreRefusedWithNothingStored(t *testing.T) {
	dir := t.TempDir()
	good := aggregateXML("good.example", "1", "example.org", "none", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "192.0.2.1 5 pass pass")
	// A report padded with 8 MiB of white space: deflate packs it a
	// thousandfold, past the ratio a report may have (ingest's
	// MaxRatio), so it is refused after the first MiB.
	bomb := append(append([]byte{}, good[:len(good)-len("</feedback>\n")]...), bytes.Repeat([]byte(" "), 8<<20)...)
	bomb = append(bomb, "</feedback>\n"...)
	broken := bytes.Replace(aggregateXML("broken.example", "2", "example.org", "none", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		"192.0.2.1 5 pass pass", "192.0.2.2 5 pass pass", "192.0.2.3 5 pass pass"), []byte("192.0.2.3"), []byte("not-an-ip"), 1)
	cases := []struct {
		name, class string
		data        []byte
	}{
		{"zip-bomb.zip", "limit exceeded", zipBytes(t, "report.xml", bomb)},
		{"gzip-bomb.xml.gz", "limit exceeded", gzipBytes(t, bomb)},
		{"xxe.xml", "DTD not allowed", []byte(`<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&xxe;</org_name><report_id>x</report_id></report_metadata></feedback>`)},
		{"billion-laughs.xml", "DTD not allowed", []byte(`<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<feedback>&lol2;</feedback>`)},
		{"undefined-entity.xml", "not well-formed XML", bytes.Replace(good, []byte("good.example</org_name>"), []byte("&xxe;</org_name>"), 1)},
		{"bad-ip-in-third-record.xml", "invalid report", broken},
		{"truncated.xml", "not well-formed XML", good[:len(good)/2]},
	}
	for _, c := range cases {
		write(t, dir, c.name, c.data)
	}
	write(t, dir, "good.xml", good)
	db := openStore(t)
	var rejects []received.Reject
	im := &received.Importer{Store: db, OnReject: func(r received.Reject) { rejects = append(rejects, r) }}
	sum, err := im.Import(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Reports != 1 || sum.Messages != 5 || sum.Rejected != len(cases) || len(rejects) != len(cases) {
		t.Fatalf("summary %+v, rejects %v", sum, rejects)
	}
	for _, c := range cases {
		found := false
		for _, r := range rejects {
			if filepath.Base(strings.SplitN(r.Source, ":", 2)[0]) == c.name {
				found = true
				if r.Class != c.class {
					t.Errorf("%s rejected as %q (%s), want %q", c.name, r.Class, r, c.class)
				}
			}
		}
		if !found {
			t.Errorf("%s not rejected", c.name)
		}
	}
	if n := totals(t, db); n != (store.ReceivedTotals{Reports: 1, Records: 1}) {
		t.Errorf("rows %+v, want the good report alone", n)
	}
	// The class counts add up, with examples.
	total := 0
	for _, c := range sum.Rejects {
		total += c.Count
		if len(c.Examples) == 0 || len(c.Examples) > received.MaxExamples {
			t.Errorf("class %s: %d examples", c.Class, len(c.Examples))
		}
	}
	if total != sum.Rejected {
		t.Errorf("classes count %d, rejected %d", total, sum.Rejected)
	}
	// The line is given for XML.
	for _, r := range rejects {
		if strings.Contains(r.Source, "undefined-entity") && (r.Line != 3 || !strings.Contains(r.String(), "undefined-entity.xml:3: ")) {
			t.Errorf("undefined entity rejected as %s, want line 3", r)
		}
	}
}

func TestAPathThatCannotBeReadIsARejection(t *testing.T) {
	db := openStore(t)
	sum := importAll(t, db, filepath.Join(t.TempDir(), "missing"), filepath.Join(providers, "google.xml"))
	if sum.Rejected != 1 || sum.Rejects[0].Class != "read error" || sum.Reports != 1 {
		t.Errorf("summary %+v", sum)
	}
}

func TestProgressCoversEveryFile(t *testing.T) {
	db := openStore(t)
	var last received.Progress
	calls := 0
	im := &received.Importer{Store: db, Progress: func(p received.Progress) { last, calls = p, calls+1 }}
	sum, err := im.Import(context.Background(), providers)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	ents, _ := os.ReadDir(providers)
	for _, e := range ents {
		fi, _ := e.Info()
		size += fi.Size()
	}
	if calls < 9 || last.FilesTotal != 8 || last.FilesDone != 8 || last.BytesTotal != size || last.BytesDone != size ||
		last.Summary.Reports != sum.Reports || last.File != "" {
		t.Errorf("%d calls, last %+v; want 8 files of %d bytes done", calls, last, size)
	}
}

// failingStore fails every insert.
type failingStore struct {
	store.Received
	err error
}

func (f failingStore) AddReceived(context.Context, *store.ReceivedReport) (int64, bool, error) {
	return 0, false, f.err
}

func TestAStoreErrorStopsTheImport(t *testing.T) {
	boom := errors.New("disk full")
	im := &received.Importer{Store: failingStore{openStore(t), boom}}
	sum, err := im.Import(context.Background(), providers)
	// failure-arf.eml is stored (failures were not made to fail), then
	// gmx-rfc9990.xml stops the import.
	if !errors.Is(err, boom) || sum.Reports != 0 || sum.Failures != 1 || sum.Files != 2 {
		t.Errorf("Import = %+v, %v; want the store's error at the second file", sum, err)
	}
}

func TestACanceledImportStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	im := &received.Importer{Store: openStore(t)}
	if _, err := im.Import(ctx, providers); !errors.Is(err, context.Canceled) {
		t.Errorf("Import = %v, want context.Canceled", err)
	}
}

// TestLargeReportImport imports the 2,000-record, ~900 KB report the
// issue names, and reads its totals back (no timing assertion: see
// BenchmarkImport2000).
func TestLargeReportImport(t *testing.T) {
	data := ingesttest.LargeAggregate("large-1", 2000)
	if len(data) < 850_000 || len(data) > 1_000_000 {
		t.Fatalf("generated %d bytes, want ~900 KB", len(data))
	}
	db := openStore(t)
	p := write(t, t.TempDir(), "large.xml", data)
	start := time.Now()
	sum := importAll(t, db, p)
	t.Logf("%d bytes, 2,000 records imported in %v", len(data), time.Since(start))
	m, c := ingesttest.LargeTotals(2000)
	if sum.Reports != 1 || sum.Records != 2000 || sum.Messages != m {
		t.Fatalf("summary %+v", sum)
	}
	counts, _, err := (&received.Service{Store: db}).Totals(context.Background(), "example.org", received.Range{})
	if err != nil || counts.Messages != m || counts.Compliant != c {
		t.Errorf("totals %+v, %v; want %d messages, %d compliant", counts, err, m, c)
	}
}

// BenchmarkImport2000 imports a 2,000-record, ~900 KB report from its
// file into SQLite, end to end: read, parse, store, commit.
func BenchmarkImport2000(b *testing.B) {
	db := openStore(b)
	dir := b.TempDir()
	tmpl := ingesttest.LargeAggregate("RID-PLACEHOLDER", 2000)
	b.SetBytes(int64(len(tmpl)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		p := write(b, dir, "large.xml", bytes.Replace(tmpl, []byte("RID-PLACEHOLDER"), []byte("rid-"+itoa(int64(i))), 1))
		b.StartTimer()
		im := &received.Importer{Store: db}
		sum, err := im.Import(context.Background(), p)
		if err != nil || sum.Records != 2000 {
			b.Fatal(sum, err)
		}
	}
}

func TestImportMessageStoresTheReportsOfOneMessage(t *testing.T) {
	for _, tc := range []struct {
		name, file        string
		reports, failures int
	}{
		{"an aggregate report mail from Google", "google-message.eml", 1, 0},
		{"an ARF failure report", "failure-arf.eml", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openStore(t)
			raw, err := os.ReadFile(filepath.Join(providers, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			im := &received.Importer{Store: db}
			sum, err := im.ImportMessage(context.Background(), bytes.NewReader(raw), "queue 4ABC")
			if err != nil {
				t.Fatal(err)
			}
			if sum.Reports != tc.reports || sum.Failures != tc.failures || len(sum.Rejects) != 0 {
				t.Errorf("summary %+v, want %d reports and %d failure reports", sum, tc.reports, tc.failures)
			}
			again, err := im.ImportMessage(context.Background(), bytes.NewReader(raw), "queue 4ABD")
			if err != nil || again.Duplicates != tc.reports+tc.failures {
				t.Errorf("the same message again: %+v, %v; want only duplicates", again, err)
			}
		})
	}
	t.Run("a message with no report is a rejection named by its source", func(t *testing.T) {
		db := openStore(t)
		im := &received.Importer{Store: db}
		sum, err := im.ImportMessage(context.Background(), strings.NewReader("From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"), "queue 4ABE")
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Rejects) != 1 || !strings.HasPrefix(sum.Rejects[0].Examples[0].Source, "queue 4ABE") {
			t.Errorf("rejects %+v, want one naming queue 4ABE", sum.Rejects)
		}
		if n := totals(t, db); n != (store.ReceivedTotals{}) {
			t.Errorf("stored %+v", n)
		}
	})
}
