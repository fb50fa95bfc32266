package delivery

import (
	"strings"
)

// IsAutoSubmitted reports whether the value of an Auto-Submitted field
// marks its message as sent by a program (RFC 3834 §5): any value but
// "no", comments and parameters aside. Such a message must not be answered
// automatically (RFC 3834 §2), which for dmarcd means: no failure report
// about it. Report mail carries "auto-generated" (see Compose).
func IsAutoSubmitted(value string) bool {
	v := stripComments(value)
	v, _, _ = strings.Cut(v, ";")
	v = strings.ToLower(strings.TrimSpace(v))
	return v != "" && v != "no"
}

// stripComments removes RFC 5322 comments, nested or quoted-pair escaped.
func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ParseSubject reads the Subject of an aggregate report (RFC 9990 §3.5.2,
// RFC 7489 §7.2.1.1), unfolded: "Report Domain: <policy domain>
// Submitter: <reporting domain> [Report-ID: <id>]". The keywords are
// matched without regard to case, as senders write "Report domain:"; the
// report ID is returned without angle brackets and may be empty. A
// Subject of another form gives ok false.
func ParseSubject(subject string) (reportDomain, submitter, reportID string, ok bool) {
	f := strings.Fields(subject)
	if len(f) < 5 || !strings.EqualFold(f[0], "Report") || !strings.EqualFold(f[1], "Domain:") ||
		!strings.EqualFold(f[3], "Submitter:") {
		return "", "", "", false
	}
	reportDomain, submitter = f[2], f[4]
	switch {
	case len(f) == 5:
	case len(f) <= 7 && strings.EqualFold(f[5], "Report-ID:"):
		if len(f) == 7 {
			reportID = strings.TrimSuffix(strings.TrimPrefix(f[6], "<"), ">")
		}
	default:
		return "", "", "", false
	}
	return reportDomain, submitter, reportID, true
}
