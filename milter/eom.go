package milter

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/failure"
)

// outcome is the decision for the whole message.
type outcome struct {
	evs    []evaluated
	final  verdict
	domain string // the From domain the final verdict is about
	skip   string
}

// inputs are the authentication results a message is judged on.
type inputs struct {
	spf  dmarc.SPF
	dkim []dmarc.DKIM
	// clauses are our own check results for our header (spf=, dkim=,
	// arc=), written before the dmarc= clause.
	clauses []string
	notes   []string
	// arc is the ARC result for the rows: upstream's, else our own.
	arc string
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
		s.passReports(queueID)
		return gomilter.RespAccept, nil
	}
	t := s.srv.trust(s.cfg, s.mtaName)
	up := t.readUpstream(s.msg.ar)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DNSBudget)
	defer cancel()

	var out outcome
	in := s.gather(ctx, up)
	if why := s.msg.counts.violation(); s.cfg.RequiredHeaders && why != "" {
		out = s.refuse(Reject, "RFC 5322 requirement error: "+why, "")
	} else {
		out = s.judge(ctx, in, up)
	}
	if out.skip != "" {
		s.srv.logSkip(queueID, s.client, out.skip)
		s.passReports(queueID)
		return gomilter.RespAccept, nil
	}
	s.rescueByARC(ctx, &out, &in)
	if err := s.modify(m, up.forged, t.own, queueID, out, in); err != nil {
		return nil, err
	}
	for _, e := range out.evs {
		r := s.row(e, in, queueID)
		r.Primary = e.domain == out.domain
		s.srv.sink.Add(r)
	}
	s.reportFailures(out, t.own, queueID)
	s.srv.logVerdict(queueID, s, out, append(up.notes, in.notes...), time.Since(start))
	s.srv.stats.count(out)
	if a := out.final.action; a == Accept || a == Quarantine {
		s.passReports(queueID)
	}
	return out.response()
}

// passReports hands a message for a report mailbox, once accepted, to the
// report ingester. One too large to keep is left to be delivered alone:
// "dmarcd import" reads it from the mailbox.
func (s *session) passReports(queueID string) {
	if !s.msg.forReports || s.deps.Reports == nil {
		return
	}
	if s.msg.tooLarge {
		s.srv.log.Warn("report mailbox message too large to read as it passes; import it from the mailbox",
			"queue_id", queueID, "max_message_size", s.cfg.MaxMessageSize)
		return
	}
	raw, _ := io.ReadAll(s.rawMessage())
	s.deps.Reports.Ingest(queueID, raw)
}

// response turns the final verdict into the milter reply.
func (o outcome) response() (*gomilter.Response, error) {
	switch o.final.action {
	case Reject, Tempfail:
		return gomilter.RejectWithCodeAndReason(o.final.reply.Code, o.final.reply.text(o.domain))
	}
	return gomilter.RespAccept, nil
}

// gather settles the SPF and DKIM results: upstream ones from trusted
// headers, or our own checks where configured.
func (s *session) gather(ctx context.Context, up upstream) inputs {
	in := inputs{arc: up.arc}
	env := envelope{mailFrom: s.msg.mailFrom, helo: s.helo}
	if s.cfg.SPFUpstream {
		in.spf, in.notes = chooseSPF(up.spf, env)
	}
	if in.spf.Result == "" && s.cfg.SPFSelfCheck && s.deps.SPF != nil && s.client.IsValid() {
		spf, why := s.deps.SPF.Check(ctx, s.client, s.helo, s.msg.mailFrom)
		in.spf = spf
		in.clauses = append(in.clauses, spfClause(spf))
		if why != "" {
			in.notes = append(in.notes, "SPF checked here: "+why)
		}
	}
	in.dkim = up.dkim
	switch {
	case !s.cfg.DKIMSelfVerify:
	case s.msg.tooLarge:
		in.notes = append(in.notes, fmt.Sprintf("DKIM not verified here: message over %d bytes", s.cfg.MaxMessageSize))
	case !s.msg.whole:
		in.notes = append(in.notes, "DKIM not verified here: this MTA connection sends no bodies")
	default:
		in.dkim = s.verifyDKIM(ctx)
		for _, k := range in.dkim {
			in.clauses = append(in.clauses, dkimClause(k))
		}
	}
	return in
}

// selfVerified reports whether DKIM was verified here for this message.
func (s *session) selfVerified() bool {
	return s.cfg.DKIMSelfVerify && s.msg.whole && !s.msg.tooLarge
}

// judge finds the From domains, evaluates each and picks the verdict.
func (s *session) judge(ctx context.Context, in inputs, up upstream) outcome {
	pol := &s.cfg.Policy
	domains, err := s.authorDomains()
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
	if s.mode == Strict && pol.MissingDKIM == Tempfail && s.msg.dkimCount > 0 && !up.anyDKIM && !s.selfVerified() {
		v := verdict{action: Tempfail, reply: pol.TempfailReply, why: "DKIM-Signature present but no trusted DKIM result"}
		return outcome{final: v, domain: domains[0]}
	}
	for _, d := range domains {
		if domainListed(s.cfg.Ignore.FromDomains, d) {
			return outcome{skip: "From domain " + d + " in ignore list"}
		}
	}
	var out outcome
	for _, d := range domains {
		res, _ := s.deps.Evaluator.Evaluate(ctx, dmarc.Input{FromDomain: d, SPF: in.spf, DKIM: in.dkim})
		v := decide(&res, s.mode, pol, s.cfg.localPolicy(res.FromDomain))
		out.add(evaluated{domain: d, res: res, v: v})
	}
	return out
}

// add records one evaluated domain and keeps the strictest verdict.
func (o *outcome) add(e evaluated) {
	o.evs = append(o.evs, e)
	if len(o.evs) == 1 || e.v.strictness() > o.final.strictness() {
		o.final, o.domain = e.v, e.domain
	}
}

// refuse handles a message DMARC cannot be applied to (no From, several
// From domains, broken header counts): reject it when configured and
// enforcing, else accept it with no DMARC result.
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
func (s *session) modify(m gomilter.Modifier, forged []int, own, queueID string, out outcome, in inputs) error {
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
	if s.cfg.AuthServIDWithJobID && queueID != "" {
		own += "/" + queueID
	}
	if s.cfg.Policy.AddHeader && len(out.evs) > 0 {
		if err := m.InsertHeader(0, "Authentication-Results", arValue(own, in.clauses, out.evs)); err != nil {
			return fmt.Errorf("insert Authentication-Results: %w", err)
		}
	}
	if s.cfg.Software != "" {
		if err := m.AddHeader("DMARC-Filter", s.cfg.Software+" "+s.srv.host); err != nil {
			return fmt.Errorf("add DMARC-Filter: %w", err)
		}
	}
	if s.cfg.CopyFailuresTo != "" && out.enforcedFailure() {
		if err := m.AddRecipient("<"+s.cfg.CopyFailuresTo+">", ""); err != nil {
			return fmt.Errorf("copy to %s: %w", s.cfg.CopyFailuresTo, err)
		}
	}
	if out.final.action == Quarantine {
		if err := m.Quarantine("quarantined by DMARC policy for " + out.domain); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
	}
	return nil
}

// enforcedFailure reports whether a From domain failed under a policy of
// quarantine or reject, which is when OpenDMARC's CopyFailuresTo copies.
func (o outcome) enforcedFailure() bool {
	for _, e := range o.evs {
		if e.res.Outcome == dmarc.OutcomeFail && (e.res.Policy == dmarc.PolicyQuarantine || e.res.Policy == dmarc.PolicyReject) {
			return true
		}
	}
	return false
}

// row builds the aggregate report row for one evaluated domain.
func (s *session) row(e evaluated, in inputs, queueID string) report.Row {
	r := report.Row{
		Time:         time.Now().UTC(),
		QueueID:      queueID,
		Spec:         e.res.Spec.String(),
		SourceIP:     s.client,
		Helo:         s.helo,
		HeaderFrom:   e.res.FromDomain,
		EnvelopeFrom: (envelope{mailFrom: s.msg.mailFrom}).mailFromDomain(),
		Result:       e.res.Outcome.String(),
		Policy:       policyWord(e.res.Policy),
		Disposition:  e.v.applied.String(),
		Action:       e.v.action.String(),
		DKIMAligned:  e.res.DKIMAligned,
		SPFAligned:   e.res.SPFAligned,
		Overrides:    e.v.overrides,
		ARC:          in.arc,
	}
	if r.HeaderFrom == "" {
		r.HeaderFrom = e.domain
	}
	for _, rc := range s.msg.rcpts {
		r.Recipients = append(r.Recipients, rc)
		if i := strings.LastIndexByte(rc, '@'); i >= 0 {
			r.EnvelopeTo = appendUnique(r.EnvelopeTo, strings.ToLower(rc[i+1:]))
		}
	}
	if rec := e.res.Record; rec != nil {
		r.Published = published(e.res, rec)
	}
	for _, k := range in.dkim {
		r.DKIM = append(r.DKIM, report.DKIMResult{Domain: k.Domain, Selector: k.Selector, Result: string(k.Result)})
	}
	if in.spf.Result != "" {
		r.SPF = []report.SPFResult{{Domain: in.spf.Domain, Scope: in.spf.Scope.String(), Result: string(in.spf.Result)}}
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
		p.RI = int(rec.RI)
	}
	for _, u := range rec.RUA {
		p.RUA = append(p.RUA, u.Raw)
	}
	return p
}

// reportFailures hands the failure sink an incident for each From domain
// whose policy asks for a failure report about this message. It only
// builds and queues: everything slow (the store, DNS, SMTP) happens
// after the MTA has its reply.
func (s *session) reportFailures(out outcome, own, queueID string) {
	if !s.cfg.FailureReports || s.deps.Failures == nil {
		return
	}
	var fields []failure.Field
	for _, e := range out.evs {
		if ok, _ := failure.Wanted(&e.res, s.cfg.FailureReportsOnNone); !ok {
			continue
		}
		if fields == nil {
			fields = s.reportFields()
			if exempt, why := failure.Exempt(s.msg.mailFrom, fields); exempt {
				s.srv.log.Debug("no failure report", "queue_id", queueID, "why", why)
				return
			}
		}
		inc := failure.Incident{
			Spec:           e.res.Spec.String(),
			PolicyDomain:   e.res.PolicyDomain,
			FromDomain:     e.res.FromDomain,
			Arrival:        time.Now().UTC(),
			SourceIP:       s.client,
			Helo:           s.helo,
			MailFrom:       s.msg.mailFrom,
			RcptTo:         append([]string(nil), s.msg.rcpts...),
			QueueID:        queueID,
			AuthServID:     own,
			DMARC:          e.res.Outcome.String(),
			DeliveryResult: deliveryResult(out.final.action),
			SPF: failure.Auth{Domain: e.res.SPF.Domain, Scope: e.res.SPF.Scope.String(),
				Result: string(e.res.SPF.Result), Aligned: e.res.SPFAligned},
			Headers:          fields,
			HeadersTruncated: s.msg.headersCut,
			RUF:              failure.Destinations(e.res.Record),
		}
		if inc.FromDomain == "" {
			inc.FromDomain = e.domain
		}
		for _, k := range e.res.DKIM {
			inc.DKIM = append(inc.DKIM, failure.Auth{Domain: k.Domain, Selector: k.Selector, Result: string(k.Result), Aligned: k.Aligned})
		}
		if s.cfg.FailureReportsBody {
			switch {
			case s.msg.whole && !s.msg.tooLarge && int64(s.msg.body.Len()) <= s.cfg.FailureReportsMaxBody:
				inc.Body = append([]byte{}, s.msg.body.Bytes()...)
			default:
				inc.BodyOmitted = true
			}
		}
		if !s.deps.Failures.Add(inc) {
			s.srv.log.Debug("failure report dropped: queue full", "queue_id", queueID, "policy_domain", inc.PolicyDomain)
		}
	}
}

// reportFields returns the kept header fields as a failure report quotes
// them: each value with its leading space, as received.
func (s *session) reportFields() []failure.Field {
	out := make([]failure.Field, 0, len(s.msg.fields))
	for _, f := range s.msg.fields {
		v := f.value
		if !s.msg.leadSP {
			v = " " + v
		}
		out = append(out, failure.Field{Name: f.name, Value: v})
	}
	return out
}

// deliveryResult is the Delivery-Result of RFC 6591 §3.2 for an action:
// held in the MTA's queue by policy, refused, or delivered.
func deliveryResult(a Action) string {
	switch a {
	case Accept:
		return "delivered"
	case Quarantine:
		return "policy"
	case Reject:
		return "reject"
	}
	return "other"
}
