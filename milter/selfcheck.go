package milter

import (
	"bytes"
	"context"
	"io"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/authres"
)

// rawMessage rebuilds the message as the MTA received it, for DKIM and ARC
// canonicalization: header fields in order with CRLF line ends, an empty
// line, then the body.
func (s *session) rawMessage() io.Reader {
	var h bytes.Buffer
	for _, f := range s.msg.fields {
		h.WriteString(f.name)
		h.WriteByte(':')
		if !s.msg.leadSP {
			h.WriteByte(' ') // the MTA swallowed it
		}
		h.WriteString(crlf(f.value))
		h.WriteString("\r\n")
	}
	h.WriteString("\r\n")
	return io.MultiReader(&h, bytes.NewReader(s.msg.body.Bytes()))
}

// crlf turns the folded lines of a header value into CRLF line ends, as
// they were on the wire; the milter protocol passes them with bare LF.
func crlf(v string) string {
	if !strings.Contains(v, "\n") {
		return v
	}
	return strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\n", "\r\n")
}

// verifyDKIM verifies every DKIM signature of the message (at most
// maxDKIMFields), with keys from our DNS cache within the message's budget.
func (s *session) verifyDKIM(ctx context.Context) []dmarc.DKIM {
	lookup := func(name string) ([]string, error) {
		return s.deps.Evaluator.Resolver.LookupTXT(ctx, name)
	}
	verifs, err := dkim.VerifyWithOptions(s.rawMessage(), &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: maxDKIMFields})
	if err != nil && err != dkim.ErrTooManySignatures {
		return []dmarc.DKIM{{Result: dmarc.AuthPermError}}
	}
	out := make([]dmarc.DKIM, 0, len(verifs))
	for i, v := range verifs {
		k := dmarc.DKIM{Domain: strings.ToLower(v.Domain), Result: dkimResult(v.Err)}
		// Verifications come in the order of the signatures.
		if i < len(s.msg.dkimSigs) {
			d, sel := signatureTags(s.msg.dkimSigs[i])
			if k.Domain == "" {
				k.Domain = d
			}
			k.Selector = sel
		}
		out = append(out, k)
	}
	return out
}

// dkimResult maps a verification error to the RFC 8601 result.
func dkimResult(err error) dmarc.AuthResult {
	switch {
	case err == nil:
		return dmarc.AuthPass
	case dkim.IsTempFail(err):
		return dmarc.AuthTempError
	case dkim.IsPermFail(err):
		return dmarc.AuthPermError
	}
	return dmarc.AuthFail
}

// signatureTags returns the d= and s= tags of a DKIM-Signature value.
func signatureTags(v string) (d, s string) {
	for _, t := range strings.Split(v, ";") {
		name, value, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		value = strings.Join(strings.Fields(value), "")
		switch strings.TrimSpace(name) {
		case "d":
			d = strings.ToLower(value)
		case "s":
			s = value
		}
	}
	return d, s
}

// spfClause is the spf= clause of our header for an SPF check run here,
// in OpenDMARC's shape.
func spfClause(spf dmarc.SPF) string {
	if spf.Scope == dmarc.ScopeHelo {
		return "spf=" + string(spf.Result) + " smtp.helo=" + authres.QuoteValue(spf.Domain)
	}
	return "spf=" + string(spf.Result) + " smtp.mailfrom=" + authres.QuoteValue(spf.Domain)
}

// dkimClause is the dkim= clause of our header for a signature verified here.
func dkimClause(k dmarc.DKIM) string {
	c := "dkim=" + string(k.Result)
	if k.Domain != "" {
		c += " header.d=" + authres.QuoteValue(k.Domain)
	}
	if k.Selector != "" {
		c += " header.s=" + authres.QuoteValue(k.Selector)
	}
	return c
}
