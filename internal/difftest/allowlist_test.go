package difftest

// allowance is one difference between OpenDMARC 1.4.2 and dmarcd that is
// dmarcd following an RFC where OpenDMARC does not. Its predicate looks at
// the message's features and at both verdicts, so that it matches that
// difference and nothing else: a feature alone would hide whatever else
// went wrong with the same message.
type allowance struct {
	name   string
	reason string // what differs and why dmarcd's answer is the right one
	rfc    string // the section that says so
	match  func(m message, od, dd verdict) bool
}

// allowList is every difference the test accepts. An entry belongs here
// only with an RFC section behind it; a difference without one is a dmarcd
// bug and stays a failure.
var allowList = []allowance{
	{
		name:   "pct=0: the next milder policy",
		reason: "a failure that pct samples out gets the next milder policy (quarantine for reject); OpenDMARC delivers it untouched (dis=none). Listed in the README's Migrating section.",
		rfc:    "RFC 7489 §6.6.4 (and pct in §6.3)",
		match: func(m message, od, dd verdict) bool {
			return m.has("pct0") &&
				od.Action == "accept" && only(od, "fail", "reject", "none") &&
				dd.Action == "quarantine" && only(dd, "fail", "reject", "quarantine")
		},
	},
	{
		name:   "smtp.mailfrom written as an address",
		reason: "OpenDMARC compares \"@domain\" with the MAIL FROM domain and so never uses an SPF result whose smtp.mailfrom is the whole address (local-part@domain, with or without angle brackets); dmarcd takes the domain of the address.",
		rfc:    "RFC 8601 §2.7.2 (smtp.mailfrom is the MAIL FROM address or its domain), RFC 7489 §4.1",
		match: func(m message, od, dd verdict) bool {
			return m.has("spf-address") && !passed(od) && passed(dd)
		},
	},
	{
		name:   "strict alignment of a subdomain of the From domain",
		reason: "with adkim=s or aspf=s, OpenDMARC also aligns an identifier whose organizational domain is the From domain (d=mail.example.com for From example.com); strict alignment is an exact match of the two names.",
		rfc:    "RFC 7489 §3.1.1 and §3.1.2 (strict mode: only an exact match of the FQDNs aligns)",
		match: func(m message, od, dd verdict) bool {
			sub := m.has("strict-dkim") && m.has("dkim-child") || m.has("strict-spf") && m.has("spf-child")
			return sub && m.has("from-is-org") && passed(od) && failed(dd)
		},
	},
	{
		name:   "an invalid or missing p (or invalid sp) with a valid rua: p=none",
		reason: "OpenDMARC writes dmarc=permerror; with a syntactically valid rua the receiver is to act as if the record said p=none (dmarcd: dmarc=fail or pass with p=none dis=none).",
		rfc:    "RFC 7489 §6.6.3 (step 6)",
		match: func(m message, od, dd verdict) bool {
			return m.has("bad-p-rua") && od.Action == "accept" && only(od, "permerror", "", "") &&
				dd.Action == "accept" && len(dd.DMARC) == 1 && dd.DMARC[0].P == "none" && dd.DMARC[0].Dis == "none" &&
				(dd.DMARC[0].Result == "pass" || dd.DMARC[0].Result == "fail")
		},
	},
	{
		name:   "an abbreviated policy word is not a policy",
		reason: "OpenDMARC reads any prefix of a policy word (p=r, p=rej) as that policy; the only values are none, quarantine and reject, so a record whose p is none of them and has no rua is unusable (dmarc=permerror).",
		rfc:    "RFC 7489 §6.3 and §6.4 (dmarc-request), §6.6.3 (step 6)",
		match: func(m message, od, dd verdict) bool {
			return m.has("abbreviated-p") && dd.Action == "accept" && only(dd, "permerror", "", "")
		},
	},
	{
		name:   "a TXT record that does not start with v=DMARC1 is not a DMARC record",
		reason: "OpenDMARC takes any TXT record containing \"v=DMARC\" and then applies it (v after p) or calls it a permerror (v=DMARC2, v=DMARC1 without a separator); a record that does not begin with the v=DMARC1 tag is discarded, so no policy applies (dmarc=none).",
		rfc:    "RFC 7489 §6.6.3 (step 2), §6.3 (v first), §6.4 (dmarc-record)",
		match: func(m message, od, dd verdict) bool {
			return (m.has("v-not-first") || m.has("v-other-version") || m.has("v-no-separator")) &&
				dd.Action == "accept" && only(dd, "none", "none", "none")
		},
	},
	{
		name:   "an invalid optional tag takes its default",
		reason: "OpenDMARC refuses the whole record (dmarc=permerror) for an invalid adkim or an out-of-range pct, and reads pct=abc as pct=0; the record is applied with the tag's default (relaxed, 100).",
		rfc:    "RFC 7489 §6.3 (syntax errors in the remainder of the record are discarded in favour of default values)",
		match: func(m message, od, dd verdict) bool {
			odWrong := od.Action == "accept" && (only(od, "permerror", "", "") ||
				m.has("pct-not-a-number") && only(od, "fail", "reject", "none"))
			return m.has("bad-optional-tag") && odWrong && !anyResult(dd, "permerror")
		},
	},
	{
		name:   "a duplicate tag: the first one counts",
		reason: "OpenDMARC lets the last p= win; the grammar allows each tag once, after v and p, so the repeated p= is a syntax error in the remainder of the record and is discarded, and the first p= applies.",
		rfc:    "RFC 7489 §6.3 and §6.4",
		match: func(m message, od, dd verdict) bool {
			return m.has("duplicate-p") && len(dd.DMARC) == 1 && dd.DMARC[0].P == "none" && dd.Action == "accept"
		},
	},
	{
		name:   "several DMARC records at one name: no policy",
		reason: "OpenDMARC applies the first DMARC record of the answer; with several, policy discovery ends and DMARC is not applied (dmarc=none).",
		rfc:    "RFC 7489 §6.6.3 (step 5)",
		match: func(m message, od, dd verdict) bool {
			return m.has("several-records") && dd.Action == "accept" && only(dd, "none", "none", "none")
		},
	},
	{
		name:   "a failed _dmarc lookup is a temperror",
		reason: "OpenDMARC treats SERVFAIL and REFUSED as no record (dmarc=none), or, when only the From domain's own lookup fails, goes on to the organizational domain's policy as if the From domain had none; the answer is unknown, not empty, so the result is dmarc=temperror, accepted here (policy.temperror = accept). Listed in the README's Migrating section.",
		rfc:    "RFC 7489 §6.6.3 (the organizational domain is asked only when the first set is empty; DNS errors are the receiver's choice), §11.2 (temperror)",
		match: func(m message, od, dd verdict) bool {
			return m.has("dns-failure") && dd.Action == "accept" && only(dd, "temperror", "", "")
		},
	},
	{
		name:   "a trusted authserv-id in other capitals",
		reason: "OpenDMARC compares TrustedAuthservIDs case-sensitively (its own AuthservID case-insensitively); an authserv-id is a domain name, and domain names compare without regard to case.",
		rfc:    "RFC 8601 §2.5, RFC 4343 §2",
		match: func(m message, od, dd verdict) bool {
			return m.has("trusted-id-case") && !passed(od) && passed(dd)
		},
	},
	{
		name:   "a field forged with our authserv-id and a dmarc= result is removed",
		reason: "only dmarcd writes dmarc= under its own authserv-id, so such a field came from outside: dmarcd removes it and reads nothing from it; OpenDMARC reads its dkim=pass.",
		rfc:    "RFC 8601 §5",
		match: func(m message, od, dd verdict) bool {
			return m.has("forged-dmarc") && dd.Removed > 0 && passed(od) && failed(dd)
		},
	},
	{
		name:   "Received-SPF is not trusted",
		reason: "OpenDMARC believes a Received-SPF field in the message when no Authentication-Results gave SPF; the field names no authserv-id, so a sender can write it as easily as the receiving MTA, and dmarcd reads SPF only from Authentication-Results of trusted authserv-ids (or checks SPF itself).",
		rfc:    "RFC 8601 §5 and §7.2 (results only from trusted, identified sources), RFC 7208 §9.1",
		match: func(m message, od, dd verdict) bool {
			return m.has("received-spf") && passed(od) && failed(dd)
		},
	},
	{
		name:   "SPF of the HELO identity for a null MAIL FROM",
		reason: "for a bounce (MAIL FROM:<>), the SPF identity DMARC uses is the HELO name (postmaster@HELO); OpenDMARC has no MAIL FROM domain to match and drops the SPF result.",
		rfc:    "RFC 7489 §4.1, RFC 7208 §2.4",
		match: func(m message, od, dd verdict) bool {
			return m.has("helo-null-sender") && m.MailFrom == "" && !passed(od) && passed(dd)
		},
	},
	{
		name:   "two Sender fields break RequiredHeaders",
		reason: "RFC 5322 allows at most one Sender field, as it does one Reply-To or Subject; OpenDMARC 1.4's RequiredHeaders counts those and not Sender, so it lets a message with two through. dmarcd counts Sender too. Listed in the README's Migrating section.",
		rfc:    "RFC 5322 §3.6 (sender: 0 or 1)",
		match: func(m message, od, dd verdict) bool {
			return m.has("two-sender") && od.Action == "accept" && passed(od) && dd.Action == "reject" && len(dd.DMARC) == 0
		},
	},
	{
		name:   "several From domains: each is evaluated, the strictest applies",
		reason: "OpenDMARC accepts a From field with addresses in different domains without evaluating it, and evaluates only the first of several From fields; dmarcd evaluates every From domain and applies the strictest outcome (policy.multiple_from = strictest). Listed in the README's Migrating section.",
		rfc:    "RFC 7489 §6.6.1, RFC 5322 §3.6",
		match: func(m message, od, dd verdict) bool {
			if !m.has("multi-from-domains") && !m.has("multi-from-fields") {
				return false
			}
			return strictness(dd) > strictness(od) || strictness(dd) == strictness(od) && len(dd.DMARC) > len(od.DMARC)
		},
	},
}

// allowed returns the first allow-list entry that matches, or nil.
func allowed(m message, od, dd verdict) *allowance {
	for i := range allowList {
		if allowList[i].match(m, od, dd) {
			return &allowList[i]
		}
	}
	return nil
}

// only reports whether v has exactly one dmarc= clause with this result,
// p and dis ("" for none written).
func only(v verdict, result, p, dis string) bool {
	return len(v.DMARC) == 1 && v.DMARC[0].Result == result && v.DMARC[0].P == p && v.DMARC[0].Dis == dis
}

func anyResult(v verdict, result string) bool {
	for _, c := range v.DMARC {
		if c.Result == result {
			return true
		}
	}
	return false
}

// passed reports whether the message was accepted with DMARC passing.
func passed(v verdict) bool {
	return v.Action == "accept" && len(v.DMARC) == 1 && v.DMARC[0].Result == "pass"
}

// failed reports whether DMARC failed: the message was rejected or
// quarantined by policy, or accepted with dmarc=fail.
func failed(v verdict) bool {
	switch v.Action {
	case "reject":
		return v.Code == "550 5.7.1"
	case "quarantine", "accept":
		return anyResult(v, "fail") && !anyResult(v, "pass")
	}
	return false
}

// strictness orders actions: reject, tempfail, quarantine, accept.
func strictness(v verdict) int {
	switch v.Action {
	case "reject":
		return 3
	case "tempfail":
		return 2
	case "quarantine":
		return 1
	}
	return 0
}
