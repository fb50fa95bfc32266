package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testenv"
	"github.com/dmarcd/dmarcd/report/received"
	"github.com/dmarcd/dmarcd/report/store"
)

// providers is report/ingest's testdata: Google, Microsoft, Yahoo and GMX
// reports as XML and as the mail that carried them, and a failure report.
const providers = "../../report/ingest/testdata"

// runCmd runs dmarcd with args and returns the exit code and outputs.
func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// receivedDB opens the store of a state directory, for checking what a
// command stored.
func receivedDB(t *testing.T, state string) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(state, store.DefaultFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestImportCommandStoresEachReportOnce(t *testing.T) {
	state := t.TempDir()
	code, out, errOut := runCmd("import", "-state-dir", state, providers)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, line := range []string{
		"files            8\n",
		"reports          4 new aggregate reports\n",
		"records          13\n",
		"messages         458\n",
		"failure reports  1 new\n",
		"duplicates       3 (already imported, counted once)\n",
		"rejected         0\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("summary lacks %q:\n%s", line, out)
		}
	}
	if errOut != "" {
		t.Errorf("stderr %q, want nothing (not a terminal)", errOut)
	}
	// Again: everything is a duplicate.
	code, out, _ = runCmd("import", "-state-dir", state, "-json", providers)
	var sum received.ImportSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil || code != 0 {
		t.Fatalf("exit %d, -json output %q: %v", code, out, err)
	}
	if sum.Files != 8 || sum.Reports != 0 || sum.Failures != 0 || sum.Duplicates != 8 {
		t.Errorf("second import %+v, want 8 duplicates", sum)
	}
	// What the store holds, through the query API.
	db := receivedDB(t, state)
	svc := &received.Service{Store: db}
	c, n, err := svc.Totals(context.Background(), "example.org", received.Range{})
	if err != nil || n != 4 || c.Messages != 458 || c.Compliant != 442 || c.Quarantine != 12 || c.Reject != 1 {
		t.Errorf("store holds %d reports, %+v, %v", n, c, err)
	}
	if tot, _ := db.ReceivedTotals(context.Background()); tot != (store.ReceivedTotals{Reports: 4, Records: 13, Failures: 1}) {
		t.Errorf("rows %+v", tot)
	}
}

// refWant is what importing one reference file must store: an aggregate
// report of Domain with Records and Messages, a failure report of
// Domain, or nothing with a rejection of class Reject.
type refWant struct {
	domain            string
	records, messages int64
	failure           bool
	reject, reason    string // class, and a fragment of the summary's example
}

// referenceImports lists every file of reference/reports.
var referenceImports = map[string]refWant{
	"draft-ietf-dmarc-aggregate-reporting__dmarc-xml-0.2.xml":                                         {domain: "example.com", records: 1, messages: 123},
	"draft-ietf-dmarc-aggregate-reporting__dmarc-xmlalt-0.2.xml":                                      {domain: "example.com", records: 1, messages: 123},
	"parsedmarc__!example.com!1538204542!1538463818.xml":                                              {domain: "example.com", records: 1, messages: 1},
	"parsedmarc__!large-example.com!1711897200!1711983600.xml":                                        {domain: "example.com", records: 2286, messages: 2286},
	"parsedmarc__Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml": {domain: "borschow.com", records: 1, messages: 1},
	"parsedmarc__addisonfoods.com!example.com!1536105600!1536191999.xml":                              {domain: "example.com", records: 1, messages: 1},
	"parsedmarc__changed-input.xml":                                                                   {domain: "example.com", records: 20, messages: 3047},
	"parsedmarc__empty.xml":                                                                           {reject: "empty", reason: "parsedmarc__empty.xml: empty: empty file"},
	"parsedmarc__empty_reason.xml":                                                                    {domain: "example.com", records: 1, messages: 2},
	"parsedmarc__estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip":       {domain: "example.com", records: 1, messages: 1},
	"parsedmarc__example.net!example.com!1529366400!1529452799.xml":                                   {domain: "example.com", records: 1, messages: 1},
	"parsedmarc__fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz":                     {domain: "indemed.com", records: 1, messages: 1},
	"parsedmarc__ikea.com!example.de!1538690400!1538776800.xml":                                       {domain: "example.de", records: 1, messages: 1},
	"parsedmarc__invalid_utf_8.xml":                                                                   {domain: "example.com", records: 1, messages: 1},
	"parsedmarc__invalid_xml.xml":                                                                     {reject: "not well-formed XML", reason: "parsedmarc__invalid_xml.xml:5: not well-formed XML"},
	"parsedmarc__mimecast-weird-gzip.eml":                                                             {domain: "ab.id.au", records: 1, messages: 1},
	"parsedmarc__nice-input.xml":                                                                      {domain: "example.com", records: 20, messages: 3047},
	"parsedmarc__nice-input.xml.gz":                                                                   {domain: "example.com", records: 20, messages: 3047},
	"parsedmarc__nice-input.xml.zip":                                                                  {domain: "example.com", records: 20, messages: 3047},
	"parsedmarc__old_draft_from_wiki.xml":                                                             {domain: "example.com", records: 1, messages: 2},
	"parsedmarc__protection.outlook.com!example.com!1711756800!1711843200.xml":                        {domain: "example.com", records: 1, messages: 1},
	"parsedmarc__report_with_upper_cased_pass.xml":                                                    {domain: "example.com", records: 1, messages: 1},
	"parsedmarc__rfc9990-example.net!example.com!1700000000!1700086399.xml":                           {domain: "example.com", records: 2, messages: 7},
	"parsedmarc__rfc9990-sample.xml":                                                                  {domain: "example.com", records: 1, messages: 123},
	"parsedmarc__twilight.eml":                                                                        {domain: "twlnet.com", records: 1, messages: 1},
	"parsedmarc__usssa.com!example.com!1538784000!1538870399.xml":                                     {domain: "example.com", records: 2, messages: 2},
	"parsedmarc__veeam.com!example.com!1530133200!1530219600.xml":                                     {domain: "example.com", records: 1, messages: 1},

	"parsedmarc__DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml": {domain: "domain.de", failure: true},
	"parsedmarc__[Netease DMARC Failure Report] Rent Reminder.eml":                                        {domain: "cardinal.com", failure: true},
	"parsedmarc__dmarc_ruf_report_linkedin.crlf.eml":                                                      {domain: "example.com", failure: true},
	"parsedmarc__dmarc_ruf_report_linkedin.eml":                                                           {domain: "example.com", failure: true},
	"parsedmarc__exim_plain_text_only_no_arf_part.eml":                                                    {reject: "not a DMARC report", reason: "a plain-text notice, not an RFC 6591 report"},
}

// referenceDuplicates are the reference files holding a report that a
// file read before them (in lexical order) holds too.
var referenceDuplicates = map[string]bool{
	"draft-ietf-dmarc-aggregate-reporting__dmarc-xmlalt-0.2.xml": true, // dmarc-xml-0.2's report
	"parsedmarc__rfc9990-sample.xml":                             true, // and again
	"parsedmarc__invalid_utf_8.xml":                              true, // !example.com!...'s, a byte repaired
	"parsedmarc__nice-input.xml.gz":                              true,
	"parsedmarc__nice-input.xml.zip":                             true,
	"parsedmarc__dmarc_ruf_report_linkedin.eml":                  true, // the .crlf.eml's
}

// TestImportCommandReferenceConformance imports every reference report,
// each into a store of its own, and checks through the query API what
// was stored; then all of them into one store.
func TestImportCommandReferenceConformance(t *testing.T) {
	ref := filepath.Join(testenv.ReferenceDir(t, "reports"), "reports")
	var files []string
	seen := map[string]bool{}
	for _, sub := range []string{"aggregate", "failure"} {
		ents, err := os.ReadDir(filepath.Join(ref, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			files = append(files, filepath.Join(ref, sub, e.Name()))
		}
	}
	var want received.ImportSummary
	want.Files = len(files)
	for _, path := range files {
		name := filepath.Base(path)
		seen[name] = true
		w, ok := referenceImports[name]
		if !ok {
			t.Errorf("%s is not in referenceImports: add what it must store", name)
			continue
		}
		switch {
		case w.reject != "":
			want.Rejected++
		case referenceDuplicates[name]:
			want.Duplicates++
		case w.failure:
			want.Failures++
		default:
			want.Reports++
			want.Records += w.records
			want.Messages += w.messages
		}
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			code, out, errOut := runCmd("import", "-state-dir", state, path)
			db := receivedDB(t, state)
			tot, err := db.ReceivedTotals(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if w.reject != "" {
				if code != 1 || !strings.Contains(out, "rejected         1\n  "+w.reject+": 1\n") || !strings.Contains(out, w.reason) {
					t.Errorf("exit %d, want 1 with %s: %q\n%s%s", code, w.reject, w.reason, out, errOut)
				}
				if tot != (store.ReceivedTotals{}) {
					t.Errorf("a rejected file left %+v", tot)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			svc := &received.Service{Store: db}
			doms, err := svc.Domains(context.Background(), received.Range{})
			if err != nil || len(doms) != 1 || doms[0].Domain != w.domain {
				t.Fatalf("Domains = %+v, %v; want %s", doms, err, w.domain)
			}
			if w.failure {
				if d := doms[0]; d.Failures != 1 || d.Reports != 0 || tot != (store.ReceivedTotals{Failures: 1}) {
					t.Errorf("domain %+v, rows %+v; want one failure report", d, tot)
				}
				return
			}
			reps, err := svc.Reports(context.Background(), w.domain, received.Range{}, 0)
			if err != nil || len(reps) != 1 {
				t.Fatalf("Reports = %+v, %v", reps, err)
			}
			c, _, err := svc.Totals(context.Background(), w.domain, received.Range{})
			if err != nil || reps[0].NumRecords != w.records || reps[0].Messages != w.messages || c.Messages != w.messages ||
				doms[0].Messages != w.messages || tot != (store.ReceivedTotals{Reports: 1, Records: w.records}) {
				t.Errorf("stored %d records, %d messages (%d counted by day), rows %+v; want %d records, %d messages",
					reps[0].NumRecords, reps[0].Messages, c.Messages, tot, w.records, w.messages)
			}
		})
	}
	for name := range referenceImports {
		if !seen[name] {
			t.Errorf("referenceImports lists %s, which is not in the reference folder", name)
		}
	}

	// All at once: duplicates across files are stored once.
	state := t.TempDir()
	code, out, _ := runCmd("import", "-state-dir", state, "-json", ref)
	var got received.ImportSummary
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 1 {
		t.Fatalf("exit %d, output %q: %v", code, out, err)
	}
	if got.Files != want.Files || got.Reports != want.Reports || got.Records != want.Records || got.Messages != want.Messages ||
		got.Failures != want.Failures || got.Duplicates != want.Duplicates || got.Rejected != want.Rejected {
		t.Errorf("importing the folder: %+v\nwant %+v", got, want)
	}
	tot, err := receivedDB(t, state).ReceivedTotals(context.Background())
	if err != nil || tot != (store.ReceivedTotals{Reports: int64(want.Reports), Records: want.Records, Failures: int64(want.Failures)}) {
		t.Errorf("rows %+v, %v", tot, err)
	}
}

// TestImportCommandRefusesBombsAndXXE stores nothing of a zip bomb and of
// a report with an external entity, and says why with exit status 1.
func TestImportCommandRefusesBombsAndXXE(t *testing.T) {
	dir := t.TempDir()
	var zb bytes.Buffer
	z := zip.NewWriter(&zb)
	w, _ := z.Create("report.xml")
	io.WriteString(w, `<?xml version="1.0"?><feedback><report_metadata><org_name>bomb</org_name>`)
	w.Write(bytes.Repeat([]byte(" "), 8<<20))
	io.WriteString(w, `</report_metadata></feedback>`)
	z.Close()
	os.WriteFile(filepath.Join(dir, "bomb.zip"), zb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "xxe.xml"), []byte(`<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>`), 0o644)
	state := t.TempDir()
	code, out, _ := runCmd("import", "-state-dir", state, dir)
	if code != 1 || !strings.Contains(out, "rejected         2\n") ||
		!strings.Contains(out, "  limit exceeded: 1\n    "+filepath.Join(dir, "bomb.zip")+":report.xml: limit exceeded: ") ||
		!strings.Contains(out, "  DTD not allowed: 1\n    "+filepath.Join(dir, "xxe.xml")+":2: DTD not allowed") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if tot, _ := receivedDB(t, state).ReceivedTotals(context.Background()); tot != (store.ReceivedTotals{}) {
		t.Errorf("rows %+v, want none", tot)
	}
}

func TestImportCommandDrawsProgressOnATerminal(t *testing.T) {
	stderrIsTerminal = func(io.Writer) bool { return true }
	defer func() { stderrIsTerminal = isTerminal }()
	code, _, errOut := runCmd("import", "-state-dir", t.TempDir(), "-v", providers, filepath.Join(t.TempDir(), "missing.xml"))
	if code != 1 {
		t.Errorf("exit %d, want 1 (a missing file is rejected)", code)
	}
	if !strings.Contains(errOut, "\r\x1b[K[########################] 100%  9/9 files  5 reports  13 records  3 duplicates  1 rejected") {
		t.Errorf("no final progress line in %q", errOut)
	}
	if !strings.Contains(errOut, "rejected: ") || !strings.Contains(errOut, "missing.xml: read error: ") {
		t.Errorf("-v did not list the rejection: %q", errOut)
	}
	if !strings.HasSuffix(errOut, "\r\x1b[K") {
		t.Errorf("the bar is not cleared at the end: %q", errOut[max(0, len(errOut)-40):])
	}
	_, _, errOut = runCmd("import", "-state-dir", t.TempDir(), "-no-progress", providers)
	if errOut != "" {
		t.Errorf("-no-progress drew %q", errOut)
	}
}

func TestImportCommandUsage(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("no_such_key = 1\n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no path", []string{"import"}, 2, "want at least one PATH"},
		{"an unknown flag", []string{"import", "-x", providers}, 2, "flag provided but not defined"},
		{"a configuration that does not load", []string{"import", "-c", bad, providers}, 2, `unknown key "no_such_key"`},
		{"help", []string{"import", "-h"}, 0, "usage: dmarcd import"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCmd(c.args...)
			if code != c.code || !strings.Contains(errOut, c.err) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, c.code, c.err)
			}
		})
	}
	if _, out, _ := runCmd("help"); !strings.Contains(out, "import ") || !strings.Contains(out, "summary ") {
		t.Errorf("help does not list import and summary:\n%s", out)
	}
}
