package milter

import (
	"fmt"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report"
)

// verdict is what the milter does with one evaluated From domain.
type verdict struct {
	action Action
	reply  Reply // for Reject and Tempfail
	// applied is the disposition actually applied, for dis= and reports.
	applied   dmarc.Disposition
	overrides []report.Override
	// why says in a few words what decided the action, for the log.
	why string
}

// decide is the one table from DMARC outcome to action (issue: actions
// from one table). Relaxed mode never blocks mail; a deviation from the
// published policy is recorded as an override so the domain owner learns
// of it (RFC 9989 §5.4).
func decide(res *dmarc.Result, mode Mode, pol *Policy, local *LocalPolicy) verdict {
	switch res.Outcome {
	case dmarc.OutcomeNone, dmarc.OutcomePass:
		return verdict{action: Accept, why: res.Outcome.String()}
	case dmarc.OutcomeTempError:
		if pol.TempError == Tempfail && mode == Strict {
			return verdict{action: Tempfail, reply: pol.TempfailReply, why: "DNS failure: tempfail"}
		}
		return verdict{action: Accept, why: "DNS failure: accepted"}
	case dmarc.OutcomePermError:
		if pol.PermError == Reject && mode == Strict {
			return verdict{action: Reject, reply: pol.RejectReply, applied: dmarc.DispositionReject, why: "invalid record: rejected"}
		}
		return verdict{action: Accept, why: "invalid record: accepted"}
	}

	v := verdict{applied: res.Disposition}
	if res.SampledOut {
		v.overrides = append(v.overrides, report.Override{Type: report.OverrideSampledOut, Comment: fmt.Sprintf("pct=%d", res.Record.Pct)})
	}
	if res.Testing {
		v.overrides = append(v.overrides, report.Override{Type: report.OverridePolicyTestMode, Comment: "t=y"})
	}
	if local != nil && local.Policy != dmarc.PolicyUnset {
		want := dispositionOf(local.Policy)
		if want != v.applied {
			v.overrides = append(v.overrides, report.Override{Type: report.OverrideLocalPolicy, Comment: localComment(local)})
			v.applied = want
		}
	}
	wanted := v.applied
	switch {
	case wanted == dmarc.DispositionNone:
		v.action, v.why = Accept, "policy none"
	case mode != Strict:
		v.action, v.applied, v.why = Accept, dmarc.DispositionNone, "relaxed mode: not enforced"
	case wanted == dmarc.DispositionReject:
		v.action = pol.Reject
		v.why = "policy reject"
	default:
		v.action = pol.Quarantine
		v.why = "policy quarantine"
	}
	switch v.action {
	case Reject:
		v.reply, v.applied = pol.RejectReply, dmarc.DispositionReject
	case Quarantine:
		v.applied = dmarc.DispositionQuarantine
	case Accept:
		v.applied = dmarc.DispositionNone
	}
	if v.applied != wanted {
		v.overrides = append(v.overrides, report.Override{Type: report.OverrideLocalPolicy,
			Comment: fmt.Sprintf("%s requested, %s applied (%s)", wanted, v.applied, v.why)})
		if mode == Strict {
			v.why = fmt.Sprintf("%s: %s by local configuration", v.why, v.action)
		}
	}
	return v
}

func dispositionOf(p dmarc.Policy) dmarc.Disposition {
	switch p {
	case dmarc.PolicyQuarantine:
		return dmarc.DispositionQuarantine
	case dmarc.PolicyReject:
		return dmarc.DispositionReject
	}
	return dmarc.DispositionNone
}

func localComment(lp *LocalPolicy) string {
	s := fmt.Sprintf("local policy %s for %s", lp.Policy, lp.Domain)
	if lp.Comment != "" {
		s += ": " + lp.Comment
	}
	return s
}

// strictness orders verdicts so that several From domains yield the
// strictest: reject, then tempfail, quarantine, accept.
func (v verdict) strictness() int {
	switch v.action {
	case Reject:
		return 3
	case Tempfail:
		return 2
	case Quarantine:
		return 1
	}
	return 0
}
