// Package milter is dmarcd's milter server: the per-connection session the
// MTA talks to, the reading of upstream Authentication-Results, the table
// from DMARC outcome to action, and the header dmarcd writes.
//
// It is built on github.com/d--j/go-milter rather than
// github.com/emersion/go-milter: the former speaks milter protocol 6 (so the
// MTA need not wait for a reply to every header), asks the MTA for the
// macros it needs, and keeps one handler per MTA connection, so the client
// address and HELO survive from one message of an SMTP session to the next.
package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"
	"golang.org/x/net/netutil"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/failure"
)

// Server serves the milter protocol on any number of listeners. Its
// configuration can be replaced while it runs (Reload); sessions pick up the
// new one at their next message.
type Server struct {
	log   *slog.Logger
	sink  report.Sink
	state atomic.Pointer[state]
	host  string
	stats Stats

	mu      sync.Mutex
	servers []*gomilter.Server
}

var libLog sync.Once

type state struct {
	cfg  *Config
	deps Deps
}

// Deps are what the milter consults besides its configuration.
type Deps struct {
	// Evaluator applies DMARC; its Resolver also serves DKIM and ARC keys.
	Evaluator *dmarc.Evaluator
	// SPF checks SPF when the configuration asks for self-checks; nil
	// disables them.
	SPF SPFChecker
	// Reports, when not nil, takes the messages addressed to the report
	// mailboxes once they are accepted.
	Reports ReportIngester
	// Failures receives failure report incidents when the configuration
	// asks for failure reports; nil makes none.
	Failures FailureSink
}

// ReportIngester takes the messages that other receivers send to our
// report mailboxes, to store the DMARC reports in them.
type ReportIngester interface {
	// Ingest is given one accepted message, header and body as the MTA
	// passed them, and its queue ID. It is called on the SMTP reply
	// path, so it must not block; msg is its own to keep.
	Ingest(queueID string, msg []byte)
}

// FailureSink takes failure report incidents (an outbound.Queue). Add must
// not block: it runs before the MTA gets its reply. It reports false for
// an incident it dropped.
type FailureSink interface {
	Add(failure.Incident) bool
}

// SPFChecker evaluates SPF for a message the way DMARC needs it: the MAIL
// FROM identity, or the HELO name when MAIL FROM is null. It also returns
// an explanation for the log.
type SPFChecker interface {
	Check(ctx context.Context, ip netip.Addr, helo, mailFrom string) (dmarc.SPF, string)
}

// New returns a Server that evaluates with deps, records rows into sink and
// logs to log.
func New(cfg *Config, deps Deps, sink report.Sink, log *slog.Logger) *Server {
	libLog.Do(func() {
		// The milter library logs protocol errors through a package
		// variable; route them to our log, at warning level.
		gomilter.LogWarning = func(format string, v ...any) {
			log.Warn("milter protocol: " + fmt.Sprintf(format, v...))
		}
	})
	s := &Server{log: log, sink: sink, host: hostname()}
	s.state.Store(&state{cfg, deps})
	return s
}

// Reload replaces the configuration and dependencies for the messages that
// start from now on. Connections in progress are not dropped.
func (s *Server) Reload(cfg *Config, deps Deps) {
	s.state.Store(&state{cfg, deps})
}

func (s *Server) snapshot() (*Config, Deps) {
	st := s.state.Load()
	return st.cfg, st.deps
}

// trust derives the authserv-ids for a connection: ours is configured, or
// the MTA's {j} name, or this host's name; the trusted list defaults to
// ours alone, as OpenDMARC's TrustedAuthservIDs does.
func (s *Server) trust(cfg *Config, mtaName string) trust {
	own := cfg.AuthServID
	switch {
	case strings.EqualFold(own, "HOSTNAME"):
		own = s.host
	case own == "" && mtaName != "":
		own = mtaName
	case own == "":
		own = s.host
	}
	t := trust{own: own, trusted: cfg.TrustedAuthServIDs}
	if len(t.trusted) == 0 {
		t.trusted = []string{own}
	}
	return t
}

// protocol is what we ask the MTA for: no body, no DATA or unknown-command
// events, and no reply awaited for HELO, RCPT, headers and end of headers.
// Connect and MAIL keep their replies: they are where ignored clients are
// let through early.
const protocol = gomilter.OptNoBody | gomilter.OptNoData | gomilter.OptNoUnknown |
	gomilter.OptNoHeloReply | gomilter.OptNoRcptReply | gomilter.OptNoHeaderReply | gomilter.OptNoEOHReply

// actions are the modifications we need: insert our header, delete forged
// ones, quarantine.
const actions = gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine

// negotiate settles on the highest protocol version both sides speak, the
// protocol options the MTA offers among those we want (an old MTA gets
// replies to everything), and fails only when an action we need is missing.
// What we want depends on the configuration of the moment: whole messages
// when we verify DKIM or ARC ourselves, adding recipients for
// copy_failures_to.
func (s *Server) negotiate(mtaVersion, milterVersion uint32, mtaActions, _ gomilter.OptAction, mtaProtocol, _ gomilter.OptProtocol, offered gomilter.DataSize) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
	v := min(mtaVersion, milterVersion)
	if v < 2 {
		return 0, 0, 0, 0, fmt.Errorf("MTA speaks milter protocol %d, need 2 or later", mtaVersion)
	}
	cfg, _ := s.snapshot()
	want, proto := actions, protocol
	if cfg.CopyFailuresTo != "" {
		want |= gomilter.OptAddRcpt
	}
	if cfg.needsMessage() {
		// Header values exactly as received, leading space included,
		// for canonicalization.
		proto = proto&^gomilter.OptNoBody | gomilter.OptNoBodyReply | gomilter.OptHeaderLeadingSpace
	}
	if mtaActions&want != want {
		return 0, 0, 0, 0, fmt.Errorf("MTA does not allow the actions we need (offered %v, need %v)", mtaActions, want)
	}
	return v, want, proto & mtaProtocol, offered, nil
}

// Serve accepts MTA connections on ln in the given mode until Shutdown.
// At most cfg.MaxConnections are served at once; further connections wait
// in the listen queue.
func (s *Server) Serve(ln net.Listener, mode Mode) error {
	cfg, _ := s.snapshot()
	if cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, cfg.MaxConnections)
	}
	srv := gomilter.NewServer(
		gomilter.WithDynamicMilter(func(uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize) gomilter.Milter {
			return &guarded{s: &session{srv: s, mode: mode}, log: s.log}
		}),
		gomilter.WithActions(actions),
		gomilter.WithProtocols(protocol),
		gomilter.WithNegotiationCallback(s.negotiate),
		gomilter.WithMacroRequest(gomilter.StageConnect, []string{gomilter.MacroMTAFQDN, gomilter.MacroClientAddr}),
		gomilter.WithMacroRequest(gomilter.StageMail, []string{gomilter.MacroAuthAuthen, gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOM, []string{gomilter.MacroQueueId}),
		gomilter.WithReadTimeout(cfg.IdleTimeout),
		gomilter.WithWriteTimeout(cfg.WriteTimeout),
	)
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	err := srv.Serve(guardListener{ln, &s.stats})
	if errors.Is(err, gomilter.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for the sessions in
// progress to finish until ctx ends, then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := append([]*gomilter.Server(nil), s.servers...)
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, gomilter.ErrServerClosed) {
			errs = append(errs, err)
			_ = srv.Close()
		}
	}
	return errors.Join(errs...)
}

func (s *Server) logSkip(queueID string, client netip.Addr, why string) {
	s.stats.skipped.Add(1)
	s.log.Info("skipped", "queue_id", queueID, "client", addrString(client), "reason", why)
}

func (s *Server) logVerdict(queueID string, sess *session, out outcome, notes []string, took time.Duration) {
	ctx := context.Background()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	// Attrs rather than alternating keys and values: the same line,
	// without boxing every value.
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs, slog.String("queue_id", queueID), slog.String("client", addrString(sess.client)), slog.String("helo", sess.helo))
	for _, e := range out.evs {
		attrs = append(attrs, slog.String("from", e.domain), slog.String("result", e.res.Outcome.String()),
			slog.String("policy", policyWord(e.res.Policy)), slog.String("disposition", e.v.applied.String()))
		if e.res.PolicyDomain != "" {
			attrs = append(attrs, slog.String("policy_domain", e.res.PolicyDomain))
		}
		attrs = append(attrs, slog.String("reason", strings.Join(e.res.Reasons(), "; ")))
	}
	if len(out.evs) == 0 {
		attrs = append(attrs, slog.String("from", out.domain))
	}
	attrs = append(attrs, slog.String("action", out.final.action.String()), slog.String("why", out.final.why), slog.Int64("ms", took.Milliseconds()))
	if len(notes) > 0 {
		attrs = append(attrs, slog.String("notes", strings.Join(notes, "; ")))
	}
	// A record without a program counter: Logger.LogAttrs would walk the
	// stack for the caller's source position, which no handler of ours
	// prints, at a tenth of the cost of the line.
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "dmarc", 0)
	r.AddAttrs(attrs...)
	_ = s.log.Handler().Handle(ctx, r)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Stats counts what the milter did, for metrics and tests.
type Stats struct {
	messages atomic.Int64
	skipped  atomic.Int64
	byResult [5]atomic.Int64 // indexed by dmarc.Outcome
	byAction [4]atomic.Int64 // indexed by Action
	// decided counts messages by the outcome of the evaluation that
	// decided the action (the strictest), and the action: [outcome][action].
	decided  [5][4]atomic.Int64
	noPolicy [4]atomic.Int64 // messages acted on with no evaluation (no From, ...)
	panics   atomic.Int64
	sessions atomic.Int64 // MTA connections accepted
	active   atomic.Int64 // MTA connections open now
}

func (st *Stats) count(o outcome) {
	st.messages.Add(1)
	st.byAction[o.final.action].Add(1)
	decided := -1
	for _, e := range o.evs {
		st.byResult[e.res.Outcome].Add(1)
		if decided < 0 && e.domain == o.domain {
			decided = int(e.res.Outcome)
		}
	}
	if decided < 0 {
		st.noPolicy[o.final.action].Add(1)
		return
	}
	st.decided[decided][o.final.action].Add(1)
}

// StatsSnapshot is a copy of the counters.
type StatsSnapshot struct {
	Messages int64
	Skipped  int64
	ByResult map[string]int64 // "pass", "fail", ...
	ByAction map[string]int64 // "accept", "reject", ...
	// ByResultAction counts the messages by the DMARC result of the From
	// domain that decided the action ("none" also for messages acted on
	// without an evaluation, such as a missing From) and that action.
	ByResultAction map[ResultAction]int64
	// Panics counts handler bugs caught; each ended only its own session.
	Panics int64
	// Sessions counts the MTA's connections ever accepted; Active those
	// open now.
	Sessions, Active int64
}

// ResultAction is a DMARC result and a milter action, by name.
type ResultAction struct{ Result, Action string }

// Stats returns the counters.
func (s *Server) Stats() StatsSnapshot {
	out := StatsSnapshot{
		Messages: s.stats.messages.Load(),
		Skipped:  s.stats.skipped.Load(),
		Panics:   s.stats.panics.Load(),
		ByResult: map[string]int64{},
		ByAction: map[string]int64{},
		Sessions: s.stats.sessions.Load(),
		Active:   s.stats.active.Load(),

		ByResultAction: map[ResultAction]int64{},
	}
	for o := range s.stats.decided {
		for a := range s.stats.decided[o] {
			k := ResultAction{dmarc.Outcome(o).String(), Action(a).String()}
			out.ByResultAction[k] += s.stats.decided[o][a].Load()
		}
	}
	for a := range s.stats.noPolicy {
		out.ByResultAction[ResultAction{dmarc.OutcomeNone.String(), Action(a).String()}] += s.stats.noPolicy[a].Load()
	}
	for i := range s.stats.byResult {
		out.ByResult[dmarc.Outcome(i).String()] = s.stats.byResult[i].Load()
	}
	for i := range s.stats.byAction {
		out.ByAction[Action(i).String()] = s.stats.byAction[i].Load()
	}
	return out
}

// guarded turns a panic in a handler into an error that ends only that
// session: the milter library runs handlers in goroutines of its own that
// do not recover.
type guarded struct {
	s   *session
	log *slog.Logger
}

func (g *guarded) recover(step string, err *error) {
	if r := recover(); r != nil {
		g.s.srv.stats.panics.Add(1)
		g.log.Error("milter handler panic; session closed", "step", step, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = fmt.Errorf("panic in %s: %v", step, r)
	}
}

func (g *guarded) NewConnection(m gomilter.Modifier) (err error) {
	defer g.recover("connect", &err)
	growStack()
	return g.s.NewConnection(m)
}

func (g *guarded) Connect(host, family string, port uint16, addr string, m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("connect", &err)
	return g.s.Connect(host, family, port, addr, m)
}

func (g *guarded) Helo(name string, m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("helo", &err)
	return g.s.Helo(name, m)
}

func (g *guarded) MailFrom(from, args string, m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("mail", &err)
	return g.s.MailFrom(from, args, m)
}

func (g *guarded) RcptTo(rcpt, args string, m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("rcpt", &err)
	return g.s.RcptTo(rcpt, args, m)
}

func (g *guarded) Data(m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("data", &err)
	return g.s.Data(m)
}

func (g *guarded) Header(name, value string, m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("header", &err)
	return g.s.Header(name, value, m)
}

func (g *guarded) Headers(m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("eoh", &err)
	return g.s.Headers(m)
}

func (g *guarded) BodyChunk(chunk []byte, m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("body", &err)
	return g.s.BodyChunk(chunk, m)
}

func (g *guarded) EndOfMessage(m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("eom", &err)
	return g.s.EndOfMessage(m)
}

func (g *guarded) Abort(m gomilter.Modifier) (err error) {
	defer g.recover("abort", &err)
	return g.s.Abort(m)
}

func (g *guarded) Unknown(cmd string, m gomilter.Modifier) (r *gomilter.Response, err error) {
	defer g.recover("unknown", &err)
	return g.s.Unknown(cmd, m)
}

func (g *guarded) Cleanup(m gomilter.Modifier) {
	defer func() {
		if r := recover(); r != nil {
			g.s.srv.stats.panics.Add(1)
			g.log.Error("milter cleanup panic", "panic", fmt.Sprint(r))
		}
	}()
	g.s.Cleanup(m)
}

// stackReserve is how much stack the session goroutine is given at once
// when a connection starts. The end of a message runs deep (the milter
// library, EndOfMessage, DMARC evaluation, the log line: about 10 KiB of
// frames); a goroutine starts with a few KiB and would double its stack
// two or three times for each connection, each time copying it and
// adjusting every frame, which cost about 6% of the CPU time of a
// message. Growing it once, while it is shallow, copies almost nothing.
const stackReserve = 24 << 10

// growStack makes the calling goroutine's stack large enough for
// stackReserve more bytes: the runtime doubles the stack until the frame
// fits, in one copy.
//
//go:noinline
func growStack() {
	var pad [stackReserve]byte
	keep(&pad)
}

//go:noinline
func keep(*[stackReserve]byte) {}
