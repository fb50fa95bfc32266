package config

import (
	"strings"
	"time"
)

// FailureReports configures the failure reports dmarcd sends (RFC 9991,
// RFC 6591; RFC 7489 §7.3), the [failure_reports] table. They go through
// the relay, DKIM key and suppression list of [reports].
type FailureReports struct {
	// Enabled sends failure reports. Off by default: they carry personal
	// data to third parties, and RFC 9991 asks receivers to send few.
	Enabled bool `toml:"enabled"`

	// OnPolicyNone also reports on domains whose policy is p=none.
	OnPolicyNone bool `toml:"on_policy_none"`

	// FromName is the display name of the reports' From field.
	FromName string `toml:"from_name"`

	// FromAddress is the From address and envelope sender; "" means
	// reports.from_address.
	FromAddress string `toml:"from_address"`

	// Bcc receives a copy of every report sent; "" sends none.
	Bcc string `toml:"bcc"`

	// Include is what of the failed message a report carries: its header
	// section or the whole message.
	Include FailureInclude `toml:"include"`

	// MaxMessageSize bounds the body attached with include = "message":
	// a larger message is reported with its header section only.
	MaxMessageSize Size `toml:"max_message_size"`

	// RedactLocalParts replaces the local part of every address with a
	// token (RFC 6590).
	RedactLocalParts bool `toml:"redact_local_parts"`

	// RedactHeaders are header fields whose values are replaced as a
	// whole.
	RedactHeaders []string `toml:"redact_headers"`

	// RatePerDomain limits the reports about one policy domain.
	RatePerDomain Rate `toml:"rate_per_domain"`

	// RatePerDestination limits the reports to one destination domain.
	RatePerDestination Rate `toml:"rate_per_destination"`

	// DedupWindow is how long the same failure is reported once.
	DedupWindow Duration `toml:"dedup_window"`

	// MaxAge is how long after the failure a report may still be sent.
	MaxAge Duration `toml:"max_age"`

	// QueueSize is how many incidents may wait in memory for the store.
	QueueSize int `toml:"queue_size"`
}

// FailureInclude is what of a failed message its report carries.
type FailureInclude uint8

// The choices. The zero value is IncludeHeaders.
const (
	// IncludeHeaders sends the header section (text/rfc822-headers).
	IncludeHeaders FailureInclude = iota
	// IncludeMessage sends the whole message (message/rfc822), within
	// max_message_size; the milter then asks the MTA for bodies.
	IncludeMessage
)

var failureIncludes = enumNames{"failure report content", []string{"headers", "message"}}

// String returns "headers" or "message".
func (f FailureInclude) String() string { return failureIncludes.name(uint8(f)) }

// MarshalText implements encoding.TextMarshaler.
func (f FailureInclude) MarshalText() ([]byte, error) { return failureIncludes.marshal(uint8(f)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *FailureInclude) UnmarshalText(b []byte) error {
	v, err := failureIncludes.parse(b)
	if err == nil {
		*f = FailureInclude(v)
	}
	return err
}

// DefaultFailureReports returns the [failure_reports] of Default.
func DefaultFailureReports() FailureReports {
	return FailureReports{
		OnPolicyNone:       true,
		FromName:           "DMARC failure reports",
		Include:            IncludeHeaders,
		MaxMessageSize:     64 * KiB,
		RedactLocalParts:   true,
		RatePerDomain:      Rate{N: 10, Per: Duration(24 * time.Hour)},
		RatePerDestination: Rate{N: 100, Per: Duration(24 * time.Hour)},
		DedupWindow:        Duration(24 * time.Hour),
		MaxAge:             Duration(24 * time.Hour),
		QueueSize:          10000,
	}
}

// maxFailureBody bounds max_message_size: a report is held in memory
// while it is composed and signed.
const maxFailureBody = 10 * MiB

func (v *validator) failureReports(f *FailureReports, r *Reports) {
	if f.Enabled && f.FromAddress == "" && r.FromAddress == "" {
		v.fail("failure_reports.from_address", "required when failure_reports.enabled (or reports.from_address)")
	}
	if f.FromAddress != "" {
		v.mailbox("failure_reports.from_address", &f.FromAddress)
	}
	if f.Bcc != "" {
		v.mailbox("failure_reports.bcc", &f.Bcc)
	}
	if d := r.DKIM.Domain; f.FromAddress != "" && d != "" {
		if dom := f.FromAddress[strings.LastIndexByte(f.FromAddress, '@')+1:]; !aligned(dom, d) {
			v.fail("failure_reports.from_address", "%s does not align with reports.dkim.domain (%s): failure reports would fail DMARC", dom, d)
		}
	}
	if strings.IndexFunc(f.FromName, func(c rune) bool { return c < ' ' || c == 0x7f }) >= 0 {
		v.fail("failure_reports.from_name", "must be one line without control characters")
	}
	if !failureIncludes.valid(uint8(f.Include)) {
		v.fail("failure_reports.include", "invalid failure report content %d", f.Include)
	}
	if f.MaxMessageSize < KiB || f.MaxMessageSize > maxFailureBody {
		v.fail("failure_reports.max_message_size", "%s is out of range: 1KiB to %s", f.MaxMessageSize, maxFailureBody)
	}
	for i, h := range f.RedactHeaders {
		if h == "" || strings.ContainsFunc(h, func(c rune) bool { return c <= ' ' || c > '~' || c == ':' }) {
			v.fail(indexKey("failure_reports.redact_headers", i), "%q is not a header field name", h)
		}
	}
	v.positive("failure_reports.dedup_window", f.DedupWindow)
	v.positive("failure_reports.max_age", f.MaxAge)
	if f.QueueSize < 1 {
		v.fail("failure_reports.queue_size", "must be at least 1, not %d", f.QueueSize)
	}
}

func init() {
	for k, d := range failureDocs {
		docs[k] = d
	}
}

// failureDocs document the [failure_reports] table; init adds them to
// docs.
var failureDocs = map[string]doc{
	"failure_reports": {
		text: `the failure reports dmarcd sends (RFC 9991, in the ARF format of RFC 6591) to the ruf destinations of domains whose fo tag asks for them, one per failed message: DKIM-signed and sent through the [reports] relay, checked against the [reports] suppression list, limited in rate and deduplicated, queued in the [store] so that a restart loses none.`,
	},
	"failure_reports.enabled": {
		text:      `Send failure reports. Off by default: each carries a message's addresses and header fields to a third party, and RFC 9991 and privacy law ask receivers to send few, redacted.`,
		opendmarc: "FailureReports",
	},
	"failure_reports.on_policy_none": {
		text:      `Also report on domains whose policy is p=none (the fo tag applies whatever p is). OpenDMARC reports only on quarantine and reject unless FailureReportsOnNone is set.`,
		opendmarc: "FailureReportsOnNone",
	},
	"failure_reports.from_name": {
		text: `The display name of the reports' From field.`,
	},
	"failure_reports.from_address": {
		text:      `The From address and envelope sender of failure reports; "" is reports.from_address. Its domain should align with reports.dkim.domain.`,
		opendmarc: "FailureReportsSentBy",
	},
	"failure_reports.bcc": {
		text:      `An address that receives a copy of every failure report sent; "" sends none.`,
		opendmarc: "FailureReportsBcc",
	},
	"failure_reports.include": {
		text: `What a report carries of the failed message: "headers", its header section (text/rfc822-headers), or "message", the whole message (message/rfc822) within max_message_size; the milter then asks the MTA for message bodies. Redaction never touches a body.`,
	},
	"failure_reports.max_message_size": {
		text: `The largest body attached with include = "message" (1KiB to 10MiB); a larger message is reported with its header section. A ruf "!size" limit (RFC 7489) is honoured too: the body goes first, then the report.`,
	},
	"failure_reports.redact_local_parts": {
		text: `Replace the local part of every address, in the envelope and the header fields, with a token (RFC 6590): "alice@example.com" becomes "redacted-<hash>@example.com", the same for one mailbox, so reports can still be correlated. The hash key is made anew at every start.`,
	},
	"failure_reports.redact_headers": {
		text: `Header fields whose values are replaced with "[redacted]", for example ["Subject", "To", "Cc"].`,
	},
	"failure_reports.rate_per_domain": {
		text: `At most this many reports about one policy domain in any window of the given length: "10/1d", "1/1h", or "unlimited". Reports over the limit are dropped, counted (dmarcd_failure_reports_total{result="rate_limited"}) and logged with their domains.`,
	},
	"failure_reports.rate_per_destination": {
		text: `At most this many reports to one destination domain (the host of the ruf address), or "unlimited".`,
	},
	"failure_reports.dedup_window": {
		text: `The same failure (the same message from the same source with the same results, to the same destination) is reported once in this window, however many transactions carried it.`,
	},
	"failure_reports.max_age": {
		text: `A report not sent within this time of the failure (the relay down, the destination deferring) is dropped: a late failure report helps nobody.`,
	},
	"failure_reports.queue_size": {
		text: `How many failures may wait in memory for the store. When the store is too slow the excess is dropped and counted rather than delay the MTA.`,
	},
}
