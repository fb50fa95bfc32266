package failure

import (
	"net/netip"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report/delivery"
)

// Incident is one message that failed in a way its policy domain asked to
// hear about: what a failure report says, before redaction. It is kept in
// the store as JSON until the report is sent.
type Incident struct {
	// Spec is the DMARC spec the message was evaluated under, "rfc9989"
	// or "rfc7489".
	Spec string `json:"spec"`
	// PolicyDomain is where the record was found, FromDomain the
	// RFC5322.From domain (the Reported-Domain).
	PolicyDomain string `json:"policy_domain"`
	FromDomain   string `json:"from_domain"`
	// Arrival is when the message arrived (Arrival-Date).
	Arrival time.Time `json:"arrival"`
	// SourceIP is the SMTP client's address, Helo its HELO name.
	SourceIP netip.Addr `json:"source_ip"`
	Helo     string     `json:"helo,omitempty"`
	// MailFrom is the envelope sender, "" for the null reverse-path;
	// RcptTo the envelope recipients.
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to,omitempty"`
	// QueueID is the MTA's queue id, for our log only: it is not written
	// in the report.
	QueueID string `json:"queue_id,omitempty"`
	// AuthServID is ours, for the report's Authentication-Results.
	AuthServID string `json:"authserv_id"`
	// DMARC is the DMARC result: "fail", or "pass" under fo=1, d or s.
	DMARC string `json:"dmarc"`
	// DeliveryResult is RFC 6591's: delivered, spam, policy, reject or
	// other.
	DeliveryResult string `json:"delivery_result"`
	// SPF and DKIM are the authentication results, with their alignment.
	SPF  Auth   `json:"spf"`
	DKIM []Auth `json:"dkim,omitempty"`
	// Headers are the header fields of the message as received, in order;
	// HeadersTruncated says the milter's cap cut the header section.
	Headers          []Field `json:"headers,omitempty"`
	HeadersTruncated bool    `json:"headers_truncated,omitempty"`
	// Body is the message body, when the whole message is reported; nil
	// otherwise. BodyOmitted says a body existed but was too large.
	Body        []byte `json:"body,omitempty"`
	BodyOmitted bool   `json:"body_omitted,omitempty"`
	// RUF are the failure report destinations of the record.
	RUF []Destination `json:"ruf"`
	// SPFDNS is the SPF record of SPF.Domain as the sender found it when
	// it made the report (RFC 6591 SPF-DNS), "" when unknown.
	SPFDNS string `json:"spf_dns,omitempty"`
}

// Auth is one SPF or DKIM result.
type Auth struct {
	Domain   string `json:"domain,omitempty"`
	Selector string `json:"selector,omitempty"` // DKIM only
	Scope    string `json:"scope,omitempty"`    // SPF only: mfrom or helo
	Result   string `json:"result,omitempty"`
	Aligned  bool   `json:"aligned,omitempty"`
}

// Field is one header field: its name and its value as received, which
// begins with the space after the colon when there is one, and may be
// folded.
type Field struct {
	Name  string `json:"n"`
	Value string `json:"v"`
}

// Destination is one ruf URI: its address and "!size" limit (RFC 7489; 0
// for none).
type Destination struct {
	Raw     string `json:"raw"`
	Address string `json:"address"`
	MaxSize uint64 `json:"max_size,omitempty"`
}

// URI returns d as the dmarc.URI destination verification wants.
func (d Destination) URI() dmarc.URI {
	return dmarc.URI{Raw: d.Raw, Address: d.Address, MaxSize: d.MaxSize}
}

// Domain returns the domain of the address, lower-cased.
func (d Destination) Domain() string {
	return d.URI().Domain()
}

// Wanted reports whether the policy record of res asks for a failure
// report about the message, and why: the record has a mailto: ruf, is not
// a public suffix domain's (psd=y), its rf (RFC 7489 only) allows afrf,
// and its fo matches the results (RFC 9991, RFC 7489 §6.3):
//
//   - 0 (the default): no mechanism produced an aligned pass;
//   - 1: some mechanism did not produce an aligned pass;
//   - d: a DKIM signature failed to verify, aligned or not;
//   - s: SPF failed, aligned or not.
//
// onNone false leaves out domains whose policy is p=none, as OpenDMARC
// does by default (FailureReportsOnNone). Only pass and fail results
// qualify: a temperror or permerror says nothing reliable about the
// message.
func Wanted(res *dmarc.Result, onNone bool) (bool, string) {
	rec := res.Record
	switch {
	case rec == nil:
		return false, "no policy record"
	case res.Outcome != dmarc.OutcomeFail && res.Outcome != dmarc.OutcomePass:
		return false, "DMARC result " + res.Outcome.String()
	case !hasMailto(rec.RUF):
		return false, "no ruf"
	case rec.PSD == dmarc.PSDYes:
		// RFC 9991: the ruf of a public suffix domain's record is not
		// considered, its owner being no sender of the message.
		return false, "psd=y"
	case rec.Spec == dmarc.RFC7489 && !afrf(rec.RF):
		return false, "rf has no afrf"
	case !onNone && res.Policy == dmarc.PolicyNone:
		return false, "p=none"
	}
	fo := rec.FO
	if fo == 0 {
		fo = dmarc.FO0
	}
	if fo&dmarc.FO0 != 0 && !res.SPFAligned && !res.DKIMAligned {
		return true, "fo=0: no mechanism aligned"
	}
	if fo&dmarc.FO1 != 0 && (!res.SPFAligned || !res.DKIMAligned) {
		return true, "fo=1: a mechanism did not align"
	}
	if fo&dmarc.FOD != 0 {
		for _, k := range res.DKIM {
			if failed(k.Result) {
				return true, "fo=d: a DKIM signature failed"
			}
		}
	}
	if fo&dmarc.FOS != 0 && failed(res.SPF.Result) {
		return true, "fo=s: SPF failed"
	}
	return false, "fo=" + fo.String() + " not met"
}

// failed reports whether an SPF or DKIM result is a failure: fail, or a
// permanent error (a broken signature or SPF record). softfail, neutral,
// none and temperror are not failures.
func failed(r dmarc.AuthResult) bool {
	return r == dmarc.AuthFail || r == dmarc.AuthPermError
}

func hasMailto(us []dmarc.URI) bool {
	for _, u := range us {
		if u.Address != "" {
			return true
		}
	}
	return false
}

// afrf reports whether an rf list allows the only format dmarcd writes.
// A record without rf means afrf.
func afrf(rf []string) bool {
	if len(rf) == 0 {
		return true
	}
	for _, f := range rf {
		if strings.EqualFold(f, "afrf") {
			return true
		}
	}
	return false
}

// Destinations returns the mailto: ruf URIs of rec.
func Destinations(rec *dmarc.Record) []Destination {
	var out []Destination
	for _, u := range rec.RUF {
		if u.Address != "" {
			out = append(out, Destination{Raw: u.Raw, Address: u.Address, MaxSize: u.MaxSize})
		}
	}
	return out
}

// Exempt reports whether no failure report may be made about a message,
// whatever its results, and why: a bounce (null MAIL FROM), a message an
// Auto-Submitted field marks as automatic (RFC 3834 §2), a report or DSN
// (multipart/report, RFC 6522), or an aggregate report by its Subject.
// Answering those could start a loop between two reporters.
func Exempt(mailFrom string, fields []Field) (bool, string) {
	if strings.Trim(mailFrom, "<> ") == "" {
		return true, "null MAIL FROM"
	}
	for _, f := range fields {
		v := strings.TrimSpace(f.Value)
		switch {
		case strings.EqualFold(f.Name, "Auto-Submitted") && delivery.IsAutoSubmitted(v):
			return true, "Auto-Submitted: " + v
		case strings.EqualFold(f.Name, "Content-Type") && isReport(v):
			return true, "Content-Type multipart/report"
		case strings.EqualFold(f.Name, "Subject"):
			if _, _, _, ok := delivery.ParseSubject(unfold(v)); ok {
				return true, "aggregate report Subject"
			}
		}
	}
	return false, ""
}

func isReport(contentType string) bool {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(t), "multipart/report")
}

func unfold(s string) string {
	s = strings.NewReplacer("\r\n", "", "\n", "").Replace(s)
	return strings.TrimSpace(s)
}
