package milter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report"
)

// testDNS is the DNS every milter test sees.
var testDNS = map[string][]string{
	"_dmarc.reject.example":     {"v=DMARC1; p=reject; rua=mailto:d@reject.example"},
	"_dmarc.quarantine.example": {"v=DMARC1; p=quarantine"},
	"_dmarc.none.example":       {"v=DMARC1; p=none"},
	"_dmarc.testing.example":    {"v=DMARC1; p=reject; t=y"},
	"_dmarc.broken.example":     {"v=DMARC1; p=block"},
	"_dmarc.sampled.example":    {"v=DMARC1; p=reject; pct=0"},
	"reject.example":            nil,
}

// env is one running milter server and a way to talk to it.
type env struct {
	t    *testing.T
	srv  *Server
	addr string
	sink *report.MemorySink
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEvaluator(spec dmarc.Spec, dns map[string][]string, fail map[string]error) *dmarc.Evaluator {
	return &dmarc.Evaluator{Resolver: dmarc.MapResolver{TXT: dns, Fail: fail}, Spec: spec}
}

// start runs a server with cfg (tweaked by the caller) in mode.
func start(t *testing.T, mode Mode, tweak func(*Config), fail map[string]error) *env {
	t.Helper()
	return startWith(t, mode, tweak, dmarc.MapResolver{TXT: testDNS, Fail: fail})
}

// startWith runs a server whose evaluator reads resolver.
func startWith(t *testing.T, mode Mode, tweak func(*Config), resolver dmarc.Resolver) *env {
	t.Helper()
	return startDeps(t, mode, tweak, Deps{Evaluator: &dmarc.Evaluator{Resolver: resolver}})
}

// startDeps runs a server with deps.
func startDeps(t *testing.T, mode Mode, tweak func(*Config), deps Deps) *env {
	t.Helper()
	cfg := testConfig()
	cfg.AuthServID = "mx.test"
	cfg.TrustedAuthServIDs = []string{"border.test"}
	if tweak != nil {
		tweak(cfg)
	}
	e := &env{t: t, sink: &report.MemorySink{}, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv = New(cfg, deps, e.sink, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln, mode) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

// msg is one message as an MTA would present it.
type msg struct {
	client   string // IP; default 192.0.2.10
	helo     string
	mailFrom string // without brackets; "" is the null sender
	rcpts    []string
	headers  [][2]string
	auth     string // {auth_authen}
}

// outcomeOf is what the milter answered.
type outcomeOf struct {
	stopped bool // the milter ended the transaction before end of message
	act     *gomilter.Action
	mods    []gomilter.ModifyAction
}

func (o outcomeOf) inserted() []string {
	var out []string
	for _, m := range o.mods {
		if m.Type == gomilter.ActionInsertHeader {
			out = append(out, m.HeaderName+": "+m.HeaderValue)
		}
	}
	return out
}

func (o outcomeOf) quarantined() bool {
	for _, m := range o.mods {
		if m.Type == gomilter.ActionQuarantine {
			return true
		}
	}
	return false
}

func (o outcomeOf) deleted(name string) []uint32 {
	var out []uint32
	for _, m := range o.mods {
		if m.Type == gomilter.ActionChangeHeader && m.HeaderValue == "" && strings.EqualFold(m.HeaderName, name) {
			out = append(out, m.HeaderIndex)
		}
	}
	return out
}

// session opens one milter connection.
func (e *env) session() (*gomilter.ClientSession, *gomilter.MacroBag) {
	e.t.Helper()
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAFQDN, "mta.test")
	c := gomilter.NewClient("tcp", e.addr, gomilter.WithActions(gomilter.AllClientSupportedActionMasks))
	s, err := c.Session(macros)
	if err != nil {
		e.t.Fatalf("session: %v", err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s, macros
}

// send runs one SMTP connection with one message.
func (e *env) send(m msg) outcomeOf {
	e.t.Helper()
	s, macros := e.session()
	if o, stop := e.connect(s, m); stop {
		return o
	}
	return e.transaction(s, macros, m)
}

func (e *env) connect(s *gomilter.ClientSession, m msg) (outcomeOf, bool) {
	e.t.Helper()
	client := m.client
	if client == "" {
		client = "192.0.2.10"
	}
	family := gomilter.FamilyInet
	if strings.Contains(client, ":") {
		family = gomilter.FamilyInet6
	}
	act, err := s.Conn("client.test", family, 25, client)
	if err != nil {
		e.t.Fatalf("Conn: %v", err)
	}
	if act.Type != gomilter.ActionContinue {
		return outcomeOf{stopped: true, act: act}, true
	}
	helo := m.helo
	if helo == "" {
		helo = "client.test"
	}
	if _, err := s.Helo(helo); err != nil {
		e.t.Fatalf("Helo: %v", err)
	}
	return outcomeOf{}, false
}

func (e *env) transaction(s *gomilter.ClientSession, macros *gomilter.MacroBag, m msg) outcomeOf {
	e.t.Helper()
	macros.Set(gomilter.MacroAuthAuthen, m.auth)
	macros.Set(gomilter.MacroQueueId, "QID123")
	act, err := s.Mail("<"+m.mailFrom+">", "")
	if err != nil {
		e.t.Fatalf("Mail: %v", err)
	}
	if act.Type != gomilter.ActionContinue {
		return outcomeOf{stopped: true, act: act}
	}
	rcpts := m.rcpts
	if len(rcpts) == 0 {
		rcpts = []string{"user@mx.test"}
	}
	for _, r := range rcpts {
		if _, err := s.Rcpt("<"+r+">", ""); err != nil {
			e.t.Fatalf("Rcpt: %v", err)
		}
	}
	if _, err := s.DataStart(); err != nil {
		e.t.Fatalf("DataStart: %v", err)
	}
	for _, h := range m.headers {
		if _, err := s.HeaderField(h[0], h[1], nil); err != nil {
			e.t.Fatalf("HeaderField: %v", err)
		}
	}
	if _, err := s.HeaderEnd(); err != nil {
		e.t.Fatalf("HeaderEnd: %v", err)
	}
	mods, act, err := s.BodyReadFrom(strings.NewReader("Hello.\r\n"))
	if err != nil {
		e.t.Fatalf("End: %v", err)
	}
	return outcomeOf{act: act, mods: mods}
}

// headers builds a header list from "Name: value" lines.
func headers(lines ...string) [][2]string {
	var out [][2]string
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		out = append(out, [2]string{name, strings.TrimSpace(value)})
	}
	return out
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name       string
		mode       Mode
		tweak      func(*Config)
		m          msg
		action     gomilter.ActionType
		reply      string // substring of the SMTP reply
		header     string // substring of our inserted A-R; "" means none inserted
		quarantine bool
	}{
		{
			name: "a message with an aligned DKIM pass is accepted with our header",
			m: msg{mailFrom: "bounce@other.example", headers: headers(
				"Authentication-Results: border.test; dkim=pass header.d=reject.example header.s=s1",
				"From: Alice <alice@reject.example>")},
			action: gomilter.ActionAccept,
			header: "Authentication-Results: mx.test; dmarc=pass (p=reject dis=none) header.from=reject.example",
		},
		{
			name: "a message with an aligned SPF pass is accepted",
			m: msg{mailFrom: "bounce@mail.reject.example", headers: headers(
				"Authentication-Results: border.test; spf=pass smtp.mailfrom=bounce@mail.reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionAccept,
			header: "dmarc=pass (p=reject dis=none)",
		},
		{
			name:   "a failing p=reject message is refused with 550 5.7.1",
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: alice@reject.example")},
			action: gomilter.ActionRejectWithCode,
			reply:  "550 5.7.1 rejected by DMARC policy for reject.example",
		},
		{
			name:       "a failing p=quarantine message is held",
			m:          msg{mailFrom: "x@evil.example", headers: headers("From: alice@quarantine.example")},
			action:     gomilter.ActionAccept,
			header:     "dmarc=fail (p=quarantine dis=quarantine)",
			quarantine: true,
		},
		{
			name:   "quarantine as header only accepts without holding",
			tweak:  func(c *Config) { c.Policy.Quarantine = Accept },
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: alice@quarantine.example")},
			action: gomilter.ActionAccept,
			header: "dmarc=fail (p=quarantine dis=none override=local_policy)",
		},
		{
			name:       "reject downgraded to quarantine by configuration holds the message",
			tweak:      func(c *Config) { c.Policy.Reject = Quarantine },
			m:          msg{mailFrom: "x@evil.example", headers: headers("From: alice@reject.example")},
			action:     gomilter.ActionAccept,
			header:     "dmarc=fail (p=reject dis=quarantine override=local_policy)",
			quarantine: true,
		},
		{
			name:   "relaxed mode never rejects",
			mode:   Relaxed,
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: alice@reject.example")},
			action: gomilter.ActionAccept,
			header: "dmarc=fail (p=reject dis=none override=local_policy)",
		},
		{
			name:   "a failing p=none message is accepted",
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: alice@none.example")},
			action: gomilter.ActionAccept,
			header: "dmarc=fail (p=none dis=none)",
		},
		{
			name:   "t=y lowers reject to quarantine and says so",
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: alice@testing.example")},
			action: gomilter.ActionAccept, quarantine: true,
			header: "dmarc=fail (p=reject dis=quarantine override=policy_test_mode)",
		},
		{
			name:   "a domain without a record gets dmarc=none",
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: alice@nowhere.example")},
			action: gomilter.ActionAccept,
			header: "dmarc=none (p=none dis=none) header.from=nowhere.example",
		},
		{
			name:   "an invalid record gives permerror with the reason in the header",
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: alice@broken.example")},
			action: gomilter.ActionAccept,
			header: `dmarc=permerror reason="record at _dmarc.broken.example: unusable DMARC record: invalid p tag`,
		},
		{
			name: "a local policy overrides the published one",
			tweak: func(c *Config) {
				c.LocalPolicies = []LocalPolicy{{Domain: "reject.example", Policy: dmarc.PolicyNone, Comment: "partner list"}}
			},
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: alice@reject.example")},
			action: gomilter.ActionAccept,
			header: "dmarc=fail (p=reject dis=none override=local_policy)",
		},
		{
			name: "a forged result with our authserv-id is not believed",
			m: msg{mailFrom: "x@evil.example", headers: headers(
				"Authentication-Results: mx.test; dkim=pass header.d=reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionRejectWithCode,
			reply:  "550 5.7.1",
		},
		{
			name: "a result from an untrusted authserv-id is ignored",
			m: msg{mailFrom: "x@evil.example", headers: headers(
				"Authentication-Results: stranger.test; dkim=pass header.d=reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionRejectWithCode,
			reply:  "550 5.7.1",
		},
		{
			name: "a trusted id with a suffix is another id and not trusted",
			m: msg{mailFrom: "x@evil.example", headers: headers(
				"Authentication-Results: border.test/ABC123; dkim=pass header.d=reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionRejectWithCode,
		},
		{
			name: "a DKIM pass naming only header.i does not align",
			m: msg{mailFrom: "x@evil.example", headers: headers(
				"Authentication-Results: border.test; dkim=pass header.i=@reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionRejectWithCode,
		},
		{
			name: "of several trusted SPF verdicts for the envelope a pass counts",
			m: msg{mailFrom: "b@reject.example", headers: headers(
				"Authentication-Results: border.test; spf=neutral smtp.mailfrom=b@reject.example",
				"Authentication-Results: border.test; spf=pass smtp.mailfrom=b@reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionAccept,
			header: "dmarc=pass",
		},
		{
			name: "a HELO-scope SPF pass does not stand in for a non-null MAIL FROM",
			m: msg{mailFrom: "x@evil.example", helo: "mail.reject.example", headers: headers(
				"Authentication-Results: border.test; spf=pass smtp.helo=mail.reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionRejectWithCode,
		},
		{
			name: "a HELO-scope SPF pass counts for the null sender",
			m: msg{mailFrom: "", helo: "mail.reject.example", headers: headers(
				"Authentication-Results: border.test; spf=pass smtp.helo=mail.reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionAccept,
			header: "dmarc=pass",
		},
		{
			name: "an SPF pass for another MAIL FROM domain is ignored",
			m: msg{mailFrom: "x@evil.example", headers: headers(
				"Authentication-Results: border.test; spf=pass smtp.mailfrom=x@reject.example",
				"From: alice@reject.example")},
			action: gomilter.ActionRejectWithCode,
		},
		{
			name:   "a message without From is refused by default",
			m:      msg{mailFrom: "x@evil.example", headers: headers("Subject: hi")},
			action: gomilter.ActionRejectWithCode,
			reply:  "550 5.7.1 message has no From address",
		},
		{
			name:   "a message without From is accepted when configured",
			tweak:  func(c *Config) { c.Policy.MissingFrom = Accept },
			m:      msg{mailFrom: "x@evil.example", headers: headers("Subject: hi")},
			action: gomilter.ActionAccept,
		},
		{
			name: "several From domains apply the strictest outcome",
			m: msg{mailFrom: "x@evil.example", headers: headers(
				"Authentication-Results: border.test; dkim=pass header.d=none.example",
				"From: a@none.example, b@reject.example")},
			action: gomilter.ActionRejectWithCode,
			reply:  "rejected by DMARC policy for reject.example",
		},
		{
			name:   "several From fields are evaluated like several addresses",
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: a@none.example", "From: b@reject.example")},
			action: gomilter.ActionRejectWithCode,
		},
		{
			name:   "several From domains are refused when configured as OpenDMARC's RejectMultiValueFrom",
			tweak:  func(c *Config) { c.Policy.MultipleFrom = RejectMultiple },
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: a@none.example, b@none.example.org")},
			action: gomilter.ActionRejectWithCode,
			reply:  "several From addresses",
		},
		{
			name:   "the first From domain alone counts when configured",
			tweak:  func(c *Config) { c.Policy.MultipleFrom = First },
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: a@none.example, b@reject.example")},
			action: gomilter.ActionAccept,
			header: "header.from=none.example",
		},
		{
			name:   "a DKIM signature without a trusted result tempfails when configured",
			tweak:  func(c *Config) { c.Policy.MissingDKIM = Tempfail },
			m:      msg{mailFrom: "x@evil.example", headers: headers("DKIM-Signature: v=1; d=reject.example", "From: a@reject.example")},
			action: gomilter.ActionRejectWithCode,
			reply:  "451 4.7.1",
		},
		{
			name:   "an authenticated client is let through",
			m:      msg{mailFrom: "x@evil.example", auth: "alice", headers: headers("From: a@reject.example")},
			action: gomilter.ActionAccept,
		},
		{
			name:   "an ignored client address is let through at connect",
			m:      msg{client: "127.0.0.1", mailFrom: "x@evil.example", headers: headers("From: a@reject.example")},
			action: gomilter.ActionAccept,
		},
		{
			name:   "IPv6 loopback is ignored too",
			m:      msg{client: "::1", mailFrom: "x@evil.example", headers: headers("From: a@reject.example")},
			action: gomilter.ActionAccept,
		},
		{
			name:   "an ignored From domain is let through",
			tweak:  func(c *Config) { c.Ignore.FromDomains = []string{"*.reject.example"} },
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: a@sub.reject.example")},
			action: gomilter.ActionAccept,
		},
		{
			name:   "an ignored MAIL FROM domain is let through",
			tweak:  func(c *Config) { c.Ignore.MailFromDomains = []string{"evil.example"} },
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")},
			action: gomilter.ActionAccept,
		},
		{
			name:   "mail to report mailboxes only is let through",
			tweak:  func(c *Config) { c.Ignore.Recipients = []string{"dmarc@mx.test", "@reports.test"} },
			m:      msg{mailFrom: "x@evil.example", rcpts: []string{"dmarc@mx.test", "x@reports.test"}, headers: headers("From: a@reject.example")},
			action: gomilter.ActionAccept,
		},
		{
			name:   "mail to a report mailbox and a user is evaluated",
			tweak:  func(c *Config) { c.Ignore.Recipients = []string{"dmarc@mx.test"} },
			m:      msg{mailFrom: "x@evil.example", rcpts: []string{"dmarc@mx.test", "user@mx.test"}, headers: headers("From: a@reject.example")},
			action: gomilter.ActionRejectWithCode,
		},
		{
			name:   "disable mode accepts everything at connect",
			mode:   Disable,
			m:      msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")},
			action: gomilter.ActionAccept,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, tt.mode, tt.tweak, nil)
			o := e.send(tt.m)
			if o.act.Type != tt.action {
				t.Fatalf("action = %v (%q), want %v\nlog:\n%s", o.act.Type, o.act.SMTPReply, tt.action, e.logs)
			}
			if tt.reply != "" && !strings.Contains(o.act.SMTPReply, tt.reply) {
				t.Errorf("reply = %q, want it to contain %q", o.act.SMTPReply, tt.reply)
			}
			ins := o.inserted()
			switch {
			case tt.header == "" && len(ins) > 0 && tt.action != gomilter.ActionAccept:
				t.Errorf("inserted %q, want nothing", ins)
			case tt.header != "" && (len(ins) != 1 || !strings.Contains(ins[0], tt.header)):
				t.Errorf("inserted %q, want one containing %q", ins, tt.header)
			}
			if o.quarantined() != tt.quarantine {
				t.Errorf("quarantined = %v, want %v", o.quarantined(), tt.quarantine)
			}
		})
	}
}

func TestOurHeaderGoesFirst(t *testing.T) {
	e := start(t, Strict, nil, nil)
	o := e.send(msg{mailFrom: "x@none.example", headers: headers("Received: from a", "From: a@none.example")})
	for _, m := range o.mods {
		if m.Type == gomilter.ActionInsertHeader && m.HeaderIndex != 0 {
			t.Errorf("header inserted at %d, want 0 (above every Received)", m.HeaderIndex)
		}
	}
}

func TestForgedHeadersAreRemovedInReverseOrder(t *testing.T) {
	e := start(t, Strict, nil, nil)
	o := e.send(msg{mailFrom: "x@evil.example", headers: headers(
		"Authentication-Results: border.test; spf=none smtp.mailfrom=x@evil.example",
		"Authentication-Results: mx.test; dkim=pass header.d=none.example",
		"Authentication-Results: stranger.test; dkim=pass header.d=none.example",
		"Authentication-Results: MX.TEST/JOB1; dmarc=pass header.from=none.example",
		"From: a@none.example")})
	if got := o.deleted("Authentication-Results"); len(got) != 2 || got[0] != 4 || got[1] != 2 {
		t.Errorf("deleted A-R indexes %v, want [4 2]", got)
	}
	if ins := o.inserted(); len(ins) != 1 || !strings.Contains(ins[0], "dmarc=fail") {
		t.Errorf("inserted %q; the forged dkim=pass must not count", ins)
	}
}

func TestOwnAuthservIDTrustedLikeOpenDMARC(t *testing.T) {
	// With no trusted list, our own id is read (OpenDKIM and OpenDMARC
	// sharing the host name), but a dmarc= result with it is still forged.
	e := start(t, Strict, func(c *Config) { c.TrustedAuthServIDs = nil }, nil)
	o := e.send(msg{mailFrom: "x@evil.example", headers: headers(
		"Authentication-Results: mx.test; dkim=pass header.d=reject.example",
		"Authentication-Results: mx.test; dmarc=pass header.from=reject.example",
		"From: a@reject.example")})
	if o.act.Type != gomilter.ActionAccept {
		t.Fatalf("action %v, want accept through the trusted dkim=pass", o.act.Type)
	}
	if got := o.deleted("Authentication-Results"); len(got) != 1 || got[0] != 2 {
		t.Errorf("deleted %v, want [2]: the forged dmarc= field", got)
	}
}

func TestTemporaryDNSFailure(t *testing.T) {
	fail := map[string]error{"_dmarc.reject.example": errors.New("SERVFAIL")}
	t.Run("is accepted with dmarc=temperror by default", func(t *testing.T) {
		e := start(t, Strict, nil, fail)
		o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")})
		if o.act.Type != gomilter.ActionAccept || len(o.inserted()) != 1 || !strings.Contains(o.inserted()[0], "dmarc=temperror reason=") {
			t.Errorf("got %v %q", o.act.Type, o.inserted())
		}
	})
	t.Run("tempfails with 451 4.7.1 when configured", func(t *testing.T) {
		e := start(t, Strict, func(c *Config) { c.Policy.TempError = Tempfail }, fail)
		o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")})
		if o.act.Type != gomilter.ActionRejectWithCode || !strings.HasPrefix(o.act.SMTPReply, "451 4.7.1") {
			t.Errorf("got %v %q, want 451 4.7.1", o.act.Type, o.act.SMTPReply)
		}
	})
}

func TestRowsCarryTheTrustedARCResult(t *testing.T) {
	e := start(t, Strict, nil, nil)
	for _, tc := range []struct {
		name, ar, want string
	}{
		{"a trusted arc= result is kept", "Authentication-Results: border.test; arc=pass smtp.remote-ip=192.0.2.1", "pass"},
		{"an untrusted one is not", "Authentication-Results: evil.test; arc=pass", ""},
		{"none without one", "Authentication-Results: border.test; spf=none smtp.mailfrom=b@other.example", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.sink.Rows())
			e.t = t
			e.send(msg{mailFrom: "b@other.example", headers: headers(tc.ar, "From: a@none.example")})
			rows := e.sink.Rows()[before:]
			if len(rows) != 1 || rows[0].ARC != tc.want {
				t.Errorf("rows %+v, want one with ARC %q", rows, tc.want)
			}
		})
	}
}

func TestRowsCarryWhatReportsNeed(t *testing.T) {
	e := start(t, Strict, nil, nil)
	e.send(msg{client: "192.0.2.77", helo: "mail.other.example", mailFrom: "b@other.example",
		rcpts: []string{"u@mx.test", "v@Second.Test"},
		headers: headers(
			"Authentication-Results: border.test; spf=pass smtp.mailfrom=b@other.example; dkim=fail header.d=reject.example header.s=sel",
			"From: a@reject.example")})
	rows := e.sink.Rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	r := rows[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"source IP", r.SourceIP, netip.MustParseAddr("192.0.2.77")},
		{"HELO", r.Helo, "mail.other.example"},
		{"header_from", r.HeaderFrom, "reject.example"},
		{"envelope_from", r.EnvelopeFrom, "other.example"},
		{"envelope_to", strings.Join(r.EnvelopeTo, ","), "mx.test,second.test"},
		{"result", r.Result, "fail"},
		{"disposition", r.Disposition, "reject"},
		{"published p", r.Published.P, "reject"},
		{"published domain", r.Published.Domain, "reject.example"},
		{"published rua", strings.Join(r.Published.RUA, ","), "mailto:d@reject.example"},
		{"discovery", r.Published.DiscoveryMethod, "treewalk"},
		{"spf", r.SPF, []report.SPFResult{{Domain: "other.example", Scope: "mfrom", Result: "pass"}}},
		{"dkim", r.DKIM, []report.DKIMResult{{Domain: "reject.example", Selector: "sel", Result: "fail"}}},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case []report.SPFResult:
		b := b.([]report.SPFResult)
		return len(a) == len(b) && (len(a) == 0 || a[0] == b[0])
	case []report.DKIMResult:
		b := b.([]report.DKIMResult)
		return len(a) == len(b) && (len(a) == 0 || a[0] == b[0])
	}
	return a == b
}

func TestSampledOutIsRecorded(t *testing.T) {
	e := start(t, Strict, nil, nil)
	e.srv.Reload(e.srv.state.Load().cfg, Deps{Evaluator: newEvaluator(dmarc.RFC7489, testDNS, nil)})
	o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@sampled.example")})
	if !o.quarantined() {
		t.Errorf("pct=0 under RFC 7489 should lower reject to quarantine")
	}
	rows := e.sink.Rows()
	if len(rows) != 1 || len(rows[0].Overrides) == 0 || rows[0].Overrides[0].Type != report.OverrideSampledOut {
		t.Errorf("rows %+v, want a sampled_out override", rows)
	}
}

func TestTwoMessagesInOneConnectionKeepClientAndHelo(t *testing.T) {
	e := start(t, Strict, nil, nil)
	s, macros := e.session()
	m := msg{client: "198.51.100.7", helo: "sender.example", mailFrom: "x@none.example", headers: headers("From: a@none.example")}
	e.connect(s, m)
	e.transaction(s, macros, m)
	if err := s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	e.transaction(s, macros, m)
	rows := e.sink.Rows()
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	for i, r := range rows {
		if r.SourceIP.String() != "198.51.100.7" || r.Helo != "sender.example" {
			t.Errorf("row %d: client %v helo %q; want both messages to keep the connection's", i, r.SourceIP, r.Helo)
		}
	}
}

func TestReloadAppliesToTheNextMessage(t *testing.T) {
	e := start(t, Strict, nil, nil)
	if o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")}); o.act.Type != gomilter.ActionRejectWithCode {
		t.Fatalf("before reload: %v", o.act.Type)
	}
	cfg := *e.srv.state.Load().cfg
	cfg.Policy.Reject = Accept
	e.srv.Reload(&cfg, e.srv.state.Load().deps)
	if o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")}); o.act.Type != gomilter.ActionAccept {
		t.Errorf("after reload: %v, want accept", o.act.Type)
	}
}

// rawConn opens a raw TCP connection to the milter for protocol abuse.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func packet(code byte, data []byte) []byte {
	b := make([]byte, 5, 5+len(data))
	binary.BigEndian.PutUint32(b, uint32(len(data)+1))
	b[4] = code
	return append(b, data...)
}

// optneg is a protocol-6 negotiation as Postfix sends it.
func optneg() []byte {
	var d [12]byte
	binary.BigEndian.PutUint32(d[0:], 6)
	binary.BigEndian.PutUint32(d[4:], 0x1ff)
	binary.BigEndian.PutUint32(d[8:], 0x1fffff)
	return packet('O', d[:])
}

func TestBadPeersEndOnlyTheirOwnSession(t *testing.T) {
	e := start(t, Strict, nil, nil)
	abuses := []struct {
		name string
		data []byte
	}{
		{"garbage bytes", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"a zero-length packet", append(optneg(), 0, 0, 0, 0)},
		{"a connect packet without its terminator", append(optneg(), packet('C', []byte("host"))...)},
		{"a connect packet without family", append(optneg(), packet('C', []byte("host\x00"))...)},
		{"a MAIL packet without its terminator", append(append(optneg(), packet('C', []byte("host\x00U"))...), packet('M', []byte("<a@b>"))...)},
		{"a truncated packet", append(optneg(), 0, 0, 0, 50, 'C', 'x')},
		{"a 1 MiB header", append(append(optneg(), packet('C', []byte("host\x00U"))...), packet('L', append([]byte("Subject\x00"), bytes.Repeat([]byte("a"), 1<<20)...))...)},
		{"a header packet claiming 512 MiB", append(optneg(), 0x20, 0, 0, 0, 'L')},
	}
	for _, a := range abuses {
		t.Run(a.name, func(t *testing.T) {
			e.t = t
			c := rawConn(t, e.addr)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			// The server may cut the session before all is written.
			if _, err := c.Write(a.data); err != nil && !isClosed(err) {
				t.Fatal(err)
			}
			if tc, ok := c.(*net.TCPConn); ok && a.name == "a truncated packet" {
				tc.CloseWrite()
			}
			// The server must close this session...
			if _, err := io.Copy(io.Discard, c); err != nil && !isClosed(err) {
				t.Fatalf("reading until close: %v", err)
			}
			// ...and keep serving others.
			o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")})
			if o.act.Type != gomilter.ActionRejectWithCode {
				t.Errorf("next session got %v, want the normal reject", o.act.Type)
			}
		})
	}
	if p := e.srv.Stats().Panics; p != 0 {
		t.Errorf("%d handler panics", p)
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestConnectionsAreCapped(t *testing.T) {
	e := start(t, Strict, func(c *Config) { c.MaxConnections = 1 }, nil)
	first, _ := e.session()
	if _, err := first.Conn("a", gomilter.FamilyInet, 25, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	// A second session cannot negotiate while the first holds the only slot.
	c := rawConn(t, e.addr)
	c.Write(optneg())
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("second connection answered (%d bytes) beyond the cap", n)
	}
	first.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 64)); err != nil {
		t.Errorf("second connection not served after the first closed: %v", err)
	}
}

// testConfig is the configuration the tests start from: the documented
// defaults of configs/dmarcd.toml.
func testConfig() *Config {
	return &Config{
		Policy: Policy{
			Reject:        Reject,
			Quarantine:    Quarantine,
			TempError:     Accept,
			PermError:     Accept,
			MultipleFrom:  Strictest,
			MissingFrom:   Reject,
			MissingDKIM:   Accept,
			RejectReply:   Reply{550, "5.7.1", "rejected by DMARC policy for {domain}"},
			TempfailReply: Reply{451, "4.7.1", "DMARC policy for {domain} could not be evaluated, try again later"},
			AddHeader:     true,
			RemoveForged:  true,
		},
		Ignore: Ignore{
			Hosts:         []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
			Authenticated: true,
		},
		SPFUpstream:    true,
		MaxMessageSize: 32 << 20,
		DNSBudget:      10 * time.Second,
		IdleTimeout:    10 * time.Minute,
		WriteTimeout:   30 * time.Second,
		MaxConnections: 1024,
	}
}

// watchingResolver notes when each TXT name is first asked for, and can
// hang until the caller gives up.
type watchingResolver struct {
	dmarc.Resolver
	hang  bool
	mu    sync.Mutex
	asked map[string]bool
}

func (w *watchingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	w.mu.Lock()
	w.asked[name] = true
	w.mu.Unlock()
	if w.hang {
		<-ctx.Done()
		return nil, fmt.Errorf("%w: %v", dmarc.ErrTemporary, ctx.Err())
	}
	return w.Resolver.LookupTXT(ctx, name)
}

func (w *watchingResolver) wasAsked(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.asked[name]
}

func TestThePolicyLookupStartsWhenTheFromFieldArrives(t *testing.T) {
	w := &watchingResolver{Resolver: dmarc.MapResolver{TXT: testDNS}, asked: map[string]bool{}}
	e := startWith(t, Strict, nil, w)
	s, macros := e.session()
	e.connect(s, msg{})
	macros.Set(gomilter.MacroQueueId, "Q1")
	s.Mail("<x@evil.example>", "")
	s.Rcpt("<u@mx.test>", "")
	s.DataStart()
	if _, err := s.HeaderField("From", "a@reject.example", nil); err != nil {
		t.Fatal(err)
	}
	// The message has not ended; the lookup must already be on its way.
	deadline := time.Now().Add(5 * time.Second)
	for !w.wasAsked("_dmarc.reject.example") {
		if time.Now().After(deadline) {
			t.Fatal("_dmarc.reject.example not looked up before end of message")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.HeaderEnd()
	if _, act, err := s.BodyReadFrom(strings.NewReader("x\r\n")); err != nil || act.Type != gomilter.ActionRejectWithCode {
		t.Errorf("end of message: %v %v, want the usual reject", act, err)
	}
}

func TestTheDNSBudgetBoundsAMessage(t *testing.T) {
	w := &watchingResolver{Resolver: dmarc.MapResolver{TXT: testDNS}, hang: true, asked: map[string]bool{}}
	e := startWith(t, Strict, func(c *Config) { c.DNSBudget = 200 * time.Millisecond }, w)
	// The resolver hangs until its context ends: only the budget ends it.
	o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")})
	if ins := o.inserted(); len(ins) != 1 || !strings.Contains(ins[0], "dmarc=temperror") {
		t.Errorf("inserted %q, want dmarc=temperror once the budget is spent", ins)
	}
}

// cachingResolver says which names it has at hand, as internal/dnscache
// does.
type cachingResolver struct {
	*watchingResolver
	cached map[string]bool
}

func (c cachingResolver) CachedTXT(name string) bool { return c.cached[name] }

func TestNoBackgroundLookupWhenThePolicyIsCached(t *testing.T) {
	w := &watchingResolver{Resolver: dmarc.MapResolver{TXT: testDNS}, asked: map[string]bool{}}
	r := cachingResolver{w, map[string]bool{"_dmarc.reject.example": true}}
	e := startWith(t, Strict, nil, r)
	for _, from := range []string{"a@reject.example", "a@none.example"} {
		w.mu.Lock()
		clear(w.asked)
		w.mu.Unlock()
		s, macros := e.session()
		e.connect(s, msg{})
		macros.Set(gomilter.MacroQueueId, "Q1")
		s.Mail("<x@evil.example>", "")
		s.Rcpt("<u@mx.test>", "")
		s.DataStart()
		s.HeaderField("From", from, nil)
		s.HeaderField("Subject", "hi", nil) // the From field has been handled
		time.Sleep(50 * time.Millisecond)
		name := "_dmarc." + strings.TrimPrefix(from, "a@")
		if asked := w.wasAsked(name); asked == r.cached[name] {
			t.Errorf("%s: looked up before end of message: %v, cached: %v", from, asked, r.cached[name])
		}
		s.HeaderEnd()
		_, act, err := s.BodyReadFrom(strings.NewReader("x\r\n"))
		want := gomilter.ActionRejectWithCode
		if from == "a@none.example" {
			want = gomilter.ActionAccept
		}
		if err != nil || act.Type != want {
			t.Errorf("%s: end of message: %v %v, want %v", from, act, err, want)
		}
		if !w.wasAsked(name) {
			t.Errorf("%s: %s not read at end of message", from, name)
		}
		s.Close()
	}
}

func TestStatsCountMessagesBySessionResultAndAction(t *testing.T) {
	e := start(t, Strict, nil, nil)
	e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@reject.example")})
	e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@none.example")})
	e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@nopolicy.example")})
	e.send(msg{mailFrom: "x@evil.example", headers: headers("Subject: no From")})
	want := map[ResultAction]int64{
		{"fail", "reject"}: 1, // the p=reject domain decided a reject
		{"fail", "accept"}: 1, // p=none fails and is accepted
		{"none", "accept"}: 1, // no policy
		{"none", "reject"}: 1, // no From: refused without an evaluation
	}
	var st StatsSnapshot
	deadline := time.Now().Add(5 * time.Second)
	for {
		st = e.srv.Stats()
		// The client closes each session at cleanup; the server sees the
		// ends shortly after.
		if st.Messages == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for k, n := range st.ByResultAction {
		if n != want[k] {
			t.Errorf("ByResultAction[%v] = %d, want %d", k, n, want[k])
		}
	}
	if st.Sessions != 4 || st.Active < 0 || st.Active > 4 {
		t.Errorf("Sessions = %d, Active = %d; want 4 sessions", st.Sessions, st.Active)
	}
}
