package aggregate

import (
	"encoding/base64"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// mimeBase64 encodes b as a MIME body part does: 76-character lines, CRLF.
func mimeBase64(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var s strings.Builder
	for len(enc) > 76 {
		s.WriteString(enc[:76])
		s.WriteString("\r\n")
		enc = enc[76:]
	}
	if enc != "" {
		s.WriteString(enc)
		s.WriteString("\r\n")
	}
	return s.String()
}

func TestMIMESize(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 56, 57, 58, 113, 114, 115, 1000, 65536, 1 << 20} {
		want := len(mimeBase64(make([]byte, n)))
		if got := MIMESize(int64(n)); got != int64(want) {
			t.Errorf("MIMESize(%d) = %d, want %d", n, got, want)
		}
	}
	if MIMESize(-1) != 0 {
		t.Error("MIMESize(-1) != 0")
	}
}

func TestFits(t *testing.T) {
	// 57 bytes are one 76-character line plus CRLF: 78 bytes.
	tests := []struct {
		size  int64
		limit uint64
		want  bool
	}{
		{57, 0, true},
		{57, 78, true},
		{57, 77, false},
		{1 << 30, 0, true},
		{18 << 20, DefaultMaxSize, true},  // 18 MiB encode to 24.7 MiB
		{19 << 20, DefaultMaxSize, false}, // and 19 MiB to 26 MiB
		{10 << 20, 10 << 20, false},       // !10m refuses 10 MiB of gzip
		{math.MaxInt64 / 2, math.MaxUint64, true},
	}
	for _, tc := range tests {
		if got := Fits(tc.size, tc.limit); got != tc.want {
			t.Errorf("Fits(%d, %d) = %v, want %v (encoded %d)", tc.size, tc.limit, got, tc.want, MIMESize(tc.size))
		}
	}
}

func TestPlanDelivery(t *testing.T) {
	big := Destination{URI: "mailto:big@example.com", MaxSize: 0}
	small := Destination{URI: "mailto:small@example.com!10k", MaxSize: 10 << 10}
	tiny := Destination{URI: "mailto:tiny@example.org!1k", MaxSize: 1 << 10}
	str := func(ds []Destination) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.URI)
		}
		return fmt.Sprint(s)
	}
	tests := []struct {
		name          string
		f             Format
		size          int64
		max           uint64
		dests         []Destination
		send, refused string
		notify        bool
	}{
		{"all fit", RFC7489, 500, 0, []Destination{big, small, tiny}, "[mailto:big@example.com mailto:small@example.com!10k mailto:tiny@example.org!1k]", "[]", false},
		{"one refuses", RFC7489, 5000, 0, []Destination{big, small, tiny}, "[mailto:big@example.com mailto:small@example.com!10k]", "[mailto:tiny@example.org!1k]", false},
		{"all refuse: notice", RFC7489, 50000, 0, []Destination{small, tiny}, "[]", "[mailto:small@example.com!10k mailto:tiny@example.org!1k]", true},
		{"over our maximum: notice", RFC7489, 50000, 20000, []Destination{big}, "[]", "[mailto:big@example.com]", true},
		{"RFC 9990 has no notice", RFC9990, 50000, 20000, []Destination{big}, "[]", "[mailto:big@example.com]", false},
		{"RFC 9990 honours a !size kept by the parser", RFC9990, 5000, 0, []Destination{big, tiny}, "[mailto:big@example.com]", "[mailto:tiny@example.org!1k]", false},
		{"default maximum", RFC7489, 19 << 20, 0, []Destination{big}, "[]", "[mailto:big@example.com]", true},
		{"no destinations", RFC7489, 10, 0, nil, "[]", "[]", false},
	}
	for _, tc := range tests {
		p := PlanDelivery(tc.f, tc.size, tc.max, tc.dests)
		if str(p.Send) != tc.send || str(p.Refused) != tc.refused || p.Notify != tc.notify {
			t.Errorf("%s: send %s refused %s notify %v; want %s %s %v", tc.name, str(p.Send), str(p.Refused), p.Notify, tc.send, tc.refused, tc.notify)
		}
		if p.Size != MIMESize(tc.size) {
			t.Errorf("%s: size %d, want %d", tc.name, p.Size, MIMESize(tc.size))
		}
	}
}

func TestErrorReportText(t *testing.T) {
	e := ErrorReport{
		Date:      time.Date(2026, 5, 2, 0, 5, 0, 0, time.UTC),
		Domain:    "example.com",
		ReportID:  "R1",
		Size:      MIMESize(50000),
		Submitter: "mx.example.net\r\nBcc: evil@example.org",
		URIs:      []string{"mailto:small@example.com!10k", "mailto:tiny@example.org!1k"},
	}
	want := "Report-Date: Sat, 02 May 2026 00:05:00 +0000\r\n" +
		"Report-Domain: example.com\r\n" +
		"Report-ID: R1\r\n" +
		"Report-Size: 68424\r\n" +
		"Submitter: mx.example.net  Bcc: evil@example.org\r\n" +
		"Submitting-URI: mailto:small@example.com!10k, mailto:tiny@example.org!1k\r\n"
	if got := e.Text(); got != want {
		t.Errorf("Text() =\n%s\nwant\n%s", got, want)
	}
}
