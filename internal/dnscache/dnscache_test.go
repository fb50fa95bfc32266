package dnscache

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/dnstest"
)

// Zone data shared by the tests. Negative answers in example.com live 300s
// (the SOA MINIMUM, below the SOA TTL).
const (
	soaCom = `example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300`
	soaOrg = `example.org. 3600 IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300`
)

// clock is a fake Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newResolver returns a Resolver that asks s, with a fake clock and one
// attempt unless cfg says otherwise.
func newResolver(t testing.TB, s *dnstest.Server, cfg Config) (*Resolver, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	if cfg.Nameservers == nil {
		cfg.Nameservers = []string{s.Addr()}
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 1
	}
	cfg.Now = clk.Now
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, clk
}

// kindOf names the sentinel err wraps, for messages and comparisons.
func kindOf(err error) error {
	for _, kind := range []error{dmarc.ErrNXDomain, dmarc.ErrNoRecords, dmarc.ErrTemporary} {
		if errors.Is(err, kind) {
			return kind
		}
	}
	return err
}

func TestLookupTXT(t *testing.T) {
	s := dnstest.Start(t,
		soaCom,
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`,
		`split.example.com. 300 IN TXT "v=DMARC1; " "p=quarantine; " "rua=mailto:d@example.com"`,
		`two.example.com. 300 IN TXT "first"`,
		`two.example.com. 300 IN TXT "sec" "ond"`,
		`escaped.example.com. 300 IN TXT "a\"b\\c\009d\255"`,
		`empty.example.com. 300 IN TXT ""`,
		`host.example.com. 300 IN A 192.0.2.1`,
	)
	r, _ := newResolver(t, s, Config{})

	tests := []struct {
		name  string
		qname string
		want  []string
		err   error
	}{
		{"a single-string record is returned as is", "_dmarc.example.com", []string{"v=DMARC1; p=reject"}, nil},
		{"the strings of a record are joined with nothing between them", "split.example.com", []string{"v=DMARC1; p=quarantine; rua=mailto:d@example.com"}, nil},
		{"each record is one element", "two.example.com", []string{"first", "second"}, nil},
		{"escaped octets come back as on the wire", "escaped.example.com", []string{"a\"b\\c\td\xff"}, nil},
		{"an empty string is an empty record", "empty.example.com", []string{""}, nil},
		{"the name may end with a dot and have capitals", "_DMARC.Example.COM.", []string{"v=DMARC1; p=reject"}, nil},
		{"a name without TXT records is NODATA", "host.example.com", nil, dmarc.ErrNoRecords},
		{"an empty non-terminal is NODATA", "example.com", nil, dmarc.ErrNoRecords},
		{"a missing name is NXDOMAIN", "_dmarc.nope.example.com", nil, dmarc.ErrNXDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.LookupTXT(context.Background(), tt.qname)
			if kindOf(err) != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	if n := s.Queries("_dmarc.example.com", dns.TypeTXT); n != 1 {
		t.Errorf("_dmarc.example.com asked %d times with and without capitals and final dot, want once", n)
	}
}

func TestErrorsAreNetDNSErrorsWithContext(t *testing.T) {
	s := dnstest.Start(t, soaCom, `host.example.com. 300 IN A 192.0.2.1`)
	s.Fail("broken.example.com", dns.RcodeServerFailure)
	r, _ := newResolver(t, s, Config{})

	tests := []struct {
		name                string
		qname               string
		kind                error
		notFound, temporary bool
		inMessage           string
	}{
		{"NXDOMAIN is not found", "nope.example.com", dmarc.ErrNXDomain, true, false, "lookup nope.example.com on " + s.Addr() + ": TXT: no such domain"},
		{"NODATA is not found", "host.example.com", dmarc.ErrNoRecords, true, false, "lookup host.example.com on " + s.Addr() + ": TXT: no records"},
		{"SERVFAIL is temporary", "broken.example.com", dmarc.ErrTemporary, false, true, "TXT: temporary DNS failure: SERVFAIL"},
		{"an invalid name is not found", "a..b", dmarc.ErrNXDomain, true, false, "lookup a..b: TXT: invalid domain name: empty label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.LookupTXT(context.Background(), tt.qname)
			var derr *net.DNSError
			if !errors.As(err, &derr) {
				t.Fatalf("err = %#v, want a *net.DNSError", err)
			}
			if kindOf(err) != tt.kind || derr.IsNotFound != tt.notFound || derr.Temporary() != tt.temporary {
				t.Errorf("err = %v (IsNotFound %v, Temporary %v), want %v (%v, %v)",
					err, derr.IsNotFound, derr.Temporary(), tt.kind, tt.notFound, tt.temporary)
			}
			if !strings.Contains(err.Error(), tt.inMessage) {
				t.Errorf("message %q does not contain %q", err, tt.inMessage)
			}
		})
	}
}

func TestPositiveAnswersAreCachedForTheirClampedTTL(t *testing.T) {
	tests := []struct {
		name   string
		ttl    string
		cfg    Config
		cached time.Duration // 0: not cached at all
	}{
		{"the record's TTL is honoured", "300", Config{}, 300 * time.Second},
		{"a short TTL is raised to MinTTL", "10", Config{MinTTL: time.Minute}, time.Minute},
		{"a long TTL is lowered to MaxTTL", "86400", Config{MaxTTL: 10 * time.Minute}, 10 * time.Minute},
		{"a long TTL is lowered to an hour by default", "604800", Config{}, time.Hour},
		{"a TTL of 0 is not cached", "0", Config{}, 0},
		{"a TTL with the top bit set counts as 0", "2147483648", Config{MinTTL: 5 * time.Second}, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dnstest.Start(t, `_dmarc.example.com. `+tt.ttl+` IN TXT "v=DMARC1; p=none"`)
			r, clk := newResolver(t, s, tt.cfg)
			ctx := context.Background()

			a, err := r.Lookup(ctx, "_dmarc.example.com", dns.TypeTXT)
			if err != nil {
				t.Fatal(err)
			}
			if a.TTL != tt.cached {
				t.Errorf("Answer.TTL = %v, want %v", a.TTL, tt.cached)
			}
			if tt.cached > 0 {
				clk.Advance(tt.cached - time.Second)
				r.LookupTXT(ctx, "_dmarc.example.com")
				if n := s.Queries("_dmarc.example.com", dns.TypeTXT); n != 1 {
					t.Errorf("1s before expiry: %d queries, want 1 (cached)", n)
				}
				clk.Advance(time.Second)
			}
			r.LookupTXT(ctx, "_dmarc.example.com")
			if n := s.Queries("_dmarc.example.com", dns.TypeTXT); n != 2 {
				t.Errorf("at expiry: %d queries, want 2 (asked again)", n)
			}
		})
	}
}

func TestNegativeAnswersAreCachedPerRFC2308(t *testing.T) {
	tests := []struct {
		name   string
		zone   []string
		qname  string
		cfg    Config
		kind   error
		cached time.Duration
	}{
		{
			name:  "NXDOMAIN lives the SOA MINIMUM when below the SOA TTL",
			zone:  []string{soaCom},
			qname: "nope.example.com", kind: dmarc.ErrNXDomain, cached: 300 * time.Second,
		},
		{
			name:  "NXDOMAIN lives the SOA TTL when below the MINIMUM",
			zone:  []string{`example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300`},
			qname: "nope.example.com", kind: dmarc.ErrNXDomain, cached: 60 * time.Second,
		},
		{
			name:  "NODATA lives like NXDOMAIN",
			zone:  []string{soaCom, `host.example.com. 3600 IN A 192.0.2.1`},
			qname: "host.example.com", kind: dmarc.ErrNoRecords, cached: 300 * time.Second,
		},
		{
			name:  "a negative answer without SOA lives NegativeTTL",
			zone:  []string{`host.example.com. 3600 IN A 192.0.2.1`},
			qname: "nope.example.com", cfg: Config{NegativeTTL: 20 * time.Second}, kind: dmarc.ErrNXDomain, cached: 20 * time.Second,
		},
		{
			name:  "a negative answer without SOA lives 30s by default",
			zone:  []string{`host.example.com. 3600 IN A 192.0.2.1`},
			qname: "host.example.com", kind: dmarc.ErrNoRecords, cached: 30 * time.Second,
		},
		{
			name:  "a long negative TTL is lowered to NegativeMaxTTL",
			zone:  []string{`example.com. 86400 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 86400`},
			qname: "nope.example.com", cfg: Config{NegativeMaxTTL: 2 * time.Minute}, kind: dmarc.ErrNXDomain, cached: 2 * time.Minute,
		},
		{
			name:  "a long negative TTL is lowered to 5 minutes by default",
			zone:  []string{`example.com. 86400 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 86400`},
			qname: "nope.example.com", kind: dmarc.ErrNXDomain, cached: 5 * time.Minute,
		},
		{
			name:  "a short negative TTL is raised to MinTTL",
			zone:  []string{`example.com. 5 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 5`},
			qname: "nope.example.com", cfg: Config{MinTTL: time.Minute}, kind: dmarc.ErrNXDomain, cached: time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dnstest.Start(t, tt.zone...)
			r, clk := newResolver(t, s, tt.cfg)
			ctx := context.Background()

			a, err := r.Lookup(ctx, tt.qname, dns.TypeTXT)
			if kindOf(err) != tt.kind {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
			if a.TTL != tt.cached {
				t.Errorf("Answer.TTL = %v, want %v", a.TTL, tt.cached)
			}
			clk.Advance(tt.cached - time.Second)
			if _, err := r.LookupTXT(ctx, tt.qname); kindOf(err) != tt.kind {
				t.Errorf("from the cache: err = %v, want %v", err, tt.kind)
			}
			if n := s.Queries(tt.qname, dns.TypeTXT); n != 1 {
				t.Errorf("1s before expiry: %d queries, want 1 (cached)", n)
			}
			clk.Advance(time.Second)
			r.LookupTXT(ctx, tt.qname)
			if n := s.Queries(tt.qname, dns.TypeTXT); n != 2 {
				t.Errorf("at expiry: %d queries, want 2 (asked again)", n)
			}
			if st := r.Stats(); st.NegativeHits != 1 {
				t.Errorf("Stats.NegativeHits = %d, want 1", st.NegativeHits)
			}
		})
	}
}

func TestFailuresAreTemporaryAndNotCached(t *testing.T) {
	tests := []struct {
		name    string
		fault   func(s *dnstest.Server, name string)
		timeout time.Duration
		check   func(t *testing.T, st Stats)
	}{
		{
			name:  "SERVFAIL",
			fault: func(s *dnstest.Server, name string) { s.Fail(name, dns.RcodeServerFailure) },
			check: func(t *testing.T, st Stats) {
				if st.ServerFailures != 3 {
					t.Errorf("Stats.ServerFailures = %d, want 3", st.ServerFailures)
				}
			},
		},
		{
			name:  "REFUSED",
			fault: func(s *dnstest.Server, name string) { s.Fail(name, dns.RcodeRefused) },
			check: func(t *testing.T, st Stats) {
				if st.Refused != 3 {
					t.Errorf("Stats.Refused = %d, want 3", st.Refused)
				}
			},
		},
		{
			name:  "FORMERR",
			fault: func(s *dnstest.Server, name string) { s.Fail(name, dns.RcodeFormatError) },
			check: func(t *testing.T, st Stats) {
				if st.OtherRcodes != 3 {
					t.Errorf("Stats.OtherRcodes = %d, want 3", st.OtherRcodes)
				}
			},
		},
		{
			name:    "a timeout",
			fault:   func(s *dnstest.Server, name string) { s.Drop(name) },
			timeout: 500 * time.Millisecond, // the healed lookup must fit in it on a loaded machine
			check: func(t *testing.T, st Stats) {
				if st.Timeouts != 3 {
					t.Errorf("Stats.Timeouts = %d, want 3", st.Timeouts)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is temporary and not cached", func(t *testing.T) {
			s := dnstest.Start(t, soaCom, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
			tt.fault(s, "_dmarc.example.com")
			r, _ := newResolver(t, s, Config{Timeout: tt.timeout})
			ctx := context.Background()

			for i := range 2 {
				txt, err := r.LookupTXT(ctx, "_dmarc.example.com")
				if !errors.Is(err, dmarc.ErrTemporary) || txt != nil {
					t.Fatalf("lookup %d: %q, %v; want ErrTemporary", i+1, txt, err)
				}
				if errors.Is(err, dmarc.ErrNXDomain) || errors.Is(err, dmarc.ErrNoRecords) {
					t.Fatalf("lookup %d: %v is also taken for a negative answer", i+1, err)
				}
			}
			// Counted on the client: a dropped query may reach the server's
			// counter after the client gave up on it.
			if st := r.Stats(); st.Misses != 2 || st.Queries != 2 {
				t.Errorf("two lookups made %d misses and %d queries, want 2 and 2 (failure not cached)", st.Misses, st.Queries)
			}
			if ok, err := r.Exists(ctx, "_dmarc.example.com"); ok || !errors.Is(err, dmarc.ErrTemporary) {
				t.Errorf("Exists = %v, %v; want false, ErrTemporary", ok, err)
			}
			st := r.Stats()
			if st.Temporary != 3 || st.Entries != 0 {
				t.Errorf("Stats.Temporary = %d, Entries = %d; want 3, 0", st.Temporary, st.Entries)
			}
			tt.check(t, st)

			s.Heal("_dmarc.example.com")
			if txt, err := r.LookupTXT(ctx, "_dmarc.example.com"); err != nil || len(txt) != 1 {
				t.Errorf("after the server healed: %q, %v; want the record", txt, err)
			}
		})
	}
}

func TestServerFailureTTLKeepsFailuresBrieflyAsTemporary(t *testing.T) {
	s := dnstest.Start(t, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
	s.Fail("_dmarc.example.com", dns.RcodeServerFailure)
	r, clk := newResolver(t, s, Config{ServerFailureTTL: time.Hour})
	ctx := context.Background()

	r.LookupTXT(ctx, "_dmarc.example.com")
	clk.Advance(5*time.Minute - time.Second) // the hour is capped to 5 minutes
	if _, err := r.LookupTXT(ctx, "_dmarc.example.com"); !errors.Is(err, dmarc.ErrTemporary) {
		t.Errorf("cached failure: err = %v, want ErrTemporary", err)
	}
	if n := s.Queries("_dmarc.example.com", dns.TypeTXT); n != 1 {
		t.Errorf("%d queries, want 1 (failure cached)", n)
	}
	if st := r.Stats(); st.FailureHits != 1 {
		t.Errorf("Stats.FailureHits = %d, want 1", st.FailureHits)
	}

	s.Heal("_dmarc.example.com")
	clk.Advance(time.Second)
	if txt, err := r.LookupTXT(ctx, "_dmarc.example.com"); err != nil || len(txt) != 1 {
		t.Errorf("after 5 minutes: %q, %v; want the record", txt, err)
	}
}

func TestTruncatedAnswersAreAskedAgainOverTCP(t *testing.T) {
	long := strings.Repeat("v=DMARC1; p=reject; ", 40) // 800 octets, in 4 strings
	huge := strings.Repeat("x", 3000)                  // more than the EDNS0 size
	s := dnstest.Start(t,
		`forced.example.com. 300 IN TXT "`+long+`"`,
		`huge.example.com. 300 IN TXT "`+huge+`"`,
		`fits.example.com. 300 IN TXT "`+long+`"`,
	)
	s.Truncate("forced.example.com")
	r, _ := newResolver(t, s, Config{})
	ctx := context.Background()

	tests := []struct {
		name      string
		qname     string
		want      string
		truncated uint64 // Stats.Truncated after the lookup
		queries   int
	}{
		{"a truncated answer is asked again over TCP", "forced.example.com", long, 1, 2},
		{"an answer larger than the EDNS0 size comes over TCP", "huge.example.com", huge, 2, 2},
		{"an answer larger than 512 octets fits UDP with EDNS0", "fits.example.com", long, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txt, err := r.LookupTXT(ctx, tt.qname)
			if err != nil || len(txt) != 1 || txt[0] != tt.want {
				t.Fatalf("got %d records (%v), want the %d-octet record", len(txt), err, len(tt.want))
			}
			if n := s.Queries(tt.qname, dns.TypeTXT); n != tt.queries {
				t.Errorf("%d queries, want %d", n, tt.queries)
			}
			if st := r.Stats(); st.Truncated != tt.truncated {
				t.Errorf("Stats.Truncated = %d, want %d", st.Truncated, tt.truncated)
			}
		})
	}
}

func TestCNAMEsAreFollowed(t *testing.T) {
	s := dnstest.Start(t,
		soaCom, soaOrg,
		`_dmarc.example.com. 300 IN CNAME _dmarc.hosted.example.com.`,
		`_dmarc.hosted.example.com. 60 IN CNAME policy.example.com.`,
		`policy.example.com. 300 IN TXT "v=DMARC1; p=reject"`,
		`away.example.com. 300 IN CNAME policy.example.org.`,
		`policy.example.org. 300 IN TXT "v=DMARC1; p=none"`,
		`chain.example.com. 300 IN CNAME c1.example.org.`,
		`c1.example.org. 300 IN CNAME c2.example.com.`,
		`c2.example.com. 300 IN CNAME c3.example.org.`,
		`c3.example.org. 300 IN TXT "end"`,
		`loop.example.com. 300 IN CNAME loop.example.org.`,
		`loop.example.org. 300 IN CNAME loop.example.com.`,
		`dangling.example.com. 300 IN CNAME nowhere.example.com.`,
		`nodata.example.com. 300 IN CNAME host.example.com.`,
		`host.example.com. 300 IN A 192.0.2.1`,
	)
	var long []string // a chain of 10 links, alternating zones so each is chased
	for i := range 10 {
		zone, next := "com", "org"
		if i%2 == 1 {
			zone, next = next, zone
		}
		long = append(long, "l"+string(rune('a'+i))+".example."+zone+". 300 IN CNAME l"+string(rune('a'+i+1))+".example."+next+".")
	}
	s.Set(long...)
	r, _ := newResolver(t, s, Config{})
	ctx := context.Background()

	tests := []struct {
		name      string
		qname     string
		want      []string
		canonical string
		ttl       time.Duration
		kind      error
	}{
		{
			name: "a chain in the answer is followed", qname: "_dmarc.example.com",
			want: []string{"v=DMARC1; p=reject"}, canonical: "policy.example.com", ttl: 60 * time.Second,
		},
		{
			name: "a CNAME the server left unresolved is chased", qname: "away.example.com",
			want: []string{"v=DMARC1; p=none"}, canonical: "policy.example.org", ttl: 300 * time.Second,
		},
		{
			name: "a chain across zones is chased link by link", qname: "chain.example.com",
			want: []string{"end"}, canonical: "c3.example.org", ttl: 300 * time.Second,
		},
		{
			name: "a CNAME to a missing name is NXDOMAIN", qname: "dangling.example.com",
			canonical: "nowhere.example.com", ttl: 300 * time.Second, kind: dmarc.ErrNXDomain,
		},
		{
			name: "a CNAME to a name without the type is NODATA", qname: "nodata.example.com",
			canonical: "host.example.com", ttl: 300 * time.Second, kind: dmarc.ErrNoRecords,
		},
		{name: "a CNAME loop is a temporary error", qname: "loop.example.com", kind: dmarc.ErrTemporary},
		{name: "a chain longer than 8 is a temporary error", qname: "la.example.com", kind: dmarc.ErrTemporary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := r.Lookup(ctx, tt.qname, dns.TypeTXT)
			if kindOf(err) != tt.kind {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
			if err != nil && tt.kind == dmarc.ErrTemporary {
				return
			}
			txt, _ := r.LookupTXT(ctx, tt.qname)
			if !slices.Equal(txt, tt.want) {
				t.Errorf("TXT = %q, want %q", txt, tt.want)
			}
			if a.Name != tt.qname || a.Canonical != tt.canonical || a.TTL != tt.ttl {
				t.Errorf("Answer %q → %q for %v, want %q → %q for %v", a.Name, a.Canonical, a.TTL, tt.qname, tt.canonical, tt.ttl)
			}
		})
	}

	if n := s.Queries("_dmarc.example.com", dns.TypeTXT); n != 1 {
		t.Errorf("_dmarc.example.com asked %d times, want 1", n)
	}
	if n := s.Queries("policy.example.org", dns.TypeTXT); n != 1 {
		t.Errorf("the chased target asked %d times, want 1", n)
	}
	if n := s.Queries("lj.example.org", dns.TypeTXT) + s.Queries("lj.example.com", dns.TypeTXT); n != 0 {
		t.Errorf("the 10th link was asked for: the chain limit did not stop the chase")
	}
}

func TestExists(t *testing.T) {
	s := dnstest.Start(t,
		soaCom,
		`example.com. 300 IN A 192.0.2.1`,
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`,
		`a.b.example.com. 300 IN TXT "x"`,
		`dangling.example.com. 300 IN CNAME nowhere.example.com.`,
	)
	s.Fail("broken.example.com", dns.RcodeServerFailure)
	r, _ := newResolver(t, s, Config{})

	tests := []struct {
		name  string
		qname string
		want  bool
		err   error
	}{
		{"a name with A records exists", "example.com", true, nil},
		{"a name with other records exists (NODATA)", "_dmarc.example.com", true, nil},
		{"an empty non-terminal exists", "b.example.com", true, nil},
		{"a name with a CNAME to nowhere exists", "dangling.example.com", true, nil},
		{"an NXDOMAIN name does not exist", "nope.example.com", false, nil},
		{"an invalid name does not exist", strings.Repeat("a", 64) + ".example.com", false, nil},
		{"a failure is an error", "broken.example.com", false, dmarc.ErrTemporary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Exists(context.Background(), tt.qname)
			if got != tt.want || kindOf(err) != tt.err {
				t.Errorf("Exists(%q) = %v, %v; want %v, %v", tt.qname, got, err, tt.want, tt.err)
			}
		})
	}
	if n := s.Queries("_dmarc.example.com", dns.TypeA); n != 1 {
		t.Errorf("Exists asked %d A queries for _dmarc.example.com, want 1", n)
	}
}

func TestInvalidNamesAreRejectedWithoutAQuery(t *testing.T) {
	s := dnstest.Start(t, soaCom)
	r, _ := newResolver(t, s, Config{})
	label63 := strings.Repeat("a", 63)
	name253 := strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, ".")

	tests := []struct {
		name    string
		qname   string
		invalid bool
	}{
		{"an empty name is invalid", "", true},
		{"a lone dot is the root, valid", ".", false},
		{"an empty label is invalid", "a..example.com", true},
		{"a leading dot is invalid", ".example.com", true},
		{"two final dots are invalid", "example.com..", true},
		{"a label of 64 octets is invalid", strings.Repeat("a", 64) + ".example.com", true},
		{"a label of 63 octets is valid", label63 + ".example.com", false},
		{"a name of 254 octets is invalid", "a" + name253, true},
		{"a name of 253 octets is valid", name253, false},
		{"a name of 253 octets and the final dot is valid", name253 + ".", false},
		{"a backslash is invalid", `a\.b.example.com`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.Stats().Misses
			_, err := r.LookupTXT(context.Background(), tt.qname)
			if got := errors.Is(err, ErrInvalidName); got != tt.invalid {
				t.Fatalf("err = %v; invalid = %v, want %v", err, got, tt.invalid)
			}
			if !tt.invalid {
				return
			}
			if !errors.Is(err, dmarc.ErrNXDomain) || errors.Is(err, dmarc.ErrTemporary) {
				t.Errorf("err = %v, want it to wrap ErrNXDomain only", err)
			}
			if r.Stats().Misses != before {
				t.Errorf("a query was sent")
			}
		})
	}
}

func TestEvictionKeepsTheCacheWithinMaxEntries(t *testing.T) {
	s := dnstest.Start(t,
		`a.example.com. 300 IN TXT "a"`,
		`b.example.com. 300 IN TXT "b"`,
		`c.example.com. 300 IN TXT "c"`,
		`d.example.com. 300 IN TXT "d"`,
	)
	r, _ := newResolver(t, s, Config{MaxEntries: 3})
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c", "a", "d"} { // a is used again before d comes
		if _, err := r.LookupTXT(ctx, name+".example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.Stats(); st.Entries != 3 || st.Evictions != 1 {
		t.Errorf("Entries = %d, Evictions = %d; want 3, 1", st.Entries, st.Evictions)
	}
	// b, the least recently used, was dropped; a, c and d were kept.
	for _, name := range []string{"a", "c", "d", "b"} {
		r.LookupTXT(ctx, name+".example.com")
	}
	want := map[string]int{"a": 1, "b": 2, "c": 1, "d": 1}
	for name, n := range want {
		if got := s.Queries(name+".example.com", dns.TypeTXT); got != n {
			t.Errorf("%s asked %d times, want %d", name, got, n)
		}
	}
}

func TestConcurrentLookupsShareOneQuery(t *testing.T) {
	s := dnstest.Start(t, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
	s.Delay("_dmarc.example.com", 50*time.Millisecond) // so that all callers arrive while it is in flight
	r, _ := newResolver(t, s, Config{})

	const callers = 1000
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			<-start
			txt, err := r.LookupTXT(context.Background(), "_dmarc.example.com")
			if err == nil && (len(txt) != 1 || txt[0] != "v=DMARC1; p=reject") {
				err = errors.New("wrong answer " + strings.Join(txt, "|"))
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Queries("_dmarc.example.com", dns.TypeTXT); n != 1 {
		t.Errorf("%d callers made %d queries, want 1", callers, n)
	}
	if st := r.Stats(); st.Misses != 1 || st.Coalesced+st.Hits != callers-1 {
		t.Errorf("Misses = %d, Coalesced = %d, Hits = %d; want 1 and %d shared", st.Misses, st.Coalesced, st.Hits, callers-1)
	}
}

func TestACallerGivingUpDoesNotCancelTheSharedQuery(t *testing.T) {
	// The shared query outlives the impatient caller: the first nameserver
	// keeps it waiting for a timeout, then the second answers.
	silent := dnstest.Start(t)
	silent.Drop("_dmarc.example.com")
	s := dnstest.Start(t, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
	r, _ := newResolver(t, s, Config{Nameservers: []string{silent.Addr(), s.Addr()}, Timeout: time.Second})

	impatient, cancel := context.WithCancel(context.Background())
	first := make(chan error)
	go func() {
		_, err := r.LookupTXT(impatient, "_dmarc.example.com") // starts the query
		first <- err
	}()
	for r.Stats().Misses == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error)
	go func() {
		_, err := r.LookupTXT(context.Background(), "_dmarc.example.com")
		second <- err
	}()
	cancel()

	if err := <-first; !errors.Is(err, dmarc.ErrTemporary) || !errors.Is(err, context.Canceled) {
		t.Errorf("the caller who gave up got %v, want ErrTemporary and context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Errorf("the caller who waited got %v, want the answer", err)
	}
	if _, err := r.LookupTXT(context.Background(), "_dmarc.example.com"); err != nil {
		t.Errorf("next caller: %v", err)
	}
	if n := s.Queries("_dmarc.example.com", dns.TypeTXT); n != 1 {
		t.Errorf("%d queries, want 1", n)
	}
}

func TestANameserverThatFailsIsSkipped(t *testing.T) {
	// dead is a UDP port nobody listens on: the kernel refuses at once.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()

	silent := dnstest.Start(t)
	silent.Drop("_dmarc.example.com")
	failing := dnstest.Start(t)
	failing.Fail("_dmarc.example.com", dns.RcodeServerFailure)
	good := dnstest.Start(t, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)

	tests := []struct {
		name  string
		first string
	}{
		{"a dead first nameserver is skipped", dead},
		{"a first nameserver that times out is skipped", silent.Addr()},
		{"a first nameserver that answers SERVFAIL is skipped", failing.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newResolver(t, nil, Config{Nameservers: []string{tt.first, good.Addr()}, Timeout: time.Second})
			txt, err := r.LookupTXT(context.Background(), "_dmarc.example.com")
			if err != nil || len(txt) != 1 {
				t.Errorf("got %q, %v; want the record from the second nameserver", txt, err)
			}
		})
	}

	t.Run("every nameserver is tried Attempts times", func(t *testing.T) {
		r, _ := newResolver(t, nil, Config{Nameservers: []string{dead, failing.Addr()}, Attempts: 3})
		_, err := r.LookupTXT(context.Background(), "_dmarc.example.com")
		if !errors.Is(err, dmarc.ErrTemporary) {
			t.Errorf("err = %v, want ErrTemporary", err)
		}
		if st := r.Stats(); st.Queries != 6 || st.NetworkErrors != 3 || st.ServerFailures != 3 {
			t.Errorf("Queries = %d, NetworkErrors = %d, ServerFailures = %d; want 6, 3, 3", st.Queries, st.NetworkErrors, st.ServerFailures)
		}
	})
}

func TestLookupIPAddrAndA(t *testing.T) {
	s := dnstest.Start(t,
		soaCom,
		`both.example.com. 300 IN A 192.0.2.1`,
		`both.example.com. 300 IN AAAA 2001:db8::1`,
		`v4.example.com. 300 IN A 192.0.2.2`,
		`v6.example.com. 300 IN AAAA 2001:db8::2`,
		`txt.example.com. 300 IN TXT "x"`,
		`half.example.com. 300 IN A 192.0.2.3`,
	)
	s.Fail("half.example.com", dns.RcodeServerFailure)
	r, _ := newResolver(t, s, Config{})

	tests := []struct {
		name  string
		host  string
		want  []string // LookupIPAddr
		err   error
		want4 []string // LookupA
		err4  error
	}{
		{"IPv4 comes before IPv6", "both.example.com", []string{"192.0.2.1", "2001:db8::1"}, nil, []string{"192.0.2.1"}, nil},
		{"IPv4 alone", "v4.example.com", []string{"192.0.2.2"}, nil, []string{"192.0.2.2"}, nil},
		{"IPv6 alone", "v6.example.com", []string{"2001:db8::2"}, nil, nil, dmarc.ErrNoRecords},
		{"no address is NODATA", "txt.example.com", nil, dmarc.ErrNoRecords, nil, dmarc.ErrNoRecords},
		{"a missing name is NXDOMAIN", "nope.example.com", nil, dmarc.ErrNXDomain, nil, dmarc.ErrNXDomain},
		{"a failure is temporary", "half.example.com", nil, dmarc.ErrTemporary, nil, dmarc.ErrTemporary},
	}
	strs := func(addrs []net.IPAddr) []string {
		var s []string
		for _, a := range addrs {
			s = append(s, a.String())
		}
		return s
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs, err := r.LookupIPAddr(context.Background(), tt.host)
			if got := strs(addrs); !slices.Equal(got, tt.want) || kindOf(err) != tt.err {
				t.Errorf("LookupIPAddr: got %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
			addrs, err = r.LookupA(context.Background(), tt.host)
			if got := strs(addrs); !slices.Equal(got, tt.want4) || kindOf(err) != tt.err4 {
				t.Errorf("LookupA: got %q, %v; want %q, %v", got, err, tt.want4, tt.err4)
			}
		})
	}
}

func TestLookupMXAndAddr(t *testing.T) {
	s := dnstest.Start(t,
		`example.com. 300 IN MX 20 backup.example.com.`,
		`example.com. 300 IN MX 10 mx.example.com.`,
		`1.2.0.192.in-addr.arpa. 300 IN PTR mx.example.com.`,
		`1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR v6.example.com.`,
	)
	r, _ := newResolver(t, s, Config{})
	ctx := context.Background()

	mxs, err := r.LookupMX(ctx, "example.com")
	if err != nil || len(mxs) != 2 || *mxs[0] != (net.MX{Host: "mx.example.com.", Pref: 10}) || *mxs[1] != (net.MX{Host: "backup.example.com.", Pref: 20}) {
		t.Errorf("LookupMX = %v, %v; want mx (10) then backup (20)", mxs, err)
	}
	for addr, want := range map[string]string{"192.0.2.1": "mx.example.com.", "2001:db8::1": "v6.example.com."} {
		if names, err := r.LookupAddr(ctx, addr); err != nil || !slices.Equal(names, []string{want}) {
			t.Errorf("LookupAddr(%s) = %q, %v; want %q", addr, names, err, want)
		}
	}
	if _, err := r.LookupAddr(ctx, "192.0.2.99"); !errors.Is(err, dmarc.ErrNXDomain) {
		t.Errorf("LookupAddr of an address without PTR: %v, want ErrNXDomain", err)
	}
	if _, err := r.LookupAddr(ctx, "not-an-ip"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("LookupAddr of a non-address: %v, want ErrInvalidName", err)
	}
}

func TestStatsCountHitsAndUpstreamLatency(t *testing.T) {
	s := dnstest.Start(t, soaCom, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
	s.Delay("_dmarc.example.com", 10*time.Millisecond)
	r, _ := newResolver(t, s, Config{})
	ctx := context.Background()

	r.LookupTXT(ctx, "_dmarc.example.com")
	r.LookupTXT(ctx, "_dmarc.example.com")
	r.LookupTXT(ctx, "nope.example.com")
	r.LookupTXT(ctx, "nope.example.com")
	r.LookupTXT(ctx, "a..b")

	st := r.Stats()
	want := Stats{
		Entries: 2, Hits: 1, NegativeHits: 1, Misses: 2, InvalidNames: 1, NXDomain: 1,
		Queries: 2, Answered: 2, Latency: st.Latency,
	}
	if st != want {
		t.Errorf("Stats = %+v\nwant    %+v", st, want)
	}
	if st.Latency < 10*time.Millisecond {
		t.Errorf("Latency = %v, want at least the 10ms delay", st.Latency)
	}
}

func TestNameserversComeFromResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "# comment\nsearch example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions timeout:1\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := systemNameservers(path)
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("systemNameservers = %q, %v; want %q", got, err, want)
	}

	os.WriteFile(path, []byte("search example.com\n"), 0o644)
	if _, err := systemNameservers(path); err == nil {
		t.Errorf("a resolv.conf without nameserver gave no error")
	}

	t.Run("New reads /etc/resolv.conf by default", func(t *testing.T) {
		want, err := systemNameservers(resolvConf)
		if err != nil {
			t.Skipf("no usable %s here: %v", resolvConf, err)
		}
		r, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.servers, want) {
			t.Errorf("servers = %q, want %q", r.servers, want)
		}
	})
}

func TestConfig(t *testing.T) {
	t.Run("nameservers may be given with or without port, IPv4 or IPv6", func(t *testing.T) {
		for in, want := range map[string]string{
			"192.0.2.1":          "192.0.2.1:53",
			"192.0.2.1:5353":     "192.0.2.1:5353",
			"2001:db8::1":        "[2001:db8::1]:53",
			"[2001:db8::1]":      "[2001:db8::1]:53",
			"[2001:db8::1]:5353": "[2001:db8::1]:5353",
		} {
			if got, err := parseNameserver(in); got != want || err != nil {
				t.Errorf("parseNameserver(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
	})
	t.Run("invalid configurations are refused", func(t *testing.T) {
		for name, cfg := range map[string]Config{
			"a nameserver name":    {Nameservers: []string{"ns.example.com"}},
			"a bad port":           {Nameservers: []string{"192.0.2.1:99999"}},
			"an empty port":        {Nameservers: []string{"192.0.2.1:"}},
			"a negative timeout":   {Nameservers: []string{"192.0.2.1"}, Timeout: -1},
			"MinTTL above MaxTTL":  {Nameservers: []string{"192.0.2.1"}, MinTTL: 2 * time.Hour, MaxTTL: time.Hour},
			"a UDP size below 512": {Nameservers: []string{"192.0.2.1"}, UDPSize: 100},
			"negative MaxEntries":  {Nameservers: []string{"192.0.2.1"}, MaxEntries: -1},
			"MaxEntries too large": {Nameservers: []string{"192.0.2.1"}, MaxEntries: MaxEntries + 1},
		} {
			if _, err := New(cfg); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
	t.Run("zero fields get their defaults", func(t *testing.T) {
		r, err := New(Config{Nameservers: []string{"192.0.2.1"}})
		if err != nil {
			t.Fatal(err)
		}
		c := r.cfg
		if c.Timeout != 2*time.Second || c.Attempts != 2 || c.MaxEntries != 10000 || c.MaxTTL != time.Hour ||
			c.NegativeMaxTTL != 5*time.Minute || c.NegativeTTL != 30*time.Second || c.UDPSize != 1232 || c.Now == nil {
			t.Errorf("defaults: %+v", c)
		}
	})
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:       "plain",
		`a\"b`:        `a"b`,
		`a\\b`:        `a\b`,
		`\009tab`:     "\ttab",
		`\255`:        "\xff",
		`\256`:        "256",
		`trailing\`:   `trailing\`,
		`\;semicolon`: ";semicolon",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkLookupTXTHit(b *testing.B) {
	s := dnstest.Start(b, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
	r, _ := newResolver(b, s, Config{})
	ctx := context.Background()
	if _, err := r.LookupTXT(ctx, "_dmarc.example.com"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.LookupTXT(ctx, "_dmarc.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupTXTHitParallel(b *testing.B) {
	s := dnstest.Start(b, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
	r, _ := newResolver(b, s, Config{})
	ctx := context.Background()
	if _, err := r.LookupTXT(ctx, "_dmarc.example.com"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.LookupTXT(ctx, "_dmarc.example.com")
		}
	})
}

func BenchmarkExistsNegativeHit(b *testing.B) {
	s := dnstest.Start(b, soaCom)
	r, _ := newResolver(b, s, Config{})
	ctx := context.Background()
	r.Exists(ctx, "nope.example.com")
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := r.Exists(ctx, "nope.example.com"); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func TestNamesWithSpecialCharactersAreAnswered(t *testing.T) {
	// SPF's exists:%{s}... puts "@" into the name asked for; miekg/dns
	// escapes it in the answer's question section.
	srv := dnstest.Start(t,
		"example. 300 IN SOA ns.example. h.example. 1 300 300 300 300",
		`a\@b.spf.example. 300 IN A 192.0.2.1`)
	r, err := New(Config{Nameservers: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := r.LookupIPAddr(context.Background(), "a@b.spf.example")
	if err != nil || len(addrs) != 1 {
		t.Fatalf("LookupIPAddr(a@b.spf.example) = %v, %v; want the A record", addrs, err)
	}
}

func TestCachedTXT(t *testing.T) {
	s := dnstest.Start(t,
		"example.com. 300 IN SOA ns.example.com. host.example.com. 1 3600 600 86400 60",
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
	r, clk := newResolver(t, s, Config{})
	ctx := context.Background()
	for _, name := range []string{"_dmarc.example.com", "_dmarc.sub.example.com"} {
		if r.CachedTXT(name) {
			t.Errorf("%s cached before any lookup", name)
		}
		r.LookupTXT(ctx, name)
		if !r.CachedTXT(name) || !r.CachedTXT(strings.ToUpper(name)+".") {
			t.Errorf("%s not cached after its lookup", name)
		}
	}
	if r.CachedTXT("not a name..") {
		t.Error("an invalid name is cached")
	}
	clk.Advance(61 * time.Second) // the negative answer expires, the record does not
	if !r.CachedTXT("_dmarc.example.com") || r.CachedTXT("_dmarc.sub.example.com") {
		t.Error("CachedTXT does not follow expiry")
	}
	if n := s.Queries("_dmarc.example.com", dns.TypeTXT); n != 1 {
		t.Errorf("CachedTXT asked the server: %d queries", n)
	}
}

func TestASlotIsFiftySixBytes(t *testing.T) {
	// A busy MX caches an entry for each From domain of the last hour, and
	// make bench measures dmarcd's memory with 100,000 of them: a field
	// added to entry should be a decision, not an accident.
	if n := unsafe.Sizeof(slot{}); n > 56 {
		t.Errorf("slot is %d bytes, want at most 56", n)
	}
}

// Negative entries of one server and type share the description of their
// error; each lookup must still get an error naming what it looked up.
func TestNegativeAnswersNameTheirOwnName(t *testing.T) {
	s := dnstest.Start(t, soaCom, `host.example.com. 300 IN A 192.0.2.1`)
	r, _ := newResolver(t, s, Config{})
	for range 2 { // from the nameserver, then from the cache
		for _, name := range []string{"_dmarc.a.example.com", "_dmarc.b.example.com", "host.example.com"} {
			_, err := r.LookupTXT(context.Background(), name)
			var derr *net.DNSError
			if !errors.As(err, &derr) {
				t.Fatalf("%s: %v is not a *net.DNSError", name, err)
			}
			if derr.Name != name || derr.Server != s.Addr() || !derr.IsNotFound || derr.IsTemporary {
				t.Errorf("%s: Name %q, Server %q, IsNotFound %v, IsTemporary %v", name, derr.Name, derr.Server, derr.IsNotFound, derr.IsTemporary)
			}
		}
	}
	if got := len(r.failures); got != 2 {
		t.Errorf("%d shared failures, want 2 (NXDOMAIN and NODATA for TXT from one server)", got)
	}
}
