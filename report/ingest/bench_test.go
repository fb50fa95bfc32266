package ingest

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/ingest/ingesttest"
)

// TestLargeReport parses the 2,000-record report the issue asks about
// (no timing assertion; the benchmark measures).
func TestLargeReport(t *testing.T) {
	s := string(ingesttest.LargeAggregate("bench-2000", 2000))
	if len(s) < 850_000 || len(s) > 1_000_000 {
		t.Fatalf("generated %d bytes, want ~900 KB", len(s))
	}
	start := time.Now()
	a, err := ParseAggregate(strings.NewReader(s), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, %d records in %v", len(s), len(a.Records), time.Since(start))
	if m, _ := ingesttest.LargeTotals(2000); len(a.Records) != 2000 || a.Messages() != m || len(a.Warnings) != 0 {
		t.Fatalf("%d records, %d messages, warnings %q", len(a.Records), a.Messages(), a.Warnings)
	}
	if r := a.Records[3]; r.SourceIP.String() != "2001:db8::4" || r.Count != 4 || len(r.DKIMResults) != 1 {
		t.Errorf("record 4: %+v", r)
	}
}

func BenchmarkParseAggregate2000(b *testing.B) {
	s := ingesttest.LargeAggregate("bench-2000", 2000)
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
	x := ingesttest.LargeAggregate("bench-2000", 2000)
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
	s := ingesttest.LargeAggregate("bench-2000", 2000)
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
