package received_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/received"
	"github.com/dmarcd/dmarcd/report/store"
)

// providers is report/ingest's testdata: reports in the shapes Google,
// Microsoft, Yahoo and GMX send, as XML and as mail, and a failure report.
const providers = "../ingest/testdata"

// openStore opens a new SQLite store in a temporary directory.
func openStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), store.DefaultFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// importAll imports paths into db and returns the summary.
func importAll(t testing.TB, db store.Received, paths ...string) received.ImportSummary {
	t.Helper()
	im := &received.Importer{Store: db}
	sum, err := im.Import(context.Background(), paths...)
	if err != nil {
		t.Fatalf("Import(%v): %v", paths, err)
	}
	return sum
}

// totals returns the row counts of the received tables.
func totals(t testing.TB, db store.Received) store.ReceivedTotals {
	t.Helper()
	n, err := db.ReceivedTotals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// write writes data to name in dir and returns its path.
func write(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func zipBytes(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	z.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	w, err := z.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	z.Close()
	return b.Bytes()
}

// aggregateXML returns a report with records, each a (source IP, count,
// dkim, spf) of policy_evaluated, auth_results saying the same.
func aggregateXML(org, id, domain, p string, begin time.Time, recs ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0"?>
<feedback>
  <report_metadata><org_name>%s</org_name><email>dmarc@%s</email><report_id>%s</report_id>
    <date_range><begin>%d</begin><end>%d</end></date_range></report_metadata>
  <policy_published><domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>%s</p><pct>100</pct></policy_published>
`, org, org, id, begin.Unix(), begin.Add(24*time.Hour-time.Second).Unix(), domain, p)
	for _, r := range recs {
		var ip, dkim, spf string
		var n int
		fmt.Sscanf(strings.ReplaceAll(r, ",", " "), "%s %d %s %s", &ip, &n, &dkim, &spf)
		disp := "none"
		if dkim != "pass" && spf != "pass" && p != "none" {
			disp = p
		}
		fmt.Fprintf(&b, `  <record><row><source_ip>%s</source_ip><count>%d</count>
    <policy_evaluated><disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated></row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results><dkim><domain>%s</domain><result>%s</result></dkim><spf><domain>%s</domain><result>%s</result></spf></auth_results>
  </record>
`, ip, n, disp, dkim, spf, domain, domain, dkim, domain, spf)
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}
