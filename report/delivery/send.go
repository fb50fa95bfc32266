package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The StartTLS modes of a Relay.
const (
	// StartTLSOpportunistic uses STARTTLS when the relay offers it,
	// without checking the relay's certificate (RFC 7435: encryption
	// without authentication beats none; Debian's Postfix on localhost
	// offers a self-signed "snakeoil" certificate), and goes on in plain
	// text when it is not offered or the relay refuses the command.
	StartTLSOpportunistic = "opportunistic"
	// StartTLSRequired insists on STARTTLS with a certificate that
	// verifies for the relay's host name (or TLSConfig.ServerName) against
	// the system roots (or TLSConfig.RootCAs). A relay that does not offer
	// it fails the delivery, temporarily, with ErrTLSUnavailable.
	StartTLSRequired = "required"
	// StartTLSNone never uses TLS.
	StartTLSNone = "none"
)

// ErrTLSUnavailable is wrapped by the error of a delivery that needed
// STARTTLS and could not have it: the relay did not offer it, or refused
// the command. It is a temporary failure, as Postfix treats it (a relay's
// TLS setup is fixed by its administrator; an attacker stripping STARTTLS
// goes away), but it also points at configuration: log it loudly.
var ErrTLSUnavailable = errors.New("STARTTLS is required but the relay does not offer it")

// Relay is the SMTP server report mail is handed to, usually the local
// MTA, which queues it and delivers it to each destination's MX.
type Relay struct {
	// Addr is host:port; a missing port means 25. Default "localhost:25".
	Addr string
	// HeloName is the name given in EHLO. Default: the host name.
	HeloName string
	// StartTLS is StartTLSOpportunistic (the default), StartTLSRequired
	// or StartTLSNone. It covers the hop to the relay only: the secure
	// transport RFC 9990 §3.5 asks for on the way to the destination is
	// the relay's outbound TLS policy.
	StartTLS string
	// TLSConfig, if set, is the base of the TLS settings (RootCAs to trust
	// a private CA, ServerName, client certificates). Its ServerName
	// defaults to the host of Addr.
	TLSConfig *tls.Config
	// Username and Password, if Username is set, authenticate with AUTH
	// PLAIN (or LOGIN when only that is offered). They are sent only over
	// TLS or to a relay on a loopback address; with credentials to a
	// remote relay, use StartTLSRequired, for opportunistic TLS does not
	// check who is at the other end.
	Username, Password string
	// Timeout bounds each step of the session: connecting, each reply
	// the relay owes (the final one after the message included), each
	// write of the message. Default 5 minutes (RFC 5321 §4.5.3.2). The
	// context bounds the whole session.
	Timeout time.Duration
}

const defaultTimeout = 5 * time.Minute

// Result is the outcome of Send, recipient by recipient.
type Result struct {
	// Accepted are the recipients the relay took responsibility for: it
	// accepted them and then the message.
	Accepted []string
	// Rejected holds every other recipient, with why, as an *Error.
	Rejected map[string]error
	// Temporary is set when at least one rejection is temporary: those
	// recipients (Retry) should be tried again later with the same
	// message.
	Temporary bool
}

// Retry returns the recipients whose rejection was temporary.
func (r Result) Retry() []string {
	var l []string
	for rcpt, err := range r.Rejected {
		if IsTemporary(err) {
			l = append(l, rcpt)
		}
	}
	return l
}

// Error is a failed delivery step.
type Error struct {
	// Stage is the step that failed: "connect", "hello", "starttls",
	// "auth", "mail", "rcpt" or "data". A failure before "rcpt" concerns
	// the relay or this side's configuration, not the destination: even a
	// permanent one there should not drop the report.
	Stage string
	// Code and EnhancedCode are the relay's reply, when there was one.
	Code         int
	EnhancedCode [3]int
	// Temporary tells whether trying again later may succeed: 4xx
	// replies, network failures and timeouts, TLS failures. 5xx replies
	// and invalid input are permanent.
	Temporary bool
	// Err is the cause: an *smtp.SMTPError for a reply, a network error,
	// ErrTLSUnavailable...
	Err error
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	var se *smtp.SMTPError
	if errors.As(e.Err, &se) {
		s := fmt.Sprintf("smtp %s: %s failure: %d", e.Stage, kind, se.Code)
		if c := se.EnhancedCode; c[0] > 0 {
			s += fmt.Sprintf(" %d.%d.%d", c[0], c[1], c[2])
		}
		return s + " " + strings.ReplaceAll(se.Message, "\n", " ")
	}
	return fmt.Sprintf("smtp %s: %s failure: %v", e.Stage, kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsTemporary reports whether err, returned by Send or found in
// Result.Rejected, is worth retrying later.
func IsTemporary(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Temporary
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// Send hands msg to the relay for the recipients to, in one SMTP
// transaction with from as the envelope sender (reverse-path).
//
// from should be a real mailbox whose domain aligns with the From domain
// (the same, or below the same organizational domain): the report then
// passes DMARC through SPF even if its DKIM signature breaks on the way
// (RFC 9990 §3.5.2 wants report mail to pass DMARC aligned), and the
// bounces for destinations that no longer take reports come back to be
// seen. The empty string sends with the null reverse-path, which RFC 3834
// advises for automatic replies but which loses both; neither RFC 7489
// nor RFC 9990 asks for it.
//
// Recipients the relay refuses are in Result.Rejected with their own
// error, the others are delivered. The error is nil when at least one
// recipient was delivered; otherwise it is an *Error for the step that
// failed (or, when every recipient was refused, one summing them up), and
// every recipient is in Rejected. A connection lost after the whole
// message was sent and before the relay's answer is a temporary failure,
// although the relay may have queued the message: a retry may then
// deliver it twice, which the stable Message-ID lets receivers detect.
func (r Relay) Send(ctx context.Context, from string, to []string, msg io.Reader) (Result, error) {
	s := &session{relay: r, res: Result{Rejected: make(map[string]error)}}
	s.timeout = r.Timeout
	if s.timeout <= 0 {
		s.timeout = defaultTimeout
	}
	err := s.send(ctx, from, to, msg)
	if err != nil && ctx.Err() != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == 0 {
			e.Err = fmt.Errorf("%w (%v)", context.Cause(ctx), e.Err)
			e.Temporary = true
		}
	}
	return s.res, err
}

type session struct {
	relay   Relay
	timeout time.Duration
	res     Result
	pending []string // recipients not decided yet
}

// fail records e for every recipient not decided yet and returns it.
func (s *session) fail(e *Error) error {
	for _, rcpt := range s.pending {
		s.reject(rcpt, e)
	}
	s.pending = nil
	return e
}

func (s *session) reject(rcpt string, e *Error) {
	s.res.Rejected[rcpt] = e
	s.res.Temporary = s.res.Temporary || e.Temporary
}

func (s *session) send(ctx context.Context, from string, to []string, msg io.Reader) error {
	r := s.relay
	seen := make(map[string]bool)
	for _, rcpt := range to {
		if seen[rcpt] {
			continue
		}
		seen[rcpt] = true
		if _, err := checkAddress(rcpt); err != nil {
			s.reject(rcpt, &Error{Stage: "rcpt", Err: err})
			continue
		}
		s.pending = append(s.pending, rcpt)
	}
	if len(s.pending) == 0 {
		if len(to) == 0 {
			return &Error{Stage: "rcpt", Err: errors.New("no recipients")}
		}
		return s.allRefused()
	}
	if from != "" {
		if _, err := checkAddress(from); err != nil {
			return s.fail(&Error{Stage: "mail", Err: err})
		}
	}
	mode := r.StartTLS
	switch mode {
	case "":
		mode = StartTLSOpportunistic
	case StartTLSOpportunistic, StartTLSRequired, StartTLSNone:
	default:
		return s.fail(&Error{Stage: "starttls", Err: fmt.Errorf("unknown StartTLS mode %q (want %s, %s or %s)",
			mode, StartTLSOpportunistic, StartTLSRequired, StartTLSNone)})
	}
	addr := r.Addr
	if addr == "" {
		addr = "localhost:25"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), "25"
	}
	helo := r.HeloName
	if helo == "" {
		if helo, _ = os.Hostname(); helo == "" {
			helo = "localhost"
		}
	}
	if strings.IndexFunc(helo, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return s.fail(&Error{Stage: "hello", Err: fmt.Errorf("HELO name %q: not a host name", helo)})
	}

	dialer := net.Dialer{Timeout: s.timeout}
	raw, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return s.fail(&Error{Stage: "connect", Temporary: true, Err: err})
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	conn := &writeDeadlineConn{Conn: raw, timeout: s.timeout}

	c := s.client(conn)
	if err := c.Hello(helo); err != nil {
		return s.fail(classify("hello", err))
	}

	secure := false
	if mode != StartTLSNone {
		if ok, _ := c.Extension("STARTTLS"); ok {
			tc, err := s.startTLS(ctx, conn, host, helo, mode)
			switch {
			case err != nil:
				return s.fail(err)
			case tc != nil:
				c, secure = tc, true
			}
		} else if mode == StartTLSRequired {
			return s.fail(&Error{Stage: "starttls", Temporary: true, Err: ErrTLSUnavailable})
		}
	}
	defer c.Close()

	if r.Username != "" {
		if err := s.auth(c, raw, secure); err != nil {
			return s.fail(err)
		}
	}

	if err := c.Mail(from, nil); err != nil {
		return s.fail(classify("mail", err))
	}
	var accepted []string
	for len(s.pending) > 0 {
		rcpt := s.pending[0]
		err := c.Rcpt(rcpt, nil)
		if err == nil {
			accepted = append(accepted, rcpt)
			s.pending = s.pending[1:]
			continue
		}
		e := classify("rcpt", err)
		if e.Code == 0 || e.Code == 421 {
			// The connection is gone or going: the others get the same.
			s.pending = append(accepted, s.pending...)
			return s.fail(e)
		}
		s.reject(rcpt, e)
		s.pending = s.pending[1:]
	}
	if len(accepted) == 0 {
		c.Quit()
		return s.allRefused()
	}
	s.pending = accepted

	wc, err := c.Data()
	if err != nil {
		return s.fail(classify("data", err))
	}
	src := &sourceReader{r: msg}
	if _, err := io.Copy(wc, src); err != nil {
		if src.err != nil {
			// Our side failed: hang up without the final dot, so the
			// relay discards what it got.
			return s.fail(&Error{Stage: "data", Err: fmt.Errorf("read message: %w", src.err)})
		}
		return s.fail(classify("data", err))
	}
	if err := wc.Close(); err != nil {
		return s.fail(classify("data", err))
	}
	s.res.Accepted = accepted
	s.pending = nil
	c.Quit()
	return nil
}

// allRefused is the error of a transaction in which every recipient was
// refused.
func (s *session) allRefused() error {
	var errs []error
	temporary := false
	for _, err := range s.res.Rejected {
		errs = append(errs, err)
		temporary = temporary || IsTemporary(err)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return &Error{Stage: "rcpt", Temporary: temporary,
		Err: fmt.Errorf("all %d recipients refused: %w", len(errs), errors.Join(errs...))}
}

func (s *session) client(conn net.Conn) *smtp.Client {
	c := smtp.NewClient(conn)
	c.CommandTimeout = s.timeout
	c.SubmissionTimeout = s.timeout
	return c
}

// startTLS issues STARTTLS on conn, on which the go-smtp client has said
// EHLO, and returns a client for the TLS session, having said EHLO again.
// It returns no client and no error when an opportunistic STARTTLS is
// refused: the session goes on in plain text.
//
// go-smtp v0.25 cannot start TLS on a client already greeted (its only
// way, NewClientStartTLS, says EHLO localhost first, whatever the HELO
// name, and hangs up if STARTTLS is missing), so the command is issued
// here and the new client is given the greeting it expects.
func (s *session) startTLS(ctx context.Context, conn net.Conn, host, helo, mode string) (*smtp.Client, *Error) {
	conn.SetDeadline(time.Now().Add(s.timeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "STARTTLS\r\n"); err != nil {
		return nil, classify("starttls", err)
	}
	br := bufio.NewReader(conn)
	_, msg, err := textproto.NewReader(br).ReadResponse(220)
	if br.Buffered() > 0 {
		// Data sent ahead of the TLS handshake could be taken for replies
		// inside TLS (CVE-2011-0411): give up on this relay.
		return nil, &Error{Stage: "starttls", Temporary: true, Err: errors.New("the relay sent data after its STARTTLS reply")}
	}
	if err != nil {
		var te *textproto.Error
		if errors.As(err, &te) && mode == StartTLSOpportunistic {
			return nil, nil
		}
		e := classify("starttls", err)
		if te != nil {
			e.Err = fmt.Errorf("%w: %w", ErrTLSUnavailable, e.Err)
			e.Temporary = true
		}
		return nil, e
	}

	var cfg *tls.Config
	if s.relay.TLSConfig != nil {
		cfg = s.relay.TLSConfig.Clone()
	} else {
		cfg = new(tls.Config)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if mode == StartTLSOpportunistic {
		cfg.InsecureSkipVerify = true
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, &Error{Stage: "starttls", Temporary: true, Err: fmt.Errorf("TLS handshake with %s: %w", cfg.ServerName, err)}
	}
	greeting := "220 " + host + " " + strings.ReplaceAll(msg, "\n", " ") + "\r\n"
	c := s.client(&greetedConn{Conn: tc, r: io.MultiReader(strings.NewReader(greeting), tc)})
	if err := c.Hello(helo); err != nil {
		return nil, classify("hello", err)
	}
	return c, nil
}

// auth authenticates with the relay.
func (s *session) auth(c *smtp.Client, raw net.Conn, secure bool) *Error {
	r := s.relay
	if !secure {
		if a, ok := raw.RemoteAddr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
			return &Error{Stage: "auth", Err: errors.New("refusing to send the password in plain text to a relay not on this host: use StartTLS required")}
		}
	}
	var mech sasl.Client
	switch {
	case c.SupportsAuth("PLAIN"):
		mech = sasl.NewPlainClient("", r.Username, r.Password)
	case c.SupportsAuth("LOGIN"):
		mech = sasl.NewLoginClient(r.Username, r.Password)
	default:
		why := "the relay offers neither AUTH PLAIN nor AUTH LOGIN"
		if !secure {
			why += " (many offer AUTH only after STARTTLS)"
		}
		return &Error{Stage: "auth", Err: errors.New(why)}
	}
	if err := c.Auth(mech); err != nil {
		return classify("auth", err)
	}
	return nil
}

// classify turns an error of the go-smtp client into an *Error: a reply
// is temporary when its code is not 5xx (4xx, and replies nobody expected,
// which mean confusion, not refusal), anything else (network, timeout,
// TLS, connection closed) is temporary.
func classify(stage string, err error) *Error {
	e := &Error{Stage: stage, Err: err, Temporary: true}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		e.Code = se.Code
		e.EnhancedCode = [3]int(se.EnhancedCode)
		e.Temporary = se.Code/100 != 5
		// RFC 5321 §4.5.3.1.10: 552 to RCPT is the old "too many
		// recipients", to be taken as temporary.
		if stage == "rcpt" && se.Code == 552 {
			e.Temporary = true
		}
		return e
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		e.Code = te.Code
		e.Temporary = te.Code/100 != 5
	}
	return e
}

// writeDeadlineConn gives each write its own deadline. go-smtp bounds
// each command and reply, but not the writes of the message after DATA.
type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeDeadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

// greetedConn replays a greeting ahead of what the connection reads.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (c *greetedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// sourceReader remembers the error of the message being sent, to tell it
// from the errors of the connection.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}
