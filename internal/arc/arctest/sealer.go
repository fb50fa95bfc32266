package arctest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Sealer is one ADMD that seals what it forwards. NewSealer makes one
// with a key; the fields after Key, zero by default, make it seal in
// other ways or wrongly, for tests of a verifier.
type Sealer struct {
	// Domain and Selector are the d= and s= of both signatures; the key
	// record is at Selector._domainkey.Domain.
	Domain, Selector string
	// AuthServID is the authserv-id of the ARC-Authentication-Results;
	// Domain when empty.
	AuthServID string
	// Key signs: an *rsa.PrivateKey (a=rsa-sha256) or an
	// ed25519.PrivateKey (a=ed25519-sha256, RFC 8463).
	Key crypto.Signer

	// Canon is the ARC-Message-Signature's c=; "relaxed/relaxed" when
	// empty.
	Canon string
	// Signed is the ARC-Message-Signature's h=, lowercase names; when
	// nil, the fields commonly signed: from, to, subject, date,
	// message-id, mime-version, content-type, dkim-signature.
	Signed []string
	// BodyLength writes l= with the length of the whole canonical body,
	// so that text appended later leaves the signature valid.
	BodyLength bool
	// SealKey, when set, signs the ARC-Seal instead of Key: a sealer
	// whose key record no longer matches its key.
	SealKey crypto.Signer
	// Instance, when not 0, is written as i= instead of the next
	// instance: a broken sealer.
	Instance int
}

// defaultSigned is what sealers commonly put in the AMS's h=.
var defaultSigned = []string{"from", "to", "subject", "date", "message-id", "mime-version", "content-type", "dkim-signature"}

// sealTime is the t= of every signature: the sets do not expire.
const sealTime = "1749546842"

// Keys are made once per test binary, for each domain, selector and key
// type: RSA generation is slow under -race, and a test may build the
// same sealer twice, once for its DNS and once to seal.
var (
	keysMu sync.Mutex
	keys   = map[string]crypto.Signer{}
)

// NewSealer returns a sealer for domain and selector with a 2048-bit RSA
// key, or an Ed25519 one when ed25519 is true. Within a test binary, the
// same arguments give the same key.
func NewSealer(t testing.TB, domain, selector string, ed25519 bool) *Sealer {
	t.Helper()
	id := strings.ToLower(selector + "._domainkey." + domain)
	if ed25519 {
		id += "/ed25519"
	}
	keysMu.Lock()
	defer keysMu.Unlock()
	k, ok := keys[id]
	if !ok {
		var err error
		if k, err = newKey(ed25519); err != nil {
			t.Fatalf("arctest: key for %s: %v", id, err)
		}
		keys[id] = k
	}
	return &Sealer{Domain: domain, Selector: selector, Key: k}
}

func newKey(ed bool) (crypto.Signer, error) {
	if ed {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

// TXT returns the key record of s as published at
// Selector._domainkey.Domain: "v=DKIM1; k=rsa; p=..." or k=ed25519.
func (s *Sealer) TXT() string {
	switch k := s.Key.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			panic(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k)
	default:
		panic(fmt.Sprintf("arctest: key of type %T", k))
	}
}

// RR returns the key record as a DNS resource record in master-file
// syntax, for dnstest.Start or Server.Set: the owner as an FQDN, TTL 300,
// the text split into character-strings of 255 octets.
func (s *Sealer) RR() string {
	text := s.TXT()
	var parts []string
	for len(text) > 255 {
		parts, text = append(parts, text[:255]), text[255:]
	}
	parts = append(parts, text)
	owner := s.Selector + "._domainkey." + strings.TrimSuffix(s.Domain, ".") + "."
	return fmt.Sprintf("%s 300 IN TXT \"%s\"", owner, strings.Join(parts, `" "`))
}

// Seal adds an ARC set to m for the next instance, the way a receiving
// sealer does: cv is the chain validation status it found ("none" on the
// first set, "pass" or "fail" on later ones); results are the result
// clauses of its ARC-Authentication-Results after the authserv-id, as
// Authentication-Results writes them (RFC 8601), such as
// "spf=pass smtp.mailfrom=example.org" or
// "dkim=pass header.d=example.org header.s=s1"; without any, it writes
// "none". Seal fails the test when s has no key or cannot sign.
func (s *Sealer) Seal(t testing.TB, m *Message, cv string, results ...string) {
	t.Helper()
	if s.Key == nil {
		t.Fatalf("arctest: sealer %s has no key", s.Domain)
	}
	inst := s.Instance
	if inst == 0 {
		inst = countSeals(m.fields) + 1
	}
	alg := "rsa-sha256"
	if _, ok := s.Key.(ed25519.PrivateKey); ok {
		alg = "ed25519-sha256"
	}
	signed := s.Signed
	if signed == nil {
		signed = defaultSigned
	}
	canon := s.Canon
	if canon == "" {
		canon = "relaxed/relaxed"
	}
	hc, bc, _ := strings.Cut(canon, "/")
	if bc == "" {
		bc = "simple"
	}
	authservID := s.AuthServID
	if authservID == "" {
		authservID = s.Domain
	}

	// ARC-Authentication-Results: i=; then the results, one a line.
	aar := fmt.Sprintf("ARC-Authentication-Results: i=%d; %s", inst, authservID)
	if len(results) == 0 {
		results = []string{"none"}
	}
	for _, r := range results {
		aar += ";\r\n       " + r
	}
	m.fields = append([]string{aar}, m.fields...)

	// ARC-Message-Signature over the body and the fields in h=.
	cbody := canonBody(bc, m.Body)
	bh := sha256.Sum256([]byte(cbody))
	ams := fmt.Sprintf("ARC-Message-Signature: i=%d; a=%s; c=%s; d=%s;\r\n        s=%s; t=%s;", inst, alg, canon, s.Domain, s.Selector, sealTime)
	if s.BodyLength {
		ams += fmt.Sprintf(" l=%d;", len(cbody))
	}
	ams += "\r\n        h=" + foldList(signed) + ";\r\n        bh=" + base64.StdEncoding.EncodeToString(bh[:]) + ";\r\n        b="
	var data strings.Builder
	for _, f := range selectFields(m.fields, signed) {
		data.WriteString(canonHeader(hc, f))
	}
	data.WriteString(strings.TrimSuffix(canonHeader(hc, ams), "\r\n"))
	ams += foldB(sign(t, s.Key, data.String()))
	m.fields = append([]string{ams}, m.fields...)

	// ARC-Seal over the ARC sets 1..inst, itself last.
	as := fmt.Sprintf("ARC-Seal: i=%d; a=%s; t=%s; cv=%s;\r\n        d=%s; s=%s;\r\n        b=", inst, alg, sealTime, cv, s.Domain, s.Selector)
	data.Reset()
	for _, f := range arcSets(m.fields, inst) {
		data.WriteString(canonHeader("relaxed", f))
	}
	data.WriteString(strings.TrimSuffix(canonHeader("relaxed", as), "\r\n"))
	key := s.Key
	if s.SealKey != nil {
		key = s.SealKey
	}
	as += foldB(sign(t, key, data.String()))
	m.fields = append([]string{as}, m.fields...)
}

// sign signs the SHA-256 digest of data (RFC 6376 §3.7; RFC 8463 signs
// the digest with pure Ed25519) and returns it in base64.
func sign(t testing.TB, key crypto.Signer, data string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(data))
	opts := crypto.SHA256
	if _, ok := key.(ed25519.PrivateKey); ok {
		opts = crypto.Hash(0)
	}
	sig, err := key.Sign(rand.Reader, digest[:], opts)
	if err != nil {
		t.Fatalf("arctest: signing: %v", err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// fieldName returns the lowercase name of a whole field.
func fieldName(f string) string {
	name, _, _ := strings.Cut(f, ":")
	return strings.ToLower(strings.TrimRight(name, " \t"))
}

func countSeals(fields []string) int {
	n := 0
	for _, f := range fields {
		if fieldName(f) == "arc-seal" {
			n++
		}
	}
	return n
}

// foldList writes an h= list, folding after every fourth name.
func foldList(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(":")
			if i%4 == 0 {
				b.WriteString("\r\n          ")
			}
		}
		b.WriteString(n)
	}
	return b.String()
}

// foldB folds a base64 value in 72-column lines.
func foldB(v string) string {
	var b strings.Builder
	for len(v) > 72 {
		b.WriteString(v[:72])
		b.WriteString("\r\n         ")
		v = v[72:]
	}
	b.WriteString(v)
	return b.String()
}

// selectFields picks, for each name, the last not yet picked field of
// that name, bottom-up (RFC 6376 §5.4.2); a name without one picks
// nothing.
func selectFields(fields []string, names []string) []string {
	var out []string
	next := map[string]int{} // name → index below which to look next
	for _, n := range names {
		n = strings.ToLower(n)
		i, ok := next[n]
		if !ok {
			i = len(fields)
		}
		for i--; i >= 0; i-- {
			if fieldName(fields[i]) == n {
				out = append(out, fields[i])
				break
			}
		}
		next[n] = max(i, 0)
	}
	return out
}

var instRE = regexp.MustCompile(`(?:^|[;\s])i\s*=\s*(\d+)`)

// arcSets returns the ARC fields of the sets 1..upto in the order an
// ARC-Seal signs them: by instance, and within a set AAR, AMS, AS. Where
// a set has two fields of a kind, the topmost is taken; fields without
// an instance are left out.
func arcSets(fields []string, upto int) []string {
	rank := map[string]int{"arc-authentication-results": 0, "arc-message-signature": 1, "arc-seal": 2}
	byInst := map[int][3]string{}
	for _, f := range fields {
		r, ok := rank[fieldName(f)]
		if !ok {
			continue
		}
		_, value, _ := strings.Cut(f, ":")
		mm := instRE.FindStringSubmatch(value)
		if mm == nil {
			continue
		}
		inst, err := strconv.Atoi(mm[1])
		if err != nil || inst < 1 || inst > upto {
			continue
		}
		set := byInst[inst]
		if set[r] == "" {
			set[r] = f
		}
		byInst[inst] = set
	}
	var out []string
	for i := 1; i <= upto; i++ {
		for _, f := range byInst[i] {
			if f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}
