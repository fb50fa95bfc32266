package failure

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
)

// ComposeOptions are what Compose needs besides the Incident.
type ComposeOptions struct {
	// FromName and FromAddress make the From field.
	FromName, FromAddress string
	// To are the recipients written in the To field.
	To []string
	// MessageID is the Message-ID, without angle brackets. It should
	// stay the same for every attempt at one report.
	MessageID string
	// Date is the Date field; zero means now.
	Date time.Time
	// UserAgent is the User-Agent field, "dmarcd/<version>".
	UserAgent string
	// ReportingMTA is our host name, for Reporting-MTA.
	ReportingMTA string
	// WholeMessage attaches the reported message with its body
	// (message/rfc822) when the Incident has one; otherwise only its
	// header section goes (text/rfc822-headers).
	WholeMessage bool
}

// maxRcptTo bounds the Original-Rcpt-To fields of one report.
const maxRcptTo = 100

// Compose writes the failure report about inc as an RFC 5322 message:
// multipart/report; report-type=feedback-report (RFC 5965, RFC 6591, RFC
// 9991), of a text/plain description, the message/feedback-report
// fields, and the reported message's header section or, with
// WholeMessage, the message itself. Lines end in CRLF. The Subject names
// the domain and the source address but never the reported message's
// Subject, which redaction may have had to hide.
func Compose(inc Incident, o ComposeOptions) ([]byte, error) {
	if o.FromAddress == "" || len(o.To) == 0 {
		return nil, errors.New("compose failure report: no From address or no recipient")
	}
	for _, a := range append([]string{o.FromAddress, o.MessageID}, o.To...) {
		if strings.ContainsAny(a, "\r\n<>\" \t,") {
			return nil, fmt.Errorf("compose failure report: bad address or Message-ID %q", a)
		}
	}
	date := o.Date
	if date.IsZero() {
		date = time.Now()
	}
	msgID := o.MessageID
	if msgID == "" {
		return nil, errors.New("compose failure report: no Message-ID")
	}
	sum := sha256.Sum256([]byte(msgID))
	boundary := "arf-" + hex.EncodeToString(sum[:12])
	whole := o.WholeMessage && inc.Body != nil

	var b bytes.Buffer
	from := "<" + o.FromAddress + ">"
	if o.FromName != "" {
		from = mime.QEncoding.Encode("utf-8", clean(o.FromName)) + " " + from
		if isPrintableASCII(o.FromName) {
			from = quote(clean(o.FromName)) + " <" + o.FromAddress + ">"
		}
	}
	hdr(&b, "From", from)
	hdr(&b, "To", strings.Join(o.To, ", "))
	hdr(&b, "Subject", fmt.Sprintf("DMARC failure report for %s from %s", clean(inc.FromDomain), addrString(inc)))
	hdr(&b, "Date", date.UTC().Format(time.RFC1123Z))
	hdr(&b, "Message-ID", "<"+msgID+">")
	hdr(&b, "Auto-Submitted", "auto-generated")
	hdr(&b, "MIME-Version", "1.0")
	hdr(&b, "Content-Type", `multipart/report; report-type=feedback-report; boundary="`+boundary+`"`)
	b.WriteString("\r\n")

	// The human-readable part.
	b.WriteString("--" + boundary + "\r\n")
	hdr(&b, "Content-Type", "text/plain; charset=us-ascii")
	hdr(&b, "Content-Transfer-Encoding", "7bit")
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "This is a DMARC failure report (RFC 9991) for a message that claimed\r\n"+
		"to be from %s, received from %s on %s.\r\n"+
		"DMARC result: %s; the message was %s.\r\n",
		clean(inc.FromDomain), addrString(inc), inc.Arrival.UTC().Format(time.RFC1123Z), clean(inc.DMARC), deliveryWords(inc.DeliveryResult))
	if inc.BodyOmitted {
		b.WriteString("The message's body was too large to include; its header section follows.\r\n")
	}
	if inc.HeadersTruncated {
		b.WriteString("The message's header section was too large and is cut short.\r\n")
	}
	b.WriteString("\r\n")

	// The machine-readable part.
	b.WriteString("--" + boundary + "\r\n")
	hdr(&b, "Content-Type", "message/feedback-report")
	b.WriteString("\r\n")
	feedback(&b, inc, o)
	b.WriteString("\r\n")

	// The reported message.
	b.WriteString("--" + boundary + "\r\n")
	section := headerSection(inc.Headers)
	if whole {
		hdr(&b, "Content-Type", "message/rfc822")
		hdr(&b, "Content-Transfer-Encoding", encodingOf(section, inc.Body))
		b.WriteString("\r\n")
		b.Write(section)
		b.WriteString("\r\n")
		body := crlf(inc.Body)
		b.Write(body)
		if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
			b.WriteString("\r\n")
		}
	} else {
		hdr(&b, "Content-Type", "text/rfc822-headers")
		hdr(&b, "Content-Transfer-Encoding", encodingOf(section, nil))
		b.WriteString("\r\n")
		b.Write(section)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// feedback writes the fields of the message/feedback-report part.
func feedback(b *bytes.Buffer, inc Incident, o ComposeOptions) {
	hdr(b, "Feedback-Type", "auth-failure")
	hdr(b, "User-Agent", clean(o.UserAgent))
	hdr(b, "Version", "1")
	hdr(b, "Auth-Failure", "dmarc")
	hdr(b, "Authentication-Results", authResults(inc))
	hdr(b, "Identity-Alignment", IdentityAlignment(inc))
	hdr(b, "Original-Mail-From", "<"+clean(inc.MailFrom)+">")
	for i, r := range inc.RcptTo {
		if i == maxRcptTo {
			break
		}
		hdr(b, "Original-Rcpt-To", "<"+clean(r)+">")
	}
	if !inc.Arrival.IsZero() {
		hdr(b, "Arrival-Date", inc.Arrival.UTC().Format(time.RFC1123Z))
	}
	if o.ReportingMTA != "" {
		hdr(b, "Reporting-MTA", "dns; "+clean(o.ReportingMTA))
	}
	if inc.SourceIP.IsValid() {
		hdr(b, "Source-IP", inc.SourceIP.String())
	}
	hdr(b, "Reported-Domain", clean(inc.FromDomain))
	if inc.DeliveryResult != "" {
		hdr(b, "Delivery-Result", clean(inc.DeliveryResult))
	}
	if k, ok := reportedSignature(inc.DKIM); ok {
		hdr(b, "DKIM-Domain", clean(k.Domain))
		if id := dkimIdentity(inc.Headers, k); id != "" {
			hdr(b, "DKIM-Identity", id)
		}
		if k.Selector != "" {
			hdr(b, "DKIM-Selector", clean(k.Selector))
		}
	}
	if inc.SPFDNS != "" && inc.SPF.Domain != "" {
		hdr(b, "SPF-DNS", "txt : "+clean(inc.SPF.Domain)+" : "+quote(clean(inc.SPFDNS)))
	}
}

// dkimIdentity returns the i= of the DKIM-Signature field of signature k
// (its d= and s=), or "@" and its d= when it has no i= (RFC 6376 §3.5),
// or "" when the field is not among the kept ones.
func dkimIdentity(fs []Field, k Auth) string {
	for _, f := range fs {
		if !strings.EqualFold(f.Name, "DKIM-Signature") {
			continue
		}
		tags := map[string]string{}
		for _, t := range strings.Split(unfold(f.Value), ";") {
			name, value, ok := strings.Cut(t, "=")
			if ok {
				tags[strings.ToLower(strings.TrimSpace(name))] = strings.Join(strings.Fields(value), "")
			}
		}
		if !strings.EqualFold(tags["d"], k.Domain) || (k.Selector != "" && !strings.EqualFold(tags["s"], k.Selector)) {
			continue
		}
		if i := clean(tags["i"]); i != "" {
			return i
		}
		return "@" + clean(tags["d"])
	}
	return ""
}

// IdentityAlignment is the value of the Identity-Alignment field (RFC 9991): the mechanisms that failed to produce an aligned pass, "dkim"
// and "spf" in that order, or "none" when neither failed.
func IdentityAlignment(inc Incident) string {
	var m []string
	dkimAligned := false
	for _, k := range inc.DKIM {
		dkimAligned = dkimAligned || k.Aligned
	}
	if !dkimAligned {
		m = append(m, "dkim")
	}
	if !inc.SPF.Aligned {
		m = append(m, "spf")
	}
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(m, ", ")
}

// reportedSignature picks the DKIM signature DKIM-Domain and DKIM-Selector
// describe: the first that failed, else the first.
func reportedSignature(ks []Auth) (Auth, bool) {
	for _, k := range ks {
		if k.Result != "pass" && k.Domain != "" {
			return k, true
		}
	}
	if len(ks) > 0 && ks[0].Domain != "" {
		return ks[0], true
	}
	return Auth{}, false
}

// authResults is the Authentication-Results value RFC 6591 §3.1 asks for:
// our results for the message.
func authResults(inc Incident) string {
	id := clean(inc.AuthServID)
	if id == "" {
		id = "unknown"
	}
	parts := []string{id}
	for _, k := range inc.DKIM {
		p := "dkim=" + orNone(k.Result)
		if k.Domain != "" {
			p += " header.d=" + clean(k.Domain)
		}
		if k.Selector != "" {
			p += " header.s=" + clean(k.Selector)
		}
		parts = append(parts, p)
	}
	if inc.SPF.Result != "" {
		p := "spf=" + clean(inc.SPF.Result)
		if inc.SPF.Domain != "" {
			key := "smtp.mailfrom"
			if inc.SPF.Scope == "helo" {
				key = "smtp.helo"
			}
			p += " " + key + "=" + clean(inc.SPF.Domain)
		}
		parts = append(parts, p)
	}
	parts = append(parts, "dmarc="+orNone(inc.DMARC)+" header.from="+clean(inc.FromDomain))
	return strings.Join(parts, ";\r\n\t")
}

func orNone(s string) string {
	if s = clean(s); s == "" {
		return "none"
	}
	return s
}

func deliveryWords(r string) string {
	switch r {
	case "reject":
		return "rejected"
	case "policy":
		return "held by local policy"
	case "spam":
		return "delivered to a spam folder"
	case "delivered":
		return "delivered"
	}
	return "handled otherwise (" + clean(r) + ")"
}

func addrString(inc Incident) string {
	if inc.SourceIP.IsValid() {
		return inc.SourceIP.String()
	}
	return "an unknown address"
}

// headerSection writes the header fields as a header section, CRLF line
// ends, folding kept.
func headerSection(fs []Field) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		if !validName(f.Name) {
			continue
		}
		b.WriteString(f.Name)
		b.WriteByte(':')
		b.Write(crlf([]byte(f.Value)))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// validName reports whether s is a field name (RFC 5322 §3.6.8): a
// broken one would end the header section early.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}

// crlf makes every line end in CRLF, dropping stray CRs.
func crlf(p []byte) []byte {
	if !bytes.ContainsAny(p, "\r\n") {
		return p
	}
	p = bytes.ReplaceAll(p, []byte("\r\n"), []byte("\n"))
	p = bytes.ReplaceAll(p, []byte("\r"), nil)
	return bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))
}

func encodingOf(parts ...[]byte) string {
	for _, p := range parts {
		for _, c := range p {
			if c >= 0x80 || c == 0 {
				return "8bit"
			}
		}
	}
	return "7bit"
}

// hdr writes one header field; the value must be clean.
func hdr(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(": ")
	b.WriteString(value)
	b.WriteString("\r\n")
}

// clean removes control characters (CR and LF among them) from a value
// that came from a sender or from DNS, so that it cannot add fields.
func clean(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
