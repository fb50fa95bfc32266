package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dmarcd/dmarcd/internal/postfixtest"
	"github.com/dmarcd/dmarcd/internal/smtptest"
	"github.com/dmarcd/dmarcd/report/store"
)

// reportsTOML is the configuration of a daemon that sends reports to the
// relay at relayAddr, signed with the keys at the paths.
func reportsTOML(relayAddr, rsaPath, edPath string) string {
	return fmt.Sprintf(`
[store]
flush_interval = "100ms"

[reports]
enabled = true
org_name = "dmarcd end-to-end"
from_address = "dmarc-reports@reporter.test"
contact_info = "https://reporter.test/dmarc"
spread = "0s"
retry_backoff = "1m"

[reports.relay]
address = %q
starttls = "none"
timeout = "20s"

[reports.dkim]
domain = "reporter.test"
selector = "rsa"
key = %q
ed25519_selector = "ed"
ed25519_key = %q
`, relayAddr, rsaPath, edPath)
}

// storeMessages returns how many messages the store of a daemon's state
// directory counts, over every domain and hour.
func storeMessages(t *testing.T, state string) int64 {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(state, store.DefaultFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	us, err := db.Unreported(context.Background(), store.UnreportedQuery{Before: time.Now().Add(48 * time.Hour), All: true, Messages: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, u := range us {
		for _, h := range u.Hours {
			n += h.Messages
		}
	}
	return n
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReportsEndToEndWithPostfix sends mail through a real Postfix and
// dmarcd, lets the scheduler's clock run past the day, and checks the
// reports a test relay receives: signed, valid, counting every message,
// sent only to authorized destinations. Then it turns the relay into the
// local Postfix itself and checks that report mail is not reported on.
func TestReportsEndToEndWithPostfix(t *testing.T) {
	dir := t.TempDir()
	rsaPath, edPath, keyRecords := signingKeys(t, dir)
	relay := smtptest.Start(t)
	// dmarc@ext.test defers at first: its delivery is retried later.
	relay.RejectRecipients(func(rcpt string) error {
		if rcpt == "dmarc@ext.test" {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	})
	clk := &offsetClock{}
	s := startStackOpts(t, reportsTOML(relay.Addr(), rsaPath, edPath), postfixtest.Options{}, func(o *Options) {
		o.Now = clk.Now
		o.ReportPoll = 50 * time.Millisecond
	})
	s.dns.Set(append(keyRecords,
		`_dmarc.ext.test. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@ext.test,mailto:agg@reports.elsewhere.test,mailto:x@unauthorized.test"`,
		`ext.test._report._dmarc.reports.elsewhere.test. 300 IN TXT "v=DMARC1"`,
	)...)

	sent := map[string]int64{}
	for i := range 3 {
		r := s.pf.Send(t, postfixtest.Message{From: "x@evil.test", To: []string{"user@mx.dmarcd.test"}, Data: message("ceo@reject.test")})
		if r.Code != 550 {
			t.Fatalf("message %d: %s, want a rejection", i, r.Reply.String())
		}
		sent["reject.test"]++
	}
	for i := range 4 {
		r := s.pf.Send(t, postfixtest.Message{From: "x@evil.test", To: []string{"user@mx.dmarcd.test"}, Data: message("news@ext.test")})
		if !r.Accepted() {
			t.Fatalf("message %d: %s, want accepted (p=none)", i, r.Reply.String())
		}
		sent["ext.test"]++
	}
	waitFor(t, "7 rows in the store", 10*time.Second, func() bool { return storeMessages(t, s.state) == 7 })

	// Two days later, for the scheduler.
	clk.Advance(48 * time.Hour)
	msgs := relay.Wait(t, 2, 20*time.Second)
	time.Sleep(500 * time.Millisecond) // nothing more should come
	msgs = relay.Messages()
	var rcpts []string
	for _, m := range msgs {
		rcpts = append(rcpts, m.To...)
	}
	slices.Sort(rcpts)
	if want := []string{"agg@reports.elsewhere.test", "dmarc@reject.test"}; !slices.Equal(rcpts, want) {
		t.Fatalf("reports went to %v, want %v (x@unauthorized.test has not authorized them; dmarc@ext.test defers)", rcpts, want)
	}
	for _, m := range msgs {
		t.Run("the report to "+m.To[0], func(t *testing.T) {
			if m.From != "dmarc-reports@reporter.test" {
				t.Errorf("envelope sender %q", m.From)
			}
			if signed := verifyDKIM(t, m.Data, s.dns.Addr()); len(signed) != 2 {
				t.Errorf("%d signatures verify, want the RSA and the Ed25519 one", len(signed))
			}
			rm := readReportMail(t, m.Data)
			domain := rm.Report.Policy.Domain
			want := fmt.Sprintf("Report Domain: %s Submitter: reporter.test Report-ID: <%s>", domain, rm.Report.Metadata.ReportID)
			if got := rm.Header.Get("Subject"); got != want {
				t.Errorf("Subject %q, want %q", got, want)
			}
			if from := rm.Header.Get("From"); !strings.Contains(from, "<dmarc-reports@reporter.test>") {
				t.Errorf("From %q", from)
			}
			if rm.Report.Metadata.OrgName != "dmarcd end-to-end" {
				t.Errorf("org_name %q", rm.Report.Metadata.OrgName)
			}
			if got := rm.Report.total(); got != sent[domain] {
				t.Errorf("the report on %s counts %d messages, %d were sent", domain, got, sent[domain])
			}
			if !strings.HasPrefix(rm.FileName, "reporter.test!"+domain+"!") {
				t.Errorf("file name %q", rm.FileName)
			}
			if msg := schemaCheck(t, "rfc7489.xsd", rm.XML); msg != "" {
				t.Errorf("the report does not validate against RFC 7489's schema: %s\n%s", msg, rm.XML)
			}
		})
	}

	t.Run("report mail through the local Postfix is not reported on", func(t *testing.T) {
		// SIGHUP with the relay now the local Postfix: the deferred
		// delivery goes there, from 127.0.0.1, which ignore.hosts lists.
		conf, err := os.ReadFile(s.conf)
		if err != nil {
			t.Fatal(err)
		}
		conf = []byte(strings.Replace(string(conf), fmt.Sprintf("address = %q", relay.Addr()), fmt.Sprintf("address = %q", s.pf.SMTPAddr()), 1))
		if err := os.WriteFile(s.conf, conf, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the reload", 10*time.Second, func() bool { return strings.Contains(s.logs.String(), "configuration reloaded") })
		rows := len(s.sink.Rows())
		clk.Advance(time.Hour) // past the retry
		got := s.pf.Delivered(t, "dmarc@ext.test", 20*time.Second)
		if len(got) != 1 {
			t.Fatalf("%d reports delivered to dmarc@ext.test through Postfix, want 1", len(got))
		}
		if sub := got[0].Header.Get("Subject"); !strings.HasPrefix(sub, "Report Domain: ext.test Submitter: reporter.test") {
			t.Errorf("Subject %q", sub)
		}
		if signed := verifyDKIM(t, got[0].Raw, s.dns.Addr()); len(signed) != 2 {
			t.Errorf("%d signatures survive Postfix, want 2", len(signed))
		}
		if rm := readReportMail(t, got[0].Raw); rm.Report.total() != sent["ext.test"] {
			t.Errorf("the retried report counts %d messages, want %d", rm.Report.total(), sent["ext.test"])
		}
		if n := len(s.sink.Rows()); n != rows {
			t.Errorf("%d rows recorded for our own report mail", n-rows)
		}
		if !strings.Contains(s.pf.Log(), "127.0.0.1") {
			t.Logf("postfix log:\n%s", s.pf.Log())
		}
	})
}
