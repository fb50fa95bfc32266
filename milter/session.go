package milter

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"strings"

	gomilter "github.com/d--j/go-milter"

	"github.com/dmarcd/dmarcd/internal/authres"
)

// Caps on what one message may make the session keep. Postfix's own
// header_size_limit (100 KiB) bounds a header; these bound their number.
const (
	maxFromFields = 16
	maxARFields   = 128
	maxDKIMFields = 16
	maxRecipients = 1000
)

// session is the state of one MTA connection. Connection facts (client
// address, HELO) live here and survive from one message to the next:
// Postfix reuses one milter connection for every message of an SMTP
// session, with an abort between them.
type session struct {
	srv  *Server
	mode Mode
	cfg  *Config
	deps Deps

	client     netip.Addr
	clientName string
	helo       string
	mtaName    string // the {j} macro

	msg message
}

// message is the state of one transaction, reset at MAIL FROM and abort.
type message struct {
	skip       string // why the message is let through unevaluated
	mailFrom   string
	rcpts      []string
	from       []string
	fromExtra  int        // From fields beyond maxFromFields
	arCount    int        // Authentication-Results fields seen, for their indexes
	ar         []arHeader // the fields that claim our id or a trusted one
	dkimSigs   []string   // DKIM-Signature values, for d= and s=
	dkimCount  int
	counts     headerCounts
	prefetched bool
	cancel     context.CancelFunc
	// first is the reading of the first From field, made when it arrived
	// (prefetch); EndOfMessage reuses it when that field is the only one.
	first struct {
		done    bool
		domains []string
		err     error
	}

	// whole is set when DKIM or ARC is verified here, when failure
	// reports attach whole messages, or when the message is for a report
	// mailbox: the header fields as received and the body are kept, up
	// to cfg.MaxMessageSize.
	whole bool
	// bodyOK: the connection was negotiated with bodies.
	bodyOK bool
	// forReports is set when a recipient is a report mailbox.
	forReports bool
	// keepHeaders is set when the header fields are kept: for whole
	// messages, or for failure reports, which quote them. Beyond
	// maxReportHeaders bytes, fields kept for reports alone are dropped
	// (headersCut).
	keepHeaders bool
	headerBytes int64
	headersCut  bool
	leadSP      bool // header values arrive with their leading space
	fields      []field
	body        bytes.Buffer
	size        int64
	tooLarge    bool
}

// field is one header field as the MTA passed it.
type field struct{ name, value string }

func (s *session) resetMessage() {
	if s.msg.cancel != nil {
		s.msg.cancel()
	}
	s.msg = message{}
}

// NewConnection starts a connection; the MTA may reuse one milter
// connection for several SMTP connections (QUIT_NC), so all state resets.
func (s *session) NewConnection(m gomilter.Modifier) error {
	s.resetMessage()
	s.client, s.clientName, s.helo, s.mtaName = netip.Addr{}, "", "", ""
	s.cfg, s.deps = s.srv.snapshot()
	return nil
}

func (s *session) Connect(host, family string, port uint16, addr string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.clientName = host
	s.mtaName = m.Get(gomilter.MacroMTAFQDN)
	if a, err := netip.ParseAddr(addr); err == nil {
		s.client = a.Unmap()
	} else if a, err := netip.ParseAddr(m.Get(gomilter.MacroClientAddr)); err == nil {
		s.client = a.Unmap()
	}
	if s.mode == Disable {
		return gomilter.RespAccept, nil
	}
	if s.client.IsValid() && s.cfg.hostIgnored(s.client) {
		s.srv.logSkip("", s.client, "client address in ignore list")
		return gomilter.RespAccept, nil
	}
	return gomilter.RespContinue, nil
}

func (s *session) Helo(name string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.helo = name
	return gomilter.RespContinue, nil
}

func (s *session) MailFrom(from, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.resetMessage()
	// A reload takes effect at the next message, not in the middle of one.
	s.cfg, s.deps = s.srv.snapshot()
	s.msg.mailFrom = strings.Trim(from, "<>")
	// Whole messages come only on connections negotiated for them.
	s.msg.bodyOK = s.cfg.needsMessage() && m.Protocol()&gomilter.OptNoBody == 0
	s.msg.whole = s.msg.bodyOK && s.cfg.wholeForAll()
	s.msg.keepHeaders = s.msg.whole || (s.cfg.FailureReports && s.deps.Failures != nil)
	s.msg.leadSP = m.Protocol()&gomilter.OptHeaderLeadingSpace != 0
	if user := m.Get(gomilter.MacroAuthAuthen); user != "" && s.cfg.Ignore.Authenticated {
		s.msg.skip = "SMTP-authenticated client " + user
	} else if d := (envelope{mailFrom: s.msg.mailFrom}).mailFromDomain(); d != "" && domainListed(s.cfg.Ignore.MailFromDomains, d) {
		s.msg.skip = "MAIL FROM domain " + d + " in ignore list"
	}
	if s.msg.skip != "" {
		s.srv.logSkip(m.Get(gomilter.MacroQueueId), s.client, s.msg.skip)
		return gomilter.RespAccept, nil
	}
	return gomilter.RespContinue, nil
}

func (s *session) RcptTo(rcpt, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	addr := strings.Trim(rcpt, "<>")
	if len(s.msg.rcpts) < maxRecipients {
		s.msg.rcpts = append(s.msg.rcpts, addr)
	}
	if s.msg.bodyOK && !s.msg.forReports && s.cfg.reportMailbox(addr) {
		// Recipients come before the header: the message is kept whole
		// from its first field.
		s.msg.forReports, s.msg.whole, s.msg.keepHeaders = true, true, true
	}
	return gomilter.RespContinue, nil
}

func (s *session) Data(m gomilter.Modifier) (*gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (s *session) Header(name, value string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.msg.counts.add(name)
	s.keepField(name, value)
	switch {
	case strings.EqualFold(name, "From"):
		if len(s.msg.from) == maxFromFields {
			s.msg.fromExtra++
			break
		}
		s.msg.from = append(s.msg.from, value)
		if len(s.msg.from) == 1 {
			s.prefetch(value)
		}
	case strings.EqualFold(name, "Authentication-Results"):
		s.msg.arCount++
		s.keepAR(arHeader{index: s.msg.arCount, value: value})
	case strings.EqualFold(name, "DKIM-Signature"):
		s.msg.dkimCount++
		if len(s.msg.dkimSigs) < maxDKIMFields {
			s.msg.dkimSigs = append(s.msg.dkimSigs, value)
		}
	}
	return gomilter.RespContinue, nil
}

// maxReportHeaders bounds the header section kept for a failure report
// alone (when no verification needs it, or the message outgrew
// MaxMessageSize).
const maxReportHeaders = 256 << 10

// keepField keeps a header field for verification, within the size cap,
// and for failure reports, within maxReportHeaders.
func (s *session) keepField(name, value string) {
	if !s.msg.keepHeaders {
		return
	}
	n := int64(len(name) + len(value) + 3)
	s.msg.headerBytes += n
	if s.msg.whole && !s.msg.tooLarge && s.grow(n) {
		s.msg.fields = append(s.msg.fields, field{name, value})
		return
	}
	if !s.cfg.FailureReports {
		return
	}
	if s.msg.headerBytes > maxReportHeaders {
		s.msg.headersCut = true
		return
	}
	s.msg.fields = append(s.msg.fields, field{name, value})
}

// grow accounts for n more bytes of message and reports whether they fit;
// past the cap the message is dropped and not verified here.
func (s *session) grow(n int64) bool {
	s.msg.size += n
	if s.cfg.MaxMessageSize > 0 && s.msg.size > s.cfg.MaxMessageSize {
		s.msg.tooLarge = true
		if !s.cfg.FailureReports || s.msg.headerBytes > maxReportHeaders {
			// A failure report still quotes the header fields, unless
			// they are over its cap too.
			s.msg.fields = nil
			s.msg.headersCut = s.cfg.FailureReports
		}
		s.msg.body = bytes.Buffer{}
		return false
	}
	return true
}

// keepAR keeps the Authentication-Results fields EndOfMessage needs: those
// claiming our authserv-id (to remove or read them) and trusted ones. The
// rest is dropped now, so a message with thousands of fields costs nothing.
func (s *session) keepAR(h arHeader) {
	t := s.srv.trust(s.cfg, s.mtaName)
	id := authres.AuthServIDOf(h.value)
	if (t.claimsOwn(id) || t.trusts(id)) && len(s.msg.ar) < maxARFields {
		s.msg.ar = append(s.msg.ar, h)
	}
}

// prefetch starts the policy lookup as soon as the From field arrives, so
// that the DNS answers are on their way while the rest of the message
// streams in; EndOfMessage then joins the same queries in the cache.
func (s *session) prefetch(value string) {
	domains, err := fromDomains([]string{value})
	s.msg.first.done, s.msg.first.domains, s.msg.first.err = true, domains, err
	if err != nil || len(domains) == 0 || s.msg.prefetched {
		return
	}
	s.msg.prefetched = true
	ev := s.deps.Evaluator
	// On a busy MX the policy is nearly always cached already: then there
	// is nothing to fetch, and a goroutine per message to find that out
	// would be a good part of its cost.
	if c, ok := ev.Resolver.(txtCache); ok && c.CachedTXT("_dmarc."+domains[0]) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DNSBudget)
	s.msg.cancel = cancel
	go func() {
		defer cancel()
		_, _ = ev.Discover(ctx, domains[0])
	}()
}

// txtCache is implemented by resolvers that can tell whether a TXT lookup
// would be answered from their cache (internal/dnscache).
type txtCache interface {
	CachedTXT(name string) bool
}

// authorDomains is fromDomains(s.msg.from), without reading the From field
// a second time when it is the only one.
func (s *session) authorDomains() ([]string, error) {
	if len(s.msg.from) == 1 && s.msg.first.done {
		return s.msg.first.domains, s.msg.first.err
	}
	return fromDomains(s.msg.from)
}

func (s *session) Headers(m gomilter.Modifier) (*gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (s *session) BodyChunk(chunk []byte, m gomilter.Modifier) (*gomilter.Response, error) {
	if s.msg.whole && !s.msg.tooLarge && !s.msg.forReports && s.cfg.bodyForReportsOnly() &&
		int64(s.msg.body.Len()+len(chunk)) > s.cfg.FailureReportsMaxBody {
		// Only a failure report wanted the body, and it is over the
		// report's cap: stop keeping it now rather than at
		// MaxMessageSize. The header fields stay for the report.
		s.msg.tooLarge = true
		s.msg.body = bytes.Buffer{}
	}
	if s.msg.whole && !s.msg.tooLarge && s.grow(int64(len(chunk))) {
		s.msg.body.Write(chunk)
		return gomilter.RespContinue, nil
	}
	if m.Protocol()&gomilter.OptSkip != 0 {
		return gomilter.RespSkip, nil
	}
	return gomilter.RespContinue, nil
}

func (s *session) Abort(m gomilter.Modifier) error {
	s.resetMessage()
	return nil
}

func (s *session) Unknown(cmd string, m gomilter.Modifier) (*gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (s *session) Cleanup(m gomilter.Modifier) {
	s.resetMessage()
}

func allSame(ds []string) bool {
	for _, d := range ds[1:] {
		if d != ds[0] {
			return false
		}
	}
	return true
}

func unique(ds []string) []string {
	var out []string
	for _, d := range ds {
		out = appendUnique(out, d)
	}
	return out
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// hostname is os.Hostname, for the authserv-id when nothing else names us.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}
