package milter

import (
	"fmt"
	"strings"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/authres"
)

// trust says which Authentication-Results fields the milter reads and which
// it removes.
type trust struct {
	// own is the authserv-id dmarcd writes.
	own string
	// trusted are the authserv-ids of upstream services whose results are
	// read. own is read only when it is listed here too: that is the
	// OpenDMARC arrangement where OpenDKIM and OpenDMARC share the host name.
	trusted []string
}

// sameID compares authserv-ids case-insensitively (RFC 8601 §2.5). Trust
// needs the exact id: "border.example/x" is not "border.example", or a
// border filter that strips forged fields by exact id would let it through.
func sameID(a, b string) bool {
	return a != "" && strings.EqualFold(a, b)
}

// claimsOwn reports whether id claims to be ours: our id itself, or our id
// with a "/job-id" suffix as OpenDMARC's AuthservIDWithJobID writes it.
// Claims are matched loosely because they are removed, never believed.
func (t trust) claimsOwn(id string) bool {
	if base, _, ok := strings.Cut(id, "/"); ok {
		id = base
	}
	return sameID(id, t.own)
}

func (t trust) trusts(id string) bool {
	for _, x := range t.trusted {
		if sameID(id, x) {
			return true
		}
	}
	return false
}

// arHeader is one Authentication-Results field as the message carried it.
type arHeader struct {
	index int // 1-based among the Authentication-Results fields, for ChangeHeader
	value string
}

// upstream is what the trusted fields say about the message.
type upstream struct {
	spf     []spfClaim
	dkim    []dmarc.DKIM
	anyDKIM bool   // at least one trusted dkim= result, "none" included
	arc     string // the first trusted arc= result, "" when none
	// forged lists the indexes of fields to remove: they claim our
	// authserv-id but we did not write them.
	forged []int
	// notes explains what was ignored and why, for the log.
	notes []string
}

// spfClaim is one spf= result as written.
type spfClaim struct {
	result   dmarc.AuthResult
	mailfrom string // domain of smtp.mailfrom, "" when absent
	helo     string // smtp.helo, "" when absent
}

// readUpstream reads every Authentication-Results field: fields with our
// own authserv-id that we do not trust are forged and marked for removal
// (RFC 8601 §5); a field with our id that carries a dmarc= result is forged
// whatever the trust, since we are the only DMARC evaluator writing it;
// fields from trusted ids give SPF and DKIM results; all else is ignored.
func (t trust) readUpstream(fields []arHeader) upstream {
	var u upstream
	for _, f := range fields {
		id := authres.AuthServIDOf(f.value)
		h, err := authres.Parse(f.value)
		if t.claimsOwn(id) && (!t.trusts(id) || hasMethod(h, "dmarc")) {
			u.forged = append(u.forged, f.index)
			u.notes = append(u.notes, fmt.Sprintf("removed forged Authentication-Results #%d claiming our authserv-id %q", f.index, id))
			continue
		}
		if id == "" || !t.trusts(id) {
			continue
		}
		if h == nil {
			u.notes = append(u.notes, fmt.Sprintf("unreadable Authentication-Results from %s ignored: %v", id, err))
			continue
		}
		if err != nil {
			u.notes = append(u.notes, fmt.Sprintf("part of Authentication-Results from %s ignored: %v", id, err))
		}
		for _, r := range h.Results {
			switch r.Method {
			case "spf":
				u.spf = append(u.spf, spfClaim{
					result:   authResult(r.Value),
					mailfrom: propDomain(r, "smtp", "mailfrom"),
					helo:     strings.ToLower(strings.TrimSuffix(propValue(r, "smtp", "helo"), ".")),
				})
			case "arc":
				if u.arc == "" {
					u.arc = strings.ToLower(r.Value)
				}
			case "dkim":
				u.anyDKIM = true
				// Alignment is on d= (RFC 7489 §3.1.1); i= may name a
				// subdomain of d= and so pass where d= would not.
				d := propDomain(r, "header", "d")
				if d == "" {
					u.notes = append(u.notes, fmt.Sprintf("dkim=%s from %s without header.d ignored", r.Value, id))
					continue
				}
				sel, _ := r.Prop("header", "s")
				u.dkim = append(u.dkim, dmarc.DKIM{Domain: d, Selector: sel, Result: authResult(r.Value)})
			}
		}
	}
	return u
}

func hasMethod(h *authres.Header, method string) bool {
	if h == nil {
		return false
	}
	for _, r := range h.Results {
		if r.Method == method {
			return true
		}
	}
	return false
}

// authResult maps an A-R result keyword to the DMARC input. RFC 8601's
// "hardfail" (older SPF writers) is fail; anything unknown is neutral, which
// can never align.
func authResult(v string) dmarc.AuthResult {
	switch v {
	case "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy":
		return dmarc.AuthResult(v)
	case "hardfail":
		return dmarc.AuthFail
	case "tempfail", "temperr":
		return dmarc.AuthTempError
	case "permfail", "permerr":
		return dmarc.AuthPermError
	}
	return dmarc.AuthNeutral
}

func propValue(r authres.Result, typ, name string) string {
	v, _ := r.Prop(typ, name)
	return v
}

// propDomain returns the domain of a property holding an address, a
// domain, or "@domain", without the angle brackets smf-spf writes.
func propDomain(r authres.Result, typ, name string) string {
	v := strings.Trim(propValue(r, typ, name), "<> ")
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		v = v[i+1:]
	}
	return strings.ToLower(strings.TrimSuffix(v, "."))
}

// envelope is what the SMTP session said about the sender.
type envelope struct {
	mailFrom string // the MAIL FROM address without brackets; "" for <>
	helo     string
}

// mailFromDomain returns the domain of MAIL FROM, "" for the null sender.
func (e envelope) mailFromDomain() string {
	i := strings.LastIndexByte(e.mailFrom, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(e.mailFrom[i+1:], "."))
}

// chooseSPF picks the SPF result DMARC may use. An SPF result counts only
// for the identity of this message's envelope: the MAIL FROM domain, or the
// HELO name when MAIL FROM is null (RFC 7208 §2.4). A HELO-scope pass must
// never stand in for a non-null MAIL FROM: that was CVE-2019-20790. Every
// ignored claim is explained in the notes.
func chooseSPF(claims []spfClaim, env envelope) (dmarc.SPF, []string) {
	var notes []string
	mf := env.mailFromDomain()
	helo := strings.ToLower(strings.TrimSuffix(env.helo, "."))
	var chosen dmarc.SPF
	for _, c := range claims {
		var got dmarc.SPF
		switch {
		case mf != "" && c.mailfrom == mf:
			got = dmarc.SPF{Domain: mf, Scope: dmarc.ScopeMailFrom, Result: c.result}
		case mf != "" && c.mailfrom != "":
			notes = append(notes, fmt.Sprintf("SPF %s for %s ignored: MAIL FROM domain is %s", c.result, c.mailfrom, mf))
		case mf != "":
			notes = append(notes, fmt.Sprintf("SPF %s for HELO %s ignored: MAIL FROM is not null (CVE-2019-20790)", c.result, c.helo))
		case helo != "" && (c.helo == helo || c.mailfrom == helo):
			got = dmarc.SPF{Domain: helo, Scope: dmarc.ScopeHelo, Result: c.result}
		default:
			notes = append(notes, fmt.Sprintf("SPF %s for %s%s ignored: null sender and HELO is %s", c.result, c.mailfrom, c.helo, helo))
		}
		// Several trusted verdicts for this identity: a pass from any
		// of them counts, as for DKIM; otherwise the first stands.
		if got.Result != "" && (chosen.Result == "" || got.Result == dmarc.AuthPass && chosen.Result != dmarc.AuthPass) {
			chosen = got
		}
	}
	return chosen, notes
}
