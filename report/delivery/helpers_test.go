package delivery

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// rsaKey is one 2048-bit key for the whole test binary: making one takes
// a while under -race.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var edKey = sync.OnceValue(func() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

const reportXML = `<?xml version="1.0" encoding="UTF-8"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <report_metadata><org_name>mail.receiver.example</org_name><report_id>r-1700000000@mail.receiver.example</report_id></report_metadata>
</feedback>
`

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sampleMessage is a valid report message; tests change what they test.
func sampleMessage(t testing.TB) Message {
	return Message{
		FromName:     "DMARC reports",
		FromAddress:  "dmarc-reports@mail.receiver.example",
		To:           []string{"rua@example.com"},
		ReportDomain: "example.com",
		Submitter:    "mail.receiver.example",
		ReportID:     "r-1700000000@mail.receiver.example",
		FileName:     "mail.receiver.example!example.com!1700000000!1700086399!r1700000000.xml.gz",
		Attachment:   bytes.NewReader(gzipped(t, reportXML)),
		Date:         time.Date(2023, 11, 15, 0, 5, 0, 0, time.UTC),
	}
}

func compose(t testing.TB, m Message) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Compose(&b, m); err != nil {
		t.Fatalf("Compose: %v", err)
	}
	return b.Bytes()
}

// testCert returns a self-signed certificate for 127.0.0.1 and localhost
// and a pool that trusts it.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
})

// received is one message a test relay accepted.
type received struct {
	From  string
	To    []string
	Data  []byte
	TLS   bool
	User  string // authenticated as
	Helos []string
}

// relay is an SMTP server on 127.0.0.1 that records what it receives
// and answers as told.
type relay struct {
	Addr string

	RcptReply map[string]*smtp.SMTPError // by recipient; nil means 250
	DataReply *smtp.SMTPError
	Users     map[string]string // AUTH PLAIN accounts; nil: no AUTH

	mu       sync.Mutex
	received []received
	mails    int // MAIL commands seen
}

type relayOptions struct {
	tls       bool                       // offer STARTTLS
	rcptReply map[string]*smtp.SMTPError // by recipient; nil means 250
	dataReply *smtp.SMTPError
	users     map[string]string // AUTH PLAIN accounts; nil: no AUTH
}

func startRelay(t testing.TB, opts relayOptions) *relay {
	t.Helper()
	r := &relay{RcptReply: opts.rcptReply, DataReply: opts.dataReply, Users: opts.users}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{relay: r, conn: c}, nil
	}))
	s.Domain = "relay.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)
	if opts.tls {
		cert, _ := testCert()
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(l)
	}()
	t.Cleanup(func() {
		// Close the listener itself as well: a test that never connects
		// can end before Serve has registered it with the server, and
		// s.Close alone would then leave Serve accepting for ever.
		s.Close()
		l.Close()
		<-done
	})
	return r
}

func (r *relay) Received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.received...)
}

func (r *relay) Mails() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mails
}

type relaySession struct {
	relay *relay
	conn  *smtp.Conn
	cur   received
}

func (s *relaySession) AuthMechanisms() []string {
	if s.relay.Users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if p, ok := s.relay.Users[username]; !ok || p != password || (identity != "" && identity != username) {
			return smtp.ErrAuthFailed
		}
		s.cur.User = username
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, opts *smtp.MailOptions) error {
	s.relay.mu.Lock()
	s.relay.mails++
	s.relay.mu.Unlock()
	if s.relay.Users != nil && s.cur.User == "" {
		return smtp.ErrAuthRequired
	}
	s.cur.From = from
	_, s.cur.TLS = s.conn.TLSConnectionState()
	s.cur.Helos = append(s.cur.Helos, s.conn.Hostname())
	return nil
}

func (s *relaySession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if e := s.relay.RcptReply[to]; e != nil {
		return e
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.relay.DataReply != nil {
		return s.relay.DataReply
	}
	s.cur.Data = data
	s.relay.mu.Lock()
	s.relay.received = append(s.relay.received, s.cur)
	s.relay.mu.Unlock()
	return nil
}

func (s *relaySession) Reset() {
	user := s.cur.User
	s.cur = received{User: user}
}

func (s *relaySession) Logout() error { return nil }

// deadAddr returns an address nothing listens on.
func deadAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentAddr returns an address that accepts connections and never
// says a word.
func silentAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// smtpCode returns the reply code of err, 0 if none.
func smtpCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// headerOf returns the header block of a message.
func headerOf(msg []byte) string {
	h, _, _ := strings.Cut(string(msg), "\r\n\r\n")
	return h + "\r\n"
}

// scriptedRelay is a bare SMTP server for what go-smtp's server will not
// do: it offers STARTTLS and answers it with startTLSReply, verbatim, and
// accepts everything else. It serves one connection.
type scriptedRelay struct {
	Addr      string
	delivered chan []byte // the message, if one came
}

func startScriptedRelay(t *testing.T, startTLSReply string) *scriptedRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &scriptedRelay{Addr: l.Addr().String(), delivered: make(chan []byte, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tp := textproto.NewConn(c)
		tp.PrintfLine("220 scripted.test ESMTP")
		for {
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
			switch verb {
			case "EHLO":
				tp.PrintfLine("250-scripted.test\r\n250-STARTTLS\r\n250 8BITMIME")
			case "STARTTLS":
				io.WriteString(c, startTLSReply)
			case "DATA":
				tp.PrintfLine("354 go ahead")
				data, err := tp.ReadDotBytes()
				if err != nil {
					return
				}
				r.delivered <- data
				tp.PrintfLine("250 2.0.0 queued")
			case "QUIT":
				tp.PrintfLine("221 bye")
				return
			default:
				tp.PrintfLine("250 2.0.0 ok")
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return r
}
