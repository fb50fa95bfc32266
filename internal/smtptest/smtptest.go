// Package smtptest runs an SMTP server on 127.0.0.1 for tests, with
// go-smtp: it stands in for the relay that report mail is handed to,
// keeps every message it accepts, and refuses recipients as a test says.
//
//	srv := smtptest.Start(t)
//	// send to srv.Addr()
//	msgs := srv.Wait(t, 1, 10*time.Second)
package smtptest

import (
	"bytes"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	At   time.Time
}

// Server is a running test SMTP server.
type Server struct {
	srv  *smtp.Server
	addr string

	mu       sync.Mutex
	msgs     []Message
	rcptErr  func(rcpt string) error
	received chan struct{}
}

// Start starts a server on a free port of 127.0.0.1, stopped when the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	s := &Server{addr: ln.Addr().String(), received: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "relay.smtptest.test"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go s.srv.Serve(ln)
	// ln.Close too: the test may end before Serve has registered ln with
	// the server, and srv.Close alone would then leave it accepting.
	t.Cleanup(func() { s.srv.Close(); ln.Close() })
	return s
}

// Addr returns the server's address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// RejectRecipients makes RCPT TO answer fn's error for the recipients it
// returns one for (an *smtp.SMTPError says the code); nil accepts all.
func (s *Server) RejectRecipients(fn func(rcpt string) error) {
	s.mu.Lock()
	s.rcptErr = fn
	s.mu.Unlock()
}

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait waits until at least n messages were accepted and returns them,
// failing the test after timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.received:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("smtptest: %d messages after %v, want %d", len(s.Messages()), timeout, n)
		}
	}
}

type session struct {
	s    *Server
	from string
	to   []string
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	fn := ss.s.rcptErr
	ss.s.mu.Unlock()
	if fn != nil {
		if err := fn(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, Message{From: ss.from, To: ss.to, Data: b.Bytes(), At: time.Now()})
	ss.s.mu.Unlock()
	select {
	case ss.s.received <- struct{}{}:
	default:
	}
	return nil
}
