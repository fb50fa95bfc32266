package dmarc

import (
	"strings"
	"testing"
)

const testPSL = `// a cut of publicsuffix.org's list
com
uk
co.uk
// wildcards and exceptions
*.ck
!www.ck
jp
*.kobe.jp
!city.kobe.jp
// private section
github.io
bücher.example
`

func TestSuffixListFollowsThePublicSuffixAlgorithm(t *testing.T) {
	l, err := ReadSuffixList(strings.NewReader(testPSL))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ domain, suffix, org string }{
		{"example.com", "com", "example.com"},
		{"a.b.example.co.uk", "co.uk", "example.co.uk"},
		{"example.uk", "uk", "example.uk"},
		{"a.example.ck", "example.ck", "a.example.ck"},
		{"www.ck", "ck", "www.ck"},
		{"a.b.kobe.jp", "b.kobe.jp", "a.b.kobe.jp"},
		{"city.kobe.jp", "kobe.jp", "city.kobe.jp"},
		{"user.github.io", "github.io", "user.github.io"},
		{"shop.xn--bcher-kva.example", "xn--bcher-kva.example", "shop.xn--bcher-kva.example"},
		{"example.unlisted", "unlisted", "example.unlisted"},
		{"co.uk", "co.uk", "co.uk"},
	}
	e := &Evaluator{PublicSuffixList: l, Spec: RFC7489}
	for _, tt := range tests {
		if got := l.PublicSuffix(tt.domain); got != tt.suffix {
			t.Errorf("PublicSuffix(%q) = %q, want %q", tt.domain, got, tt.suffix)
		}
		if got := e.orgDomain7489(tt.domain); got != tt.org {
			t.Errorf("organizational domain of %q = %q, want %q", tt.domain, got, tt.org)
		}
	}
}

func TestSuffixListRefusesBadFiles(t *testing.T) {
	for name, text := range map[string]string{
		"an empty file":     "// nothing\n",
		"a broken rule":     "com\na..b\n",
		"an over-long name": strings.Repeat("a", 64) + ".com\n",
	} {
		if _, err := ReadSuffixList(strings.NewReader(text)); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
}
