// Package arctest builds ARC-sealed messages (RFC 8617) for tests: a
// Message carried from hop to hop, and Sealers that add an ARC set to it
// as real forwarders do, with keys whose DNS records the test serves (with
// internal/dnstest, for instance).
//
//	m := arctest.NewMessage()
//	gw := arctest.NewSealer(t, "gw.example.net", "arc1", false)
//	gw.Seal(t, m, "none", "spf=pass smtp.mailfrom=example.com")
//	list := arctest.NewSealer(t, "lists.example.org", "s1", true)
//	m.Set("Subject", "[team] Quarterly numbers") // what the list changes
//	list.Seal(t, m, "pass", "arc=pass", "dkim=fail header.d=example.com")
//	s := dnstest.Start(t, gw.RR(), list.RR())
//	// give m.Headers() and m.Body, or m.Bytes(), to the code under test
//
// A Sealer seals the way common implementations do: the ARC set goes on
// top of the header, ARC-Seal first, then ARC-Message-Signature, then
// ARC-Authentication-Results; long tags are folded, and b= comes last,
// folded in 72-column lines. Its canonicalization, header field selection
// and folding are its own, written apart from the verifier in
// internal/arc, so that a mistake shared by both cannot hide; the package
// does not import internal/arc, whose own tests can therefore use it.
package arctest

import "strings"

// Message is a message in transit: its header fields as written, top
// first, and its body.
type Message struct {
	// Body is what follows the blank line that ends the header, with CRLF
	// line endings. Change it to model a hop that rewrites the body.
	Body string

	// fields are whole fields ("Name: value", folds as CRLF followed by
	// whitespace), without the CRLF that ends them.
	fields []string
}

// NewMessage returns a plain message as its author's mail program wrote
// it: From alice@example.com, To team@lists.example.net, a Subject folded
// over two lines, Date, Message-ID, MIME-Version and Content-Type, and a
// body whose whitespace the two canonicalizations treat differently.
func NewMessage() *Message {
	return &Message{
		fields: []string{
			"From: Alice Example <alice@example.com>",
			"To: Team List <team@lists.example.net>",
			"Subject: Quarterly numbers,\r\n\tfolded onto a second line",
			"Date: Tue, 10 Jun 2025 09:14:00 +0000",
			"Message-ID: <20250610091400.4711@example.com>",
			"MIME-Version: 1.0",
			"Content-Type: text/plain; charset=utf-8",
		},
		Body: "Hello team,\r\n\r\nthe numbers  are\tin the  attachment.   \r\n\r\n-- \r\nAlice\r\n\r\n\r\n",
	}
}

// Clone returns a copy of m that can be changed apart from it.
func (m *Message) Clone() *Message {
	return &Message{fields: append([]string(nil), m.fields...), Body: m.Body}
}

// Headers returns the header fields top first as name and value pairs:
// the name as written before the colon, and the value as written after
// it, so with the space the helpers write after the colon, and with its
// folds (CRLF followed by whitespace). That is what an MTA gives a milter
// that negotiated SMFIP_HDR_LEADSPC; for one that did not, drop one
// leading space.
func (m *Message) Headers() [][2]string {
	out := make([][2]string, len(m.fields))
	for i, f := range m.fields {
		name, value, _ := strings.Cut(f, ":")
		out[i] = [2]string{name, value}
	}
	return out
}

// SetHeaders replaces the whole header with h, pairs as Headers returns
// them: each field is written as name, colon, value. It lets a test
// reorder, remove or tamper with fields.
func (m *Message) SetHeaders(h [][2]string) {
	m.fields = make([]string, len(h))
	for i, p := range h {
		m.fields[i] = p[0] + ":" + p[1]
	}
}

// Prepend adds the field "name: value" on top of the header, as a hop
// adds its trace fields. The value may be folded with CRLF followed by a
// space or a tab.
func (m *Message) Prepend(name, value string) {
	m.fields = append([]string{name + ": " + value}, m.fields...)
}

// Append adds the field "name: value" at the bottom of the header.
func (m *Message) Append(name, value string) {
	m.fields = append(m.fields, name+": "+value)
}

// Set replaces the topmost field named name (in any case) with
// "name: value", keeping the name as it was written and the field's
// place; without such a field, it appends one.
func (m *Message) Set(name, value string) {
	for i, f := range m.fields {
		if n, _, _ := strings.Cut(f, ":"); strings.EqualFold(strings.TrimRight(n, " \t"), name) {
			m.fields[i] = n + ": " + value
			return
		}
	}
	m.Append(name, value)
}

// Bytes returns the whole message as RFC 5322 writes it: every field
// ended by CRLF, a blank line, the body.
func (m *Message) Bytes() []byte {
	var b strings.Builder
	for _, f := range m.fields {
		b.WriteString(f)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(m.Body)
	return []byte(b.String())
}
