package milter

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/arc"
	"github.com/dmarcd/dmarcd/report"
)

// rescueByARC applies the local override trusted_forwarder (RFC 8617
// §7.2.1, RFC 9989 §5.4) to From domains that failed DMARC, for quarantine
// and reject alike, when the message's ARC chain validates, the newest
// sealer is trusted, and the ARC-Authentication-Results of a trusted sealer
// in the unbroken run of trusted sealers from the newest one back show an
// SPF or DKIM pass aligned with the From domain. Requiring the newest
// sealer to be trusted matters: an untrusted last hop could have replayed
// a trusted hop's seal onto a message of its own.
func (s *session) rescueByARC(ctx context.Context, out *outcome, in *inputs) {
	if len(s.cfg.ARCTrustedSealers) == 0 || !out.hasFailure() {
		return
	}
	if !s.msg.whole || s.msg.tooLarge {
		in.notes = append(in.notes, "ARC not verified here: no whole message")
		return
	}
	fields := make([]arc.Field, len(s.msg.fields))
	for i, f := range s.msg.fields {
		fields[i] = arc.MilterField(f.name, f.value, s.msg.leadSP)
	}
	res, err := arc.Verify(ctx, fields, bytes.NewReader(s.msg.body.Bytes()), s.deps.Evaluator.Resolver.LookupTXT)
	if err != nil {
		in.notes = append(in.notes, "ARC not verified: "+err.Error())
		return
	}
	in.clauses = append(in.clauses, "arc="+res.CV)
	if in.arc == "" {
		in.arc = res.CV
	}
	if res.CV != arc.CVPass {
		if res.CV == arc.CVFail {
			in.notes = append(in.notes, "ARC chain fails: "+res.Reason)
		}
		return
	}
	for i := range out.evs {
		e := &out.evs[i]
		if e.res.Outcome != dmarc.OutcomeFail || e.v.applied == dmarc.DispositionNone && e.v.action == Accept {
			continue
		}
		if set, ok := s.trustedPass(ctx, res.Sets, e.domain); ok {
			comment := fmt.Sprintf("arc=pass as[%d].d=%s", set.Instance, set.SealDomain)
			e.v = verdict{action: Accept, applied: dmarc.DispositionNone,
				overrides: append(e.v.overrides, report.Override{Type: report.OverrideTrustedForwarder, Comment: comment}),
				why:       "rescued by trusted ARC sealer " + set.SealDomain}
		}
	}
	out.final, out.domain = verdict{}, ""
	evs := out.evs
	out.evs = nil
	for _, e := range evs {
		out.add(e)
	}
}

// hasFailure reports whether some From domain failed DMARC with a
// disposition worth overriding.
func (o outcome) hasFailure() bool {
	for _, e := range o.evs {
		if e.res.Outcome == dmarc.OutcomeFail && (e.v.applied != dmarc.DispositionNone || e.v.action != Accept) {
			return true
		}
	}
	return false
}

// trustedPass walks the sets from the newest back while their sealer is
// trusted, and returns the first whose recorded results make domain pass.
func (s *session) trustedPass(ctx context.Context, sets []arc.Set, domain string) (arc.Set, bool) {
	for i := len(sets) - 1; i >= 0; i-- {
		set := sets[i]
		if !domainListed(s.cfg.ARCTrustedSealers, strings.ToLower(set.SealDomain)) {
			break
		}
		if set.AAR != nil && s.aarPasses(ctx, set, domain) {
			return set, true
		}
	}
	return arc.Set{}, false
}

// aarPasses evaluates DMARC for domain with the SPF and DKIM results a
// sealer recorded at its hop.
func (s *session) aarPasses(ctx context.Context, set arc.Set, domain string) bool {
	in := dmarc.Input{FromDomain: domain}
	for _, r := range set.AAR.Results {
		switch r.Method {
		case "spf":
			if d := propDomain(r, "smtp", "mailfrom"); d != "" && in.SPF.Result != dmarc.AuthPass {
				in.SPF = dmarc.SPF{Domain: d, Scope: dmarc.ScopeMailFrom, Result: authResult(r.Value)}
			}
		case "dkim":
			if d := propDomain(r, "header", "d"); d != "" {
				in.DKIM = append(in.DKIM, dmarc.DKIM{Domain: d, Result: authResult(r.Value)})
			}
		}
	}
	res, _ := s.deps.Evaluator.Evaluate(ctx, in)
	return res.Outcome == dmarc.OutcomePass
}
