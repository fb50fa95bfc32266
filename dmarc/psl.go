package dmarc

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxPSLRules caps a public suffix list file; the real list has about
// 10,000 rules.
const maxPSLRules = 200000

// SuffixList is a public suffix list read from a file in the format of
// publicsuffix.org: one rule per line, "//" comments, "*." wildcards and
// "!" exceptions. It implements PublicSuffixList, for operators who keep
// their own copy (OpenDMARC's PublicSuffixList).
type SuffixList struct {
	rules      map[string]bool // "com", "co.uk"
	wildcards  map[string]bool // "ck" for "*.ck"
	exceptions map[string]bool // "www.ck" for "!www.ck"
}

// ReadSuffixList reads a public suffix list. Rules in Unicode are stored in
// A-label form, as domains are compared.
func ReadSuffixList(r io.Reader) (*SuffixList, error) {
	l := &SuffixList{rules: map[string]bool{}, wildcards: map[string]bool{}, exceptions: map[string]bool{}}
	sc := bufio.NewScanner(r)
	n, count := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			line = line[:i] // the format ends a rule at white space
		}
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		if count++; count > maxPSLRules {
			return nil, fmt.Errorf("line %d: more than %d rules", n, maxPSLRules)
		}
		set, rule := l.rules, line
		switch {
		case strings.HasPrefix(line, "!"):
			set, rule = l.exceptions, line[1:]
		case strings.HasPrefix(line, "*."):
			set, rule = l.wildcards, line[2:]
		}
		d, err := NormalizeDomain(rule)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", n, line, err)
		}
		set[d] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, fmt.Errorf("no rules")
	}
	return l, nil
}

// PublicSuffix implements PublicSuffixList with the publicsuffix.org
// algorithm: the longest matching rule wins, an exception removes its
// leftmost label, and a name no rule matches has its last label as suffix
// (the implicit "*" rule).
func (l *SuffixList) PublicSuffix(domain string) string {
	best := ""
	for d := domain; d != ""; d = parent(d) {
		switch {
		case l.exceptions[d]:
			return parent(d)
		case l.rules[d] && len(d) > len(best):
			best = d
		}
		if p := parent(d); p != "" && l.wildcards[p] && len(d) > len(best) {
			best = d
		}
	}
	if best == "" {
		return lastLabels(domain, 1)
	}
	return best
}
