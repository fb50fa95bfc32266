package milter

import (
	"strings"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/authres"
)

// maxReasonLen keeps a reason= value short enough that the header stays
// well under the 998-octet line limit of RFC 5322.
const maxReasonLen = 200

// evaluated is one From domain with its result and verdict.
type evaluated struct {
	domain string
	res    dmarc.Result
	v      verdict
}

// arValue formats our Authentication-Results value in OpenDMARC's shape,
// "<authserv-id>; dmarc=<result> (p=<policy> dis=<disposition>)
// header.from=<domain>", one clause per From domain, after the clauses of
// checks run here (spf=, dkim=, arc=). Errors carry a reason= so that the
// recipient sees why (RFC 8601 §2.7.1 allows it for any method); overrides
// are named in the comment.
func arValue(authservID string, clauses []string, evs []evaluated) string {
	var b strings.Builder
	b.WriteString(authservID)
	for _, c := range clauses {
		b.WriteString("; ")
		b.WriteString(c)
	}
	for _, e := range evs {
		b.WriteString("; dmarc=")
		b.WriteString(e.res.Outcome.String())
		switch e.res.Outcome {
		case dmarc.OutcomeTempError, dmarc.OutcomePermError:
			reason := ""
			if e.res.Err != nil {
				reason = e.res.Err.Error()
			}
			if len(reason) > maxReasonLen {
				reason = reason[:maxReasonLen] + "..."
			}
			if reason != "" {
				b.WriteString(" reason=")
				b.WriteString(authres.QuoteValue(reason))
			}
		default:
			b.WriteString(" (p=")
			b.WriteString(policyWord(e.res.Policy))
			b.WriteString(" dis=")
			b.WriteString(e.v.applied.String())
			for _, o := range e.v.overrides {
				b.WriteString(" override=")
				b.WriteString(o.Type)
			}
			b.WriteString(")")
		}
		b.WriteString(" header.from=")
		b.WriteString(authres.QuoteValue(e.domain))
	}
	return b.String()
}

// policyWord names the policy for p=: "none" when no record applied, as
// OpenDMARC writes it.
func policyWord(p dmarc.Policy) string {
	if p == dmarc.PolicyUnset {
		return "none"
	}
	return p.String()
}
