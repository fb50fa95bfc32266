package outbound

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/failure"
	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// LeaseName is the store lease the node sending failure reports holds.
const LeaseName = "failure-sender"

// Config is how failure reports are sent: the [failure_reports] table with
// what it shares with [reports].
type Config struct {
	// Enabled sends failure reports. When false the Sender sends nothing;
	// reports still queued are dropped as expired (MaxAge) if it is
	// enabled again, and deleted after KeepFinished if not.
	Enabled bool
	// FromName and FromAddress make the From field; FromAddress is also
	// the envelope sender.
	FromName, FromAddress string
	// Bcc, when not "", receives a copy of every report sent
	// (OpenDMARC's FailureReportsBcc).
	Bcc string
	// WholeMessage attaches reported messages whole when they were kept.
	WholeMessage bool
	// PerDomain and PerDestination limit the reports sent about one
	// policy domain and to one destination domain; what they hold back
	// is dropped and counted.
	PerDomain, PerDestination scheduler.Rate
	// RetryBackoff is the wait after a first temporary failure, doubled
	// after each further one up to RetryBackoffMax.
	RetryBackoff, RetryBackoffMax time.Duration
	// MaxAge is how long after the failure a report may still be sent:
	// older ones are dropped. Zero means a day.
	MaxAge time.Duration
	// KeepFinished is how long finished reports stay in the store, for
	// the counts, and the longest any report stays; zero means a week.
	KeepFinished time.Duration
	// UserAgent is the feedback report's User-Agent; ReportingMTA our host
	// name.
	UserAgent, ReportingMTA string
	// Signers DKIM-sign the reports; none sends them unsigned.
	Signers []delivery.Signer
}

// Store is what the Sender needs of the store.
type Store interface {
	store.FailureQueue
	Suppressions(ctx context.Context) ([]store.Suppression, error)
	TryLease(ctx context.Context, name string) (store.Lease, error)
}

// SenderDeps are what a Sender works with.
type SenderDeps struct {
	Store Store
	// Verifier checks external destinations (RFC 7489 §7.1); nil trusts
	// every destination, which only tests should do.
	Verifier scheduler.Verifier
	Sender   scheduler.Sender
	// Resolver, if not nil, reads the SPF record a report quotes in
	// SPF-DNS (through the DNS cache, once per domain and run).
	Resolver dmarc.Resolver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Poll is how often Run looks for work; zero means 30 seconds.
	Poll time.Duration
}

// Sender drains the store's failure queue. See the package documentation.
type Sender struct {
	d    SenderDeps
	log  *slog.Logger
	now  func() time.Time
	cfg  atomic.Pointer[Config]
	wake chan struct{}
	mu   sync.Mutex // one run at a time

	tmu         sync.Mutex
	totals      Summary
	lastExpired time.Time
}

// Summary says what runs did: reports sent, deferred (to try again),
// failed (refused for good), and dropped, by reason.
type Summary struct {
	Sent, Deferred, Failed int
	Dropped                map[string]int
}

func (s *Summary) drop(reason string) {
	if s.Dropped == nil {
		s.Dropped = map[string]int{}
	}
	s.Dropped[reason]++
}

// The reasons a report is dropped.
const (
	ReasonRateLimited  = "rate_limited"
	ReasonUnauthorized = "unauthorized"
	ReasonTooLarge     = "too_large"
	ReasonSuppressed   = "suppressed"
	ReasonExpired      = "expired"
	ReasonCorrupt      = "corrupt"
	ReasonRejected     = "rejected"
)

// NewSender returns a Sender; Run starts it.
func NewSender(cfg Config, d SenderDeps) (*Sender, error) {
	if d.Store == nil {
		return nil, errors.New("failure reports: no store")
	}
	s := &Sender{d: d, log: cmp.Or(d.Logger, slog.Default()), now: d.Now, wake: make(chan struct{}, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload replaces the configuration from the next run on.
func (s *Sender) Reload(cfg Config) error {
	if cfg.Enabled && (cfg.FromAddress == "" || s.d.Sender == nil) {
		return errors.New("failure reports: enabled without a from address or a relay")
	}
	cfg.RetryBackoff = cmp.Or(cfg.RetryBackoff, 5*time.Minute)
	cfg.RetryBackoffMax = max(cmp.Or(cfg.RetryBackoffMax, 4*time.Hour), cfg.RetryBackoff)
	cfg.MaxAge = cmp.Or(cfg.MaxAge, 24*time.Hour)
	cfg.KeepFinished = cmp.Or(cfg.KeepFinished, 7*24*time.Hour)
	cfg.Signers = slices.Clone(cfg.Signers)
	s.cfg.Store(&cfg)
	s.Wake()
	return nil
}

// Wake makes Run look for work now.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Totals returns what all runs did so far.
func (s *Sender) Totals() Summary {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	t := s.totals
	t.Dropped = make(map[string]int, len(s.totals.Dropped))
	for k, v := range s.totals.Dropped {
		t.Dropped[k] = v
	}
	return t
}

// Run works until ctx ends, taking the failure sender lease when it can
// and running RunOnce at each poll or Wake while it holds it.
func (s *Sender) Run(ctx context.Context) error {
	t := time.NewTicker(cmp.Or(s.d.Poll, 30*time.Second))
	defer t.Stop()
	var lease store.Lease
	defer func() {
		if lease != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = lease.Release(rctx)
		}
	}()
	for {
		// The lease is taken even with failure reports off: its holder
		// also expires what a sender left in the store.
		if lease == nil {
			l, err := s.d.Store.TryLease(ctx, LeaseName)
			switch {
			case err == nil:
				lease = l
				s.log.Info("this node holds the failure report sender lease (it sends failure reports when they are enabled)")
			case errors.Is(err, store.ErrLeaseHeld), ctx.Err() != nil:
			default:
				s.log.Warn("cannot take the failure report sender lease", "err", err)
			}
		}
		var lost <-chan struct{}
		if lease != nil {
			lost = lease.Lost()
			if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("failure reports", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
			s.log.Warn("lost the failure report sender lease; standing by")
			_ = lease.Release(context.Background())
			lease = nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// batch bounds the reports one run looks at.
const batch = 500

// RunOnce sends the due reports within the rate limits. The caller should
// hold the lease (Run does).
func (s *Sender) RunOnce(ctx context.Context) (Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg.Load()
	now := s.now().UTC()
	var sum Summary
	if now.Sub(s.lastExpired) >= time.Hour {
		if _, err := s.d.Store.ExpireFailures(ctx, now.Add(-cfg.KeepFinished)); err != nil {
			s.log.Warn("expiring old failure reports", "err", err)
		} else {
			s.lastExpired = now
		}
	}
	if !cfg.Enabled {
		return sum, nil
	}
	due, err := s.d.Store.DueFailures(ctx, now, batch)
	if err != nil || len(due) == 0 {
		return sum, err
	}
	lim, err := newLimiter(ctx, s.d.Store, now, cfg.PerDomain, cfg.PerDestination)
	if err != nil {
		return sum, err
	}
	sups, err := s.d.Store.Suppressions(ctx)
	if err != nil {
		return sum, err
	}
	r := &run{s: s, cfg: cfg, now: now, lim: lim, sups: sups, verified: map[string]verdict{}, spf: map[string]string{}}
	var errs []error
	for _, f := range due {
		if ctx.Err() != nil {
			break
		}
		if err := r.one(ctx, f, &sum); err != nil {
			errs = append(errs, err)
		}
	}
	s.logSummary(sum, r.limited)
	s.tmu.Lock()
	s.totals.Sent += sum.Sent
	s.totals.Deferred += sum.Deferred
	s.totals.Failed += sum.Failed
	for k, v := range sum.Dropped {
		if s.totals.Dropped == nil {
			s.totals.Dropped = map[string]int{}
		}
		s.totals.Dropped[k] += v
	}
	s.tmu.Unlock()
	return sum, errors.Join(errs...)
}

// logSummary writes one line per run that did something, and one for what
// the rate limits held back, with the domains: counted, not lost silently.
func (s *Sender) logSummary(sum Summary, limited map[string]int) {
	if sum.Sent+sum.Deferred+sum.Failed == 0 && len(sum.Dropped) == 0 {
		return
	}
	s.log.Info("failure reports", "sent", sum.Sent, "deferred", sum.Deferred, "failed", sum.Failed, "dropped", fmt.Sprint(sum.Dropped))
	if len(limited) > 0 {
		var parts []string
		for d, n := range limited {
			parts = append(parts, d+"="+strconv.Itoa(n))
		}
		slices.Sort(parts)
		s.log.Warn("failure reports dropped by the rate limits", "count", sum.Dropped[ReasonRateLimited], "by_policy_domain", strings.Join(parts, " "))
	}
}

// verdict is a destination check's outcome, kept for one run.
type verdict struct {
	d   dmarc.Destination
	err error
}

type run struct {
	s        *Sender
	cfg      *Config
	now      time.Time
	lim      *limiter
	sups     []store.Suppression
	verified map[string]verdict
	limited  map[string]int
	spf      map[string]string // SPF records by domain, "" when none
}

func (r *run) finish(ctx context.Context, f store.FailureReport, a store.FailureAttempt, sum *Summary) error {
	a.ID, a.At = f.ID, r.now
	switch a.State {
	case store.FailureSent:
		sum.Sent++
	case store.FailureFailed:
		sum.Failed++
	case store.FailureDropped:
		sum.drop(a.Reason)
	case store.FailurePending:
		sum.Deferred++
	}
	return r.s.d.Store.FinishFailure(ctx, a)
}

// one handles one due report.
func (r *run) one(ctx context.Context, f store.FailureReport, sum *Summary) error {
	var inc failure.Incident
	if err := json.Unmarshal(f.Incident, &inc); err != nil || len(inc.RUF) != 1 {
		return r.finish(ctx, f, store.FailureAttempt{State: store.FailureDropped, Reason: ReasonCorrupt, Error: fmt.Sprint(err)}, sum)
	}
	if r.now.Sub(f.Created) > r.cfg.MaxAge {
		return r.finish(ctx, f, store.FailureAttempt{State: store.FailureDropped, Reason: ReasonExpired}, sum)
	}
	for _, sp := range r.sups {
		if sp.Matches(f.Destination) {
			return r.finish(ctx, f, store.FailureAttempt{State: store.FailureDropped, Reason: ReasonSuppressed, Error: sp.Reason}, sum)
		}
	}
	dest := inc.RUF[0]
	v := r.verify(ctx, f.PolicyDomain, dest)
	switch {
	case v.err != nil:
		return r.retry(ctx, f, "verify destination: "+v.err.Error(), sum)
	case !v.d.Authorized:
		r.s.log.Info("failure report not sent: destination not authorized", "policy_domain", f.PolicyDomain,
			"destination", dest.Address, "reason", v.d.Reason)
		return r.finish(ctx, f, store.FailureAttempt{State: store.FailureDropped, Reason: ReasonUnauthorized, Error: v.d.Reason}, sum)
	}
	var to []string
	var limit uint64
	for _, u := range v.d.Send {
		if u.Address != "" {
			to = append(to, u.Address)
			if u.MaxSize > 0 && (limit == 0 || u.MaxSize < limit) {
				limit = u.MaxSize
			}
		}
	}
	if len(to) == 0 {
		return r.finish(ctx, f, store.FailureAttempt{State: store.FailureDropped, Reason: ReasonUnauthorized, Error: "no mailto: destination"}, sum)
	}
	// The limits first: in a burst, most reports go no further, and
	// composing them would be wasted.
	if !r.lim.take(f.PolicyDomain, f.DestDomain) {
		if r.limited == nil {
			r.limited = map[string]int{}
		}
		r.limited[f.PolicyDomain]++
		return r.finish(ctx, f, store.FailureAttempt{State: store.FailureDropped, Reason: ReasonRateLimited}, sum)
	}
	inc.SPFDNS = r.spfRecord(ctx, inc.SPF.Domain)
	msg, err := r.compose(inc, f, to, limit)
	if err != nil {
		r.lim.giveBack(f.PolicyDomain, f.DestDomain)
		return r.finish(ctx, f, store.FailureAttempt{State: store.FailureDropped, Reason: ReasonTooLarge, Error: err.Error()}, sum)
	}
	if len(r.cfg.Signers) > 0 {
		sig, err := delivery.Signatures(bytes.NewReader(msg), r.cfg.Signers...)
		if err != nil {
			r.lim.giveBack(f.PolicyDomain, f.DestDomain)
			return r.finish(ctx, f, store.FailureAttempt{State: store.FailureFailed, Reason: "sign", Error: err.Error()}, sum)
		}
		msg = append([]byte(sig), msg...)
	}
	rcpts := to
	if r.cfg.Bcc != "" {
		rcpts = append(slices.Clone(to), r.cfg.Bcc)
	}
	res, err := r.s.d.Sender.Send(ctx, r.cfg.FromAddress, rcpts, bytes.NewReader(msg))
	switch {
	case err != nil && delivery.IsTemporary(err):
		r.lim.giveBack(f.PolicyDomain, f.DestDomain)
		return r.retry(ctx, f, err.Error(), sum)
	case err != nil:
		return r.finish(ctx, f, store.FailureAttempt{State: store.FailureFailed, Reason: ReasonRejected, Error: err.Error()}, sum)
	}
	for _, a := range res.Accepted {
		if slices.Contains(to, a) {
			r.s.log.Debug("failure report sent", "policy_domain", f.PolicyDomain, "to", strings.Join(to, ","), "queue_id", inc.QueueID)
			return r.finish(ctx, f, store.FailureAttempt{State: store.FailureSent}, sum)
		}
	}
	r.lim.giveBack(f.PolicyDomain, f.DestDomain)
	var why []string
	for rc, e := range res.Rejected {
		why = append(why, rc+": "+e.Error())
	}
	slices.Sort(why)
	if res.Temporary {
		return r.retry(ctx, f, strings.Join(why, "; "), sum)
	}
	return r.finish(ctx, f, store.FailureAttempt{State: store.FailureFailed, Reason: ReasonRejected, Error: strings.Join(why, "; ")}, sum)
}

// retry defers a report after a temporary failure, or gives it up when
// it would be older than MaxAge by the next attempt.
func (r *run) retry(ctx context.Context, f store.FailureReport, why string, sum *Summary) error {
	wait := r.cfg.RetryBackoff
	for i := 0; i < f.Attempts && wait < r.cfg.RetryBackoffMax; i++ {
		wait *= 2
	}
	wait = min(wait, r.cfg.RetryBackoffMax)
	next := r.now.Add(wait)
	if next.Sub(f.Created) > r.cfg.MaxAge {
		return r.finish(ctx, f, store.FailureAttempt{State: store.FailureDropped, Reason: ReasonExpired, Error: why}, sum)
	}
	return r.finish(ctx, f, store.FailureAttempt{State: store.FailurePending, Error: why, Next: next}, sum)
}

// spfRecord returns the SPF record published at domain, or "" when there
// is none, it cannot be read, or there is no resolver: SPF-DNS is written
// where known.
func (r *run) spfRecord(ctx context.Context, domain string) string {
	if r.s.d.Resolver == nil || domain == "" {
		return ""
	}
	domain = strings.ToLower(domain)
	if rec, ok := r.spf[domain]; ok {
		return rec
	}
	rec := ""
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if txts, err := r.s.d.Resolver.LookupTXT(lctx, domain); err == nil {
		for _, t := range txts {
			if v := strings.ToLower(t); v == "v=spf1" || strings.HasPrefix(v, "v=spf1 ") {
				if rec != "" {
					rec = "" // several records: a permerror, none to quote
					break
				}
				rec = t
			}
		}
	}
	r.spf[domain] = rec
	return rec
}

// verify checks a destination once per run.
func (r *run) verify(ctx context.Context, policyDomain string, d failure.Destination) verdict {
	if r.s.d.Verifier == nil {
		return verdict{d: dmarc.Destination{URI: d.URI(), Authorized: true, Send: []dmarc.URI{d.URI()}}}
	}
	key := policyDomain + " " + strings.ToLower(d.Address)
	if v, ok := r.verified[key]; ok {
		return v
	}
	res, err := r.s.d.Verifier.VerifyDestination(ctx, policyDomain, d.URI(), "ruf")
	v := verdict{d: res, err: err}
	r.verified[key] = v
	return v
}

// compose writes the report for to, within the size limit of the
// destination (RFC 7489 "!size"): a whole message too large for it is
// replaced by its header section; a report still too large is not sent.
func (r *run) compose(inc failure.Incident, f store.FailureReport, to []string, limit uint64) ([]byte, error) {
	o := failure.ComposeOptions{
		FromName: r.cfg.FromName, FromAddress: r.cfg.FromAddress, To: to,
		MessageID: messageID(f, r.cfg.FromAddress), Date: r.now,
		UserAgent: r.cfg.UserAgent, ReportingMTA: r.cfg.ReportingMTA, WholeMessage: r.cfg.WholeMessage,
	}
	msg, err := failure.Compose(inc, o)
	if err != nil {
		return nil, err
	}
	if limit == 0 || uint64(len(msg)) <= limit {
		return msg, nil
	}
	if o.WholeMessage && inc.Body != nil {
		inc.Body, inc.BodyOmitted = nil, true
		if msg, err = failure.Compose(inc, o); err == nil && uint64(len(msg)) <= limit {
			return msg, nil
		}
	}
	return nil, fmt.Errorf("report of %d bytes exceeds the destination's limit of %d", len(msg), limit)
}

// messageID is the same at every attempt at one report: its queue id and
// a hash of its destination, at the domain of the From address.
func messageID(f store.FailureReport, from string) string {
	sum := sha256.Sum256([]byte(f.Destination + "\x00" + f.Created.String()))
	return fmt.Sprintf("dmarc-failure-%d-%s@%s", f.ID, hex.EncodeToString(sum[:6]), from[strings.LastIndexByte(from, '@')+1:])
}
