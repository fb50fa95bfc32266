package dnstest

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const soaCom = `example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300`

// ask sends one query to s over network ("udp" or "tcp"), with an EDNS0
// OPT record when udpSize is not 0, and fails the test if no answer comes.
func ask(t *testing.T, s *Server, network, name string, qtype uint16, udpSize uint16) *dns.Msg {
	t.Helper()
	r, err := exchange(s, network, name, qtype, udpSize, 2*time.Second)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return r
}

func exchange(s *Server, network, name string, qtype uint16, udpSize uint16, timeout time.Duration) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	if udpSize != 0 {
		m.SetEdns0(udpSize, false)
	}
	c := &dns.Client{Net: network, Timeout: timeout}
	r, _, err := c.Exchange(m, s.Addr())
	return r, err
}

// rdata returns the data of each record, without owner, TTL and type, for
// comparisons that read well.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.Header().Name+" "+strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	return out
}

func TestAnswers(t *testing.T) {
	s := Start(t,
		soaCom,
		`example.com. 300 IN A 192.0.2.1`,
		`example.com. 300 IN MX 10 mx.example.com.`,
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`,
		`deep.sub.example.com. 300 IN A 192.0.2.2`,
		`alias.example.com. 300 IN CNAME _dmarc.example.com.`,
		`loop1.example.com. 300 IN CNAME loop2.example.com.`,
		`loop2.example.com. 300 IN CNAME loop1.example.com.`,
		`dangling.example.com. 300 IN CNAME nowhere.example.com.`,
		`away.example.com. 300 IN CNAME _dmarc.example.org.`,
		`*._report._dmarc.example.com. 300 IN TXT "v=DMARC1"`,
		`example.org. 3600 IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 60`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=none"`,
	)
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		answer    []string
		authority []string // owners of the SOA in the authority section
	}{
		{
			name: "a record is answered", qname: "example.com", qtype: dns.TypeA,
			answer: []string{"example.com. 192.0.2.1"},
		},
		{
			name: "names are case-insensitive", qname: "_DMARC.Example.COM", qtype: dns.TypeTXT,
			answer: []string{`_dmarc.example.com. "v=DMARC1; p=reject"`},
		},
		{
			name: "a name without the type asked is NODATA with the SOA", qname: "example.com", qtype: dns.TypeTXT,
			authority: []string{"example.com."},
		},
		{
			name: "an empty non-terminal is NODATA", qname: "sub.example.com", qtype: dns.TypeA,
			authority: []string{"example.com."},
		},
		{
			name: "a missing name is NXDOMAIN with the SOA", qname: "nope.example.com", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, authority: []string{"example.com."},
		},
		{
			name: "a name below a missing name is NXDOMAIN", qname: "a.nope.example.com", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, authority: []string{"example.com."},
		},
		{
			name: "a name in no zone is NXDOMAIN without SOA", qname: "example.net", qtype: dns.TypeA,
			rcode: dns.RcodeNameError,
		},
		{
			name: "a CNAME in the zone is followed", qname: "alias.example.com", qtype: dns.TypeTXT,
			answer: []string{"alias.example.com. _dmarc.example.com.", `_dmarc.example.com. "v=DMARC1; p=reject"`},
		},
		{
			name: "a CNAME is answered as such when asked", qname: "alias.example.com", qtype: dns.TypeCNAME,
			answer: []string{"alias.example.com. _dmarc.example.com."},
		},
		{
			name: "a CNAME to another zone is left to the client", qname: "away.example.com", qtype: dns.TypeTXT,
			answer: []string{"away.example.com. _dmarc.example.org."},
		},
		{
			name: "a CNAME to a missing name is NXDOMAIN with the CNAME", qname: "dangling.example.com", qtype: dns.TypeA,
			rcode:  dns.RcodeNameError,
			answer: []string{"dangling.example.com. nowhere.example.com."}, authority: []string{"example.com."},
		},
		{
			name: "a wildcard answers for a missing name", qname: "example.net._report._dmarc.example.com", qtype: dns.TypeTXT,
			answer: []string{`example.net._report._dmarc.example.com. "v=DMARC1"`},
		},
		{
			name: "a wildcard does not answer below a missing name", qname: "x.y._dmarc.example.com", qtype: dns.TypeTXT,
			rcode: dns.RcodeNameError, authority: []string{"example.com."},
		},
		{
			name: "a wildcard without the type asked is NODATA", qname: "example.net._report._dmarc.example.com", qtype: dns.TypeA,
			authority: []string{"example.com."},
		},
		{
			name: "the SOA is that of the closest zone", qname: "nope.example.org", qtype: dns.TypeTXT,
			rcode: dns.RcodeNameError, authority: []string{"example.org."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask(t, s, "udp", tt.qname, tt.qtype, 1232)
			if r.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if !r.Authoritative {
				t.Errorf("AA bit not set")
			}
			if got := rdata(r.Answer); !slices.Equal(got, tt.answer) {
				t.Errorf("answer = %q, want %q", got, tt.answer)
			}
			var soas []string
			for _, rr := range r.Ns {
				if rr.Header().Rrtype == dns.TypeSOA {
					soas = append(soas, rr.Header().Name)
				}
			}
			if !slices.Equal(soas, tt.authority) {
				t.Errorf("SOA in authority = %q, want %q", soas, tt.authority)
			}
		})
	}

	t.Run("a CNAME loop ends", func(t *testing.T) {
		r := ask(t, s, "udp", "loop1.example.com", dns.TypeA, 1232)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != maxChase+1 {
			t.Errorf("got %s with %d answers, want NOERROR with %d", dns.RcodeToString[r.Rcode], len(r.Answer), maxChase+1)
		}
	})
}

func TestTXTCharacterStrings(t *testing.T) {
	long := strings.Repeat("x", 600)
	s := Start(t,
		`multi.example.com. 300 IN TXT "v=DMARC1; " "p=reject"`,
		`long.example.com. 300 IN TXT "`+long+`"`,
	)

	r := ask(t, s, "udp", "multi.example.com", dns.TypeTXT, 1232)
	if got := r.Answer[0].(*dns.TXT).Txt; !slices.Equal(got, []string{"v=DMARC1; ", "p=reject"}) {
		t.Errorf("multi-string TXT = %q", got)
	}

	r = ask(t, s, "tcp", "long.example.com", dns.TypeTXT, 0)
	got := r.Answer[0].(*dns.TXT).Txt
	if len(got) != 3 || len(got[0]) != 255 || strings.Join(got, "") != long {
		t.Errorf("long TXT arrived as %d strings of lengths %v, want 255-octet pieces of the 600 octets", len(got), lens(got))
	}
}

func TestTXTWritesARecordOfAnyLength(t *testing.T) {
	long := strings.Repeat("k", 600)
	s := Start(t, TXT("long.example.com.", long), TXT("quoted.example.com.", `a "b" \c`))

	r := ask(t, s, "tcp", "long.example.com", dns.TypeTXT, 0)
	if got := r.Answer[0].(*dns.TXT).Txt; len(got) != 3 || len(got[0]) != 255 || strings.Join(got, "") != long {
		t.Errorf("TXT of 600 octets arrived as %d strings of lengths %v, want 255-octet pieces", len(got), lens(got))
	}
	r = ask(t, s, "udp", "quoted.example.com", dns.TypeTXT, 1232)
	if got := r.Answer[0].(*dns.TXT).Txt; !slices.Equal(got, []string{`a \"b\" \\c`}) {
		t.Errorf("TXT with quotes = %q, want them escaped as miekg/dns presents them", got)
	}
}

func lens(ss []string) []int {
	var n []int
	for _, s := range ss {
		n = append(n, len(s))
	}
	return n
}

func TestUDPAnswersAreCutToTheRequestedSize(t *testing.T) {
	s := Start(t, `long.example.com. 300 IN TXT "`+strings.Repeat("x", 600)+`"`)

	if r := ask(t, s, "udp", "long.example.com", dns.TypeTXT, 0); !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("without EDNS0: TC=%v with %d answers, want TC and none", r.Truncated, len(r.Answer))
	}
	if r := ask(t, s, "udp", "long.example.com", dns.TypeTXT, 1232); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("with EDNS0 1232: TC=%v with %d answers, want the answer", r.Truncated, len(r.Answer))
	}
	if r := ask(t, s, "tcp", "long.example.com", dns.TypeTXT, 0); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("over TCP: TC=%v with %d answers, want the answer", r.Truncated, len(r.Answer))
	}
}

func TestFaults(t *testing.T) {
	s := Start(t,
		`servfail.example.com. 300 IN TXT "x"`,
		`refused.example.com. 300 IN TXT "x"`,
		`trunc.example.com. 300 IN TXT "x"`,
		`slow.example.com. 300 IN TXT "x"`,
	)
	s.Fail("servfail.example.com", dns.RcodeServerFailure)
	s.Fail("Refused.Example.Com.", dns.RcodeRefused)
	s.Truncate("trunc.example.com")
	s.Delay("slow.example.com", 100*time.Millisecond)
	s.Drop("lost.example.com")

	t.Run("Fail answers with the rcode and nothing else", func(t *testing.T) {
		for name, rcode := range map[string]int{"servfail.example.com": dns.RcodeServerFailure, "refused.example.com": dns.RcodeRefused} {
			r := ask(t, s, "udp", name, dns.TypeTXT, 1232)
			if r.Rcode != rcode || len(r.Answer) != 0 {
				t.Errorf("%s: %s with %d answers, want %s", name, dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[rcode])
			}
		}
	})
	t.Run("Truncate sets TC over UDP and answers over TCP", func(t *testing.T) {
		if r := ask(t, s, "udp", "trunc.example.com", dns.TypeTXT, 1232); !r.Truncated || len(r.Answer) != 0 {
			t.Errorf("UDP: TC=%v with %d answers, want TC and none", r.Truncated, len(r.Answer))
		}
		if r := ask(t, s, "tcp", "trunc.example.com", dns.TypeTXT, 1232); r.Truncated || len(r.Answer) != 1 {
			t.Errorf("TCP: TC=%v with %d answers, want the answer", r.Truncated, len(r.Answer))
		}
	})
	t.Run("Delay answers late", func(t *testing.T) {
		start := time.Now()
		if r := ask(t, s, "udp", "slow.example.com", dns.TypeTXT, 1232); len(r.Answer) != 1 {
			t.Errorf("got %d answers, want 1", len(r.Answer))
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("answered after %v, want at least 100ms", d)
		}
	})
	t.Run("Drop leaves the client to time out", func(t *testing.T) {
		for _, network := range []string{"udp", "tcp"} {
			_, err := exchange(s, network, "lost.example.com", dns.TypeTXT, 1232, 200*time.Millisecond)
			var nerr net.Error
			if !errors.As(err, &nerr) || !nerr.Timeout() {
				t.Errorf("%s: err = %v, want a timeout", network, err)
			}
		}
	})
	t.Run("Heal restores normal answers", func(t *testing.T) {
		s.Heal("servfail.example.com")
		if r := ask(t, s, "udp", "servfail.example.com", dns.TypeTXT, 1232); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s with %d answers, want NOERROR with 1", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	})
}

func TestSetAndRemoveChangeTheData(t *testing.T) {
	s := Start(t,
		soaCom,
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.example.com. 300 IN A 192.0.2.1`,
	)

	s.Set(`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`, `_dmarc.example.com. 300 IN TXT "second"`)
	r := ask(t, s, "udp", "_dmarc.example.com", dns.TypeTXT, 1232)
	want := []string{`_dmarc.example.com. "v=DMARC1; p=reject"`, `_dmarc.example.com. "second"`}
	if got := rdata(r.Answer); !slices.Equal(got, want) {
		t.Errorf("after Set, TXT = %q, want %q", got, want)
	}
	if r := ask(t, s, "udp", "_dmarc.example.com", dns.TypeA, 1232); len(r.Answer) != 1 {
		t.Errorf("after Set of TXT, %d A records, want the one kept", len(r.Answer))
	}

	s.Remove("_dmarc.example.com")
	if r := ask(t, s, "udp", "_dmarc.example.com", dns.TypeTXT, 1232); r.Rcode != dns.RcodeNameError {
		t.Errorf("after Remove: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

func TestQueriesAreCountedPerNameAndType(t *testing.T) {
	s := Start(t, `trunc.example.com. 300 IN TXT "x"`)
	s.Truncate("trunc.example.com")

	ask(t, s, "udp", "a.example.com", dns.TypeTXT, 1232)
	ask(t, s, "udp", "A.EXAMPLE.COM", dns.TypeTXT, 1232)
	ask(t, s, "udp", "a.example.com", dns.TypeA, 1232)
	ask(t, s, "udp", "trunc.example.com", dns.TypeTXT, 1232)
	ask(t, s, "tcp", "trunc.example.com", dns.TypeTXT, 1232)

	for _, c := range []struct {
		name  string
		qtype uint16
		want  int
	}{
		{"a.example.com.", dns.TypeTXT, 2},
		{"a.example.com", dns.TypeA, 1},
		{"a.example.com", dns.TypeMX, 0},
		{"trunc.example.com", dns.TypeTXT, 2},
	} {
		if got := s.Queries(c.name, c.qtype); got != c.want {
			t.Errorf("Queries(%q, %s) = %d, want %d", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
	}
}
