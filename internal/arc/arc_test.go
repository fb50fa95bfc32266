package arc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/arc/arctest"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/dnstest"
)

// The hops of the tests: a gateway that receives the author's mail, a
// mailing list that rewrites it, a forwarder that sends it on. The
// gateway and the forwarder have 1024-bit keys, the least RFC 8301
// allows; the list's 2048-bit key has a record longer than one DNS
// character-string.
func gateway(t testing.TB) *arctest.Sealer {
	return &arctest.Sealer{Domain: "gw.example.net", Selector: "arc-2025", AuthServID: "mx.example.net", Key: key(t, "rsa1024")}
}

func mailingList(t testing.TB) *arctest.Sealer {
	s := arctest.NewSealer(t, "lists.example.org", "arc1", false)
	s.AuthServID = "lists.example.org"
	return s
}

func forwarder(t testing.TB) *arctest.Sealer {
	return &arctest.Sealer{Domain: "forwarder.example", Selector: "fwd", AuthServID: "mx1.forwarder.example", Key: key(t, "rsa1024b")}
}

func edSealer(t testing.TB) *arctest.Sealer {
	s := arctest.NewSealer(t, "ed.example", "ed1", true)
	s.AuthServID = "mx.ed.example"
	return s
}

// Keys are made once per test binary: RSA generation is slow under -race.
var (
	keysOnce sync.Once
	testKeys map[string]crypto.Signer
)

// key returns one of the 1024-bit RSA keys rsa1024, rsa1024b and
// rsa1024c.
func key(t testing.TB, name string) crypto.Signer {
	t.Helper()
	keysOnce.Do(func() {
		testKeys = map[string]crypto.Signer{}
		for _, name := range []string{"rsa1024", "rsa1024b", "rsa1024c"} {
			k, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				panic(err)
			}
			testKeys[name] = k
		}
	})
	k, ok := testKeys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

// zone is the DNS of the tests: every sealer's key.
func zone(t testing.TB) []string {
	return []string{
		"example.net. 300 IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300",
		"example.org. 300 IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300",
		"example. 300 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 300",
		gateway(t).RR(), mailingList(t).RR(), forwarder(t).RR(), edSealer(t).RR(),
	}
}

// fields returns the header of m as Verify wants it, with Raw set.
func fields(m *arctest.Message) []Field {
	h := m.Headers()
	out := make([]Field, len(h))
	for i, f := range h {
		out[i] = Field{Raw: f[0] + ":" + f[1]}
	}
	return out
}

// milterFields returns the header of m as a milter behind Postfix sees
// it: the one space after the colon removed, folds as bare LF; then
// rebuilt with MilterField.
func milterFields(m *arctest.Message) []Field {
	h := m.Headers()
	out := make([]Field, len(h))
	for i, f := range h {
		value := strings.ReplaceAll(strings.TrimPrefix(f[1], " "), "\r\n", "\n")
		out[i] = MilterField(f[0], value, false)
	}
	return out
}

// newMessage is arctest's message as the author's server sent it on:
// with a trace field and a DKIM signature, which the sealers sign.
func newMessage() *arctest.Message {
	m := arctest.NewMessage()
	m.Prepend("DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=s1;\r\n\th=from:to:subject:date:message-id; bh=irrelevant=; b=irrelevant=")
	m.Prepend("Received", "from mail.example.com (mail.example.com [192.0.2.10])\r\n\tby mx.example.net with ESMTPS id 4Yx1; Tue, 10 Jun 2025 09:14:02 +0000")
	return m
}

var (
	resultsAtGateway = []string{
		"spf=pass (mx.example.net: domain of alice@example.com designates 192.0.2.10 as permitted sender) smtp.mailfrom=alice@example.com smtp.remote-ip=192.0.2.10",
		"dkim=pass header.i=@example.com header.s=s1 header.b=irrelev",
		"dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com",
	}
	resultsAtList = []string{
		"arc=pass (i=1 spf=pass dkim=pass dmarc=pass) smtp.remote-ip=198.51.100.25",
		"spf=pass smtp.mailfrom=gw.example.net",
		"dkim=pass header.d=example.com header.s=s1",
		"dmarc=pass header.from=example.com",
	}
	resultsAtForwarder = []string{
		"arc=pass (i=2) smtp.remote-ip=203.0.113.7",
		"spf=pass smtp.mailfrom=bounces@lists.example.org",
		"dkim=fail (body hash did not verify) header.d=example.com header.s=s1",
		"dmarc=fail (p=REJECT) header.from=example.com",
	}
)

// listRewrite is what the mailing list does before it seals: a subject
// tag, a List-Id, a footer. It breaks the author's DKIM signature and the
// gateway's AMS.
func listRewrite(m *arctest.Message) {
	m.Set("Subject", "[team] Quarterly numbers,\r\n\tfolded onto a second line")
	m.Prepend("List-Id", "Team <team.lists.example.org>")
	m.Body += "_______________________________________________\r\nteam mailing list\r\n"
}

func hop(m *arctest.Message, by string) {
	m.Prepend("Received", "from relay.example (relay.example [198.51.100.25])\r\n\tby "+by+" with ESMTPS id 4Z1; Tue, 10 Jun 2025 09:14:05 +0000")
}

func oneHop(t *testing.T) *arctest.Message {
	m := newMessage()
	hop(m, "mx.example.net")
	gateway(t).Seal(t, m, CVNone, resultsAtGateway...)
	return m
}

func threeHops(t *testing.T) *arctest.Message {
	m := oneHop(t)
	hop(m, "lists.example.org")
	listRewrite(m)
	mailingList(t).Seal(t, m, CVPass, resultsAtList...)
	hop(m, "mx1.forwarder.example")
	forwarder(t).Seal(t, m, CVPass, resultsAtForwarder...)
	return m
}

var fifty struct {
	sync.Once
	m *arctest.Message
}

// fiftyHops is a chain of 50 sets; sealing them is slow under -race, so
// it is made once.
func fiftyHops(t *testing.T) *arctest.Message {
	fifty.Do(func() {
		m := oneHop(t)
		for range 49 {
			hop(m, "mx.ed.example")
			edSealer(t).Seal(t, m, CVPass, resultsAtList...)
		}
		fifty.m = m
	})
	return fifty.m.Clone()
}

var instRE = regexp.MustCompile(`(?:^|[;\s])i\s*=\s*(\d+)`)

// removeInstance drops the ARC fields of instance i.
func removeInstance(m *arctest.Message, i int) {
	var kept [][2]string
	for _, f := range m.Headers() {
		if strings.HasPrefix(strings.ToLower(f[0]), "arc-") {
			if mm := instRE.FindStringSubmatch(f[1]); mm != nil && mm[1] == strconv.Itoa(i) {
				continue
			}
		}
		kept = append(kept, f)
	}
	m.SetHeaders(kept)
}

// newLookup serves zone over real DNS and returns the cache's LookupTXT.
func newLookup(t *testing.T, rrs []string) (*dnstest.Server, func(context.Context, string) ([]string, error)) {
	t.Helper()
	s := dnstest.Start(t, rrs...)
	r, err := dnscache.New(dnscache.Config{Nameservers: []string{s.Addr()}, Attempts: 1, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s, r.LookupTXT
}

func TestVerify(t *testing.T) {
	type want struct {
		cv         string
		reason     string // a substring of Reason
		temporary  bool   // an error wrapping dmarc.ErrTemporary
		oldestPass int
		sets       int
	}
	tests := []struct {
		name    string
		message func(t *testing.T) *arctest.Message
		dns     func(s *dnstest.Server)
		want    want
	}{
		{
			name:    "a message sealed by one hop passes",
			message: oneHop,
			want:    want{cv: CVPass, sets: 1},
		},
		{
			name:    "three hops pass, and oldest-pass shows the list's rewrite broke the first AMS",
			message: threeHops,
			want:    want{cv: CVPass, sets: 3, oldestPass: 2},
		},
		{
			name: "three hops that change nothing have oldest-pass 0",
			message: func(t *testing.T) *arctest.Message {
				m := oneHop(t)
				mailingList(t).Seal(t, m, CVPass, resultsAtList...)
				forwarder(t).Seal(t, m, CVPass, resultsAtForwarder...)
				return m
			},
			want: want{cv: CVPass, sets: 3},
		},
		{
			name: "a body modified after the last seal fails the newest AMS",
			message: func(t *testing.T) *arctest.Message {
				m := threeHops(t)
				m.Body = strings.Replace(m.Body, "numbers", "figures", 1)
				return m
			},
			want: want{cv: CVFail, reason: "ARC-Message-Signature i=3: body hash does not match", sets: 3},
		},
		{
			name: "a signed header changed after the last seal fails the newest AMS",
			message: func(t *testing.T) *arctest.Message {
				m := oneHop(t)
				m.Set("Subject", "Quarterly numbers (edited)")
				return m
			},
			want: want{cv: CVFail, reason: "ARC-Message-Signature i=1: signature does not verify", sets: 1},
		},
		{
			name: "fields nobody signed may be added after the last seal",
			message: func(t *testing.T) *arctest.Message {
				m := threeHops(t)
				hop(m, "mx.dmarcd.example")
				m.Prepend("X-Spam-Score", "1.2")
				m.Append("X-Mailer", "appended at the bottom")
				return m
			},
			want: want{cv: CVPass, sets: 3, oldestPass: 2},
		},
		{
			name: "a broken older ARC-Seal fails the chain though the newer sealer said pass",
			message: func(t *testing.T) *arctest.Message {
				m := newMessage()
				gw := gateway(t)
				gw.SealKey = key(t, "rsa1024c") // the DNS has another key
				gw.Seal(t, m, CVNone, resultsAtGateway...)
				mailingList(t).Seal(t, m, CVPass, resultsAtList...)
				return m
			},
			want: want{cv: CVFail, reason: "ARC-Seal i=1: signature does not verify", sets: 2},
		},
		{
			name: "a modified older ARC-Authentication-Results fails the seals over it",
			message: func(t *testing.T) *arctest.Message {
				m := threeHops(t)
				h := m.Headers()
				for i, f := range h {
					if f[0] == "ARC-Authentication-Results" && strings.HasPrefix(f[1], " i=1;") {
						h[i][1] = strings.Replace(f[1], "dmarc=pass", "dmarc=fail", 1)
					}
				}
				m.SetHeaders(h)
				return m
			},
			want: want{cv: CVFail, reason: "ARC-Seal i=3: signature does not verify", sets: 3},
		},
		{
			name: "a missing instance fails",
			message: func(t *testing.T) *arctest.Message {
				m := threeHops(t)
				removeInstance(m, 2)
				return m
			},
			want: want{cv: CVFail, reason: "ARC set i=2 is missing", sets: 2},
		},
		{
			name: "a duplicate instance fails",
			message: func(t *testing.T) *arctest.Message {
				m := oneHop(t)
				list := mailingList(t)
				list.Instance = 1 // a sealer that always writes i=1
				list.Seal(t, m, CVNone, resultsAtList...)
				return m
			},
			want: want{cv: CVFail, reason: "ARC set i=1 has two", sets: 1},
		},
		{
			name: "a chain its newest sealer found broken (cv=fail) fails",
			message: func(t *testing.T) *arctest.Message {
				m := oneHop(t)
				m.Body += "tampered\r\n"
				mailingList(t).Seal(t, m, CVFail, resultsAtList...)
				return m
			},
			want: want{cv: CVFail, reason: "ARC-Seal i=2 says cv=fail", sets: 2},
		},
		{
			name: "an older cv=fail fails though a later sealer said pass",
			message: func(t *testing.T) *arctest.Message {
				m := oneHop(t)
				mailingList(t).Seal(t, m, CVFail, resultsAtList...)
				forwarder(t).Seal(t, m, CVPass, resultsAtForwarder...)
				return m
			},
			want: want{cv: CVFail, reason: "ARC-Seal i=2 says cv=fail, want pass", sets: 3},
		},
		{
			name: "a first set that claims cv=pass fails",
			message: func(t *testing.T) *arctest.Message {
				m := newMessage()
				gateway(t).Seal(t, m, CVPass, resultsAtGateway...)
				return m
			},
			want: want{cv: CVFail, reason: "ARC-Seal i=1 says cv=pass, want none", sets: 1},
		},
		{
			name:    "a message without ARC header fields is none",
			message: func(t *testing.T) *arctest.Message { return newMessage() },
			want:    want{cv: CVNone},
		},
		{
			name:    "a sealer key that is not in the DNS fails",
			message: threeHops,
			dns:     func(s *dnstest.Server) { s.Remove("arc1._domainkey.lists.example.org.") },
			want:    want{cv: CVFail, reason: "no key at arc1._domainkey.lists.example.org", sets: 3},
		},
		{
			name:    "a revoked key (empty p=) fails",
			message: oneHop,
			dns: func(s *dnstest.Server) {
				s.Set(`arc-2025._domainkey.gw.example.net. 300 IN TXT "v=DKIM1; k=rsa; p="`)
			},
			want: want{cv: CVFail, reason: "key revoked", sets: 1},
		},
		{
			name:    "a SERVFAIL for a key is a temporary error, not a failure",
			message: threeHops,
			dns:     func(s *dnstest.Server) { s.Fail("fwd._domainkey.forwarder.example.", dns.RcodeServerFailure) },
			want:    want{temporary: true, reason: "ARC-Message-Signature i=3", sets: 3},
		},
		{
			name: "a SERVFAIL does not hide a seal that fails for good",
			message: func(t *testing.T) *arctest.Message {
				m := newMessage()
				gw := gateway(t)
				gw.SealKey = key(t, "rsa1024c")
				gw.Seal(t, m, CVNone, resultsAtGateway...)
				mailingList(t).Seal(t, m, CVPass, resultsAtList...)
				return m
			},
			dns:  func(s *dnstest.Server) { s.Fail("arc1._domainkey.lists.example.org.", dns.RcodeServerFailure) },
			want: want{cv: CVFail, reason: "ARC-Seal i=1: signature does not verify", sets: 2},
		},
		{
			name: "an Ed25519 sealer (RFC 8463) passes",
			message: func(t *testing.T) *arctest.Message {
				m := oneHop(t)
				edSealer(t).Seal(t, m, CVPass, resultsAtList...)
				return m
			},
			want: want{cv: CVPass, sets: 2},
		},
		{
			name: "an Ed25519 signature checked with an RSA key fails",
			message: func(t *testing.T) *arctest.Message {
				m := newMessage()
				ed := edSealer(t)
				ed.Selector = "arc-2025"
				ed.Domain = "gw.example.net"
				ed.Seal(t, m, CVNone, resultsAtGateway...)
				return m
			},
			want: want{cv: CVFail, reason: "rsa key for an a=ed25519-sha256", sets: 1},
		},
		{
			name: "a sealer with c=simple/simple passes",
			message: func(t *testing.T) *arctest.Message {
				m := newMessage()
				gw := gateway(t)
				gw.Canon = "simple/simple"
				gw.Seal(t, m, CVNone, resultsAtGateway...)
				return m
			},
			want: want{cv: CVPass, sets: 1},
		},
		{
			name: "an AMS that signs ARC-Authentication-Results and ARC-Message-Signature passes",
			message: func(t *testing.T) *arctest.Message {
				m := oneHop(t)
				list := mailingList(t)
				list.Signed = []string{"arc-authentication-results", "arc-message-signature", "from", "to", "subject", "date", "message-id", "mime-version", "content-type", "dkim-signature"}
				listRewrite(m)
				list.Seal(t, m, CVPass, resultsAtList...)
				return m
			},
			want: want{cv: CVPass, sets: 2, oldestPass: 2},
		},
		{
			name: "an l= body length lets a footer appended after sealing pass",
			message: func(t *testing.T) *arctest.Message {
				m := newMessage()
				gw := gateway(t)
				gw.BodyLength = true
				gw.Seal(t, m, CVNone, resultsAtGateway...)
				m.Body += "-- \r\nsent through the list\r\n"
				return m
			},
			want: want{cv: CVPass, sets: 1},
		},
		{
			name: "an l= longer than the body fails",
			message: func(t *testing.T) *arctest.Message {
				m := newMessage()
				gw := gateway(t)
				gw.BodyLength = true
				gw.Seal(t, m, CVNone, resultsAtGateway...)
				m.Body = "Hello team,\r\n"
				return m
			},
			want: want{cv: CVFail, reason: "is longer than the body", sets: 1},
		},
		{
			name: "field names in another case still select the signed fields",
			message: func(t *testing.T) *arctest.Message {
				m := threeHops(t)
				h := m.Headers()
				for i := range h {
					h[i][0] = strings.ToLower(h[i][0])
				}
				m.SetHeaders(h)
				return m
			},
			want: want{cv: CVPass, sets: 3, oldestPass: 2},
		},
		{
			name:    "fifty hops, the most RFC 8617 allows, pass",
			message: fiftyHops,
			want:    want{cv: CVPass, sets: 50},
		},
		{
			name: "a fifty-first hop fails",
			message: func(t *testing.T) *arctest.Message {
				m := fiftyHops(t)
				edSealer(t).Seal(t, m, CVPass, resultsAtList...)
				return m
			},
			want: want{cv: CVFail, reason: "153 ARC header fields, more than 50 sets can hold"},
		},
		{
			name: "an instance above 50 fails",
			message: func(t *testing.T) *arctest.Message {
				m := oneHop(t)
				m.Prepend("ARC-Seal", "i=51; a=rsa-sha256; cv=pass; d=x.example; s=s; b=AAAA")
				return m
			},
			want: want{cv: CVFail, reason: "instance 51 above 50", sets: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, lookup := newLookup(t, zone(t))
			if tc.dns != nil {
				tc.dns(s)
			}
			m := tc.message(t)
			res, err := Verify(context.Background(), fields(m), strings.NewReader(m.Body), lookup)
			if tc.want.temporary {
				if !errors.Is(err, dmarc.ErrTemporary) {
					t.Fatalf("error %v, want one wrapping dmarc.ErrTemporary (result %+v)", err, res)
				}
				if res.CV != "" {
					t.Errorf("CV %q with an error, want empty", res.CV)
				}
			} else if err != nil {
				t.Fatalf("error %v (result %+v)", err, res)
			}
			if res.CV != tc.want.cv {
				t.Errorf("CV %q, want %q (reason %q)", res.CV, tc.want.cv, res.Reason)
			}
			if tc.want.reason != "" && !strings.Contains(res.Reason, tc.want.reason) {
				t.Errorf("reason %q, want it to contain %q", res.Reason, tc.want.reason)
			}
			if tc.want.reason == "" && res.Reason != "" {
				t.Errorf("reason %q, want none", res.Reason)
			}
			if res.OldestPass != tc.want.oldestPass {
				t.Errorf("OldestPass %d, want %d", res.OldestPass, tc.want.oldestPass)
			}
			if len(res.Sets) != tc.want.sets {
				t.Errorf("%d sets, want %d", len(res.Sets), tc.want.sets)
			}
			if tc.want.cv == CVNone {
				if n := s.Queries("arc-2025._domainkey.gw.example.net.", dns.TypeTXT); n != 0 {
					t.Errorf("%d key queries for a message without ARC", n)
				}
			}
		})
	}
}

// TestVerifySets checks what the caller reads off a passing chain to apply
// the trusted_forwarder override: who sealed, and what each sealer found.
func TestVerifySets(t *testing.T) {
	s, lookup := newLookup(t, zone(t))
	m := threeHops(t)
	res, err := Verify(context.Background(), fields(m), strings.NewReader(m.Body), lookup)
	if err != nil || res.CV != CVPass {
		t.Fatalf("CV %q, error %v, reason %q", res.CV, err, res.Reason)
	}
	want := []struct {
		inst                   int
		cv, seal, sel, msg, id string
		ip, spf                string
	}{
		{1, CVNone, "gw.example.net", "arc-2025", "gw.example.net", "mx.example.net", "192.0.2.10", "pass"},
		{2, CVPass, "lists.example.org", "arc1", "lists.example.org", "lists.example.org", "198.51.100.25", "pass"},
		{3, CVPass, "forwarder.example", "fwd", "forwarder.example", "mx1.forwarder.example", "203.0.113.7", "pass"},
	}
	for i, w := range want {
		got := res.Sets[i]
		if got.Instance != w.inst || got.CV != w.cv || got.SealDomain != w.seal || got.SealSelector != w.sel || got.MessageDomain != w.msg || got.ClientIP != w.ip {
			t.Errorf("set %d = %+v, want %+v", i, got, w)
		}
		if got.AAR == nil {
			t.Fatalf("set %d: AAR not parsed", i)
		}
		if got.AAR.AuthServID != w.id {
			t.Errorf("set %d: authserv-id %q, want %q", i, got.AAR.AuthServID, w.id)
		}
		spf := ""
		for _, r := range got.AAR.Results {
			if r.Method == "spf" {
				spf = r.Value
			}
		}
		if spf != w.spf {
			t.Errorf("set %d: spf=%q, want %q", i, spf, w.spf)
		}
	}
	if dkim := res.Sets[0].AAR.Results[1]; dkim.Method != "dkim" || dkim.Value != "pass" {
		t.Errorf("gateway's dkim result %+v", dkim)
	}
	// Each sealer's key is asked for once, though it signs two fields.
	for _, name := range []string{"arc-2025._domainkey.gw.example.net.", "arc1._domainkey.lists.example.org.", "fwd._domainkey.forwarder.example."} {
		if n := s.Queries(name, dns.TypeTXT); n != 1 {
			t.Errorf("%d queries for %s, want 1", n, name)
		}
	}
}

// TestVerifyMilterFields checks the fields the way a milter behind
// Postfix gets them: the space after the colon removed, folds as bare LF.
// MilterField puts the space back, which c=simple needs.
func TestVerifyMilterFields(t *testing.T) {
	simpleSeal := func(t *testing.T) *arctest.Message {
		m := newMessage()
		gw := gateway(t)
		gw.Canon = "simple/simple"
		gw.Seal(t, m, CVNone, resultsAtGateway...)
		return m
	}
	tests := []struct {
		name    string
		message func(t *testing.T) *arctest.Message
		fields  func(m *arctest.Message) []Field
		want    string
	}{
		{"relaxed sealing passes with the milter's fields", threeHops, milterFields, CVPass},
		{"simple sealing passes with the milter's fields", simpleSeal, milterFields, CVPass},
		{
			"simple sealing passes with the fields as written, as a milter that negotiated SMFIP_HDR_LEADSPC gets them",
			simpleSeal,
			func(m *arctest.Message) []Field {
				var fields []Field
				for _, h := range m.Headers() {
					fields = append(fields, MilterField(h[0], h[1], true))
				}
				return fields
			},
			CVPass,
		},
		{
			"simple sealing fails when the eaten space is not put back",
			simpleSeal,
			func(m *arctest.Message) []Field {
				fields := milterFields(m)
				for i := range fields {
					fields[i].Value = strings.TrimPrefix(fields[i].Value, " ")
				}
				return fields
			},
			CVFail,
		},
		{
			"relaxed sealing does not care about the eaten space",
			threeHops,
			func(m *arctest.Message) []Field {
				fields := milterFields(m)
				for i := range fields {
					fields[i].Value = strings.TrimPrefix(fields[i].Value, " ")
				}
				return fields
			},
			CVPass,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, lookup := newLookup(t, zone(t))
			m := tc.message(t)
			res, err := Verify(context.Background(), tc.fields(m), strings.NewReader(m.Body), lookup)
			if err != nil || res.CV != tc.want {
				t.Errorf("CV %q, error %v, reason %q; want %q", res.CV, err, res.Reason, tc.want)
			}
		})
	}
}

// TestVerifierChunks feeds the body as a milter gets it, in chunks, cut
// anywhere: inside a CRLF, inside a run of whitespace.
func TestVerifierChunks(t *testing.T) {
	_, lookup := newLookup(t, zone(t))
	m := threeHops(t)
	// Whitespace at line ends and empty lines at the end, which the
	// canonicalizations drop, and a fourth hop that seals the result.
	m.Body += "trailing  \t \r\n\r\n \r\n"
	fresh := m.Clone()
	forwarder(t).Seal(t, fresh, CVPass, resultsAtForwarder...)
	for _, size := range []int{1, 2, 3, 7, 64, 1 << 20} {
		v := NewVerifier(fields(fresh))
		if !v.NeedsBody() {
			t.Fatal("NeedsBody false for a chain to verify")
		}
		for b := fresh.Body; len(b) > 0; {
			n := min(size, len(b))
			v.Write([]byte(b[:n]))
			b = b[n:]
		}
		res, err := v.Verify(context.Background(), lookup)
		if err != nil || res.CV != CVPass || res.OldestPass != 4 {
			t.Errorf("chunks of %d: CV %q, OldestPass %d, error %v, reason %q", size, res.CV, res.OldestPass, err, res.Reason)
		}
	}
}

func TestNeedsBody(t *testing.T) {
	tests := []struct {
		name    string
		message func(t *testing.T) *arctest.Message
		want    bool
	}{
		{"a message without ARC needs no body", func(t *testing.T) *arctest.Message { return newMessage() }, false},
		{"a chain broken in its structure needs no body", func(t *testing.T) *arctest.Message {
			m := threeHops(t)
			removeInstance(m, 1)
			return m
		}, false},
		{"a chain to verify needs the body", threeHops, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewVerifier(fields(tc.message(t))).NeedsBody(); got != tc.want {
				t.Errorf("NeedsBody() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVerifierSetsBeforeVerify(t *testing.T) {
	v := NewVerifier(fields(threeHops(t)))
	var sealers []string
	for _, s := range v.Sets() {
		sealers = append(sealers, s.SealDomain)
	}
	if got := strings.Join(sealers, " "); got != "gw.example.net lists.example.org forwarder.example" {
		t.Errorf("sealers %q", got)
	}
}

// TestVerifyAfterTemporaryFailure checks that a key whose lookup failed is
// asked once per Verify, and asked again by the next Verify: the milter
// may retry when the DNS has recovered.
func TestVerifyAfterTemporaryFailure(t *testing.T) {
	s, lookup := newLookup(t, zone(t))
	const name = "fwd._domainkey.forwarder.example."
	s.Fail(name, dns.RcodeServerFailure)
	m := threeHops(t)
	v := NewVerifier(fields(m))
	v.Write([]byte(m.Body))
	res, err := v.Verify(context.Background(), lookup)
	if !errors.Is(err, dmarc.ErrTemporary) || res.CV != "" {
		t.Fatalf("CV %q, error %v; want a temporary error", res.CV, err)
	}
	if n := s.Queries(name, dns.TypeTXT); n != 1 {
		t.Errorf("%d queries for the failing key in one Verify, want 1", n)
	}
	s.Heal(name)
	res, err = v.Verify(context.Background(), lookup)
	if err != nil || res.CV != CVPass || res.OldestPass != 2 {
		t.Fatalf("after the DNS recovered: CV %q, OldestPass %d, error %v, reason %q", res.CV, res.OldestPass, err, res.Reason)
	}
	// Decided: later calls neither ask again nor change their mind.
	before := s.Queries(name, dns.TypeTXT)
	if res2, err := v.Verify(context.Background(), lookup); err != nil || res2.CV != res.CV || res2.OldestPass != res.OldestPass {
		t.Errorf("third Verify: %+v, %v", res2, err)
	}
	if n := s.Queries(name, dns.TypeTXT); n != before {
		t.Errorf("%d more queries after the chain was decided", n-before)
	}
}

func TestVerifyCancelled(t *testing.T) {
	_, lookup := newLookup(t, zone(t))
	m := oneHop(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Verify(ctx, fields(m), strings.NewReader(m.Body), lookup)
	if !errors.Is(err, dmarc.ErrTemporary) || !errors.Is(err, context.Canceled) || res.CV != "" {
		t.Errorf("CV %q, error %v; want a temporary error wrapping context.Canceled", res.CV, err)
	}
}
