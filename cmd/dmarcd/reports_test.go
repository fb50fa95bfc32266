package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/dnstest"
	"github.com/dmarcd/dmarcd/internal/smtptest"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// reportsEnv is a state directory with report data and a configuration
// that sends to a test relay.
type reportsEnv struct {
	conf, state string
	relay       *smtptest.Server
}

func newReportsEnv(t *testing.T, enabled bool) *reportsEnv {
	t.Helper()
	dir := t.TempDir()
	e := &reportsEnv{conf: filepath.Join(dir, "dmarcd.toml"), state: filepath.Join(dir, "state"), relay: smtptest.Start(t)}
	dns := dnstest.Start(t,
		"test. 3600 IN SOA ns.test. host.test. 1 3600 600 86400 300",
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"`)
	toml := fmt.Sprintf(`state_dir = %q
[dns]
nameservers = [%q]
[reports]
enabled = %v
org_name = "Example Receiver"
from_address = "dmarc-reports@receiver.test"
spread = "0s"
[reports.relay]
address = %q
starttls = "none"
`, e.state, dns.Addr(), enabled, e.relay.Addr())
	if err := os.WriteFile(e.conf, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	// Two days ago, a closed day whatever the time now.
	db, err := store.OpenSQLite(context.Background(), filepath.Join(e.state, store.DefaultFile), store.Options{Reporter: "Example Receiver"})
	if err != nil {
		t.Fatal(err)
	}
	var b store.Batch
	at := time.Now().UTC().Add(-48 * time.Hour)
	for i := range 5 {
		b.Add(storetest.Row("example.com", at, fmt.Sprintf("192.0.2.%d", i%2+1)))
	}
	b.Add(storetest.Row("example.org", at, "192.0.2.9"))
	if err := db.Ingest(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return e
}

func (e *reportsEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"reports", args[0], "-c", e.conf}, args[1:]...)
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestReportsList(t *testing.T) {
	e := newReportsEnv(t, false)
	code, out, errs := e.run(t, "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "DOMAIN") {
		t.Fatalf("output:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "example.com" || !strings.Contains(lines[1], "closing") || f[len(f)-5] != "2" || f[len(f)-4] != "5" {
		t.Errorf("example.com line %q, want 2 records and 5 messages, closing", lines[1])
	}
	if !strings.HasPrefix(lines[2], "example.org") {
		t.Errorf("second line %q", lines[2])
	}
}

func TestReportsPreview(t *testing.T) {
	e := newReportsEnv(t, false)
	t.Run("prints the XML of the next report", func(t *testing.T) {
		code, out, errs := e.run(t, "preview", "example.com")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{"<feedback>", "<org_name>Example Receiver</org_name>", "<domain>example.com</domain>", "<count>3</count>", "<count>2</count>"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %s in\n%s", want, out)
			}
		}
	})
	t.Run("in the format asked for", func(t *testing.T) {
		code, out, _ := e.run(t, "preview", "-format", "rfc9990", "example.com")
		if code != 0 || !strings.Contains(out, `xmlns="urn:ietf:params:xml:ns:dmarc-2.0"`) {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("a domain without data is an error", func(t *testing.T) {
		if code, _, errs := e.run(t, "preview", "nothing.test"); code != 1 || !strings.Contains(errs, "no report pending and no data") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
	t.Run("a missing domain is a usage error", func(t *testing.T) {
		if code, _, _ := e.run(t, "preview"); code != 2 {
			t.Errorf("exit %d", code)
		}
	})
}

func TestReportsSend(t *testing.T) {
	t.Run("a dry run writes the files and sends nothing", func(t *testing.T) {
		e := newReportsEnv(t, false)
		dir := t.TempDir()
		code, out, errs := e.run(t, "send", "-dry-run", dir)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		gz, _ := filepath.Glob(filepath.Join(dir, "receiver.test!example.com!*.xml.gz"))
		eml, _ := filepath.Glob(filepath.Join(dir, "receiver.test!example.com!*!dmarc@example.com.eml"))
		if len(gz) != 1 || len(eml) != 1 || !strings.Contains(out, "4 files written") {
			t.Errorf("files %v %v; output:\n%s", gz, eml, out)
		}
		if n := len(e.relay.Messages()); n != 0 {
			t.Errorf("a dry run sent %d messages", n)
		}
		if code, out, _ := e.run(t, "list"); code != 0 || !strings.Contains(out, "closing") {
			t.Errorf("the dry run changed the store:\n%s", out)
		}
	})
	t.Run("reports disabled are not sent", func(t *testing.T) {
		e := newReportsEnv(t, false)
		if code, _, errs := e.run(t, "send"); code != 1 || !strings.Contains(errs, "reports.enabled = false") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
	t.Run("sends each closed period once", func(t *testing.T) {
		e := newReportsEnv(t, true)
		code, out, errs := e.run(t, "send", "-now")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "2 reports created, 2 sent") {
			t.Errorf("output %q", out)
		}
		msgs := e.relay.Messages()
		if len(msgs) != 2 {
			t.Fatalf("%d messages at the relay", len(msgs))
		}
		for _, m := range msgs {
			if m.From != "dmarc-reports@receiver.test" || !bytes.Contains(m.Data, []byte("Subject: Report Domain: ")) {
				t.Errorf("message from %s:\n%.300s", m.From, m.Data)
			}
		}
		if code, out, _ := e.run(t, "send"); code != 0 || !strings.Contains(out, "0 reports created, 0 sent") {
			t.Errorf("second send, exit %d: %s", code, out)
		}
		if code, out, _ := e.run(t, "list"); code != 0 || strings.TrimSpace(out) != "nothing pending" {
			t.Errorf("list after sending:\n%s", out)
		}
	})
	t.Run("a running daemon holding the lease sends instead", func(t *testing.T) {
		e := newReportsEnv(t, true)
		db, err := store.OpenSQLite(context.Background(), filepath.Join(e.state, store.DefaultFile), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		lease, err := db.TryLease(context.Background(), "sender")
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release(context.Background())
		if code, _, errs := e.run(t, "send"); code != 3 || !strings.Contains(errs, "holds the report sender lease") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
}

func TestReportsUsage(t *testing.T) {
	for _, args := range [][]string{{"reports"}, {"reports", "mail"}, {"reports", "list", "extra"}, {"reports", "send", "-bogus"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d", args, code)
		}
	}
}

func TestReportsFailuresCountsByStateAndReason(t *testing.T) {
	e := newReportsEnv(t, false)
	if code, out, errs := e.run(t, "failures"); code != 0 || !strings.Contains(out, "no failure reports") {
		t.Fatalf("empty store: exit %d: %s%s", code, out, errs)
	}
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(e.state, store.DefaultFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var fs []store.NewFailure
	for i := range 3 {
		fs = append(fs, store.NewFailure{PolicyDomain: "example.com", Destination: "ruf@example.com", DestDomain: "example.com",
			DedupKey: []byte{byte(i)}, Incident: []byte("{}")})
	}
	if _, _, err := db.EnqueueFailures(ctx, fs, time.Hour); err != nil {
		t.Fatal(err)
	}
	due, err := db.DueFailures(ctx, time.Now().Add(time.Minute), 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("due %d, %v", len(due), err)
	}
	for _, f := range due[:2] {
		if err := db.FinishFailure(ctx, store.FailureAttempt{ID: f.ID, State: store.FailureDropped, Reason: "rate_limited"}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	code, out, errs := e.run(t, "failures")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"dropped  rate_limited  2", "pending  -             1", "not enabled"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
