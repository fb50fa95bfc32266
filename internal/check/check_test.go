package check

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/dnstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Timeouts of a query in the tests: a generous one, so that a busy machine
// does not fail tests, and a short one for the test of a dropped query,
// which waits that long.
const (
	testTimeout  = 3 * time.Second
	shortTimeout = 200 * time.Millisecond
)

// bigRecord is a record too long for one UDP answer of 512 octets.
var bigRecord = func() string {
	var rua, ruf []string
	for i := 1; i <= 6; i++ {
		rua = append(rua, fmt.Sprintf("mailto:dmarc-aggregate-reports-%02d@big.example", i))
		ruf = append(ruf, fmt.Sprintf("mailto:dmarc-failure-reports-%02d@big.example", i))
	}
	return "v=DMARC1; p=reject; rua=" + strings.Join(rua, ",") + "; ruf=" + strings.Join(ruf, ",") + "; fo=1"
}()

func soa(zone string) string {
	return zone + " 3600 IN SOA ns." + zone + " hostmaster." + zone + " 1 3600 600 86400 300"
}

// startDNS serves every scenario of the tests.
func startDNS(t testing.TB) *dnstest.Server {
	s := dnstest.Start(t,
		soa("example.com."), soa("example.net."), soa("example.org."), soa("example."), soa("test."),
		soa("customer.example."), soa("provider.test."),

		// A clean domain with an authorized external rua, and a
		// subdomain that inherits its record.
		dnstest.TXT("_dmarc.example.com.", "v=DMARC1; p=reject; adkim=s; rua=mailto:dmarc@example.com,mailto:agg@reports.example.net"),
		dnstest.TXT("example.com._report._dmarc.reports.example.net.", "v=DMARC1"),
		"mail.example.com. 300 IN A 192.0.2.25",

		dnstest.TXT("_dmarc.monitor.test.", "v=DMARC1; p=none"),
		"nodmarc.example. 300 IN A 192.0.2.2",

		// psd=n makes dept.example.org an organizational domain under
		// RFC 9989; RFC 7489 reads example.org's record.
		dnstest.TXT("_dmarc.example.org.", "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"),
		dnstest.TXT("_dmarc.dept.example.org.", "v=DMARC1; p=quarantine; psd=n; rua=mailto:dmarc@example.org"),
		"host.dept.example.org. 300 IN A 192.0.2.1",

		dnstest.TXT("_dmarc.sampling.test.", "v=DMARC1; p=reject; pct=25; rua=mailto:dmarc@sampling.test"),

		// A public suffix domain's record (psd=y) and a domain below it
		// without one.
		dnstest.TXT("_dmarc.psd.test.", "v=DMARC1; p=reject; psd=y; rua=mailto:dmarc@psd.test"),
		"agency.psd.test. 300 IN A 192.0.2.3",

		dnstest.TXT("_dmarc.typo.example.", "v=DMARC1; p=rejct; adkim=x; rua=mailto:dmarc@typo.example"),
		dnstest.TXT("_dmarc.unusable.example.", "v=DMARC1; p=rejet"),
		dnstest.TXT("_dmarc.nosemicolon.example.", "v=DMARC1 p=reject; rua=mailto:dmarc@nosemicolon.example"),
		dnstest.TXT("_dmarc.twice.example.", "v=DMARC1; p=reject; rua=mailto:dmarc@twice.example"),
		dnstest.TXT("_dmarc.twice.example.", "v=DMARC1; p=none"),
		dnstest.TXT("_dmarc.testing.example.", "v=DMARC1; p=reject; sp=none; np=quarantine; t=y; rua=mailto:dmarc@testing.example"),
		dnstest.TXT("_dmarc.legacy.example.", "v=DMARC1; p=reject; rua=mailto:dmarc@legacy.example!10m,https://reports.legacy.example/dmarc; ri=3600; rf=afrf"),

		// Three external destinations: one not authorized, one
		// authorized, one authorized with an override.
		dnstest.TXT("_dmarc.thirdparty.example.", "v=DMARC1; p=quarantine; rua=mailto:a@unauthorized.example.net,mailto:b@reports.example.net,mailto:c@override.example.net; ruf=mailto:f@reports.example.net"),
		dnstest.TXT("thirdparty.example._report._dmarc.reports.example.net.", "v=DMARC1"),
		dnstest.TXT("thirdparty.example._report._dmarc.override.example.net.", "v=DMARC1; rua=mailto:inbox@override.example.net"),

		// A DMARC provider's record, reached through a CNAME into another
		// zone.
		"_dmarc.customer.example. 300 IN CNAME customer.example._dmarc.provider.test.",
		dnstest.TXT("customer.example._dmarc.provider.test.", "v=DMARC1; p=quarantine; rua=mailto:customer@provider.test"),
		dnstest.TXT("customer.example._report._dmarc.provider.test.", "v=DMARC1"),

		dnstest.TXT("_dmarc.xn--bcher-kva.example.", "v=DMARC1; p=reject; rua=mailto:dmarc@xn--bcher-kva.example"),
		dnstest.TXT("_dmarc.big.example.", bigRecord),
		dnstest.TXT("_dmarc.order.example.", "v=DMARC1; rua=mailto:dmarc@order.example; p=reject"),
		dnstest.TXT("_dmarc.brokenreports.example.", "v=DMARC1; p=reject; rua=mailto:dmarc@reports.broken.example.net"),
	)
	s.Fail("_dmarc.servfail.example.", dns.RcodeServerFailure)
	s.Drop("_dmarc.timeout.example.")
	s.Truncate("_dmarc.big.example.")
	s.Fail("brokenreports.example._report._dmarc.reports.broken.example.net.", dns.RcodeServerFailure)
	return s
}

// newChecker returns a Checker asking s through a fresh cache.
func newChecker(t testing.TB, s *dnstest.Server, spec dmarc.Spec, timeout time.Duration) *Checker {
	t.Helper()
	r, err := dnscache.New(dnscache.Config{Nameservers: []string{s.Addr()}, Timeout: timeout, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &Checker{Resolver: r, Spec: spec}
}

func TestCheckGolden(t *testing.T) {
	s := startDNS(t)
	tests := []struct {
		name    string
		golden  string
		spec    dmarc.Spec
		domains []string
		verbose bool
		exit    int
		timeout time.Duration // testTimeout if 0
	}{
		{"a clean p=reject domain with an authorized external rua is fine", "clean-reject", dmarc.RFC9989, []string{"example.com"}, true, 0, 0},
		{"a subdomain inherits its organizational domain's record", "subdomain-inherits", dmarc.RFC9989, []string{"mail.example.com"}, false, 0, 0},
		{"p=none without rua is a problem", "p-none-without-rua", dmarc.RFC9989, []string{"monitor.test"}, false, 1, 0},
		{"a domain without a record is a problem and shows the names queried", "no-record", dmarc.RFC9989, []string{"nodmarc.example"}, false, 1, 0},
		{"under RFC 9989 a psd=n record below the organizational domain applies", "psd-n-rfc9989", dmarc.RFC9989, []string{"host.dept.example.org"}, true, 1, 0},
		{"under RFC 7489 the public suffix list picks the organizational domain instead", "psd-n-rfc7489", dmarc.RFC7489, []string{"host.dept.example.org"}, true, 0, 0},
		{"under RFC 9989 pct is removed and ignored", "pct-rfc9989", dmarc.RFC9989, []string{"sampling.test"}, false, 1, 0},
		{"under RFC 7489 pct below 100 samples the policy", "pct-rfc7489", dmarc.RFC7489, []string{"sampling.test"}, false, 1, 0},
		{"under RFC 9989 a public suffix domain's record applies to a domain without one", "psd-y-rfc9989", dmarc.RFC9989, []string{"agency.psd.test"}, false, 1, 0},
		{"under RFC 7489 the same record is the organizational domain's", "psd-y-rfc7489", dmarc.RFC7489, []string{"agency.psd.test"}, false, 0, 0},
		{"syntax errors point at their offset in the record", "syntax-errors", dmarc.RFC9989, []string{"typo.example"}, false, 1, 0},
		{"a record without a valid p or rua is unusable", "unusable", dmarc.RFC9989, []string{"unusable.example"}, false, 1, 0},
		{"a record missing its first semicolon is not DMARC and is pointed at", "not-dmarc", dmarc.RFC9989, []string{"nosemicolon.example"}, true, 1, 0},
		{"several records at one name are all discarded", "several-records", dmarc.RFC9989, []string{"twice.example"}, true, 1, 0},
		{"p written after other tags is warned about", "p-not-after-v", dmarc.RFC9989, []string{"order.example"}, false, 1, 0},
		{"a subdomain that does not exist gets np", "nonexistent-subdomain", dmarc.RFC9989, []string{"ghost.testing.example"}, true, 1, 0},
		{"testing mode and weak sp and np are warned about", "testing-weak-subdomains", dmarc.RFC9989, []string{"testing.example"}, false, 1, 0},
		{"tags RFC 9989 removed, the size suffix and https URIs are warned about", "legacy-rfc9989", dmarc.RFC9989, []string{"legacy.example"}, false, 1, 0},
		{"RFC 7489 reads the same tags without complaint but the https URI", "legacy-rfc7489", dmarc.RFC7489, []string{"legacy.example"}, false, 1, 0},
		{"external destinations: unauthorized, authorized and overridden", "external-destinations", dmarc.RFC9989, []string{"thirdparty.example"}, false, 1, 0},
		{"a DNS failure verifying a destination fails the check", "destination-servfail", dmarc.RFC9989, []string{"brokenreports.example"}, false, 2, 0},
		{"SERVFAIL fails the check", "servfail", dmarc.RFC9989, []string{"servfail.example"}, false, 2, 0},
		{"a timeout fails the check", "timeout", dmarc.RFC9989, []string{"timeout.example"}, false, 2, shortTimeout},
		{"a truncated answer is read over TCP", "truncated", dmarc.RFC9989, []string{"big.example"}, true, 0, 0},
		{"a CNAME at _dmarc leads to the provider's record", "cname", dmarc.RFC9989, []string{"customer.example"}, true, 0, 0},
		{"a U-label domain is checked as its A-label", "idn", dmarc.RFC9989, []string{"bücher.example"}, false, 0, 0},
		{"a name that is not a domain fails the check", "invalid-name", dmarc.RFC9989, []string{"not a domain"}, false, 2, 0},
		{"the _dmarc name is taken for its domain", "dmarc-prefix", dmarc.RFC9989, []string{"_dmarc.example.com"}, false, 0, 0},
		{"with several domains the worst exit code wins", "several-domains", dmarc.RFC9989, []string{"example.com", "monitor.test", "servfail.example"}, false, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = testTimeout
			}
			reports := newChecker(t, s, tt.spec, timeout).CheckAll(context.Background(), tt.domains)
			if got := ExitCode(reports); got != tt.exit {
				t.Errorf("exit code %d, want %d", got, tt.exit)
			}
			var text, js bytes.Buffer
			if err := WriteText(&text, reports, tt.verbose); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, reports); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden+".txt", text.Bytes())
			golden(t, tt.golden+".json", js.Bytes())
			if strings.Contains(text.String()+js.String(), s.Addr()) || strings.Contains(text.String()+js.String(), "127.0.0.1") {
				t.Error("the output names the nameserver")
			}
		})
	}
}

// golden compares got with testdata/name.golden, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/check -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./internal/check -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// TestJSONKeys checks that every documented key is present in every
// report, whatever the outcome: consumers may rely on the shape.
func TestJSONKeys(t *testing.T) {
	s := startDNS(t)
	keys := map[string][]string{
		"report":       {"input", "domain", "unicode", "spec", "status", "error", "policy_domain", "source", "org_domain", "record", "tags", "policies", "destinations", "findings", "lookups"},
		"tags":         {"name", "value", "effective", "default", "note"},
		"policies":     {"domain", "domain_from", "domain_exists", "subdomains", "subdomains_from", "nonexistent", "nonexistent_from", "testing", "pct"},
		"destinations": {"tag", "uri", "external", "authorized", "txt_name", "send", "reason"},
		"findings":     {"severity", "offset", "tag", "message", "text"},
		"lookups":      {"name", "type", "result", "txt", "dmarc_records", "cname", "tcp", "error"},
	}
	has := func(t *testing.T, what string, obj map[string]any) {
		t.Helper()
		for _, k := range keys[what] {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s has no key %q", what, k)
			}
		}
		if len(obj) != len(keys[what]) {
			t.Errorf("%s has %d keys, want the %d documented", what, len(obj), len(keys[what]))
		}
	}
	domains := []string{"example.com", "thirdparty.example", "nodmarc.example", "servfail.example", "not a domain"}
	reports := newChecker(t, s, dmarc.RFC9989, testTimeout).CheckAll(context.Background(), domains)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, reports); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(domains) {
		t.Fatalf("%d reports for %d domains", len(got), len(domains))
	}
	for i, r := range got {
		t.Run(domains[i], func(t *testing.T) {
			has(t, "report", r)
			for _, list := range []string{"tags", "destinations", "findings", "lookups"} {
				items, ok := r[list].([]any)
				if !ok {
					t.Errorf("%s is %T, want an array", list, r[list])
					continue
				}
				for _, it := range items {
					has(t, list, it.(map[string]any))
				}
			}
			if p, ok := r["policies"].(map[string]any); ok {
				has(t, "policies", p)
			}
		})
	}
}

// TestURIProblemsAreWarnings checks that a domain owner is warned about
// report URIs no receiver will use.
func TestURIProblemsAreWarnings(t *testing.T) {
	rec, err := dmarc.Parse("v=DMARC1; p=reject; rua=https://r.example/,mailto:d@example.com!10m", dmarc.RFC9989)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range rec.Problems {
		if p.Severity == dmarc.Warning && p.Tag == "rua" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d rua warnings, want 2 (the https URI and the size): %v", n, rec.Problems)
	}
}
