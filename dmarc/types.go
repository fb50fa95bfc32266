package dmarc

import (
	"fmt"
	"strings"
)

// Spec selects the DMARC specification that parsing and evaluation follow.
// The zero value is RFC9989, the current standard.
type Spec uint8

const (
	// RFC9989 is DMARC as standardized in May 2026 (DMARCbis): DNS tree
	// walk, np, psd and t; pct, rf, ri and the "!size" suffix removed.
	RFC9989 Spec = iota
	// RFC7489 is the 2015 informational DMARC that OpenDMARC 1.4 and most
	// of the world implement: public suffix list, pct, rf, ri.
	RFC7489
)

// String returns "rfc9989" or "rfc7489", the spelling ParseSpec accepts.
func (s Spec) String() string {
	switch s {
	case RFC9989:
		return "rfc9989"
	case RFC7489:
		return "rfc7489"
	}
	return fmt.Sprintf("Spec(%d)", uint8(s))
}

// ParseSpec reads a spec setting: "rfc9989" (also "9989", "dmarcbis") or
// "rfc7489" (also "7489"), in any case.
func ParseSpec(s string) (Spec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "rfc9989", "9989", "dmarcbis":
		return RFC9989, nil
	case "rfc7489", "7489":
		return RFC7489, nil
	}
	return 0, fmt.Errorf("unknown DMARC spec %q (want rfc9989 or rfc7489)", s)
}

// Policy is a Domain Owner Assessment Policy, the value of p, sp or np. The
// zero value PolicyUnset means the tag was absent or invalid.
type Policy uint8

// The policies a record can request.
const (
	PolicyUnset Policy = iota
	PolicyNone
	PolicyQuarantine
	PolicyReject
)

// String returns the tag value ("none", "quarantine", "reject"), or "" for
// PolicyUnset.
func (p Policy) String() string {
	switch p {
	case PolicyNone:
		return "none"
	case PolicyQuarantine:
		return "quarantine"
	case PolicyReject:
		return "reject"
	}
	return ""
}

// parsePolicy reads a dmarc-request value. ABNF literals are
// case-insensitive (RFC 5234 §2.3), so "Reject" is valid.
func parsePolicy(v string) (Policy, bool) {
	switch {
	case strings.EqualFold(v, "none"):
		return PolicyNone, true
	case strings.EqualFold(v, "quarantine"):
		return PolicyQuarantine, true
	case strings.EqualFold(v, "reject"):
		return PolicyReject, true
	}
	return PolicyUnset, false
}

// Alignment is an identifier alignment mode, the value of adkim or aspf.
type Alignment uint8

// The alignment modes. Relaxed is the default of both tags.
const (
	Relaxed Alignment = iota
	Strict
)

// String returns the tag value, "r" or "s".
func (a Alignment) String() string {
	if a == Strict {
		return "s"
	}
	return "r"
}

// PSD is the value of the RFC 9989 psd tag.
type PSD uint8

// The psd values. PSDUnknown ("u") is the default.
const (
	PSDUnknown PSD = iota
	PSDYes
	PSDNo
)

// String returns the tag value, "u", "y" or "n".
func (p PSD) String() string {
	switch p {
	case PSDYes:
		return "y"
	case PSDNo:
		return "n"
	}
	return "u"
}

// Outcome is the DMARC result as Authentication-Results reports it (RFC 8601
// §2.7.1 and RFC 9989 §9.2).
type Outcome uint8

// The DMARC results. OutcomeNone means no policy applies to the message.
const (
	OutcomeNone Outcome = iota
	OutcomePass
	OutcomeFail
	OutcomeTempError
	OutcomePermError
)

// String returns the result keyword: "none", "pass", "fail", "temperror" or
// "permerror".
func (o Outcome) String() string {
	switch o {
	case OutcomePass:
		return "pass"
	case OutcomeFail:
		return "fail"
	case OutcomeTempError:
		return "temperror"
	case OutcomePermError:
		return "permerror"
	}
	return "none"
}

// Disposition is what the evaluation asks the receiver to do with a message.
type Disposition uint8

// The dispositions, mildest first.
const (
	DispositionNone Disposition = iota
	DispositionQuarantine
	DispositionReject
)

// String returns "none", "quarantine" or "reject", the words aggregate
// reports and OpenDMARC's dis= use.
func (d Disposition) String() string {
	switch d {
	case DispositionQuarantine:
		return "quarantine"
	case DispositionReject:
		return "reject"
	}
	return "none"
}

// disposition maps a requested policy to the disposition it asks for.
func (p Policy) disposition() Disposition {
	switch p {
	case PolicyQuarantine:
		return DispositionQuarantine
	case PolicyReject:
		return DispositionReject
	}
	return DispositionNone
}

// downgrade returns the next milder disposition, as RFC 7489 §6.3 (pct)
// and RFC 9989 §4.7 (t=y) prescribe: reject becomes quarantine and
// quarantine becomes none.
func (d Disposition) downgrade() Disposition {
	if d == DispositionNone {
		return d
	}
	return d - 1
}

// AuthResult is an SPF or DKIM result keyword as RFC 8601 spells it:
// "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror",
// "policy". Only "pass" can produce alignment.
type AuthResult string

// The SPF and DKIM results that DMARC distinguishes.
const (
	AuthPass      AuthResult = "pass"
	AuthFail      AuthResult = "fail"
	AuthSoftFail  AuthResult = "softfail"
	AuthNeutral   AuthResult = "neutral"
	AuthNone      AuthResult = "none"
	AuthTempError AuthResult = "temperror"
	AuthPermError AuthResult = "permerror"
	AuthPolicy    AuthResult = "policy"
)
