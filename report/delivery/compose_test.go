package delivery

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
)

// parsed is a composed message read back with go-message.
type parsed struct {
	header      mail.Header
	text        string
	textType    string
	attType     string
	attName     string // Content-Disposition filename
	attTypeName string // Content-Type name
	attDisp     string
	attachment  []byte
	parts       int
}

func parse(t *testing.T, msg []byte) parsed {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("go-message cannot read the message: %v", err)
	}
	p := parsed{header: mr.Header}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		p.parts++
		body, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		switch h := part.Header.(type) {
		case *mail.InlineHeader:
			p.textType, _, _ = h.ContentType()
			p.text = string(body)
		case *mail.AttachmentHeader:
			var params map[string]string
			p.attType, params, _ = h.ContentType()
			p.attTypeName = params["name"]
			p.attName, _ = h.Filename()
			p.attDisp, _, _ = h.ContentDisposition()
			p.attachment = body
		}
	}
	return p
}

func TestComposedReportReadsBackAsSent(t *testing.T) {
	gz := gzipped(t, reportXML)
	m := sampleMessage(t)
	m.To = []string{"rua@example.com", "dmarc+agg@reports.example.net"}
	m.Attachment = bytes.NewReader(gz)
	msg := compose(t, m)
	p := parse(t, msg)

	subject, err := p.header.Subject()
	if err != nil {
		t.Fatal(err)
	}
	if want := "Report Domain: example.com Submitter: mail.receiver.example Report-ID: <r-1700000000@mail.receiver.example>"; subject != want {
		t.Errorf("Subject = %q\nwant      %q", subject, want)
	}
	if _, _, _, ok := ParseSubject(subject); !ok {
		t.Errorf("ParseSubject does not accept %q", subject)
	}
	from, err := p.header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "DMARC reports" || from[0].Address != "dmarc-reports@mail.receiver.example" {
		t.Errorf("From = %v, %v", from, err)
	}
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "rua@example.com" || to[1].Address != "dmarc+agg@reports.example.net" {
		t.Errorf("To = %v, %v", to, err)
	}
	if id, _ := p.header.MessageID(); id != "r-1700000000@mail.receiver.example" {
		t.Errorf("Message-ID = %q, want the report ID", id)
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(m.Date) {
		t.Errorf("Date = %v, %v; want %v", d, err, m.Date)
	}
	if got := p.header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if got := p.header.Get("MIME-Version"); got != "1.0" {
		t.Errorf("MIME-Version = %q", got)
	}
	if ct, _, _ := p.header.ContentType(); ct != "multipart/mixed" {
		t.Errorf("Content-Type = %q, want multipart/mixed", ct)
	}

	if p.parts != 2 {
		t.Errorf("%d parts, want a text and an attachment", p.parts)
	}
	if p.textType != "text/plain" || !strings.Contains(p.text, "example.com") {
		t.Errorf("text part %s %q", p.textType, p.text)
	}
	if p.attType != "application/gzip" {
		t.Errorf("attachment type %q, want application/gzip", p.attType)
	}
	if p.attDisp != "attachment" || p.attName != m.FileName || p.attTypeName != m.FileName {
		t.Errorf("attachment %s filename=%q name=%q, want attachment named %q", p.attDisp, p.attName, p.attTypeName, m.FileName)
	}
	if !strings.Contains(string(msg), "\r\n filename=\""+m.FileName+"\"\r\n") {
		t.Error("the filename is not a quoted string, as report parsers expect it")
	}
	if !bytes.Equal(p.attachment, gz) {
		t.Fatalf("attachment bytes changed: %d bytes, sent %d", len(p.attachment), len(gz))
	}
	zr, err := gzip.NewReader(bytes.NewReader(p.attachment))
	if err != nil {
		t.Fatal(err)
	}
	if xml, _ := io.ReadAll(zr); string(xml) != reportXML {
		t.Errorf("report XML changed: %q", xml)
	}
}

func TestComposedHeaderFieldsComeInTheUsualOrderWithCRLF(t *testing.T) {
	msg := compose(t, sampleMessage(t))
	if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) ||
		bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\r")) {
		t.Error("a line does not end in CRLF")
	}
	var names []string
	for line := range strings.SplitSeq(headerOf(msg), "\r\n") {
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			name, _, _ := strings.Cut(line, ":")
			names = append(names, name)
		}
	}
	want := []string{"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("header fields %v\nwant            %v", names, want)
	}
}

func TestComposingTheSameReportTwiceGivesTheSameBytes(t *testing.T) {
	a := compose(t, sampleMessage(t))
	b := compose(t, sampleMessage(t))
	if !bytes.Equal(a, b) {
		t.Error("two compositions of one report differ: a retry would not be the same message")
	}
}

func TestComposedHeaderLinesStayWithinRFC5322Limits(t *testing.T) {
	long := strings.Repeat("a", 63)
	longDomain := long + "." + long + "." + long + ".example" // 200 octets
	tests := []struct {
		name   string
		change func(*Message)
		max    int // longest line allowed where it can be folded
	}{
		{"an ordinary report stays within 78 octets a line", func(*Message) {}, 78},
		{"a subject with long names is folded at its spaces", func(m *Message) {
			m.ReportDomain = "reports-for-a-rather-long-subsidiary-name.example.com"
			m.Submitter = "dmarc-aggregate-reporting.mail.receiver.example"
			m.FileName = "mail.receiver.example!example.com!1700000000!1700086399.xml.gz"
		}, 78},
		{"a 200-octet domain cannot be folded but stays under 998", func(m *Message) {
			m.ReportDomain = longDomain
			m.FileName = "mail.receiver.example!" + longDomain + "!1700000000!1700086399!abc123.xml.gz"
			m.To = []string{"rua@" + longDomain}
		}, 998},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleMessage(t)
			tt.change(&m)
			msg := compose(t, m)
			for line := range strings.SplitSeq(string(msg), "\r\n") {
				// Over 78 only what cannot be folded: one token after
				// the folding whitespace (a file name); never over 998.
				unfoldable := !strings.ContainsAny(strings.TrimLeft(line, " \t"), " \t")
				if len(line) > 998 || len(line) > tt.max && !unfoldable {
					t.Errorf("line of %d octets (max %d): %q", len(line), tt.max, line)
				}
			}
			p := parse(t, msg)
			subject, _ := p.header.Subject()
			if want := Subject(m.ReportDomain, m.Submitter, m.ReportID); subject != want {
				t.Errorf("Subject unfolds to %q\nwant               %q", subject, want)
			}
			if p.attName != m.FileName {
				t.Errorf("filename %q, want %q", p.attName, m.FileName)
			}
		})
	}
}

func TestComposeEncodesWhatIsNotASCII(t *testing.T) {
	m := sampleMessage(t)
	m.FromName = "Rapports DMARC — Société"
	m.Text = "Rapport agrégé.\n.Une ligne qui commence par un point.\nLigne " + strings.Repeat("x", 100) + "\n"
	m.FileName = "mail.münchen.example!example.com!1700000000!1700086399.xml.gz"
	msg := compose(t, m)
	if i := bytes.IndexFunc(msg, func(r rune) bool { return r >= 0x80 }); i >= 0 {
		t.Errorf("the message is not 7-bit: %q", msg[max(0, i-20):i+20])
	}
	p := parse(t, msg)
	from, _ := p.header.AddressList("From")
	if len(from) != 1 || from[0].Name != m.FromName {
		t.Errorf("From = %v", from)
	}
	if p.text != strings.ReplaceAll(m.Text, "\n", "\r\n") {
		t.Errorf("text = %q", p.text)
	}
	if p.attName != m.FileName {
		t.Errorf("filename %q, want %q", p.attName, m.FileName)
	}
	if !strings.Contains(string(msg), "filename*=utf-8''mail.m%C3%BCnchen.example") {
		t.Errorf("the filename is not RFC 2231-encoded:\n%s", headerOf(msg[bytes.Index(msg, []byte("Content-Disposition: attachment")):]))
	}
}

func TestComposeWritesUncompressedReportsAsTextXML(t *testing.T) {
	m := sampleMessage(t)
	m.FileName = "mail.receiver.example!example.com!1700000000!1700086399.xml"
	m.Attachment = strings.NewReader(reportXML)
	p := parse(t, compose(t, m))
	if p.attType != "text/xml" || string(p.attachment) != reportXML {
		t.Errorf("attachment %s %q", p.attType, p.attachment)
	}
}

func TestComposeDerivesTheMessageIDFromTheReportID(t *testing.T) {
	tests := []struct {
		name, reportID, messageID, want string
	}{
		{"a report ID with @ is the Message-ID", "r1@mail.receiver.example", "", "r1@mail.receiver.example"},
		{"angle brackets are not doubled", "<r1@mail.receiver.example>", "", "r1@mail.receiver.example"},
		{"a report ID without @ gets the submitter", "1700000000.example.com", "", "1700000000.example.com@mail.receiver.example"},
		{"a given Message-ID wins", "r1", "<retry-safe.1@mail.receiver.example>", "retry-safe.1@mail.receiver.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleMessage(t)
			m.ReportID, m.MessageID = tt.reportID, tt.messageID
			p := parse(t, compose(t, m))
			if id, _ := p.header.MessageID(); id != tt.want {
				t.Errorf("Message-ID = %q, want %q", id, tt.want)
			}
		})
	}
}

func TestComposeAddsHeadersAndLetsAutoSubmittedBeChanged(t *testing.T) {
	m := sampleMessage(t)
	m.Headers = map[string]string{"X-Report-Type": "aggregate", "Auto-Submitted": "auto-generated; dmarc=aggregate", "Keywords": "DMARC"}
	msg := compose(t, m)
	p := parse(t, msg)
	if got := p.header.Get("Auto-Submitted"); got != "auto-generated; dmarc=aggregate" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if p.header.Get("X-Report-Type") != "aggregate" || p.header.Get("Keywords") != "DMARC" {
		t.Errorf("extra fields missing:\n%s", headerOf(msg))
	}

	m = sampleMessage(t)
	m.Headers = map[string]string{"Auto-Submitted": ""}
	if h := headerOf(compose(t, m)); strings.Contains(h, "Auto-Submitted") {
		t.Errorf("Auto-Submitted written although removed:\n%s", h)
	}
}

func TestComposeRefusesInvalidMessages(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Message)
		want   string
	}{
		{"no From address", func(m *Message) { m.FromAddress = "" }, "from"},
		{"a From address with a name", func(m *Message) { m.FromAddress = "Reports <r@example.org>" }, "from"},
		{"a From name with a line break", func(m *Message) { m.FromName = "x\r\nBcc: victim@example.net" }, "line break"},
		{"no recipient", func(m *Message) { m.To = nil }, "no recipients"},
		{"a recipient that is a URI", func(m *Message) { m.To = []string{"mailto:rua@example.com"} }, "to"},
		{"a recipient with a size limit", func(m *Message) { m.To = []string{"rua@example.com!10m"} }, "to"},
		{"a report domain with a space", func(m *Message) { m.ReportDomain = "example.com Submitter: evil" }, "report domain"},
		{"no submitter", func(m *Message) { m.Submitter = "" }, "submitter"},
		{"a report ID with a space", func(m *Message) { m.ReportID = "r 1" }, "report ID"},
		{"no report ID", func(m *Message) { m.ReportID = "" }, "report ID"},
		{"a wrong extension", func(m *Message) { m.FileName = "a!example.com!1!2.zip" }, "extension"},
		{"the RFC 7489 erratum's .gz extension", func(m *Message) { m.FileName = "a!example.com!1!2.gz" }, "extension"},
		{"timestamps that are not digits", func(m *Message) { m.FileName = "a!example.com!2023-11-15!2.xml.gz" }, "digits"},
		{"a unique-id with a dash", func(m *Message) { m.FileName = "a!example.com!1!2!ab-c.xml.gz" }, "unique-id"},
		{"a name without the receiver", func(m *Message) { m.FileName = "example.com!1!2.xml.gz" }, "receiver"},
		{"a name with a quote", func(m *Message) { m.FileName = `a"b!example.com!1!2.xml.gz` }, "characters"},
		{"a name too long for a header line", func(m *Message) {
			m.FileName = "a!" + strings.Repeat("b", 1000) + "!1!2.xml.gz"
		}, "too long"},
		{"no attachment", func(m *Message) { m.Attachment = nil }, "no attachment"},
		{"plain XML named .xml.gz", func(m *Message) { m.Attachment = strings.NewReader(reportXML) }, "not gzip"},
		{"an empty .xml attachment", func(m *Message) {
			m.FileName = "a!example.com!1!2.xml"
			m.Attachment = strings.NewReader("")
		}, "empty"},
		{"a header Compose writes", func(m *Message) { m.Headers = map[string]string{"subject": "x"} }, "cannot be set"},
		{"a Content- header", func(m *Message) { m.Headers = map[string]string{"Content-Type": "text/plain"} }, "cannot be set"},
		{"a header name with a colon", func(m *Message) { m.Headers = map[string]string{"X-A:b": "x"} }, "name"},
		{"a header value with a line break", func(m *Message) { m.Headers = map[string]string{"X-A": "x\r\nBcc: y@example.net"} }, "line break"},
		{"a Message-ID without @", func(m *Message) { m.MessageID = "abc" }, "message ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleMessage(t)
			tt.change(&m)
			var b bytes.Buffer
			err := Compose(&b, m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compose error = %v, want one about %q", err, tt.want)
			}
			if tt.want != "empty" && b.Len() > 0 {
				t.Errorf("wrote %d bytes for an invalid message", b.Len())
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestComposeReportsAnAttachmentThatFailsToRead(t *testing.T) {
	m := sampleMessage(t)
	m.Attachment = io.MultiReader(bytes.NewReader(gzipped(t, reportXML)[:10]), failingReader{})
	err := Compose(io.Discard, m)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Compose error = %v", err)
	}
}

func TestComposeTakesTheDateFromTheClockWhenNotGiven(t *testing.T) {
	m := sampleMessage(t)
	m.Date = time.Time{}
	before := time.Now().Truncate(time.Second)
	p := parse(t, compose(t, m))
	d, err := p.header.Date()
	if err != nil || d.Before(before) || d.After(time.Now()) {
		t.Errorf("Date = %v, %v", d, err)
	}
}

func TestSubjectHasTheRFCForm(t *testing.T) {
	tests := []struct{ domain, submitter, id, want string }{
		{"example.com", "mail.receiver.example", "r1@x", "Report Domain: example.com Submitter: mail.receiver.example Report-ID: <r1@x>"},
		{"example.com", "mail.receiver.example", "<r1@x>", "Report Domain: example.com Submitter: mail.receiver.example Report-ID: <r1@x>"},
		{"example.com", "mail.receiver.example", "", "Report Domain: example.com Submitter: mail.receiver.example"},
	}
	for _, tt := range tests {
		if got := Subject(tt.domain, tt.submitter, tt.id); got != tt.want {
			t.Errorf("Subject(%q, %q, %q) = %q, want %q", tt.domain, tt.submitter, tt.id, got, tt.want)
		}
	}
	// The form parses with mime's decoder unchanged: no encoded words.
	if got, _ := new(mime.WordDecoder).DecodeHeader(tests[0].want); got != tests[0].want {
		t.Error("the subject changed when decoded")
	}
}
