package ingest

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"
)

// deflateRepeat returns a raw deflate stream of n MiB of the byte c, and
// its CRC-32, built by repeating one flushed 1 MiB block: a bomb of a few
// KiB, made in microseconds.
func deflateRepeat(t testing.TB, c byte, n int) ([]byte, uint32) {
	t.Helper()
	mib := bytes.Repeat([]byte{c}, 1<<20)
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	if _, err := w.Write(mib); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil { // ends byte-aligned, not final
		t.Fatal(err)
	}
	chunk := b.Bytes()
	out := bytes.Repeat(chunk, n)
	out = append(out, 0x03, 0x00) // an empty final block
	var crc uint32
	for range n {
		crc = crc32.Update(crc, crc32.IEEETable, mib)
	}
	return out, crc
}

// gzipRepeat returns a gzip file: a report's opening, then n members of
// 1 MiB of 'A' each (inside <org_name>), each member a few hundred bytes.
func gzipRepeat(t testing.TB, n int) []byte {
	t.Helper()
	head := gzipBytes(t, []byte(`<?xml version="1.0"?><feedback><report_metadata><org_name>`))
	member := gzipBytes(t, bytes.Repeat([]byte("A"), 1<<20))
	return append(head, bytes.Repeat(member, n)...)
}

func TestGzipBomb(t *testing.T) {
	bomb := gzipRepeat(t, 200) // 200 MiB from ~200 KiB
	if len(bomb) > 300<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "bomb.xml.gz")
	writeFile(t, p, bomb)

	// The ratio stops it first, past 1 MiB.
	items := walkAll(t, p, DefaultLimits())
	if len(items) != 1 || items[0].Err == nil {
		t.Fatalf("items %+v", items)
	}
	wantErr(t, items[0].Err, ErrLimit, p+": limit exceeded: gzip data decompresses more than 250:1")

	// Without the ratio, the absolute cap.
	lim := DefaultLimits()
	lim.MaxRatio = -1
	lim.MaxDecompressed = 2 << 20
	items = walkAll(t, p, lim)
	wantErr(t, items[0].Err, ErrLimit, "decompresses to more than 2 MiB")

	// The compressed size cap.
	lim = DefaultLimits()
	lim.MaxRatio = -1
	lim.MaxCompressed = 2 << 10
	items = walkAll(t, p, lim)
	wantErr(t, items[0].Err, ErrLimit, "compressed input larger than 2 KiB")
}

// TestLargeReportRatio: the reference set's 2,286-record report
// compresses 102:1 with gzip -9. A report of that shape past the 1 MiB
// floor would be refused by a 100:1 cap; 250:1 takes it.
func TestLargeReportRatio(t *testing.T) {
	var b strings.Builder
	for i := range 3500 {
		fmt.Fprintf(&b, ` <record>
  <row>
   <source_ip>12.20.%d.%d</source_ip>
   <count>1</count>
   <policy_evaluated>
    <disposition>none</disposition>
    <dkim>fail</dkim>
    <spf>fail</spf>
   </policy_evaluated>
  </row>
  <identifiers>
   <header_from>example.com</header_from>
  </identifiers>
  <auth_results>
   <spf>
    <domain></domain>
    <result>none</result>
   </spf>
  </auth_results>
 </record>
`, i/250, i%250+1)
	}
	s := doc("", "", "", b.String())
	gz := gzipBest(t, []byte(s))
	ratio := int64(len(s) / len(gz))
	t.Logf("%d records, %d bytes, gzip -9 %d bytes, ratio %d:1", 3500, len(s), len(gz), ratio)
	if ratio <= 100 {
		t.Fatalf("ratio %d:1: the test needs a report past 100:1", ratio)
	}
	a, err := gunzipAggregate(bytes.NewReader(gz), DefaultLimits())
	if err != nil {
		t.Fatalf("a real-shaped report refused: %v", err)
	}
	if len(a.Records) != 3500 {
		t.Fatalf("%d records", len(a.Records))
	}
	lim := DefaultLimits()
	lim.MaxRatio = 100
	_, err = gunzipAggregate(bytes.NewReader(gz), lim)
	wantErr(t, err, ErrLimit, "more than 100:1")
}

func zipRaw(t testing.TB, name string, raw []byte, crc uint32, declared uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, err := z.CreateRaw(&zip.FileHeader{
		Name: name, Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(len(raw)), UncompressedSize64: declared,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestZipBomb(t *testing.T) {
	dir := t.TempDir()
	raw, crc := deflateRepeat(t, ' ', 100) // 100 MiB of spaces
	cases := []struct {
		name string
		data []byte
		lim  func(*Limits)
		kind []error
		text string
	}{
		{"declared size", zipRaw(t, "bomb.xml", raw, crc, 100<<20), nil, []error{ErrLimit}, "declares 104857600 bytes, more than 64 MiB"},
		{"declared ratio", func() []byte { r, c := deflateRepeat(t, ' ', 10); return zipRaw(t, "bomb.xml", r, c, 10<<20) }(), nil,
			[]error{ErrLimit}, "declares a ratio over 250:1"},
		{"lying size", zipRaw(t, "bomb.xml", raw, crc, 1000), nil, []error{ErrCorrupt}, "produces more than the 1000 bytes it declares"},
		{"lying size, no ratio", zipRaw(t, "bomb.xml", raw, crc, 1000), func(l *Limits) { l.MaxRatio = -1 }, []error{ErrCorrupt, ErrLimit}, ""},
		{"many members", func() []byte {
			var m []string
			for i := range 17 {
				m = append(m, fmt.Sprintf("r%d.xml", i), "<feedback/>")
			}
			return zipBytes(t, m...)
		}(), nil, []error{ErrLimit}, "zip holds 17 entries, more than 16"},
		{"no xml member", zipBytes(t, "report.txt", "hello", "x.pdf", "%PDF"), nil, []error{ErrNotReport}, "zip holds no .xml file (it holds report.txt, x.pdf)"},
		{"not a zip after all", []byte("PK\x03\x04 broken"), nil, []error{ErrCorrupt}, "zip:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.data) > 128<<10 {
				t.Fatalf("bomb is %d bytes", len(c.data))
			}
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".zip")
			writeFile(t, p, c.data)
			lim := DefaultLimits()
			if c.lim != nil {
				c.lim(&lim)
			}
			items := walkAll(t, p, lim)
			if len(items) != 1 || items[0].Err == nil {
				t.Fatalf("items %+v", items)
			}
			ok := false
			for _, k := range c.kind {
				ok = ok || errors.Is(items[0].Err, k)
			}
			if !ok {
				t.Fatalf("error %v, want one of %v", items[0].Err, c.kind)
			}
			if c.text != "" && !strings.Contains(items[0].Err.Error(), c.text) {
				t.Errorf("error %q lacks %q", items[0].Err, c.text)
			}
		})
	}
}

func TestZipMembers(t *testing.T) {
	g, y := string(readTestdata(t, "google.xml")), string(readTestdata(t, "yahoo.xml"))
	p := filepath.Join(t.TempDir(), "two.zip")
	writeFile(t, p, zipBytes(t, "dir/google.xml", g, "README", "x", "yahoo.XML", y, "broken.xml", "<feedback>"))
	items := walkAll(t, p, DefaultLimits())
	if len(items) != 3 {
		t.Fatalf("%d items: %+v", len(items), items)
	}
	if items[0].Source != p+":dir/google.xml" || items[0].Aggregate.Messages() != 164 {
		t.Errorf("item 1 %+v", items[0])
	}
	if items[1].Source != p+":yahoo.XML" || items[1].Aggregate.Messages() != 260 {
		t.Errorf("item 2 %+v", items[1])
	}
	wantErr(t, items[2].Err, ErrNotWellFormed, p+":broken.xml:1: not well-formed XML")
}

func TestGzipShapes(t *testing.T) {
	x := readTestdata(t, "microsoft.xml")
	gz := gzipBytes(t, x)
	half := len(x) / 2

	t.Run("trailing CRLF", func(t *testing.T) {
		a, err := gunzipAggregate(bytes.NewReader(append(append([]byte{}, gz...), "\r\n"...)), DefaultLimits())
		if err != nil || len(a.Warnings) != 0 || a.Messages() != 26 {
			t.Fatalf("%v %+v", err, a)
		}
	})
	t.Run("trailing junk", func(t *testing.T) {
		a, err := gunzipAggregate(bytes.NewReader(append(append([]byte{}, gz...), "junk"...)), DefaultLimits())
		if err != nil || !hasWarning(a.Warnings, "4 bytes after the gzip data ignored") {
			t.Fatalf("%v %+v", err, a)
		}
	})
	t.Run("concatenated members", func(t *testing.T) {
		two := append(gzipBytes(t, x[:half]), gzipBytes(t, x[half:])...)
		a, err := gunzipAggregate(bytes.NewReader(two), DefaultLimits())
		if err != nil || a.Messages() != 26 {
			t.Fatalf("%v %+v", err, a)
		}
	})
	t.Run("bad checksum", func(t *testing.T) {
		bad := append([]byte{}, gz...)
		bad[len(bad)-8] ^= 0xff // CRC-32 in the trailer
		a, err := gunzipAggregate(bytes.NewReader(bad), DefaultLimits())
		if a != nil {
			t.Fatalf("accepted")
		}
		wantErr(t, err, ErrCorrupt, "checksum")
	})
	t.Run("truncated", func(t *testing.T) {
		a, err := gunzipAggregate(bytes.NewReader(gz[:len(gz)/2]), DefaultLimits())
		if a != nil {
			t.Fatalf("accepted")
		}
		wantErr(t, err, ErrCorrupt, "gzip data")
	})
	t.Run("not gzip", func(t *testing.T) {
		_, err := gunzipAggregate(strings.NewReader("\x1f\x8bxx"), DefaultLimits())
		wantErr(t, err, ErrCorrupt, "gzip")
	})
}

// TestNesting: a zip inside a message inside an mbox is found at the
// default depth and refused when MaxDepth is too small for it.
func TestNesting(t *testing.T) {
	msg := readTestdata(t, "google-message.eml") // application/zip, single part
	mbox := append([]byte("From noreply-dmarc-support@google.com Thu Jan  2 03:14:07 2025\n"), msg...)
	p := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, p, mbox)

	items := walkAll(t, p, DefaultLimits())
	if len(items) != 1 || items[0].Aggregate == nil || items[0].Aggregate.Messages() != 164 {
		t.Fatalf("default depth: %+v", items)
	}
	// mbox 1, message 2, zip 3.
	lim := DefaultLimits()
	lim.MaxDepth = 3
	if items = walkAll(t, p, lim); items[0].Aggregate == nil {
		t.Fatalf("depth 3: %+v", items)
	}
	lim.MaxDepth = 2
	items = walkAll(t, p, lim)
	if len(items) != 1 {
		t.Fatalf("depth 2: %+v", items)
	}
	wantErr(t, items[0].Err, ErrLimit, "zip nested deeper than 2")
	lim.MaxDepth = 1
	items = walkAll(t, p, lim)
	wantErr(t, items[0].Err, ErrLimit, "message nested deeper than 1")

	// Forwarded messages nest further: a message holding a message
	// holding a message ... is cut off, not followed.
	inner := string(msg)
	for range 12 {
		inner = "From: fwd@example.org\nSubject: Fwd\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n" + inner
	}
	it := messageAll(t, []byte(inner), DefaultLimits())
	if len(it) != 1 {
		t.Fatalf("%+v", it)
	}
	wantErr(t, it[0].Err, ErrLimit, "nested deeper than 10")
}
