package history

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// UnknownJobID is what OpenDMARC writes as the job when the MTA gave no
// queue id (JOBIDUNKNOWN in opendmarc.h).
const UnknownJobID = "(unknown-jobid)"

// Record is one evaluated message as the history file records it, in
// dmarcd's terms; Format turns it into OpenDMARC's lines and codes.
type Record struct {
	// JobID is the MTA's queue id; "" is written as UnknownJobID.
	JobID string
	// Reporter names the host that received the message: the MTA's {j}
	// macro, else the host name. Writer.Write fills in the host name when
	// it is "".
	Reporter string
	// Received is when the message was evaluated, written in whole Unix
	// seconds. Writer.Write fills in the current time when it is zero.
	Received time.Time
	// IP is the SMTP client address; the invalid Addr is written as
	// 127.0.0.1, as OpenDMARC does for a connection without an address.
	IP netip.Addr
	// From is the RFC5322.From domain the record is about.
	From string
	// MailFrom is the MAIL FROM domain, "" for the null sender.
	MailFrom string
	// DKIM lists the DKIM results read, in order. A result without a
	// domain is not written (OpenDMARC skips those too).
	DKIM []DKIM
	// SPF is the SPF result keyword ("pass", "fail", "softfail", ...), ""
	// when no SPF result was available (written as -1).
	SPF string
	// PolicyDomain is where the policy record was found; "" is written as
	// From.
	PolicyDomain string
	// Result is the DMARC result: "pass", "fail", "none", "temperror" or
	// "permerror". With Requested it makes the policy line (PolicyCode).
	Result string
	// Requested is the policy the record asks for this message ("none",
	// "quarantine", "reject"): p, or sp for a subdomain, before pct or t=y
	// lowered it. It is read only when Result is "fail".
	Requested string
	// RUA lists the aggregate report URIs as published; none is written as
	// "rua -".
	RUA []string
	// Pct is the record's pct (100 when the record has none).
	Pct int
	// ADKIM and ASPF are the alignment modes, "r" or "s"; "" without a
	// record.
	ADKIM, ASPF string
	// P and SP are the policy tags, "none", "quarantine" or "reject"; ""
	// without a record, and SP "" when the record has no sp.
	P, SP string
	// AlignDKIM and AlignSPF say whether an identifier aligned; Unchecked
	// when no policy record made anyone look.
	AlignDKIM, AlignSPF Alignment
	// ARC is the arc= result keyword of a trusted Authentication-Results
	// field, "" when there was none (written as 7, fail, OpenDMARC's
	// default).
	ARC string
	// ARCPolicyPass is true when ARC passed and every sealer of the chain
	// is trusted, the case in which OpenDMARC overrides a DMARC reject.
	ARCPolicyPass bool
	// ARCSeals lists the ARC-Seal fields, outermost first, as OpenDMARC
	// walks them.
	ARCSeals []ARCSeal
	// Action is what the filter did with the message.
	Action Action
}

// DKIM is one DKIM result.
type DKIM struct {
	Domain   string // d=
	Selector string // s=; "" is written as "-"
	Result   string // the result keyword: "pass", "fail", ...
}

// ARCSeal is one ARC set as the arc_policy JSON lists it.
type ARCSeal struct {
	Instance int    // i=
	Domain   string // d= of the ARC-Seal
	Selector string // s= of the ARC-Seal
	ClientIP string // smtp.client_ip of the ARC-Authentication-Results of that instance
}

// Alignment is an identifier's alignment as align_dkim and align_spf
// record it.
type Alignment uint8

// The alignments.
const (
	// Unchecked: no policy record, so alignment was not evaluated (0).
	Unchecked Alignment = iota
	// Aligned: the identifier passed and aligned (4).
	Aligned
	// NotAligned: it failed or did not align (5).
	NotAligned
)

// Code returns the DMARC_POLICY_{DKIM,SPF}_ALIGNMENT_* value: 4 for
// Aligned, 5 for NotAligned, 0 for Unchecked.
func (a Alignment) Code() int {
	switch a {
	case Aligned:
		return 4
	case NotAligned:
		return 5
	}
	return 0
}

// AlignmentOf returns Aligned or NotAligned.
func AlignmentOf(aligned bool) Alignment {
	if aligned {
		return Aligned
	}
	return NotAligned
}

// Action is what the filter did with a message. The zero value is
// ActionAccept, OpenDMARC's default; Code gives the DMARC_RESULT_* value of
// opendmarc.h that the action line records.
type Action uint8

// The actions.
const (
	ActionAccept     Action = iota // DMARC_RESULT_ACCEPT, 2
	ActionReject                   // DMARC_RESULT_REJECT, 0
	ActionQuarantine               // DMARC_RESULT_QUARANTINE, 4 (the message was held)
	ActionTempfail                 // DMARC_RESULT_TEMPFAIL, 3
	ActionDiscard                  // DMARC_RESULT_DISCARD, 1
)

// Code returns the DMARC_RESULT_* code: reject 0, discard 1, accept 2,
// tempfail 3, quarantine 4. An unknown Action is accept.
func (a Action) Code() int {
	switch a {
	case ActionReject:
		return 0
	case ActionDiscard:
		return 1
	case ActionTempfail:
		return 3
	case ActionQuarantine:
		return 4
	}
	return 2
}

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case ActionAccept:
		return "accept"
	case ActionReject:
		return "reject"
	case ActionQuarantine:
		return "quarantine"
	case ActionTempfail:
		return "tempfail"
	case ActionDiscard:
		return "discard"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// The DMARC_POLICY_* codes of libopendmarc/dmarc.h that the policy line
// holds.
const (
	PolicyAbsent     = 14
	PolicyPass       = 15
	PolicyReject     = 16
	PolicyQuarantine = 17
	PolicyNone       = 18
)

// PolicyCode returns the policy line's code for a DMARC result and the
// requested policy: 15 for pass; for fail 16, 17 or 18 after requested
// (reject, quarantine, anything else); 14 otherwise. OpenDMARC 1.4.2 gets
// 14 for a DNS failure too: its library reports no policy then. (It writes
// no record at all for a permerror; see Wanted.)
func PolicyCode(result, requested string) int {
	switch result {
	case "pass":
		return PolicyPass
	case "fail":
		switch requested {
		case "reject":
			return PolicyReject
		case "quarantine":
			return PolicyQuarantine
		}
		return PolicyNone
	}
	return PolicyAbsent
}

// aresCodes is the ARES_RESULT_* table of opendmarc/opendmarc-ar.h, with
// the keywords opendmarc-ar.c reads them from.
var aresCodes = map[string]int{
	"pass":      0,
	"softfail":  2,
	"neutral":   3,
	"temperror": 4,
	"permerror": 5,
	"none":      6,
	"fail":      7,
	"policy":    8,
	"nxdomain":  9,
	"signed":    10,
	"unknown":   11,
	"discard":   12,
}

// ResultCode returns the ARES_RESULT_* code of an authentication result
// keyword (case-insensitive), as the spf, dkim and arc lines hold it. ""
// (no result) is -1, ARES_RESULT_UNDEFINED. A keyword outside the table is
// 11, ARES_RESULT_UNKNOWN: OpenDMARC writes -1 for those, which the
// unsigned signatures.pass column cannot hold and which a non-strict MySQL
// stores as 0, a pass.
func ResultCode(keyword string) int {
	if keyword == "" {
		return -1
	}
	if c, ok := aresCodes[strings.ToLower(keyword)]; ok {
		return c
	}
	return 11
}

// TagCode returns the character code OpenDMARC writes for a p, sp, adkim or
// aspf value: the code of its first letter, lower-cased ('n' 110, 'q' 113,
// 'r' 114, 's' 115), and 0 for "".
func TagCode(v string) int {
	if v == "" {
		return 0
	}
	c := v[0]
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	return int(c)
}

// arcPolicyCode is DMARC_ARC_POLICY_RESULT_*: 0 pass, 2 fail.
func arcPolicyCode(pass bool) int {
	if pass {
		return 0
	}
	return 2
}

// Format returns the record as OpenDMARC 1.4.2 writes it: its lines, each
// ending in "\n", with no blank line after. It does not fill in Reporter or
// Received (Writer.Write does); a zero Received is written as 0.
func Format(r Record) []byte {
	b := make([]byte, 0, 512)
	line := func(key, value string) {
		b = append(b, key...)
		b = append(b, ' ')
		b = appendValue(b, value)
		b = append(b, '\n')
	}
	num := func(key string, n int) {
		b = append(b, key...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, '\n')
	}

	job := r.JobID
	if job == "" {
		job = UnknownJobID
	}
	line("job", job)
	line("reporter", r.Reporter)
	var received int64
	if !r.Received.IsZero() {
		received = r.Received.Unix()
	}
	b = append(b, "received "...)
	b = strconv.AppendInt(b, received, 10)
	b = append(b, '\n')
	line("ipaddr", ipString(r.IP))
	line("from", r.From)
	line("mfrom", r.MailFrom)
	for _, d := range r.DKIM {
		if d.Domain == "" {
			continue
		}
		sel := d.Selector
		if sel == "" {
			sel = "-"
		}
		b = append(b, "dkim "...)
		b = appendValue(b, d.Domain)
		b = append(b, ' ')
		b = appendValue(b, sel)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(ResultCode(d.Result)), 10)
		b = append(b, '\n')
	}
	num("spf", ResultCode(r.SPF))
	pdomain := r.PolicyDomain
	if pdomain == "" {
		pdomain = r.From
	}
	line("pdomain", pdomain)
	num("policy", PolicyCode(r.Result, r.Requested))
	rua := 0
	for _, u := range r.RUA {
		if u != "" {
			line("rua", u)
			rua++
		}
	}
	if rua == 0 {
		line("rua", "-")
	}
	num("pct", r.Pct)
	num("adkim", TagCode(r.ADKIM))
	num("aspf", TagCode(r.ASPF))
	num("p", TagCode(r.P))
	num("sp", TagCode(r.SP))
	num("align_dkim", r.AlignDKIM.Code())
	num("align_spf", r.AlignSPF.Code())
	arc := 7 // ARES_RESULT_FAIL, OpenDMARC's value when no arc= result was read
	if r.ARC != "" {
		arc = ResultCode(r.ARC)
	}
	num("arc", arc)
	b = append(b, "arc_policy "...)
	b = strconv.AppendInt(b, int64(arcPolicyCode(r.ARCPolicyPass)), 10)
	b = append(b, " json:["...)
	for i, s := range r.ARCSeals {
		if i > 0 {
			b = append(b, ", "...)
		}
		// OpenDMARC's own spacing, with the strings JSON-quoted (it does
		// not quote them, so a quote in a d= would break its output).
		b = append(b, `{ "i": `...)
		b = strconv.AppendInt(b, int64(s.Instance), 10)
		b = append(b, `, "d":`...)
		b = appendJSON(b, s.Domain)
		b = append(b, `, "s":`...)
		b = appendJSON(b, s.Selector)
		b = append(b, `, "ip":`...)
		b = appendJSON(b, s.ClientIP)
		b = append(b, " }"...)
	}
	b = append(b, "]\n"...)
	num("action", r.Action.Code())
	return b
}

// ipString is inet_ntop's form of the address; OpenDMARC writes 127.0.0.1
// for a connection it got no address for.
func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return "127.0.0.1"
	}
	return ip.Unmap().WithZone("").String()
}

// appendValue appends v, percent-encoding the bytes a history line cannot
// hold: controls (newline above all, which would start a forged key), space
// (the importer's field separator) and DEL.
func appendValue(b []byte, v string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c == 0x7f {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendJSON appends s as a JSON string, which never holds a raw newline.
func appendJSON(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil { // cannot happen for a string
		return append(b, `""`...)
	}
	return append(b, q...)
}
