package ingest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// generateReport writes a report of n records in the shape large
// receivers send: indented, IPv4 and IPv6 sources, a DKIM and an SPF
// result each, ~450 bytes a record. Record i counts i%7+1
// messages.
func generateReport(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.Grow(n*460 + 1024)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>bigreceiver.example</org_name>
    <email>noreply-dmarc@bigreceiver.example</email>
    <extra_contact_info>https://bigreceiver.example/dmarc</extra_contact_info>
    <report_id>bench-2000</report_id>
    <date_range>
      <begin>1735689600</begin>
      <end>1735775999</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>example.org</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>reject</p>
    <sp>reject</sp>
    <pct>100</pct>
  </policy_published>
`)
	for i := range n {
		ip := fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
		if i%3 == 0 {
			ip = fmt.Sprintf("2001:db8:%x::%x", i/4096, i%4096+1)
		}
		fmt.Fprintf(&b, ` <record>
  <row>
   <source_ip>%s</source_ip>
   <count>%d</count>
   <policy_evaluated>
    <disposition>none</disposition>
    <dkim>pass</dkim>
    <spf>fail</spf>
   </policy_evaluated>
  </row>
  <identifiers>
   <header_from>example.org</header_from>
  </identifiers>
  <auth_results>
   <dkim>
    <domain>example.org</domain>
    <result>pass</result>
   </dkim>
   <spf>
    <domain>bounce%d.example.net</domain>
    <result>pass</result>
   </spf>
  </auth_results>
 </record>
`, ip, i%7+1, i%10)
	}
	b.WriteString("</feedback>\n")
	return b.String()
}

func wantMessages(n int) int64 {
	var s int64
	for i := range n {
		s += int64(i%7 + 1)
	}
	return s
}

// TestLargeReport parses the 2,000-record report the issue asks about
// (no timing assertion; the benchmark measures).
func TestLargeReport(t *testing.T) {
	s := generateReport(t, 2000)
	if len(s) < 850_000 || len(s) > 1_000_000 {
		t.Fatalf("generated %d bytes, want ~900 KB", len(s))
	}
	start := time.Now()
	a, err := ParseAggregate(strings.NewReader(s), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, %d records in %v", len(s), len(a.Records), time.Since(start))
	if len(a.Records) != 2000 || a.Messages() != wantMessages(2000) || len(a.Warnings) != 0 {
		t.Fatalf("%d records, %d messages, warnings %q", len(a.Records), a.Messages(), a.Warnings)
	}
	if r := a.Records[3]; r.SourceIP.String() != "2001:db8::4" || r.Count != 4 || len(r.DKIMResults) != 1 {
		t.Errorf("record 4: %+v", r)
	}
}

func BenchmarkParseAggregate2000(b *testing.B) {
	s := []byte(generateReport(b, 2000))
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		a, err := ParseAggregate(bytes.NewReader(s), DefaultLimits())
		if err != nil || len(a.Records) != 2000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAggregate2000Gzip(b *testing.B) {
	x := []byte(generateReport(b, 2000))
	gz := gzipBytes(b, x)
	b.SetBytes(int64(len(x))) // MB/s of XML, as for the plain benchmark
	b.ReportAllocs()
	for b.Loop() {
		a, err := gunzipAggregate(bytes.NewReader(gz), DefaultLimits())
		if err != nil || len(a.Records) != 2000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMessageZip(b *testing.B) {
	msg := readTestdata(b, "google-message.eml")
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := ParseMessage(bytes.NewReader(msg), DefaultLimits(), func(it Item) error {
			if it.Aggregate != nil {
				n++
			}
			return nil
		})
		if err != nil || n != 1 {
			b.Fatal(err, n)
		}
	}
}

// BenchmarkEncodingXMLBaseline is encoding/xml alone reading the same
// document token by token: the floor ParseAggregate2000 is measured
// against.
func BenchmarkEncodingXMLBaseline(b *testing.B) {
	s := []byte(generateReport(b, 2000))
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		d := xml.NewDecoder(bytes.NewReader(s))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}
