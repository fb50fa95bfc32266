package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// signedReport is a composed, signed report, as the scheduler sends it.
func signedReport(t *testing.T) []byte {
	t.Helper()
	m := sampleMessage(t)
	m.Text = "A line.\n.A line that starts with a dot, stuffed on the wire.\n..Two.\n"
	var b bytes.Buffer
	if err := edSigner().Sign(&b, bytes.NewReader(compose(t, m))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func reply(code int, enhanced smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

func TestSendDeliversTheExactBytesWithTheEnvelopeGiven(t *testing.T) {
	srv := startRelay(t, relayOptions{})
	msg := signedReport(t)
	r := Relay{Addr: srv.Addr, HeloName: "reporter.example", StartTLS: StartTLSNone, Timeout: 10 * time.Second}
	res, err := r.Send(context.Background(), "dmarc-bounces@mail.receiver.example",
		[]string{"rua@example.com", "agg@reports.example.net", "rua@example.com"}, bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if want := []string{"rua@example.com", "agg@reports.example.net"}; !slices.Equal(res.Accepted, want) || len(res.Rejected) != 0 || res.Temporary {
		t.Errorf("result %+v, want %v accepted", res, want)
	}
	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("the relay received %d messages, want 1", len(got))
	}
	if got[0].From != "dmarc-bounces@mail.receiver.example" {
		t.Errorf("MAIL FROM:<%s>", got[0].From)
	}
	if want := []string{"rua@example.com", "agg@reports.example.net"}; !slices.Equal(got[0].To, want) {
		t.Errorf("RCPT TO %v, want %v (duplicates sent once)", got[0].To, want)
	}
	if !bytes.Equal(got[0].Data, msg) {
		t.Errorf("the relay received other bytes than sent:\n%q\nwant\n%q", got[0].Data, msg)
	}
	if got[0].Helos[0] != "reporter.example" {
		t.Errorf("EHLO %q", got[0].Helos[0])
	}
}

func TestSendReportsEachRecipientsOutcome(t *testing.T) {
	tests := []struct {
		name      string
		replies   map[string]*smtp.SMTPError
		data      *smtp.SMTPError
		accepted  []string
		temporary []string // rejected, to retry
		permanent []string // rejected for good
		stage     string   // of the returned error; "" for none
	}{
		{
			name: "250, 450 and 550 recipients: one delivered, one to retry, one dropped",
			replies: map[string]*smtp.SMTPError{
				"b@example.com": reply(450, smtp.EnhancedCode{4, 2, 1}, "mailbox busy"),
				"c@example.com": reply(550, smtp.EnhancedCode{5, 1, 1}, "no such user"),
			},
			accepted: []string{"a@example.com"}, temporary: []string{"b@example.com"}, permanent: []string{"c@example.com"},
		},
		{
			name: "552 to RCPT is the old too-many-recipients, temporary (RFC 5321 §4.5.3.1.10)",
			replies: map[string]*smtp.SMTPError{
				"c@example.com": reply(552, smtp.EnhancedCode{5, 5, 3}, "too many recipients"),
			},
			accepted: []string{"a@example.com", "b@example.com"}, temporary: []string{"c@example.com"},
		},
		{
			name: "every recipient refused permanently fails permanently without DATA",
			replies: map[string]*smtp.SMTPError{
				"a@example.com": reply(550, smtp.EnhancedCode{5, 1, 1}, "no"),
				"b@example.com": reply(550, smtp.EnhancedCode{5, 1, 1}, "no"),
				"c@example.com": reply(550, smtp.EnhancedCode{5, 7, 1}, "relaying denied"),
			},
			permanent: []string{"a@example.com", "b@example.com", "c@example.com"}, stage: "rcpt",
		},
		{
			name: "every recipient refused, one temporarily, is worth a retry for that one",
			replies: map[string]*smtp.SMTPError{
				"a@example.com": reply(550, smtp.EnhancedCode{5, 1, 1}, "no"),
				"b@example.com": reply(451, smtp.EnhancedCode{4, 3, 0}, "try later"),
				"c@example.com": reply(550, smtp.EnhancedCode{5, 1, 1}, "no"),
			},
			temporary: []string{"b@example.com"}, permanent: []string{"a@example.com", "c@example.com"}, stage: "rcpt",
		},
		{
			name: "a 421 to a recipient defers it and every other: the relay is closing",
			replies: map[string]*smtp.SMTPError{
				"b@example.com": reply(421, smtp.EnhancedCode{4, 3, 2}, "shutting down"),
			},
			temporary: []string{"a@example.com", "b@example.com", "c@example.com"}, stage: "rcpt",
		},
		{
			name:      "a 451 to the message defers every accepted recipient",
			replies:   map[string]*smtp.SMTPError{"c@example.com": reply(550, smtp.EnhancedCode{5, 1, 1}, "no")},
			data:      reply(451, smtp.EnhancedCode{4, 3, 0}, "queue full"),
			temporary: []string{"a@example.com", "b@example.com"}, permanent: []string{"c@example.com"}, stage: "data",
		},
		{
			name:      "a 554 to the message fails every accepted recipient",
			data:      reply(554, smtp.EnhancedCode{5, 6, 0}, "content rejected"),
			permanent: []string{"a@example.com", "b@example.com", "c@example.com"}, stage: "data",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRelay(t, relayOptions{rcptReply: tt.replies, dataReply: tt.data})
			msg := signedReport(t)
			res, err := Relay{Addr: srv.Addr, StartTLS: StartTLSNone}.Send(context.Background(),
				"bounces@mail.receiver.example", []string{"a@example.com", "b@example.com", "c@example.com"}, bytes.NewReader(msg))

			if tt.stage == "" && err != nil {
				t.Fatalf("Send: %v", err)
			}
			if tt.stage != "" {
				var e *Error
				if !errors.As(err, &e) || e.Stage != tt.stage {
					t.Fatalf("Send error = %v, want one at %s", err, tt.stage)
				}
				if IsTemporary(err) != (len(tt.temporary) > 0) {
					t.Errorf("IsTemporary = %v with %d recipients to retry", IsTemporary(err), len(tt.temporary))
				}
			}
			if !slices.Equal(res.Accepted, tt.accepted) {
				t.Errorf("accepted %v, want %v", res.Accepted, tt.accepted)
			}
			retry := res.Retry()
			slices.Sort(retry)
			if !slices.Equal(retry, tt.temporary) {
				t.Errorf("to retry %v, want %v", retry, tt.temporary)
			}
			if res.Temporary != (len(tt.temporary) > 0) {
				t.Errorf("Temporary = %v", res.Temporary)
			}
			for _, rcpt := range tt.permanent {
				if err := res.Rejected[rcpt]; err == nil || IsTemporary(err) {
					t.Errorf("%s: %v, want a permanent rejection", rcpt, err)
				}
			}
			if n := len(tt.accepted) + len(tt.temporary) + len(tt.permanent); len(res.Accepted)+len(res.Rejected) != n {
				t.Errorf("%d accepted and %d rejected, want %d in all", len(res.Accepted), len(res.Rejected), n)
			}
			for rcpt, want := range tt.replies {
				if got := smtpCode(res.Rejected[rcpt]); got != want.Code {
					t.Errorf("%s: code %d, want %d", rcpt, got, want.Code)
				}
			}
			if received := srv.Received(); len(tt.accepted) > 0 {
				if len(received) != 1 || !slices.Equal(received[0].To, tt.accepted) || !bytes.Equal(received[0].Data, msg) {
					t.Errorf("the relay received %+v", received)
				}
			} else if len(received) != 0 {
				t.Errorf("the relay received %d messages, want none", len(received))
			}
		})
	}
}

func TestSendFailsTemporarilyWhenTheRelayIsDownOrSilent(t *testing.T) {
	tests := []struct {
		name  string
		addr  string
		stage string
	}{
		{"a relay that refuses connections", deadAddr(t), "connect"},
		{"a relay that never greets", silentAddr(t), "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res, err := Relay{Addr: tt.addr, Timeout: 300 * time.Millisecond}.Send(context.Background(),
				"bounces@mail.receiver.example", []string{"rua@example.com"}, strings.NewReader("From: a@b.example\r\n\r\nx\r\n"))
			var e *Error
			if !errors.As(err, &e) || e.Stage != tt.stage || !e.Temporary {
				t.Fatalf("Send error = %v, want a temporary failure at %s", err, tt.stage)
			}
			if !res.Temporary || !slices.Equal(res.Retry(), []string{"rua@example.com"}) {
				t.Errorf("result %+v, want the recipient to retry", res)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v despite a 300ms timeout", d)
			}
		})
	}
}

func TestSendStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Relay{Addr: silentAddr(t), Timeout: time.Minute}.Send(ctx,
		"bounces@mail.receiver.example", []string{"rua@example.com"}, strings.NewReader("From: a@b.example\r\n\r\nx\r\n"))
	if !errors.Is(err, context.DeadlineExceeded) || !IsTemporary(err) {
		t.Errorf("Send error = %v, want a temporary one wrapping the deadline", err)
	}
}

func TestSendWithStartTLS(t *testing.T) {
	_, pool := testCert()
	trusting := &tls.Config{RootCAs: pool}
	tests := []struct {
		name     string
		tls      bool // the relay offers STARTTLS
		relay    Relay
		users    map[string]string
		wantTLS  bool
		wantUser string
		stage    string // of the error; "" for success
		temp     bool
	}{
		{name: "opportunistic with STARTTLS offered encrypts, even with an untrusted certificate",
			tls: true, relay: Relay{StartTLS: StartTLSOpportunistic}, wantTLS: true},
		{name: "opportunistic without STARTTLS goes on in plain text",
			relay: Relay{StartTLS: StartTLSOpportunistic}},
		{name: "the default is opportunistic",
			tls: true, relay: Relay{}, wantTLS: true},
		{name: "none does not use STARTTLS even when offered",
			tls: true, relay: Relay{StartTLS: StartTLSNone}},
		{name: "required with a trusted certificate encrypts",
			tls: true, relay: Relay{StartTLS: StartTLSRequired, TLSConfig: trusting}, wantTLS: true},
		{name: "required but not offered fails temporarily with ErrTLSUnavailable",
			relay: Relay{StartTLS: StartTLSRequired, TLSConfig: trusting}, stage: "starttls", temp: true},
		{name: "required with a certificate that does not verify fails temporarily",
			tls: true, relay: Relay{StartTLS: StartTLSRequired}, stage: "starttls", temp: true},
		{name: "AUTH PLAIN over TLS authenticates",
			tls: true, users: map[string]string{"reporter": "s3cret"},
			relay:   Relay{StartTLS: StartTLSRequired, TLSConfig: trusting, Username: "reporter", Password: "s3cret"},
			wantTLS: true, wantUser: "reporter"},
		{name: "a wrong password is refused permanently",
			tls: true, users: map[string]string{"reporter": "s3cret"},
			relay: Relay{StartTLS: StartTLSRequired, TLSConfig: trusting, Username: "reporter", Password: "guess"},
			stage: "auth"},
		{name: "credentials without TLS when the relay offers AUTH only over TLS are a configuration error",
			users: map[string]string{"reporter": "s3cret"},
			relay: Relay{StartTLS: StartTLSNone, Username: "reporter", Password: "s3cret"},
			stage: "auth"},
		{name: "an unknown mode is a configuration error",
			relay: Relay{StartTLS: "yes"}, stage: "starttls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRelay(t, relayOptions{tls: tt.tls, users: tt.users})
			r := tt.relay
			r.Addr, r.HeloName, r.Timeout = srv.Addr, "reporter.example", 10*time.Second
			msg := signedReport(t)
			res, err := r.Send(context.Background(), "bounces@mail.receiver.example", []string{"rua@example.com"}, bytes.NewReader(msg))
			if tt.stage != "" {
				var e *Error
				if !errors.As(err, &e) || e.Stage != tt.stage || e.Temporary != tt.temp {
					t.Fatalf("Send error = %v, want a temporary=%v failure at %s", err, tt.temp, tt.stage)
				}
				if tt.name == tests[5].name && !errors.Is(err, ErrTLSUnavailable) {
					t.Errorf("%v does not wrap ErrTLSUnavailable", err)
				}
				if res.Rejected["rua@example.com"] == nil || len(srv.Received()) != 0 {
					t.Errorf("result %+v, relay received %d", res, len(srv.Received()))
				}
				if srv.Mails() != 0 {
					t.Error("MAIL was sent")
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.Received()
			if len(got) != 1 || !bytes.Equal(got[0].Data, msg) {
				t.Fatalf("the relay received %d messages (or other bytes)", len(got))
			}
			if got[0].TLS != tt.wantTLS || got[0].User != tt.wantUser {
				t.Errorf("TLS %v user %q, want %v %q", got[0].TLS, got[0].User, tt.wantTLS, tt.wantUser)
			}
			if got[0].Helos[len(got[0].Helos)-1] != "reporter.example" {
				t.Errorf("EHLO %v, want reporter.example", got[0].Helos)
			}
		})
	}
}

func TestSendRefusesInvalidAddressesBeforeConnecting(t *testing.T) {
	dead := deadAddr(t) // a connection attempt would fail temporarily
	tests := []struct {
		name     string
		from     string
		to       []string
		stage    string
		rejected int
	}{
		{"no recipient", "b@example.org", nil, "rcpt", 0},
		{"a recipient with a line break", "b@example.org", []string{"a@example.com>\r\nRCPT TO:<x@example.net"}, "rcpt", 1},
		{"a sender with a line break", "b@example.org>\r\nRSET", []string{"a@example.com"}, "mail", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Relay{Addr: dead}.Send(context.Background(), tt.from, tt.to, strings.NewReader(""))
			var e *Error
			if !errors.As(err, &e) || e.Stage != tt.stage || e.Temporary {
				t.Fatalf("Send error = %v, want a permanent failure at %s", err, tt.stage)
			}
			if len(res.Rejected) != tt.rejected {
				t.Errorf("rejected %v", res.Rejected)
			}
		})
	}
}

func TestSendWithTheNullReversePath(t *testing.T) {
	srv := startRelay(t, relayOptions{})
	_, err := Relay{Addr: srv.Addr}.Send(context.Background(), "", []string{"rua@example.com"}, bytes.NewReader(signedReport(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Received(); len(got) != 1 || got[0].From != "" {
		t.Errorf("received %+v, want MAIL FROM:<>", got)
	}
}

func TestSendHangsUpWithoutTheFinalDotWhenTheMessageFailsToRead(t *testing.T) {
	srv := startRelay(t, relayOptions{})
	msg := io.MultiReader(bytes.NewReader(signedReport(t)[:200]), failingReader{})
	res, err := Relay{Addr: srv.Addr}.Send(context.Background(), "b@example.org", []string{"rua@example.com"}, msg)
	var e *Error
	if !errors.As(err, &e) || e.Stage != "data" || e.Temporary || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Send error = %v, want a local, permanent failure at data", err)
	}
	if len(res.Accepted) != 0 || len(srv.Received()) != 0 {
		t.Errorf("a truncated message was delivered: %+v", res)
	}
}

func TestErrorsSayStageKindAndReply(t *testing.T) {
	e := classify("rcpt", reply(550, smtp.EnhancedCode{5, 1, 1}, "no such user"))
	if got, want := e.Error(), "smtp rcpt: permanent failure: 550 5.1.1 no such user"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	e = classify("connect", errors.New("connection refused"))
	if got, want := e.Error(), "smtp connect: temporary failure: connection refused"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestSendWhenTheRelayRefusesOrAbusesSTARTTLS(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		reply     string
		delivered bool
		unavail   bool // the error wraps ErrTLSUnavailable
	}{
		{"opportunistic goes on in plain text after a 454", StartTLSOpportunistic, "454 4.7.0 TLS not available\r\n", true, false},
		{"required fails temporarily after a 454", StartTLSRequired, "454 4.7.0 TLS not available\r\n", false, true},
		{"required fails temporarily after a 502", StartTLSRequired, "502 5.5.1 not implemented\r\n", false, true},
		{"data sent ahead of the handshake ends the session (CVE-2011-0411)", StartTLSOpportunistic,
			"220 2.0.0 ready\r\n250 2.0.0 injected\r\n", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startScriptedRelay(t, tt.reply)
			res, err := Relay{Addr: srv.Addr, StartTLS: tt.mode, Timeout: 10 * time.Second}.Send(context.Background(),
				"b@example.org", []string{"rua@example.com"}, bytes.NewReader(signedReport(t)))
			if tt.delivered {
				if err != nil || len(res.Accepted) != 1 {
					t.Fatalf("Send = %+v, %v; want delivered", res, err)
				}
				if data := <-srv.delivered; !bytes.Contains(data, []byte("Report Domain: example.com")) {
					t.Errorf("delivered %q", data)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Stage != "starttls" || !e.Temporary {
				t.Fatalf("Send error = %v, want a temporary failure at starttls", err)
			}
			if errors.Is(err, ErrTLSUnavailable) != tt.unavail {
				t.Errorf("errors.Is(%v, ErrTLSUnavailable) = %v", err, !tt.unavail)
			}
			select {
			case <-srv.delivered:
				t.Error("the message was delivered")
			default:
			}
		})
	}
}
