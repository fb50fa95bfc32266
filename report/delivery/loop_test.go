package delivery

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-message/textproto"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

func TestIsAutoSubmittedFollowsRFC3834(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"auto-generated", true},
		{"auto-replied", true},
		{"Auto-Generated", true},
		{"auto-notified; owner-email=\"me@example.com\"", true},
		{"auto-generated (DMARC aggregate report)", true},
		{"no", false},
		{"No", false},
		{" no (a person wrote this) ", false},
		{"(comment only)", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsAutoSubmitted(tt.value); got != tt.want {
			t.Errorf("IsAutoSubmitted(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestParseSubjectReadsReportSubjects(t *testing.T) {
	tests := []struct {
		name, subject         string
		domain, submitter, id string
		ok                    bool
	}{
		{"ours", Subject("example.com", "mail.receiver.example", "r1@x"), "example.com", "mail.receiver.example", "r1@x", true},
		{"RFC 9990's example, unfolded", "Report Domain: example.com\r\n    Submitter: mail.receiver.example\r\n    Report-ID: <sample-ridtxt@example.com>",
			"example.com", "mail.receiver.example", "sample-ridtxt@example.com", true},
		{"Google's lower-case keyword and bare ID", "Report domain: borschow.com Submitter: google.com Report-ID: 949348866075514174",
			"borschow.com", "google.com", "949348866075514174", true},
		{"no Report-ID", "Report Domain: example.com Submitter: example.net", "example.com", "example.net", "", true},
		{"an empty Report-ID", "Report domain: ab.id.au Submitter: mimecast.org Report-ID:", "ab.id.au", "mimecast.org", "", true},
		{"a reply", "Re: Report Domain: example.com Submitter: example.net", "", "", "", false},
		{"a failure report", "DMARC Failure Report for domain.de", "", "", "", false},
		{"trailing words", "Report Domain: example.com Submitter: example.net Report-ID: <a@b> extra", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, s, id, ok := ParseSubject(tt.subject)
			if d != tt.domain || s != tt.submitter || id != tt.id || ok != tt.ok {
				t.Errorf("ParseSubject(%q) = %q, %q, %q, %v", tt.subject, d, s, id, ok)
			}
		})
	}
}

func TestParseSubjectReadsRealReportsAndNoFailureReport(t *testing.T) {
	dir := testenv.ReferenceDir(t, ".")
	for kind, want := range map[string]bool{"aggregate": true, "failure": false} {
		files, _ := filepath.Glob(filepath.Join(dir, "reports", kind, "*.eml"))
		if len(files) == 0 {
			t.Fatalf("no %s .eml in %s", kind, dir)
		}
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(fh)
			if head, _ := br.Peek(5); string(head) == "From " { // an mbox separator
				br.ReadString('\n')
			}
			h, err := textproto.ReadHeader(br)
			fh.Close()
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			subject := h.Get("Subject")
			if _, _, _, ok := ParseSubject(subject); ok != want {
				t.Errorf("%s: ParseSubject(%q) ok = %v, want %v", filepath.Base(f), subject, ok, want)
			}
		}
	}
}
