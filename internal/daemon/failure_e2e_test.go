package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/postfixtest"
	"github.com/dmarcd/dmarcd/internal/smtptest"
	"github.com/dmarcd/dmarcd/report/failure/failuretest"
)

// TestFailureReportsEndToEndWithPostfix sends a failing message through a
// real Postfix and dmarcd and checks the failure report a test relay
// receives: exactly one, an RFC 6591 report go-message reads, redacted,
// with DKIM signatures that verify. A message whose policy has no ruf, and
// one whose ruf is an external destination that never authorized it, get
// none.
func TestFailureReportsEndToEndWithPostfix(t *testing.T) {
	dir := t.TempDir()
	rsaPath, edPath, keyRecords := signingKeys(t, dir)
	relay := smtptest.Start(t)
	s := startStackOpts(t, reportsTOML(relay.Addr(), rsaPath, edPath)+`
[failure_reports]
enabled = true
redact_headers = ["Subject"]
`, postfixtest.Options{}, func(o *Options) { o.ReportPoll = 50 * time.Millisecond })
	s.dns.Set(append(keyRecords,
		`_dmarc.failrep.test. 300 IN TXT "v=DMARC1; p=reject; ruf=mailto:ruf@failrep.test"`,
		`_dmarc.extruf.test. 300 IN TXT "v=DMARC1; p=reject; ruf=mailto:ruf@elsewhere.test"`,
	)...)

	for _, from := range []string{"ceo@reject.test", "ceo@extruf.test", "ceo@failrep.test"} {
		r := s.pf.Send(t, postfixtest.Message{From: "x@evil.test", To: []string{"user@mx.dmarcd.test"}, Data: message(from)})
		if r.Code != 550 {
			t.Fatalf("%s: %s, want a rejection", from, r.Reply.String())
		}
	}
	msgs := relay.Wait(t, 1, 20*time.Second)
	waitFor(t, "the unauthorized destination to be dropped", 10*time.Second, func() bool {
		return strings.Contains(s.logs.String(), "destination not authorized")
	})
	time.Sleep(300 * time.Millisecond) // nothing more should come
	if msgs = relay.Messages(); len(msgs) != 1 {
		t.Fatalf("%d reports at the relay, want exactly 1", len(msgs))
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "ruf@failrep.test" || m.From != "dmarc-reports@reporter.test" {
		t.Errorf("envelope %s -> %v", m.From, m.To)
	}
	if signed := verifyDKIM(t, m.Data, s.dns.Addr()); len(signed) != 2 {
		t.Errorf("%d signatures verify, want the RSA and the Ed25519 one", len(signed))
	}
	rep := failuretest.Read(t, m.Data)
	for k, want := range map[string]string{
		"Feedback-Type": "auth-failure", "Auth-Failure": "dmarc", "Reported-Domain": "failrep.test",
		"Delivery-Result": "reject", "Original-Mail-From": "<redacted-", "Original-Rcpt-To": "<redacted-",
	} {
		if got := rep.Field(k); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(rep.Headers, "@failrep.test>") || strings.Contains(rep.Headers, "ceo@") || !strings.Contains(rep.Headers, "Subject: [redacted]") {
		t.Errorf("the original header section is not redacted:\n%s", rep.Headers)
	}
}
