package delivery

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/dnstest"
)

// keyServer publishes the public keys of signers in a dnstest server
// and returns a LookupTXT for dkim.VerifyOptions that asks it through
// dmarcd's DNS cache.
func keyServer(t *testing.T, signers ...Signer) func(string) ([]string, error) {
	t.Helper()
	zone := []string{"example.org. 300 IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300"}
	for _, s := range signers {
		rec, err := DNSRecord(s.Key.Public())
		if err != nil {
			t.Fatal(err)
		}
		zone = append(zone, dnstest.TXT(s.Selector+"._domainkey."+s.Domain+".", rec))
	}
	srv := dnstest.Start(t, zone...)
	r, err := dnscache.New(dnscache.Config{Nameservers: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	return func(name string) ([]string, error) {
		return r.LookupTXT(context.Background(), name)
	}
}

func verify(t *testing.T, lookup func(string) ([]string, error), msg []byte) []*dkim.Verification {
	t.Helper()
	v, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatalf("dkim.Verify: %v", err)
	}
	return v
}

var (
	rsaSigner = func() Signer { return Signer{Domain: "example.org", Selector: "rsa2026", Key: rsaKey()} }
	edSigner  = func() Signer { return Signer{Domain: "example.org", Selector: "ed2026", Key: edKey()} }
)

func TestSignedReportsVerifyWithTheKeyInDNS(t *testing.T) {
	tests := []struct {
		name   string
		signer Signer
		algo   string
	}{
		{"RSA-2048", rsaSigner(), "rsa-sha256"},
		{"Ed25519 (RFC 8463)", edSigner(), "ed25519-sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := keyServer(t, tt.signer)
			var signed bytes.Buffer
			if err := tt.signer.Sign(&signed, bytes.NewReader(compose(t, sampleMessage(t)))); err != nil {
				t.Fatal(err)
			}
			v := verify(t, lookup, signed.Bytes())
			if len(v) != 1 || v[0].Err != nil || v[0].Domain != "example.org" {
				t.Fatalf("verifications %+v, want one pass for example.org", v)
			}
			sig := headerOf(signed.Bytes())
			for _, tag := range []string{"a=" + tt.algo, "c=relaxed/relaxed", "s=" + tt.signer.Selector} {
				if !strings.Contains(sig, tag) {
					t.Errorf("signature lacks %s:\n%s", tag, sig)
				}
			}
			if strings.Contains(sig, " l=") || strings.Contains(sig, " x=") {
				t.Errorf("signature has l= or x=:\n%s", sig)
			}
		})
	}
}

func TestOneReadOfTheMessageSignsWithBothKeys(t *testing.T) {
	lookup := keyServer(t, rsaSigner(), edSigner())
	msg := compose(t, sampleMessage(t))
	sigs, err := Signatures(bytes.NewReader(msg), rsaSigner(), edSigner())
	if err != nil {
		t.Fatal(err)
	}
	v := verify(t, lookup, append([]byte(sigs), msg...))
	if len(v) != 2 {
		t.Fatalf("%d signatures, want 2", len(v))
	}
	for _, v := range v {
		if v.Err != nil {
			t.Errorf("signature by %s: %v", v.Domain, v.Err)
		}
	}
}

var hTag = regexp.MustCompile(`\bh=([^;]*)`)

// signedFields returns the h= of the first DKIM-Signature of msg.
func signedFields(t *testing.T, msg []byte) []string {
	t.Helper()
	m := hTag.FindStringSubmatch(headerOf(msg))
	if m == nil {
		t.Fatal("no h= tag")
	}
	return strings.Split(strings.Join(strings.Fields(m[1]), ""), ":")
}

func TestTheSignatureCoversEveryFieldAndOversignsThem(t *testing.T) {
	m := sampleMessage(t)
	m.Headers = map[string]string{"X-Report-Type": "aggregate"}
	var signed bytes.Buffer
	if err := rsaSigner().Sign(&signed, bytes.NewReader(compose(t, m))); err != nil {
		t.Fatal(err)
	}
	h := signedFields(t, signed.Bytes())
	count := make(map[string]int)
	for _, f := range h {
		count[strings.ToLower(f)]++
	}
	for _, f := range []string{"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "X-Report-Type", "MIME-Version", "Content-Type"} {
		if count[strings.ToLower(f)] != 2 {
			t.Errorf("%s appears %d times in h=, want 2 (signed and over-signed): %v", f, count[strings.ToLower(f)], h)
		}
	}
	for _, f := range []string{"Reply-To", "Cc", "Sender", "In-Reply-To", "References"} {
		if count[strings.ToLower(f)] != 1 {
			t.Errorf("absent %s appears %d times in h=, want 1: %v", f, count[strings.ToLower(f)], h)
		}
	}
}

func TestTheSignatureSkipsTraceFields(t *testing.T) {
	msg := "Received: from a by b; Wed, 15 Nov 2023 00:05:00 +0000\r\n" +
		"Return-Path: <x@example.org>\r\n" +
		"Authentication-Results: mx.example.org; dkim=pass\r\n" +
		"ARC-Seal: i=1; cv=none; d=example.org; s=arc; b=abc\r\n" +
		"From: x@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
	sig, err := rsaSigner().Signature(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ToLower(strings.Join(signedFields(t, []byte(sig+"\r\n")), ":"))
	if want := "from:subject:from:subject:reply-to:cc:sender:in-reply-to:references"; got != want {
		t.Errorf("h=%s\nwant %s", got, want)
	}
}

func TestChangesAfterSigningBreakTheSignatureAndRefoldingDoesNot(t *testing.T) {
	s := rsaSigner()
	lookup := keyServer(t, s)
	var buf bytes.Buffer
	if err := s.Sign(&buf, bytes.NewReader(compose(t, sampleMessage(t)))); err != nil {
		t.Fatal(err)
	}
	signed := buf.String()
	subject := "Subject: Report Domain: example.com Submitter: mail.receiver.example\r\n Report-ID: <r-1700000000@mail.receiver.example>\r\n"
	if !strings.Contains(signed, subject) {
		t.Fatalf("the Subject is not where the test expects it:\n%s", headerOf([]byte(signed)))
	}
	// One byte inside the compressed data: the third line of base64.
	body := strings.Index(signed, "H4sI") + 2*78 + 5
	changed := signed[:body] + string(signed[body]^1) + signed[body+1:]
	tests := []struct {
		name  string
		msg   string
		valid bool
	}{
		{"the message as signed passes", signed, true},
		{"a Subject folded elsewhere passes (relaxed)", strings.Replace(signed, subject,
			"Subject: Report Domain: example.com\r\n\tSubmitter:   mail.receiver.example Report-ID:\r\n <r-1700000000@mail.receiver.example>\r\n", 1), true},
		{"a Received field added on the way passes", "Received: from relay by mx; Wed, 15 Nov 2023 00:06:00 +0000\r\n" + signed, true},
		{"another Report-ID fails", strings.Replace(signed, "Report-ID: <r-1700000000@", "Report-ID: <r-1700000001@", 1), false},
		{"a second Subject on top fails", "Subject: Report Domain: example.com Submitter: evil.example\r\n" + signed, false},
		{"a second From on top fails", "From: <evil@example.net>\r\n" + signed, false},
		{"an added Reply-To fails", "Reply-To: <evil@example.net>\r\n" + signed, false},
		{"one changed byte of the report fails", changed, false},
		{"an appended part fails", strings.TrimSuffix(signed, "\r\n") + "more\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.msg == signed && tt.name != tests[0].name {
				t.Fatal("the tampering changed nothing")
			}
			v := verify(t, lookup, []byte(tt.msg))
			if len(v) != 1 {
				t.Fatalf("%d verifications", len(v))
			}
			if got := v[0].Err == nil; got != tt.valid {
				t.Errorf("valid = %v (%v), want %v", got, v[0].Err, tt.valid)
			}
		})
	}
}

func TestSignReadsAFileTwiceAndAnyReaderOnce(t *testing.T) {
	s := edSigner()
	lookup := keyServer(t, s)
	msg := compose(t, sampleMessage(t))
	f, err := os.CreateTemp(t.TempDir(), "report-*.eml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"a file":   f,
		"a stream": io.MultiReader(bytes.NewReader(msg)),
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := s.Sign(&out, r); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(out.Bytes(), msg) || !bytes.HasPrefix(out.Bytes(), []byte("DKIM-Signature: ")) {
				t.Fatal("the output is not the signature followed by the message")
			}
			if v := verify(t, lookup, out.Bytes()); len(v) != 1 || v[0].Err != nil {
				t.Errorf("verification: %+v", v[0])
			}
		})
	}
}

func TestSignRefusesWhatCannotMakeAGoodSignature(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(compose(t, sampleMessage(t)))
	tests := []struct {
		name   string
		signer Signer
		msg    string
		want   string
	}{
		{"no key", Signer{Domain: "example.org", Selector: "s"}, msg, "no key"},
		{"an EC key", Signer{Domain: "example.org", Selector: "s", Key: ec}, msg, "cannot sign DKIM"},
		{"no domain", Signer{Selector: "s", Key: edKey()}, msg, "domain"},
		{"a selector with a semicolon", Signer{Domain: "example.org", Selector: "s;x=1", Key: edKey()}, msg, "selector"},
		{"a message without From", edSigner(), "Subject: x\r\n\r\nbody\r\n", "no From"},
		{"a message that is all header", edSigner(), "From: x@example.org\r\n", "ends inside its header"},
		{"a header line without colon", edSigner(), "From: x@example.org\r\nnot a field\r\n\r\n", "without colon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.signer.Sign(io.Discard, strings.NewReader(tt.msg))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Sign error = %v, want one about %q", err, tt.want)
			}
		})
	}
}

func TestDNSRecordHasTheRFCForm(t *testing.T) {
	rec, err := DNSRecord(edKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8463 §4: the raw 32-byte key, 44 characters of base64.
	if !regexp.MustCompile(`^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$`).MatchString(rec) {
		t.Errorf("Ed25519 record %q", rec)
	}
	rec, err = DNSRecord(rsaKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec, "v=DKIM1; k=rsa; p=MIIBIjAN") { // SubjectPublicKeyInfo of RSA-2048
		t.Errorf("RSA record %q", rec)
	}
	if _, err := DNSRecord(crypto.PublicKey("x")); err == nil {
		t.Error("DNSRecord accepted a string")
	}
}
