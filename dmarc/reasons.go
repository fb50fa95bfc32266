package dmarc

import "fmt"

// Reasons explains the result in words, one finding per line, for logs,
// `dmarcd check` and the Authentication-Results comment. They are built on
// demand so that evaluation itself stays cheap.
func (r *Result) Reasons() []string {
	var out []string
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
		add("policy record inherited from %s", r.PolicyDomain)
	} else {
		add("policy record published at %s", r.PolicyDomain)
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
		add("subdomain policy sp=%s applies", r.Policy)
	default:
		add("policy p=%s applies", r.Policy)
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
		return fmt.Sprintf("SPF pass for %s (%s) aligned with %s (%s)", s.Domain, s.Scope, r.FromDomain, alignWord(r.Record.ASPF))
	case s.Result == AuthPass:
		return fmt.Sprintf("SPF pass for %s (%s) not aligned with %s (%s)", s.Domain, s.Scope, r.FromDomain, alignWord(r.Record.ASPF))
	}
	return fmt.Sprintf("SPF %s for %s", s.Result, s.Domain)
}

func (r *Result) dkimReason() string {
	if len(r.DKIM) == 0 {
		return "no DKIM signature"
	}
	for _, k := range r.DKIM {
		if k.Aligned {
			return fmt.Sprintf("DKIM pass for d=%s s=%s aligned with %s (%s)", k.Domain, k.Selector, r.FromDomain, alignWord(r.Record.ADKIM))
		}
	}
	s := "no aligned DKIM pass:"
	for _, k := range r.DKIM {
		s += fmt.Sprintf(" d=%s %s;", k.Domain, k.Result)
	}
	return s[:len(s)-1]
}

func alignWord(a Alignment) string {
	if a == Strict {
		return "strict"
	}
	return "relaxed"
}
