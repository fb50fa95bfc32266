package daemon

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/internal/dnstest"
	"github.com/dmarcd/dmarcd/internal/testenv"
	"github.com/dmarcd/dmarcd/report/delivery"
)

// offsetClock is real time moved forward by a settable offset: rows keep
// the real time the milter gives them, and the scheduler, reading this
// clock, sees their periods close.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// signingKeys writes an RSA and an Ed25519 key for report mail into dir
// and returns their paths and DNS records (selectors "rsa" and "ed" of
// reporter.test).
func signingKeys(t *testing.T, dir string) (rsaPath, edPath string, records []string) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPath, edPath = filepath.Join(dir, "rsa.pem"), filepath.Join(dir, "ed25519.pem")
	for _, k := range []struct {
		path string
		key  any
	}{{rsaPath, rk}, {edPath, ek}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(k.path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rr, _ := delivery.DNSRecord(rk.Public())
	er, _ := delivery.DNSRecord(ek.Public())
	return rsaPath, edPath, []string{
		dnstest.TXT("rsa._domainkey.reporter.test.", rr),
		dnstest.TXT("ed._domainkey.reporter.test.", er),
	}
}

// verifyDKIM checks every DKIM signature of msg against the keys the DNS
// server at dnsAddr publishes, and returns the signing domains and
// selectors that verified.
func verifyDKIM(t *testing.T, msg []byte, dnsAddr string) []string {
	t.Helper()
	lookup := func(name string) ([]string, error) {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
		r, _, err := c.Exchange(q, dnsAddr)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rr := range r.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				out = append(out, strings.Join(txt.Txt, ""))
			}
		}
		if len(out) == 0 {
			return nil, errors.New("no TXT record at " + name)
		}
		return out, nil
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatalf("DKIM: %v", err)
	}
	var ok []string
	for _, v := range vs {
		if v.Err != nil {
			t.Errorf("DKIM signature d=%s does not verify: %v", v.Domain, v.Err)
			continue
		}
		ok = append(ok, v.Domain)
	}
	return ok
}

// feedback is an aggregate report as the tests read it.
type feedback struct {
	XMLName  xml.Name
	Metadata struct {
		OrgName  string `xml:"org_name"`
		ReportID string `xml:"report_id"`
		Begin    int64  `xml:"date_range>begin"`
		End      int64  `xml:"date_range>end"`
	} `xml:"report_metadata"`
	Policy struct {
		Domain string `xml:"domain"`
	} `xml:"policy_published"`
	Records []struct {
		SourceIP string `xml:"row>source_ip"`
		Count    int64  `xml:"row>count"`
	} `xml:"record"`
}

func (f feedback) total() int64 {
	var n int64
	for _, r := range f.Records {
		n += r.Count
	}
	return n
}

// reportMail is a report mail taken apart.
type reportMail struct {
	Header   gomessage.Header
	FileName string
	XML      []byte
	Report   feedback
}

// readReportMail parses a report mail and gunzips its attachment.
func readReportMail(t *testing.T, raw []byte) reportMail {
	t.Helper()
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read mail: %v", err)
	}
	m := reportMail{Header: e.Header}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("not multipart:\n%s", raw)
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		_, params, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if params["filename"] == "" {
			continue
		}
		m.FileName = params["filename"]
		zr, err := gzip.NewReader(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		if m.XML, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	if err := xml.Unmarshal(m.XML, &m.Report); err != nil {
		t.Fatalf("report XML: %v\n%s", err, m.XML)
	}
	return m
}

// schemaCheck validates doc against a reference schema with xmllint and
// returns its complaint, "" when valid. Where the reference folder is
// absent, it says so and returns "" (the other checks still run).
func schemaCheck(t *testing.T, schema string, doc []byte) string {
	t.Helper()
	path := filepath.Join(testenv.ReferenceRoot(), "schemas", schema)
	if _, err := os.Stat(path); err != nil {
		t.Logf("reference schema not found at %s (set DMARCD_REFERENCE_DIR); the schema check is skipped", path)
		return ""
	}
	return testenv.Xmllint(t, path, doc)
}

// milterMessage runs one message through the milter at addr with
// go-milter's client, as an MTA would, and returns the milter's verdict
// ("accept", "reject", ...). from is the From domain; ip the client.
func milterMessage(addr, ip, from, queueID string) (string, error) {
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAFQDN, "mx.dmarcd.test")
	macros.Set(gomilter.MacroQueueId, queueID)
	c := gomilter.NewClient("tcp", addr, gomilter.WithActions(gomilter.AllClientSupportedActionMasks),
		gomilter.WithReadTimeout(30*time.Second), gomilter.WithWriteTimeout(30*time.Second))
	s, err := c.Session(macros)
	if err != nil {
		return "", err
	}
	defer s.Close()
	steps := []func() (*gomilter.Action, error){
		func() (*gomilter.Action, error) { return s.Conn("client.test", gomilter.FamilyInet, 25, ip) },
		func() (*gomilter.Action, error) { return s.Helo("client.test") },
		func() (*gomilter.Action, error) { return s.Mail("<bounce@elsewhere.test>", "") },
		func() (*gomilter.Action, error) { return s.Rcpt("<user@mx.dmarcd.test>", "") },
		s.DataStart,
		func() (*gomilter.Action, error) { return s.HeaderField("From", "<a@"+from+">", nil) },
		func() (*gomilter.Action, error) { return s.HeaderField("Subject", "load", nil) },
		s.HeaderEnd,
	}
	for _, st := range steps {
		act, err := st()
		if err != nil {
			return "", err
		}
		if act.Type != gomilter.ActionContinue {
			return actionName(act), nil
		}
	}
	_, act, err := s.BodyReadFrom(strings.NewReader("Hello.\r\n"))
	if err != nil {
		return "", err
	}
	return actionName(act), nil
}

func actionName(a *gomilter.Action) string {
	switch a.Type {
	case gomilter.ActionAccept, gomilter.ActionContinue:
		return "accept"
	case gomilter.ActionReject, gomilter.ActionRejectWithCode:
		return "reject"
	case gomilter.ActionTempFail:
		return "tempfail"
	}
	return fmt.Sprintf("action %d", a.Type)
}
