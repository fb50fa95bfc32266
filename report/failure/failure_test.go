package failure

import (
	"bytes"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report/failure/failuretest"
)

func record(t *testing.T, txt string, spec dmarc.Spec) *dmarc.Record {
	t.Helper()
	r, err := dmarc.Parse(txt, spec)
	if err != nil {
		t.Fatalf("Parse(%q): %v", txt, err)
	}
	return r
}

func TestWanted(t *testing.T) {
	const ruf = "; ruf=mailto:ruf@example.com"
	spfFail := dmarc.Identifier{Domain: "example.com", Result: dmarc.AuthFail}
	spfPass := dmarc.Identifier{Domain: "example.com", Result: dmarc.AuthPass, Aligned: true}
	dkimPass := []dmarc.Identifier{{Domain: "example.com", Result: dmarc.AuthPass, Aligned: true}}
	dkimFail := []dmarc.Identifier{{Domain: "example.com", Result: dmarc.AuthFail}}
	dkimFailOther := []dmarc.Identifier{{Domain: "example.com", Result: dmarc.AuthPass, Aligned: true}, {Domain: "other.example", Result: dmarc.AuthFail}}
	tests := []struct {
		name    string
		rec     string
		spec    dmarc.Spec
		outcome dmarc.Outcome
		spf     dmarc.Identifier
		dkim    []dmarc.Identifier
		want    bool
	}{
		{"fo=0 reports a message nothing aligned for", "v=DMARC1; p=reject" + ruf, dmarc.RFC9989, dmarc.OutcomeFail, spfFail, dkimFail, true},
		{"fo=0 does not report a message SPF aligned for", "v=DMARC1; p=reject" + ruf, dmarc.RFC9989, dmarc.OutcomePass, spfPass, dkimFail, false},
		{"fo=1 reports a pass where DKIM did not align", "v=DMARC1; p=reject; fo=1" + ruf, dmarc.RFC9989, dmarc.OutcomePass, spfPass, dkimFail, true},
		{"fo=1 does not report a message both aligned for", "v=DMARC1; p=reject; fo=1" + ruf, dmarc.RFC9989, dmarc.OutcomePass, spfPass, dkimPass, false},
		{"fo=d reports a failed signature of another domain", "v=DMARC1; p=reject; fo=d" + ruf, dmarc.RFC9989, dmarc.OutcomePass, spfPass, dkimFailOther, true},
		{"fo=d does not report a failure without signatures", "v=DMARC1; p=reject; fo=d" + ruf, dmarc.RFC9989, dmarc.OutcomeFail, spfFail, nil, false},
		{"fo=s reports an SPF failure", "v=DMARC1; p=reject; fo=s" + ruf, dmarc.RFC9989, dmarc.OutcomePass, spfFail, dkimPass, true},
		{"fo=s does not report an SPF pass", "v=DMARC1; p=reject; fo=s" + ruf, dmarc.RFC9989, dmarc.OutcomeFail, spfPass, dkimFail, false},
		{"a record without ruf gets no report", "v=DMARC1; p=reject; fo=1", dmarc.RFC9989, dmarc.OutcomeFail, spfFail, dkimFail, false},
		{"rf=iodef alone gets no report under RFC 7489", "v=DMARC1; p=reject; rf=iodef" + ruf, dmarc.RFC7489, dmarc.OutcomeFail, spfFail, dkimFail, false},
		{"rf=afrf gets a report under RFC 7489", "v=DMARC1; p=reject; rf=afrf" + ruf, dmarc.RFC7489, dmarc.OutcomeFail, spfFail, dkimFail, true},
		{"a temperror gets no report", "v=DMARC1; p=reject" + ruf, dmarc.RFC9989, dmarc.OutcomeTempError, spfFail, dkimFail, false},
		{"a public suffix domain's ruf (psd=y) gets no report", "v=DMARC1; p=reject; psd=y" + ruf, dmarc.RFC9989, dmarc.OutcomeFail, spfFail, dkimFail, false},
		{"psd=n gets a report", "v=DMARC1; p=reject; psd=n" + ruf, dmarc.RFC9989, dmarc.OutcomeFail, spfFail, dkimFail, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := record(t, tc.rec, tc.spec)
			res := &dmarc.Result{Outcome: tc.outcome, Record: rec, Policy: rec.P, SPF: tc.spf, DKIM: tc.dkim,
				SPFAligned: tc.spf.Aligned}
			for _, k := range tc.dkim {
				res.DKIMAligned = res.DKIMAligned || k.Aligned
			}
			if got, why := Wanted(res, true); got != tc.want {
				t.Errorf("Wanted = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

func TestWantedLeavesOutPolicyNoneWhenAsked(t *testing.T) {
	rec := record(t, "v=DMARC1; p=none; ruf=mailto:ruf@example.com", dmarc.RFC9989)
	res := &dmarc.Result{Outcome: dmarc.OutcomeFail, Record: rec, Policy: dmarc.PolicyNone}
	if ok, _ := Wanted(res, false); ok {
		t.Error("p=none reported with on_policy_none off")
	}
	if ok, _ := Wanted(res, true); !ok {
		t.Error("p=none not reported with on_policy_none on")
	}
}

func TestExempt(t *testing.T) {
	tests := []struct {
		name     string
		mailFrom string
		fields   []Field
		want     bool
	}{
		{"an ordinary message is not exempt", "a@example.com", []Field{{"Subject", " hello"}}, false},
		{"a bounce is exempt", "", nil, true},
		{"an auto-generated message is exempt", "a@example.com", []Field{{"Auto-Submitted", " auto-generated"}}, true},
		{"Auto-Submitted: no is not exempt", "a@example.com", []Field{{"Auto-Submitted", " no (a person)"}}, false},
		{"a DSN is exempt", "a@example.com", []Field{{"Content-Type", " multipart/report; report-type=delivery-status"}}, true},
		{"an aggregate report is exempt", "a@example.com", []Field{{"Subject", " Report Domain: example.com Submitter: mx.example.net Report-ID: <1>"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := Exempt(tc.mailFrom, tc.fields); got != tc.want {
				t.Errorf("Exempt = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

func TestRedactAddresses(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a bare address loses its local part", " alice@example.com", " redacted@example.com"},
		{"a display name stays", ` "Alice" <alice.smith+x@example.com>`, ` "Alice" <redacted@example.com>`},
		{"every address of a list goes", " a@x.example, b@y.example", " redacted@x.example, redacted@y.example"},
		{"a quoted local part goes whole", ` <"john doe"@example.com>`, ` <redacted@example.com>`},
		{"a domain alone stays", " @example.com", " @example.com"},
		{"an SRS address keeps its structure, not its mailbox", " SRS0=HHH=TT=example.org=alice@fwd.example", " SRS0=HHH=TT=example.org=redacted@fwd.example"},
		{"a DKIM i= loses its mailbox", " d=example.org; i=alice@example.org;", " d=example.org; i=redacted@example.org;"},
		{"text without addresses stays", " hello world", " hello world"},
		{"a trailing at sign is left", " what@", " what@"},
		{"an unterminated quote is a separator", ` x"y@example.com`, ` x"redacted@example.com`},
	}
	r := Redactor{LocalParts: true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.addresses(tc.in); got != tc.want {
				t.Errorf("addresses(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRedactWithAKeyGivesOneTokenPerMailbox(t *testing.T) {
	r := Redactor{LocalParts: true, Key: []byte("k")}
	a, b, c := r.addresses("Alice@x.example"), r.addresses("alice@y.example"), r.addresses("bob@x.example")
	if !strings.HasPrefix(a, "redacted-") || strings.Contains(a, "lice") {
		t.Fatalf("token %q", a)
	}
	if strings.Split(a, "@")[0] != strings.Split(b, "@")[0] || strings.Split(a, "@")[0] == strings.Split(c, "@")[0] {
		t.Errorf("tokens %q %q %q: want the same for one local part, different for another", a, b, c)
	}
}

func TestRedactKeepsMessageIDsAndHidesChosenFields(t *testing.T) {
	inc := Incident{
		MailFrom: "bounce@spoof.example",
		RcptTo:   []string{"alice@example.net"},
		Headers: []Field{
			{"From", " Billing <billing@example.org>"},
			{"Subject", " Your invoice"},
			{"Message-ID", " <4711@spoof.example>"},
			{"DKIM-Signature", " d=example.org; i=billing@example.org; b=AAAA"},
		},
	}
	got := Redactor{LocalParts: true, Headers: []string{"subject"}}.Redact(inc)
	want := []Field{{"From", " Billing <redacted@example.org>"}, {"Subject", " [redacted]"}, {"Message-ID", " <4711@spoof.example>"},
		{"DKIM-Signature", " d=example.org; i=redacted@example.org; b=AAAA"}}
	for i := range want {
		if got.Headers[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, got.Headers[i], want[i])
		}
	}
	if got.MailFrom != "redacted@spoof.example" || got.RcptTo[0] != "redacted@example.net" {
		t.Errorf("envelope %q %q", got.MailFrom, got.RcptTo)
	}
	if inc.Headers[0].Value != " Billing <billing@example.org>" || inc.RcptTo[0] != "alice@example.net" {
		t.Error("Redact changed its input")
	}
}

func sample() Incident {
	return Incident{
		Spec: "rfc9989", PolicyDomain: "example.org", FromDomain: "example.org",
		Arrival:  time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC),
		SourceIP: netip.MustParseAddr("203.0.113.77"), MailFrom: "bounce@spoof.example",
		RcptTo: []string{"alice@example.net"}, AuthServID: "mx.example.net",
		DMARC: "fail", DeliveryResult: "reject",
		SPF:  Auth{Domain: "spoof.example", Scope: "mfrom", Result: "pass"},
		DKIM: []Auth{{Domain: "example.org", Selector: "s1", Result: "fail"}},
		Headers: []Field{
			{"From", " Billing <billing@example.org>"},
			{"To", " alice@example.net"},
			{"Subject", " Your invoice"},
			{"Message-ID", " <4711@spoof.example>"},
			{"DKIM-Signature", " v=1; a=rsa-sha256; d=example.org; s=s1;\r\n\ti=@example.org; h=from; bh=AAAA; b=BBBB"},
		},
		SPFDNS: "v=spf1 -all",
		Body:   []byte("Pay now.\r\n"),
		RUF:    []Destination{{Raw: "mailto:ruf@example.org", Address: "ruf@example.org"}},
	}
}

func TestComposeWritesAnRFC6591Report(t *testing.T) {
	for _, whole := range []bool{false, true} {
		name := "with the header section"
		if whole {
			name = "with the whole message"
		}
		t.Run(name, func(t *testing.T) {
			msg, err := Compose(sample(), ComposeOptions{
				FromName: "DMARC failure reports", FromAddress: "dmarc@mx.example.net", To: []string{"ruf@example.org"},
				MessageID: "failure-1@mx.example.net", UserAgent: "dmarcd/test", ReportingMTA: "mx.example.net",
				WholeMessage: whole,
			})
			if err != nil {
				t.Fatal(err)
			}
			e, err := message.Read(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			mt, params, _ := e.Header.ContentType()
			if mt != "multipart/report" || params["report-type"] != "feedback-report" {
				t.Fatalf("Content-Type %s %v", mt, params)
			}
			mr := e.MultipartReader()
			var types []string
			var fb textproto.Header
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				ct, _, _ := p.Header.ContentType()
				types = append(types, ct)
				if ct == "message/feedback-report" {
					fb, err = textproto.ReadHeader(bufioReader(p.Body))
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			third := "text/rfc822-headers"
			if whole {
				third = "message/rfc822"
			}
			if strings.Join(types, " ") != "text/plain message/feedback-report "+third {
				t.Errorf("parts %v", types)
			}
			for k, v := range map[string]string{
				"Feedback-Type": "auth-failure", "Auth-Failure": "dmarc", "Version": "1",
				"Identity-Alignment": "dkim, spf", "Source-IP": "203.0.113.77", "Reported-Domain": "example.org",
				"Delivery-Result": "reject", "Original-Mail-From": "<bounce@spoof.example>",
				"Original-Rcpt-To": "<alice@example.net>", "DKIM-Domain": "example.org", "DKIM-Selector": "s1",
				"Arrival-Date": "Fri, 01 May 2026 10:00:00 +0000", "User-Agent": "dmarcd/test",
				"DKIM-Identity": "@example.org", "SPF-DNS": `txt : spoof.example : "v=spf1 -all"`,
			} {
				if got := fb.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if bytes.Contains(msg, []byte("Pay now")) != whole {
				t.Errorf("body present = %v, want %v", !whole, whole)
			}
			// Our own reader of reports others send must read ours.
			if f := failuretest.Read(t, msg); f.ReportedDomain != "example.org" || f.AuthFailure != "dmarc" || f.OriginalMessageID == "" {
				t.Errorf("ingest read %+v", f)
			}
		})
	}
}

func TestComposeRefusesFieldInjection(t *testing.T) {
	inc := sample()
	inc.FromDomain = "example.org\r\nBcc: victim@example.com"
	inc.Helo = "x\r\nEvil: 1"
	msg, err := Compose(inc, ComposeOptions{FromAddress: "dmarc@mx.example.net", To: []string{"ruf@example.org"}, MessageID: "a@b"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg, []byte("\r\nBcc:")) {
		t.Error("a From domain added a field")
	}
	if _, err := Compose(inc, ComposeOptions{FromAddress: "dmarc@mx.example.net", To: []string{"ruf@example.org\r\nBcc: x@y"}, MessageID: "a@b"}); err == nil {
		t.Error("a recipient with CRLF was accepted")
	}
}

func TestIdentityAlignmentNamesTheMechanismsThatFailedToAlign(t *testing.T) {
	tests := []struct {
		name string
		inc  Incident
		want string
	}{
		{"neither aligned", Incident{}, "dkim, spf"},
		{"SPF aligned", Incident{SPF: Auth{Aligned: true}}, "dkim"},
		{"DKIM aligned", Incident{DKIM: []Auth{{Aligned: true}}}, "spf"},
		{"both aligned", Incident{SPF: Auth{Aligned: true}, DKIM: []Auth{{}, {Aligned: true}}}, "none"},
	}
	for _, tc := range tests {
		if got := IdentityAlignment(tc.inc); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDedupKeyIsOnePerMessageAndDestination(t *testing.T) {
	a, b := sample(), sample()
	b.RcptTo = []string{"bob@example.net"}
	if !bytes.Equal(DedupKey(a, "ruf@example.org"), DedupKey(b, "ruf@example.org")) {
		t.Error("the same message to another recipient gave another key")
	}
	if bytes.Equal(DedupKey(a, "ruf@example.org"), DedupKey(a, "other@example.org")) {
		t.Error("two destinations gave one key")
	}
	b.Headers = append([]Field(nil), a.Headers...)
	b.Headers[3] = Field{"Message-ID", " <4712@spoof.example>"}
	if bytes.Equal(DedupKey(a, "ruf@example.org"), DedupKey(b, "ruf@example.org")) {
		t.Error("two messages gave one key")
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"a@b.c", `"x y"@z`, "@@@", `\"@x`, "<a@b>, c@d", "é@ü.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Redactor{LocalParts: true, Key: []byte("k")}
		out := r.addresses(s)
		if !strings.Contains(s, "@") && out != s {
			t.Fatalf("text without @ changed: %q -> %q", s, out)
		}
		// A quoted local part may hold an "@" of its own; none is added.
		if strings.Count(out, "@") > strings.Count(s, "@") {
			t.Fatalf("at signs added: %q -> %q", s, out)
		}
		// Without a key every local part becomes the same token, so a
		// second pass changes nothing.
		plain := Redactor{LocalParts: true}
		once := plain.addresses(s)
		if again := plain.addresses(once); again != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, again)
		}
	})
}
