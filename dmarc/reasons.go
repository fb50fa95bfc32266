package dmarc

import (
	"fmt"
	"strings"
)

// Reasons explains the result in words, one finding per line, for logs,
// `dmarcd check` and the Authentication-Results comment. They are built on
// demand so that evaluation itself stays cheap. The milter logs them for
// every message, so the lines every message has are joined by hand rather
// than with fmt.
func (r *Result) Reasons() []string {
	out := make([]string, 0, 4)
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if r.Several {
		add("several DMARC records at one name; all were discarded")
	}
	switch {
	case r.FromDomain == "" && r.Err != nil:
		add("%v", r.Err)
		return out
	case r.Outcome == OutcomeTempError:
		add("DNS failure, result unknown: %v", r.Err)
		return out
	case r.Record == nil:
		add("no DMARC record for %s", r.FromDomain)
		return out
	case r.Outcome == OutcomePermError:
		add("%v", r.Err)
		return out
	}
	if r.Inherited {
		out = append(out, "policy record inherited from "+r.PolicyDomain)
	} else {
		out = append(out, "policy record published at "+r.PolicyDomain)
	}
	if r.Record.PFallback {
		add("record has no valid p (or an invalid sp/np) and is applied as p=none")
	}
	out = append(out, r.spfReason(), r.dkimReason())
	if r.Outcome == OutcomePass {
		return out
	}
	switch r.PolicyTag {
	case "np":
		add("%s does not exist: np=%s applies", r.FromDomain, r.Policy)
	case "sp":
		out = append(out, "subdomain policy sp="+r.Policy.String()+" applies")
	default:
		out = append(out, "policy p="+r.Policy.String()+" applies")
	}
	if r.SampledOut {
		add("pct=%d sampled this message out: %s lowered to %s", r.Record.Pct, r.Policy.disposition(), r.Disposition)
	}
	if r.Testing {
		add("t=y (testing): %s lowered to %s", r.Policy.disposition(), r.Disposition)
	}
	return out
}

func (r *Result) spfReason() string {
	s := r.SPF
	switch {
	case s.Result == "":
		return "no SPF result"
	case s.Aligned:
		return "SPF pass for " + s.Domain + " (" + s.Scope.String() + ") aligned with " + r.FromDomain + " (" + alignWord(r.Record.ASPF) + ")"
	case s.Result == AuthPass:
		return "SPF pass for " + s.Domain + " (" + s.Scope.String() + ") not aligned with " + r.FromDomain + " (" + alignWord(r.Record.ASPF) + ")"
	}
	return "SPF " + string(s.Result) + " for " + s.Domain
}

func (r *Result) dkimReason() string {
	if len(r.DKIM) == 0 {
		return "no DKIM signature"
	}
	for _, k := range r.DKIM {
		if k.Aligned {
			return "DKIM pass for d=" + k.Domain + " s=" + k.Selector + " aligned with " + r.FromDomain + " (" + alignWord(r.Record.ADKIM) + ")"
		}
	}
	var b strings.Builder
	b.WriteString("no aligned DKIM pass:")
	for _, k := range r.DKIM {
		b.WriteString(" d=" + k.Domain + " " + string(k.Result) + ";")
	}
	s := b.String()
	return s[:len(s)-1]
}

func alignWord(a Alignment) string {
	if a == Strict {
		return "strict"
	}
	return "relaxed"
}
