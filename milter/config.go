package milter

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
)

// Mode is how a listener applies DMARC, as Stalwart's verify modes.
type Mode uint8

// The modes.
const (
	// Strict evaluates and enforces: reject, quarantine, tempfail.
	Strict Mode = iota
	// Relaxed evaluates, adds headers and records, but never blocks mail.
	Relaxed
	// Disable accepts every connection untouched.
	Disable
)

// String returns "strict", "relaxed" or "disable".
func (m Mode) String() string {
	switch m {
	case Relaxed:
		return "relaxed"
	case Disable:
		return "disable"
	}
	return "strict"
}

// ParseMode reads a mode word.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "strict":
		return Strict, nil
	case "relaxed":
		return Relaxed, nil
	case "disable", "disabled":
		return Disable, nil
	}
	return 0, fmt.Errorf("unknown mode %q (want strict, relaxed or disable)", s)
}

// Action is what the milter tells the MTA to do with a message.
type Action uint8

// The actions.
const (
	// Accept delivers the message (with our header).
	Accept Action = iota
	// Quarantine asks the MTA to hold the message (Postfix's hold queue).
	Quarantine
	// Reject refuses it with a 5xx reply.
	Reject
	// Tempfail refuses it with a 4xx reply, so the sender retries.
	Tempfail
)

// String returns "accept", "quarantine", "reject" or "tempfail".
func (a Action) String() string {
	switch a {
	case Quarantine:
		return "quarantine"
	case Reject:
		return "reject"
	case Tempfail:
		return "tempfail"
	}
	return "accept"
}

// MultipleFrom says what to do with a message whose From names several
// mailboxes (in one field or several fields).
type MultipleFrom uint8

// The choices.
const (
	// Strictest evaluates every From domain and applies the strictest
	// outcome: a forger cannot hide behind a second, innocent address.
	Strictest MultipleFrom = iota
	// RejectMultiple refuses the message, as OpenDMARC's
	// RejectMultiValueFrom does.
	RejectMultiple
	// First evaluates the first address only, OpenDMARC's default.
	First
)

// Reply is an SMTP reply: a code, an enhanced status code and a text in
// which {domain} is replaced by the From domain. internal/config checks
// templates when it reads them.
type Reply struct {
	Code     uint16 // 550, 451, ...
	Enhanced string // "5.7.1"
	Text     string
}

// String returns the reply as configured.
func (r Reply) String() string {
	return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text)
}

// text returns the reply text for domain, as the milter sends it: the
// enhanced code first, as Postfix expects.
func (r Reply) text(domain string) string {
	return r.Enhanced + " " + strings.ReplaceAll(r.Text, "{domain}", domain)
}

// Policy holds the local choices that turn a DMARC result into an action.
type Policy struct {
	// Reject is what a failure under p=reject does: Reject, Quarantine or
	// Accept (header only).
	Reject Action
	// Quarantine is what a failure under p=quarantine does: Quarantine
	// (hold) or Accept (header only).
	Quarantine Action
	// TempError is Accept or Tempfail.
	TempError Action
	// PermError is Accept or Reject.
	PermError Action
	// MultipleFrom handles several From mailboxes.
	MultipleFrom MultipleFrom
	// MissingFrom is Reject or Accept (dmarc=none).
	MissingFrom Action
	// MissingDKIM is Tempfail or Accept: what to do when the message has a
	// DKIM-Signature but no trusted dkim= result arrived, as when an
	// upstream DKIM milter timed out.
	MissingDKIM Action
	// RejectReply and TempfailReply are the SMTP replies.
	RejectReply   Reply
	TempfailReply Reply
	// AddHeader inserts our Authentication-Results.
	AddHeader bool
	// RemoveForged deletes Authentication-Results fields that claim our
	// authserv-id but came from outside.
	RemoveForged bool
}

// Ignore lists what the milter lets through without evaluating.
type Ignore struct {
	Hosts         []netip.Prefix
	Authenticated bool // SMTP-authenticated clients ({auth_authen})
	// FromDomains and MailFromDomains are normalized patterns:
	// "example.com" for that name, "*.example.com" for its subdomains.
	FromDomains     []string
	MailFromDomains []string
	// Recipients are addresses or "@domain"; a message whose recipients
	// are all listed is skipped (report mailboxes never loop).
	Recipients []string
}

// LocalPolicy replaces the published policy for failures of a domain.
type LocalPolicy struct {
	Domain  string // a normalized pattern, as in Ignore.FromDomains
	Policy  dmarc.Policy
	Comment string
}

// Config is what the milter needs. The daemon builds it from dmarcd.toml
// or opendmarc.conf.
type Config struct {
	// AuthServID is written in our Authentication-Results; "" means the
	// MTA's {j} macro, or the host name when the MTA sends none.
	AuthServID string
	// TrustedAuthServIDs are read; empty means AuthServID alone.
	TrustedAuthServIDs []string
	Policy             Policy
	Ignore             Ignore
	LocalPolicies      []LocalPolicy
	// DNSBudget bounds the DNS work for one message.
	DNSBudget time.Duration
	// IdleTimeout bounds the wait for the MTA's next command; WriteTimeout
	// a reply's write.
	IdleTimeout  time.Duration
	WriteTimeout time.Duration
	// MaxConnections caps concurrent MTA connections per listener.
	MaxConnections int

	// SPFUpstream reads spf= results of trusted Authentication-Results;
	// SPFSelfCheck checks SPF ourselves when no usable upstream result
	// arrived (always, when SPFUpstream is false).
	SPFUpstream  bool
	SPFSelfCheck bool
	// DKIMSelfVerify verifies DKIM signatures ourselves; the milter then
	// asks the MTA for message bodies.
	DKIMSelfVerify bool
	// MaxMessageSize bounds what is kept of a message for DKIM and ARC
	// verification; larger messages are not verified here.
	MaxMessageSize int64
	// ARCTrustedSealers are the ARC sealer domains whose authentication
	// results may rescue a DMARC failure (override trusted_forwarder).
	ARCTrustedSealers []string
	// RequiredHeaders rejects messages that break the header field counts
	// of RFC 5322 §3.6, as OpenDMARC's RequiredHeaders.
	RequiredHeaders bool
	// Software, when not "", is written in a DMARC-Filter header field, as
	// OpenDMARC's SoftwareHeader.
	Software string
	// AuthServIDWithJobID writes "<authserv-id>/<queue-id>" in our header.
	AuthServIDWithJobID bool
	// CopyFailuresTo, when not "", is added as a recipient of messages that
	// fail DMARC under p=quarantine or p=reject.
	CopyFailuresTo string
	// ReportMailboxes are the addresses where other
	// receivers send DMARC reports about our domains: messages to them
	// are kept whole, up to MaxMessageSize, and handed to Deps.Reports.
	ReportMailboxes []string

	// FailureReports hands Deps.Failures an incident for each From domain
	// whose policy asks for a failure report about the message (its fo
	// and ruf, see failure.Wanted). The header fields are then kept.
	FailureReports bool
	// FailureReportsOnNone also reports on domains whose policy is
	// p=none (OpenDMARC's FailureReportsOnNone).
	FailureReportsOnNone bool
	// FailureReportsBody keeps message bodies for failure reports that
	// attach the whole message, up to FailureReportsMaxBody bytes; the
	// milter then asks the MTA for bodies.
	FailureReportsBody    bool
	FailureReportsMaxBody int64
}

// needsMessage reports whether the milter must see whole messages: header
// fields as received and the body.
func (c *Config) needsMessage() bool {
	return c.wholeForAll() || len(c.ReportMailboxes) > 0
}

// wholeForAll reports whether every message is kept whole: for DKIM or
// ARC verification, or for failure reports that attach the message. Mail
// to a report mailbox is kept whole anyway.
func (c *Config) wholeForAll() bool {
	return c.DKIMSelfVerify || len(c.ARCTrustedSealers) > 0 || (c.FailureReports && c.FailureReportsBody)
}

// bodyForReportsOnly reports whether bodies are kept for failure reports
// alone, so that FailureReportsMaxBody, not MaxMessageSize, bounds them.
func (c *Config) bodyForReportsOnly() bool {
	return !c.DKIMSelfVerify && len(c.ARCTrustedSealers) == 0
}

// reportMailbox reports whether rcpt (an envelope address, brackets
// removed) is one of the report mailboxes.
func (c *Config) reportMailbox(rcpt string) bool {
	for _, m := range c.ReportMailboxes {
		if strings.EqualFold(rcpt, m) {
			return true
		}
	}
	return false
}

// matchDomain reports whether the normalized domain d matches a pattern of
// list: "example.com" matches that domain only, "*.example.com" matches
// its subdomains only. It returns the length of the best pattern, so that
// the most specific local policy wins.
func matchDomain(list []string, d string) (int, bool) {
	best, ok := 0, false
	for _, p := range list {
		if rest, wild := strings.CutPrefix(p, "*."); wild {
			if strings.HasSuffix(d, "."+rest) && len(rest) > best {
				best, ok = len(rest), true
			}
		} else if d == p {
			return len(p) + 1, true // an exact name beats any wildcard
		}
	}
	return best, ok
}

// domainListed reports whether d matches a pattern of list.
func domainListed(list []string, d string) bool {
	_, ok := matchDomain(list, d)
	return ok
}

// localPolicy returns the local policy that covers d: an exact name first,
// then the longest wildcard.
func (c *Config) localPolicy(d string) *LocalPolicy {
	var best *LocalPolicy
	bestLen := 0
	for i := range c.LocalPolicies {
		lp := &c.LocalPolicies[i]
		if n, ok := matchDomain([]string{lp.Domain}, d); ok && n > bestLen {
			best, bestLen = lp, n
		}
	}
	return best
}

// hostIgnored reports whether the client address is in the ignore list.
func (c *Config) hostIgnored(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.Ignore.Hosts {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// recipientsIgnored reports whether every recipient is in the ignore list.
func (c *Config) recipientsIgnored(rcpts []string) bool {
	if len(rcpts) == 0 || len(c.Ignore.Recipients) == 0 {
		return false
	}
	for _, r := range rcpts {
		if !recipientListed(c.Ignore.Recipients, r) {
			return false
		}
	}
	return true
}

func recipientListed(list []string, rcpt string) bool {
	rcpt = strings.ToLower(strings.Trim(rcpt, "<>"))
	at := strings.LastIndexByte(rcpt, '@')
	for _, x := range list {
		x = strings.ToLower(x)
		if x == rcpt || (strings.HasPrefix(x, "@") && at >= 0 && rcpt[at:] == x) {
			return true
		}
	}
	return false
}
