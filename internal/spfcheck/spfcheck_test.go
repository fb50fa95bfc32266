package spfcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/dnstest"
)

// The zones of the tests hold an SOA each, so that negative answers are
// cached the way real ones are.
const (
	soaCom = `example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300`
	soaNet = `example.net. 3600 IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300`
	soaOrg = `example.org. 3600 IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300`
)

// newChecker returns a Checker asking a fresh cache in front of a test
// server loaded with zone, and the server.
func newChecker(t testing.TB, zone ...string) (*Checker, *dnstest.Server) {
	t.Helper()
	s := dnstest.Start(t, append([]string{soaCom, soaNet, soaOrg}, zone...)...)
	r, err := dnscache.New(dnscache.Config{
		Nameservers: []string{s.Addr()},
		Timeout:     time.Second, // long enough for a loaded machine running -race
		Attempts:    1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Checker{Resolver: r, Trace: t.Logf}, s
}

// chain returns the records of n SPF records, each at name+"N.example.net"
// for N from 1 to n, each sending on to the next with term (include: or
// redirect=), the last one ending with last.
func chain(name, term string, n int, last string) []string {
	var rrs []string
	for i := 1; i <= n; i++ {
		next := fmt.Sprintf("%s %s%s%d.example.net -all", "v=spf1", term, name, i+1)
		if term == "redirect=" {
			next = fmt.Sprintf("v=spf1 redirect=%s%d.example.net", name, i+1)
		}
		if i == n {
			next = last
		}
		rrs = append(rrs, dnstest.TXT(fmt.Sprintf("%s%d.example.net.", name, i), next))
	}
	return rrs
}

// terms returns n terms made by format with the numbers 1 to n.
func terms(format string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, " "+format, i)
	}
	return b.String()
}

// records returns the records made by format with the numbers 1 to n.
func records(format string, n int) []string {
	var rrs []string
	for i := 1; i <= n; i++ {
		rrs = append(rrs, fmt.Sprintf(format, i))
	}
	return rrs
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		skip     string // why the test cannot pass yet
		zone     []string
		setup    func(*dnstest.Server)
		ip       string
		helo     string // mail.example.org when empty
		mailFrom string
		want     dmarc.AuthResult
		scope    dmarc.SPFScope
		domain   string // example.com when empty
		err      error  // what the library's error must wrap, if not nil
		why      string // what the explanation must contain
	}{
		// ip4 and ip6.
		{
			name:     "ip4 with a CIDR length passes an address inside the network",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.0/24 -all")},
			ip:       "192.0.2.77",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
			err:      spf.ErrMatchedIP,
			why:      "domain of alice@example.com designates 192.0.2.77 as permitted sender (ip4/ip6)",
		},
		{
			name:     "ip4 with a CIDR length fails an address outside the network",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.0/24 -all")},
			ip:       "192.0.3.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthFail,
			err:      spf.ErrMatchedAll,
			why:      "domain of alice@example.com does not designate 192.0.3.1 as permitted sender (all)",
		},
		{
			name:     "ip4 without a CIDR length matches that address only",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 -all")},
			ip:       "192.0.2.2",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthFail,
		},
		{
			name:     "ip6 with a CIDR length passes an address inside the network",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip6:2001:db8:1::/48 -all")},
			ip:       "2001:db8:1:2::25",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
			err:      spf.ErrMatchedIP,
		},
		{
			name:     "ip6 with a CIDR length fails an address outside the network",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip6:2001:db8:1::/48 -all")},
			ip:       "2001:db8:2::25",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthFail,
		},
		{
			name:     "an IPv4-mapped IPv6 client is checked as IPv4",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.0/24 -all")},
			ip:       "::ffff:192.0.2.77",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
			why:      "designates 192.0.2.77 as",
		},
		{
			name:     "ip4 never matches an IPv6 client",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:0.0.0.0/0 ~all")},
			ip:       "2001:db8::1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthSoftFail,
		},
		{
			name:     "ip6 never matches an IPv4 client",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip6:::/0 ~all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthSoftFail,
		},

		// a and mx.
		{
			name: "a without a domain checks the addresses of the domain itself",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 a -all"),
				`example.com. 300 IN A 192.0.2.10`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
			err:      spf.ErrMatchedA,
		},
		{
			name: "a with a domain and an IPv4 CIDR length matches the network around its address",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 a:mail.example.net/24 -all"),
				`mail.example.net. 300 IN A 198.51.100.1`,
			},
			ip:       "198.51.100.200",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "a with an IPv6 CIDR length matches an IPv6 client in the network",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 a/32//64 -all"),
				`example.com. 300 IN AAAA 2001:db8:5::1`,
			},
			ip:       "2001:db8:5::99",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "a with an IPv6 CIDR length does not stretch the IPv4 match",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 a//64 -all"),
				`example.com. 300 IN A 192.0.2.10`,
			},
			ip:       "192.0.2.11",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthFail,
		},
		{
			name: "mx passes a client that is one of the exchangers",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 mx -all"),
				`example.com. 300 IN MX 10 mx1.example.com.`,
				`example.com. 300 IN MX 20 mx2.example.net.`,
				`mx1.example.com. 300 IN A 192.0.2.25`,
				`mx2.example.net. 300 IN A 198.51.100.25`,
			},
			ip:       "198.51.100.25",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
			err:      spf.ErrMatchedMX,
		},
		{
			name: "mx with a domain and a CIDR length",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 mx:example.net/28 -all"),
				`example.net. 300 IN MX 10 mx.example.net.`,
				`mx.example.net. 300 IN A 198.51.100.17`,
			},
			ip:       "198.51.100.30",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "mx skips an exchanger whose name does not exist",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 mx -all"),
				`example.com. 300 IN MX 10 gone.example.com.`,
				`example.com. 300 IN MX 20 mx.example.com.`,
				`mx.example.com. 300 IN A 192.0.2.25`,
			},
			ip:       "192.0.2.25",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "mx with exactly 10 MX records is evaluated",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1 mx -all")},
				append(records("example.com. 300 IN MX %[1]d mx%[1]d.example.com.", 10),
					records("mx%[1]d.example.com. 300 IN A 192.0.2.%[1]d", 10)...)...),
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "mx with 11 MX records is a permerror",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1 mx -all")},
				append(records("example.com. 300 IN MX %[1]d mx%[1]d.example.com.", 11),
					records("mx%[1]d.example.com. 300 IN A 192.0.2.%[1]d", 11)...)...),
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrTooManyMXRecords,
			why:      "more than 10 MX records",
		},

		// ptr.
		{
			name: "ptr passes a client whose validated name is in the domain",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 ptr -all"),
				`10.2.0.192.in-addr.arpa. 300 IN PTR mail.example.com.`,
				`mail.example.com. 300 IN A 192.0.2.10`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
			err:      spf.ErrMatchedPTR,
		},
		{
			name: "ptr fails a client whose name does not resolve back to it",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 ptr -all"),
				`10.2.0.192.in-addr.arpa. 300 IN PTR forged.example.com.`,
				`forged.example.com. 300 IN A 192.0.2.99`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthFail,
		},
		{
			name: "ptr with a domain matches names below it, on a label boundary",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 ptr:example.net -all"),
				`10.2.0.192.in-addr.arpa. 300 IN PTR out.notexample.net.`,
				`10.2.0.192.in-addr.arpa. 300 IN PTR out.relay.example.net.`,
				`out.notexample.net. 300 IN A 192.0.2.10`,
				`out.relay.example.net. 300 IN A 192.0.2.10`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "ptr works for an IPv6 client",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 ptr -all"),
				reverse("2001:db8::25") + ` 300 IN PTR mail.example.com.`,
				`mail.example.com. 300 IN AAAA 2001:db8::25`,
			},
			ip:       "2001:db8::25",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "ptr whose reverse lookup fails does not match rather than give temperror",
			zone: []string{dnstest.TXT("example.com.", "v=spf1 ptr ?all")},
			setup: func(s *dnstest.Server) {
				s.Fail("10.2.0.192.in-addr.arpa.", dns.RcodeServerFailure)
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNeutral,
		},

		// exists and macros.
		{
			name: "exists with %{i} looks up the client's IPv4 address",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{i}.ip.example.com -all"),
				`192.0.2.10.ip.example.com. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
			err:      spf.ErrMatchedExists,
		},
		{
			name: "exists with %{ir} and %{v} builds the reverse name",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{ir}.%{v}._spf.example.com -all"),
				`10.2.0.192.in-addr._spf.example.com. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "exists with %{i} writes an IPv6 client in dotted nibbles",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{i}.ip.example.com -all"),
				nibbles("2001:db8::25") + `.ip.example.com. 300 IN A 127.0.0.2`,
			},
			ip:       "2001:db8::25",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "exists asks for A records even for an IPv6 client",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:only-aaaa.example.com -all"),
				`only-aaaa.example.com. 300 IN AAAA 2001:db8::1`,
			},
			ip:       "2001:db8::25",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthFail,
		},
		{
			name: "exists with %{s} uses the whole sender",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{s}.s.example.com -all"),
				`alice\@example.com.s.example.com. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "exists with %{l} uses the local-part",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{l}.l.example.com -all"),
				`alice.l.example.com. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "exists with %{l1r-} splits on hyphens, reverses and keeps one part",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{l1r-}.lr.example.com -all"),
				`strong.lr.example.com. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			mailFrom: "strong-bad@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "exists with %{d} in an included record is the included domain and %{o} the sender's",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 include:inc.example.net -all"),
				dnstest.TXT("inc.example.net.", "v=spf1 exists:%{d}.%{o}.do.example.org -all"),
				`inc.example.net.example.com.do.example.org. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "exists with %{d2} keeps the two rightmost labels",
			zone: []string{
				dnstest.TXT("mail.sub.example.com.", "v=spf1 exists:%{d2}.d2.example.org -all"),
				`example.com.d2.example.org. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			mailFrom: "alice@mail.sub.example.com",
			want:     dmarc.AuthPass,
			domain:   "mail.sub.example.com",
		},
		{
			name: "exists with %{h} uses the HELO name",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{h}.h.example.com -all"),
				`out.client.example.net.h.example.com. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			helo:     "out.client.example.net",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "an expanded name over 253 octets loses labels on its left",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.t.example.com -all"),
				`a123456789a123456789a123456789a123456789a123456789a123456789.a123456789a123456789a123456789a123456789a123456789a123456789.a123456789a123456789a123456789a123456789a123456789a123456789.t.example.com. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.10",
			mailFrom: strings.Repeat("a123456789", 6) + "@example.com",
			want:     dmarc.AuthPass,
		},

		// all and the default.
		{
			name:     "-all fails",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthFail,
		},
		{
			name:     "~all soft-fails",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ~all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthSoftFail,
			why:      "domain of transitioning alice@example.com does not designate",
		},
		{
			name:     "?all is neutral",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ?all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNeutral,
			why:      "192.0.2.1 is neither permitted nor denied by domain of alice@example.com (all)",
		},
		{
			name:     "+all passes",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 +all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name:     "all without a qualifier passes",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name:     "a record where nothing matches is neutral",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:198.51.100.1")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNeutral,
			why:      "(no mechanism matched)",
		},
		{
			name:     "an empty record is neutral",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNeutral,
		},

		// Finding the record.
		{
			name:     "a domain with TXT records but no SPF record is none",
			zone:     []string{`example.com. 300 IN TXT "google-site-verification=abc"`},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNone,
			why:      "domain of alice@example.com does not publish SPF",
		},
		{
			name:     "a domain without TXT records is none",
			zone:     []string{`example.com. 300 IN A 192.0.2.1`},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNone,
		},
		{
			name:     "a domain that does not exist is none",
			ip:       "192.0.2.1",
			mailFrom: "alice@nowhere.example.com",
			want:     dmarc.AuthNone,
			domain:   "nowhere.example.com",
		},
		{
			name:     "v=spf10 is not an SPF record",
			zone:     []string{dnstest.TXT("example.com.", "v=spf10 +all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNone,
		},
		{
			name: "the SPF record is found among other TXT records",
			zone: []string{
				`example.com. 300 IN TXT "v=DMARC1; p=none"`,
				dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 -all"),
				`example.com. 300 IN TXT "v=spf2.0/pra +all"`,
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "two SPF records are a permerror",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 -all"),
				dnstest.TXT("example.com.", "v=spf1 -all"),
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrMultipleRecords,
			why:      "unusable SPF policy for alice@example.com: several SPF records",
		},
		{
			name:     "a record split into several character-strings is joined without spaces",
			zone:     []string{`example.com. 300 IN TXT "v=spf1 ip4:192.0" ".2.1 -all"`},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},

		// Syntax errors.
		{
			name:     "an unknown mechanism is a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 foo -all")},
			ip:       "198.51.100.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			why:      `syntax error: SPF record at example.com: term "foo": unknown mechanism "foo"`,
		},
		{
			name:     "a syntax error after the matching mechanism is still a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 foo -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name:     "an IPv6 address in ip4 is a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 ip4:2001:db8::1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name:     "a CIDR length out of range is a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.0/33 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name:     "an unknown macro letter is a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 exists:%{z}.example.com -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name:     "a domain ending in a numeric label is a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 a:192.0.2.2 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name:     "two redirect modifiers are a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 redirect=a.example.net redirect=b.example.net")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name:     "two exp modifiers are a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 -all exp=a.example.net exp=b.example.net")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name:     "a qualifier on a modifier is a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 -redirect=example.net")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name:     "an unknown modifier is ignored",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 moo.cow-far_out=man:dog/cat ip4:192.0.2.1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "a syntax error in an included record is a permerror",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 include:inc.example.net ip4:192.0.2.1 -all"),
				dnstest.TXT("inc.example.net.", "v=spf1 ip4:192.0.2.1 ip4:300.0.0.1 -all"),
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			why:      "SPF record at inc.example.net",
		},

		// include and redirect.
		{
			name: "include passes when the included record passes",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 include:_spf.example.net -all"),
				dnstest.TXT("_spf.example.net.", "v=spf1 ip4:198.51.100.0/24 -all"),
			},
			ip:       "198.51.100.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "include that fails does not match and evaluation goes on",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 include:_spf.example.net ?all"),
				dnstest.TXT("_spf.example.net.", "v=spf1 ip4:198.51.100.0/24 -all"),
			},
			ip:       "192.0.2.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNeutral,
		},
		{
			name: "include's qualifier applies to an included pass",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 -include:_spf.example.net +all"),
				dnstest.TXT("_spf.example.net.", "v=spf1 ip4:198.51.100.0/24 -all"),
			},
			ip:       "198.51.100.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthFail,
		},
		{
			name: "include of a domain without an SPF record is a permerror",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 include:_spf.example.net -all"),
				`_spf.example.net. 300 IN TXT "something else"`,
			},
			ip:       "192.0.2.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			why:      "an include or redirect target publishes no SPF record",
		},
		{
			name:     "include of a domain that does not exist is a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 include:gone.example.net -all")},
			ip:       "192.0.2.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name: "redirect hands over to the target's record",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 redirect=_spf.example.net"),
				dnstest.TXT("_spf.example.net.", "v=spf1 ip4:198.51.100.0/24 ~all"),
			},
			ip:       "192.0.2.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthSoftFail,
		},
		{
			name: "redirect is used only when no mechanism matched",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 redirect=_spf.example.net ip4:192.0.2.9"),
				dnstest.TXT("_spf.example.net.", "v=spf1 -all"),
			},
			ip:       "192.0.2.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "redirect is ignored when the record has all",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 ?all redirect=_spf.example.net"),
				dnstest.TXT("_spf.example.net.", "v=spf1 -all"),
			},
			ip:       "192.0.2.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthNeutral,
		},
		{
			name: "redirect to a domain without an SPF record is a permerror",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 redirect=_spf.example.net"),
				`_spf.example.net. 300 IN A 192.0.2.1`,
			},
			ip:       "192.0.2.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
		},
		{
			name: "after a redirect %{d} is the target domain",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 redirect=_spf.example.net"),
				dnstest.TXT("_spf.example.net.", "v=spf1 exists:%{d}.d.example.org -all"),
				`_spf.example.net.d.example.org. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.9",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},

		// The DNS lookup limit (RFC 7208 §4.6.4).
		{
			name: "exactly 10 includes are within the lookup limit",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1"+terms("include:i%d.example.net", 10)+" -all")},
				records(`i%[1]d.example.net. 300 IN TXT "v=spf1 ip4:198.51.100.%[1]d -all"`, 10)...),
			ip:       "198.51.100.10",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "11 includes exceed the lookup limit",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1"+terms("include:i%d.example.net", 11)+" -all")},
				records(`i%[1]d.example.net. 300 IN TXT "v=spf1 ip4:198.51.100.%[1]d -all"`, 11)...),
			ip:       "198.51.100.11",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrLookupLimitReached,
			why:      "more than 10 DNS-querying terms",
		},
		{
			name: "a match before the 11th lookup passes",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1"+terms("include:i%d.example.net", 11)+" -all")},
				records(`i%[1]d.example.net. 300 IN TXT "v=spf1 ip4:198.51.100.%[1]d -all"`, 11)...),
			ip:       "198.51.100.3",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "lookups in included records count: a chain of 10 includes is within the limit",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1 include:n1.example.net -all")},
				chain("n", "include:", 10, "v=spf1 ip4:198.51.100.1 -all")...),
			ip:       "198.51.100.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "lookups in included records count: a chain of 11 includes exceeds the limit",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1 include:n1.example.net -all")},
				chain("n", "include:", 11, "v=spf1 ip4:198.51.100.1 -all")...),
			ip:       "198.51.100.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrLookupLimitReached,
		},
		{
			name: "a chain of 10 redirects is within the limit",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1 redirect=r1.example.net")},
				chain("r", "redirect=", 10, "v=spf1 ip4:198.51.100.1 -all")...),
			ip:       "198.51.100.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name: "a chain of 11 redirects exceeds the limit",
			zone: append([]string{dnstest.TXT("example.com.", "v=spf1 redirect=r1.example.net")},
				chain("r", "redirect=", 11, "v=spf1 ip4:198.51.100.1 -all")...),
			ip:       "198.51.100.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrLookupLimitReached,
		},
		{
			name: "a, mx, ptr and exists count against the limit too",
			zone: append([]string{
				dnstest.TXT("example.com.", "v=spf1 a mx ptr exists:nx.example.com"+terms("a:h%d.example.com", 7)+" ip4:192.0.2.200 -all"),
				`example.com. 300 IN A 192.0.2.1`,
				`example.com. 300 IN MX 10 example.com.`,
				`200.2.0.192.in-addr.arpa. 300 IN PTR x.example.org.`,
			}, records("h%[1]d.example.com. 300 IN A 192.0.2.%[1]d", 7)...),
			ip:       "192.0.2.200",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrLookupLimitReached,
		},
		{
			name:     "ip4, ip6 and all do not count against the limit",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1"+terms("ip4:198.51.100.%d", 12)+terms("ip6:2001:db8::%d", 12)+" ip4:192.0.2.1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},

		// The void lookup limit (RFC 7208 §4.6.4).
		{
			name:     "two void lookups are allowed",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 a:nx1.example.com a:nx2.example.com ip4:192.0.2.1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name:     "three void lookups are a permerror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 a:nx1.example.com a:nx2.example.com a:nx3.example.com ip4:192.0.2.1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrVoidLookupLimitReached,
			why:      "more than 2 DNS lookups with no answer",
		},
		{
			name: "names without records count as void lookups like names that do not exist",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 mx:empty.example.com exists:nx.example.com a:only-txt.example.com ip4:192.0.2.1 -all"),
				`empty.example.com. 300 IN A 192.0.2.50`,
				`only-txt.example.com. 300 IN TXT "hello"`,
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrVoidLookupLimitReached,
		},
		{
			name: "for an IPv4 client a name with only AAAA records is a void lookup",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 a:v6.example.com a:nx1.example.com a:nx2.example.com ip4:192.0.2.1 -all"),
				`v6.example.com. 300 IN AAAA 2001:db8::1`,
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPermError,
			err:      spf.ErrVoidLookupLimitReached,
		},

		// DNS failures.
		{
			name:     "SERVFAIL on the SPF record is a temperror, not none",
			setup:    func(s *dnstest.Server) { s.Fail("example.com.", dns.RcodeServerFailure) },
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthTempError,
			why:      "temporary error checking SPF for alice@example.com: lookup example.com",
		},
		{
			name:     "REFUSED on the SPF record is a temperror",
			setup:    func(s *dnstest.Server) { s.Fail("example.com.", dns.RcodeRefused) },
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthTempError,
		},
		{
			name:     "a timeout on the SPF record is a temperror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 -all")},
			setup:    func(s *dnstest.Server) { s.Drop("example.com.") },
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthTempError,
		},
		{
			name:     "SERVFAIL on an included record is a temperror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 include:_spf.example.net -all")},
			setup:    func(s *dnstest.Server) { s.Fail("_spf.example.net.", dns.RcodeServerFailure) },
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthTempError,
		},
		{
			name:     "SERVFAIL on the target of a is a temperror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 a:broken.example.net -all")},
			setup:    func(s *dnstest.Server) { s.Fail("broken.example.net.", dns.RcodeServerFailure) },
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthTempError,
		},
		{
			name: "a timeout on the address of an exchanger is a temperror",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 mx -all"),
				`example.com. 300 IN MX 10 mx.example.net.`,
			},
			setup:    func(s *dnstest.Server) { s.Drop("mx.example.net.") },
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthTempError,
		},
		{
			name:     "SERVFAIL on the name of exists is a temperror",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 exists:%{i}.bl.example.net -all")},
			setup:    func(s *dnstest.Server) { s.Fail("192.0.2.1.bl.example.net.", dns.RcodeServerFailure) },
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthTempError,
		},
		{
			name: "a failing lookup after a match does not matter",
			zone: []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 a:broken.example.net -all")},
			setup: func(s *dnstest.Server) {
				s.Fail("broken.example.net.", dns.RcodeServerFailure)
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},

		// The identity.
		{
			name:     "a null MAIL FROM checks postmaster at the HELO name, in the helo scope",
			zone:     []string{dnstest.TXT("mail.example.org.", "v=spf1 exists:%{l}.%{o}.pm.example.com -all"), `postmaster.mail.example.org.pm.example.com. 300 IN A 127.0.0.2`},
			ip:       "192.0.2.1",
			mailFrom: "",
			want:     dmarc.AuthPass,
			scope:    dmarc.ScopeHelo,
			domain:   "mail.example.org",
			why:      "domain of postmaster@mail.example.org designates",
		},
		{
			name:     "<> is a null MAIL FROM",
			zone:     []string{dnstest.TXT("mail.example.org.", "v=spf1 ip4:192.0.2.1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "<>",
			want:     dmarc.AuthPass,
			scope:    dmarc.ScopeHelo,
			domain:   "mail.example.org",
		},
		{
			name:     "a null MAIL FROM with a HELO address literal is none",
			ip:       "192.0.2.1",
			helo:     "[192.0.2.1]",
			mailFrom: "",
			want:     dmarc.AuthNone,
			scope:    dmarc.ScopeHelo,
			domain:   "[192.0.2.1]",
			why:      `HELO name "[192.0.2.1]" is an address literal: no SPF check`,
		},
		{
			name:   "a null MAIL FROM with a bare IP address as HELO is none",
			ip:     "192.0.2.1",
			helo:   "192.0.2.1",
			want:   dmarc.AuthNone,
			scope:  dmarc.ScopeHelo,
			domain: "192.0.2.1",
		},
		{
			name:   "a null MAIL FROM with a single-label HELO is none",
			zone:   []string{dnstest.TXT("localhost.", "v=spf1 +all")},
			ip:     "192.0.2.1",
			helo:   "localhost",
			want:   dmarc.AuthNone,
			scope:  dmarc.ScopeHelo,
			domain: "localhost",
		},
		{
			name:     "a MAIL FROM with a domain literal is none",
			ip:       "192.0.2.1",
			mailFrom: "alice@[192.0.2.1]",
			want:     dmarc.AuthNone,
			domain:   "[192.0.2.1]",
		},
		{
			name:     "a MAIL FROM without a domain is none",
			ip:       "192.0.2.1",
			mailFrom: "alice",
			want:     dmarc.AuthNone,
			domain:   "-",
		},
		{
			name:     "a MAIL FROM with an empty label is none",
			ip:       "192.0.2.1",
			mailFrom: "alice@a..example.com",
			want:     dmarc.AuthNone,
			domain:   "a..example.com",
		},
		{
			name:     "a MAIL FROM with a label of 64 octets is none",
			ip:       "192.0.2.1",
			mailFrom: "alice@" + strings.Repeat("a", 64) + ".example.com",
			want:     dmarc.AuthNone,
			domain:   strings.Repeat("a", 64) + ".example.com",
		},
		{
			name:     "a MAIL FROM with an empty local-part uses postmaster",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 exists:%{l}.pm.example.com -all"), `postmaster.pm.example.com. 300 IN A 127.0.0.2`},
			ip:       "192.0.2.1",
			mailFrom: "@example.com",
			want:     dmarc.AuthPass,
		},
		{
			name:     "the MAIL FROM may come in angle brackets",
			zone:     []string{dnstest.TXT("example.com.", "v=spf1 ip4:192.0.2.1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "<alice@example.com>",
			want:     dmarc.AuthPass,
		},
		{
			name:     "an IDN MAIL FROM domain is checked as A-labels",
			zone:     []string{dnstest.TXT("xn--bcher-kva.example.", "v=spf1 ip4:192.0.2.1 -all")},
			ip:       "192.0.2.1",
			mailFrom: "alice@bücher.example",
			want:     dmarc.AuthPass,
			domain:   "xn--bcher-kva.example",
		},

		// Case.
		{
			name: "mechanisms and their domains are read case-insensitively",
			zone: []string{
				dnstest.TXT("example.com.", "V=SPF1 IP4:198.51.100.0/24 Include:_Spf.Example.Net -ALL"),
				dnstest.TXT("_spf.example.net.", "v=spf1 MX:Example.Org/24 A:Mail.Example.Com//64 -all"),
				`mail.example.com. 300 IN A 192.0.2.1`,
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
			err:      spf.ErrMatchedA,
		},
		{
			name: "modifiers are read case-insensitively",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 Redirect=_SPF.example.net"),
				dnstest.TXT("_spf.example.net.", "v=spf1 Exists:%{D}.D.example.net ~All"),
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthSoftFail,
			err:      spf.ErrMatchedAll,
		},
		{
			name: "the MAIL FROM domain is matched case-insensitively and reported in lower case",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 A -all"),
				`example.com. 300 IN A 192.0.2.1`,
			},
			ip:       "192.0.2.1",
			mailFrom: "Alice@EXAMPLE.Com",
			want:     dmarc.AuthPass,
			why:      "domain of Alice@example.com designates",
		},
		{
			name: "macros are expanded case-insensitively, upper case URL-escaping",
			zone: []string{
				dnstest.TXT("example.com.", "v=spf1 exists:%{L}.%{D}.u.example.org -all"),
				`alice.example.com.u.example.org. 300 IN A 127.0.0.2`,
			},
			ip:       "192.0.2.1",
			mailFrom: "alice@example.com",
			want:     dmarc.AuthPass,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			t.Parallel()
			c, s := newChecker(t, tc.zone...)
			if tc.setup != nil {
				tc.setup(s)
			}
			helo := tc.helo
			if helo == "" {
				helo = "mail.example.org"
			}
			domain := tc.domain
			switch domain {
			case "":
				domain = "example.com"
			case "-":
				domain = ""
			}
			v := c.check(context.Background(), netip.MustParseAddr(tc.ip), helo, tc.mailFrom)
			want := dmarc.SPF{Domain: domain, Scope: tc.scope, Result: tc.want}
			if v.spf != want {
				t.Errorf("got %+v, want %+v (error: %v; why: %s)", v.spf, want, v.err, v.why)
			}
			if tc.err != nil && !errors.Is(v.err, tc.err) {
				t.Errorf("error %v, want %v", v.err, tc.err)
			}
			if !strings.Contains(v.why, tc.why) {
				t.Errorf("explanation %q, want it to contain %q", v.why, tc.why)
			}
			if strings.ContainsAny(v.why, "\r\n") {
				t.Errorf("explanation %q is not one line", v.why)
			}
		})
	}
}

// reverse returns the PTR owner name of addr.
func reverse(addr string) string {
	name, err := dns.ReverseAddr(addr)
	if err != nil {
		panic(err)
	}
	return name
}

// nibbles returns an IPv6 address as the i macro expands it: its 32
// nibbles, dot-separated, most significant first (RFC 7208 §7.3).
func nibbles(addr string) string {
	a := netip.MustParseAddr(addr).As16()
	var parts []string
	for _, b := range a {
		parts = append(parts, fmt.Sprintf("%x.%x", b>>4, b&0xf))
	}
	return strings.Join(parts, ".")
}

func TestCheckIPv4ClientAsksOnlyForA(t *testing.T) {
	c, s := newChecker(t,
		dnstest.TXT("example.com.", "v=spf1 a mx -all"),
		`example.com. 300 IN A 192.0.2.1`,
		`example.com. 300 IN MX 10 mx.example.com.`,
		`mx.example.com. 300 IN A 192.0.2.25`,
	)
	got, _ := c.Check(context.Background(), netip.MustParseAddr("192.0.2.25"), "mail.example.org", "alice@example.com")
	if got.Result != dmarc.AuthPass {
		t.Fatalf("result %s, want pass", got.Result)
	}
	for _, name := range []string{"example.com.", "mx.example.com."} {
		if n := s.Queries(name, dns.TypeAAAA); n != 0 {
			t.Errorf("%d AAAA queries for %s, want none", n, name)
		}
	}
}

func TestCheckIPv6ClientAsksForBoth(t *testing.T) {
	c, s := newChecker(t,
		dnstest.TXT("example.com.", "v=spf1 a -all"),
		`example.com. 300 IN A 192.0.2.1`,
		`example.com. 300 IN AAAA 2001:db8::1`,
	)
	got, _ := c.Check(context.Background(), netip.MustParseAddr("2001:db8::1"), "mail.example.org", "alice@example.com")
	if got.Result != dmarc.AuthPass {
		t.Fatalf("result %s, want pass", got.Result)
	}
	if s.Queries("example.com.", dns.TypeAAAA) != 1 {
		t.Errorf("AAAA not asked for an IPv6 client")
	}
}

func TestCheckRespectsTheDeadline(t *testing.T) {
	tests := []struct {
		name    string
		ctx     time.Duration // the caller's deadline, 0 for none
		timeout time.Duration // Checker.Timeout
	}{
		{"the caller's deadline ends a slow check with temperror", 150 * time.Millisecond, 0},
		{"Checker.Timeout ends a slow check with temperror", 0, 150 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, s := newChecker(t, dnstest.TXT("example.com.", "v=spf1 a:slow.example.net -all"))
			c.Resolver, _ = dnscache.New(dnscache.Config{Nameservers: []string{s.Addr()}, Timeout: 5 * time.Second, Attempts: 1})
			c.Timeout = tc.timeout
			s.Delay("slow.example.net.", 3*time.Second)
			ctx := context.Background()
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			start := time.Now()
			v := c.check(ctx, netip.MustParseAddr("192.0.2.1"), "mail.example.org", "alice@example.com")
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("check took %v", elapsed)
			}
			if v.spf.Result != dmarc.AuthTempError {
				t.Errorf("result %s (%v), want temperror", v.spf.Result, v.err)
			}
		})
	}
}

func TestCheckAfterTheDeadlineIsTempError(t *testing.T) {
	// A ptr lookup that times out only fails to match (RFC 7208 §5.5); the
	// time limit being over still makes the result temperror (§4.6.4).
	c, s := newChecker(t, dnstest.TXT("example.com.", "v=spf1 ptr -all"))
	s.Delay("1.2.0.192.in-addr.arpa.", 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	v := c.check(ctx, netip.MustParseAddr("192.0.2.1"), "mail.example.org", "alice@example.com")
	if v.spf.Result != dmarc.AuthTempError || !errors.Is(v.err, context.DeadlineExceeded) {
		t.Errorf("got %s (%v), want temperror for the deadline", v.spf.Result, v.err)
	}
}

func TestCheckWithoutClientAddressIsNone(t *testing.T) {
	c, _ := newChecker(t, dnstest.TXT("example.com.", "v=spf1 +all"))
	got, why := c.Check(context.Background(), netip.Addr{}, "mail.example.org", "alice@example.com")
	if want := (dmarc.SPF{Domain: "example.com", Result: dmarc.AuthNone}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if why == "" {
		t.Error("no explanation")
	}
}

func TestCheckUsesTheCache(t *testing.T) {
	c, s := newChecker(t,
		dnstest.TXT("example.com.", "v=spf1 include:_spf.example.net -all"),
		dnstest.TXT("_spf.example.net.", "v=spf1 ip4:192.0.2.0/24 -all"),
	)
	for range 3 {
		got, _ := c.Check(context.Background(), netip.MustParseAddr("192.0.2.1"), "mail.example.org", "alice@example.com")
		if got.Result != dmarc.AuthPass {
			t.Fatalf("result %s, want pass", got.Result)
		}
	}
	if n := s.Queries("_spf.example.net.", dns.TypeTXT); n != 1 {
		t.Errorf("%d queries for _spf.example.net, want 1", n)
	}
}

func TestCheckIsSafeForConcurrentUse(t *testing.T) {
	c, _ := newChecker(t,
		dnstest.TXT("example.com.", "v=spf1 a mx include:_spf.example.net -all"),
		`example.com. 300 IN A 192.0.2.1`,
		`example.com. 300 IN MX 10 mx.example.com.`,
		`mx.example.com. 300 IN A 192.0.2.25`,
		dnstest.TXT("_spf.example.net.", "v=spf1 ip4:198.51.100.0/24 -all"),
	)
	ips := []string{"192.0.2.1", "192.0.2.25", "198.51.100.7", "203.0.113.1"}
	want := []dmarc.AuthResult{dmarc.AuthPass, dmarc.AuthPass, dmarc.AuthPass, dmarc.AuthFail}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 20 {
				k := (g + i) % len(ips)
				got, why := c.Check(context.Background(), netip.MustParseAddr(ips[k]), "mail.example.org", "alice@example.com")
				if got.Result != want[k] {
					t.Errorf("%s: %s (%s), want %s", ips[k], got.Result, why, want[k])
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func BenchmarkCheckCachedPass(b *testing.B) {
	c, _ := newChecker(b,
		dnstest.TXT("example.com.", "v=spf1 mx include:_spf.example.net ~all"),
		`example.com. 300 IN MX 10 mx.example.com.`,
		`mx.example.com. 300 IN A 192.0.2.25`,
		dnstest.TXT("_spf.example.net.", "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all"),
	)
	c.Trace = nil
	// The milter gives a context with its DNS budget.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	ip := netip.MustParseAddr("198.51.100.7")
	if got, why := c.Check(ctx, ip, "mail.example.org", "bounce@example.com"); got.Result != dmarc.AuthPass {
		b.Fatalf("result %s (%s), want pass", got.Result, why)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Check(ctx, ip, "mail.example.org", "bounce@example.com")
	}
}
