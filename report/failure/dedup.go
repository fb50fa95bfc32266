package failure

import (
	"crypto/sha256"
	"strings"
)

// DedupKey identifies a failure for deduplication: one message (its
// Message-ID, or its From, Date and Subject when it has none) from one
// source with the same results, reported to one destination. The same
// message delivered in several transactions (one per recipient domain,
// or retried after a temporary refusal) gives one key, so one report.
// It must be computed before redaction, which may hide what it reads.
func DedupKey(inc Incident, destination string) []byte {
	h := sha256.New()
	put := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	put(strings.ToLower(destination))
	put(inc.PolicyDomain)
	put(inc.FromDomain)
	put(inc.SourceIP.String())
	put(strings.ToLower(inc.MailFrom))
	put(inc.DMARC + "/" + inc.SPF.Result)
	for _, k := range inc.DKIM {
		put(k.Domain + "/" + k.Selector + "/" + k.Result)
	}
	if id := field(inc.Headers, "Message-ID"); id != "" {
		put("id:" + id)
	} else {
		put("from:" + field(inc.Headers, "From"))
		put("date:" + field(inc.Headers, "Date"))
		put("subject:" + field(inc.Headers, "Subject"))
	}
	return h.Sum(nil)
}

// field returns the first value of the named header field, unfolded and
// trimmed.
func field(fs []Field, name string) string {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return unfold(f.Value)
		}
	}
	return ""
}
