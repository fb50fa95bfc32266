package spfcheck

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckRecord(t *testing.T) {
	valid := []struct{ name, record string }{
		{"an empty record", "v=spf1"},
		{"trailing and repeated spaces", "v=spf1  ip4:192.0.2.1   -all  "},
		{"every mechanism", "v=spf1 all include:a.example.com a a:b.example.com mx mx:c.example.com ptr ptr:d.example.com ip4:192.0.2.1 ip6:2001:db8::1 exists:e.example.com"},
		{"every qualifier", "v=spf1 +a -a ~a ?a"},
		{"CIDR lengths at their bounds", "v=spf1 ip4:0.0.0.0/0 ip4:192.0.2.1/32 ip6:::/0 ip6:2001:db8::1/128 a/0 a//0 a/32//128 mx:example.com/24//64"},
		{"an IPv4-mapped address in ip6", "v=spf1 ip6:::ffff:192.0.2.1"},
		{"a domain with a trailing dot", "v=spf1 include:example.com."},
		{"a top label with a hyphen and digits", "v=spf1 a:host.1-2 a:host.xn--p1ai"},
		{"a domain ending with a macro", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d}"},
		{"macros with transformers and delimiters", "v=spf1 exists:%{d2}.%{ir}.%{lr-}.%{o.-+,/_=}.%{S}.%{H}.%{V}.%{P}.example.com"},
		{"escapes", "v=spf1 exists:a%%b%_c%-d.example.com"},
		{"modifiers", "v=spf1 -all redirect=_spf.example.com exp=explain.%{d}"},
		{"an unknown modifier with any macro", "v=spf1 moo.cow-far_out=man:dog/cat other=%{c}%{r}%{t}"},
		{"upper case", "V=SPF1 IP4:192.0.2.1 INCLUDE:EXAMPLE.COM REDIRECT=EXAMPLE.NET -ALL"},
		{"a slash in a domain, which the grammar allows", "v=spf1 exists:a/b.example.com"},
	}
	for _, tc := range valid {
		t.Run("valid: "+tc.name, func(t *testing.T) {
			if err := checkRecord("example.com", tc.record); err != nil {
				t.Errorf("checkRecord(%q) = %v, want nil", tc.record, err)
			}
		})
	}

	invalid := []struct{ name, record, why string }{
		{"an unknown mechanism", "v=spf1 foo -all", `unknown mechanism "foo"`},
		{"an unknown mechanism with an argument", "v=spf1 a ip5:192.0.2.1", `unknown mechanism "ip5"`},
		{"a bare qualifier", "v=spf1 - all", "empty mechanism"},
		{"all with an argument", "v=spf1 all:example.com", "takes no argument"},
		{"include without a domain", "v=spf1 include", "needs a domain"},
		{"include with an empty domain", "v=spf1 include:", "empty domain"},
		{"exists without a domain", "v=spf1 exists", "needs a domain"},
		{"ptr with a CIDR length", "v=spf1 ptr/24", "no CIDR length"},
		{"a with junk after its name", "v=spf1 ab", `unknown mechanism "ab"`},
		{"ip4 without a network", "v=spf1 ip4", "needs a network"},
		{"ip4 with an IPv6 address", "v=spf1 ip4:2001:db8::1", "not an IPv4 address"},
		{"ip6 with an IPv4 address", "v=spf1 ip6:192.0.2.1", "not an IPv6 address"},
		{"ip4 with leading zeros", "v=spf1 ip4:192.0.02.1", "not an IP address"},
		{"ip4 with a bad octet", "v=spf1 ip4:192.0.2.256", "not an IP address"},
		{"ip6 with a zone", "v=spf1 ip6:fe80::1%eth0", "not an IP address"},
		{"an IPv4 CIDR length over 32", "v=spf1 ip4:192.0.2.0/33", "over 32"},
		{"an IPv6 CIDR length over 128", "v=spf1 ip6:2001:db8::/129", "over 128"},
		{"a CIDR length with a leading zero", "v=spf1 ip4:192.0.2.0/024", "bad CIDR length"},
		{"an empty CIDR length", "v=spf1 ip4:192.0.2.0/", "bad CIDR length"},
		{"a single slash before an IPv6 length on a", "v=spf1 a/24/64", "over 32"},
		{"an IPv6 length over 128 on mx", "v=spf1 mx//129", "over 128"},
		{"a numeric top label", "v=spf1 a:192.0.2.1", "valid top-level label"},
		{"a single-label domain", "v=spf1 include:localhost", "valid top-level label"},
		{"a top label with a leading hyphen", "v=spf1 a:foo.-bar", "valid top-level label"},
		{"a domain ending with a dot after a macro", "v=spf1 exists:%{d}.", "valid top-level label"},
		{"a domain ending with a literal brace", "v=spf1 exists:foo.%%{d}", "valid top-level label"},
		{"an unknown macro letter", "v=spf1 exists:%{x}.example.com", "unknown letter"},
		{"a macro letter allowed only in exp", "v=spf1 exists:%{c}.example.com", "allowed only in"},
		{"an exp-only letter in the exp domain", "v=spf1 -all exp=%{r}.example.com", "allowed only in"},
		{"a zero digit transformer", "v=spf1 exists:%{d0}.example.com", "must not be zero"},
		{"a reversal after the delimiters", "v=spf1 exists:%{l-r}.example.com", "not a delimiter"},
		{"a bad delimiter", "v=spf1 exists:%{d:}.example.com", "not a delimiter"},
		{"an unterminated macro", "v=spf1 exists:%{d.example.com", "unterminated macro"},
		{"a percent before an unknown character", "v=spf1 exists:%d.example.com", "is not a macro"},
		{"a percent at the end", "v=spf1 a:example.com%", `"%" at the end`},
		{"an empty macro", "v=spf1 exists:%{}.example.com", "no letter"},
		{"two redirects", "v=spf1 redirect=a.example.com redirect=b.example.com", "more than once"},
		{"two exps", "v=spf1 exp=a.example.com EXP=b.example.com", "more than once"},
		{"an empty redirect", "v=spf1 redirect=", "empty domain"},
		{"a qualified modifier", "v=spf1 ~redirect=example.com", "unknown mechanism"},
		{"a modifier name starting with a digit", "v=spf1 1x=y", "unknown mechanism"},
		{"a bad macro in an unknown modifier", "v=spf1 x=%{q}", "unknown letter"},
		{"a tab", "v=spf1\tip4:192.0.2.1", "byte 0x09"},
		{"a newline", "v=spf1 ip4:192.0.2.1\n -all", "byte 0x0a"},
		{"a non-ASCII character", "v=spf1 a:bücher.example", "byte 0xc3"},
	}
	for _, tc := range invalid {
		t.Run("invalid: "+tc.name, func(t *testing.T) {
			err := checkRecord("example.com", tc.record)
			var syn *syntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("checkRecord(%q) = %v, want a *syntaxError", tc.record, err)
			}
			if !strings.Contains(err.Error(), tc.why) || !strings.HasPrefix(err.Error(), "SPF record at example.com: ") {
				t.Errorf("checkRecord(%q) = %q, want it to say %q", tc.record, err, tc.why)
			}
		})
	}
}

func TestIsSPFRecord(t *testing.T) {
	for txt, want := range map[string]bool{
		"v=spf1":             true,
		"v=spf1 -all":        true,
		"V=SpF1 -all":        true,
		"v=spf10 -all":       false,
		"v=spf1-all":         false,
		" v=spf1 -all":       false,
		"spf2.0/pra -all":    false,
		"v=DMARC1; p=reject": false,
		"":                   false,
	} {
		if got := isSPFRecord(txt); got != want {
			t.Errorf("isSPFRecord(%q) = %v, want %v", txt, got, want)
		}
	}
}

func TestFitName(t *testing.T) {
	label := strings.Repeat("a", 63)
	long := label + "." + label + "." + label + "." + label + ".example.com" // 267 octets
	for _, tc := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{"example.com.", "example.com."},
		{long, label + "." + label + "." + label + ".example.com"},
		{long + ".", label + "." + label + "." + label + ".example.com."},
	} {
		if got := fitName(tc.in); got != tc.want {
			t.Errorf("fitName(%d octets) = %d octets %q, want %q", len(tc.in), len(got), got, tc.want)
		}
	}
}

func TestCheckRecordDoesNotAllocate(t *testing.T) {
	record := "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:example.com/24//64 include:_spf.example.net exists:%{ir}.%{l1r+-}._spf.%{d} redirect=_spf.example.org exp=explain.%{d}"
	if n := testing.AllocsPerRun(100, func() { _ = checkRecord("example.com", record) }); n != 0 {
		t.Errorf("checkRecord allocates %v times, want 0", n)
	}
}

func BenchmarkCheckRecord(b *testing.B) {
	record := "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx include:_spf.example.net include:_spf.example.org ~all"
	b.ReportAllocs()
	for b.Loop() {
		if err := checkRecord("example.com", record); err != nil {
			b.Fatal(err)
		}
	}
}
