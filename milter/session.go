package milter

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/authres"
	"github.com/dmarcd/dmarcd/report"
)

// Caps on what one message may make the session keep. Postfix's own
// header_size_limit (100 KiB) bounds a header; these bound their number.
const (
	maxFromFields = 16
	maxARFields   = 128
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
	ev   *dmarc.Evaluator

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
	dkimSigs   int
	prefetched bool
	cancel     context.CancelFunc
}

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
	s.cfg, s.ev = s.srv.snapshot()
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
	s.cfg, s.ev = s.srv.snapshot()
	s.msg.mailFrom = strings.Trim(from, "<>")
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
	if len(s.msg.rcpts) < maxRecipients {
		s.msg.rcpts = append(s.msg.rcpts, strings.Trim(rcpt, "<>"))
	}
	return gomilter.RespContinue, nil
}

func (s *session) Data(m gomilter.Modifier) (*gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (s *session) Header(name, value string, m gomilter.Modifier) (*gomilter.Response, error) {
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
		s.msg.dkimSigs++
	}
	return gomilter.RespContinue, nil
}

// keepAR keeps the Authentication-Results fields EndOfMessage needs: those
// claiming our authserv-id (to remove or read them) and trusted ones. The
// rest is dropped now, so a message with thousands of fields costs nothing.
func (s *session) keepAR(h arHeader) {
	t := s.srv.trust(s.cfg, s.mtaName)
	id := authres.AuthServIDOf(h.value)
	if (sameID(id, t.own) || t.trusts(id)) && len(s.msg.ar) < maxARFields {
		s.msg.ar = append(s.msg.ar, h)
	}
}

// prefetch starts the policy lookup as soon as the From field arrives, so
// that the DNS answers are on their way while the rest of the message
// streams in; EndOfMessage then joins the same queries in the cache.
func (s *session) prefetch(value string) {
	domains, err := fromDomains([]string{value})
	if err != nil || len(domains) == 0 || s.msg.prefetched {
		return
	}
	s.msg.prefetched = true
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DNSBudget)
	s.msg.cancel = cancel
	ev := s.ev
	go func() {
		defer cancel()
		_, _ = ev.Discover(ctx, domains[0])
	}()
}

func (s *session) Headers(m gomilter.Modifier) (*gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (s *session) BodyChunk(chunk []byte, m gomilter.Modifier) (*gomilter.Response, error) {
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

// EndOfMessage evaluates the message and acts on it.
func (s *session) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	start := time.Now()
	queueID := m.Get(gomilter.MacroQueueId)
	defer s.resetMessage()
	if s.msg.skip == "" && s.cfg.recipientsIgnored(s.msg.rcpts) {
		s.msg.skip = "every recipient in ignore list"
	}
	if s.msg.skip != "" {
		s.srv.logSkip(queueID, s.client, s.msg.skip)
		return gomilter.RespAccept, nil
	}
	t := s.srv.trust(s.cfg, s.mtaName)
	up := t.readUpstream(s.msg.ar)
	env := envelope{mailFrom: s.msg.mailFrom, helo: s.helo}
	spf, spfNotes := chooseSPF(up.spf, env)
	notes := append(up.notes, spfNotes...)

	out := s.judge(queueID, spf, up, notes)
	if out.skip != "" {
		s.srv.logSkip(queueID, s.client, out.skip)
		return gomilter.RespAccept, nil
	}
	if err := s.modify(m, up.forged, t.own, queueID, out); err != nil {
		return nil, err
	}
	for _, e := range out.evs {
		s.srv.sink.Add(s.row(e, spf, up.dkim))
	}
	s.srv.logVerdict(queueID, s, out, notes, time.Since(start))
	s.srv.stats.count(out)
	return out.response()
}

// outcome is the decision for the whole message.
type outcome struct {
	evs    []evaluated
	final  verdict
	domain string // the From domain the final verdict is about
	skip   string
}

// response turns the final verdict into the milter reply.
func (o outcome) response() (*gomilter.Response, error) {
	switch o.final.action {
	case Reject, Tempfail:
		return gomilter.RejectWithCodeAndReason(o.final.reply.Code, o.final.reply.text(o.domain))
	}
	return gomilter.RespAccept, nil
}

// judge finds the From domains, evaluates each and picks the verdict.
func (s *session) judge(queueID string, spf dmarc.SPF, up upstream, notes []string) outcome {
	pol := &s.cfg.Policy
	domains, err := fromDomains(s.msg.from)
	if s.msg.fromExtra > 0 {
		domains, err = nil, fmt.Errorf("more than %d From fields", maxFromFields)
	}
	switch {
	case len(s.msg.from) == 0 || (err == nil && len(domains) == 0):
		return s.refuse(pol.MissingFrom, "message has no From address", "")
	case err != nil:
		return s.refuse(pol.MissingFrom, fmt.Sprintf("unreadable From: %v", err), "")
	case len(domains) > 1 && !allSame(domains):
		switch pol.MultipleFrom {
		case RejectMultiple:
			return s.refuse(Reject, "several From addresses with different domains", domains[0])
		case First:
			domains = domains[:1]
		}
	}
	domains = unique(domains)
	if s.mode == Strict && pol.MissingDKIM == Tempfail && s.msg.dkimSigs > 0 && !up.anyDKIM {
		v := verdict{action: Tempfail, reply: pol.TempfailReply, why: "DKIM-Signature present but no trusted DKIM result"}
		return outcome{final: v, domain: domains[0]}
	}
	for _, d := range domains {
		if domainListed(s.cfg.Ignore.FromDomains, d) {
			return outcome{skip: "From domain " + d + " in ignore list"}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DNSBudget)
	defer cancel()
	var out outcome
	for _, d := range domains {
		res, _ := s.ev.Evaluate(ctx, dmarc.Input{FromDomain: d, SPF: spf, DKIM: up.dkim})
		v := decide(&res, s.mode, pol, s.cfg.localPolicy(res.FromDomain))
		e := evaluated{domain: d, res: res, v: v}
		out.evs = append(out.evs, e)
		if len(out.evs) == 1 || v.strictness() > out.final.strictness() {
			out.final, out.domain = v, d
		}
	}
	return out
}

// refuse handles a message DMARC cannot be applied to (no From, several
// From domains): reject it when configured and enforcing, else accept it
// with dmarc=none.
func (s *session) refuse(a Action, why, domain string) outcome {
	if a == Reject && s.mode == Strict {
		r := s.cfg.Policy.RejectReply
		r.Text = why
		return outcome{final: verdict{action: Reject, reply: r, why: why}, domain: domain}
	}
	return outcome{skip: why + " (accepted)"}
}

// modify removes forged Authentication-Results fields and inserts ours.
// Removal goes from the highest index down and happens before the insert,
// so that no index shifts under a later change.
func (s *session) modify(m gomilter.Modifier, forged []int, own, queueID string, out outcome) error {
	if s.cfg.Policy.RemoveForged {
		for i := len(forged) - 1; i >= 0; i-- {
			if err := m.ChangeHeader(forged[i], "Authentication-Results", ""); err != nil {
				return fmt.Errorf("remove forged Authentication-Results #%d: %w", forged[i], err)
			}
		}
	}
	if out.final.action == Reject || out.final.action == Tempfail {
		return nil
	}
	if s.cfg.Policy.AddHeader && len(out.evs) > 0 {
		if err := m.InsertHeader(0, "Authentication-Results", arValue(own, out.evs)); err != nil {
			return fmt.Errorf("insert Authentication-Results: %w", err)
		}
	}
	if out.final.action == Quarantine {
		if err := m.Quarantine("quarantined by DMARC policy for " + out.domain); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
	}
	return nil
}

// row builds the aggregate report row for one evaluated domain.
func (s *session) row(e evaluated, spf dmarc.SPF, dkim []dmarc.DKIM) report.Row {
	r := report.Row{
		Time:         time.Now().UTC(),
		Spec:         e.res.Spec.String(),
		SourceIP:     s.client,
		Helo:         s.helo,
		HeaderFrom:   e.res.FromDomain,
		EnvelopeFrom: (envelope{mailFrom: s.msg.mailFrom}).mailFromDomain(),
		Result:       e.res.Outcome.String(),
		Disposition:  e.v.applied.String(),
		DKIMAligned:  e.res.DKIMAligned,
		SPFAligned:   e.res.SPFAligned,
		Overrides:    e.v.overrides,
	}
	if r.HeaderFrom == "" {
		r.HeaderFrom = e.domain
	}
	for _, rc := range s.msg.rcpts {
		if i := strings.LastIndexByte(rc, '@'); i >= 0 {
			r.EnvelopeTo = appendUnique(r.EnvelopeTo, strings.ToLower(rc[i+1:]))
		}
	}
	if rec := e.res.Record; rec != nil {
		r.Published = published(e.res, rec)
	}
	for _, k := range dkim {
		r.DKIM = append(r.DKIM, report.DKIMResult{Domain: k.Domain, Selector: k.Selector, Result: string(k.Result)})
	}
	if spf.Result != "" {
		r.SPF = []report.SPFResult{{Domain: spf.Domain, Scope: spf.Scope.String(), Result: string(spf.Result)}}
	}
	return r
}

func published(res dmarc.Result, rec *dmarc.Record) report.Published {
	p := report.Published{
		Domain:          res.PolicyDomain,
		ADKIM:           rec.ADKIM.String(),
		ASPF:            rec.ASPF.String(),
		P:               rec.P.String(),
		SP:              rec.SP.String(),
		NP:              rec.NP.String(),
		Pct:             rec.Pct,
		FO:              rec.FO.String(),
		Testing:         rec.Testing,
		DiscoveryMethod: "treewalk",
	}
	if res.Spec == dmarc.RFC7489 {
		p.DiscoveryMethod = "psl"
	}
	for _, u := range rec.RUA {
		p.RUA = append(p.RUA, u.Raw)
	}
	return p
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
