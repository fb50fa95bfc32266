package ingest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestProviderMessages reads our own report messages, each in the shape
// its provider sends: Google a single-part application/zip, Microsoft a
// CRLF multipart with nested alternatives and application/gzip, Yahoo an
// application/octet-stream named .xml.gz.
func TestProviderMessages(t *testing.T) {
	cases := []struct {
		file, source string
		records      int
		messages     int64
		id           string
	}{
		{"google-message.eml", "google.com!example.org!1735689600!1735775999.zip:google.com!example.org!1735689600!1735775999.xml", 5, 164, "5310771542185718426"},
		{"microsoft-message.eml", "enterprise.protection.outlook.com!example.org!1735603200!1735689600.xml.gz", 3, 26, "9d4e2c8b7a1f4e0fa3c5b6d7e8f90a1b"},
		{"yahoo-message.eml", "yahoo.com!example.org!1735689600!1735775999.xml.gz", 3, 260, "1735718400.612385"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			items := messageAll(t, readTestdata(t, c.file), DefaultLimits())
			if len(items) != 1 || items[0].Aggregate == nil {
				t.Fatalf("items %+v", items)
			}
			a := items[0].Aggregate
			if items[0].Source != c.source || len(a.Records) != c.records || a.Messages() != c.messages || a.ReportID != c.id {
				t.Errorf("got %q %d records %d messages id %q", items[0].Source, len(a.Records), a.Messages(), a.ReportID)
			}
			// The same through Walk: the file's path in front.
			p := filepath.Join("testdata", c.file)
			w := walkAll(t, p, DefaultLimits())
			if len(w) != 1 || w[0].Source != p+":"+c.source || w[0].Aggregate == nil || w[0].Aggregate.Key() != a.Key() {
				t.Errorf("Walk: %+v", w)
			}
		})
	}
}

func TestFailureARF(t *testing.T) {
	items := messageAll(t, readTestdata(t, "failure-arf.eml"), DefaultLimits())
	if len(items) != 1 || items[0].Failure == nil {
		t.Fatalf("items %+v", items)
	}
	f := items[0].Failure
	if items[0].Source != "" {
		t.Errorf("source %q, want the message itself", items[0].Source)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"feedback type", f.FeedbackType, "auth-failure"},
		{"version", f.Version, "1"},
		{"user agent", f.UserAgent, "ExampleNet-Reporter/3.2"},
		{"auth failure", f.AuthFailure, "dmarc"},
		{"reported domain", f.ReportedDomain, "example.org"},
		{"source ip", f.SourceIP, netip.MustParseAddr("2001:db8:77::1")},
		{"mail from", f.OriginalMailFrom, "bounce@spoof.example"},
		{"rcpt to", strings.Join(f.OriginalRcptTo, ","), "alice@reports.example.net,bob@reports.example.net"},
		{"arrival", f.ArrivalDate, time.Date(2025, 1, 2, 10, 14, 58, 0, time.UTC)},
		{"auth results", strings.Join(f.AuthenticationResults, "|"), "mx1.reports.example.net; dkim=fail header.d=example.org header.s=s1; spf=fail smtp.mailfrom=spoof.example; dmarc=fail header.from=example.org"},
		{"dkim", f.DKIMDomain + " " + f.DKIMIdentity + " " + f.DKIMSelector, "example.org @example.org s1"},
		{"spf dns", strings.Join(f.SPFDNS, "|"), `txt : example.org : "v=spf1 ip4:192.0.2.0/24 -all"`},
		{"delivery", f.DeliveryResult, "reject"},
		{"alignment", strings.Join(f.IdentityAlignment, ","), "dkim,spf"},
		{"incidents", f.Incidents, int64(3)},
		{"original from", f.OriginalFrom, "Café Example <billing@example.org>"},
		{"original subject", f.OriginalSubject, "Your invoice"},
		{"original id", f.OriginalMessageID, "spoofed-4711@spoof.example"},
		{"reporter", f.Reporter.From + " / " + f.Reporter.Name, "dmarc-failure@reports.example.net / Example Net DMARC"},
		{"reporting mta", f.Reporter.ReportingMTA, "dns; mx1.reports.example.net"},
		{"report id", f.Reporter.MessageID, "ruf-20250102-101501-77@reports.example.net"},
		{"report date", f.Reporter.Date, time.Date(2025, 1, 2, 10, 15, 1, 0, time.UTC)},
		{"fields", len(f.Fields), 19},
		{"warnings", len(f.Warnings), 0},
		{"key", f.Key(), "dmarc-failure@reports.example.net\x00ruf-20250102-101501-77@reports.example.net"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if !strings.HasPrefix(f.Headers, "Received: from [203.0.113.77]") || !strings.HasSuffix(f.Headers, "b=AAAA\n") || f.HeadersTruncated {
		t.Errorf("headers %q", f.Headers)
	}

	lim := DefaultLimits()
	lim.MaxHeaderText = 100
	items = messageAll(t, readTestdata(t, "failure-arf.eml"), lim)
	if f := items[0].Failure; f == nil || !f.HeadersTruncated || len(f.Headers) > 100 {
		t.Errorf("truncation: %+v", items[0])
	}
}

// msg builds a message: header lines, then a body.
func msg(header, body string) []byte {
	return []byte(strings.TrimLeft(header, "\n") + "\n" + body)
}

func TestMessageShapes(t *testing.T) {
	xml := string(readTestdata(t, "yahoo.xml"))
	gz := base64.StdEncoding.EncodeToString(gzipBytes(t, []byte(xml)))
	zp := base64.StdEncoding.EncodeToString(zipBytes(t, "r.xml", string(readTestdata(t, "google.xml"))))
	fwd := readTestdata(t, "microsoft-message.eml")

	type result struct {
		source string
		msgs   int64 // -1: a failure report
		kind   error
		text   string
	}
	cases := []struct {
		name string
		data []byte
		lim  func(*Limits)
		want []result
	}{
		{"two attachments", msg(`
From: a@example.net
Content-Type: multipart/mixed; boundary=b

`, "--b\nContent-Type: application/gzip\nContent-Transfer-Encoding: base64\n\n"+gz+"\n--b\nContent-Type: application/zip; name=g.zip\nContent-Transfer-Encoding: base64\n\n"+zp+"\n--b--\n"),
			nil, []result{{source: "part1", msgs: 260}, {source: "g.zip:r.xml", msgs: 164}}},
		{"plain xml attachment", msg(`
Content-Type: multipart/mixed; boundary="x y"

`, "--x y\nContent-Type: text/plain\n\nSee the attachment.\n--x y\nContent-Type: text/xml; charset=utf-8\nContent-Disposition: attachment; filename=\"report.xml\"\n\n"+xml+"\n--x y--\n"),
			nil, []result{{source: "report.xml", msgs: 260}}},
		{"xml by content in octet-stream", msg(`
Content-Type: application/octet-stream
Content-Transfer-Encoding: quoted-printable

`, strings.ReplaceAll(xml, "=", "=3D")), nil, []result{{source: "body", msgs: 260}}},
		{"forwarded report", msg(`
From: user@example.org
Subject: Fwd: Report Domain: example.org
Content-Type: multipart/mixed; boundary=f

`, "--f\nContent-Type: text/plain\n\nFYI\n--f\nContent-Type: message/rfc822\n\n"+string(fwd)+"\n--f--\n"),
			nil, []result{{source: "part2:enterprise.protection.outlook.com!example.org!1735603200!1735689600.xml.gz", msgs: 26}}},
		{"not a report", msg("From: a@example.net\nSubject: hello\n", "Hello.\n"),
			nil, []result{{kind: ErrNotReport, text: "no aggregate report attached and no message/feedback-report part"}}},
		{"html body is no report", msg("Content-Type: text/html\n", "<html><body>x</body></html>\n"),
			nil, []result{{kind: ErrNotReport}}},
		{"bounce", msg("Content-Type: multipart/report; report-type=delivery-status; boundary=d\n",
			"--d\nContent-Type: text/plain\n\nUndeliverable\n--d\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n--d--\n"),
			nil, []result{{kind: ErrNotReport, text: "report-type delivery-status"}}},
		{"abuse report", msg("Content-Type: multipart/report; report-type=feedback-report; boundary=d\n",
			"--d\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: x/1\nVersion: 1\n--d--\n"),
			nil, []result{{kind: ErrNotReport, text: `Feedback-Type "abuse"`}}},
		{"arf without type", msg("Content-Type: multipart/report; report-type=feedback-report; boundary=d\n",
			"--d\nContent-Type: message/feedback-report\n\nUser-Agent: x/1\n--d--\n"),
			nil, []result{{kind: ErrInvalid, text: "without Feedback-Type"}}},
		{"arf without original", msg("From: r@example.net\nContent-Type: multipart/report; report-type=feedback-report; boundary=d\n",
			"--d\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\nAuth-Failure: spf\r\nSource-IP: 192.0.2.1\r\n--d--\r\n"),
			nil, []result{{source: "", msgs: -1}}},
		{"broken base64", msg("Content-Type: application/gzip; name=r.xml.gz\nContent-Transfer-Encoding: base64\n", "H4sI!!!!****\n"),
			nil, []result{{source: "r.xml.gz", kind: ErrCorrupt, text: "illegal base64"}}},
		{"gz name, text content", msg("Content-Type: application/octet-stream; name=r.xml.gz\n", "this is not gzip\n"),
			nil, []result{{source: "r.xml.gz", kind: ErrCorrupt, text: "not gzip or zip"}}},
		{"corrupt gzip attachment", msg("Content-Type: application/gzip; name=r.xml.gz\nContent-Transfer-Encoding: base64\n",
			base64.StdEncoding.EncodeToString(gzipBytes(t, []byte(xml))[:200])+"\n"),
			nil, []result{{source: "r.xml.gz", kind: ErrCorrupt}}},
		{"message too large", msg("Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n", gz+"\n"),
			func(l *Limits) { l.MaxMessage = 300 }, []result{{source: "body", kind: ErrLimit, text: "message larger than 300 bytes"}}},
		{"attachment too large", msg("Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n", gz+"\n"),
			func(l *Limits) { l.MaxCompressed = 100 }, []result{{source: "body", kind: ErrLimit, text: "compressed input larger than 100 bytes"}}},
		{"leading From_ line", append([]byte("From a@example.net Thu Jan  2 03:14:07 2025\n"), fwd...),
			nil, []result{{source: "enterprise.protection.outlook.com!example.org!1735603200!1735689600.xml.gz", msgs: 26}}},
		{"empty", nil, nil, []result{{kind: ErrEmpty}}},
		{"empty report attachment", msg("Content-Type: multipart/mixed; boundary=b\n", "--b\nContent-Type: application/gzip; name=r.xml.gz\n\n\n--b--\n"),
			nil, []result{{source: "r.xml.gz", kind: ErrEmpty, text: "empty attachment"}}},
		{"lenient content type", msg("Content-Type: multipart/mixed; boundary=----=_Part_1; charset=x; charset=y\n",
			"------=_Part_1\nContent-Type: application/octet-stream; name=a b.xml.gz\nContent-Transfer-Encoding: base64\n\n"+gz+"\n------=_Part_1--\n"),
			nil, []result{{source: "a b.xml.gz", msgs: 260}}},
		{"xml name, other content", msg("Content-Type: application/octet-stream; name=report.xml\n", "%PDF-1.4\n"),
			nil, []result{{source: "report.xml", kind: ErrNotReport, text: "named or typed as XML, but its content is not XML"}}},
		{"no boundary", msg("Content-Type: multipart/mixed\n", "x\n"), nil, []result{{kind: ErrNotReport, text: "without a boundary"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lim := DefaultLimits()
			if c.lim != nil {
				c.lim(&lim)
			}
			items := messageAll(t, c.data, lim)
			if len(items) != len(c.want) {
				t.Fatalf("%d items, want %d: %+v", len(items), len(c.want), items)
			}
			for i, w := range c.want {
				it := items[i]
				if it.Source != w.source {
					t.Errorf("item %d: source %q, want %q", i, it.Source, w.source)
				}
				switch {
				case w.kind != nil:
					wantErr(t, it.Err, w.kind, w.text)
				case w.msgs < 0:
					if it.Failure == nil {
						t.Errorf("item %d: %+v, want a failure report", i, it)
					}
				default:
					if it.Aggregate == nil || it.Aggregate.Messages() != w.msgs {
						t.Errorf("item %d: %+v, want %d messages", i, it, w.msgs)
					}
				}
			}
		})
	}
}

// TestMbox reads an mbox of four messages: LF and CRLF, a body line
// escaped as ">From " (mboxrd), a failure report, and no trailing blank
// line at the end.
func TestMbox(t *testing.T) {
	xml := strings.Replace(string(readTestdata(t, "yahoo.xml")), "<email>dmarchelp@yahooinc.com</email>",
		"<email>dmarchelp@yahooinc.com</email>\n<extra_contact_info>\nFrom the reporting team\n</extra_contact_info>", 1)
	escaped := strings.ReplaceAll(xml, "\nFrom ", "\n>From ")
	var b bytes.Buffer
	b.WriteString("From noreply-dmarc-support@google.com Thu Jan  2 03:14:07 2025\n")
	b.Write(readTestdata(t, "google-message.eml"))
	b.WriteString("\nFrom dmarcreport@microsoft.com  Wed Jan  1 06:02:11 2025\r\n")
	b.Write(readTestdata(t, "microsoft-message.eml"))
	b.WriteString("\r\nFrom MAILER-DAEMON Thu Jan  2 08:41:27 2025\n")
	b.WriteString("From: reports@example.net\nSubject: plain\nContent-Type: text/xml\n")
	b.WriteString(strings.Repeat("X-Padding: 0123456789012345678901234567890123456789\n", 100)) // 5 KB
	b.WriteString("\n" + escaped + "\n")
	b.WriteString("From dmarc-failure@reports.example.net Thu Jan  2 10:15:03 2025\n")
	b.Write(readTestdata(t, "failure-arf.eml"))
	p := filepath.Join(t.TempDir(), "Inbox")
	writeFile(t, p, b.Bytes())

	items := walkAll(t, p, DefaultLimits())
	if len(items) != 4 {
		t.Fatalf("%d items: %+v", len(items), items)
	}
	wantSrc := []string{
		p + "#1:google.com!example.org!1735689600!1735775999.zip:google.com!example.org!1735689600!1735775999.xml",
		p + "#2:enterprise.protection.outlook.com!example.org!1735603200!1735689600.xml.gz",
		p + "#3:body",
		p + "#4",
	}
	for i, it := range items {
		if it.Source != wantSrc[i] {
			t.Errorf("item %d: source %q, want %q", i, it.Source, wantSrc[i])
		}
	}
	if items[0].Aggregate.Messages() != 164 || items[1].Aggregate.Messages() != 26 || items[2].Aggregate.Messages() != 260 || items[3].Failure == nil {
		t.Errorf("items %+v", items)
	}
	if got := items[2].Aggregate.ExtraContact; got != "From the reporting team" {
		t.Errorf("escaped line read as %q", got)
	}

	// A message over MaxMessage is refused alone; the others go on.
	lim := DefaultLimits()
	lim.MaxMessage = 4000
	items = walkAll(t, p, lim)
	var kinds []string
	for _, it := range items {
		switch {
		case errors.Is(it.Err, ErrLimit):
			kinds = append(kinds, "limit")
		case it.Err != nil:
			kinds = append(kinds, "err:"+it.Err.Error())
		default:
			kinds = append(kinds, "ok")
		}
	}
	if !slices.Equal(kinds, []string{"ok", "ok", "limit", "ok"}) {
		t.Errorf("with MaxMessage 4000: %q", kinds)
	}
}

// TestTree walks a directory: a maildir (cur/ and new/ read, tmp/ and
// its index files skipped), a Maildir++ subfolder, loose files of every
// kind, hidden files skipped; order is lexical.
func TestTree(t *testing.T) {
	root := t.TempDir()
	md := filepath.Join(root, "Maildir")
	writeFile(t, filepath.Join(md, "cur", "1735807281.M1P1.mx:2,S"), readTestdata(t, "yahoo-message.eml"))
	writeFile(t, filepath.Join(md, "new", "1735812903.M2P2.mx"), readTestdata(t, "failure-arf.eml"))
	writeFile(t, filepath.Join(md, "tmp", "1735812999.M3P3.mx"), []byte("half a message"))
	writeFile(t, filepath.Join(md, "dovecot-uidlist"), []byte("3 V1735807281 N3\n"))
	writeFile(t, filepath.Join(md, ".Reports", "cur", "1735689700.M4P4.mx:2,S"), readTestdata(t, "google-message.eml"))
	writeFile(t, filepath.Join(md, ".Reports", "tmp", "x"), []byte("x"))
	if err := os.MkdirAll(filepath.Join(md, ".Reports", "new"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "loose", "microsoft.xml.gz"), gzipBytes(t, readTestdata(t, "microsoft.xml")))
	writeFile(t, filepath.Join(root, "loose", "README.txt"), []byte("reports go here\n"))
	writeFile(t, filepath.Join(root, "loose", "empty.xml"), nil)
	writeFile(t, filepath.Join(root, "loose", ".hidden.xml"), readTestdata(t, "google.xml"))
	writeFile(t, filepath.Join(root, ".git", "config"), []byte("[core]\n"))
	if err := os.Symlink(filepath.Join(root, "loose", "microsoft.xml.gz"), filepath.Join(root, "link.gz")); err != nil {
		t.Fatal(err)
	}

	items := walkAll(t, root, DefaultLimits())
	var got []string
	for _, it := range items {
		rel, _ := filepath.Rel(root, it.Source)
		switch {
		case it.Aggregate != nil:
			got = append(got, rel+" agg")
		case it.Failure != nil:
			got = append(got, rel+" arf")
		case errors.Is(it.Err, ErrEmpty):
			got = append(got, rel+" empty")
		case errors.Is(it.Err, ErrNotReport):
			got = append(got, rel+" notreport")
		default:
			got = append(got, rel+" "+it.Err.Error())
		}
	}
	want := []string{
		"Maildir/.Reports/cur/1735689700.M4P4.mx:2,S:google.com!example.org!1735689600!1735775999.zip:google.com!example.org!1735689600!1735775999.xml agg",
		"Maildir/cur/1735807281.M1P1.mx:2,S:yahoo.com!example.org!1735689600!1735775999.xml.gz agg",
		"Maildir/new/1735812903.M2P2.mx arf",
		"link.gz agg",
		"loose/README.txt notreport",
		"loose/empty.xml empty",
		"loose/microsoft.xml.gz agg",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// A symbolic link to the tree walks the tree, under the link's name.
	link := filepath.Join(t.TempDir(), "reports")
	if err := os.Symlink(filepath.Join(root, "loose"), link); err != nil {
		t.Fatal(err)
	}
	items = walkAll(t, link, DefaultLimits())
	if len(items) != 3 || items[2].Source != filepath.Join(link, "microsoft.xml.gz") || items[2].Aggregate == nil {
		t.Errorf("through a link: %+v", items)
	}

	// fn's error stops the walk and comes back.
	stop := errors.New("stop")
	n := 0
	err := Walk(root, DefaultLimits(), func(Item) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("Walk returned %v after %d items", err, n)
	}
	if err := Walk(filepath.Join(root, "missing"), DefaultLimits(), func(Item) error { return nil }); err == nil {
		t.Errorf("a missing path is no error")
	}
}

// TestMboxFirstLine: an mbox whose first From_ line has no date still
// starts a message; a later "From " line without one is body text.
func TestMboxFirstLine(t *testing.T) {
	yahoo := string(readTestdata(t, "yahoo-message.eml"))
	body := strings.Replace(yahoo, "This is an aggregate report from Yahoo.", "This is an aggregate report from Yahoo.\n\nFrom here on, the report.", 1)
	data := "From nobody\n" + body + "\nFrom nobody Thu Jan  2 08:41:27 2025\n" + yahoo
	p := filepath.Join(t.TempDir(), "x.mbox")
	writeFile(t, p, []byte(data))
	items := walkAll(t, p, DefaultLimits())
	if len(items) != 2 || items[0].Source != p+"#1:yahoo.com!example.org!1735689600!1735775999.xml.gz" || items[1].Aggregate == nil {
		t.Fatalf("%+v", items)
	}
}
