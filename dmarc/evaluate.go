package dmarc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
)

// SPFScope says which identity an SPF result is for.
type SPFScope uint8

// The SPF identities (RFC 7208 §2.3, §2.4).
const (
	// ScopeMailFrom is the RFC5321.MailFrom domain, the one DMARC uses.
	ScopeMailFrom SPFScope = iota
	// ScopeHelo is the HELO/EHLO name. DMARC uses it only when MAIL FROM
	// was null, because SPF then checks postmaster@HELO (RFC 7208 §2.4).
	ScopeHelo
)

// String returns "mfrom" or "helo", the words aggregate reports use.
func (s SPFScope) String() string {
	if s == ScopeHelo {
		return "helo"
	}
	return "mfrom"
}

// SPF is the SPF result DMARC evaluates.
type SPF struct {
	// Domain is the MAIL FROM domain, or the HELO name when MAIL FROM was
	// null (then Scope is ScopeHelo). Empty when there is no SPF result.
	Domain string
	Scope  SPFScope
	Result AuthResult
}

// DKIM is the result of one DKIM signature.
type DKIM struct {
	Domain   string // d=
	Selector string // s=
	Result   AuthResult
}

// Rand is the random source pct sampling draws from; *rand.Rand from
// math/rand/v2 satisfies it.
type Rand interface {
	// IntN returns a number in [0, n).
	IntN(n int) int
}

// Input is what DMARC evaluates for one message.
type Input struct {
	// FromDomain is the RFC5322.From domain, in U-label or A-label form.
	FromDomain string
	SPF        SPF
	// DKIM holds every signature's result, passing or not.
	DKIM []DKIM
	// Rand drives RFC 7489 pct sampling. Nil means math/rand/v2's global
	// source; a seeded source makes evaluation deterministic.
	Rand Rand
}

// Identifier is one authenticated identifier and whether it aligned.
type Identifier struct {
	Domain   string     // normalized; the raw value when it is not a domain
	Selector string     // DKIM only
	Scope    SPFScope   // SPF only
	Result   AuthResult // the SPF or DKIM result as given
	Aligned  bool
}

// Result is the outcome of Evaluate. It is complete whatever the outcome:
// a temperror or permerror result still says what was found.
type Result struct {
	Spec Spec
	// Outcome is the DMARC result: pass, fail, none, temperror, permerror.
	Outcome Outcome
	// Disposition is what the policy asks for this message, after pct
	// sampling or t=y: none unless Outcome is fail.
	Disposition Disposition
	// Policy is the policy the record requests for this message (from p,
	// sp or np, named by PolicyTag) before pct or t=y lower it; PolicyUnset
	// when no record applies. For a pass it is p or sp: whether the From
	// domain exists, which selects np, is only asked for failures.
	Policy    Policy
	PolicyTag string
	// FromDomain is the From domain, normalized.
	FromDomain string
	// Record is the policy record, nil when none was found.
	Record *Record
	// PolicyDomain is where Record was found; Inherited is true when that
	// is the organizational or public suffix domain rather than FromDomain.
	PolicyDomain string
	Inherited    bool
	// OrgDomain is FromDomain's organizational domain when evaluation
	// needed it (relaxed alignment of a different domain), else "".
	OrgDomain string
	// NonExistent is true when FromDomain was found not to exist
	// (NXDOMAIN), which selects np.
	NonExistent bool
	// SPF and DKIM are the identifiers evaluated, with their alignment.
	SPF        Identifier
	DKIM       []Identifier
	SPFAligned bool
	// DKIMAligned is true when at least one DKIM signature aligned.
	DKIMAligned bool
	// SampledOut is true when pct sampling lowered the disposition
	// (RFC 7489); Testing when t=y did (RFC 9989).
	SampledOut bool
	Testing    bool
	// Several is true when a name held several DMARC records, all
	// discarded.
	Several bool
	// Err says why Outcome is temperror or permerror.
	Err error
}

// Evaluate applies DMARC to a message. The Result is always filled in; err
// is non-nil exactly when the outcome is temperror (errors.Is(err,
// ErrTemporary)) or permerror (an unusable record or an invalid From
// domain), and is Result.Err.
func (e *Evaluator) Evaluate(ctx context.Context, in Input) (Result, error) {
	res := Result{Spec: e.Spec}
	from, err := NormalizeDomain(in.FromDomain)
	if err != nil {
		return res.fail(OutcomePermError, fmt.Errorf("From domain: %w", err))
	}
	res.FromDomain = from
	ev := e.newEval(ctx)
	disc, err := ev.discover(from)
	res.Several = disc.Several
	if err != nil {
		return res.fail(OutcomeTempError, err)
	}
	if disc.Record == nil {
		return res, nil // no policy: DMARC does not apply
	}
	res.Record, res.PolicyDomain, res.Inherited = disc.Record, disc.PolicyDomain, disc.Inherited
	if disc.RecordErr != nil {
		return res.fail(OutcomePermError, fmt.Errorf("record at _dmarc.%s: %w", disc.PolicyDomain, disc.RecordErr))
	}
	if err := ev.align(&res, in); err != nil {
		return res.fail(OutcomeTempError, err)
	}
	if res.SPFAligned || res.DKIMAligned {
		res.Outcome = OutcomePass
		res.Policy, res.PolicyTag = res.Record.P, "p"
		if res.Inherited && res.Record.SP != PolicyUnset {
			res.Policy, res.PolicyTag = res.Record.SP, "sp"
		}
		return res, nil
	}
	res.Outcome = OutcomeFail
	if err := ev.choosePolicy(&res); err != nil {
		return res.fail(OutcomeTempError, err)
	}
	e.applyPolicy(&res, in.Rand)
	return res, nil
}

func (r Result) fail(o Outcome, err error) (Result, error) {
	r.Outcome, r.Disposition, r.Err = o, DispositionNone, err
	return r, err
}

// align checks every passing identifier. An identifier whose alignment
// could not be decided for a DNS failure makes the result temperror only
// when no other identifier aligned.
func (ev *eval) align(res *Result, in Input) error {
	var tempErr error
	check := func(id string, mode Alignment) (string, bool) {
		d, err := NormalizeDomain(id)
		if err != nil {
			return id, false
		}
		ok, err := ev.aligned(res, d, mode)
		if err != nil && tempErr == nil {
			tempErr = err
		}
		return d, ok
	}
	res.SPF = Identifier{Domain: in.SPF.Domain, Scope: in.SPF.Scope, Result: in.SPF.Result}
	if in.SPF.Result == AuthPass && in.SPF.Domain != "" {
		res.SPF.Domain, res.SPF.Aligned = check(in.SPF.Domain, res.Record.ASPF)
		res.SPFAligned = res.SPF.Aligned
	}
	if len(in.DKIM) > 0 {
		res.DKIM = make([]Identifier, len(in.DKIM))
	}
	for i, k := range in.DKIM {
		id := Identifier{Domain: k.Domain, Selector: k.Selector, Result: k.Result}
		if k.Result == AuthPass && k.Domain != "" {
			id.Domain, id.Aligned = check(k.Domain, res.Record.ADKIM)
			res.DKIMAligned = res.DKIMAligned || id.Aligned
		}
		res.DKIM[i] = id
	}
	if res.SPFAligned || res.DKIMAligned {
		return nil
	}
	return tempErr
}

// aligned compares an authenticated identifier with the From domain:
// identical for strict, the same organizational domain for relaxed.
func (ev *eval) aligned(res *Result, id string, mode Alignment) (bool, error) {
	if id == res.FromDomain {
		return true, nil
	}
	if mode == Strict {
		return false, nil
	}
	if res.OrgDomain == "" {
		org, err := ev.orgDomain(res.FromDomain)
		if err != nil {
			return false, err
		}
		res.OrgDomain = org
	}
	// An organizational domain is the name itself or one of its parents,
	// so an identifier outside the From domain's cannot share it.
	if !isSubdomainOrSame(id, res.OrgDomain) {
		return false, nil
	}
	org, err := ev.orgDomain(id)
	if err != nil {
		return false, err
	}
	return org == res.OrgDomain, nil
}

// choosePolicy picks p, sp or np for a failing message (RFC 9989 §4.10.1,
// RFC 7489 §6.6.3): p for the domain that published the record, np for a
// subdomain that does not exist (RFC 9989 only), sp for other subdomains,
// each falling back to the tag before it.
func (ev *eval) choosePolicy(res *Result) error {
	rec := res.Record
	res.Policy, res.PolicyTag = rec.P, "p"
	if !res.Inherited {
		return nil
	}
	if rec.NP != PolicyUnset {
		exists, err := ev.e.Resolver.Exists(ev.ctx, res.FromDomain)
		if err != nil {
			if !errors.Is(err, ErrTemporary) {
				err = fmt.Errorf("%w: %v", ErrTemporary, err)
			}
			return fmt.Errorf("existence of %s: %w", res.FromDomain, err)
		}
		if !exists {
			res.NonExistent = true
			res.Policy, res.PolicyTag = rec.NP, "np"
			return nil
		}
	}
	if rec.SP != PolicyUnset {
		res.Policy, res.PolicyTag = rec.SP, "sp"
	}
	return nil
}

// applyPolicy turns the chosen policy into a disposition, lowered one
// level by pct sampling (RFC 7489 §6.3) or by t=y (RFC 9989 §4.7).
func (e *Evaluator) applyPolicy(res *Result, rnd Rand) {
	res.Disposition = res.Policy.disposition()
	if res.Disposition == DispositionNone {
		return
	}
	rec := res.Record
	switch {
	case e.Spec == RFC7489 && rec.Pct < 100:
		var n int
		if rnd != nil {
			n = rnd.IntN(100)
		} else {
			n = rand.IntN(100)
		}
		if n >= rec.Pct {
			res.SampledOut = true
			res.Disposition = res.Disposition.downgrade()
		}
	case e.Spec == RFC9989 && rec.Testing:
		res.Testing = true
		res.Disposition = res.Disposition.downgrade()
	}
}
