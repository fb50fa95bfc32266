package aggregate

import (
	"bytes"
	"compress/gzip"
	"io"
	"regexp"
	"testing"
	"time"
)

func TestFileName(t *testing.T) {
	begin := time.Unix(1013662812, 0)
	end := time.Unix(1013749130, 0)
	tests := []struct {
		name                 string
		receiver, domain, id string
		want                 string
	}{
		// The example of RFC 7489 §7.2.1.1 and RFC 9990.
		{"rfc example", "mail.receiver.example", "example.com", "", "mail.receiver.example!example.com!1013662812!1013749130.xml.gz"},
		{"unique id", "mail.receiver.example", "example.com", "a1B2c3", "mail.receiver.example!example.com!1013662812!1013749130!a1B2c3.xml.gz"},
		{"id keeps letters and digits", "mx.example.net", "example.com", "<abc-123@x.example>", "mx.example.net!example.com!1013662812!1013749130!abc123xexample.xml.gz"},
		{"id of nothing usable", "mx.example.net", "example.com", "-@.", "mx.example.net!example.com!1013662812!1013749130.xml.gz"},
		{"case and trailing dot", "MX.Example.NET.", "Example.COM.", "", "mx.example.net!example.com!1013662812!1013749130.xml.gz"},
		{"U-labels become A-labels", "mx.bücher.example", "bücher.example", "", "mx.xn--bcher-kva.example!xn--bcher-kva.example!1013662812!1013749130.xml.gz"},
		{"hostile domain", "mx.example.net", "a!b/../c\x00 d_e.example", "", "mx.example.net!a-b-..-c--d-e.example!1013662812!1013749130.xml.gz"},
	}
	grammar := regexp.MustCompile(`^[a-z0-9.-]+![a-z0-9.-]+![0-9]+![0-9]+(![A-Za-z0-9]+)?\.xml\.gz$`)
	for _, tc := range tests {
		for _, f := range []Format{RFC7489, RFC9990} {
			got := FileName(f, tc.receiver, tc.domain, begin, end, tc.id)
			if got != tc.want {
				t.Errorf("%s (%s): FileName = %q, want %q", tc.name, f, got, tc.want)
			}
			if !grammar.MatchString(got) {
				t.Errorf("%s: %q does not match the file name grammar", tc.name, got)
			}
		}
	}
}

func TestNewReportID(t *testing.T) {
	a, b := NewReportID(), NewReportID()
	if a == b {
		t.Errorf("two report IDs alike: %q", a)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{26}$`).MatchString(a) {
		t.Errorf("report ID %q is not 26 letters and digits", a)
	}
	// Usable as the file name's unique-id unchanged, as RFC 9990 wants.
	name := FileName(RFC9990, "mx.example.net", "example.com", day0, day1, a)
	if want := "!" + a + ".xml.gz"; name[len(name)-len(want):] != want {
		t.Errorf("FileName changed the report ID: %q", name)
	}
}

func TestWriteGzip(t *testing.T) {
	recs := []Record{passRecord("192.0.2.1", 1), passRecord("2001:db8::1", 2)}
	var plain bytes.Buffer
	if err := Write(&plain, RFC9990, testMeta(), testPolicy(), FromSlice(recs)); err != nil {
		t.Fatal(err)
	}
	name := FileName(RFC9990, "mx.example.net", "example.com", day0, day1, "R1")
	var zbuf bytes.Buffer
	n, err := WriteGzip(&zbuf, RFC9990, testMeta(), testPolicy(), name, FromSlice(recs))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(zbuf.Len()) {
		t.Errorf("WriteGzip counted %d bytes, wrote %d", n, zbuf.Len())
	}
	zr, err := gzip.NewReader(&zbuf)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "mx.example.net!example.com!1777593600!1777679999!R1.xml" {
		t.Errorf("gzip name = %q", zr.Name)
	}
	if !zr.ModTime.Equal(day1) {
		t.Errorf("gzip mtime = %v, want the report's end %v", zr.ModTime, day1)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain.Bytes()) {
		t.Error("gunzipped report differs from Write's")
	}

	// The same report compresses to the same bytes: a re-send is identical.
	var again bytes.Buffer
	if _, err := WriteGzip(&again, RFC9990, testMeta(), testPolicy(), name, FromSlice(recs)); err != nil {
		t.Fatal(err)
	}
	var first bytes.Buffer
	_, _ = WriteGzip(&first, RFC9990, testMeta(), testPolicy(), name, FromSlice(recs))
	if !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Error("two compressions of one report differ")
	}

	// Nothing, not even a gzip header, for a report without records.
	var empty bytes.Buffer
	if n, err := WriteGzip(&empty, RFC7489, testMeta(), testPolicy(), name, FromSlice(nil)); err != ErrNoRecords || n != 0 || empty.Len() != 0 {
		t.Errorf("empty report: n=%d err=%v, %d bytes", n, err, empty.Len())
	}
}

func TestGzipHeaderNameIsLatin1(t *testing.T) {
	var buf bytes.Buffer
	zw := NewGzipWriter(&buf, "bücher\n.xml.gz", day1)
	if _, err := zw.Write([]byte("<x/>")); err != nil {
		t.Fatalf("gzip refused the name: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "b_cher_.xml" {
		t.Errorf("name = %q", zr.Name)
	}
}
