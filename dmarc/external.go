package dmarc

import (
	"context"
	"errors"
	"fmt"
)

// Destination is the outcome of verifying one reporting URI (RFC 7489 §7.1,
// RFC 9990 "Verifying External Destinations").
type Destination struct {
	URI URI
	// External is true when the URI's host lies outside the policy domain's
	// organizational domain, so that the host must authorize it.
	External bool
	// Name is the TXT name queried for an external destination,
	// "<policy-domain>._report._dmarc.<host>".
	Name string
	// Authorized is true when reports may go to the URIs in Send.
	Authorized bool
	// Send is where reports go: the URI itself, or the authorizing record's
	// replacement URIs on the same host.
	Send []URI
	// Reason says in words why the destination was refused.
	Reason string
}

// VerifyDestination checks whether reports for policyDomain may be sent to
// u, where tag ("rua" or "ruf") names the list u came from. An error wraps
// ErrTemporary: the answer is unknown and the caller may retry later.
func (e *Evaluator) VerifyDestination(ctx context.Context, policyDomain string, u URI, tag string) (Destination, error) {
	d := Destination{URI: u}
	if u.Address == "" {
		d.Reason = "only mailto: URIs are supported"
		return d, nil
	}
	pd, err := NormalizeDomain(policyDomain)
	if err != nil {
		return d, err
	}
	host, err := NormalizeDomain(u.Domain())
	if err != nil {
		d.Reason = fmt.Sprintf("destination host: %v", err)
		return d, nil
	}
	ev := e.newEval(ctx)
	porg, err := ev.orgDomain(pd)
	if err != nil {
		return d, err
	}
	horg, err := ev.orgDomain(host)
	if err != nil {
		return d, err
	}
	if porg == horg {
		d.Authorized, d.Send = true, []URI{u}
		return d, nil
	}
	d.External = true
	d.Name = pd + "._report._dmarc." + host
	if len(d.Name) > 253 {
		d.Reason = fmt.Sprintf("%s is longer than DNS allows", d.Name)
		return d, nil
	}
	txts, err := e.Resolver.LookupTXT(ctx, d.Name)
	switch {
	case errors.Is(err, ErrNXDomain), errors.Is(err, ErrNoRecords):
		d.Reason = fmt.Sprintf("%s has not authorized reports for %s (no record at %s)", host, pd, d.Name)
		return d, nil
	case err != nil:
		if !errors.Is(err, ErrTemporary) {
			err = fmt.Errorf("%w: %v", ErrTemporary, err)
		}
		return d, fmt.Errorf("lookup %s: %w", d.Name, err)
	}
	return authorize(d, txts, host, tag), nil
}

// authorize reads the authorizing records: any record beginning with
// v=DMARC1 authorizes, and an rua or ruf in it replaces the destination,
// provided every replacement stays on the same host.
func authorize(d Destination, txts []string, host, tag string) Destination {
	var rec *Record
	for _, t := range txts {
		r, err := Parse(t, RFC9989)
		if errors.Is(err, ErrNotDMARC) || r == nil {
			continue
		}
		rec = r
		break
	}
	if rec == nil {
		d.Reason = fmt.Sprintf("no v=DMARC1 record at %s", d.Name)
		return d
	}
	override := rec.RUA
	if tag == "ruf" {
		override = rec.RUF
	}
	if len(override) == 0 {
		d.Authorized, d.Send = true, []URI{d.URI}
		return d
	}
	for _, o := range override {
		if oh, err := NormalizeDomain(o.Domain()); err != nil || oh != host {
			d.Reason = fmt.Sprintf("the record at %s redirects reports to %s, another host: neither may receive them", d.Name, o.Raw)
			return d
		}
	}
	d.Authorized, d.Send = true, override
	return d
}
