package milter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"net/textproto"
	"strings"

	gomilter "github.com/d--j/go-milter"
)

// Envelope is the SMTP side of a message evaluated offline.
type Envelope struct {
	Client     netip.Addr
	Helo       string
	MailFrom   string // without brackets; "" is the null sender
	Recipients []string
	MTAName    string // the {j} macro
	QueueID    string
}

// Verdict is what the milter would tell the MTA about a message.
type Verdict struct {
	// Action is "accept", "quarantine", "reject" or "tempfail"; Reply is
	// the SMTP reply for the last two.
	Action string
	Reply  string
	// Changes lists the header changes in the order they would be sent:
	// "insert 0 Authentication-Results: ...", "delete Authentication-Results #2".
	Changes []string
	// Skipped says why the message would not be evaluated at all.
	Skipped string
}

// Test runs a whole message, header fields and body as read from a file,
// through the same session an MTA connection gets, with mode strict, and
// returns what the milter would do (OpenDMARC's -t). Report rows go to the
// server's sink and the verdict to its log as usual.
func (s *Server) Test(env Envelope, message io.Reader) (Verdict, error) {
	fields, body, err := readMessage(message)
	if err != nil {
		return Verdict{}, err
	}
	sess := &session{srv: s, mode: Strict}
	m := &recorder{macros: map[string]string{
		gomilter.MacroMTAFQDN: env.MTAName, gomilter.MacroQueueId: env.QueueID,
	}}
	if err := sess.NewConnection(m); err != nil {
		return Verdict{}, err
	}
	steps := []func() (*gomilter.Response, error){
		func() (*gomilter.Response, error) {
			return sess.Connect("", "tcp", 25, addrString(env.Client), m)
		},
		func() (*gomilter.Response, error) { return sess.Helo(env.Helo, m) },
		func() (*gomilter.Response, error) { return sess.MailFrom(env.MailFrom, "", m) },
	}
	for _, r := range env.Recipients {
		steps = append(steps, func() (*gomilter.Response, error) { return sess.RcptTo(r, "", m) })
	}
	for _, f := range fields {
		steps = append(steps, func() (*gomilter.Response, error) { return sess.Header(f.name, f.value, m) })
	}
	steps = append(steps,
		func() (*gomilter.Response, error) { return sess.BodyChunk(body, m) },
		func() (*gomilter.Response, error) { return sess.EndOfMessage(m) },
	)
	for i, step := range steps {
		resp, err := step()
		if err != nil {
			return Verdict{}, err
		}
		last := i == len(steps)-1
		if resp == nil || (resp.Continue() && !last) {
			continue
		}
		return m.verdict(resp, last), nil
	}
	return Verdict{}, fmt.Errorf("no verdict")
}

// readMessage splits a message into header fields (values as an MTA
// passes them: without the space after the colon, folds kept) and body.
func readMessage(r io.Reader) ([]field, []byte, error) {
	br := bufio.NewReader(r)
	tr := textproto.NewReader(br)
	var fields []field
	for {
		line, err := tr.ReadContinuedLineBytes()
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("reading the header: %w", err)
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, nil, fmt.Errorf("header line without a colon: %q", clipLine(line))
		}
		fields = append(fields, field{string(name), strings.TrimPrefix(string(value), " ")})
		if err == io.EOF {
			break
		}
	}
	body, err := io.ReadAll(br)
	if err != nil {
		return nil, nil, err
	}
	body = bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	return fields, body, nil
}

func clipLine(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// recorder is a Modifier that writes down what the milter asks for.
type recorder struct {
	macros  map[string]string
	changes []string
	held    string
}

func (r *recorder) verdict(resp *gomilter.Response, eom bool) Verdict {
	v := Verdict{Action: "accept", Changes: r.changes}
	msg := resp.Response()
	switch {
	case r.held != "":
		v.Action = "quarantine"
	case msg.Code == 'y' && len(msg.Data) > 0: // SMFIR_REPLYCODE
		v.Reply = strings.TrimRight(string(msg.Data), "\x00")
		v.Action = "reject"
		if strings.HasPrefix(v.Reply, "4") {
			v.Action = "tempfail"
		}
	}
	if !eom && v.Action == "accept" {
		v.Skipped = "accepted before the end of the message (an ignore rule matched; see the log)"
	}
	return v
}

func (r *recorder) Get(name string) string { return r.macros[name] }
func (r *recorder) GetEx(name string) (string, bool) {
	v, ok := r.macros[name]
	return v, ok
}
func (r *recorder) Version() uint32 { return gomilter.MaxServerProtocolVersion }
func (r *recorder) Protocol() gomilter.OptProtocol {
	return protocol&^gomilter.OptNoBody | gomilter.OptSkip
}
func (r *recorder) Actions() gomilter.OptAction    { return actions | gomilter.OptAddRcpt }
func (r *recorder) MaxDataSize() gomilter.DataSize { return gomilter.DataSize64K }
func (r *recorder) MilterId() uint64               { return 0 }
func (r *recorder) AddRecipient(rcpt, _ string) error {
	r.changes = append(r.changes, "add recipient "+rcpt)
	return nil
}
func (r *recorder) DeleteRecipient(rcpt string) error {
	r.changes = append(r.changes, "delete recipient "+rcpt)
	return nil
}
func (r *recorder) ReplaceBodyRawChunk([]byte) error { return nil }
func (r *recorder) ReplaceBody(io.Reader) error      { return nil }
func (r *recorder) Quarantine(reason string) error {
	r.held = reason
	r.changes = append(r.changes, "quarantine: "+reason)
	return nil
}
func (r *recorder) AddHeader(name, value string) error {
	r.changes = append(r.changes, "add "+name+": "+value)
	return nil
}
func (r *recorder) ChangeHeader(index int, name, value string) error {
	if value == "" {
		r.changes = append(r.changes, fmt.Sprintf("delete %s #%d", name, index))
	} else {
		r.changes = append(r.changes, fmt.Sprintf("change %s #%d: %s", name, index, value))
	}
	return nil
}
func (r *recorder) InsertHeader(index int, name, value string) error {
	r.changes = append(r.changes, fmt.Sprintf("insert %d %s: %s", index, name, value))
	return nil
}
func (r *recorder) ChangeFrom(string, string) error { return nil }
func (r *recorder) Progress() error                 { return nil }
