package postfixtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// HeaderField is one header field of a stored message.
type HeaderField struct {
	// Name is the field name as written.
	Name string
	// Value is the field body unfolded (line breaks before continuation
	// lines removed), without the whitespace after the colon.
	Value string
	// Raw is the field as stored, folding included, lines ending in "\n",
	// without the last line ending.
	Raw string
}

// Header is a message header, its fields in stored order.
type Header []HeaderField

// Get returns the value of the first field named name (case-insensitive),
// or "".
func (h Header) Get(name string) string {
	if i := h.Index(name); i >= 0 {
		return h[i].Value
	}
	return ""
}

// Values returns the values of every field named name, in order.
func (h Header) Values(name string) []string {
	var vs []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// Index returns the position of the first field named name, or -1.
func (h Header) Index(name string) int {
	return slices.IndexFunc(h, func(f HeaderField) bool { return strings.EqualFold(f.Name, name) })
}

// Names returns the field names in order, to show or compare the shape of
// a header.
func (h Header) Names() []string {
	names := make([]string, len(h))
	for i, f := range h {
		names[i] = f.Name
	}
	return names
}

// Mail is a stored message: header and body.
type Mail struct {
	Header Header
	// Body is everything after the empty line that ends the header, line
	// endings as stored ("\n" in a maildir and from postcat).
	Body []byte
}

// ParseMail splits a stored message into header fields and body. Line
// endings may be "\n" or "\r\n".
func ParseMail(raw []byte) (Mail, error) {
	var m Mail
	rest := raw
	for len(rest) > 0 {
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		text := strings.TrimSuffix(string(line), "\r")
		if text == "" { // end of header
			m.Body = next
			return m, nil
		}
		if text[0] == ' ' || text[0] == '\t' {
			if len(m.Header) == 0 {
				return m, fmt.Errorf("message begins with a continuation line %q", text)
			}
			f := &m.Header[len(m.Header)-1]
			f.Raw += "\n" + text
			f.Value += text
		} else {
			name, value, ok := strings.Cut(text, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return m, fmt.Errorf("not a header field: %q", text)
			}
			m.Header = append(m.Header, HeaderField{
				Name:  name,
				Value: strings.TrimLeft(value, " \t"),
				Raw:   text,
			})
		}
		rest = next
	}
	return m, nil // header only
}

// DeliveredMessage is a message virtual(8) delivered into the instance's
// maildir, for one recipient.
type DeliveredMessage struct {
	// Mail is the message as Postfix queued it: the milter's changes
	// applied, Postfix's own Received: in it (below any header the milter
	// inserted at the top), without the three fields virtual(8) prepends
	// at delivery, which are in the fields below.
	Mail

	// ReturnPath is the envelope sender, from Return-Path:, without angle
	// brackets: "" for the null sender.
	ReturnPath string
	// OriginalTo is the recipient as the client gave it (X-Original-To:).
	OriginalTo string
	// DeliveredTo is the final recipient (Delivered-To:).
	DeliveredTo string
	// QueueID is the id Postfix gave the message, from the Received:
	// field it added ("by HOSTNAME (Postfix) with ESMTP id QUEUEID").
	QueueID string

	// Path is the file in the maildir.
	Path string
	// Raw is the whole file.
	Raw []byte
}

// Delivered waits until the maildir holds at least one message for rcpt
// (compared with Delivered-To:, case-insensitively; "" means any
// recipient) or timeout passes, and returns all of them, oldest first;
// none if none came. To assert that nothing was delivered, wait for the
// queue to drain first (WaitDrained) and use a zero timeout.
func (p *Postfix) Delivered(t testing.TB, rcpt string, timeout time.Duration) []DeliveredMessage {
	t.Helper()
	return p.waitDelivered(t, timeout, func(m DeliveredMessage) bool {
		return rcpt == "" || strings.EqualFold(m.DeliveredTo, rcpt)
	})
}

// DeliveredQueueID waits until the maildir holds the message Postfix
// queued as queueID (SendResult.QueueID), and returns its copies, one per
// recipient delivered so far; none if it did not come within timeout.
func (p *Postfix) DeliveredQueueID(t testing.TB, queueID string, timeout time.Duration) []DeliveredMessage {
	t.Helper()
	if queueID == "" {
		t.Fatalf("postfixtest: DeliveredQueueID: empty queue id")
	}
	return p.waitDelivered(t, timeout, func(m DeliveredMessage) bool { return m.QueueID == queueID })
}

// Mailbox returns every message in the maildir now, oldest first.
func (p *Postfix) Mailbox(t testing.TB) []DeliveredMessage {
	t.Helper()
	return p.waitDelivered(t, 0, func(DeliveredMessage) bool { return true })
}

func (p *Postfix) waitDelivered(t testing.TB, timeout time.Duration, match func(DeliveredMessage) bool) []DeliveredMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		all, err := p.readMaildir()
		if err != nil {
			t.Fatalf("postfixtest: %v", err)
		}
		var got []DeliveredMessage
		for _, m := range all {
			if match(m) {
				got = append(got, m)
			}
		}
		if len(got) > 0 || !time.Now().Before(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readMaildir reads every message in new/ and cur/ of the maildir. A
// message appears there by rename from tmp/, so it is always whole.
func (p *Postfix) readMaildir() ([]DeliveredMessage, error) {
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(p.dir, mailDir, "Maildir", sub)
		entries, err := os.ReadDir(dir)
		if os.IsNotExist(err) {
			continue // nothing delivered yet
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue
			}
			files = append(files, file{filepath.Join(dir, e.Name()), info.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b file) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
	msgs := make([]DeliveredMessage, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f.path)
		if err != nil {
			return nil, err
		}
		m, err := p.parseDelivered(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f.path, err)
		}
		m.Path = f.path
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// parseDelivered parses a maildir file: the fields virtual(8) prepends
// (Return-Path:, X-Original-To: since enable_original_recipient is on,
// Delivered-To:), then the message as it was queued.
func (p *Postfix) parseDelivered(raw []byte) (DeliveredMessage, error) {
	m := DeliveredMessage{Raw: raw}
	mail, err := ParseMail(raw)
	if err != nil {
		return m, err
	}
	h := mail.Header
	take := func(name string, into *string) {
		if len(h) > 0 && strings.EqualFold(h[0].Name, name) {
			*into = h[0].Value
			h = h[1:]
		}
	}
	take("Return-Path", &m.ReturnPath)
	take("X-Original-To", &m.OriginalTo)
	take("Delivered-To", &m.DeliveredTo)
	m.ReturnPath = strings.TrimSuffix(strings.TrimPrefix(m.ReturnPath, "<"), ">")
	mail.Header = h
	m.Mail = mail
	m.QueueID = p.queueIDOf(h)
	return m, nil
}

// queueIDOf finds the queue id in the Received: field this instance added.
func (p *Postfix) queueIDOf(h Header) string {
	re := p.receivedRE()
	for _, v := range h.Values("Received") {
		if m := re.FindStringSubmatch(v); m != nil {
			return m[1]
		}
	}
	return ""
}

func (p *Postfix) receivedRE() *regexp.Regexp {
	return regexp.MustCompile(`\bby ` + regexp.QuoteMeta(p.hostname) + ` \(Postfix\) with \S+ id ([0-9A-Za-z]+)`)
}
