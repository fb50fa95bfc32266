package milter

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/netip"
	"strings"
	"sync"
	"testing"

	gomilter "github.com/d--j/go-milter"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/dmarcd/dmarcd/dmarc"
)

// signedDNS adds to testDNS a domain with p=reject whose mail is signed
// with the key returned.
func signedDNS(t *testing.T) (map[string][]string, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dns := map[string][]string{
		"_dmarc.signed.example":        {"v=DMARC1; p=reject"},
		"s1._domainkey.signed.example": {"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)},
	}
	for k, v := range testDNS {
		dns[k] = v
	}
	return dns, key
}

// sign returns a message signed by signed.example with simple/simple
// canonicalization, the strictest about the bytes the milter rebuilds.
func sign(t *testing.T, key *rsa.PrivateKey, body string) []byte {
	t.Helper()
	msg := "From: Alice <alice@signed.example>\r\nTo: bob@mx.test\r\nSubject: a signed message\r\n" +
		"Date: Sat, 28 Nov 2026 00:00:00 +0000\r\nMessage-ID: <1@signed.example>\r\n\r\n" + body
	var out bytes.Buffer
	err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
		Domain: "signed.example", Selector: "s1", Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationSimple, BodyCanonicalization: dkim.CanonicalizationSimple,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sendRaw sends a whole message (header fields as written, then the body)
// the way an MTA does.
func (e *env) sendRaw(raw []byte, change func(body []byte) []byte) outcomeOf {
	e.t.Helper()
	s, macros := e.session()
	e.connect(s, msg{})
	macros.Set(gomilter.MacroQueueId, "QRAW")
	if _, err := s.Mail("<bounce@elsewhere.example>", ""); err != nil {
		e.t.Fatal(err)
	}
	s.Rcpt("<bob@mx.test>", "")
	s.DataStart()
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lead := ""
	if s.ProtocolOption(gomilter.OptHeaderLeadingSpace) {
		lead = " "
	}
	for _, line := range splitFields(string(head)) {
		name, value, _ := strings.Cut(line, ":")
		// Postfix passes the value without the space after the colon
		// unless asked to keep it, and folds with bare LF.
		value = strings.ReplaceAll(strings.TrimPrefix(value, " "), "\r\n", "\n")
		if _, err := s.HeaderField(name, lead+value, nil); err != nil {
			e.t.Fatal(err)
		}
	}
	s.HeaderEnd()
	if change != nil {
		body = change(body)
	}
	mods, act, err := s.BodyReadFrom(bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	return outcomeOf{act: act, mods: mods}
}

// splitFields splits a header block into fields, keeping folded lines.
func splitFields(head string) []string {
	var out []string
	for _, l := range strings.Split(head, "\r\n") {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(out) > 0 {
			out[len(out)-1] += "\r\n" + l
			continue
		}
		out = append(out, l)
	}
	return out
}

func TestDKIMSelfVerification(t *testing.T) {
	dns, key := signedDNS(t)
	verify := func(c *Config) { c.DKIMSelfVerify = true }
	body := "Hello,\r\n\r\nthis is signed.\r\n"
	tests := []struct {
		name   string
		tweak  func(*Config)
		change func([]byte) []byte
		action gomilter.ActionType
		header string
	}{
		{"a valid signature passes and aligns", verify, nil, gomilter.ActionAccept,
			"mx.test; dkim=pass header.d=signed.example header.s=s1; dmarc=pass (p=reject dis=none) header.from=signed.example"},
		{"a body changed after signing fails", verify, func(b []byte) []byte { return append(b, "PS: added\r\n"...) },
			gomilter.ActionRejectWithCode, ""},
		{"a message over the size cap is not verified here", func(c *Config) { verify(c); c.MaxMessageSize = 100 }, nil,
			gomilter.ActionRejectWithCode, ""},
		{"without self-verification the signature is not checked", nil, nil, gomilter.ActionRejectWithCode, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startWith(t, Strict, tt.tweak, dmarc.MapResolver{TXT: dns})
			o := e.sendRaw(sign(t, key, body), tt.change)
			if o.act.Type != tt.action {
				t.Fatalf("action %v (%q), want %v\n%s", o.act.Type, o.act.SMTPReply, tt.action, e.logs)
			}
			if tt.header != "" && (len(o.inserted()) != 1 || !strings.Contains(o.inserted()[0], tt.header)) {
				t.Errorf("inserted %q, want %q", o.inserted(), tt.header)
			}
		})
	}
}

// fakeSPF answers every check with one result and counts the calls.
type fakeSPF struct {
	result dmarc.AuthResult
	mu     sync.Mutex
	calls  int
}

func (f *fakeSPF) Check(_ context.Context, ip netip.Addr, helo, mailFrom string) (dmarc.SPF, string) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	_, d, _ := strings.Cut(mailFrom, "@")
	return dmarc.SPF{Domain: d, Scope: dmarc.ScopeMailFrom, Result: f.result}, "checked for " + ip.String()
}

func TestSPFSelfCheck(t *testing.T) {
	run := func(t *testing.T, tweak func(*Config), m msg) (outcomeOf, *fakeSPF, *env) {
		f := &fakeSPF{result: dmarc.AuthPass}
		e := startWith(t, Strict, func(c *Config) {
			c.SPFSelfCheck = true
			if tweak != nil {
				tweak(c)
			}
		}, dmarc.MapResolver{TXT: testDNS})
		st := e.srv.state.Load()
		e.srv.Reload(st.cfg, Deps{Evaluator: st.deps.Evaluator, SPF: f})
		return e.send(m), f, e
	}
	t.Run("runs when no upstream result arrived and writes its clause", func(t *testing.T) {
		o, f, _ := run(t, nil, msg{mailFrom: "b@reject.example", headers: headers("From: a@reject.example")})
		if f.calls != 1 || o.act.Type != gomilter.ActionAccept {
			t.Fatalf("calls %d, action %v", f.calls, o.act.Type)
		}
		if ins := o.inserted(); len(ins) != 1 || !strings.Contains(ins[0], "mx.test; spf=pass smtp.mailfrom=reject.example; dmarc=pass") {
			t.Errorf("inserted %q", ins)
		}
	})
	t.Run("does not run when a trusted upstream result arrived", func(t *testing.T) {
		_, f, _ := run(t, nil, msg{mailFrom: "b@reject.example", headers: headers(
			"Authentication-Results: border.test; spf=fail smtp.mailfrom=b@reject.example", "From: a@reject.example")})
		if f.calls != 0 {
			t.Errorf("self-check ran %d times despite an upstream result", f.calls)
		}
	})
	t.Run("always runs when upstream results are ignored", func(t *testing.T) {
		o, f, _ := run(t, func(c *Config) { c.SPFUpstream = false }, msg{mailFrom: "b@reject.example", headers: headers(
			"Authentication-Results: border.test; spf=fail smtp.mailfrom=b@reject.example", "From: a@reject.example")})
		if f.calls != 1 || o.act.Type != gomilter.ActionAccept {
			t.Errorf("calls %d, action %v; want our pass to count", f.calls, o.act.Type)
		}
	})
}

func TestOpenDMARCCompatibilityOptions(t *testing.T) {
	t.Run("RequiredHeaders refuses several Subject fields", func(t *testing.T) {
		e := start(t, Strict, func(c *Config) { c.RequiredHeaders = true }, nil)
		o := e.send(msg{mailFrom: "x@none.example", headers: headers("From: a@none.example", "Date: now", "Subject: a", "Subject: b")})
		if o.act.Type != gomilter.ActionRejectWithCode || !strings.Contains(o.act.SMTPReply, "RFC 5322 requirement error: multiple Subject fields") {
			t.Errorf("got %v %q", o.act.Type, o.act.SMTPReply)
		}
	})
	t.Run("RequiredHeaders wants exactly one Date", func(t *testing.T) {
		e := start(t, Strict, func(c *Config) { c.RequiredHeaders = true }, nil)
		o := e.send(msg{mailFrom: "x@none.example", headers: headers("From: a@none.example")})
		if !strings.Contains(o.act.SMTPReply, "not exactly one Date field") {
			t.Errorf("got %v %q", o.act.Type, o.act.SMTPReply)
		}
	})
	t.Run("SoftwareHeader adds DMARC-Filter", func(t *testing.T) {
		e := start(t, Strict, func(c *Config) { c.Software = "dmarcd test" }, nil)
		o := e.send(msg{mailFrom: "x@none.example", headers: headers("From: a@none.example")})
		found := false
		for _, m := range o.mods {
			if m.Type == gomilter.ActionAddHeader && m.HeaderName == "DMARC-Filter" && strings.HasPrefix(m.HeaderValue, "dmarcd test ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no DMARC-Filter header in %v", o.mods)
		}
	})
	t.Run("AuthservIDWithJobID appends the queue id", func(t *testing.T) {
		e := start(t, Strict, func(c *Config) { c.AuthServIDWithJobID = true }, nil)
		o := e.send(msg{mailFrom: "x@none.example", headers: headers("From: a@none.example")})
		if ins := o.inserted(); len(ins) != 1 || !strings.HasPrefix(ins[0], "Authentication-Results: mx.test/QID123; dmarc=") {
			t.Errorf("inserted %q", ins)
		}
	})
	t.Run("CopyFailuresTo adds a recipient to a quarantined failure", func(t *testing.T) {
		e := start(t, Strict, func(c *Config) { c.CopyFailuresTo = "dmarc-copies@mx.test" }, nil)
		o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@quarantine.example")})
		found := false
		for _, m := range o.mods {
			if m.Type == gomilter.ActionAddRcpt && m.Rcpt == "<dmarc-copies@mx.test>" {
				found = true
			}
		}
		if !found || !o.quarantined() {
			t.Errorf("mods %v; want the copy recipient and the quarantine", o.mods)
		}
	})
	t.Run("CopyFailuresTo leaves passing mail alone", func(t *testing.T) {
		e := start(t, Strict, func(c *Config) { c.CopyFailuresTo = "dmarc-copies@mx.test" }, nil)
		o := e.send(msg{mailFrom: "x@evil.example", headers: headers("From: a@none.example")})
		for _, m := range o.mods {
			if m.Type == gomilter.ActionAddRcpt {
				t.Errorf("copy added for p=none mail: %v", m)
			}
		}
	})
}
