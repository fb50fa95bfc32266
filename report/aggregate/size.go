package aggregate

import (
	"strconv"
	"strings"
	"time"
)

// DefaultMaxSize is the largest report dmarcd sends when no maximum is
// configured: 25 MiB, measured like the "!size" limits, on the attachment
// as sent (compressed, then base64-encoded).
const DefaultMaxSize uint64 = 25 << 20

// MIMESize returns how many bytes n bytes of attachment take once
// base64-encoded in a MIME body part (RFC 2045 §6.8: lines of at most 76
// characters, each ended by CRLF). RFC 7489 §7.2.1 measures the "!size"
// limit "after compression and after any encoding required by the
// particular transport mechanism", and for mailto: that is base64.
func MIMESize(n int64) int64 {
	if n <= 0 {
		return 0
	}
	enc := (n + 2) / 3 * 4
	lines := (enc + 75) / 76
	return enc + 2*lines
}

// Fits reports whether a report of compressedSize bytes (what WriteGzip
// returns) fits a limit once encoded for mail (MIMESize). A limit of 0
// means none, as in dmarc.URI.MaxSize.
func Fits(compressedSize int64, limit uint64) bool {
	return limit == 0 || uint64(MIMESize(compressedSize)) <= limit
}

// Destination is one rua URI as the delivery plan sees it.
type Destination struct {
	URI string // as published, for the error report's Submitting-URI
	// MaxSize is the URI's "!size" limit in bytes, 0 for none: the
	// dmarc.URI.MaxSize of the parsed record, which the record parser
	// keeps under RFC 7489 only, RFC 9989 having made the suffix obsolete.
	MaxSize uint64
}

// Plan is what to do with a report of a given size.
type Plan struct {
	// Size is the size that was compared with the limits: the compressed
	// report, base64-encoded (MIMESize). An error report's Report-Size.
	Size int64
	// Send lists the destinations the report goes to, in the published
	// order.
	Send []Destination
	// Refused lists the destinations whose "!size" limit, or our own
	// maximum, the report exceeds. RFC 7489 §7.2.1: such a URI "MUST NOT
	// be used".
	Refused []Destination
	// Notify is set when nothing can be sent under RFC 7489: the receiver
	// "SHOULD send a short report (see Section 7.2.2) indicating that a
	// report is available but could not be sent", and §7.2.2 says an
	// attempt "MUST be made to send this report to all listed mailto
	// URIs" (Refused ones included: the notice is small). ErrorReport
	// writes its text. RFC 9990 has neither !size nor the short report:
	// a report too big for our maximum is kept or dropped, and logged.
	Notify bool
}

// PlanDelivery applies the size rules to a report of compressedSize bytes
// (what WriteGzip returns) bound for dests. maxSize is the configured
// maximum (0 means DefaultMaxSize); a report above it goes nowhere. A
// destination's own "!size" is honoured whenever set, whatever the format:
// the record parser only keeps it under RFC 7489, where it is a MUST.
//
// The RFCs offer no splitting of a report: a report that fits nowhere is
// reported (RFC 7489) and may be kept to try again later or dropped
// (both RFCs say MAY).
func PlanDelivery(f Format, compressedSize int64, maxSize uint64, dests []Destination) Plan {
	if maxSize == 0 {
		maxSize = DefaultMaxSize
	}
	p := Plan{Size: MIMESize(compressedSize)}
	ours := Fits(compressedSize, maxSize)
	for _, d := range dests {
		if ours && Fits(compressedSize, d.MaxSize) {
			p.Send = append(p.Send, d)
		} else {
			p.Refused = append(p.Refused, d)
		}
	}
	p.Notify = f == RFC7489 && len(p.Send) == 0 && len(p.Refused) > 0
	return p
}

// ErrorReport is the RFC 7489 §7.2.2 error report: what a report that
// could not be sent was. Text renders the required text/plain part; the
// mail around it is the sender's.
type ErrorReport struct {
	Date      time.Time // when the transport failure occurred
	Domain    string    // the policy domain the report was about
	ReportID  string    // the report's Report-ID
	Size      int64     // the bytes that would have been sent: Plan.Size
	Submitter string    // our domain
	URIs      []string  // the URIs the report could not be submitted to
}

// Text returns the required text/plain part: the fields of RFC 7489 §7.2.2
// as DSN-style field-value pairs (RFC 3464 §2), CRLF-terminated. Values
// are kept on one line each (CR, LF and other controls become spaces).
func (e ErrorReport) Text() string {
	var b strings.Builder
	field := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, value))
		b.WriteString("\r\n")
	}
	field("Report-Date", e.Date.Format(time.RFC1123Z))
	field("Report-Domain", e.Domain)
	field("Report-ID", e.ReportID)
	field("Report-Size", strconv.FormatInt(e.Size, 10))
	field("Submitter", e.Submitter)
	field("Submitting-URI", strings.Join(e.URIs, ", "))
	return b.String()
}
