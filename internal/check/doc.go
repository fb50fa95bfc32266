// Package check is `dmarcd check`: it looks up the DMARC record that
// applies to a domain, as receivers would, and tells the domain owner what
// it says and what to fix.
//
// For each domain a check finds the policy record (RFC 9989 DNS tree walk
// or RFC 7489 public suffix list, per Checker.Spec) through the Resolver it
// is given (dmarcd's DNS cache: real DNS, with NXDOMAIN, NODATA and
// failures kept apart), and reports:
//
//   - where the record came from: the domain itself, its organizational
//     domain, or a public suffix domain with psd=y;
//   - every tag of the spec with its effective value, defaults and
//     inheritance (sp from p, np from sp or p) filled in, and the tags
//     written that the spec ignores;
//   - the policy for failing mail from the domain, its subdomains and
//     (RFC 9989) its non-existent subdomains, with what t=y or pct make of
//     it;
//   - each rua and ruf destination, verified as reporters verify it (RFC
//     7489 §7.1, RFC 9990): a host outside the organizational domain must
//     publish <policy-domain>._report._dmarc.<host>;
//   - findings, errors first: syntax errors with their byte offset,
//     records receivers ignore, several records at one name, p=none, pct
//     (RFC 7489) or t=y, no rua, unauthorized destinations, tags and
//     suffixes RFC 9989 removed, URIs that are not mailto:, sp or np
//     weaker than p;
//   - every DNS query made and its answer.
//
// # Status and exit code
//
// A report's Status is "failed" (exit code 2) when a lookup failed
// (SERVFAIL, REFUSED, timeout: what receivers see as temperror) or the
// argument is not a domain; "problems" (1) when no record applies or any
// error or warning was found; "ok" (0) otherwise, info findings allowed.
// For several domains the worst code wins: 2 over 1 over 0.
//
// # JSON
//
// WriteJSON writes one object per domain, an array of them for several.
// Every key is always present; a value that does not apply is null, a list
// that is empty is []. Keys may be added; none will be removed or change
// meaning.
//
//	{
//	  "input":         string   the argument as given
//	  "domain":        string   normalized A-label form; "" if not a domain
//	  "unicode":       string   the domain with U-labels
//	  "spec":          "rfc9989" | "rfc7489"
//	  "status":        "ok" | "problems" | "failed"
//	  "error":         string | null   why the check failed
//	  "policy_domain": string | null   where the record that applies was found
//	  "source":        "domain" | "organizational" | "psd" | null
//	  "org_domain":    string | null   the organizational domain under spec
//	  "record":        string | null   the record text
//	  "tags": [{
//	    "name":      string
//	    "value":     string | null   as written; null when absent
//	    "effective": string          the value that applies; "" for none
//	    "default":   bool            the tag is absent: effective is a default
//	    "note":      string          "default: same as p", "ignored: removed by RFC 9989", ...
//	  }]
//	  "policies": null | {            null when no usable record applies
//	    "domain":           "none" | "quarantine" | "reject"
//	    "domain_from":      "p" | "sp" | "np"
//	    "domain_exists":    bool     false when the domain is NXDOMAIN
//	    "subdomains":       policy
//	    "subdomains_from":  "p" | "sp"
//	    "nonexistent":      policy | null        null under RFC 7489
//	    "nonexistent_from": "p" | "sp" | "np" | null
//	    "testing":          bool     t=y: receivers apply one level less
//	    "pct":              int      RFC 7489 sampling; 100 under RFC 9989
//	  }
//	  "destinations": [{
//	    "tag":        "rua" | "ruf"
//	    "uri":        string          as written
//	    "external":   bool            outside the organizational domain
//	    "authorized": bool            reporters will send reports
//	    "txt_name":   string | null   <policy-domain>._report._dmarc.<host> for external ones
//	    "send":       [string]        where reports go (an override replaces the URI)
//	    "reason":     string | null   why not authorized, or why it could not be verified
//	  }]
//	  "findings": [{                  errors first, then warnings, then info
//	    "severity": "error" | "warning" | "info"
//	    "offset":   int | null        byte offset in "record" (or in "text")
//	    "tag":      string | null
//	    "message":  string
//	    "text":     string | null     the TXT record offset points into, when not "record"
//	  }]
//	  "lookups": [{                   each name and type once, in the order asked
//	    "name":          string
//	    "type":          "TXT" | "A"  (A: existence check)
//	    "result":        "records" | "nxdomain" | "nodata" | "exists" | "error"
//	    "txt":           [string]
//	    "dmarc_records": int          how many begin with v=DMARC1
//	    "cname":         string | null   the canonical name when an alias
//	    "tcp":           bool         answered over TCP after a truncated UDP answer
//	    "error":         string | null   "SERVFAIL (...)", "timeout: ...", ...
//	  }]
//	}
package check
