package check

import (
	"fmt"

	"github.com/dmarcd/dmarcd/dmarc"
)

// Status is the verdict on one domain.
type Status string

// The statuses, best first.
const (
	// StatusOK: a usable record applies and nothing worse than info was found.
	StatusOK Status = "ok"
	// StatusProblems: no record applies, or errors or warnings were found.
	StatusProblems Status = "problems"
	// StatusFailed: the check could not be completed, because a DNS lookup
	// failed (SERVFAIL, timeout: temperror) or the name is not a domain.
	StatusFailed Status = "failed"
)

// ExitCode returns the process exit code for the status: 0 for ok, 1 for
// problems, 2 for failed.
func (s Status) ExitCode() int {
	switch s {
	case StatusOK:
		return 0
	case StatusProblems:
		return 1
	}
	return 2
}

// ExitCode returns the exit code of a check of several domains: the worst
// of theirs (2 > 1 > 0), and 0 for none.
func ExitCode(reports []*Report) int {
	code := 0
	for _, r := range reports {
		code = max(code, r.Status.ExitCode())
	}
	return code
}

// Severity grades a Finding, on the record parser's own scale.
type Severity = dmarc.Severity

// The severities, mildest first.
const (
	Info    = dmarc.Info
	Warning = dmarc.Warning
	Error   = dmarc.Error
)

// Report is the outcome of checking one domain. Its JSON form is the
// documented output of `dmarcd check -json` (see the package comment);
// every key is always present, null when it does not apply.
type Report struct {
	// Input is the argument as given.
	Input string `json:"input"`
	// Domain is the domain checked, normalized: A-labels, lower case, no
	// final dot. Empty when Input is not a domain.
	Domain string `json:"domain"`
	// Unicode is Domain with its A-labels shown as U-labels; equal to
	// Domain when it has none.
	Unicode string `json:"unicode"`
	// Spec is the spec that judged: "rfc9989" or "rfc7489".
	Spec string `json:"spec"`
	// Status is "ok", "problems" or "failed".
	Status Status `json:"status"`
	// Error says why the check failed when Status is "failed".
	Error *string `json:"error"`

	// PolicyDomain is where the record that applies was found.
	PolicyDomain *string `json:"policy_domain"`
	// Source says how: "domain" (published at the domain itself),
	// "organizational" (inherited from the organizational domain) or "psd"
	// (from a public suffix domain's record with psd=y, RFC 9989).
	Source *string `json:"source"`
	// OrgDomain is the domain's organizational domain under Spec.
	OrgDomain *string `json:"org_domain"`
	// Record is the text of the record that applies.
	Record *string `json:"record"`

	// Tags lists every tag the spec defines, then any other tag written,
	// with its effective value.
	Tags []TagValue `json:"tags"`
	// Policies is what the record asks for mail that fails DMARC; null when
	// no usable record applies.
	Policies *Policies `json:"policies"`
	// Destinations are the rua and ruf URIs with their verification.
	Destinations []Destination `json:"destinations"`
	// Findings are sorted by severity, errors first.
	Findings []Finding `json:"findings"`
	// Lookups are the DNS queries made, in order, each name once.
	Lookups []Lookup `json:"lookups"`
}

// TagValue is one row of the tag table.
type TagValue struct {
	Name string `json:"name"`
	// Value is the value as written; null when the tag is absent.
	Value *string `json:"value"`
	// Effective is the value that applies under the spec, defaults and
	// inheritance (sp from p, np from sp or p) filled in; "" when the tag
	// has no effect (ignored, or rua/ruf absent).
	Effective string `json:"effective"`
	// Default is true when the tag is absent, so that Effective is its
	// default or inherited value.
	Default bool `json:"default"`
	// Note explains Effective in words: "default", "same as p", "ignored:
	// removed by RFC 9989", ...; "" when the value applies as written.
	Note string `json:"note"`
}

// Policies is what the record asks receivers to do with failing mail.
type Policies struct {
	// Domain is the policy for mail From the domain itself.
	Domain string `json:"domain"`
	// DomainFrom is the tag Domain comes from: "p", "sp" or "np".
	DomainFrom string `json:"domain_from"`
	// DomainExists is false when the domain does not exist (NXDOMAIN), so
	// that it gets the policy for non-existent subdomains.
	DomainExists bool `json:"domain_exists"`
	// Subdomains is the policy for the domain's subdomains that publish no
	// record of their own.
	Subdomains     string `json:"subdomains"`
	SubdomainsFrom string `json:"subdomains_from"`
	// Nonexistent is the policy for subdomains that do not exist (RFC 9989
	// np); null under RFC 7489.
	Nonexistent     *string `json:"nonexistent"`
	NonexistentFrom *string `json:"nonexistent_from"`
	// Testing is t=y (RFC 9989): receivers apply one level less.
	Testing bool `json:"testing"`
	// Pct is the share of failing mail the policy applies to (RFC 7489);
	// the rest gets one level less. Always 100 under RFC 9989.
	Pct int `json:"pct"`
}

// Destination is one rua or ruf URI and whether reports may go there.
type Destination struct {
	Tag string `json:"tag"` // "rua" or "ruf"
	URI string `json:"uri"` // as written
	// External is true when the URI's host lies outside the policy
	// domain's organizational domain and must authorize it.
	External bool `json:"external"`
	// Authorized is true when reporters will send reports (to Send).
	Authorized bool `json:"authorized"`
	// TXTName is the name that authorizes an external destination,
	// "<policy-domain>._report._dmarc.<host>"; null when not external.
	TXTName *string `json:"txt_name"`
	// Send lists where reports go: the URI itself, or the authorizing
	// record's override; empty when refused.
	Send []string `json:"send"`
	// Reason says why the destination is refused or could not be verified.
	Reason *string `json:"reason"`
}

// Finding is something a domain owner should know.
type Finding struct {
	Severity Severity `json:"severity"` // "error", "warning" or "info"
	// Offset is the byte offset in Record (or in Text when set) the finding
	// is about; null when it is not about a position in a record.
	Offset *int `json:"offset"`
	// Tag is the tag concerned, lowercase; null for none.
	Tag     *string `json:"tag"`
	Message string  `json:"message"`
	// Text is the TXT record Offset points into when that is not Record
	// (a record that receivers ignore); null otherwise.
	Text *string `json:"text"`
}

// Lookup is one DNS query made during the check.
type Lookup struct {
	Name string `json:"name"` // lowercase, no final dot
	// Type is "TXT", or "A" for an existence check.
	Type string `json:"type"`
	// Result is "records", "nxdomain", "nodata" or "error" for TXT, and
	// "exists", "nxdomain" or "error" for A.
	Result string `json:"result"`
	// TXT are the TXT records, character-strings joined.
	TXT []string `json:"txt"`
	// DMARCRecords counts the TXT records that begin with v=DMARC1.
	DMARCRecords int `json:"dmarc_records"`
	// CNAME is the canonical name when Name is an alias; null otherwise.
	CNAME *string `json:"cname"`
	// TCP is true when the UDP answer was truncated and TCP gave the
	// answer.
	TCP bool `json:"tcp"`
	// Error describes a failed lookup: "SERVFAIL", "timeout", ...
	Error *string `json:"error"`
}

// str returns a pointer to s, or nil for "".
func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// val returns *p, or "" for nil.
func val(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// add appends a finding.
func (r *Report) add(sev Severity, tag string, format string, args ...any) *Finding {
	r.Findings = append(r.Findings, Finding{Severity: sev, Tag: str(tag), Message: fmt.Sprintf(format, args...)})
	return &r.Findings[len(r.Findings)-1]
}

// addAt appends a finding about a position in the record.
func (r *Report) addAt(sev Severity, off int, tag string, format string, args ...any) {
	f := r.add(sev, tag, format, args...)
	f.Offset = &off
}

// fail marks the check failed; the first reason given is kept.
func (r *Report) fail(reason string) {
	if r.Error == nil {
		r.Error = &reason
	}
}
