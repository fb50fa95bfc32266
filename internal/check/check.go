package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/idna"

	"github.com/dmarcd/dmarcd/dmarc"
)

// Checker checks domains' DMARC records. Its zero value is not usable: set
// Resolver.
type Checker struct {
	// Resolver answers the queries: dmarcd's DNS cache.
	Resolver Resolver
	// Spec judges the records: RFC 9989 (the default) or RFC 7489.
	Spec dmarc.Spec
}

// CheckAll checks each domain in turn.
func (c *Checker) CheckAll(ctx context.Context, domains []string) []*Report {
	reports := make([]*Report, len(domains))
	for i, d := range domains {
		reports[i] = c.Check(ctx, d)
	}
	return reports
}

// Check checks the DMARC record that applies to domain. It always returns
// a report; Report.Status says whether the check could be made and what it
// found.
func (c *Checker) Check(ctx context.Context, domain string) *Report {
	rep := &Report{
		Input:        domain,
		Spec:         c.Spec.String(),
		Tags:         []TagValue{},
		Destinations: []Destination{},
		Findings:     []Finding{},
		Lookups:      []Lookup{},
	}
	tr := newTracer(c.Resolver, c.Spec)
	c.check(ctx, rep, tr)
	rep.Lookups = append(rep.Lookups, tr.trail...)
	rep.finish()
	return rep
}

func (c *Checker) check(ctx context.Context, rep *Report, tr *tracer) {
	name := strings.TrimSpace(rep.Input)
	prefixed := len(name) > len("_dmarc.") && strings.EqualFold(name[:len("_dmarc.")], "_dmarc.")
	if prefixed {
		name = name[len("_dmarc."):]
	}
	d, err := dmarc.NormalizeDomain(name)
	if err != nil {
		rep.fail(err.Error())
		return
	}
	if prefixed {
		rep.add(Info, "", "_dmarc.%s is the name of the record; checking the domain %s", d, d)
	}
	rep.Domain, rep.Unicode = d, d
	if u, err := idna.Lookup.ToUnicode(d); err == nil {
		rep.Unicode = u
	}

	ev := &dmarc.Evaluator{Resolver: tr, Spec: c.Spec}
	disc, err := ev.Discover(ctx, d)
	if err != nil {
		rep.fail(tr.failure(err))
		return
	}
	rep.OrgDomain = str(disc.OrgDomain)
	c.lookalikes(rep, tr, d, disc.OrgDomain)
	for _, l := range disc.Lookups {
		if l.Several {
			n := len(l.TXT)
			if tl := tr.lookup(l.Name); tl != nil {
				n = tl.DMARCRecords
			}
			rep.add(Warning, "", "%s holds %d DMARC records: receivers discard them all, as if there were none; keep exactly one", l.Name, n)
		}
	}
	if disc.Record == nil {
		where := "_dmarc." + d
		if disc.OrgDomain != d {
			where += " nor at the organizational domain " + disc.OrgDomain
		}
		rep.add(Error, "", "no DMARC record applies to %s: none at %s; publish a TXT record at _dmarc.%s, e.g. \"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s\" to start monitoring", d, where, disc.OrgDomain, disc.OrgDomain)
		return
	}

	rec := disc.Record
	rep.Record = str(rec.Raw)
	rep.PolicyDomain = str(disc.PolicyDomain)
	switch {
	case disc.PSD:
		rep.Source = str("psd")
		if disc.OrgDomain == d {
			rep.add(Warning, "", "%s publishes no record of its own: the public suffix domain %s's policy (psd=y) applies", d, disc.PolicyDomain)
		} else {
			rep.add(Warning, "", "neither %s nor its organizational domain %s publishes a record: the public suffix domain %s's policy (psd=y) applies", d, disc.OrgDomain, disc.PolicyDomain)
		}
	case disc.Inherited:
		rep.Source = str("organizational")
	default:
		rep.Source = str("domain")
	}
	if l := tr.lookup("_dmarc." + disc.PolicyDomain); l != nil && l.CNAME != nil {
		rep.add(Info, "", "_dmarc.%s is an alias (CNAME) of %s: the record is published there", disc.PolicyDomain, *l.CNAME)
	}
	rep.Tags = tagTable(rec)
	recordProblems(rep, rec)
	if disc.RecordErr != nil {
		var pe *dmarc.ParseError
		if errors.As(disc.RecordErr, &pe) {
			rep.addAt(Error, pe.Offset, pe.Tag, "%s: the record is unusable; receivers treat it as a permanent error (permerror) and apply no policy", pe.Msg)
		} else {
			rep.add(Error, "", "%v", disc.RecordErr)
		}
	}

	if disc.RecordErr == nil {
		nonexistent := false
		if disc.Inherited {
			exists, err := tr.Exists(ctx, d)
			if err != nil {
				rep.fail(tr.failure(err))
				return
			}
			if !exists {
				nonexistent = true
				rep.add(Info, "", "%s does not exist (NXDOMAIN): it gets the policy for non-existent subdomains", d)
			}
		}
		rep.Policies = policies(rec, disc.Inherited, nonexistent)
		policyFindings(rep, rec, d)
	}
	c.destinations(ctx, rep, tr, ev, rec, disc.PolicyDomain)
}

// lookalikes reports TXT records at the _dmarc names between the domain
// and its organizational domain that were meant as DMARC records but that
// receivers ignore because they do not begin with v=DMARC1.
func (c *Checker) lookalikes(rep *Report, tr *tracer, d, org string) {
	for _, l := range tr.trail {
		at, ok := strings.CutPrefix(l.Name, "_dmarc.")
		if !ok || l.Type != "TXT" || !isSubdomainOrSame(d, at) || !isSubdomainOrSame(at, org) {
			continue
		}
		for _, txt := range l.TXT {
			_, err := dmarc.Parse(txt, c.Spec)
			var pe *dmarc.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, dmarc.ErrNotDMARC) || !strings.Contains(strings.ToLower(txt), "dmarc") {
				continue
			}
			t := txt
			rep.Findings = append(rep.Findings, Finding{
				Severity: Error, Offset: &pe.Offset, Tag: str(pe.Tag), Text: &t,
				Message: fmt.Sprintf("a TXT record at %s looks like DMARC but is not (%s): receivers ignore it; a record must begin exactly with \"v=DMARC1;\"", l.Name, pe.Msg),
			})
		}
	}
}

// recordProblems turns the parser's problems into findings, raising two
// that the parser grades as info but a domain owner should fix: report URIs
// that are not mailto:, and the "!size" suffix RFC 9989 made obsolete.
func recordProblems(rep *Report, rec *dmarc.Record) {
	probs := slices.Clone(rec.Problems)
	slices.SortStableFunc(probs, func(a, b dmarc.Problem) int { return cmp.Compare(a.Offset, b.Offset) })
	for _, p := range probs {
		sev := p.Severity
		rep.addAt(sev, p.Offset, p.Tag, "%s", p.Msg)
	}
}

// policies works out what the record asks for failing mail from the domain
// (which inherits the record or publishes it), its subdomains and, under
// RFC 9989, its non-existent subdomains.
func policies(rec *dmarc.Record, inherited, nonexistent bool) *Policies {
	sp, spFrom := rec.P.String(), "p"
	if rec.SP != dmarc.PolicyUnset {
		sp, spFrom = rec.SP.String(), "sp"
	}
	pol := &Policies{Subdomains: sp, SubdomainsFrom: spFrom, DomainExists: !nonexistent, Testing: rec.Testing, Pct: rec.Pct}
	np, npFrom := sp, spFrom
	if rec.Spec == dmarc.RFC9989 {
		if rec.NP != dmarc.PolicyUnset {
			np, npFrom = rec.NP.String(), "np"
		}
		pol.Nonexistent, pol.NonexistentFrom = &np, &npFrom
	}
	switch {
	case !inherited:
		pol.Domain, pol.DomainFrom = rec.P.String(), "p"
	case nonexistent:
		pol.Domain, pol.DomainFrom = np, npFrom
	default:
		pol.Domain, pol.DomainFrom = sp, spFrom
	}
	return pol
}

// policyFindings grades the policy a usable record asks for.
func policyFindings(rep *Report, rec *dmarc.Record, d string) {
	pol := rep.Policies
	if pol.Domain == "none" && !rec.PFallback {
		from := pol.DomainFrom + "=none"
		rep.add(Warning, pol.DomainFrom, "%s: monitoring only for %s: receivers deliver mail that fails DMARC as if there were no policy; move to quarantine, then reject, once the aggregate reports show your mail passes", from, d)
	}
	if rec.SP != dmarc.PolicyUnset && rec.SP < rec.P {
		rep.add(Warning, "sp", "sp=%s is weaker than p=%s: subdomains are less protected than the domain", rec.SP, rec.P)
	}
	if rec.Spec == dmarc.RFC9989 && rec.NP != dmarc.PolicyUnset {
		sub, tag := rec.P, "p"
		if rec.SP != dmarc.PolicyUnset {
			sub, tag = rec.SP, "sp"
		}
		if rec.NP < sub {
			rep.add(Warning, "np", "np=%s is weaker than %s=%s: non-existent subdomains, which only forgers use, are less protected than existing ones", rec.NP, tag, sub)
		}
	}
	if rec.Spec == dmarc.RFC9989 && rec.Testing {
		rep.add(Warning, "t", "t=y (testing): receivers apply one level less than the policy asks (quarantine for reject, none for quarantine); remove t=y when testing is over")
	}
	if rec.Spec == dmarc.RFC7489 && rec.Pct < 100 {
		rep.add(Warning, "pct", "pct=%d: the policy applies to %d%% of failing mail, the rest gets one level less (quarantine for reject, none for quarantine)", rec.Pct, rec.Pct)
	}
	if rec.Spec == dmarc.RFC9989 {
		if v, ok := rec.Tag("pct"); ok && v != "100" {
			rep.add(Info, "pct", "receivers that implement RFC 7489 still read pct=%s", v)
		}
	}
	if len(rec.RUA) == 0 {
		rep.add(Warning, "rua", "no rua: nobody sends you aggregate reports, so you cannot see who sends mail as %s nor whether it passes; add rua=mailto:<address>", val(rep.PolicyDomain))
	}
}

// unverified begins the reason of a destination whose verification failed.
const unverified = "could not be verified: "

// destinations verifies each rua and ruf URI of the record.
func (c *Checker) destinations(ctx context.Context, rep *Report, tr *tracer, ev *dmarc.Evaluator, rec *dmarc.Record, policyDomain string) {
	usable := 0
	for _, list := range []struct {
		tag  string
		uris []dmarc.URI
	}{{"rua", rec.RUA}, {"ruf", rec.RUF}} {
		for _, u := range list.uris {
			dst := Destination{Tag: list.tag, URI: u.Raw, Send: []string{}}
			v, err := ev.VerifyDestination(ctx, policyDomain, u, list.tag)
			if err != nil {
				why := tr.failure(err)
				dst.Reason = str(unverified + why)
				rep.Destinations = append(rep.Destinations, dst)
				rep.add(Error, list.tag, "%s %s could not be verified: %s", list.tag, u.Raw, why)
				rep.fail(why)
				continue
			}
			dst.External, dst.Authorized, dst.TXTName, dst.Reason = v.External, v.Authorized, str(v.Name), str(v.Reason)
			for _, s := range v.Send {
				dst.Send = append(dst.Send, s.Raw)
			}
			rep.Destinations = append(rep.Destinations, dst)
			switch {
			case v.Authorized && list.tag == "rua":
				usable++
			case v.Authorized, u.Address == "":
				// A ruf needs no more; a URI that is not mailto: has its
				// finding from the parser.
			case v.External:
				why := v.Reason
				if l := tr.lookup(v.Name); l != nil && (l.Result == "nxdomain" || l.Result == "nodata") {
					why = "no record at " + v.Name
				}
				rep.add(Warning, list.tag, "%s %s is outside %s and %s has not authorized it (%s): reporters will not send there; to authorize it, %s publishes %s TXT \"v=DMARC1\"", list.tag, u.Raw, policyDomain, u.Domain(), why, u.Domain(), v.Name)
			default:
				rep.add(Warning, list.tag, "%s %s: %s", list.tag, u.Raw, v.Reason)
			}
			switch {
			case !v.External || !v.Authorized:
			case len(v.Send) == 1 && v.Send[0].Raw == u.Raw:
				rep.add(Info, list.tag, "%s %s is outside %s and authorized by %s", list.tag, u.Raw, policyDomain, v.Name)
			default:
				rep.add(Info, list.tag, "%s %s is outside %s and authorized by %s, which redirects the reports to %s", list.tag, u.Raw, policyDomain, v.Name, strings.Join(dst.Send, ","))
			}
		}
	}
	if len(rec.RUA) > 0 && usable == 0 && rep.Error == nil {
		rep.add(Warning, "rua", "none of the rua destinations will receive aggregate reports")
	}
}

// finish sorts the findings, errors first, and sets the status.
func (r *Report) finish() {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int { return cmp.Compare(b.Severity, a.Severity) })
	switch {
	case r.Error != nil:
		r.Status = StatusFailed
	case len(r.Findings) > 0 && r.Findings[0].Severity >= Warning:
		r.Status = StatusProblems
	default:
		r.Status = StatusOK
	}
}

// isSubdomainOrSame reports whether d equals parent or lies below it.
func isSubdomainOrSame(d, parent string) bool {
	return d == parent || strings.HasSuffix(d, "."+parent)
}
