// Package spfcheck evaluates SPF (RFC 7208) for dmarcd when no upstream
// filter gave a usable result, as OpenDMARC's SPFSelfValidate does. The
// evaluation is blitiri.com.ar/go/spf's, asking our DNS cache
// (internal/dnscache); this package chooses the identity DMARC needs,
// makes up for what the library leaves out, and maps its answer to a
// dmarc.SPF.
//
// What the library enforces itself: the 10-term DNS lookup limit (§4.6.4,
// include, a, mx, ptr, exists and redirect counted, nested records
// included), the void lookup limit of 2 (§4.6.4), the 10-MX-record limit
// of "mx" (permerror beyond) and the 10-name limit of "ptr" (the rest
// ignored), "none" from include and redirect targets as permerror,
// several SPF records as permerror, macro expansion (s, l, o, d, i, p as
// "unknown", v, h, with transformers, delimiters and URL escaping), and
// temperror for DNS failures it sees as *net.DNSError with IsTemporary or
// IsTimeout.
//
// What this package adds:
//
//   - Syntax errors anywhere in a record make permerror (§4.6), in the
//     record checked and in include and redirect targets: the library
//     reads terms one by one and returns at the first match, so it passes
//     a record with an error after the matching term. The grammar of §12
//     is checked when a record is fetched: printable ASCII only, known
//     mechanisms, domain-specs ending with a macro or a valid top label
//     (§7.1), the letters c, r, t only in exp text, IP addresses of the
//     right family, CIDR lengths without leading zeros and in range,
//     "redirect" and "exp" at most once (§6), valid modifier names.
//   - The identity (§2.4, §4.3): MAIL FROM, or postmaster@HELO when MAIL
//     FROM is null; "postmaster" for an empty local-part; "none" without
//     asking DNS when the domain is malformed, a single label, an IP
//     address or an address literal; IDN domains as A-labels.
//   - An overall time limit (§4.6.4: at least 20 s, temperror beyond),
//     within the caller's context, the milter's DNS budget.
//   - IPv4-mapped IPv6 client addresses checked as IPv4, zones dropped.
//   - A-only address lookups for IPv4 clients, and the left-truncation of
//     expanded names over 253 octets (§7.3); see resolver.
//
// Not done: "exp" explanations are not fetched (DMARC has no use for the
// text of a rejection it does not make). Left as the library does them:
// %{p} expands to "unknown" without a PTR lookup (RFC 7208 §7.3 advises
// against p), a "/" inside the domain of a or mx is read as a CIDR length
// (permerror), and empty parts are dropped when a macro value is split
// ("a..b" gives two parts, not three). Of the 203 tests of the RFC 7208
// test suite, run through dnstest and dnscache in rfc7208_test.go, these
// account for five; the sixth is a dnscache issue: a name holding a
// character miekg/dns escapes when it unpacks (a space from %_, the "@"
// of %{s}) comes back as "answer to another question", so temperror.
package spfcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/dnscache"
)

// DefaultTimeout bounds one check when Checker.Timeout is zero: the 20
// seconds RFC 7208 §4.6.4 asks receivers to allow at least.
const DefaultTimeout = 20 * time.Second

// Checker evaluates SPF through a DNS cache. It is safe for concurrent use;
// its fields must not change while it is in use.
type Checker struct {
	// Resolver answers the DNS questions. Required.
	Resolver *dnscache.Resolver

	// Timeout bounds one check, within the deadline of the context it is
	// given; beyond it the result is temperror. Zero means DefaultTimeout.
	Timeout time.Duration

	// Trace, when set, receives the library's trace of the evaluation, for
	// debugging: the lines are not stable and may hold details not meant
	// for the people the mail is about.
	Trace func(format string, args ...any)
}

// Check evaluates SPF for a message the way DMARC needs it (RFC 7489 §4.1,
// RFC 9989): the MAIL FROM identity, or, when MAIL FROM is null,
// postmaster@HELO (RFC 7208 §2.4), which is then the scope. ip is the
// client's address; an IPv4-mapped IPv6 address counts as IPv4. helo is the
// HELO/EHLO argument; mailFrom is the MAIL FROM address, with or without
// its angle brackets, "" or "<>" for the null sender.
//
// It returns the dmarc.SPF to feed dmarc.Evaluate, always with a result
// (pass, fail, softfail, neutral, none, temperror or permerror), its
// Domain the domain checked (A-label, lowercase) or, when there was none
// to check, what stood in its place; and a one-line explanation for the
// log and Authentication-Results comments.
//
// A DNS failure or timeout gives temperror, never none; the check ends
// with temperror when ctx is done or Timeout elapses.
func (c *Checker) Check(ctx context.Context, ip netip.Addr, helo, mailFrom string) (dmarc.SPF, string) {
	v := c.check(ctx, ip, helo, mailFrom)
	return v.spf, v.why
}

// verdict is the outcome of a check, with the error behind it for tests.
type verdict struct {
	spf dmarc.SPF
	why string
	err error // what the library returned with its result, or ours
}

func (c *Checker) check(ctx context.Context, ip netip.Addr, helo, mailFrom string) verdict {
	id := identify(helo, mailFrom)
	v := verdict{spf: dmarc.SPF{Domain: id.domain, Scope: id.scope, Result: dmarc.AuthNone}}
	if id.invalid != "" {
		v.why = id.invalid + ": no SPF check"
		return v
	}
	if !ip.IsValid() {
		v.why = "no client IP address: no SPF check"
		return v
	}
	ip = ip.Unmap().WithZone("")

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	opts := []spf.Option{
		spf.WithResolver(&resolver{dns: c.Resolver, ipv4: ip.Is4()}),
		spf.WithContext(ctx),
	}
	if c.Trace != nil {
		opts = append(opts, spf.WithTraceFunc(c.Trace))
	}
	res, err := spf.CheckHostWithSender(net.IP(ip.AsSlice()), id.helo, id.sender, opts...)
	v.spf.Result, v.err = result(res), err
	if ctxErr := ctx.Err(); ctxErr != nil && v.spf.Result != dmarc.AuthTempError {
		// RFC 7208 §4.6.4: past the time limit the result is temperror,
		// even if the library went on (a "ptr" lookup that timed out
		// only fails to match).
		v.spf.Result, v.err = dmarc.AuthTempError, fmt.Errorf("time limit exceeded: %w", ctxErr)
	}
	v.why = explain(v.spf.Result, v.err, id, ip)
	return v
}

// result maps the library's result to DMARC's; the values are the same
// words (RFC 7208 §8, RFC 8601 §2.7.2). Anything unexpected is permerror.
func result(r spf.Result) dmarc.AuthResult {
	switch r {
	case spf.Pass:
		return dmarc.AuthPass
	case spf.Fail:
		return dmarc.AuthFail
	case spf.SoftFail:
		return dmarc.AuthSoftFail
	case spf.Neutral:
		return dmarc.AuthNeutral
	case spf.None:
		return dmarc.AuthNone
	case spf.TempError:
		return dmarc.AuthTempError
	}
	return dmarc.AuthPermError
}

// identity is what SPF checks for a message.
type identity struct {
	scope dmarc.SPFScope
	// domain is the domain checked, normalized; when invalid is set, the
	// raw value that could not be checked.
	domain string
	sender string // local-part@domain, for the s, l and o macros
	helo   string // for the h macro
	// invalid says why there is nothing to check (result none), or "".
	invalid string
}

// identify chooses the identity of RFC 7208 §2.4: the MAIL FROM address or,
// when it is null, postmaster@HELO; it is checked as §4.3 asks, so that a
// malformed domain gives none without a DNS query.
func identify(helo, mailFrom string) identity {
	helo = strings.TrimSpace(helo)
	mailFrom = strings.TrimSpace(mailFrom)
	mailFrom = strings.TrimSuffix(strings.TrimPrefix(mailFrom, "<"), ">")
	if i := strings.IndexByte(mailFrom, ':'); i >= 0 && strings.HasPrefix(mailFrom, "@") {
		mailFrom = mailFrom[i+1:] // a source route, "@relay:user@example.com" (RFC 5321 §4.1.2)
	}
	if mailFrom == "" {
		id := identity{scope: dmarc.ScopeHelo, domain: helo, helo: helo}
		d, why := checkDomain(helo)
		if why != "" {
			id.invalid = fmt.Sprintf("HELO name %q %s", clip(helo), why)
			return id
		}
		id.domain, id.helo, id.sender = d, d, "postmaster@"+d
		return id
	}
	id := identity{scope: dmarc.ScopeMailFrom, helo: helo}
	at := strings.LastIndexByte(mailFrom, '@')
	if at < 0 {
		id.invalid = fmt.Sprintf("MAIL FROM %q has no domain", clip(mailFrom))
		return id
	}
	local, raw := mailFrom[:at], mailFrom[at+1:]
	id.domain = raw
	d, why := checkDomain(raw)
	if why != "" {
		id.invalid = fmt.Sprintf("MAIL FROM domain %q %s", clip(raw), why)
		return id
	}
	if local == "" || strings.Contains(local, "@") {
		// RFC 7208 §4.3 for an empty local-part. A quoted one holding "@"
		// ("a@b"@example.com) would make the library, which splits at the
		// first "@", check the wrong domain: the domain matters more than
		// the l macro.
		local = "postmaster"
	}
	id.domain, id.sender = d, local+"@"+d
	return id
}

// checkDomain returns name normalized (A-labels, lowercase, no final dot)
// if SPF can check it, or why not: RFC 7208 §4.3 wants "none" for a
// malformed name or one that is not a multi-label domain name, and an IP
// address or an address literal is not a domain at all.
func checkDomain(name string) (string, string) {
	switch {
	case name == "":
		return "", "is empty"
	case strings.HasPrefix(name, "["):
		return "", "is an address literal"
	}
	d, err := dmarc.NormalizeDomain(name)
	i := strings.LastIndexByte(d, '.')
	switch {
	case err == nil && i >= 0 && !allDigits(d[i+1:]):
		return d, ""
	case isIP(name):
		return "", "is an IP address"
	case err != nil:
		return "", "is not a valid domain name"
	case i < 0:
		return "", "is not a fully qualified domain name"
	}
	return "", "has a numeric top-level label"
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// explain says in one line what the result means, after the comments of
// RFC 7208 §9.1.
func explain(r dmarc.AuthResult, err error, id identity, ip netip.Addr) string {
	who := id.sender
	switch r {
	case dmarc.AuthPass:
		return "domain of " + who + " designates " + ip.String() + " as permitted sender" + matched(err)
	case dmarc.AuthFail:
		return "domain of " + who + " does not designate " + ip.String() + " as permitted sender" + matched(err)
	case dmarc.AuthSoftFail:
		return "domain of transitioning " + who + " does not designate " + ip.String() + " as permitted sender" + matched(err)
	case dmarc.AuthNeutral:
		return ip.String() + " is neither permitted nor denied by domain of " + who + matched(err)
	case dmarc.AuthNone:
		return "domain of " + who + " does not publish SPF"
	case dmarc.AuthTempError:
		return "temporary error checking SPF for " + who + ": " + describe(err)
	}
	return "unusable SPF policy for " + who + ": " + describe(err)
}

// matched names the mechanism that decided, from the library's error.
func matched(err error) string {
	switch {
	case err == nil:
		return " (no mechanism matched)"
	case errors.Is(err, spf.ErrMatchedAll):
		return " (all)"
	case errors.Is(err, spf.ErrMatchedIP):
		return " (ip4/ip6)"
	case errors.Is(err, spf.ErrMatchedA):
		return " (a)"
	case errors.Is(err, spf.ErrMatchedMX):
		return " (mx)"
	case errors.Is(err, spf.ErrMatchedPTR):
		return " (ptr)"
	case errors.Is(err, spf.ErrMatchedExists):
		return " (exists)"
	}
	return ""
}

// describe words the error of a temperror or permerror.
func describe(err error) string {
	var syn *syntaxError
	switch {
	case err == nil:
		return "unknown cause"
	case errors.As(err, &syn):
		return "syntax error: " + syn.Error()
	case errors.Is(err, spf.ErrLookupLimitReached):
		return "more than 10 DNS-querying terms (RFC 7208 §4.6.4)"
	case errors.Is(err, spf.ErrVoidLookupLimitReached):
		return "more than 2 DNS lookups with no answer (RFC 7208 §4.6.4)"
	case errors.Is(err, spf.ErrTooManyMXRecords):
		return "an mx mechanism names more than 10 MX records (RFC 7208 §4.6.4)"
	case errors.Is(err, spf.ErrMultipleRecords):
		return "several SPF records (RFC 7208 §4.5)"
	case errors.Is(err, spf.ErrNoResult):
		return "an include or redirect target publishes no SPF record"
	}
	return oneLine(err.Error())
}

// oneLine keeps s on one line of printable ASCII.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// clip shortens what a client sent for a message, and keeps it on one line.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return oneLine(s)
}
