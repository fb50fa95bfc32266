package postfixtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// DefaultClientAddr is the local address the SMTP client binds to unless
// told otherwise: a loopback address outside the instance's mynetworks
// (127.0.0.1/32) and outside OpenDMARC's default IgnoreHosts, so the
// client looks like a sender from the Internet.
const DefaultClientAddr = "127.0.0.2"

// DefaultHelo is the name the SMTP client greets with unless told
// otherwise.
const DefaultHelo = "client.sender.test"

// ClientOptions configure an SMTP session. The zero value connects from
// DefaultClientAddr and sends EHLO DefaultHelo.
type ClientOptions struct {
	// LocalAddr is the IP address the client binds to: any of 127.0.0.0/8
	// works on Linux. Empty means DefaultClientAddr; "127.0.0.1" is inside
	// mynetworks.
	LocalAddr string

	// Helo is the name given in EHLO or HELO. Empty means DefaultHelo.
	Helo string

	// UseHELO sends HELO instead of EHLO.
	UseHELO bool

	// Timeout bounds each command's round trip. 0 means 30s, longer than
	// the milter timeouts the harness sets, so a slow milter shows as
	// Postfix's reply, not as a client timeout.
	Timeout time.Duration
}

// Message is one SMTP transaction.
type Message struct {
	// From is the MAIL FROM address, without angle brackets. Empty sends
	// the null reverse-path, MAIL FROM:<>.
	From string

	// MailParams are ESMTP parameters appended to MAIL FROM, e.g.
	// "BODY=8BITMIME" or "SMTPUTF8".
	MailParams string

	// To are the RCPT TO addresses, without angle brackets.
	To []string

	// Data is the message, header and body, as it is before transmission:
	// a lone LF ends a line like CRLF does and is sent as CRLF, and lines
	// that begin with "." are dot-stuffed. A missing final line ending is
	// added.
	Data []byte
}

// Reply is an SMTP reply.
type Reply struct {
	// Code is the three-digit reply code; 0 if there was no reply.
	Code int
	// Enhanced is the RFC 3463 enhanced status code that begins the text,
	// "5.7.1", or "" if it has none.
	Enhanced string
	// Text is the reply text without code and enhanced code, its lines
	// joined with "\n".
	Text string
}

// String returns the reply as it was on the wire, one line: "550 5.7.1 text".
func (r Reply) String() string {
	if r.Code == 0 {
		return "(no reply)"
	}
	s := fmt.Sprint(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if r.Text != "" {
		s += " " + strings.ReplaceAll(r.Text, "\n", " / ")
	}
	return s
}

// OK reports whether the reply is positive (2xx or 3xx).
func (r Reply) OK() bool { return r.Code >= 200 && r.Code < 400 }

// Stage names the point of an SMTP session where a reply was given.
type Stage string

// The stages of a session, in order.
const (
	StageConnect Stage = "CONNECT"        // the greeting
	StageHelo    Stage = "HELO"           // EHLO or HELO
	StageMail    Stage = "MAIL"           // MAIL FROM
	StageRcpt    Stage = "RCPT"           // RCPT TO
	StageData    Stage = "DATA"           // the DATA command
	StageEnd     Stage = "END-OF-MESSAGE" // the reply to the final "."
)

// SendResult is what became of one message: the reply that decided it, and
// every reply on the way.
type SendResult struct {
	// Reply decides the message: the reply to the end of the message if
	// it got that far, else the first refusal (of all recipients, the
	// first one's). A test asserting "550 5.7.1" looks here.
	Reply
	// Stage is where Reply was given.
	Stage Stage
	// QueueID is the queue id in a positive end-of-message reply ("250
	// 2.0.0 Ok: queued as 4AB12C3D"), else "".
	QueueID string

	Mail Reply   // the reply to MAIL FROM, if sent
	Rcpt []Reply // the replies to each RCPT TO sent, in order
	Data Reply   // the reply to DATA (354), if sent
}

// Accepted reports whether Postfix took the message: a 2xx reply to its
// end. A message accepted into the hold queue (quarantine) is accepted.
func (r SendResult) Accepted() bool { return r.Stage == StageEnd && r.Code/100 == 2 }

// String describes the result for failure messages.
func (r SendResult) String() string {
	s := fmt.Sprintf("%s: %v", r.Stage, r.Reply)
	if r.QueueID != "" {
		s += " (queue id " + r.QueueID + ")"
	}
	return s
}

var queuedAs = regexp.MustCompile(`queued as ([0-9A-Za-z]+)`)

// Session is an SMTP session with the instance's smtpd: one connection,
// one milter session behind it, any number of messages.
type Session struct {
	p       *Postfix
	t       testing.TB
	conn    net.Conn
	text    *textproto.Conn
	timeout time.Duration

	// Greeting is the server's greeting: 220, or 554 when Postfix refuses
	// the connection (milter_default_action = reject with the milter
	// down, for one).
	Greeting Reply
	// Hello is the reply to EHLO or HELO; zero if the greeting was not
	// 220.
	Hello Reply

	// ended is the reply after which the session carries no more mail (a
	// refused greeting, a 421), endedAt where it came.
	ended   Reply
	endedAt Stage
	closed  bool // the connection is closed
}

// Dial opens an SMTP session with the instance: it connects from
// opts.LocalAddr, reads the greeting and, if it is 220, sends EHLO (or
// HELO). A refused greeting or greeting command does not fail the test:
// each Send on the session then returns it as its result. t.Cleanup closes
// the session if the test does not.
func (p *Postfix) Dial(t testing.TB, opts ClientOptions) *Session {
	t.Helper()
	local := opts.LocalAddr
	if local == "" {
		local = DefaultClientAddr
	}
	ip := net.ParseIP(local)
	if ip == nil {
		t.Fatalf("postfixtest: LocalAddr %q is not an IP address", local)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: timeout}
	conn, err := d.Dial("tcp", p.SMTPAddr())
	if err != nil {
		t.Fatalf("postfixtest: connect to %s from %s: %v\n%s", p.SMTPAddr(), local, err, tail(p.Log(), 50))
	}
	s := &Session{p: p, t: t, conn: conn, text: textproto.NewConn(conn), timeout: timeout}
	t.Cleanup(s.Close)

	s.Greeting = s.read(StageConnect)
	if s.Greeting.Code != 220 {
		if s.ended.Code == 0 {
			s.ended, s.endedAt = s.Greeting, StageConnect
		}
		return s
	}
	helo := opts.Helo
	if helo == "" {
		helo = DefaultHelo
	}
	verb := "EHLO"
	if opts.UseHELO {
		verb = "HELO"
	}
	s.Hello = s.Cmd("%s %s", verb, helo)
	return s
}

// Send sends one message on the session: MAIL FROM, RCPT TO for each
// recipient, DATA and the message if a recipient was accepted, then, if
// the transaction failed before its end, RSET, so that the next Send
// starts clean. Refusals are results, not test failures; a broken
// connection fails the test.
func (s *Session) Send(msg Message) SendResult {
	s.t.Helper()
	switch {
	case s.ended.Code != 0:
		return SendResult{Reply: s.ended, Stage: s.endedAt}
	case s.closed:
		s.t.Fatalf("postfixtest: Send on a closed session")
	case !s.Hello.OK():
		return SendResult{Reply: s.Hello, Stage: StageHelo}
	}
	if len(msg.To) == 0 {
		s.t.Fatalf("postfixtest: Send: message without recipients")
	}
	var r SendResult
	fail := func(stage Stage, reply Reply) SendResult {
		r.Stage, r.Reply = stage, reply
		if s.ended.Code == 0 {
			s.Cmd("RSET")
		}
		return r
	}

	mail := "MAIL FROM:<" + msg.From + ">"
	if msg.MailParams != "" {
		mail += " " + msg.MailParams
	}
	r.Mail = s.Cmd("%s", mail)
	if !r.Mail.OK() {
		return fail(StageMail, r.Mail)
	}
	refused := -1 // index of the first refused recipient
	for _, rcpt := range msg.To {
		reply := s.Cmd("RCPT TO:<%s>", rcpt)
		r.Rcpt = append(r.Rcpt, reply)
		if !reply.OK() && refused < 0 {
			refused = len(r.Rcpt) - 1
		}
		if s.ended.Code != 0 {
			return fail(StageRcpt, reply)
		}
	}
	if !slices.ContainsFunc(r.Rcpt, Reply.OK) {
		return fail(StageRcpt, r.Rcpt[refused])
	}
	r.Data = s.Cmd("DATA")
	if r.Data.Code != 354 {
		return fail(StageData, r.Data)
	}
	s.deadline()
	w := s.text.DotWriter()
	_, err := w.Write(msg.Data)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		s.broken("sending the message", err)
	}
	r.Reply = s.read(StageEnd)
	r.Stage = StageEnd
	if r.Code/100 == 2 {
		if m := queuedAs.FindStringSubmatch(r.Text); m != nil {
			r.QueueID = m[1]
		}
	}
	return r
}

// Cmd sends one command line and returns the reply, for what Send does
// not cover (NOOP, VRFY, a bare RSET). After a 421 reply the session
// carries no more commands.
func (s *Session) Cmd(format string, args ...any) Reply {
	s.t.Helper()
	line := fmt.Sprintf(format, args...)
	if s.closed {
		s.t.Fatalf("postfixtest: command %q on a closed session (ended by %v)", line, s.ended)
	}
	s.deadline()
	if err := s.text.PrintfLine("%s", line); err != nil {
		s.broken(fmt.Sprintf("sending %q", line), err)
	}
	verb, _, _ := strings.Cut(line, " ")
	stage := Stage(strings.ToUpper(verb))
	if stage == "EHLO" {
		stage = StageHelo
	}
	return s.read(stage)
}

// read reads one reply.
func (s *Session) read(stage Stage) Reply {
	s.t.Helper()
	s.deadline()
	code, msg, err := s.text.ReadResponse(0) // 0: any code is a reply, not an error
	if err != nil {
		s.broken(fmt.Sprintf("reading the reply to %s", stage), err)
	}
	r := parseReply(code, msg)
	if code == 421 {
		s.ended, s.endedAt = r, stage
		s.Close()
	}
	return r
}

var enhancedCode = regexp.MustCompile(`^([245]\.\d{1,3}\.\d{1,3})(?: |$)`)

// parseReply splits a reply's text (lines joined by "\n", as textproto
// returns them) into enhanced code and text.
func parseReply(code int, msg string) Reply {
	r := Reply{Code: code}
	lines := strings.Split(msg, "\n")
	if m := enhancedCode.FindStringSubmatch(lines[0]); m != nil {
		r.Enhanced = m[1]
		for i, l := range lines {
			if strings.HasPrefix(l, r.Enhanced) {
				lines[i] = strings.TrimPrefix(strings.TrimPrefix(l, r.Enhanced), " ")
			}
		}
	}
	r.Text = strings.Join(lines, "\n")
	return r
}

func (s *Session) deadline() { _ = s.conn.SetDeadline(time.Now().Add(s.timeout)) }

// broken fails the test on an I/O error.
func (s *Session) broken(doing string, err error) {
	s.t.Helper()
	s.Close()
	if errors.Is(err, io.EOF) {
		err = errors.New("connection closed by the server")
	}
	s.t.Fatalf("postfixtest: SMTP session with %s: %s: %v\nPostfix log:\n%s", s.p.SMTPAddr(), doing, err, tail(s.p.Log(), 50))
}

// Quit sends QUIT, reads the reply and closes the connection.
func (s *Session) Quit() Reply {
	s.t.Helper()
	if s.closed {
		return s.ended
	}
	r := s.Cmd("QUIT")
	s.Close()
	return r
}

// Close closes the connection without QUIT. It may be called more than
// once.
func (s *Session) Close() {
	if !s.closed {
		s.closed = true
		s.conn.Close()
	}
}

// Send sends one message in a session of its own from DefaultClientAddr,
// greeting with DefaultHelo, and quits.
func (p *Postfix) Send(t testing.TB, msg Message) SendResult {
	t.Helper()
	return p.SendFrom(t, ClientOptions{}, msg)[0]
}

// SendFrom sends the messages in one session opened with opts, one result
// per message, and quits.
func (p *Postfix) SendFrom(t testing.TB, opts ClientOptions, msgs ...Message) []SendResult {
	t.Helper()
	s := p.Dial(t, opts)
	defer s.Close()
	rs := make([]SendResult, len(msgs))
	for i, m := range msgs {
		rs[i] = s.Send(m)
	}
	s.Quit()
	return rs
}
