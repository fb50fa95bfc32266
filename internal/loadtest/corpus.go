package loadtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Names shared by the corpus, the milter configurations and the driver.
const (
	// AuthservID is the id the milters under test write (and the MTA's
	// {j} macro).
	AuthservID = "mx.bench.test"
	// TrustedID is the authserv-id of the upstream filter whose
	// Authentication-Results the milters are told to trust.
	TrustedID = "border.bench.test"
	// Suffix is the public suffix every corpus domain sits under; the
	// public suffix list given to OpenDMARC holds it alone.
	Suffix = "test"
	// espDomain signs the messages whose DKIM is not aligned.
	espDomain = "esp-mailer.example"
)

// SuffixList is the public suffix list OpenDMARC reads (without one it
// finds no organizational domains at all).
const SuffixList = "// the public suffix list of dmarcd's internal/loadtest\n" + Suffix + "\n"

// Corpus is a deterministic set of DMARC domains and the messages sent
// from them. Domain i is "d<i>.test"; its record is computed, not stored,
// so a corpus of a million domains costs no memory. Message n comes from
// domain n mod Domains.
type Corpus struct {
	// Domains is how many policy domains the zone holds.
	Domains int
	// TTL is the TTL of every answer, positive and negative.
	TTL time.Duration
	// BodySize is the size of each message body in bytes.
	BodySize int

	body string
}

// NewCorpus returns a corpus of n domains with answers valid for ttl and
// bodies of about bodySize bytes.
func NewCorpus(n int, ttl time.Duration, bodySize int) *Corpus {
	c := &Corpus{Domains: n, TTL: ttl, BodySize: bodySize}
	c.body = makeBody(bodySize)
	return c
}

// Domain is the name of domain i.
func (c *Corpus) Domain(i int) string {
	return fmt.Sprintf("d%06d.%s", i%c.Domains, Suffix)
}

// domainIndex parses "d<i>.test" (any case, trailing dot allowed) back to
// i, or -1.
func (c *Corpus) domainIndex(name string) int {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	rest, ok := strings.CutSuffix(name, "."+Suffix)
	if !ok || len(rest) < 2 || rest[0] != 'd' {
		return -1
	}
	i, err := strconv.Atoi(rest[1:])
	if err != nil || i < 0 || i >= c.Domains || rest[1:] != fmt.Sprintf("%06d", i) {
		return -1
	}
	return i
}

// Record is the DMARC record of domain i: a mix of p=none (40%),
// quarantine (30%) and reject (30%); one domain in five has sp=none, half
// ask for aggregate reports (to an address in their own domain, so no
// external destination check is needed).
func (c *Corpus) Record(i int) string {
	var b strings.Builder
	b.WriteString("v=DMARC1; p=")
	switch i % 10 {
	case 0, 1, 2, 3:
		b.WriteString("none")
	case 4, 5, 6:
		b.WriteString("quarantine")
	default:
		b.WriteString("reject")
	}
	if i%5 == 2 {
		b.WriteString("; sp=none")
	}
	if i%2 == 0 {
		b.WriteString("; rua=mailto:dmarc-rua@")
		b.WriteString(c.Domain(i))
	}
	return b.String()
}

// TXT answers a TXT query: the record for "_dmarc.d<i>.test", ok false for
// every other name (which does not exist).
func (c *Corpus) TXT(qname string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.ToLower(qname), "_dmarc.")
	if !ok {
		return "", false
	}
	i := c.domainIndex(rest)
	if i < 0 {
		return "", false
	}
	return c.Record(i), true
}

// Exists reports whether name owns records or has names below it that do:
// "test", "d<i>.test" and "_dmarc.d<i>.test". Every other name is NXDOMAIN.
func (c *Corpus) Exists(qname string) bool {
	name := strings.TrimSuffix(strings.ToLower(qname), ".")
	if name == Suffix {
		return true
	}
	if _, ok := c.TXT(name); ok {
		return true
	}
	return c.domainIndex(name) >= 0
}

// Message is one SMTP transaction as the driver sends it.
type Message struct {
	QueueID  string
	Client   string // IPv4 address
	Helo     string
	MailFrom string // without angle brackets
	Rcpt     string
	Headers  [][2]string
	Body     string
	// FromDomain is the domain of the From address, for checks.
	FromDomain string
}

// Message builds message n. Most are what a DMARC milter sees all day:
// signed by OpenDKIM-like upstream filters whose Authentication-Results
// carry an aligned dkim=pass and spf=pass. One in ten comes from a
// subdomain ("mail.d<i>.test", inheriting the policy, two lookups cold);
// one in twenty fails DKIM and SPF (and so DMARC: rejected, held or
// accepted by the domain's policy) and one in twenty is signed by an
// unrelated ESP with SPF only aligned.
func (c *Corpus) Message(n int) Message {
	return c.message(n, mix(uint64(n))%10 == 3)
}

// WarmMessage builds message n of a warm-up that, in 2 × Domains
// messages, sends from every domain and from its "mail." subdomain once,
// so that every DNS answer the measured messages need is cached.
func (c *Corpus) WarmMessage(n int) Message {
	return c.message(n, (n/c.Domains)%2 == 1)
}

// message builds message n, from the domain's "mail." subdomain if sub.
func (c *Corpus) message(n int, sub bool) Message {
	i := n % c.Domains
	dom := c.Domain(i)
	// The scenario is drawn from a hash of n, so that it does not follow
	// the domain's policy (which follows i).
	h := mix(uint64(n))
	from := dom
	if sub {
		from = "mail." + dom
	}
	qid := fmt.Sprintf("%010X", n)
	client := fmt.Sprintf("198.51.%d.%d", 100+(n/250)%20, 1+n%250)
	helo := "out" + strconv.Itoa(n%7) + "." + dom
	mailFrom := "bounce+" + strconv.Itoa(n) + "@" + from
	date := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second).Format(time.RFC1123Z)

	dkimDomain, dkimResult, spfResult := dom, "pass", "pass"
	switch (h >> 8) % 20 {
	case 0:
		dkimResult, spfResult = "fail", "fail"
	case 1:
		dkimDomain = espDomain
		if (h>>16)%2 == 1 {
			spfResult = "softfail"
		}
	}
	ar := TrustedID + "; dkim=" + dkimResult + " (2048-bit key; unprotected) header.d=" + dkimDomain +
		" header.i=@" + dkimDomain + " header.a=rsa-sha256 header.s=s2026 header.b=Ab3dE5gH;" +
		" spf=" + spfResult + " (" + TrustedID + ": domain of " + mailFrom + " designates " + client +
		" as permitted sender) smtp.mailfrom=" + mailFrom
	sig := "v=1; a=rsa-sha256; c=relaxed/relaxed; d=" + dkimDomain + "; s=s2026; t=" + strconv.Itoa(1793000000+n) +
		";\r\n\th=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh=" + fakeB64(44, n) +
		";\r\n\tb=" + fakeB64(344, n+1)
	hdr := [][2]string{
		{"Received", "from " + helo + " (" + helo + " [" + client + "])\r\n\tby " + AuthservID + " (Postfix) with ESMTPS id " + qid +
			"\r\n\tfor <postmaster@bench.test>; " + date},
		{"Received", "from app" + strconv.Itoa(n%3) + ".internal." + dom + " (localhost [127.0.0.1])\r\n\tby " + helo +
			" (Postfix) with ESMTP id " + qid[:6] + "; " + date},
		{"Authentication-Results", ar},
		{"DKIM-Signature", sig},
		{"From", "\"News from " + dom + "\" <news@" + from + ">"},
		{"To", "<postmaster@bench.test>"},
		{"Subject", "Your weekly digest #" + strconv.Itoa(n)},
		{"Date", date},
		{"Message-ID", "<" + qid + "." + strconv.Itoa(n) + "@" + from + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "8bit"},
	}
	return Message{QueueID: qid, Client: client, Helo: helo, MailFrom: mailFrom, Rcpt: "postmaster@bench.test",
		Headers: hdr, Body: c.body, FromDomain: from}
}

// mix is SplitMix64's finalizer: a well-spread hash of n.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// fakeB64 is n base64-looking characters that vary with seed.
func fakeB64(n, seed int) string {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = b64[x%64]
	}
	return string(b)
}

// makeBody is a plain text body of about size bytes in lines of 72.
func makeBody(size int) string {
	const line = "The quick brown fox jumps over the lazy dog; a newsletter line of text.\r\n"
	var b strings.Builder
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	return b.String()
}
