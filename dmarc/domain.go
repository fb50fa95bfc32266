package dmarc

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// idnaProfile converts U-labels to A-labels (RFC 9989 §5.3.1, RFC 5890
// §2.3). StrictDomainName is off because underscores appear in real DKIM
// and SPF names and the checks below cover what matters.
var idnaProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(false))

// errBadDomain is wrapped by NormalizeDomain for names that cannot be a
// domain.
var errBadDomain = errors.New("invalid domain name")

// NormalizeDomain returns the canonical form of a domain name for
// comparisons and lookups: A-labels, lower case, no trailing dot. It rejects
// names that are empty, longer than 253 octets, have an empty or over-long
// label, or hold bytes other than letters, digits, hyphens and underscores.
func NormalizeDomain(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if isCanonical(s) {
		return s, nil // the common case: already lowercase ASCII
	}
	if s == "" {
		return "", fmt.Errorf("%w: empty", errBadDomain)
	}
	if !isASCII(s) {
		a, err := idnaProfile.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", errBadDomain, clip(s), err)
		}
		s = a
	}
	s = lowerASCII(s)
	if !isCanonical(s) {
		return "", fmt.Errorf("%w: %q", errBadDomain, clip(s))
	}
	return s, nil
}

// isCanonical reports whether s is already a valid lowercase ASCII domain,
// in one pass.
func isCanonical(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if label == 0 {
				return false
			}
			label = 0
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// lowerASCII lowercases ASCII letters without allocating when there are
// none to change.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// labelCount returns the number of labels in a normalized domain.
func labelCount(d string) int {
	return strings.Count(d, ".") + 1
}

// parent returns d without its leftmost label, or "" for a single label.
func parent(d string) string {
	i := strings.IndexByte(d, '.')
	if i < 0 {
		return ""
	}
	return d[i+1:]
}

// lastLabels returns the n rightmost labels of d (all of d when it has n or
// fewer).
func lastLabels(d string, n int) string {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i] == '.' {
			n--
			if n == 0 {
				return d[i+1:]
			}
		}
	}
	return d
}

// isSubdomainOrSame reports whether d equals parent or lies below it.
func isSubdomainOrSame(d, parent string) bool {
	if d == parent {
		return true
	}
	return len(d) > len(parent) && strings.HasSuffix(d, parent) && d[len(d)-len(parent)-1] == '.'
}

// childToward returns the name one label below ancestor on the way to d:
// childToward("a.b.example.com", "com") is "example.com". d must be a
// proper subdomain of ancestor.
func childToward(d, ancestor string) string {
	rest := d[:len(d)-len(ancestor)-1] // "a.b.example"
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		rest = rest[i+1:]
	}
	return rest + "." + ancestor
}
