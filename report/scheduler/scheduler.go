package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/report/aggregate"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/store"
)

// LeaseName is the store lease the sending node holds.
const LeaseName = "sender"

// Config is what the scheduler does: the [reports] section of dmarcd.toml.
// Zero values of CloseDelay, MaxBacklog, MaxSize, Concurrency, Ceiling
// and the retry durations take those of Default; a zero Floor, Spread,
// Global, PerDestination or ExpireAfter means none (no reports, no
// spreading, no limit, no expiry).
type Config struct {
	// Enabled makes the scheduler create and send reports. When false it
	// still expires old data and keeps the suppression list in step with
	// Suppress.
	Enabled bool

	// OrgName, Email and ExtraContactInfo are report_metadata's org_name,
	// email and extra_contact_info. OrgName also goes into the report IDs
	// (store.ReportID), so the store must be opened with the same
	// store.Options.Reporter.
	OrgName, Email, ExtraContactInfo string
	// Submitter is the reporting domain of the Subject and the attachment's
	// file name; it defaults to the domain of FromAddress.
	Submitter string
	// FromName and FromAddress make the From field; FromAddress is also
	// the envelope sender, so bounces come back to it and SPF aligns.
	FromName, FromAddress string
	// Generator is RFC 9990's generator, "dmarcd <version>".
	Generator string

	// Floor and Ceiling bound the report periods (Hourly, Daily or
	// Weekly): a record's ri is honoured within them (see Interval).
	// A zero Floor sends no reports at all.
	Floor, Ceiling time.Duration
	// CloseDelay is how long after a period ends its report is made:
	// time for the rows still in the Writers' queues of every node to
	// reach the store. Rows that arrive later are kept but never reported.
	CloseDelay time.Duration
	// MaxBacklog bounds catching up: a period that ended longer ago than
	// this when it is first planned is recorded as a skipped report
	// instead of being sent (after a long outage, or when reports are
	// first enabled over months of data).
	MaxBacklog time.Duration
	// Spread is the window over which the reports of one period leave:
	// each report waits a fixed offset within it (a hash of domain and
	// period), capped at the period's length.
	Spread time.Duration

	// Format is the XML format sent to destinations no rule in Formats
	// matches.
	Format aggregate.Format
	// Formats pick the format per destination: the first rule that
	// matches wins.
	Formats []FormatRule
	// MaxSize is the largest report sent, compressed and base64-encoded
	// as the "!size" limits are measured; 0 means aggregate.DefaultMaxSize.
	MaxSize uint64

	// Global and PerDestination limit deliveries: in all, and to one
	// destination domain.
	Global, PerDestination Rate
	// Concurrency bounds the sends in progress and the _report._dmarc
	// lookups in progress, each.
	Concurrency int
	// RetryBackoff is the wait after a first temporary failure, doubled
	// after each further one up to RetryBackoffMax.
	RetryBackoff, RetryBackoffMax time.Duration
	// RetryMaxAge is how long a destination that keeps failing
	// temporarily is retried before its delivery is given up. Failures of
	// the relay itself (connection, TLS, authentication, our sender
	// refused) are retried without end: they are ours to fix, not the
	// destination's.
	RetryMaxAge time.Duration

	// Suppress are destinations no report goes to: addresses, or domains
	// covering their subdomains (OpenDMARC's NoReportsList). They are
	// written to the store's suppression list, beside the entries added
	// after repeated permanent failures.
	Suppress []string
	// ExpireAfter is how long report data is kept (0: for ever).
	ExpireAfter time.Duration

	// Signers sign report mail with DKIM; none sends it unsigned.
	Signers []delivery.Signer
	// SpoolDir holds the report files while they are sent; "" means
	// os.TempDir().
	SpoolDir string
}

// FormatRule sends the destinations that Match matches the reports in
// Format.
type FormatRule struct {
	// Match is an address (rua@example.com) or a domain (example.com),
	// which covers the addresses at it and at its subdomains.
	Match  string
	Format aggregate.Format
}

// Default returns the scheduler's defaults.
func Default() Config {
	return Config{
		Floor:           Hourly,
		Ceiling:         Daily,
		CloseDelay:      5 * time.Minute,
		MaxBacklog:      5 * Daily,
		Spread:          2 * time.Hour,
		Format:          aggregate.RFC7489,
		MaxSize:         aggregate.DefaultMaxSize,
		Global:          Rate{N: 1000, Per: time.Hour},
		PerDestination:  Rate{N: 100, Per: time.Hour},
		Concurrency:     4,
		RetryBackoff:    5 * time.Minute,
		RetryBackoffMax: 4 * time.Hour,
		RetryMaxAge:     5 * Daily,
		ExpireAfter:     90 * Daily,
	}
}

// Verifier checks that an rua destination outside the policy domain's
// organizational domain authorized reports (RFC 7489 §7.1): a
// *dmarc.Evaluator.
type Verifier interface {
	VerifyDestination(ctx context.Context, policyDomain string, u dmarc.URI, tag string) (dmarc.Destination, error)
}

// Sender submits one message: a delivery.Relay.
type Sender interface {
	Send(ctx context.Context, from string, to []string, msg io.Reader) (delivery.Result, error)
}

// Deps are what the scheduler works with.
type Deps struct {
	Store store.Store
	// Verifier checks external destinations. Nil trusts every
	// destination, which only tests should do.
	Verifier Verifier
	// Resolver reads the ri of RFC 7489 domains' records at planning
	// time, once per domain and run; nil gives every domain DefaultRI.
	Resolver dmarc.Resolver
	Sender   Sender
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Poll is how often Run looks for work. Zero means a minute.
	Poll time.Duration
}

// Scheduler plans, builds and sends aggregate reports. See the package
// documentation.
type Scheduler struct {
	st       store.Store
	verifier Verifier
	resolver dmarc.Resolver
	sender   Sender
	now      func() time.Time
	log      *slog.Logger
	poll     time.Duration

	cfg  atomic.Pointer[Config]
	gen  atomic.Uint64 // bumped by Reload
	wake chan struct{}

	totals totals // what Stats returns

	mu         sync.Mutex // one run at a time
	lastExpire time.Time
	synced     uint64 // the generation whose Suppress is in the store
	syncedOnce bool
}

// New returns a scheduler. It checks cfg as Reload does.
func New(cfg Config, d Deps) (*Scheduler, error) {
	if d.Store == nil {
		return nil, errors.New("scheduler: no store")
	}
	s := &Scheduler{
		st: d.Store, verifier: d.Verifier, resolver: d.Resolver, sender: d.Sender,
		now: d.Now, log: cmp.Or(d.Logger, slog.Default()),
		poll: cmp.Or(d.Poll, time.Minute), wake: make(chan struct{}, 1),
	}
	if d.Now == nil {
		s.now = time.Now
	}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload replaces the configuration from the next run on. On error the
// running configuration stays.
func (s *Scheduler) Reload(cfg Config) error {
	c, err := normalize(cfg)
	if err != nil {
		return err
	}
	if c.Enabled && s.sender == nil {
		return errors.New("scheduler: reports enabled without a sender")
	}
	s.cfg.Store(&c)
	s.gen.Add(1)
	s.Wake()
	return nil
}

// Config returns the configuration in force, defaults applied.
func (s *Scheduler) Config() Config { return *s.cfg.Load() }

// normalize fills in defaults and checks what the scheduler relies on.
func normalize(c Config) (Config, error) {
	d := Default()
	c.CloseDelay = cmp.Or(c.CloseDelay, d.CloseDelay)
	c.MaxBacklog = cmp.Or(c.MaxBacklog, d.MaxBacklog)
	c.MaxSize = cmp.Or(c.MaxSize, d.MaxSize)
	c.Concurrency = cmp.Or(c.Concurrency, d.Concurrency)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, d.RetryBackoff)
	c.RetryBackoffMax = max(cmp.Or(c.RetryBackoffMax, d.RetryBackoffMax), c.RetryBackoff)
	c.RetryMaxAge = cmp.Or(c.RetryMaxAge, d.RetryMaxAge)
	c.Ceiling = cmp.Or(c.Ceiling, d.Ceiling)
	for _, b := range []time.Duration{c.Floor, c.Ceiling} {
		if b != 0 && b != Hourly && b != Daily && b != Weekly {
			return c, fmt.Errorf("scheduler: period bound %v is not hourly, daily or weekly", b)
		}
	}
	if c.Floor > c.Ceiling {
		return c, fmt.Errorf("scheduler: floor %v above ceiling %v", c.Floor, c.Ceiling)
	}
	if c.Submitter == "" {
		c.Submitter = c.FromAddress[strings.LastIndexByte(c.FromAddress, '@')+1:]
	}
	c.Email = cmp.Or(c.Email, c.FromAddress)
	if c.Enabled && (c.OrgName == "" || c.FromAddress == "" || c.Submitter == "") {
		return c, errors.New("scheduler: reports need an org name and a from address")
	}
	c.Formats = slices.Clone(c.Formats)
	c.Suppress = slices.Clone(c.Suppress)
	c.Signers = slices.Clone(c.Signers)
	return c, nil
}

// formatFor returns the format of the reports sent to addr.
func (c *Config) formatFor(addr string) aggregate.Format {
	for _, r := range c.Formats {
		if matches(r.Match, addr) {
			return r.Format
		}
	}
	return c.Format
}

// matches reports whether an address or domain pattern covers addr, with
// the store's suppression rules.
func matches(pattern, addr string) bool {
	return store.Suppression{Pattern: pattern}.Matches(addr)
}

// Wake makes Run look for work now rather than at the next poll.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run works until ctx ends: it takes the sender lease when it can (with
// PostgreSQL one node of all holds it; with SQLite one process of the
// host) and, holding it, runs RunOnce at every poll. A node without the
// lease waits, ready to take over when the holder goes away. Run releases
// the lease when it returns.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	var lease store.Lease
	defer func() {
		s.totals.sender.Store(false)
		if lease != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := lease.Release(rctx); err != nil {
				s.log.Warn("releasing the report sender lease", "err", err)
			}
		}
	}()
	standby := false
	for {
		if lease == nil {
			l, err := s.st.TryLease(ctx, LeaseName)
			switch {
			case err == nil:
				lease, standby = l, false
				s.totals.sender.Store(true)
				s.log.Info("this node now sends the aggregate reports (it holds the sender lease)")
			case errors.Is(err, store.ErrLeaseHeld):
				if !standby {
					s.log.Info("another node sends the aggregate reports; standing by")
					standby = true
				}
			case ctx.Err() != nil:
				return nil
			default:
				s.log.Warn("cannot take the report sender lease", "err", err)
			}
		}
		var lost <-chan struct{}
		if lease != nil {
			lost = lease.Lost()
			rctx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(ctx, cancel)
			go func() {
				select {
				case <-lost:
					cancel()
				case <-rctx.Done():
				}
			}()
			if _, err := s.RunOnce(rctx, RunOptions{}); err != nil && rctx.Err() == nil {
				s.log.Error("aggregate reports", "err", err)
			}
			stop()
			cancel()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
			s.log.Warn("lost the report sender lease (database connection broken); standing by")
			s.totals.sender.Store(false)
			lease.Release(context.Background())
			lease = nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// RunOptions change one RunOnce.
type RunOptions struct {
	// Now sends every pending delivery at once, whatever its spread
	// offset or retry time. Rate limits still apply.
	Now bool
	// DryRun, when set, is a directory into which each report that would
	// be sent is written, as the .xml.gz attachment and the signed .eml
	// message, instead of being created and sent: the store is left as
	// it is (no report is created, no attempt recorded).
	DryRun string
}

// Summary says what one RunOnce did.
type Summary struct {
	// Created counts the reports created; Skipped those among them with
	// no destination to go to.
	Created, Skipped int
	// Postponed counts the periods left for a later run because a
	// destination could not be verified (DNS failure).
	Postponed int
	// Sent, Deferred and Failed count the delivery attempts by outcome;
	// Limited the due deliveries the rate limits held back.
	Sent, Deferred, Failed, Limited int
	// Files lists what a dry run wrote.
	Files []string
	// Expired is what the expiry deleted, if it ran.
	Expired store.Expired
}

// run is the state of one RunOnce.
type run struct {
	s    *Scheduler
	cfg  *Config
	now  time.Time
	opts RunOptions

	mu  sync.Mutex
	sum Summary
	ri  map[string]time.Duration // per policy domain
}

func (r *run) count(f func(*Summary)) {
	r.mu.Lock()
	f(&r.sum)
	r.mu.Unlock()
}

// RunOnce does one round of work: it writes the configured suppressions,
// creates the reports of the periods that closed, sends the deliveries
// that are due within the rate limits, and expires old data. The caller
// should hold the sender lease (Run does); RunOnce is safe to call from
// several goroutines, one round running at a time.
func (s *Scheduler) RunOnce(ctx context.Context, opts RunOptions) (Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &run{s: s, cfg: s.cfg.Load(), now: s.now().UTC(), opts: opts, ri: map[string]time.Duration{}}
	var errs []error
	dry := opts.DryRun != ""
	if !dry {
		if err := s.syncSuppressions(ctx, r.cfg); err != nil {
			errs = append(errs, err)
		}
		r.cfg.cleanSpool(time.Now().Add(-time.Hour))
	}
	// A dry run works with reports disabled: it shows what enabling them
	// would send.
	switch {
	case r.cfg.Floor == 0:
		if dry {
			errs = append(errs, errors.New(`no reports are made: reports.interval_floor is "never"`))
		}
	case r.cfg.Enabled || dry:
		if err := r.plan(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := r.send(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if !dry && r.cfg.ExpireAfter > 0 && r.now.Sub(s.lastExpire) >= time.Hour {
		ex, err := s.st.Expire(ctx, r.now.Add(-r.cfg.ExpireAfter))
		if err != nil {
			errs = append(errs, err)
		} else {
			s.lastExpire = r.now
			r.sum.Expired = ex
			if ex != (store.Expired{}) {
				s.log.Info("expired old report data", "before", r.now.Add(-r.cfg.ExpireAfter).Format(time.RFC3339),
					"hourly_counts", ex.Counts, "reports", ex.Reports, "keys", ex.Keys)
			}
		}
	}
	err := errors.Join(errs...)
	if !dry {
		s.totals.add(r.sum, err)
	}
	return r.sum, err
}

// configReason marks the suppression list entries that come from the
// configuration, so that an entry removed from it is removed from the
// store, and only such entries.
const configReason = "configured (reports.suppress)"

func (s *Scheduler) syncSuppressions(ctx context.Context, c *Config) error {
	gen := s.gen.Load()
	if s.syncedOnce && s.synced == gen {
		return nil
	}
	have, err := s.st.Suppressions(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, p := range c.Suppress {
		p = strings.ToLower(strings.TrimSpace(p))
		want[p] = true
		if i := slices.IndexFunc(have, func(x store.Suppression) bool { return x.Pattern == p }); i >= 0 {
			continue // a manual or automatic entry stays as it is
		}
		if err := s.st.Suppress(ctx, store.Suppression{Pattern: p, Reason: configReason}); err != nil {
			return err
		}
	}
	for _, h := range have {
		if h.Reason == configReason && !want[h.Pattern] {
			if err := s.st.Unsuppress(ctx, h.Pattern); err != nil {
				return err
			}
		}
	}
	s.synced, s.syncedOnce = gen, true
	return nil
}

// cleanSpool removes the report files a crash left in the spool: those
// last written before before (the files of a run in progress are newer).
func (c *Config) cleanSpool(before time.Time) {
	if c.SpoolDir == "" {
		return // the system's temporary directory is not ours to sweep
	}
	files, _ := filepath.Glob(filepath.Join(c.SpoolDir, "report-*"))
	for _, f := range files {
		if fi, err := os.Lstat(f); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(before) {
			os.Remove(f)
		}
	}
}

// spoolDir returns the directory for report files, created if missing.
func (c *Config) spoolDir() (string, error) {
	dir := cmp.Or(c.SpoolDir, os.TempDir())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("spool directory: %w", err)
	}
	return dir, nil
}
