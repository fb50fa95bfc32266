package milter

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/dnstest"
	"github.com/dmarcd/dmarcd/internal/smtptest"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/failure"
	"github.com/dmarcd/dmarcd/report/failure/failuretest"
	"github.com/dmarcd/dmarcd/report/failure/outbound"
	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// failureDNS are the policies of the failure report tests.
var failureDNS = map[string][]string{
	"_dmarc.failing.example":  {"v=DMARC1; p=reject; ruf=mailto:ruf@failing.example"},
	"_dmarc.fo1.example":      {"v=DMARC1; p=none; fo=1; ruf=mailto:ruf@fo1.example"},
	"_dmarc.noruf.example":    {"v=DMARC1; p=reject; rua=mailto:rua@noruf.example"},
	"_dmarc.external.example": {"v=DMARC1; p=reject; ruf=mailto:ruf@thirdparty.example"},
	"_dmarc.none.example":     {"v=DMARC1; p=none; ruf=mailto:ruf@none.example"},
	"spoof.example":           {"v=spf1 ip4:198.51.100.0/24 -all"},
}

// incidents records what the milter hands its failure sink.
type incidents struct {
	mu   sync.Mutex
	list []failure.Incident
}

func (s *incidents) Add(inc failure.Incident) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, inc)
	return true
}

func (s *incidents) all() []failure.Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]failure.Incident(nil), s.list...)
}

func failingMessage(from, ar string) msg {
	return msg{
		mailFrom: "bounce@spoof.example",
		rcpts:    []string{"alice@mx.test"},
		headers: headers(
			"Authentication-Results: border.test; "+ar,
			"From: Billing <billing@"+from+">",
			"To: Alice <alice@mx.test>",
			"Subject: Your invoice",
			"Message-ID: <4711@spoof.example>",
		),
	}
}

const bothFail = "spf=fail smtp.mailfrom=spoof.example; dkim=fail header.d=failing.example header.s=s1"

func TestFailureIncidents(t *testing.T) {
	tests := []struct {
		name string
		m    msg
		tune func(*Config)
		want int
	}{
		{"a failing message whose policy has a ruf makes one incident", failingMessage("failing.example", bothFail), nil, 1},
		{"a message passing both mechanisms under fo=1 makes none", func() msg {
			m := failingMessage("fo1.example", "spf=pass smtp.mailfrom=fo1.example; dkim=pass header.d=fo1.example header.s=s1")
			m.mailFrom = "bounce@fo1.example"
			return m
		}(), nil, 0},
		{"a message passing by SPF alone under fo=1 makes one", func() msg {
			m := failingMessage("fo1.example", "spf=pass smtp.mailfrom=fo1.example; dkim=fail header.d=fo1.example header.s=s1")
			m.mailFrom = "bounce@fo1.example"
			return m
		}(), nil, 1},
		{"a policy without ruf makes none", failingMessage("noruf.example", bothFail), nil, 0},
		{"a bounce makes none", func() msg { m := failingMessage("failing.example", bothFail); m.mailFrom = ""; return m }(), nil, 0},
		{"an auto-generated message makes none", func() msg {
			m := failingMessage("failing.example", bothFail)
			m.headers = append(m.headers, [2]string{"Auto-Submitted", "auto-replied"})
			return m
		}(), nil, 0},
		{"p=none makes none when on_policy_none is off", failingMessage("none.example", bothFail),
			func(c *Config) { c.FailureReportsOnNone = false }, 0},
		{"p=none makes one when on_policy_none is on", failingMessage("none.example", bothFail), nil, 1},
		{"nothing is made with failure reports off", failingMessage("failing.example", bothFail),
			func(c *Config) { c.FailureReports = false }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &incidents{}
			e := startDeps(t, Strict, func(c *Config) {
				c.FailureReports, c.FailureReportsOnNone = true, true
				if tc.tune != nil {
					tc.tune(c)
				}
			}, Deps{Evaluator: newEvaluator(dmarc.RFC9989, failureDNS, nil), Failures: sink})
			e.send(tc.m)
			got := sink.all()
			if len(got) != tc.want {
				t.Fatalf("%d incidents, want %d", len(got), tc.want)
			}
			if tc.want == 0 {
				return
			}
			inc := got[0]
			if inc.SourceIP.String() != "192.0.2.10" || inc.MailFrom != tc.m.mailFrom || inc.AuthServID != "mx.test" ||
				len(inc.RUF) != 1 || inc.Body != nil {
				t.Errorf("incident %+v", inc)
			}
			if h := fieldValue(inc.Headers, "Subject"); h != " Your invoice" {
				t.Errorf("Subject kept as %q", h)
			}
		})
	}
}

func fieldValue(fs []failure.Field, name string) string {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

func TestFailureIncidentsKeepTheBodyOnlyWhenAsked(t *testing.T) {
	sink := &incidents{}
	e := startDeps(t, Strict, func(c *Config) {
		c.FailureReports, c.FailureReportsBody, c.FailureReportsMaxBody = true, true, 1000
	}, Deps{Evaluator: newEvaluator(dmarc.RFC9989, failureDNS, nil), Failures: sink})
	e.send(failingMessage("failing.example", bothFail))
	got := sink.all()
	if len(got) != 1 || string(got[0].Body) != "Hello.\r\n" {
		t.Fatalf("incidents %+v, want one with the body", got)
	}
	if v := fieldValue(got[0].Headers, "Subject"); strings.TrimSpace(v) != "Your invoice" {
		t.Errorf("Subject %q", v)
	}
}

// TestAFailingMessageGivesOneSignedRedactedReport runs the whole path: the
// milter, the store's queue, the sender, DKIM signing and the relay.
func TestAFailingMessageGivesOneSignedRedactedReport(t *testing.T) {
	ctx := context.Background()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer := delivery.Signer{Domain: "mx.test", Selector: "rep", Key: key}
	rec, err := delivery.DNSRecord(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv := dnstest.Start(t, "mx.test. 300 IN SOA ns.mx.test. hostmaster.mx.test. 1 3600 600 86400 300",
		dnstest.TXT("rep._domainkey.mx.test.", rec))
	cache, err := dnscache.New(dnscache.Config{Nameservers: []string{dnsSrv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}

	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), store.DefaultFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	relay := smtptest.Start(t)
	ev := newEvaluator(dmarc.RFC9989, failureDNS, nil)
	log := slog.New(slog.DiscardHandler)
	sender, err := outbound.NewSender(outbound.Config{
		Enabled: true, FromName: "DMARC failure reports", FromAddress: "dmarc@mx.test",
		PerDomain: scheduler.Rate{N: 10, Per: time.Hour}, UserAgent: "dmarcd/test", ReportingMTA: "mx.test",
		Signers: []delivery.Signer{signer},
	}, outbound.SenderDeps{Store: db, Verifier: ev, Resolver: ev.Resolver,
		Sender: delivery.Relay{Addr: relay.Addr(), StartTLS: delivery.StartTLSNone}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	queue := outbound.NewQueue(db, outbound.QueueConfig{Redactor: failure.Redactor{LocalParts: true, Headers: []string{"Subject"}}},
		100, nil, log)

	e := startDeps(t, Strict, func(c *Config) { c.FailureReports = true },
		Deps{Evaluator: ev, Failures: queue})
	e.send(failingMessage("failing.example", bothFail))
	// The same message in a second transaction, and a message whose
	// policy names an external ruf that never authorized it.
	e.send(failingMessage("failing.example", bothFail))
	e.send(failingMessage("external.example", bothFail))
	if err := queue.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sum, err := sender.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 1 || sum.Dropped[outbound.ReasonUnauthorized] != 1 {
		t.Errorf("run %+v: want one sent, one unauthorized", sum)
	}
	if st := queue.Stats(); st.Duplicates != 1 {
		t.Errorf("queue %+v: want the second transaction deduplicated", st)
	}
	msgs := relay.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d reports at the relay, want exactly 1", len(msgs))
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "ruf@failing.example" || m.From != "dmarc@mx.test" {
		t.Errorf("envelope %s -> %v", m.From, m.To)
	}

	vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return cache.LookupTXT(ctx, name) },
	})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "mx.test" {
		t.Fatalf("DKIM: %v %+v", err, vs)
	}

	rep := failuretest.Read(t, m.Data)
	for k, want := range map[string]string{
		"Feedback-Type": "auth-failure", "Auth-Failure": "dmarc", "Version": "1", "Reported-Domain": "failing.example",
		"Source-IP": "192.0.2.10", "Delivery-Result": "reject", "Identity-Alignment": "dkim, spf",
		"Original-Mail-From": "<redacted@spoof.example>", "Original-Rcpt-To": "<redacted@mx.test>",
		"DKIM-Domain": "failing.example", "DKIM-Selector": "s1",
		"SPF-DNS": `txt : spoof.example : "v=spf1 ip4:198.51.100.0/24 -all"`,
	} {
		if got := rep.Field(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	for _, gone := range []string{"billing@", "alice@", "Your invoice"} {
		if bytes.Contains(m.Data, []byte(gone)) {
			t.Errorf("the report shows %q, which redaction should have hidden", gone)
		}
	}
	if !strings.Contains(rep.Headers, "From: Billing <redacted@failing.example>") || !strings.Contains(rep.Headers, "Subject: [redacted]") {
		t.Errorf("original header section:\n%s", rep.Headers)
	}
}

func TestABodyOverTheReportCapIsOmittedButTheHeadersStay(t *testing.T) {
	sink := &incidents{}
	e := startDeps(t, Strict, func(c *Config) {
		c.FailureReports, c.FailureReportsBody, c.FailureReportsMaxBody = true, true, 4
	}, Deps{Evaluator: newEvaluator(dmarc.RFC9989, failureDNS, nil), Failures: sink})
	e.send(failingMessage("failing.example", bothFail))
	got := sink.all()
	if len(got) != 1 || got[0].Body != nil || !got[0].BodyOmitted {
		t.Fatalf("incidents %+v, want one with the body omitted", got)
	}
	if v := fieldValue(got[0].Headers, "Message-ID"); strings.TrimSpace(v) != "<4711@spoof.example>" {
		t.Errorf("Message-ID %q: the header fields should stay", v)
	}
}
