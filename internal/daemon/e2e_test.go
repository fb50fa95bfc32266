package daemon

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/dmarcd/dmarcd/internal/dnstest"
	"github.com/dmarcd/dmarcd/internal/postfixtest"
	"github.com/dmarcd/dmarcd/report"
)

// zone is the DNS the end-to-end tests run against.
var zone = []string{
	"test. 3600 IN SOA ns.test. host.test. 1 3600 600 86400 300",
	`_dmarc.reject.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@reject.test"`,
	`_dmarc.quarantine.test. 300 IN TXT "v=DMARC1; p=quarantine"`,
	`_dmarc.pass.test. 300 IN TXT "v=DMARC1; p=reject"`,
}

// stack is dmarcd in front of a real Postfix, both on this machine.
type stack struct {
	dns   *dnstest.Server
	pf    *postfixtest.Postfix
	sink  *report.MemorySink
	logs  *lockedBuffer
	conf  string // the configuration file
	state string // the state directory
}

type lockedBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// startStack runs dmarcd (the daemon code, in this process) with a real
// configuration file, a DNS server on 127.0.0.1, and a private Postfix whose
// smtpd_milters points at it.
func startStack(t *testing.T, extraTOML string) *stack {
	t.Helper()
	return startStackWith(t, extraTOML, postfixtest.Options{})
}

// startStackWith is startStack with Postfix options. dmarcd is appended to
// pfOpts.Milter, which may name milters to run before it.
func startStackWith(t *testing.T, extraTOML string, pfOpts postfixtest.Options) *stack {
	t.Helper()
	return startStackOpts(t, extraTOML, pfOpts, nil)
}

// startStackOpts is startStackWith with daemon options changed by opts
// (nil changes nothing).
func startStackOpts(t *testing.T, extraTOML string, pfOpts postfixtest.Options, opts func(*Options)) *stack {
	t.Helper()
	dns := dnstest.Start(t, zone...)
	dir := t.TempDir()
	conf := filepath.Join(dir, "dmarcd.toml")
	toml := fmt.Sprintf(`
authserv_id = "mx.dmarcd.test"
trusted_authserv_ids = ["border.test"]
state_dir = %q

[[listener]]
address = "inet:%d@127.0.0.1"

[dns]
nameservers = [%q]

[log]
format = "json"
%s`, filepath.Join(dir, "state"), freePort(t), dns.Addr(), extraTOML)
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &stack{dns: dns, sink: &report.MemorySink{}, logs: &lockedBuffer{}, conf: conf, state: filepath.Join(dir, "state")}
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	o := Options{ConfigPath: conf, Stderr: s.logs, Sink: s.sink, Ready: func(a []net.Addr) { ready <- a[0] }}
	if opts != nil {
		opts(&o)
	}
	go func() { done <- Run(ctx, o) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("dmarcd did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("dmarcd did not start in 10s")
	}
	// Postfix starts after dmarcd, so its cleanup (registered later) runs
	// first and dmarcd stops last.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dmarcd: %v", err)
		}
		if t.Failed() {
			t.Logf("dmarcd log:\n%s", s.logs)
		}
	})
	if pfOpts.Milter != "" {
		pfOpts.Milter += ", "
	}
	pfOpts.Milter += "inet:" + addr.String()
	s.pf = postfixtest.Start(t, pfOpts)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postfix log:\n%s", s.pf.Log())
		}
	})
	return s
}

// freePort returns a TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func message(from string, headers ...string) []byte {
	var b strings.Builder
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <user@mx.dmarcd.test>\r\nSubject: test\r\nMessage-ID: <%d@example>\r\n\r\nHello.\r\n", from, time.Now().UnixNano())
	return []byte(b.String())
}

func TestEndToEndWithPostfix(t *testing.T) {
	s := startStack(t, "")

	t.Run("a failing p=reject message is refused with 550 5.7.1", func(t *testing.T) {
		r := s.pf.Send(t, postfixtest.Message{From: "x@evil.test", To: []string{"user@mx.dmarcd.test"}, Data: message("ceo@reject.test")})
		if r.Code != 550 || r.Enhanced != "5.7.1" || !strings.Contains(r.Text, "rejected by DMARC policy for reject.test") {
			t.Errorf("reply %q, want 550 5.7.1 rejected by DMARC policy for reject.test", r.Reply.String())
		}
	})

	t.Run("a failing p=quarantine message sits in the hold queue", func(t *testing.T) {
		r := s.pf.Send(t, postfixtest.Message{From: "x@evil.test", To: []string{"held@mx.dmarcd.test"}, Data: message("news@quarantine.test")})
		if !r.Accepted() {
			t.Fatalf("reply %q, want accepted", r.Reply.String())
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, q := range s.pf.Held(t) {
				if q.QueueID == r.QueueID {
					m := s.pf.QueuedMail(t, q.QueueID)
					if ar := m.Header.Get("Authentication-Results"); !strings.Contains(ar, "dmarc=fail (p=quarantine dis=quarantine)") {
						t.Errorf("held message's A-R = %q", ar)
					}
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue %s not in the hold queue: %+v", r.QueueID, s.pf.Queue(t))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("a passing message is delivered with our header first and the forged one gone", func(t *testing.T) {
		r := s.pf.Send(t, postfixtest.Message{From: "bounce@pass.test", To: []string{"pass@mx.dmarcd.test"}, Data: message("alice@pass.test",
			"Authentication-Results: mx.dmarcd.test; dkim=pass header.d=reject.test",
			"Authentication-Results: border.test; spf=pass smtp.mailfrom=bounce@pass.test; dkim=pass header.d=pass.test header.s=s1")})
		if !r.Accepted() {
			t.Fatalf("reply %q, want accepted", r.Reply.String())
		}
		msgs := s.pf.DeliveredQueueID(t, r.QueueID, 10*time.Second)
		if len(msgs) != 1 {
			t.Fatalf("%d delivered copies, want 1", len(msgs))
		}
		h := msgs[0].Header
		if len(h) == 0 || !strings.EqualFold(h[0].Name, "Authentication-Results") ||
			h[0].Value != "mx.dmarcd.test; dmarc=pass (p=reject dis=none) header.from=pass.test" {
			t.Errorf("first header = %+v, want our A-R", h[0])
		}
		for _, v := range h.Values("Authentication-Results") {
			if strings.Contains(v, "header.d=reject.test") {
				t.Errorf("forged A-R still delivered: %q", v)
			}
		}
		if got := len(h.Values("Authentication-Results")); got != 2 {
			t.Errorf("%d A-R fields delivered, want ours and border.test's", got)
		}
	})

	t.Run("two messages in one session both carry the client IP and HELO", func(t *testing.T) {
		before := len(s.sink.Rows())
		opts := postfixtest.ClientOptions{LocalAddr: "127.0.0.2", Helo: "two.sender.test"}
		rs := s.pf.SendFrom(t, opts,
			postfixtest.Message{From: "a@pass.test", To: []string{"u1@mx.dmarcd.test"}, Data: message("a@pass.test")},
			postfixtest.Message{From: "b@pass.test", To: []string{"u2@mx.dmarcd.test"}, Data: message("b@pass.test")})
		for i, r := range rs {
			if r.Code != 550 {
				t.Errorf("message %d: reply %q; unauthenticated pass.test mail should be rejected", i, r.Reply.String())
			}
		}
		rows := s.sink.Rows()[before:]
		if len(rows) != 2 {
			t.Fatalf("%d rows, want 2", len(rows))
		}
		for i, row := range rows {
			if row.SourceIP.String() != "127.0.0.2" || row.Helo != "two.sender.test" {
				t.Errorf("row %d: client %v HELO %q, want 127.0.0.2 and two.sender.test", i, row.SourceIP, row.Helo)
			}
		}
	})

	t.Run("mail from an ignored client is not evaluated", func(t *testing.T) {
		before := len(s.sink.Rows())
		rs := s.pf.SendFrom(t, postfixtest.ClientOptions{LocalAddr: "127.0.0.1"},
			postfixtest.Message{From: "x@evil.test", To: []string{"user@mx.dmarcd.test"}, Data: message("ceo@reject.test")})
		if !rs[0].Accepted() {
			t.Errorf("reply %q, want accepted: 127.0.0.1 is in ignore.hosts", rs[0].Reply.String())
		}
		if n := len(s.sink.Rows()) - before; n != 0 {
			t.Errorf("%d rows recorded for an ignored client", n)
		}
	})
}

// upstreamMilter stands in for OpenDKIM in front of dmarcd: it writes a
// DKIM result under its own authserv-id.
type upstreamMilter struct{ gomilter.NoOpMilter }

func (upstreamMilter) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	err := m.InsertHeader(0, "Authentication-Results", "border.test; dkim=pass (2048-bit key; unprotected) header.d=pass.test header.s=s1")
	return gomilter.RespAccept, err
}

func TestResultsOfAnUpstreamMilterAreRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := gomilter.NewServer(gomilter.WithMilter(func() gomilter.Milter { return upstreamMilter{} }),
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader))
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	// Postfix shows each milter the header changes of the milters before
	// it, so dmarcd, second in smtpd_milters, reads the upstream result.
	s := startStackWith(t, "", postfixtest.Options{Verbose: true, Milter: "inet:" + ln.Addr().String()})
	r := s.pf.Send(t, postfixtest.Message{From: "x@evil.test", To: []string{"chain@mx.dmarcd.test"}, Data: message("alice@pass.test")})
	if !r.Accepted() {
		t.Fatalf("reply %q: the upstream dkim=pass was not read", r.Reply.String())
	}
	h := s.pf.DeliveredQueueID(t, r.QueueID, 10*time.Second)[0].Header
	// dmarcd checked SPF itself (no upstream spf= arrived): spf=none.
	if h[0].Value != "mx.dmarcd.test; spf=none smtp.mailfrom=evil.test; dmarc=pass (p=reject dis=none) header.from=pass.test" {
		t.Errorf("first header %q", h[0].Value)
	}
	if !strings.Contains(s.pf.Log(), "version 6") {
		t.Errorf("Postfix did not negotiate milter protocol 6 with dmarcd")
	}
}

func TestSPFCheckedHereThroughPostfix(t *testing.T) {
	s := startStack(t, "")
	s.dns.Set(`spf.test. 300 IN TXT "v=spf1 ip4:127.0.0.2 -all"`, `_dmarc.spf.test. 300 IN TXT "v=DMARC1; p=reject"`)
	r := s.pf.Send(t, postfixtest.Message{From: "bounce@spf.test", To: []string{"spf@mx.dmarcd.test"}, Data: message("news@spf.test")})
	if !r.Accepted() {
		t.Fatalf("reply %q: our own SPF pass for 127.0.0.2 should align", r.Reply.String())
	}
	h := s.pf.DeliveredQueueID(t, r.QueueID, 10*time.Second)[0].Header
	if want := "mx.dmarcd.test; spf=pass smtp.mailfrom=spf.test; dmarc=pass (p=reject dis=none) header.from=spf.test"; h[0].Value != want {
		t.Errorf("first header %q, want %q", h[0].Value, want)
	}
}

func TestDKIMVerifiedHereThroughPostfix(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	s := startStack(t, "\n[dkim]\nself_verify = true\n[spf]\nself_check = false\n")
	s.dns.Set(`_dmarc.signed.test. 300 IN TXT "v=DMARC1; p=reject"`,
		fmt.Sprintf(`sel._domainkey.signed.test. 300 IN TXT "v=DKIM1; k=rsa; p=%s"`, base64.StdEncoding.EncodeToString(pub)))
	for _, canon := range []dkim.Canonicalization{dkim.CanonicalizationSimple, dkim.CanonicalizationRelaxed} {
		t.Run(string(canon)+" canonicalization survives Postfix", func(t *testing.T) {
			msg := "From: Signer <a@signed.test>\r\nTo: <user@mx.dmarcd.test>\r\nSubject:  two spaces and a\r\n\tfolded line\r\n" +
				"Date: Sat, 28 Nov 2026 01:00:00 +0000\r\nMessage-ID: <" + string(canon) + "@signed.test>\r\n\r\nHello,\r\n\r\n  indented line\r\n.dot line\r\n"
			var signed strings.Builder
			if err := dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{Domain: "signed.test", Selector: "sel", Signer: key,
				HeaderCanonicalization: canon, BodyCanonicalization: canon}); err != nil {
				t.Fatal(err)
			}
			r := s.pf.Send(t, postfixtest.Message{From: "x@elsewhere.test", To: []string{"dkim@mx.dmarcd.test"}, Data: []byte(signed.String())})
			if !r.Accepted() {
				t.Fatalf("reply %q: our DKIM verification should pass", r.Reply.String())
			}
			h := s.pf.DeliveredQueueID(t, r.QueueID, 10*time.Second)[0].Header
			if want := "mx.dmarcd.test; dkim=pass header.d=signed.test header.s=sel; dmarc=pass (p=reject dis=none) header.from=signed.test"; h[0].Value != want {
				t.Errorf("first header %q, want %q", h[0].Value, want)
			}
		})
	}
}
