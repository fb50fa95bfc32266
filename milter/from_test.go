package milter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/dmarc"
)

// fromCase is one From reading: the field values, one per From header, and
// the domains expected, or the error.
type fromCase struct {
	name   string
	values []string
	want   []string
	err    error
}

func fromOne(v string) []string { return []string{v} }

// manyAddresses returns n addresses a0@d0.example, a1@d1.example, … joined
// by commas.
func fromManyAddresses(n int) string {
	as := make([]string, n)
	for i := range as {
		as[i] = fmt.Sprintf("a%d@d%d.example", i, i)
	}
	return strings.Join(as, ", ")
}

// fromManyDomains returns the domains of fromManyAddresses(n).
func fromManyDomains(n int) []string {
	ds := make([]string, n)
	for i := range ds {
		ds[i] = fmt.Sprintf("d%d.example", i)
	}
	return ds
}

var fromCases = []fromCase{
	// Ordinary forms.
	{"a bare address is read", fromOne("user@example.com"), []string{"example.com"}, nil},
	{"an angle address alone is read", fromOne("<user@example.com>"), []string{"example.com"}, nil},
	{"a quoted display name is skipped", fromOne(`"John Doe" <john@example.com>`), []string{"example.com"}, nil},
	{"an unquoted display name with dots is skipped", fromOne("John Q. Public <jqp@example.com>"), []string{"example.com"}, nil},
	{"a comma inside a quoted display name does not split", fromOne(`"Doe, John" <john@example.com>`), []string{"example.com"}, nil},
	{"a comment with a comma after the address does not split", fromOne("user@example.com (Comment, with comma)"), []string{"example.com"}, nil},
	{"nested comments are skipped", fromOne("user@example.com (a (nested, (deeper)) comment)"), []string{"example.com"}, nil},
	{"comments around every part are skipped", fromOne("(c)user(c)@(c)example.com(c)"), []string{"example.com"}, nil},
	{"a comment inside the angle address is skipped", fromOne("Name <user(old)@(new)example.com>"), []string{"example.com"}, nil},
	{"white space inside the angle brackets is allowed", fromOne("Name < user@example.com >"), []string{"example.com"}, nil},
	{"an obsolete spread-out address is read", fromOne("john . doe @ example . com"), []string{"example.com"}, nil},

	// Encoded words and 8-bit text in display names.
	{"a base64 UTF-8 encoded word is a display name", fromOne("=?UTF-8?B?w4lsb2RpZQ==?= <a@example.com>"), []string{"example.com"}, nil},
	{"a Q latin-1 encoded word is a display name", fromOne("=?ISO-8859-1?Q?J=F6rg_M=FCller?= <a@example.com>"), []string{"example.com"}, nil},
	{"a KOI8-R encoded word is a display name", fromOne("=?KOI8-R?B?8NLJ18XU?= <a@example.com>"), []string{"example.com"}, nil},
	{"an encoded word in an unknown charset is kept raw", fromOne("=?x-no-such-charset?Q?abc?= <a@example.com>"), []string{"example.com"}, nil},
	{"an encoded word holding an address is only a name", fromOne("=?UTF-8?Q?admin@paypal.com?= <evil@attacker.example>"), []string{"attacker.example"}, nil},
	// RFC 2047 forbids a raw "," in such a word; it is read as written,
	// before decoding, and both candidates come out.
	{"an encoded word with a raw comma and at-sign is read as two mailboxes", fromOne("=?UTF-8?Q?admin@paypal.com,?= <evil@attacker.example>"), []string{"paypal.com", "attacker.example"}, nil},
	{"a raw UTF-8 display name is read", fromOne("Jörg Müller <joerg@example.com>"), []string{"example.com"}, nil},
	{"a raw latin-1 display name is read", fromOne("J\xf6rg M\xfcller <joerg@example.com>"), []string{"example.com"}, nil},

	// Domains.
	{"a U-label domain becomes an A-label", fromOne("user@bücher.example"), []string{"xn--bcher-kva.example"}, nil},
	{"a U-label domain in an angle address becomes an A-label", fromOne("Bücherwurm <user@BÜCHER.example>"), []string{"xn--bcher-kva.example"}, nil},
	{"an A-label domain is kept", fromOne("user@xn--bcher-kva.example"), []string{"xn--bcher-kva.example"}, nil},
	{"an ideographic full stop is a dot", fromOne("user@example\u3002com"), []string{"example.com"}, nil},
	{"an upper-case domain is lowered", fromOne("User@Example.COM"), []string{"example.com"}, nil},
	{"a trailing dot is dropped", fromOne("user@example.com."), []string{"example.com"}, nil},
	{"a trailing dot in an angle address is dropped", fromOne("Name <user@Example.com.>"), []string{"example.com"}, nil},
	{"a domain literal has no DMARC domain", fromOne("user@[192.0.2.1]"), nil, errFromDomain},
	{"an IPv6 domain literal in an angle address has no DMARC domain", fromOne("<user@[IPv6:2001:db8::1]>"), nil, errFromDomain},
	{"a bare IPv6 domain literal is refused", fromOne("user@[IPv6:2001:db8::1]"), nil, errFromSyntax},
	{"a missing domain is refused", fromOne("user@"), nil, errFromDomain},
	{"an angle address without an at-sign is refused", fromOne("Root <root>"), nil, errFromDomain},
	{"a domain with a space in a label is refused", fromOne("user@exam ple.com"), nil, errFromDomain},
	{"a domain with a bang is refused", fromOne("user@exa!mple.com"), nil, errFromDomain},
	{"a domain with an empty label is refused", fromOne("user@example..com"), nil, errFromDomain},
	{"a domain label over 63 octets is refused", fromOne("user@" + strings.Repeat("a", 64) + ".example"), nil, errFromDomain},
	{"a line break that is not folding cannot glue a domain", fromOne("user@exam\nple.com"), nil, errFromDomain},

	// Local parts.
	{"an at-sign in a quoted local part is not the separator", fromOne(`"a@b"@example.com`), []string{"example.com"}, nil},
	{"a comma in a quoted local part does not split", fromOne(`"a,b"@example.com, c@example.org`), []string{"example.com", "example.org"}, nil},
	{"two at-signs outside quotes are refused", fromOne("a@b@example.com"), nil, errFromSyntax},
	{"an empty local part is refused", fromOne("<@example.com>"), nil, errFromSyntax},
	{"a control character in a local part is refused", fromOne("us\x00er@example.com"), nil, errFromSyntax},

	// Obsolete and broken forms real mail carries.
	{"an obsolete route is ignored", fromOne("<@route.example:user@example.com>"), []string{"example.com"}, nil},
	{"an obsolete route of several hops is ignored", fromOne("Name <@r1.example,@r2.example:user@example.com>"), []string{"example.com"}, nil},
	{"a missing closing angle bracket is tolerated", fromOne("Name <user@example.com"), []string{"example.com"}, nil},
	{"text after the angle address is ignored", fromOne("<user@example.com> garbage"), []string{"example.com"}, nil},
	{"an unquoted comma in a display name is tolerated", fromOne("Doe, John <john@example.com>"), []string{"example.com"}, nil},
	{"square brackets in a display name are tolerated", fromOne("Foo [Bar] <a@example.com>"), []string{"example.com"}, nil},
	{"a colon in a display name reads as a group and is tolerated", fromOne("Re: Foo <a@example.com>"), []string{"example.com"}, nil},
	{"a semicolon separates addresses", fromOne("a@x.example; b@y.example"), []string{"x.example", "y.example"}, nil},
	{"empty list elements are skipped", fromOne("a@x.example,, ,b@y.example,"), []string{"x.example", "y.example"}, nil},
	{"a comment alone between addresses is skipped", fromOne("a@x.example, (nobody)"), []string{"x.example"}, nil},
	{"a display name with an address and no angle brackets is refused", fromOne("John john@example.com"), nil, errFromSyntax},
	{"an unterminated quoted string is refused", fromOne(`"John <john@example.com>`), nil, errFromSyntax},
	{"an unterminated comment is refused", fromOne("john@example.com (oops"), nil, errFromSyntax},
	{"an unbalanced closing parenthesis is refused", fromOne("john@example.com oops)"), nil, errFromSyntax},
	{"a stray closing angle bracket is refused", fromOne("john@example.com>"), nil, errFromSyntax},
	{"a backslash outside a quoted string is refused", fromOne(`\"x <john@example.com>`), nil, errFromSyntax},
	{"a nested angle bracket is refused", fromOne("<a<b@example.com>>"), nil, errFromSyntax},

	// Groups (RFC 6854).
	{"an empty group has no mailbox", fromOne("undisclosed-recipients: ;"), nil, errNoMailbox},
	{"a group's two members are both read", fromOne("group: a@x.example, b@y.example;"), []string{"x.example", "y.example"}, nil},
	{"a group without its semicolon is tolerated", fromOne("group: a@x.example, b@y.example"), []string{"x.example", "y.example"}, nil},
	{"a mailbox after an empty group is read", fromOne("undisclosed:;, a@x.example"), []string{"x.example"}, nil},
	{"a group inside a group is refused", fromOne("g1: g2: a@x.example;;"), nil, errFromSyntax},
	{"a group named like an address is refused", fromOne("admin@paypal.com: a@x.example;"), nil, errFromSyntax},

	// Several mailboxes, several fields.
	{"several addresses in one field are all read", fromOne("a@x.example, b@y.example"), []string{"x.example", "y.example"}, nil},
	{"several From fields are all read", []string{"a@x.example", "B <b@y.example>"}, []string{"x.example", "y.example"}, nil},
	{"duplicate domains are kept", []string{"a@x.example, b@X.example", "c@x.example."}, []string{"x.example", "x.example", "x.example"}, nil},
	{"an empty field beside a good one is not an error", []string{"a@x.example", ""}, []string{"x.example"}, nil},
	{"one unreadable field among good ones fails them all", []string{"a@x.example", `"unterminated <b@y.example>`}, nil, errFromSyntax},
	{"a domain literal among good addresses fails them all", fromOne("a@x.example, b@[192.0.2.1]"), nil, errFromDomain},

	// Display names are never trusted.
	{"a quoted address as display name is not trusted", fromOne(`"admin@paypal.com" <evil@attacker.example>`), []string{"attacker.example"}, nil},
	{"an angle-bracketed address in a quoted display name is not trusted", fromOne(`"<admin@paypal.com>" <evil@attacker.example>`), []string{"attacker.example"}, nil},
	{"a quoted display name with a comma and an address is not trusted", fromOne(`"evil, <x@paypal.com>" <a@attacker.example>`), []string{"attacker.example"}, nil},
	{"an unquoted address as display name yields to the angle address", fromOne("evil@attacker.example <admin@paypal.com>"), []string{"paypal.com"}, nil},
	{"an unquoted address as display name is not trusted either", fromOne("admin@paypal.com <evil@attacker.example>"), []string{"attacker.example"}, nil},
	{"an address after the angle address is refused", fromOne("<evil@attacker.example> admin@paypal.com"), nil, errFromSyntax},
	{"a quoted address after the angle address is refused", fromOne(`<evil@attacker.example> "admin@paypal.com"`), nil, errFromSyntax},
	{"an address in a comment after the angle address is a comment", fromOne("<a@x.example> (on behalf of b@y.example)"), []string{"x.example"}, nil},
	{"two angle addresses in one mailbox are refused", fromOne("Name <a@x.example> <b@y.example>"), nil, errFromSyntax},
	{"a quote inside a comment does not hide the address after it", fromOne(`(a " comment) b@paypal.com`), []string{"paypal.com"}, nil},
	{"a parenthesis inside quotes does not hide the address after it", fromOne(`"(" a@x.example, b@paypal.com`), nil, errFromSyntax},
	{"a quoted address alone is not a mailbox", fromOne(`"admin@paypal.com"`), nil, errFromSyntax},
	{"a quoted address beside a real one is refused", fromOne(`"admin@paypal.com", evil@attacker.example`), nil, errFromSyntax},

	// What OpenDMARC stumbled over (CVE-2019-16378, CVE-2020-12272,
	// CVE-2024-25768): empty, null, several, huge.
	{"no From field at all is an error", nil, nil, errNoFrom},
	{"an empty From field has no mailbox", fromOne(""), nil, errNoMailbox},
	{"a From field of folding white space has no mailbox", fromOne("\r\n \t"), nil, errNoMailbox},
	{"two empty From fields have no mailbox", []string{"", " "}, nil, errNoMailbox},
	{"the null address has no mailbox", fromOne("<>"), nil, errNoMailbox},
	{"the null address with a name has no mailbox", fromOne("MAILER-DAEMON < >"), nil, errNoMailbox},
	{"a display name alone has no mailbox", fromOne("John Doe"), nil, errNoMailbox},
	{"an unqualified user name has no mailbox", fromOne("root"), nil, errNoMailbox},
	{"a spoofed second address in one field is returned", fromOne("a@attacker.example, b@paypal.com"), []string{"attacker.example", "paypal.com"}, nil},
	{"a spoofed second From field is returned", []string{"a@attacker.example", "b@paypal.com"}, []string{"attacker.example", "paypal.com"}, nil},
	{"a CRLF-folded field is unfolded", fromOne("\"John\r\n Doe\" <a@example.com>,\r\n\tb@example.org"), []string{"example.com", "example.org"}, nil},
	{"an LF-folded field is unfolded", fromOne("John\n Doe\n <a@example.com>"), []string{"example.com"}, nil},
	{"a 64 KiB From field is refused", fromOne(strings.Repeat("x", 64<<10-len("@example.com")) + "@example.com"), nil, errFromLimit},
	{"a From field of exactly 16 KiB is read", fromOne(strings.Repeat("x", 16<<10-len("@example.com")) + "@example.com"), []string{"example.com"}, nil},
	{"a hundred addresses are read", fromOne(fromManyAddresses(100)), fromManyDomains(100), nil},
	{"a hundred and one addresses are refused", fromOne(fromManyAddresses(101)), nil, errFromLimit},
	{"a hundred and one addresses over two fields are refused", []string{fromManyAddresses(60), fromManyAddresses(41)}, nil, errFromLimit},
	{"a hundred and one lenient addresses are refused", fromOne(fromManyAddresses(101) + ", <x@y.example"), nil, errFromLimit},
	{"a hundred and one From fields are refused", make([]string, 101), nil, errFromLimit},
}

func TestFromDomains(t *testing.T) {
	if len(fromCases) < 50 {
		t.Fatalf("only %d cases", len(fromCases))
	}
	for _, c := range fromCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := fromDomains(c.values)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("fromDomains(%q) = %q, %v; want error %v", fromClipAll(c.values), got, err, c.err)
				}
				if got != nil {
					t.Errorf("domains %q returned with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("fromDomains(%q): %v", fromClipAll(c.values), err)
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("fromDomains(%q) = %q; want %q", fromClipAll(c.values), got, c.want)
			}
		})
	}
}

func fromClipAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fromClip(v)
	}
	return out
}

// TestFromMailboxes checks what parseFrom says besides the domains: names,
// addresses, fields, groups, and which parser read what.
func TestFromMailboxes(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    []fromMailbox
		groups  int
		single  bool
		lenient bool
	}{
		{
			name:   "a base64 encoded word is decoded",
			values: fromOne("=?UTF-8?B?w4lsb2RpZQ==?= <a@example.com>"),
			want:   []fromMailbox{{Name: "Élodie", Address: "a@example.com", Domain: "example.com"}},
			single: true,
		},
		{
			name:   "a latin-1 Q encoded word is decoded",
			values: fromOne("=?ISO-8859-1?Q?J=F6rg_M=FCller?= <a@example.com>"),
			want:   []fromMailbox{{Name: "Jörg Müller", Address: "a@example.com", Domain: "example.com"}},
			single: true,
		},
		{
			name:   "a KOI8-R encoded word is decoded",
			values: fromOne("=?KOI8-R?B?8NLJ18XU?= <a@example.com>"),
			want:   []fromMailbox{{Name: "Привет", Address: "a@example.com", Domain: "example.com"}},
			single: true,
		},
		{
			name:    "an unknown charset is kept raw by the lenient scanner",
			values:  fromOne("=?x-no-such-charset?Q?abc?= <a@example.com>"),
			want:    []fromMailbox{{Name: "=?x-no-such-charset?Q?abc?=", Address: "a@example.com", Domain: "example.com", Lenient: true}},
			single:  true,
			lenient: true,
		},
		{
			name:    "raw latin-1 is replaced by U+FFFD in the name",
			values:  fromOne("J\xf6rg <joerg@example.com>"),
			want:    []fromMailbox{{Name: "J\uFFFDrg", Address: "joerg@example.com", Domain: "example.com", Lenient: true}},
			single:  true,
			lenient: true,
		},
		{
			name:   "a quoted local part is unquoted in the address",
			values: fromOne(`"a@b"@Example.com`),
			want:   []fromMailbox{{Address: "a@b@Example.com", Domain: "example.com"}},
			single: true,
		},
		{
			name:    "the lenient scanner unquotes the local part too",
			values:  fromOne(`Name <"a@b"@Example.com.>`),
			want:    []fromMailbox{{Name: "Name", Address: "a@b@Example.com.", Domain: "example.com", Lenient: true}},
			single:  true,
			lenient: true,
		},
		{
			name:    "an unquoted address as display name is kept as a name",
			values:  fromOne("evil@attacker.example <admin@paypal.com>"),
			want:    []fromMailbox{{Name: "evil@attacker.example", Address: "admin@paypal.com", Domain: "paypal.com", Lenient: true}},
			single:  true,
			lenient: true,
		},
		{
			name:   "fields and groups are counted",
			values: []string{"g: a@x.example;", "undisclosed:;", "b@y.example"},
			want: []fromMailbox{
				{Address: "a@x.example", Domain: "x.example"},
				{Address: "b@y.example", Domain: "y.example", Field: 2},
			},
			groups: 2,
		},
		{
			name:   "a U-label address keeps its U-label in Address",
			values: fromOne("user@bücher.example"),
			want:   []fromMailbox{{Address: "user@bücher.example", Domain: "xn--bcher-kva.example"}},
			single: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseFrom(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", r.Mailboxes) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("mailboxes\n got %+v\nwant %+v", r.Mailboxes, tt.want)
			}
			if r.Fields != len(tt.values) || r.Groups != tt.groups || r.Single() != tt.single || r.Lenient() != tt.lenient {
				t.Errorf("fields %d groups %d single %v lenient %v; want %d %d %v %v",
					r.Fields, r.Groups, r.Single(), r.Lenient(), len(tt.values), tt.groups, tt.single, tt.lenient)
			}
		})
	}
}

func TestFromUniqueDomains(t *testing.T) {
	r, err := parseFrom([]string{"a@Y.example, b@x.example", "c@y.example."})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.UniqueDomains(), " "); got != "y.example x.example" {
		t.Errorf("UniqueDomains = %q", got)
	}
	if got := strings.Join(r.Domains(), " "); got != "y.example x.example y.example" {
		t.Errorf("Domains = %q", got)
	}
}

// TestFromErrorsNameTheField checks that errors say which field failed.
func TestFromErrorsNameTheField(t *testing.T) {
	_, err := parseFrom([]string{"a@x.example", "b@[192.0.2.1]"})
	if err == nil || !strings.Contains(err.Error(), "From field 2") {
		t.Errorf("error %v does not name field 2", err)
	}
}

// TestFromPathological feeds inputs built to make a parser backtrack or
// nest, at the size limit; they must all finish and none may panic.
func TestFromPathological(t *testing.T) {
	n := maxFromFieldBytes
	inputs := []string{
		strings.Repeat("(", n),
		strings.Repeat("(a", n/2) + strings.Repeat(")", n/2),
		strings.Repeat(`"`, n),
		strings.Repeat("<", n),
		strings.Repeat(",", n),
		strings.Repeat("a,", n/2),
		strings.Repeat("@", n),
		strings.Repeat("a.", n/2) + "@x",
		strings.Repeat("=?utf-8?q?a?= ", n/14),
		strings.Repeat(`\`, n),
		strings.Repeat(":", n),
		strings.Repeat("g:;", n/3),
		strings.Repeat("x ", n/2) + "<a@x.example>",
		"a@[" + strings.Repeat("1", n-4) + "]",
		"<" + strings.Repeat("@r,", n/3) + ":a@x.example>",
		strings.Repeat("\r\n ", n/3),
	}
	for _, in := range inputs {
		in = in[:min(len(in), n)]
		ds, err := fromDomains([]string{in})
		if err == nil && len(ds) > maxFromAddresses {
			t.Errorf("%q: %d domains", fromClip(in), len(ds))
		}
	}
}

func BenchmarkFromDomains(b *testing.B) {
	for _, in := range []string{
		`"John Q. Public" <jqp@example.com>`,
		"Doe, John <john@bücher.example>",
		fromManyAddresses(100),
		strings.Repeat("(a", maxFromFieldBytes/4) + strings.Repeat(")", maxFromFieldBytes/4),
	} {
		b.Run(fromClip(in)[:min(len(in), 20)], func(b *testing.B) {
			vs := []string{in}
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				_, _ = fromDomains(vs)
			}
		})
	}
}

// FuzzFromDomains checks, on any one or two fields, that parseFrom does
// not panic, returns domains only without error and never more than the
// cap, that every domain is already normalized, and that the lenient
// scanner agrees with net/mail on every field net/mail reads (the
// cross-check in parseFromField must never be what refuses a field).
func FuzzFromDomains(f *testing.F) {
	for _, c := range fromCases {
		switch len(c.values) {
		case 0:
			f.Add("", "", false)
		case 1:
			f.Add(c.values[0], "", false)
		default:
			f.Add(c.values[0], c.values[1], true)
		}
	}
	f.Fuzz(func(t *testing.T, a, b string, two bool) {
		values := []string{a}
		if two {
			values = append(values, b)
		}
		r, err := parseFrom(values)
		ds, err2 := fromDomains(values)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("parseFrom and fromDomains disagree: %v, %v", err, err2)
		}
		if err != nil {
			if ds != nil || r.Mailboxes != nil {
				t.Fatalf("results with an error: %q", ds)
			}
			known := false
			for _, e := range []error{errNoFrom, errNoMailbox, errFromSyntax, errFromDomain, errFromLimit} {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("error %v wraps no known error", err)
			}
			if strings.Contains(err.Error(), "disagree") || strings.Contains(err.Error(), "not by the lenient") {
				t.Fatalf("parsers disagree on %q: %v", values, err)
			}
			return
		}
		if len(ds) == 0 || len(ds) > maxFromAddresses {
			t.Fatalf("%d domains", len(ds))
		}
		for _, d := range ds {
			if n, err := dmarc.NormalizeDomain(d); err != nil || n != d {
				t.Fatalf("domain %q is not normalized: %q, %v", d, n, err)
			}
		}
		// The shortcut must read a field exactly as the two parsers do.
		for i, v := range values {
			checkFromSimple(t, fromUnfold(v), i)
		}
		// When net/mail reads a field whole, the result must be its
		// reading.
		for i, v := range values {
			p := mail.AddressParser{WordDecoder: fromWordDecoder}
			addrs, perr := p.ParseList(fromUnfold(v))
			if perr != nil {
				continue
			}
			var got []string
			for _, m := range r.Mailboxes {
				if m.Field == i {
					got = append(got, m.Domain)
				}
			}
			if len(got) != len(addrs) {
				t.Fatalf("field %d: net/mail read %d addresses, we have %d", i, len(addrs), len(got))
			}
		}
	})
}

// TestFromParsersAgree generates address lists from the RFC 5322 grammar,
// with specials in quoted strings and comments, and checks that whenever
// net/mail reads one, the lenient scanner reads the same domains (so that
// parseFromField's cross-check never refuses valid mail).
func TestFromParsersAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	sp := func() string { return pick("", "", " ", "  ", "\t", "\r\n ") }
	var comment func(int) string
	comment = func(depth int) string {
		s := "(" + pick("", "c", "a, b", "x@y.example", `a "q`, "<z@w.example>", ";:", `\)`, `\(`)
		if depth < 2 && rng.IntN(3) == 0 {
			s += comment(depth + 1)
		}
		return s + ")"
	}
	cfws := func() string {
		if rng.IntN(4) == 0 {
			return sp() + comment(0) + sp()
		}
		return sp()
	}
	word := func() string {
		return pick("John", "Q.", "Public", "Jörg", `"Doe, John"`, `"admin@paypal.com"`, `"<a@b.example>"`,
			`"a\"b"`, `"(x"`, `"g: h;"`, "=?UTF-8?B?w4lsb2RpZQ==?=", "=?ISO-8859-1?Q?J=F6rg?=", "=?KOI8-R?B?8NLJ18XU?=")
	}
	phrase := func() string {
		s := word()
		for rng.IntN(2) == 0 {
			s += cfws() + " " + word()
		}
		return s
	}
	local := func() string {
		return pick("user", "john.doe", `"a@b"`, `"a,b;c"`, `"with space"`, "x+tag", "Ünïcode", `"a\"@\"b"`)
	}
	domain := func() string {
		return pick("example.com", "Example.COM", "bücher.example", "xn--bcher-kva.example", "a-b.example.org", "sub.x.example")
	}
	addrSpec := func() string { return local() + "@" + domain() }
	mailbox := func() string {
		if rng.IntN(2) == 0 {
			s := addrSpec()
			if rng.IntN(3) == 0 {
				s += sp() + comment(0)
			}
			return s
		}
		s := ""
		if rng.IntN(4) != 0 {
			s = phrase() + sp()
		}
		return s + "<" + addrSpec() + ">"
	}
	element := func() string {
		if rng.IntN(6) == 0 {
			s := phrase() + sp() + ":"
			for i, n := 0, rng.IntN(3); i < n; i++ {
				if i > 0 {
					s += ","
				}
				s += cfws() + mailbox() + cfws()
			}
			return s + ";"
		}
		return mailbox()
	}
	// mutate inserts, deletes or replaces one byte, mostly specials.
	mutate := func(s string) string {
		i := rng.IntN(len(s) + 1)
		c := pick(`"`, "(", ")", "<", ">", "@", ",", ";", ":", `\`, ".", "[", "]", " ", "a", "\xff")
		switch rng.IntN(3) {
		case 0:
			return s[:i] + c + s[i:]
		case 1:
			if i < len(s) {
				return s[:i] + s[i+1:]
			}
		}
		if i < len(s) {
			return s[:i] + c + s[i+1:]
		}
		return s
	}
	read := 0
	for n := range 40000 {
		field := cfws() + element()
		for rng.IntN(2) == 0 {
			field += cfws() + "," + pick("", ",") + cfws() + element()
		}
		field += cfws()
		if n%2 == 1 {
			for range 1 + rng.IntN(3) {
				field = mutate(field)
			}
		}
		p := mail.AddressParser{WordDecoder: fromWordDecoder}
		addrs, err := p.ParseList(fromUnfold(field))
		if err != nil {
			continue
		}
		var ds []string
		for _, a := range addrs {
			d, err := fromMailDomain(a.Address)
			if err != nil {
				break // refused whatever the scanner says
			}
			ds = append(ds, d)
		}
		if len(ds) < len(addrs) {
			continue
		}
		read++
		lax, _, laxErr := fromScan(fromUnfold(field), 0, 1000)
		if laxErr != nil {
			t.Fatalf("%q: net/mail reads %d addresses, the scanner fails: %v", field, len(addrs), laxErr)
		}
		if len(lax) != len(addrs) {
			t.Fatalf("%q: net/mail reads %d addresses, the scanner %d", field, len(addrs), len(lax))
		}
		for i, d := range ds {
			if d != lax[i].Domain {
				t.Fatalf("%q: net/mail reads %q, the scanner %q", field, d, lax[i].Domain)
			}
		}
	}
	if read < 10000 {
		t.Errorf("net/mail read only %d of the fields generated", read)
	}
}
