package arc

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
)

// recorder is a hash.Hash that keeps what it is given.
type recorder struct{ bytes.Buffer }

func (r *recorder) Sum(b []byte) []byte { return append(b, r.Bytes()...) }
func (r *recorder) Size() int           { return 0 }
func (r *recorder) BlockSize() int      { return 1 }

// canonBody runs body through the streaming canonicalizer in chunks of
// size and returns what the hash received, limited to limit octets.
func canonBody(c canon, body string, size int, limit int64) (string, int64) {
	rec := &recorder{}
	h := &bodyHash{h: rec, limit: limit}
	b := &bodyCanon{c: c, hashes: []*bodyHash{h}}
	for p := []byte(body); len(p) > 0; {
		n := min(size, len(p))
		b.Write(p[:n])
		p = p[n:]
	}
	b.finish()
	return string(h.done), h.total
}

func TestBodyCanonicalization(t *testing.T) {
	tests := []struct {
		name            string
		body            string
		simple, relaxed string
	}{
		{"RFC 6376 §3.4.5's example", " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n"},
		{"an empty body is CRLF in simple and nothing in relaxed", "", "\r\n", ""},
		{"a body of empty lines is empty", "\r\n\r\n\r\n", "\r\n", ""},
		{"a last line without a line break gets one", "abc", "abc\r\n", "abc\r\n"},
		{"a bare LF is a line break", "a\nb\n\n", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"a bare CR is text", "a\rb\r\n\r", "a\rb\r\n\r\r\n", "a\rb\r\n\r\r\n"},
		{"lines of whitespace at the end are empty lines only in relaxed", "a\r\n \r\n\t\r\n", "a\r\n \r\n\t\r\n", "a\r\n"},
		{"empty lines inside the body are kept", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n"},
		{"leading whitespace becomes one space in relaxed", "\t  x\r\n", "\t  x\r\n", " x\r\n"},
		{"whitespace before a last line without a break goes in relaxed", "x  ", "x  \r\n", "x\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{1, 2, 5, 1 << 16} {
				if got, n := canonBody(simple, tc.body, size, -1); got != tc.simple || n != int64(len(got)) {
					t.Errorf("simple, chunks of %d: %q (length %d), want %q", size, got, n, tc.simple)
				}
				if got, n := canonBody(relaxed, tc.body, size, -1); got != tc.relaxed || n != int64(len(got)) {
					t.Errorf("relaxed, chunks of %d: %q (length %d), want %q", size, got, n, tc.relaxed)
				}
			}
		})
	}
	t.Run("l= hashes the first octets of the canonical body", func(t *testing.T) {
		got, total := canonBody(relaxed, "one  two\r\nthree\r\n", 3, 5)
		if got != "one t" || total != 16 {
			t.Errorf("%q of %d, want %q of 16", got, total, "one t")
		}
	})
}

func TestHeaderCanonicalization(t *testing.T) {
	tests := []struct {
		name, field, value string
		simple, relaxed    string
	}{
		{"RFC 6376 §3.4.5's first field", "A", " X", "A: X\r\n", "a:X\r\n"},
		{"RFC 6376 §3.4.5's folded field", "B ", " Y\t\r\n\tZ  ", "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n"},
		{"LF folds become CRLF in simple", "Subject", " a\n b", "Subject: a\r\n b\r\n", "subject:a b\r\n"},
		{"an empty value", "X", "", "X:\r\n", "x:\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(canonHeader(nil, simple, tc.field, tc.value)); got != tc.simple {
				t.Errorf("simple: %q, want %q", got, tc.simple)
			}
			if got := string(canonHeader(nil, relaxed, tc.field, tc.value)); got != tc.relaxed {
				t.Errorf("relaxed: %q, want %q", got, tc.relaxed)
			}
		})
	}
}

func TestParseCanon(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		present bool
		h, b    canon
		ok      bool
	}{
		{"absent is relaxed/relaxed, as ARC signers and validators read it", "", false, relaxed, relaxed, true},
		{"both halves", "relaxed/simple", true, relaxed, simple, true},
		{"the header half alone leaves the body simple", "relaxed", true, relaxed, simple, true},
		{"an unknown algorithm is refused", "pancake/waffle", true, 0, 0, false},
		{"an empty value is refused", "", true, 0, 0, false},
		{"algorithm names are case-sensitive", "Relaxed/relaxed", true, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, b, ok := parseCanon(tc.value, tc.present)
			if ok != tc.ok || (ok && (h != tc.h || b != tc.b)) {
				t.Errorf("parseCanon(%q) = %v, %v, %v", tc.value, h, b, ok)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string // nil: invalid
	}{
		{"folded values keep their inner whitespace", "a=1; b = x\r\n y ;c=", map[string]string{"a": "1", "b": "x\r\n y", "c": ""}},
		{"a trailing semicolon is allowed", "a=1;", map[string]string{"a": "1"}},
		{"LF folds are allowed", "a=1;\n\tb=2", map[string]string{"a": "1", "b": "2"}},
		{"a tag given twice is invalid", "a=1; a=2", nil},
		{"an empty tag-spec is invalid", "a=1;; b=2", nil},
		{"a tag without = is invalid", "a=1; junk", nil},
		{"a tag name must start with a letter", "_a=1", nil},
		{"a semicolon alone is invalid", ";", nil},
		{"nothing is invalid", " ", nil},
		{"a control character is invalid", "a=1\x00", nil},
		{"a line break not followed by whitespace is invalid", "a=1\r\nb=2", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseTags(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Errorf("parsed %+v, want an error", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(l) != len(tc.want) {
				t.Errorf("%d tags, want %d", len(l), len(tc.want))
			}
			for name, v := range tc.want {
				if got, ok := l.get(name); !ok || got != v {
					t.Errorf("%s=%q (%v), want %q", name, got, ok, v)
				}
			}
		})
	}
	t.Run("emptying b= removes its value and the whitespace around it", func(t *testing.T) {
		v := "i=1; b=abc\r\n def ; d=x"
		l, err := parseTags(v)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := l.find("b")
		if got := emptyB(v, b); got != "i=1; b=; d=x" {
			t.Errorf("%q", got)
		}
	})
}

func TestParseKey(t *testing.T) {
	rsaKey := func(bits int) *rsa.PublicKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	}
	k1024 := rsaKey(1024)
	spki, _ := x509.MarshalPKIXPublicKey(k1024)
	pkcs1 := x509.MarshalPKCS1PublicKey(k1024)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	b64 := base64.StdEncoding.EncodeToString
	// The 512-bit key of the ValiMail suite's as_fields_b_512.
	const k512 = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAIWmlgix/84GJ+dfgjm7LTc9EPdfk ftlgiPpCq4/kbDAZmU0VvYKDljjleJ1dfvS+CGy9U/kk1tG3EeEvb82xAcCAwEAAQ=="

	tests := []struct {
		name string
		txt  string
		want keyType
		err  string // a substring of the error; empty: the key parses
	}{
		{"an RSA key as RFC 6376 writes it", "v=DKIM1; k=rsa; p=" + b64(spki), keyRSA, ""},
		{"k=rsa is the default", "p=" + b64(spki), keyRSA, ""},
		{"a bare PKCS#1 RSA key", "v=DKIM1; p=" + b64(pkcs1), keyRSA, ""},
		{"a p= folded over several strings with spaces", "v=DKIM1; p=" + b64(spki)[:40] + " " + b64(spki)[40:], keyRSA, ""},
		{"an Ed25519 key (RFC 8463)", "v=DKIM1; k=ed25519; p=" + b64(edPub), keyEd25519, ""},
		{"notes in any bytes do not spoil the key", "v=DKIM1; n=Schlüssel für Mails; p=" + b64(spki), keyRSA, ""},
		{"h= allowing sha256", "v=DKIM1; h=sha1:sha256; p=" + b64(spki), keyRSA, ""},
		{"an empty p= is a revoked key", "v=DKIM1; p=", 0, "revoked"},
		{"no p= at all", "v=DKIM1; k=rsa", 0, "no p="},
		{"v= not first", "k=rsa; v=DKIM1; p=" + b64(spki), 0, "v= is not DKIM1 first"},
		{"v= other than DKIM1", "v=DKIM2; p=" + b64(spki), 0, "v= is not DKIM1"},
		{"h= without sha256", "h=sha1; p=" + b64(spki), 0, "sha256"},
		{"s= for another service", "s=tlsrpt; p=" + b64(spki), 0, "email"},
		{"an unknown key type", "k=ed448; p=" + b64(spki), 0, "unknown key type"},
		{"an RSA key below 1024 bits (RFC 8301)", "p=" + k512, 0, "512 bits"},
		{"an Ed25519 key of the wrong length", "k=ed25519; p=" + b64(spki), 0, "ed25519 key of"},
		{"an Ed25519 key given as k=rsa", "k=rsa; p=" + b64(edPub), 0, "does not parse"},
		{"p= that is not base64", "p=!!!", 0, "base64"},
		{"a record that is not a tag-list", "this is not a key", 0, "without '='"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := parseKey(tc.txt)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one about %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.typ != tc.want {
				t.Errorf("type %v, want %v", k.typ, tc.want)
			}
		})
	}
}
