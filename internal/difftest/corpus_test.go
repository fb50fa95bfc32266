package difftest

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// suffixList is the public suffix list both milters read: "test" is a
// suffix, so rej.test is an organizational domain, and so is "co.test", so
// that shop.co.test is one too.
const suffixList = `// the public suffix list of dmarcd's internal/difftest
test
co.test
`

// esp is a sending service's domain: no DMARC record, unrelated to every
// From domain.
const esp = "esp.test"

// corpus is the zone the DNS server answers from, the names it fails, and
// the messages.
type corpus struct {
	zone     []string
	faults   map[string]int // query name → rcode
	messages []message
}

// domain is one DMARC policy domain of the zone.
type domain struct {
	name string
	// records are the TXT records at _dmarc.name, each in master-file
	// syntax (one or more quoted strings); none means no record.
	records []string
	// about says in a few words what the record is, for message names.
	about string
	// features are added to every message whose From is in this domain
	// or inherits from it.
	features []string
	category string
	// auths are the authentication scenarios its messages cross; subs
	// are subdomains (first label) From addresses use, with the scenarios
	// for them.
	auths []string
	subs  []string
	// subAuths are the scenarios for subdomain From addresses.
	subAuths []string
}

// Scenario sets.
var (
	basicAuths = []string{"none", "dkim-exact", "dkim-unaligned", "spf-exact"}
	allAuths   = []string{"none", "dkim-exact", "dkim-child", "dkim-unaligned", "dkim-fail", "dkim-and-spf-unaligned",
		"spf-exact", "spf-child", "spf-address", "spf-fail", "spf-other-envelope", "spf-helo-only"}
	subAuths       = []string{"none", "dkim-exact", "dkim-parent", "spf-parent"}
	malformedAuths = []string{"none", "dkim-exact"}
)

// domains is the zone's policy domains, by category.
var domains = []domain{
	// Policies.
	{name: "none.test", records: []string{`"v=DMARC1; p=none"`}, about: "p=none", category: "policy", auths: basicAuths},
	{name: "quar.test", records: []string{`"v=DMARC1; p=quarantine"`}, about: "p=quarantine", category: "policy", auths: basicAuths},
	{name: "rej.test", records: []string{`"v=DMARC1; p=reject; rua=mailto:agg@rej.test"`}, about: "p=reject, relaxed alignment", category: "alignment",
		auths: allAuths, subs: []string{"sub", "a.b"}, subAuths: append(subAuths, "dkim-child")},
	{name: "spaced.test", records: []string{`"v=DMARC1 ; p = reject ; adkim = r"`}, about: "p=reject written with spaces", category: "policy", auths: basicAuths},
	{name: "upper.test", records: []string{`"v=DMARC1; P=REJECT; ADKIM=S"`}, about: "P=REJECT; ADKIM=S in capitals", features: []string{"strict-dkim"}, category: "policy", auths: []string{"none", "dkim-exact", "dkim-child"}},
	{name: "split.test", records: []string{`"v=DMARC1; " "p=reject"`}, about: "p=reject in two TXT strings", category: "policy", auths: basicAuths},
	{name: "unknowntag.test", records: []string{`"v=DMARC1; p=reject; foo=bar"`}, about: "p=reject and an unknown tag", category: "policy", auths: basicAuths},
	{name: "badrua.test", records: []string{`"v=DMARC1; p=quarantine; rua=bogus"`}, about: "p=quarantine and an invalid rua", category: "policy", auths: basicAuths},
	{name: "np.test", records: []string{`"v=DMARC1; p=quarantine; sp=none; np=reject"`}, about: "p=quarantine; sp=none; np=reject", category: "sp and inheritance",
		auths: basicAuths, subs: []string{"sub", "nx"}, subAuths: []string{"none", "dkim-parent"}},

	// Subdomain policies.
	{name: "rejspnone.test", records: []string{`"v=DMARC1; p=reject; sp=none"`}, about: "p=reject; sp=none", category: "sp and inheritance",
		auths: basicAuths, subs: []string{"sub", "nx"}, subAuths: subAuths},
	{name: "nonesprej.test", records: []string{`"v=DMARC1; p=none; sp=reject"`}, about: "p=none; sp=reject", category: "sp and inheritance",
		auths: basicAuths, subs: []string{"sub", "a.b"}, subAuths: subAuths},
	{name: "rejspquar.test", records: []string{`"v=DMARC1; p=reject; sp=quarantine"`}, about: "p=reject; sp=quarantine", category: "sp and inheritance",
		auths: []string{"none", "dkim-exact"}, subs: []string{"sub"}, subAuths: subAuths},
	{name: "shop.co.test", records: []string{`"v=DMARC1; p=reject"`}, about: "p=reject under the public suffix co.test", category: "sp and inheritance",
		auths: []string{"none", "dkim-exact", "dkim-child"}, subs: []string{"mail"}, subAuths: subAuths},
	{name: "own.test", records: []string{`"v=DMARC1; p=reject"`}, about: "p=reject, with sub.own.test publishing p=none", category: "sp and inheritance",
		auths: []string{"none"}, subs: []string{"sub"}, subAuths: []string{"none", "dkim-parent"}},
	{name: "sub.own.test", records: []string{`"v=DMARC1; p=none"`}, about: "p=none of its own, below own.test's p=reject", category: "sp and inheritance",
		auths: []string{"dkim-exact"}},
	{name: "txtown.test", records: []string{`"v=DMARC1; p=reject"`}, about: "p=reject, with only a non-DMARC TXT at _dmarc.sub.txtown.test", category: "sp and inheritance",
		subs: []string{"sub"}, subAuths: []string{"none", "dkim-parent"}},
	{name: "sub.txtown.test", records: []string{`"hello=world"`}, about: "a non-DMARC TXT record", category: "sp and inheritance"},

	// Alignment modes.
	{name: "strict.test", records: []string{`"v=DMARC1; p=reject; adkim=s; aspf=s"`}, about: "p=reject; adkim=s; aspf=s", features: []string{"strict-dkim", "strict-spf"}, category: "alignment",
		auths: allAuths, subs: []string{"sub"}, subAuths: append(subAuths, "dkim-child")},
	{name: "sdkim.test", records: []string{`"v=DMARC1; p=quarantine; adkim=s"`}, about: "p=quarantine; adkim=s", features: []string{"strict-dkim"}, category: "alignment",
		auths: []string{"none", "dkim-exact", "dkim-child", "dkim-unaligned", "spf-exact", "spf-child"}, subs: []string{"sub"}, subAuths: subAuths},
	{name: "sspf.test", records: []string{`"v=DMARC1; p=quarantine; aspf=s"`}, about: "p=quarantine; aspf=s", features: []string{"strict-spf"}, category: "alignment",
		auths: []string{"none", "dkim-exact", "dkim-child", "spf-exact", "spf-child", "spf-address"}, subs: []string{"sub"}, subAuths: subAuths},

	// pct.
	{name: "pct0rej.test", records: []string{`"v=DMARC1; p=reject; pct=0"`}, about: "p=reject; pct=0", features: []string{"pct0"}, category: "pct",
		auths: basicAuths, subs: []string{"sub"}, subAuths: []string{"none", "dkim-parent"}},
	{name: "pct0quar.test", records: []string{`"v=DMARC1; p=quarantine; pct=0"`}, about: "p=quarantine; pct=0", features: []string{"pct0"}, category: "pct", auths: basicAuths},
	{name: "pct100rej.test", records: []string{`"v=DMARC1; p=reject; pct=100"`}, about: "p=reject; pct=100", category: "pct", auths: basicAuths},
	{name: "pct100quar.test", records: []string{`"v=DMARC1; p=quarantine; pct=100"`}, about: "p=quarantine; pct=100", category: "pct", auths: basicAuths},
	{name: "pct0sp.test", records: []string{`"v=DMARC1; p=none; sp=reject; pct=0"`}, about: "p=none; sp=reject; pct=0", features: []string{"pct0"}, category: "pct",
		auths: []string{"none"}, subs: []string{"sub"}, subAuths: []string{"none", "dkim-parent"}},

	// Malformed records.
	{name: "badp.test", records: []string{`"v=DMARC1; p=bogus"`}, about: "an invalid p and no rua", category: "malformed record", auths: malformedAuths},
	{name: "badprua.test", records: []string{`"v=DMARC1; p=bogus; rua=mailto:agg@badprua.test"`}, about: "an invalid p and a valid rua", features: []string{"bad-p-rua"}, category: "malformed record",
		auths: malformedAuths, subs: []string{"sub"}, subAuths: []string{"none"}},
	{name: "noprua.test", records: []string{`"v=DMARC1; rua=mailto:agg@noprua.test"`}, about: "no p and a valid rua", features: []string{"bad-p-rua"}, category: "malformed record", auths: malformedAuths},
	{name: "nop.test", records: []string{`"v=DMARC1"`}, about: "only v=DMARC1", category: "malformed record", auths: malformedAuths},
	{name: "abbrev.test", records: []string{`"v=DMARC1; p=rej"`}, about: "the abbreviation p=rej", features: []string{"abbreviated-p"}, category: "malformed record", auths: malformedAuths},
	{name: "vlate.test", records: []string{`"p=reject; v=DMARC1"`}, about: "v=DMARC1 after p=reject", features: []string{"v-not-first"}, category: "malformed record", auths: malformedAuths},
	{name: "v2.test", records: []string{`"v=DMARC2; p=reject"`}, about: "v=DMARC2", features: []string{"v-other-version"}, category: "malformed record", auths: malformedAuths},
	{name: "lowerv.test", records: []string{`"v=dmarc1; p=reject"`}, about: "v=dmarc1 in lower case", category: "malformed record", auths: malformedAuths},
	{name: "badsp.test", records: []string{`"v=DMARC1; p=reject; sp=bogus"`}, about: "p=reject and an invalid sp", category: "malformed record", auths: malformedAuths},
	{name: "badsprua.test", records: []string{`"v=DMARC1; p=reject; sp=bogus; rua=mailto:agg@badsprua.test"`}, about: "p=reject, an invalid sp and a valid rua", features: []string{"bad-p-rua"}, category: "malformed record", auths: malformedAuths},
	{name: "badadkim.test", records: []string{`"v=DMARC1; p=reject; adkim=x"`}, about: "p=reject and an invalid adkim", features: []string{"bad-optional-tag"}, category: "malformed record", auths: malformedAuths},
	{name: "badpct.test", records: []string{`"v=DMARC1; p=reject; pct=abc"`}, about: "p=reject and pct=abc", features: []string{"bad-optional-tag", "pct-not-a-number"}, category: "malformed record", auths: malformedAuths},
	{name: "pct200.test", records: []string{`"v=DMARC1; p=reject; pct=200"`}, about: "p=reject and pct=200", features: []string{"bad-optional-tag"}, category: "malformed record", auths: malformedAuths},
	{name: "duptag.test", records: []string{`"v=DMARC1; p=none; p=reject"`}, about: "p=none and then p=reject", features: []string{"duplicate-p"}, category: "malformed record", auths: malformedAuths},
	{name: "nosemi.test", records: []string{`"v=DMARC1 p=reject"`}, about: "no semicolon after v=DMARC1", features: []string{"v-no-separator"}, category: "malformed record", auths: malformedAuths},

	// Several records, or none.
	{name: "multi.test", records: []string{`"v=DMARC1; p=reject"`, `"v=DMARC1; p=none"`}, about: "two DMARC records", features: []string{"several-records"}, category: "several records",
		auths: malformedAuths, subs: []string{"sub"}, subAuths: []string{"none"}},
	{name: "multimixed.test", records: []string{`"v=DMARC1; p=reject"`, `"v=spf1 -all"`}, about: "a DMARC record and a non-DMARC TXT", category: "several records", auths: malformedAuths},
	{name: "nodmarc.test", about: "no DMARC record", category: "missing record", auths: malformedAuths, subs: []string{"sub"}, subAuths: []string{"none"}},
	{name: "txtonly.test", records: []string{`"hello world"`}, about: "only a non-DMARC TXT record", category: "missing record", auths: malformedAuths},

	// Lookups that fail (see faults in buildCorpus).
	{name: "servfail.test", about: "a _dmarc lookup that fails with SERVFAIL", features: []string{"dns-failure"}, category: "DNS failure", auths: malformedAuths},
	{name: "refused.test", about: "a _dmarc lookup that fails with REFUSED", features: []string{"dns-failure"}, category: "DNS failure", auths: malformedAuths},
	{name: "subfail.test", records: []string{`"v=DMARC1; p=reject"`}, about: "p=reject, with a _dmarc lookup for sub.subfail.test that fails with SERVFAIL", features: []string{"dns-failure"}, category: "DNS failure",
		subs: []string{"sub"}, subAuths: []string{"none", "dkim-parent"}},
	{name: "orgfail.test", about: "an organizational domain whose _dmarc lookup fails with SERVFAIL", features: []string{"dns-failure"}, category: "DNS failure",
		subs: []string{"sub"}, subAuths: []string{"none", "dkim-parent"}},
}

// faults are the names the DNS server fails, and how.
var faults = map[string]int{
	"_dmarc.servfail.test":    dns.RcodeServerFailure,
	"_dmarc.refused.test":     dns.RcodeRefused,
	"_dmarc.sub.subfail.test": dns.RcodeServerFailure,
	"_dmarc.orgfail.test":     dns.RcodeServerFailure,
}

// auth is an authentication scenario: the envelope and the trusted
// Authentication-Results a message carries.
type auth struct {
	says     string
	features []string
	build    func(from, org string) (mailFrom string, ar []string)
}

// auths are the scenarios by name. from is the From domain, org its
// organizational domain.
var auths = map[string]auth{
	"none": {"no authentication results", nil, func(from, org string) (string, []string) {
		return "bounce@" + esp, nil
	}},
	"dkim-exact": {"a DKIM pass for the From domain", nil, func(from, org string) (string, []string) {
		return "bounce@" + esp, []string{trusted("dkim=pass header.d=%s header.s=s1", from)}
	}},
	"dkim-child": {"a DKIM pass for a subdomain of the From domain", []string{"dkim-child"}, func(from, org string) (string, []string) {
		return "bounce@" + esp, []string{trusted("dkim=pass header.d=mail.%s header.s=s1", from)}
	}},
	"dkim-parent": {"a DKIM pass for the organizational domain", []string{"dkim-parent"}, func(from, org string) (string, []string) {
		return "bounce@" + esp, []string{trusted("dkim=pass header.d=%s header.s=s1", org)}
	}},
	"dkim-unaligned": {"a DKIM pass for an unrelated domain", nil, func(from, org string) (string, []string) {
		return "bounce@" + esp, []string{trusted("dkim=pass header.d=%s header.s=s1", esp)}
	}},
	"dkim-fail": {"a DKIM fail for the From domain", nil, func(from, org string) (string, []string) {
		return "bounce@" + esp, []string{trusted("dkim=fail header.d=%s header.s=s1", from)}
	}},
	"dkim-and-spf-unaligned": {"an unaligned SPF pass and a DKIM pass for the From domain", nil, func(from, org string) (string, []string) {
		return "bounce@" + esp, []string{trusted("spf=pass smtp.mailfrom=%s; dkim=pass header.d=%s header.s=s1", esp, from)}
	}},
	"spf-exact": {"an SPF pass for MAIL FROM in the From domain", nil, func(from, org string) (string, []string) {
		return "bounce@" + from, []string{trusted("spf=pass smtp.mailfrom=%s", from)}
	}},
	"spf-child": {"an SPF pass for MAIL FROM in a subdomain of the From domain", []string{"spf-child"}, func(from, org string) (string, []string) {
		return "bounce@mail." + from, []string{trusted("spf=pass smtp.mailfrom=mail.%s", from)}
	}},
	"spf-parent": {"an SPF pass for MAIL FROM in the organizational domain", nil, func(from, org string) (string, []string) {
		return "bounce@" + org, []string{trusted("spf=pass smtp.mailfrom=%s", org)}
	}},
	"spf-address": {"an SPF pass with smtp.mailfrom written as the whole address", []string{"spf-address"}, func(from, org string) (string, []string) {
		return "bounce@" + from, []string{trusted("spf=pass smtp.mailfrom=bounce@%s", from)}
	}},
	"spf-fail": {"an SPF fail for MAIL FROM in the From domain", nil, func(from, org string) (string, []string) {
		return "bounce@" + from, []string{trusted("spf=fail smtp.mailfrom=%s", from)}
	}},
	"spf-other-envelope": {"an SPF pass for the From domain while MAIL FROM is elsewhere", nil, func(from, org string) (string, []string) {
		return "bounce@" + esp, []string{trusted("spf=pass smtp.mailfrom=%s", from)}
	}},
	"spf-helo-only": {"an SPF pass for a HELO name in the From domain while MAIL FROM is elsewhere", nil, func(from, org string) (string, []string) {
		return "bounce@" + esp, []string{trusted("spf=pass smtp.helo=%s", from)}
	}},
}

func trusted(format string, args ...any) string {
	return trustedID + "; " + fmt.Sprintf(format, args...)
}

// buildCorpus generates the zone and the messages, always the same.
func buildCorpus() corpus {
	c := corpus{faults: faults}
	c.zone = append(c.zone,
		"test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300",
		esp+". 300 IN A 192.0.2.200",
		"mail."+esp+". 300 IN A 192.0.2.200",
	)
	for _, d := range domains {
		c.zone = append(c.zone, d.name+". 300 IN A 192.0.2.201")
		for _, r := range d.records {
			c.zone = append(c.zone, "_dmarc."+d.name+". 300 IN TXT "+r)
		}
		for _, s := range d.subs {
			if s != "nx" { // nx.<domain> does not exist
				c.zone = append(c.zone, s+"."+d.name+". 300 IN A 192.0.2.202")
			}
		}
	}

	add := func(m message) {
		if m.Client == "" {
			m.Client = fmt.Sprintf("192.0.2.%d", 10+len(c.messages)%200)
		}
		if m.Helo == "" {
			m.Helo = "client.test"
		}
		c.messages = append(c.messages, m)
	}
	c.zone = unique(c.zone)
	for _, d := range domains {
		for _, a := range d.auths {
			add(policyMessage(d, d.name, a))
		}
		for _, s := range d.subs {
			for _, a := range d.subAuths {
				m := policyMessage(d, s+"."+d.name, a)
				m.Features = append(m.Features, "inherited")
				if s == "nx" {
					m.Features = append(m.Features, "nxdomain-from")
				}
				add(m)
			}
		}
	}
	for _, m := range specialMessages() {
		add(m)
	}
	return c
}

// orgDomain is the organizational domain of name under suffixList.
func orgDomain(name string) string {
	labels := strings.Split(name, ".")
	n := 2
	if strings.HasSuffix(name, ".co.test") {
		n = 3
	}
	if len(labels) <= n {
		return name
	}
	return strings.Join(labels[len(labels)-n:], ".")
}

func unique(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// policyMessage is a message From alice@from, a name at or below the
// policy domain d, with the scenario a.
func policyMessage(d domain, from, a string) message {
	org := orgDomain(from)
	sc, ok := auths[a]
	if !ok {
		panic("difftest: no scenario " + a)
	}
	mailFrom, ars := sc.build(from, org)
	where := fmt.Sprintf("From %s (%s)", from, d.about)
	if from != d.name {
		where = fmt.Sprintf("From %s, below %s (%s)", from, d.name, d.about)
	}
	features := append(append([]string{"auth:" + a}, d.features...), sc.features...)
	if from == org {
		features = append(features, "from-is-org")
	}
	var hs []string
	for _, ar := range ars {
		hs = append(hs, "Authentication-Results: "+ar)
	}
	hs = append(hs, "From: Alice <alice@"+from+">")
	return message{
		Name:     fmt.Sprintf("%s with %s", where, sc.says),
		Category: d.category,
		Features: features,
		MailFrom: mailFrom,
		Headers:  headers(hs...),
	}
}

// headers builds a header from "Name: value" lines, adding the fields
// every message has (To, Subject, Date, Message-ID) after them.
func headers(lines ...string) [][2]string {
	var out [][2]string
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		out = append(out, [2]string{name, strings.TrimSpace(value)})
	}
	return append(out,
		[2]string{"To", "<postmaster@" + authservID + ">"},
		[2]string{"Subject", "differential test"},
		[2]string{"Date", "Mon, 4 May 2026 12:00:00 +0000"},
		[2]string{"Message-ID", "<difftest@" + esp + ">"},
	)
}

// specialMessages are the cases that are not one domain crossed with one
// scenario: who may be trusted, several From, odd From syntax, SPF for
// the null sender.
func specialMessages() []message {
	var ms []message
	tr := func(name string, features []string, mailFrom string, lines ...string) {
		ms = append(ms, message{Name: name, Category: "trusted and untrusted results", Features: features, MailFrom: mailFrom, Headers: headers(lines...)})
	}
	from := "From: Alice <alice@rej.test>"
	tr("a DKIM pass for rej.test from an untrusted authserv-id", nil, "bounce@"+esp,
		"Authentication-Results: evil.test; dkim=pass header.d=rej.test header.s=s1", from)
	tr("an SPF pass for rej.test from an untrusted authserv-id", nil, "bounce@rej.test",
		"Authentication-Results: evil.test; spf=pass smtp.mailfrom=rej.test", from)
	tr("a DKIM pass for rej.test under an authserv-id that only ends in the trusted one", nil, "bounce@"+esp,
		"Authentication-Results: evil."+trustedID+"; dkim=pass header.d=rej.test header.s=s1", from)
	tr("a DKIM pass for rej.test under the trusted authserv-id in capitals", []string{"trusted-id-case"}, "bounce@"+esp,
		"Authentication-Results: "+strings.ToUpper(trustedID)+"; dkim=pass header.d=rej.test header.s=s1", from)
	tr("a DKIM pass for rej.test under the trusted authserv-id with a job id", []string{"trusted-id-jobid"}, "bounce@"+esp,
		"Authentication-Results: "+trustedID+"/ABC123; dkim=pass header.d=rej.test header.s=s1", from)
	tr("a DKIM pass for rej.test forged under our own authserv-id", nil, "bounce@"+esp,
		"Authentication-Results: "+authservID+"; dkim=pass header.d=rej.test header.s=s1", from)
	tr("a DKIM pass for rej.test forged under our own authserv-id next to a dmarc=pass", []string{"forged-dmarc"}, "bounce@"+esp,
		"Authentication-Results: "+authservID+"; dkim=pass header.d=rej.test header.s=s1; dmarc=pass header.from=rej.test", from)
	tr("a forged dmarc=pass for rej.test under our own authserv-id", []string{"forged-dmarc"}, "bounce@"+esp,
		"Authentication-Results: "+authservID+"; dmarc=pass (p=reject dis=none) header.from=rej.test", from)
	tr("a trusted DKIM pass for rej.test after an untrusted DKIM fail", nil, "bounce@"+esp,
		"Authentication-Results: evil.test; dkim=fail header.d=rej.test header.s=s1",
		"Authentication-Results: "+trustedID+"; dkim=pass header.d=rej.test header.s=s1", from)
	tr("a trusted DKIM fail and a trusted DKIM pass for rej.test in two fields", nil, "bounce@"+esp,
		"Authentication-Results: "+trustedID+"; dkim=fail header.d=rej.test header.s=s1",
		"Authentication-Results: "+trustedID+"; dkim=pass header.d=rej.test header.s=s2", from)
	tr("a trusted DKIM pass for rej.test with a comment holding a semicolon", nil, "bounce@"+esp,
		"Authentication-Results: "+trustedID+"; dkim=pass (2048-bit key; unprotected) header.d=rej.test header.s=s1", from)
	tr("a trusted DKIM pass for rej.test with a version after the authserv-id", nil, "bounce@"+esp,
		"Authentication-Results: "+trustedID+" 1; dkim=pass header.d=rej.test header.s=s1", from)
	tr("a trusted DKIM pass for rej.test given only as header.i", []string{"header-i-only"}, "bounce@"+esp,
		"Authentication-Results: "+trustedID+"; dkim=pass header.i=@rej.test header.s=s1", from)
	tr("a trusted DKIM pass given only as header.i=@sub.strict.test, From sub.strict.test (adkim=s)", []string{"header-i-only"}, "bounce@"+esp,
		"Authentication-Results: "+trustedID+"; dkim=pass header.i=@sub.strict.test header.s=s1", "From: Alice <alice@sub.strict.test>")
	tr("a trusted DKIM pass for an unrelated domain and one for a subdomain of rej.test", nil, "bounce@"+esp,
		"Authentication-Results: "+trustedID+"; dkim=pass header.d="+esp+" header.s=s1; dkim=pass header.d=mail.rej.test header.s=s2", from)
	tr("a trusted DKIM pass for strict.test's subdomain and one for strict.test", nil, "bounce@"+esp,
		"Authentication-Results: "+trustedID+"; dkim=pass header.d=mail.strict.test header.s=s1; dkim=pass header.d=strict.test header.s=s2",
		"From: Alice <alice@strict.test>")
	tr("a trusted SPF pass for rej.test with smtp.mailfrom in capitals", nil, "bounce@rej.test",
		"Authentication-Results: "+trustedID+"; spf=pass smtp.mailfrom=REJ.TEST", from)
	tr("a trusted SPF pass for rej.test with a neutral result before it", nil, "bounce@rej.test",
		"Authentication-Results: "+trustedID+"; spf=neutral smtp.mailfrom=rej.test",
		"Authentication-Results: "+trustedID+"; spf=pass smtp.mailfrom=rej.test", from)
	tr("a trusted SPF pass for rej.test with a neutral result after it", nil, "bounce@rej.test",
		"Authentication-Results: "+trustedID+"; spf=pass smtp.mailfrom=rej.test",
		"Authentication-Results: "+trustedID+"; spf=neutral smtp.mailfrom=rej.test", from)
	tr("a trusted SPF pass for rej.test with smtp.mailfrom in angle brackets", []string{"spf-address"}, "bounce@rej.test",
		"Authentication-Results: "+trustedID+"; spf=pass smtp.mailfrom=<bounce@rej.test>", from)
	tr("a trusted DKIM pass for rej.test given as header.d and header.i", nil, "bounce@"+esp,
		"Authentication-Results: "+trustedID+"; dkim=pass header.d=rej.test header.i=@rej.test header.s=s1", from)

	rs := func(name string, features []string, mailFrom string, lines ...string) {
		ms = append(ms, message{Name: name, Category: "Received-SPF", Features: features, MailFrom: mailFrom, Headers: headers(lines...)})
	}
	rs("a Received-SPF pass for MAIL FROM in rej.test and no SPF Authentication-Results", []string{"received-spf"}, "bounce@rej.test",
		"Received-SPF: pass (mailfrom) identity=mailfrom; client-ip=192.0.2.10; helo=client.test; envelope-from=bounce@rej.test; receiver=mx.diff.test", from)
	rs("a Received-SPF pass for a MAIL FROM other than the envelope's", nil, "bounce@"+esp,
		"Received-SPF: pass (mailfrom) identity=mailfrom; client-ip=192.0.2.10; helo=client.test; envelope-from=bounce@rej.test; receiver=mx.diff.test", from)
	rs("a Received-SPF pass for the HELO identity", nil, "bounce@rej.test",
		"Received-SPF: pass (helo) identity=helo; client-ip=192.0.2.10; helo=rej.test; envelope-from=bounce@rej.test; receiver=mx.diff.test", from)
	rs("a Received-SPF fail for rej.test next to a trusted DKIM pass for rej.test", nil, "bounce@rej.test",
		"Received-SPF: fail (mailfrom) identity=mailfrom; client-ip=192.0.2.10; helo=client.test; envelope-from=bounce@rej.test; receiver=mx.diff.test",
		"Authentication-Results: "+trustedID+"; dkim=pass header.d=rej.test header.s=s1", from)

	null := func(name string, features []string, helo string, lines ...string) {
		ms = append(ms, message{Name: name, Category: "null sender", Features: features, Helo: helo, Headers: headers(lines...)})
	}
	null("a bounce (null MAIL FROM) with an SPF pass for a HELO name below rej.test", []string{"helo-null-sender"}, "mail.rej.test",
		"Authentication-Results: "+trustedID+"; spf=pass smtp.helo=mail.rej.test", from)
	null("a bounce with an SPF pass for postmaster at the HELO name below rej.test", []string{"helo-null-sender"}, "mail.rej.test",
		"Authentication-Results: "+trustedID+"; spf=pass smtp.mailfrom=postmaster@mail.rej.test", from)
	null("a bounce with an SPF pass for a HELO name that is not the one given", nil, "client.test",
		"Authentication-Results: "+trustedID+"; spf=pass smtp.helo=mail.rej.test", from)
	null("a bounce with an aligned DKIM pass", nil, "client.test",
		"Authentication-Results: "+trustedID+"; dkim=pass header.d=rej.test header.s=s1", from)
	null("a bounce with no authentication results", nil, "client.test", from)

	fr := func(name string, features []string, mailFrom string, lines ...string) {
		ms = append(ms, message{Name: name, Category: "From", Features: features, MailFrom: mailFrom, Headers: headers(lines...)})
	}
	dkimRej := "Authentication-Results: " + trustedID + "; dkim=pass header.d=rej.test header.s=s1"
	dkimNone := "Authentication-Results: " + trustedID + "; dkim=pass header.d=none.test header.s=s1"
	fr("two addresses in rej.test in one From field", nil, "bounce@"+esp, "From: alice@rej.test, bob@rej.test")
	fr("two addresses in rej.test in one From field with a DKIM pass for rej.test", nil, "bounce@"+esp, dkimRej, "From: alice@rej.test, bob@rej.test")
	fr("addresses in none.test and rej.test in one From field", []string{"multi-from-domains"}, "bounce@"+esp, "From: alice@none.test, bob@rej.test")
	fr("addresses in rej.test and none.test in one From field", []string{"multi-from-domains"}, "bounce@"+esp, "From: alice@rej.test, bob@none.test")
	fr("addresses in none.test and rej.test in one From field with a DKIM pass for rej.test", []string{"multi-from-domains"}, "bounce@"+esp, dkimRej, "From: alice@none.test, bob@rej.test")
	fr("addresses in none.test and quar.test in one From field", []string{"multi-from-domains"}, "bounce@"+esp, "From: alice@none.test, bob@quar.test")
	fr("a From field in none.test and another in rej.test", []string{"multi-from-fields"}, "bounce@"+esp, "From: alice@none.test", "From: bob@rej.test")
	fr("a From field in rej.test and another in none.test", []string{"multi-from-fields"}, "bounce@"+esp, "From: alice@rej.test", "From: bob@none.test")
	fr("a From field in none.test and another in rej.test with a DKIM pass for none.test", []string{"multi-from-fields"}, "bounce@"+esp, dkimNone, "From: alice@none.test", "From: bob@rej.test")
	fr("two From fields in rej.test", nil, "bounce@"+esp, "From: alice@rej.test", "From: bob@rej.test")
	fr("no From field", []string{"missing-from"}, "bounce@"+esp)
	fr("no From field and a DKIM pass for rej.test", []string{"missing-from"}, "bounce@"+esp, dkimRej)
	fr("a From field with no address in it", []string{"unusable-from"}, "bounce@"+esp, "From: undisclosed-recipients:;")
	fr("a From field with an address without a domain", []string{"unusable-from"}, "bounce@"+esp, "From: alice")
	fr("a From field in rej.test with a quoted display name holding a comma", nil, "bounce@"+esp, `From: "Doe, Alice" <alice@rej.test>`)
	fr("a From field in rej.test with a comment", nil, "bounce@"+esp, "From: alice@rej.test (Alice Doe)")
	fr("a From field in rej.test in capitals", nil, "bounce@"+esp, "From: Alice <ALICE@REJ.TEST>")
	fr("a From field in rej.test in capitals with a DKIM pass for rej.test", nil, "bounce@"+esp, dkimRej, "From: Alice <ALICE@REJ.TEST>")
	fr("a From field in rej.test with an encoded display name", nil, "bounce@"+esp, "From: =?utf-8?q?Al=C3=AFce?= <alice@rej.test>")
	fr("a From field in rej.test folded over two lines", nil, "bounce@"+esp, "From: Alice\r\n <alice@rej.test>")
	fr("a From field in the public suffix co.test", nil, "bounce@"+esp, "From: alice@co.test")
	fr("a From field in rej.test with a display name holding an address in none.test", []string{"display-name-address"}, "bounce@"+esp, `From: "bob@none.test" <alice@rej.test>`)

	// The connection: IPv6 clients, and a second message on one milter
	// connection, which must be judged on its own (no client, HELO or
	// result of the first lost, none of the first's results kept).
	cn := func(name, client string, before *message, mailFrom string, lines ...string) {
		ms = append(ms, message{Name: name, Category: "connection", Client: client, Before: before, MailFrom: mailFrom, Headers: headers(lines...)})
	}
	passing := &message{MailFrom: "bounce@" + esp, Headers: headers(dkimRej, from)}
	failing := &message{MailFrom: "bounce@" + esp, Headers: headers(from)}
	cn("a p=reject failure from an IPv6 client", "2001:db8::25", nil, "bounce@"+esp, from)
	cn("a trusted DKIM pass for rej.test from an IPv6 client", "2001:db8::25", nil, "bounce@"+esp, dkimRej, from)
	cn("a p=quarantine failure from an IPv6 client", "2001:db8:1::7", nil, "bounce@"+esp, "From: alice@quar.test")
	cn("a p=reject failure after a passing message on one connection", "", passing, "bounce@"+esp, from)
	cn("a passing message after a rejected one on one connection", "", failing, "bounce@"+esp, dkimRej, from)
	cn("a p=none failure after a passing p=reject message on one connection", "", passing, "bounce@"+esp, "From: alice@none.test")
	cn("a p=reject failure after a passing message on one connection from an IPv6 client", "2001:db8::25", passing, "bounce@"+esp, from)

	// A second configuration, with RejectMultiValueFrom and
	// RequiredHeaders on. These messages carry exactly the fields given:
	// base is the usual set, one of each.
	st := func(name string, features []string, fields ...string) {
		var hs [][2]string
		for _, l := range fields {
			n, v, _ := strings.Cut(l, ":")
			hs = append(hs, [2]string{n, strings.TrimSpace(v)})
		}
		ms = append(ms, message{Name: name + " (RejectMultiValueFrom, RequiredHeaders)", Category: "strict configuration", Config: "strict",
			Features: features, MailFrom: "bounce@" + esp, Headers: hs})
	}
	date, to, subj, mid := "Date: Fri, 27 Nov 2026 10:00:00 +0000", "To: <postmaster@"+authservID+">", "Subject: differential test", "Message-ID: <strict@"+esp+">"
	base := []string{date, to, subj, mid}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	st("a passing message with one of each field", nil, with(dkimRej, from)...)
	st("a p=reject failure with one of each field", nil, with(from)...)
	st("a passing message without a Date field", nil, to, subj, mid, dkimRej, from)
	st("a passing message with only From and Date", nil, date, dkimRej, from)
	st("a passing message with two Date fields", nil, with(date, dkimRej, from)...)
	st("no From field", []string{"missing-from"}, with(dkimRej)...)
	st("two From fields in rej.test", nil, with(dkimRej, "From: alice@rej.test", "From: bob@rej.test")...)
	st("a From field in none.test and another in rej.test", []string{"multi-from-fields"}, with("From: alice@none.test", "From: bob@rej.test")...)
	st("addresses in none.test and rej.test in one From field", []string{"multi-from-domains"}, with("From: alice@none.test, bob@rej.test")...)
	st("addresses in none.test and rej.test in one From field with a DKIM pass for rej.test", []string{"multi-from-domains"}, with(dkimRej, "From: alice@none.test, bob@rej.test")...)
	st("two addresses in rej.test in one From field", nil, with(dkimRej, "From: alice@rej.test, bob@rej.test")...)
	for _, f := range []string{"Subject: two", "Message-ID: <2@x.test>", "To: b@x.test"} { // base has one
		name, _, _ := strings.Cut(f, ":")
		st("a passing message with two "+name+" fields", nil, with(dkimRej, from, f)...)
	}
	for _, f := range []string{"Reply-To: a@x.test", "Cc: a@x.test", "Bcc: a@x.test", "In-Reply-To: <0@x.test>", "References: <0@x.test>"} {
		name, _, _ := strings.Cut(f, ":")
		st("a passing message with one "+name+" field", nil, with(dkimRej, from, f)...)
		st("a passing message with two "+name+" fields", nil, with(dkimRej, from, f, f)...)
	}
	st("a passing message with one Sender field", nil, with(dkimRej, from, "Sender: a@x.test")...)
	st("a passing message with two Sender fields", []string{"two-sender"}, with(dkimRej, from, "Sender: a@x.test", "Sender: b@x.test")...)
	return ms
}
