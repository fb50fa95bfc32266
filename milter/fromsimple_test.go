package milter

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// checkFromSimple fails t if fromSimple reads s and its reading differs
// from the two-parser path's. It reports whether fromSimple read s.
func checkFromSimple(t *testing.T, s string, field int) bool {
	t.Helper()
	got, ok := fromSimple(s, field)
	if !ok {
		return false
	}
	want, groups, err := parseFromFieldBoth(s, field, maxFromAddresses)
	if err != nil || groups != 0 || len(want) != 1 || want[0] != got {
		t.Fatalf("%q: fromSimple read %+v; the parsers: %+v, %d groups, %v", s, got, want, groups, err)
	}
	return true
}

func TestFromSimple(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		simple bool
	}{
		{"a bare address is simple", "news@example.com", true},
		{"an angle address alone is simple", "<news@example.com>", true},
		{"a display name of words is simple", "Jane Q. Doe <jane@example.com>", true},
		{"words separated by tabs and runs of spaces are simple", "Jane \t  Doe  <jane@example.com>", true},
		{"a quoted display name is simple", `"News from Example, Inc." <news@example.com>`, true},
		{"a quoted display name without a space before the address is simple", `"News"<news@example.com>`, true},
		{"an upper-case domain is simple", "News <news@Example.COM>", true},
		{"surrounding white space is simple", "  news@example.com\t", true},
		{"a local part with atext specials is simple", "a.b+c=d?e@example.com", true},
		{"a comment is not simple", "news@example.com (News)", false},
		{"an encoded word is not simple", "=?UTF-8?Q?News?= <news@example.com>", false},
		{"an escaped quote is not simple", `"a\"b" <news@example.com>`, false},
		{"two mailboxes are not simple", "a@example.com, b@example.org", false},
		{"a group is not simple", "g: a@example.com;", false},
		{"a quoted local part is not simple", `"a b"@example.com`, false},
		{"an 8-bit display name is not simple", "Jörg <j@example.com>", false},
		{"a U-label domain is not simple", "j@bücher.example", false},
		{"a trailing-dot domain is not simple", "j@example.com.", false},
		{"a domain literal is not simple", "j@[192.0.2.1]", false},
		{"a missing closing bracket is not simple", "Jane <jane@example.com", false},
		{"text after the angle address is not simple", "Jane <jane@example.com> x", false},
		{"a double dot in the local part is not simple", "a..b@example.com", false},
		{"an address without a domain is not simple", "<news>", false},
		{"an empty field is not simple", "", false},
		{"a display name alone is not simple", "Jane Doe", false},
		{"an at-sign in a display name is not simple", "a@b.example <c@d.example>", false},
		{"an over-long domain label is not simple", "a@" + strings.Repeat("x", 64) + ".example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkFromSimple(t, tc.in, 0); got != tc.simple {
				t.Errorf("fromSimple(%q) read it: %v, want %v", tc.in, got, tc.simple)
			}
		})
	}
}

// TestFromSimpleAgrees builds fields from pieces at the edge of what
// fromSimple reads and checks every one it reads against the two parsers.
func TestFromSimpleAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	atom := func(chars string) string {
		n := 1 + rng.IntN(4)
		var b strings.Builder
		for range n {
			b.WriteByte(chars[rng.IntN(len(chars))])
		}
		return b.String()
	}
	const edgy = "aZ9.-_'&+!=?#$%*/^`{|}~\"\\()<>[]:;@, \t"
	read := 0
	for range 50000 {
		local := atom("ab.+=?" + pick("", "\"", "@", " ", "..", "\\"))
		domain := pick("example.com", "EXAMPLE.com", "ex-ample.org", "x", "a..b", "a.", ".a", "-a.example", "a-.example", "1.2.3.4", "_dmarc.example", "exa mple.com", "bücher.example")
		addr := local + "@" + domain
		var field string
		switch rng.IntN(4) {
		case 0:
			field = addr
		case 1:
			field = "<" + addr + ">"
		case 2:
			field = atom(edgy) + pick(" ", "\t", "  ", "") + atom(edgy) + pick(" ", "") + "<" + addr + ">"
		case 3:
			field = `"` + atom(edgy) + pick(" ", "") + atom(edgy) + `"` + pick(" ", "", "\t") + "<" + addr + ">"
		}
		field = pick("", " ") + field + pick("", " ", "\t", " x", ",", ";")
		if checkFromSimple(t, field, 0) {
			read++
		}
	}
	if read < 3000 {
		t.Errorf("fromSimple read only %d of 50000 generated fields", read)
	}
}
