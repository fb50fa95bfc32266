package ingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Failure is one failure report: an RFC 6591 authentication failure report
// in the Abuse Reporting Format (RFC 5965), with the fields RFC 9991 adds
// for DMARC. Values are trimmed; addresses lose their angle brackets.
type Failure struct {
	FeedbackType string // "auth-failure" (anything else is refused)
	Version      string
	UserAgent    string
	// AuthFailure is dmarc, dkim, spf, adsp, bodyhash, revoked or
	// signature (RFC 6591 §3.1, RFC 9991 §4), lower-cased.
	AuthFailure    string
	ReportedDomain string
	ReportedURI    []string
	SourceIP       netip.Addr // invalid when absent or unreadable (see Warnings)

	OriginalMailFrom   string // "" for the null sender
	OriginalRcptTo     []string
	OriginalEnvelopeID string
	ArrivalDate        time.Time // zero when absent or unreadable

	AuthenticationResults []string
	DKIMDomain            string
	DKIMIdentity          string
	DKIMSelector          string
	SPFDNS                []string
	DeliveryResult        string // delivered, spam, policy, reject, other (RFC 6591 §3.2)
	// IdentityAlignment lists the mechanisms that failed to authenticate
	// an aligned identity (RFC 9991 §4): "dkim", "spf", or just "none".
	IdentityAlignment []string
	Incidents         int64 // 0 when absent (meaning 1)

	// Headers is the header section of the reported message, from the
	// message/rfc822 or text/rfc822-headers part, LF line ends, cut at
	// Limits.MaxHeaderText (HeadersTruncated then set). The body is never
	// kept.
	Headers          string
	HeadersTruncated bool
	// From, Subject and Message-ID of the reported message, decoded.
	OriginalFrom, OriginalSubject, OriginalMessageID string

	// Reporter is who sent the report.
	Reporter Reporter

	// Fields holds every field of the message/feedback-report part, in
	// order and unfolded, those above included: nothing is lost.
	Fields []Field

	// Warnings lists what the report lacked or had wrong that RFC 6591
	// requires, each a sentence.
	Warnings []string
}

// Reporter is the sender of a failure report, from the report message's
// header and the ARF fields.
type Reporter struct {
	From         string // address of the report message's From
	Name         string // its display name
	UserAgent    string // ARF User-Agent
	ReportingMTA string // ARF Reporting-MTA, e.g. "dns; mx.example.net"
	MessageID    string // the report message's Message-ID, without <>
	Subject      string
	Date         time.Time
}

// Field is one header field, unfolded.
type Field struct {
	Name, Value string
}

// Key identifies a failure report for idempotent import: the report
// message's sender and Message-ID, or a hash of the report when it has no
// Message-ID.
func (f *Failure) Key() string {
	if f.Reporter.MessageID != "" {
		return strings.ToLower(f.Reporter.From) + "\x00" + f.Reporter.MessageID
	}
	h := sha256.New()
	for _, fl := range f.Fields {
		io.WriteString(h, fl.Name+":"+fl.Value+"\n")
	}
	io.WriteString(h, "\n"+f.Headers)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// maxARFPart is the most bytes read of a message/feedback-report part: a
// few dozen fields, perhaps canonicalized DKIM data.
const maxARFPart = 1 << 20

// parseFields reads header-like lines: CRLF or LF, folded lines joined,
// no blank line required at the end. Lines that are no field are skipped
// (and counted).
func parseFields(data []byte) (fields []Field, bad int) {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(fields) > 0 {
			last := &fields[len(fields)-1]
			last.Value = strings.TrimSpace(last.Value + " " + strings.TrimSpace(l))
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			bad++
			continue
		}
		fields = append(fields, Field{Name: sanitize(name), Value: sanitize(strings.TrimSpace(value))})
	}
	return fields, bad
}

// parseARF reads a message/feedback-report part.
func parseARF(data []byte) (*Failure, error) {
	fields, bad := parseFields(data)
	f := &Failure{Fields: fields}
	var w []string
	if bad > 0 {
		w = append(w, strconv.Itoa(bad)+" line(s) of the feedback report are no header field and were skipped")
	}
	for _, fl := range fields {
		v := fl.Value
		switch strings.ToLower(fl.Name) {
		case "feedback-type":
			f.FeedbackType = strings.ToLower(v)
		case "version":
			f.Version = v
		case "user-agent":
			f.UserAgent = v
		case "auth-failure":
			f.AuthFailure = strings.ToLower(v)
		case "reported-domain":
			if f.ReportedDomain == "" {
				f.ReportedDomain = domain(v)
			}
		case "reported-uri":
			f.ReportedURI = append(f.ReportedURI, v)
		case "source-ip":
			ip, err := parseIP(strings.Trim(v, "[]"))
			if err != nil {
				w = append(w, "Source-IP "+strconv.Quote(clip(v))+" is not an IP address")
			} else {
				f.SourceIP = ip
			}
		case "original-mail-from":
			f.OriginalMailFrom = address(v)
		case "original-rcpt-to":
			f.OriginalRcptTo = append(f.OriginalRcptTo, address(v))
		case "original-envelope-id":
			f.OriginalEnvelopeID = v
		case "arrival-date", "received-date":
			if t, err := mail.ParseDate(v); err == nil {
				f.ArrivalDate = t.UTC()
			} else {
				w = append(w, "Arrival-Date "+strconv.Quote(clip(v))+" is not a date")
			}
		case "authentication-results":
			f.AuthenticationResults = append(f.AuthenticationResults, v)
		case "dkim-domain":
			f.DKIMDomain = domain(v)
		case "dkim-identity":
			f.DKIMIdentity = v
		case "dkim-selector":
			f.DKIMSelector = v
		case "spf-dns":
			f.SPFDNS = append(f.SPFDNS, v)
		case "delivery-result":
			f.DeliveryResult = strings.ToLower(v)
		case "identity-alignment":
			for _, m := range strings.Split(v, ",") {
				if m = strings.ToLower(strings.TrimSpace(m)); m != "" {
					f.IdentityAlignment = append(f.IdentityAlignment, m)
				}
			}
		case "incidents":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				f.Incidents = n
			} else {
				w = append(w, "Incidents "+strconv.Quote(clip(v))+" is not a number")
			}
		case "reporting-mta":
			f.Reporter.ReportingMTA = v
		}
	}
	f.Reporter.UserAgent = f.UserAgent
	switch {
	case f.FeedbackType == "":
		return nil, newErr(ErrInvalid, 0, "message/feedback-report part without Feedback-Type")
	case f.FeedbackType != "auth-failure":
		return nil, newErr(ErrNotReport, 0, "ARF report of Feedback-Type %q, not an authentication failure report", clip(f.FeedbackType))
	}
	if f.Version == "" {
		w = append(w, "no Version field (RFC 5965 requires it)")
	}
	if f.UserAgent == "" {
		w = append(w, "no User-Agent field (RFC 5965 requires it)")
	}
	if f.AuthFailure == "" {
		w = append(w, "no Auth-Failure field (RFC 6591 requires it)")
	}
	if f.ReportedDomain == "" {
		w = append(w, "no Reported-Domain field (RFC 6591 requires it)")
	}
	if !f.SourceIP.IsValid() {
		w = append(w, "no usable Source-IP")
	}
	f.Warnings = w
	return f, nil
}

// address strips the angle brackets of an envelope address; "<>" is "".
func address(v string) string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "<") {
		if i := strings.IndexByte(v, '>'); i > 0 {
			v = v[1:i]
		} else {
			v = strings.TrimPrefix(v, "<")
		}
	}
	return strings.TrimSpace(v)
}

// readHeaderSection reads the header section of a message (up to the
// first blank line), keeping at most max bytes; LF line ends.
func readHeaderSection(r io.Reader, max int) (text string, truncated bool) {
	br := bufio.NewReader(r)
	var b strings.Builder
	atStart := true
	for {
		line, err := br.ReadSlice('\n')
		full := err == nil
		if atStart && full && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			break // the blank line: the body follows
		}
		content := line
		if full {
			content = bytes.TrimRight(line, "\r\n")
		}
		if b.Len()+len(content)+1 > max {
			truncated = true
			break
		}
		b.Write(content)
		if full {
			b.WriteByte('\n')
		}
		atStart = full
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	return sanitize8(b.String()), truncated
}

// sanitize8 is sanitize that keeps line feeds.
func sanitize8(s string) string {
	parts := strings.Split(s, "\n")
	for i, p := range parts {
		parts[i] = sanitize(p)
	}
	return strings.Join(parts, "\n")
}

var wordDecoder = mime.WordDecoder{}

func decodeWords(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return sanitize(d)
	}
	return sanitize(s)
}

// setOriginal fills the reported message's header fields.
func (f *Failure) setOriginal(text string, truncated bool) {
	f.Headers, f.HeadersTruncated = text, truncated
	h, _ := textproto.ReadHeader(bufio.NewReader(strings.NewReader(text + "\n")))
	f.OriginalFrom = decodeWords(h.Get("From"))
	f.OriginalSubject = decodeWords(h.Get("Subject"))
	f.OriginalMessageID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
}

// setReporter fills Reporter from the report message's header.
func (f *Failure) setReporter(h *textproto.Header) {
	if h == nil {
		return
	}
	from := h.Get("From")
	if a, err := mail.ParseAddress(decodeWords(from)); err == nil {
		f.Reporter.From, f.Reporter.Name = a.Address, a.Name
	} else {
		f.Reporter.From = address(sanitize(from))
	}
	f.Reporter.MessageID = strings.Trim(strings.TrimSpace(sanitize(h.Get("Message-Id"))), "<>")
	f.Reporter.Subject = decodeWords(h.Get("Subject"))
	if t, err := mail.ParseDate(h.Get("Date")); err == nil {
		f.Reporter.Date = t.UTC()
	}
	if f.Reporter.UserAgent == "" {
		f.Reporter.UserAgent = sanitize(firstNonEmpty(h.Get("User-Agent"), h.Get("X-Mailer")))
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
