package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
)

var update = flag.Bool("update", false, "rewrite configs/dmarcd.toml from WriteTOML(Default()) and the golden files under testdata")

const examplePath = "../../configs/dmarcd.toml"

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultValues(t *testing.T) {
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"spec", c.Spec, dmarc.RFC9989},
		{"authserv_id", c.AuthservID, ""},
		{"state_dir", c.StateDir, "/var/lib/dmarcd"},
		{"one listener", len(c.Listeners), 1},
		{"listener address", c.Listeners[0].Address.String(), "inet:8893@127.0.0.1"},
		{"listener mode", c.Listeners[0].Mode, ModeStrict},
		{"socket mode", c.Listeners[0].SocketMode.Perm(), os.FileMode(0o660)},
		{"max connections", c.Milter.MaxConnections, 1024},
		{"idle timeout", c.Milter.IdleTimeout.Duration(), 10 * time.Minute},
		{"write timeout", c.Milter.WriteTimeout.Duration(), 30 * time.Second},
		{"dns budget", c.Milter.DNSBudget.Duration(), 10 * time.Second},
		{"shutdown timeout", c.Milter.ShutdownTimeout.Duration(), 30 * time.Second},
		{"reject", c.Policy.Reject, RejectActionReject},
		{"quarantine", c.Policy.Quarantine, QuarantineHold},
		{"temperror", c.Policy.TempError, TempErrorAccept},
		{"permerror", c.Policy.PermError, PermErrorAccept},
		{"multiple_from", c.Policy.MultipleFrom, MultipleFromStrictest},
		{"missing_from", c.Policy.MissingFrom, MissingFromReject},
		{"missing_dkim_result", c.Policy.MissingDKIMResult, MissingDKIMFail},
		{"add_header", c.Policy.AddHeader, true},
		{"remove_forged_headers", c.Policy.RemoveForgedHeaders, true},
		{"ignore hosts", c.Ignore.Hosts, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}},
		{"ignore authenticated", c.Ignore.Authenticated, true},
		{"dns timeout", c.DNS.Timeout.Duration(), 2 * time.Second},
		{"dns attempts", c.DNS.Attempts, 2},
		{"dns cache size", c.DNS.CacheSize, 100000},
		{"dns max ttl", c.DNS.MaxTTL.Duration(), 24 * time.Hour},
		{"dns negative max ttl", c.DNS.NegativeMaxTTL.Duration(), time.Hour},
		{"log level", c.Log.Level, slog.LevelInfo},
		{"log format", c.Log.Format, LogText},
		{"no syslog", c.Log.Syslog, false},
		{"syslog facility", c.Log.SyslogFacility, "mail"},
		{"no user", c.User, ""},
		{"no umask", c.Umask, Umask{}},
		{"no history file", c.HistoryFile, ""},
		{"the built-in public suffix list", c.PublicSuffixList, ""},
		{"no software header", c.SoftwareHeader, false},
		{"authserv-id without job id", c.AuthservIDWithJobID, false},
		{"no copies of failures", c.CopyFailuresTo, ""},
		{"a 48 MiB heap target", c.HeapTarget, 48 * MiB},
		{"no header count check", c.Policy.RequiredHeaders, false},
		{"upstream SPF", c.SPF.UseUpstream, true},
		{"SPF self-check", c.SPF.SelfCheck, true},
		{"no DKIM self-verification", c.DKIM.SelfVerify, false},
		{"max message size", c.DKIM.MaxMessageSize, 32 * MiB},
		{"no trusted ARC sealers", c.ARC.TrustedSealers, []string(nil)},
		{"the embedded store", c.Store.Driver, DriverSQLite},
		{"a flush every second", c.Store.FlushInterval.Duration(), time.Second},
		{"reports off until the administrator decides", c.Reports.Enabled, false},
		{"reports at most hourly", c.Reports.IntervalFloor, IntervalHourly},
		{"reports at least daily", c.Reports.IntervalCeiling, IntervalDaily},
		{"RFC 7489 XML", c.Reports.Format, FormatRFC7489},
		{"25 MiB at most", c.Reports.MaxSize, 25 * MiB},
		{"the local relay", c.Reports.Relay.Address, "localhost:25"},
		{"90 days of data", c.Reports.ExpireAfter.Duration(), 90 * 24 * time.Hour},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestDefaultReturnsAFreshConfig(t *testing.T) {
	a := Default()
	a.Listeners[0].Mode = ModeDisable
	a.Ignore.Hosts[0] = netip.MustParsePrefix("192.0.2.0/24")
	if b := Default(); b.Listeners[0].Mode != ModeStrict || b.Ignore.Hosts[0].Bits() != 32 {
		t.Error("Default shares state between calls")
	}
}

func TestAnEmptyFileIsTheDefault(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "\n\n"} {
		c, err := Parse("empty.toml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("%q: got %+v", src, c)
		}
	}
}

func TestTablesOverlayDefaultsAndArraysReplaceThem(t *testing.T) {
	c, err := Parse("x.toml", []byte(`
[milter]
dns_budget = "5s"

[ignore]
hosts = ["192.0.2.0/24"]

[[listener]]
address = "unix:/run/dmarcd/dmarcd.sock"
socket_group = "postfix"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Milter.DNSBudget.Duration() != 5*time.Second || c.Milter.MaxConnections != 1024 {
		t.Errorf("milter: %+v", c.Milter)
	}
	if len(c.Ignore.Hosts) != 1 || c.Ignore.Hosts[0].String() != "192.0.2.0/24" {
		t.Errorf("hosts: %v", c.Ignore.Hosts)
	}
	want := Listener{Address: MustParseSocket("/run/dmarcd/dmarcd.sock"), Mode: ModeStrict, SocketGroup: "postfix", SocketMode: 0o660}
	if len(c.Listeners) != 1 || c.Listeners[0] != want {
		t.Errorf("listeners: %+v", c.Listeners)
	}
}

func TestEmptyArraysClearDefaults(t *testing.T) {
	c, err := Parse("x.toml", []byte("[ignore]\nhosts = []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ignore.Hosts != nil {
		t.Errorf("hosts: %v", c.Ignore.Hosts)
	}
}

func TestValidateNormalizes(t *testing.T) {
	c, err := Parse("x.toml", []byte(`
[ignore]
from_domains = ["Example.COM.", "*.Bücher.example"]
recipients = ["DMARC@Example.com", "@Reports.Example.com"]

[[override]]
domain = "Partner.Example"
policy = "none"
comment = "mailing list"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Ignore.FromDomains, []string{"example.com", "*.xn--bcher-kva.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("from_domains: %q, want %q", got, want)
	}
	if got, want := c.Ignore.Recipients, []string{"dmarc@example.com", "@reports.example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("recipients: %q, want %q", got, want)
	}
	if c.Overrides[0].Domain != "partner.example" || c.Overrides[0].Policy != dmarc.PolicyNone {
		t.Errorf("override: %+v", c.Overrides[0])
	}
}

func TestNameserverForms(t *testing.T) {
	for _, ns := range []string{"192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]:5353", "[2001:db8::53]"} {
		if err := checkNameserver(ns); err != nil {
			t.Errorf("%q: %v", ns, err)
		}
	}
	for _, ns := range []string{"", "dns.example", "192.0.2.53:", "192.0.2.53:0", "2001:db8::53:53:x", "192.0.2.53:domain"} {
		if err := checkNameserver(ns); err == nil {
			t.Errorf("%q accepted", ns)
		}
	}
}

func TestAByteOrderMarkIsAllowed(t *testing.T) {
	_, err := Parse("bom.toml", []byte("\uFEFF[milter]\nmax_conection = 1\n"))
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Line != 2 {
		t.Errorf("got %v", err)
	}
}

func TestParseReplySplitsTheParts(t *testing.T) {
	got, err := ParseReply(Default().Policy.RejectReply, '5')
	if err != nil || got != (Reply{550, "5.7.1", "rejected by DMARC policy for {domain}"}) {
		t.Errorf("got %+v, %v", got, err)
	}
}

func TestReplyLengthIsBounded(t *testing.T) {
	long := "550 5.7.1 " + strings.Repeat("x", 260) + " {domain}"
	if err := checkReply(long, '5'); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("got %v", err)
	}
	if err := checkReply("550 5.7.1 {domain}", '5'); err != nil {
		t.Errorf("one placeholder: %v", err)
	}
	// Twice the longest domain name does not fit in 510 bytes.
	if err := checkReply("550 5.7.1 {domain} {domain}", '5'); err == nil {
		t.Errorf("two placeholders accepted")
	}
}

// sample is a configuration with every kind of value set away from its
// default, for round trips.
func sample() *Config {
	c := Default()
	c.Spec = dmarc.RFC7489
	c.AuthservID = "mx.example.com"
	c.TrustedAuthservIDs = []string{"HOSTNAME", "relay.example.com"}
	c.StateDir = "/srv/dmarcd"
	c.PIDFile = "/run/dmarcd.pid"
	c.Listeners = []Listener{
		{Address: MustParseSocket("unix:/var/spool/postfix/dmarcd/dmarcd.sock"), Mode: ModeStrict, SocketOwner: "dmarcd", SocketGroup: "postfix", SocketMode: 0o660},
		{Address: MustParseSocket("inet6:8894@[::1]"), Mode: ModeRelaxed, SocketMode: 0o660},
		{Address: MustParseSocket("tcp://:8895"), Mode: ModeDisable, SocketMode: 0o600},
	}
	c.Milter = Milter{MaxConnections: 64, IdleTimeout: Duration(15 * time.Minute), WriteTimeout: Duration(1500 * time.Millisecond), DNSBudget: Duration(45 * time.Second), ShutdownTimeout: Duration(90 * time.Second)}
	c.Policy = Policy{
		Reject: RejectActionQuarantine, Quarantine: QuarantineHeader, TempError: TempErrorTempFail,
		PermError: PermErrorReject, MultipleFrom: MultipleFromFirst, MissingFrom: MissingFromAccept,
		MissingDKIMResult: MissingDKIMTempFail,
		RejectReply:       `554 5.7.1 "quoted" \ {domain} rejected`,
		TempFailReply:     "421 4.4.3 later, {domain}",
	}
	c.Ignore = Ignore{
		Hosts:           []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("203.0.113.0/25"), netip.MustParsePrefix("10.0.0.0/8")},
		FromDomains:     []string{"example.net", "*.lists.example.org"},
		MailFromDomains: []string{"bounces.example.com"},
		Recipients:      []string{"dmarc-reports@example.com", "@reports.example.org"},
	}
	c.Overrides = []Override{
		{Domain: "example.com", Policy: dmarc.PolicyNone, Comment: "partner mailing list, ünïcode and \"quotes\""},
		{Domain: "*.example.org", Policy: dmarc.PolicyReject},
	}
	c.DNS = DNS{Nameservers: []string{"192.0.2.53", "[2001:db8::53]:5353"}, Timeout: Duration(3 * time.Second), Attempts: 3, CacheSize: 1, MinTTL: Duration(time.Minute), MaxTTL: Duration(48 * time.Hour), NegativeMaxTTL: Duration(5 * time.Minute)}
	c.Log = Log{Level: slog.LevelDebug, Format: LogJSON, Syslog: true, SyslogFacility: "local3"}
	c.AuthservIDWithJobID = true
	c.User = "dmarcd:postfix"
	c.Umask = MakeUmask(0o027)
	c.PublicSuffixList = "/usr/share/publicsuffix/public_suffix_list.dat"
	c.HistoryFile = "/var/lib/dmarcd/history"
	c.RecordAllMessages = true
	c.SoftwareHeader = true
	c.CopyFailuresTo = "DMARC-Watch@example.com"
	c.Policy.RequiredHeaders = true
	c.Store = Store{Driver: DriverPostgres, DSNFile: "/etc/dmarcd/dsn", FlushInterval: Duration(2 * time.Second), FlushRows: 500, QueueSize: 20000}
	c.Reports = Reports{
		Enabled: true, OrgName: "Example Mail", FromName: "Example \"DMARC\" reports", FromAddress: "dmarc-reports@example.com",
		ContactEmail: "postmaster@example.com", ContactInfo: "https://example.com/dmarc", Submitter: "mx.example.com",
		IntervalFloor: IntervalDaily, IntervalCeiling: IntervalWeekly, CloseDelay: Duration(10 * time.Minute),
		MaxBacklog: Duration(3 * 24 * time.Hour), Format: FormatRFC9990, MaxSize: 10 * MiB, Spread: Duration(6 * time.Hour),
		RatePerDestination: Rate{N: 20, Per: Duration(time.Minute)}, RateGlobal: Rate{},
		Concurrency: 8, RetryBackoff: Duration(time.Minute), RetryBackoffMax: Duration(time.Hour), RetryMaxAge: Duration(48 * time.Hour),
		Suppress: []string{"noreports.example.net", "dmarc@example.org"}, SuppressAfter: 0, ExpireAfter: Duration(30 * 24 * time.Hour),
		Relay: Relay{Address: "smtp.example.com:587", StartTLS: StartTLSRequired, Username: "dmarcd", PasswordFile: "/etc/dmarcd/smtp-password",
			HeloName: "mx.example.com", Timeout: Duration(time.Minute)},
		DKIM:         ReportDKIM{Domain: "example.com", Selector: "rsa2026", Key: "/etc/dmarcd/dkim.pem", Ed25519Selector: "ed2026", Ed25519Key: "/etc/dmarcd/dkim-ed25519.pem"},
		Destinations: []ReportDestination{{Match: "dmarc.example.net", Format: FormatRFC7489}, {Match: "rua@example.org", Format: FormatRFC9990}},
	}
	c.SPF = SPF{UseUpstream: false, SelfCheck: false}
	c.DKIM = DKIM{SelfVerify: true, MaxMessageSize: 10 * 1000 * 1000}
	c.ARC = ARC{TrustedSealers: []string{"google.com", "lists.example.org"}}
	return c
}

func TestWriteTOMLRoundTrips(t *testing.T) {
	for name, c := range map[string]*Config{"default": Default(), "sample": sample()} {
		t.Run(name, func(t *testing.T) {
			if err := c.Validate(); err != nil {
				t.Fatalf("the config to write is invalid: %v", err)
			}
			var b bytes.Buffer
			if err := c.WriteTOML(&b); err != nil {
				t.Fatal(err)
			}
			got, err := Parse("written.toml", b.Bytes())
			if err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("round trip changed the config:\ngot  %+v\nwant %+v\n%s", got, c, b.String())
			}
		})
	}
}

func TestWriteTOMLRefusesInvalidEnums(t *testing.T) {
	c := Default()
	c.Policy.Reject = 42
	if err := c.WriteTOML(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "policy.reject") {
		t.Errorf("got %v", err)
	}
}

func TestWriteTOMLDocumentsOnlyTheFirstArrayElement(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "\n[[listener]]\n"); n != 3 {
		t.Errorf("%d [[listener]] headers", n)
	}
	if n := strings.Count(out, "# Permissions of a Unix socket"); n != 1 {
		t.Errorf("socket_mode documented %d times", n)
	}
	if strings.Contains(out, "# Example:") {
		t.Error("a commented-out example next to real overrides")
	}
}

func TestExampleConfigIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := Default().WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(examplePath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, b.Bytes()) {
		t.Errorf("%s differs from WriteTOML(Default()); run go test ./internal/config -run TestExampleConfigIsCurrent -update", examplePath)
	}
}

func TestExampleConfigLoadsAsTheDefault(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("%s is not the default configuration:\n%+v", examplePath, c)
	}
}

func TestExampleConfigHasEveryKey(t *testing.T) {
	file, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	// Uncomment the commented-out examples ("# [[override]]",
	// "# domain = ..."), then index the keys as Parse would.
	uncomment := regexp.MustCompile(`(?m)^# ((\[\[?[a-z_.]+\]\]?)|([a-z_]+ = .*))$`)
	ix := indexLines(uncomment.ReplaceAllString(string(file), "$1"))
	present := map[string]bool{}
	for k := range ix {
		present[genericKey(k)] = true
	}
	for _, k := range configKeys() {
		if !present[k] {
			t.Errorf("%s: key %q missing", examplePath, k)
		}
	}
	// And each key has a comment right above it.
	lines := strings.Split(string(file), "\n")
	first := map[string]int{}
	for k, n := range ix {
		g := genericKey(k)
		if first[g] == 0 || n < first[g] {
			first[g] = n
		}
	}
	walkKeys(reflect.TypeFor[Config](), "", func(k string, ft reflect.Type) {
		if n := first[k]; !isTable(ft) && n >= 2 && !strings.HasPrefix(lines[n-2], "# ") {
			t.Errorf("%s:%d: %s has no comment above it", examplePath, n, k)
		}
	})
}

func TestDocsCoverConfig(t *testing.T) {
	keys := map[string]bool{}
	for _, k := range configKeys() {
		keys[k] = true
		if _, ok := docs[k]; !ok {
			t.Errorf("no documentation for %q", k)
		}
	}
	for k := range docs {
		if !keys[k] {
			t.Errorf("documentation for %q, which is not a key", k)
		}
	}
	for k := range examples {
		if !keys[k] {
			t.Errorf("example for %q, which is not a key", k)
		}
	}
}

func TestEveryFieldHasATOMLKey(t *testing.T) {
	var check func(t reflect.Type)
	check = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if tomlName(f) == "" {
				t.Errorf("%s.%s has no toml tag", rt.Name(), f.Name)
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !isScalar(ft) {
				check(ft)
			}
		}
	}
	check(reflect.TypeFor[Config]())
}

// FuzzParse checks that Parse never panics, that every error has a line
// within the document, and that whatever it accepts WriteTOML writes back
// to the same Config.
func FuzzParse(f *testing.F) {
	for _, tc := range errorCases {
		f.Add(strings.TrimPrefix(tc.toml, "\n"))
	}
	var b bytes.Buffer
	if err := sample().WriteTOML(&b); err != nil {
		f.Fatal(err)
	}
	f.Add(b.String())
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse("fuzz.toml", []byte(src))
		if err != nil {
			lines := strings.Count(src, "\n") + 1
			for _, e := range err.(Errors) {
				if e.Line < 0 || e.Line > lines {
					t.Fatalf("line %d of %d: %v", e.Line, lines, e)
				}
			}
			return
		}
		var out bytes.Buffer
		if err := c.WriteTOML(&out); err != nil {
			t.Fatalf("WriteTOML: %v", err)
		}
		again, err := Parse("again.toml", out.Bytes())
		if err != nil {
			t.Fatalf("written config does not parse: %v\n%s", err, out.String())
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", again, c)
		}
	})
}

// TestREADMEDocumentsEveryKey keeps the user's manual in step with the
// configuration: every key has a row in the README's reference table.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	arrays := map[string]bool{} // arrays of tables, written [[name]] key
	walkKeys(reflect.TypeFor[Config](), "", func(k string, ft reflect.Type) {
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !isScalar(ft.Elem()) {
			arrays[k] = true
			return
		}
		if ft.Kind() == reflect.Struct && !isScalar(ft) {
			return // a table, documented by its keys
		}
		row := "| `" + k + "` |"
		if i := strings.LastIndexByte(k, '.'); i >= 0 && arrays[k[:i]] {
			row = "| `[[" + k[:i] + "]] " + k[i+1:] + "` |"
		}
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row %s", row)
		}
	})
}
