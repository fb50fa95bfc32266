package config

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
)

const odTestdata = "testdata/opendmarc"

// testReadFile reads the files the test documents name under
// /etc/opendmarc from testdata/opendmarc.
func testReadFile(p string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(p, "/etc/opendmarc/"); ok {
		return os.ReadFile(filepath.Join(odTestdata, rest))
	}
	return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
}

// parseOD parses lines of opendmarc.conf with the test file reader.
func parseOD(lines ...string) (*Config, []Warning, error) {
	return parseOpenDMARC("opendmarc.conf", []byte(strings.Join(lines, "\n")+"\n"), testReadFile)
}

func TestOpenDMARCGolden(t *testing.T) {
	for _, name := range []string{"debian", "every-key"} {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join(odTestdata, name+".conf")
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			c, ws, err := parseOpenDMARC(name+".conf", data, testReadFile)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := c.WriteConverted(&b, name+".conf", FormatOpenDMARC, ws); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(odTestdata, name+".toml")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("conversion of %s differs from %s; run go test ./internal/config -run TestOpenDMARCGolden -update and review the diff", in, golden)
			}
			// The output reads back to the converted configuration.
			back, err := Parse(golden, b.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, c) {
				t.Errorf("%s reads back differently:\n%+v\n%+v", golden, back, c)
			}
		})
	}
}

func TestTheDebianConfigurationConvertsWithoutWarnings(t *testing.T) {
	c, ws, err := LoadOpenDMARC(filepath.Join(odTestdata, "debian.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 0 {
		t.Errorf("warnings: %v", ws)
	}
	l := c.Listeners[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"the socket", l.Address.String(), "unix:/run/opendmarc/opendmarc.sock"},
		{"a relaxed listener, since RejectFailures is off", l.Mode, ModeRelaxed},
		{"the socket mode UMask 0002 gives", l.SocketMode, FileMode(0o775)},
		{"the umask", c.Umask.String(), "0002"},
		{"the user", c.User, "opendmarc"},
		{"the PID file", c.PIDFile, "/run/opendmarc/opendmarc.pid"},
		{"the public suffix list", c.PublicSuffixList, "/usr/share/publicsuffix/public_suffix_list.dat"},
		{"syslog", c.Log.Syslog, true},
		{"RFC 7489", c.Spec, dmarc.RFC7489},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestAnEmptyOpenDMARCFileHasOpenDMARCsDefaults(t *testing.T) {
	c, ws, err := parseOD("# nothing but a comment")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"RFC 7489", c.Spec, dmarc.RFC7489},
		{"the default listener, since OpenDMARC has no default Socket", c.Listeners[0].Address.String(), "inet:8893@127.0.0.1"},
		{"RejectFailures off is a relaxed listener", c.Listeners[0].Mode, ModeRelaxed},
		{"HoldQuarantinedMessages off delivers quarantined mail", c.Policy.Quarantine, QuarantineHeader},
		{"mail without From is accepted without RequiredHeaders", c.Policy.MissingFrom, MissingFromAccept},
		{"RFC 5322 header counts are not checked", c.Policy.RequiredHeaders, false},
		{"several From domains are all evaluated", c.Policy.MultipleFrom, MultipleFromStrictest},
		{"authenticated clients are evaluated", c.Ignore.Authenticated, false},
		{"the loopback addresses are ignored", c.Ignore.Hosts, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}},
		{"upstream SPF results are read", c.SPF.UseUpstream, true},
		{"SPF is not checked here", c.SPF.SelfCheck, false},
		{"the reject reply is OpenDMARC's", c.Policy.RejectReply, "550 5.7.1 rejected by DMARC policy for {domain}"},
		{"temperror accepts", c.Policy.TempError, TempErrorAccept},
		{"our own authserv-id alone is trusted", c.TrustedAuthservIDs, []string(nil)},
		{"syslog is off", c.Log.Syslog, false},
		{"the syslog facility is mail", c.Log.SyslogFacility, "mail"},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if len(ws) != 1 || ws[0].Key != "Socket" || !strings.Contains(ws[0].Message, "inet:8893@127.0.0.1") {
		t.Errorf("want one warning about the missing Socket, got %v", ws)
	}
}

func TestOpenDMARCValues(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		got   func(c *Config) any
		want  any
	}{
		{"yes is true", []string{"RejectFailures Yes"}, mode, ModeStrict},
		{"1 is true", []string{"RejectFailures 1"}, mode, ModeStrict},
		{"only the first byte of a boolean counts", []string{"RejectFailures tralala"}, mode, ModeStrict},
		{"no is false", []string{"RejectFailures No"}, mode, ModeRelaxed},
		{"0 is false", []string{"RejectFailures 0"}, mode, ModeRelaxed},
		{"keys are case-insensitive", []string{"rejectfailures TRUE"}, mode, ModeStrict},
		{"OpenDMARC's own spelling Userid is UserID", []string{"Userid opendmarc"}, func(c *Config) any { return c.User }, "opendmarc"},
		{"a comment after the value is cut off", []string{"RejectFailures false # true"}, mode, ModeRelaxed},
		{"tabs separate key and value", []string{"\tRejectFailures\t\ttrue\t"}, mode, ModeStrict},
		{"CRLF line ends are read", []string{"RejectFailures true\r", "PidFile /run/x.pid\r"}, func(c *Config) any { return c.PIDFile }, "/run/x.pid"},
		{"the last of a repeated key counts", []string{"RejectFailures true", "RejectFailures false"}, mode, ModeRelaxed},
		{"RejectFailures applies without a Socket too", []string{"RejectFailures true"}, func(c *Config) any { return c.Listeners[0].Address.String() }, "inet:8893@127.0.0.1"},
		{"a TCP socket with a host name keeps the name", []string{"Socket inet:8893@localhost"}, func(c *Config) any { return c.Listeners[0].Address.Address() }, "localhost:8893"},
		{"a TCP socket with a bracketed address", []string{"Socket inet:12345@[192.0.2.1]"}, func(c *Config) any { return c.Listeners[0].Address.String() }, "inet:12345@192.0.2.1"},
		{"a TCP socket on all interfaces", []string{"Socket inet:54321"}, func(c *Config) any { return c.Listeners[0].Address.String() }, "inet:54321"},
		{"an IPv6 socket", []string{"Socket inet6:8893@[::1]"}, func(c *Config) any { return c.Listeners[0].Address.String() }, "inet6:8893@[::1]"},
		{"UMask does not change the mode of a TCP socket", []string{"UMask 077", "Socket inet:8893@127.0.0.1"}, func(c *Config) any { return c.Listeners[0].SocketMode }, FileMode(0o660)},
		{"UMask gives the mode of a Unix socket", []string{"UMask 027", "Socket local:/run/x.sock"}, func(c *Config) any { return c.Listeners[0].SocketMode }, FileMode(0o750)},
		{"UMask is read as strtol does: decimal without a leading 0", []string{"UMask 18"}, func(c *Config) any { return c.Umask.String() }, "0022"},
		{"UMask in hexadecimal", []string{"UMask 0x12"}, func(c *Config) any { return c.Umask.String() }, "0022"},
		{"HoldQuarantinedMessages holds", []string{"HoldQuarantinedMessages true"}, func(c *Config) any { return c.Policy.Quarantine }, QuarantineHold},
		{"RejectMultiValueFrom rejects", []string{"RejectMultiValueFrom true"}, func(c *Config) any { return c.Policy.MultipleFrom }, MultipleFromReject},
		{"RequiredFrom rejects mail without From", []string{"RequiredFrom true"}, func(c *Config) any { return c.Policy.MissingFrom }, MissingFromReject},
		{"RequiredFrom leaves the header counts alone", []string{"RequiredFrom true"}, func(c *Config) any { return c.Policy.RequiredHeaders }, false},
		{"RequiredHeaders rejects mail without From", []string{"RequiredHeaders true"}, func(c *Config) any { return c.Policy.MissingFrom }, MissingFromReject},
		{"RequiredHeaders checks the header counts", []string{"RequiredHeaders true"}, func(c *Config) any { return c.Policy.RequiredHeaders }, true},
		{"RejectString's %s is the From domain", []string{"RejectString Mail from %s is refused"}, reply, "550 5.7.1 Mail from {domain} is refused"},
		{"RejectString without %s is used as written", []string{"RejectString 100% refused"}, reply, "550 5.7.1 100% refused"},
		{"RejectString's %% is one %", []string{"RejectString %s: 100%% refused"}, reply, "550 5.7.1 {domain}: 100% refused"},
		{"IgnoreMailFrom is a comma-separated list", []string{"IgnoreMailFrom Example.com,example.net , lists.example.org"}, func(c *Config) any { return c.Ignore.FromDomains }, []string{"example.com", "example.net", "lists.example.org"}},
		{"IgnoreMailTo is a list of recipients", []string{"IgnoreMailTo Reports@Example.com"}, func(c *Config) any { return c.Ignore.Recipients }, []string{"reports@example.com"}},
		{"IgnoreAuthenticatedClients", []string{"IgnoreAuthenticatedClients yes"}, func(c *Config) any { return c.Ignore.Authenticated }, true},
		{"TrustedAuthservIDs without AuthservID is the list", []string{"TrustedAuthservIDs a.example, b.example"}, trusted, []string{"a.example", "b.example"}},
		{"TrustedAuthservIDs gets AuthservID added", []string{"AuthservID mx.example", "TrustedAuthservIDs dkim.example"}, trusted, []string{"dkim.example", "mx.example"}},
		{"TrustedAuthservIDs that has AuthservID is kept", []string{"AuthservID MX.example", "TrustedAuthservIDs dkim.example,mx.example"}, trusted, []string{"dkim.example", "mx.example"}},
		{"AuthservID HOSTNAME is kept for dmarcd to resolve", []string{"AuthservID HOSTNAME"}, func(c *Config) any { return c.AuthservID }, "HOSTNAME"},
		{"SPFIgnoreResults stops reading upstream SPF", []string{"SPFIgnoreResults true", "SPFSelfValidate true"}, func(c *Config) any { return c.SPF }, SPF{UseUpstream: false, SelfCheck: true}},
		{"SPFSelfValidate alone checks when upstream has nothing", []string{"SPFSelfValidate true"}, func(c *Config) any { return c.SPF }, SPF{UseUpstream: true, SelfCheck: true}},
		{"DNSTimeout is in seconds", []string{"DNSTimeout 3"}, func(c *Config) any { return c.DNS.Timeout.Duration() }, 3 * time.Second},
		{"DNSTimeout longer than the DNS budget is cut to it", []string{"DNSTimeout 30"}, func(c *Config) any { return c.DNS.Timeout.Duration() }, 10 * time.Second},
		{"DNSTimeout 0 keeps dmarcd's timeout", []string{"DNSTimeout 0"}, func(c *Config) any { return c.DNS.Timeout.Duration() }, 2 * time.Second},
		{"CopyFailuresTo loses its angle brackets", []string{"CopyFailuresTo <Copies@Example.COM>"}, func(c *Config) any { return c.CopyFailuresTo }, "Copies@example.com"},
		{"SyslogFacility is read without regard to case", []string{"SyslogFacility LOCAL0"}, func(c *Config) any { return c.Log.SyslogFacility }, "local0"},
		{"DMARCSpec chooses RFC 9989", []string{"DMARCSpec rfc9989"}, func(c *Config) any { return c.Spec }, dmarc.RFC9989},
		{"relative paths are read from BaseDirectory", []string{"BaseDirectory /var/lib/opendmarc", "HistoryFile opendmarc.dat"}, func(c *Config) any { return c.HistoryFile }, "/var/lib/opendmarc/opendmarc.dat"},
		{"DomainWhitelist and its file are merged without duplicates", []string{"DomainWhitelist google.com,Example.ORG", "DomainWhitelistFile /etc/opendmarc/sealers.txt"}, func(c *Config) any { return c.ARC.TrustedSealers }, []string{"google.com", "example.org", "microsoft.com"}},
		{"DomainWhitelistFile alone", []string{"DomainWhitelistFile /etc/opendmarc/sealers.txt"}, func(c *Config) any { return c.ARC.TrustedSealers }, []string{"google.com", "microsoft.com"}},
		{"IgnoreHosts replaces the default, subtracting exclusions", []string{"IgnoreHosts /etc/opendmarc/ignore.hosts"}, hosts, []string{
			"127.0.0.1/32", "::1/128", "192.0.2.0/25", "10.0.0.0/16", "10.2.0.0/15", "10.4.0.0/14", "10.8.0.0/13",
			"10.16.0.0/12", "10.32.0.0/11", "10.64.0.0/10", "10.128.0.0/9", "10.1.2.0/24", "2001:db8::/32",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := parseOD(tc.lines...)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.got(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func mode(c *Config) any    { return c.Listeners[0].Mode }
func reply(c *Config) any   { return c.Policy.RejectReply }
func trusted(c *Config) any { return c.TrustedAuthservIDs }
func hosts(c *Config) any {
	var out []string
	for _, p := range c.Ignore.Hosts {
		out = append(out, p.String())
	}
	return out
}

func TestOpenDMARCErrors(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		file  string // "" is opendmarc.conf
		line  int
		key   string
		msg   string
	}{
		{"a boolean that is not one", []string{"# x", "RejectFailures maybe"}, "", 2, "RejectFailures", `"maybe" is not a boolean`},
		{"a boolean of a key dmarcd ignores is still checked, as OpenDMARC does", []string{"Background sure"}, "", 1, "Background", `"sure" is not a boolean`},
		{"an integer with a unit", []string{"DNSTimeout 5s"}, "", 1, "DNSTimeout", `"5s" is not an integer`},
		{"an octal integer with a digit 8", []string{"UMask 008"}, "", 1, "UMask", `"008" is not an integer`},
		{"a key without a value", []string{"PidFile"}, "", 1, "PidFile", "missing value"},
		{"a key with only a comment after it", []string{"PidFile   # none"}, "", 1, "PidFile", "missing value"},
		{"a socket of an unknown type", []string{"Socket udp:8893"}, "", 1, "Socket", `unknown socket type "udp"`},
		{"a relative socket path", []string{"Socket local:opendmarc.sock"}, "", 1, "Socket", "must be absolute"},
		{"a relative PID file without BaseDirectory", []string{"PidFile opendmarc.pid"}, "", 1, "PidFile", "relative path"},
		{"a relative BaseDirectory", []string{"BaseDirectory var/opendmarc"}, "", 1, "BaseDirectory", "not an absolute path"},
		{"a umask beyond the permission bits", []string{"UMask 01000"}, "", 1, "UMask", "not a file mode mask"},
		{"a negative DNS timeout", []string{"DNSTimeout -1"}, "", 1, "DNSTimeout", "negative"},
		{"RejectString with two %s", []string{"RejectString %s rejected %s"}, "", 1, "RejectString", "more than one %s"},
		{"RejectString with another conversion", []string{"RejectString %s rejected %d times"}, "", 1, "RejectString", "only %s"},
		{"RejectString too long for an SMTP reply", []string{"RejectString %s " + strings.Repeat("x", 300)}, "", 1, "RejectString", "too long"},
		{"a user with an empty group", []string{"UserID opendmarc:"}, "", 1, "UserID", "empty group"},
		{"an unknown syslog facility suggests the right one", []string{"SyslogFacility maill"}, "", 1, "SyslogFacility", `(did you mean "mail"?)`},
		{"an invalid domain to ignore", []string{"IgnoreMailFrom example.com, exa mple..com"}, "", 1, "IgnoreMailFrom", "invalid domain"},
		{"an address where domains belong", []string{"IgnoreMailFrom user@example.com"}, "", 1, "IgnoreMailFrom", "invalid domain"},
		{"a recipient that is no address", []string{"IgnoreMailTo example.com"}, "", 1, "IgnoreMailTo", `(did you mean "@example.com"?)`},
		{"a copy address without a domain", []string{"CopyFailuresTo postmaster"}, "", 1, "CopyFailuresTo", "not an address"},
		{"an authserv-id with a slash", []string{"AuthservID mx/1"}, "", 1, "AuthservID", "one token"},
		{"an unknown DMARCSpec", []string{"DMARCSpec rfc1234"}, "", 1, "DMARCSpec", "unknown DMARC spec"},
		{"an IgnoreHosts file that does not exist", []string{"IgnoreHosts /etc/opendmarc/missing"}, "", 1, "IgnoreHosts", "cannot read the list"},
		{"a bad entry in the IgnoreHosts file is reported at its line", []string{"IgnoreHosts /etc/opendmarc/bad.hosts"}, "/etc/opendmarc/bad.hosts", 3, "IgnoreHosts", `"192.0.2.300" is not an IP address, CIDR or host name`},
		{"a CIDR with host bits set in the IgnoreHosts file", []string{"IgnoreHosts /etc/opendmarc/hostbits.hosts"}, "/etc/opendmarc/hostbits.hosts", 1, "IgnoreHosts", `(did you mean "10.0.0.0/8"?)`},
		{"a bad domain in the DomainWhitelistFile", []string{"DomainWhitelistFile /etc/opendmarc/bad.domains"}, "/etc/opendmarc/bad.domains", 2, "DomainWhitelistFile", "invalid domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := parseOD(tc.lines...)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if c != nil {
				t.Error("a Config returned with the error")
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("want one error in Errors, got %v", err)
			}
			e, file := es[0], tc.file
			if file == "" {
				file = "opendmarc.conf"
			}
			if e.File != file || e.Line != tc.line || e.Key != tc.key {
				t.Errorf("got %s:%d key %q, want %s:%d key %q: %v", e.File, e.Line, e.Key, file, tc.line, tc.key, e)
			}
			if !strings.Contains(e.Error(), tc.msg) {
				t.Errorf("%q does not contain %q", e.Error(), tc.msg)
			}
			if prefix := file + ":" + strconv.Itoa(tc.line) + ": " + tc.key + ": "; !strings.HasPrefix(e.Error(), prefix) {
				t.Errorf("%q does not start with %q", e.Error(), prefix)
			}
		})
	}
}

func TestEveryOpenDMARCProblemIsReportedInFileOrder(t *testing.T) {
	_, _, err := parseOD("SyslogFacility nope", "Socket nope", "RejectFailures bogus", "UMask nope")
	var es Errors
	if !errors.As(err, &es) {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Key+"@"+strconv.Itoa(e.Line))
	}
	if want := []string{"SyslogFacility@1", "Socket@2", "RejectFailures@3", "UMask@4"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestOpenDMARCWarnings(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		line  int
		key   string
		msg   string // "" means no warning at all (beyond the missing Socket)
	}{
		{"an unknown key suggests a known one", []string{"Socket inet:8893@127.0.0.1", "RejectFailure true"}, 2, "RejectFailure", `unknown key, ignored (did you mean "RejectFailures"?)`},
		{"a repeated key", []string{"Socket inet:1@127.0.0.1", "Socket inet:2@127.0.0.1"}, 2, "Socket", "given again (first at line 1)"},
		{"AutoRestart is systemd's job", []string{"Socket inet:1@127.0.0.1", "AutoRestart true"}, 2, "AutoRestart", "Restart=on-failure"},
		{"Background is meaningless", []string{"Socket inet:1@127.0.0.1", "Background false"}, 2, "Background", "never forks"},
		{"ChangeRootDirectory is systemd's job", []string{"Socket inet:1@127.0.0.1", "ChangeRootDirectory /var/empty"}, 2, "ChangeRootDirectory", "RootDirectory="},
		{"failure reports without a sender address stay off", []string{"Socket inet:1@127.0.0.1", "FailureReports true"}, 2, "FailureReports", "FailureReportsSentBy"},
		{"failure reports turned off need no warning", []string{"Socket inet:1@127.0.0.1", "FailureReports false"}, 0, "", ""},
		{"NoReportsList is read without a warning", []string{"Socket inet:1@127.0.0.1", "NoReportsList /etc/opendmarc/noreports"}, 0, "", ""},
		{"TestDNSData is for OpenDMARC's tests", []string{"Socket inet:1@127.0.0.1", "TestDNSData /tmp/dns"}, 2, "TestDNSData", "dns.nameservers"},
		{"DomainWhitelistSize needs no limit", []string{"Socket inet:1@127.0.0.1", "DomainWhitelistSize 10"}, 2, "DomainWhitelistSize", "no fixed capacity"},
		{"IgnoreMailTo passes mail unevaluated", []string{"Socket inet:1@127.0.0.1", "IgnoreMailTo dmarc@example.com"}, 2, "IgnoreMailTo", "without evaluating them"},
		{"a list separated by spaces", []string{"Socket inet:1@127.0.0.1", "IgnoreMailFrom a.example b.example"}, 2, "IgnoreMailFrom", "only the first word"},
		{"a decimal UMask", []string{"Socket inet:1@127.0.0.1", "UMask 22"}, 2, "UMask", "means 0026"},
		{"AuthservID added to TrustedAuthservIDs", []string{"Socket inet:1@127.0.0.1", "AuthservID mx.example", "TrustedAuthservIDs dkim.example"}, 3, "TrustedAuthservIDs", "AuthservID mx.example added"},
		{"no SPF at all", []string{"Socket inet:1@127.0.0.1", "SPFIgnoreResults true"}, 2, "SPFIgnoreResults", "DKIM alone"},
		{"DNSTimeout 0", []string{"Socket inet:1@127.0.0.1", "DNSTimeout 0"}, 2, "DNSTimeout", "wait forever"},
		{"a public suffix list under RFC 9989", []string{"Socket inet:1@127.0.0.1", "DMARCSpec rfc9989", "PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat"}, 3, "PublicSuffixList", "unused"},
		{"the Debian basics need no warning", []string{"Socket local:/run/opendmarc/opendmarc.sock", "UserID opendmarc", "UMask 0002", "Syslog true"}, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ws, err := parseOD(tc.lines...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.msg == "" {
				if len(ws) != 0 {
					t.Errorf("unexpected warnings: %v", ws)
				}
				return
			}
			if len(ws) != 1 {
				t.Fatalf("want one warning, got %q", ws)
			}
			w := ws[0]
			if w.File != "opendmarc.conf" || w.Line != tc.line || w.Key != tc.key || !strings.Contains(w.Message, tc.msg) {
				t.Errorf("got %q, want opendmarc.conf:%d: %s: ...%s...", w, tc.line, tc.key, tc.msg)
			}
		})
	}
}

func TestNoReportsListBecomesTheSuppressionList(t *testing.T) {
	c, _, err := parseOD("Socket inet:1@127.0.0.1", "NoReportsList /etc/opendmarc/noreports")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"noreports.example.net", "dmarc@example.org", "rua@noreports.example.net"}
	if !slices.Equal(c.Reports.Suppress, want) {
		t.Errorf("reports.suppress = %q, want %q", c.Reports.Suppress, want)
	}
	if c.Reports.Enabled {
		t.Error("an opendmarc.conf turned reports on: OpenDMARC never sent them itself")
	}
	t.Run("a bad entry is an error at its line", func(t *testing.T) {
		_, _, err := parseOD("Socket inet:1@127.0.0.1", "NoReportsList /etc/opendmarc/bad.noreports")
		var es Errors
		if !errors.As(err, &es) || es[0].File != "/etc/opendmarc/bad.noreports" || es[0].Key != "NoReportsList" {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a missing file is an error", func(t *testing.T) {
		if _, _, err := parseOD("Socket inet:1@127.0.0.1", "NoReportsList /etc/opendmarc/missing"); err == nil || !strings.Contains(err.Error(), "cannot read") {
			t.Errorf("got %v", err)
		}
	})
}

func TestIgnoreHostsWarnsAboutNamesAtTheirLines(t *testing.T) {
	_, ws, err := parseOD("Socket inet:1@127.0.0.1", "IgnoreHosts /etc/opendmarc/ignore.hosts")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.String())
	}
	want := []string{
		"/etc/opendmarc/ignore.hosts:4: IgnoreHosts: localhost read as 127.0.0.1 and ::1: dmarcd matches client addresses, not names",
		"/etc/opendmarc/ignore.hosts:11: IgnoreHosts: mail.example.com left out: dmarcd matches the client's IP address, not its host name; list the host's addresses instead",
		"/etc/opendmarc/ignore.hosts:12: IgnoreHosts: .relay.example.net left out: dmarcd matches the client's IP address, not its host name; list the host's addresses instead",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// odKeys14 are the keys of OpenDMARC 1.4.2's opendmarc-config.h and those
// its development branch added in 2026.
var odKeys14 = []string{
	"AuthservID", "AuthservIDWithJobID", "AutoRestart", "AutoRestartCount", "AutoRestartRate", "Background",
	"BaseDirectory", "ChangeRootDirectory", "CopyFailuresTo", "DNSTimeout", "DomainWhitelist",
	"DomainWhitelistFile", "DomainWhitelistSize", "EnableCoredumps", "FailureReports", "FailureReportsBcc",
	"FailureReportsOnNone", "FailureReportsSentBy", "HistoryFile", "HoldQuarantinedMessages",
	"IgnoreAuthenticatedClients", "IgnoreHosts", "IgnoreMailFrom", "MilterDebug", "PidFile",
	"PublicSuffixList", "RecordAllMessages", "RequiredHeaders", "RejectFailures", "RejectMultiValueFrom",
	"ReportCommand", "Socket", "SoftwareHeader", "SPFIgnoreResults", "SPFSelfValidate", "Syslog",
	"SyslogFacility", "TestDNSData", "TrustedAuthservIDs", "UMask", "Userid",
	// 2026
	"IgnoreMailTo", "NoReportsList", "RejectString", "RequiredFrom",
}

func TestEveryOpenDMARCKeyIsHandled(t *testing.T) {
	keys := slices.Clone(odKeys14)
	// The installed manual, when there is one, may know more.
	if f, err := os.Open("/usr/share/man/man5/opendmarc.conf.5.gz"); err == nil {
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		man, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]odType{"string": odString, "Boolean": odBool, "integer": odInt}
		for _, m := range regexp.MustCompile(`(?m)^\.I ([A-Za-z]+) \((\w+)\)`).FindAllSubmatch(man, -1) {
			k := string(m[1])
			keys = append(keys, k)
			if def := odKeyIndex[strings.ToLower(k)]; def != nil && def.typ != types[string(m[2])] {
				t.Errorf("%s is %s in the manual, not type %d", k, m[2], def.typ)
			}
		}
	}
	for _, k := range keys {
		def := odKeyIndex[strings.ToLower(k)]
		if def == nil {
			t.Errorf("%s is not handled", k)
			continue
		}
		value := map[odType]string{odString: "/etc/opendmarc/x", odBool: "true", odInt: "1"}[def.typ]
		switch k {
		case "Socket":
			value = "inet:1@127.0.0.1"
		case "AuthservID", "TrustedAuthservIDs", "IgnoreMailFrom", "DomainWhitelist":
			value = "example.com"
		case "IgnoreMailTo", "CopyFailuresTo", "FailureReportsBcc", "FailureReportsSentBy":
			value = "a@example.com"
		case "UserID", "Userid":
			value = "opendmarc"
		case "SyslogFacility":
			value = "mail"
		case "DMARCSpec":
			value = "rfc7489"
		case "RejectString":
			value = "no"
		case "IgnoreHosts":
			value = "/etc/opendmarc/ignore.hosts"
		case "DomainWhitelistFile":
			value = "/etc/opendmarc/sealers.txt"
		case "NoReportsList":
			value = "/etc/opendmarc/noreports"
		case "BaseDirectory":
			value = "/etc/opendmarc"
		}
		if _, _, err := parseOD("Socket inet:1@127.0.0.1", k+" "+value); err != nil {
			t.Errorf("%s %s: %v", k, value, err)
		}
	}
}

func TestSubtractPrefixes(t *testing.T) {
	tests := []struct {
		name     string
		pos, neg []string
		want     []string
	}{
		{"nothing excluded", []string{"192.0.2.0/24"}, nil, []string{"192.0.2.0/24"}},
		{"one address out of a /30", []string{"192.0.2.0/30"}, []string{"192.0.2.1/32"}, []string{"192.0.2.0/32", "192.0.2.2/31"}},
		{"an exclusion equal to the range wins the tie", []string{"192.0.2.0/24"}, []string{"192.0.2.0/24"}, nil},
		{"a wider exclusion loses to a narrower range", []string{"10.1.0.0/16"}, []string{"10.0.0.0/8"}, []string{"10.1.0.0/16"}},
		{"a range inside an exclusion inside a range comes back", []string{"10.0.0.0/8", "10.1.2.0/24"}, []string{"10.1.0.0/16"}, []string{
			"10.0.0.0/16", "10.2.0.0/15", "10.4.0.0/14", "10.8.0.0/13", "10.16.0.0/12", "10.32.0.0/11", "10.64.0.0/10", "10.128.0.0/9", "10.1.2.0/24"}},
		{"an exclusion of another family does nothing", []string{"192.0.2.0/24"}, []string{"2001:db8::/32"}, []string{"192.0.2.0/24"}},
		{"IPv6", []string{"2001:db8::/32"}, []string{"2001:db8:8000::/33"}, []string{"2001:db8::/33"}},
		{"duplicates and covered ranges go", []string{"192.0.2.0/24", "192.0.2.7", "192.0.2.0/24"}, nil, []string{"192.0.2.0/24"}},
	}
	pfx := func(ss []string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			p, err := ParsePrefix(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := subtractPrefixes(pfx(tc.pos), pfx(tc.neg))
			var s []string
			for _, p := range got {
				s = append(s, p.String())
			}
			if !slices.Equal(s, tc.want) {
				t.Errorf("got %v, want %v", s, tc.want)
			}
		})
	}
}

func TestParseODHost(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1/32",
		"192.0.2.0/24":            "192.0.2.0/24",
		"192.0.2.0/255.255.255.0": "192.0.2.0/24",
		"0.0.0.0/0.0.0.0":         "0.0.0.0/0",
		"2001:DB8::1":             "2001:db8::1/128",
		"2001:db8::/32":           "2001:db8::/32",
	} {
		p, err := parseODHost(in)
		if err != nil || p.String() != want {
			t.Errorf("parseODHost(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"192.0.2.0/255.0.255.0", "192.0.2.1/24", "192.0.2.0/33", "2001:db8::/255.255.0.0", "fe80::1%eth0", "host"} {
		if p, err := parseODHost(bad); err == nil {
			t.Errorf("parseODHost(%q) = %v", bad, p)
		}
	}
}

func TestParseODInt(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "7": 7, "007": 7, "0002": 2, "022": 18, "22": 22, "0x1F": 31, "-3": -3, "+4": 4} {
		if got, err := parseODInt(in); err != nil || got != want {
			t.Errorf("parseODInt(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"5s", "08", "0x", "1_000", "--1", "1.5", "99999999999"} {
		if got, err := parseODInt(bad); err == nil {
			t.Errorf("parseODInt(%q) = %d", bad, got)
		}
	}
}

func TestLoadOpenDMARCNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "opendmarc.conf")
	if err := os.WriteFile(p, []byte("Socket inet:8893@127.0.0.1\nRejectFailures perhaps\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOpenDMARC(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":2: RejectFailures: ") {
		t.Errorf("got %v", err)
	}
	if _, _, err := LoadOpenDMARC(p + ".missing"); err == nil {
		t.Error("a missing file loaded")
	}
}

// FuzzParseOpenDMARC checks that ParseOpenDMARC never panics, that errors
// and warnings have lines within the document, and that what it accepts
// is valid and survives WriteTOML.
func FuzzParseOpenDMARC(f *testing.F) {
	for _, name := range []string{"debian.conf", "every-key.conf"} {
		data, err := os.ReadFile(filepath.Join(odTestdata, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add("RejectString %s %% %d\nUMask 0x1ff\nSocket inet6:1@[::1]\n")
	f.Fuzz(func(t *testing.T, src string) {
		lines := strings.Count(src, "\n") + 1
		c, ws, err := parseOpenDMARC("fuzz.conf", []byte(src), testReadFile)
		for _, w := range ws {
			if w.File == "fuzz.conf" && (w.Line < 0 || w.Line > lines) {
				t.Fatalf("warning line %d of %d: %v", w.Line, lines, w)
			}
		}
		if err != nil {
			for _, e := range err.(Errors) {
				if e.File == "fuzz.conf" && (e.Line < 0 || e.Line > lines) {
					t.Fatalf("error line %d of %d: %v", e.Line, lines, e)
				}
			}
			return
		}
		var out bytes.Buffer
		if err := c.WriteConverted(&out, "fuzz.conf", FormatOpenDMARC, ws); err != nil {
			t.Fatalf("WriteConverted: %v", err)
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

func TestOpenDMARCFailureReportKeysAreMapped(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  FailureReports
	}{
		{"failure reports with a sender are enabled", []string{"Socket inet:1@127.0.0.1", "FailureReports true",
			"FailureReportsSentBy <dmarc@example.com>", "FailureReportsBcc postmaster@example.com", "FailureReportsOnNone true"},
			FailureReports{Enabled: true, FromAddress: "dmarc@example.com", Bcc: "postmaster@example.com", OnPolicyNone: true}},
		{"OpenDMARC leaves out p=none domains by default", []string{"Socket inet:1@127.0.0.1", "FailureReports true",
			"FailureReportsSentBy dmarc@example.com"},
			FailureReports{Enabled: true, FromAddress: "dmarc@example.com"}},
		{"without a sender they stay off", []string{"Socket inet:1@127.0.0.1", "FailureReports true"},
			FailureReports{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := parseOD(tc.lines...)
			if err != nil {
				t.Fatal(err)
			}
			f := c.FailureReports
			got := FailureReports{Enabled: f.Enabled, FromAddress: f.FromAddress, Bcc: f.Bcc, OnPolicyNone: f.OnPolicyNone}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
