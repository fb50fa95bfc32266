package daemon

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/milter"
	"github.com/dmarcd/dmarcd/report/aggregate"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/failure"
	"github.com/dmarcd/dmarcd/report/failure/outbound"
	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// reporting is the report side of a daemon: the store, the Writer that
// is the milter's sink in front of it, and the scheduler that sends the
// reports.
type reporting struct {
	db     *store.DB
	writer *store.Writer
	sched  *scheduler.Scheduler
	relay  *swapSender
	ver    *swapVerifier
	log    *slog.Logger
	// mailboxes stores the reports in mail to received.mailboxes.
	mailboxes *mailboxIngester

	// failQueue is the milter's failure sink when failure reports are
	// on; failSender drains the store's failure queue. redactKey keys the
	// redaction tokens, made anew at every start.
	failQueue  *outbound.Queue
	failSender *outbound.Sender
	redactKey  []byte

	stop context.CancelFunc
	done chan struct{}
}

// secrets are what the report configuration names in files: read before
// dmarcd gives up root, as the files may be readable by root alone.
type secrets struct {
	dsn      string
	password string
	signers  []delivery.Signer
}

// readSecrets reads the DSN file, the relay password file and the DKIM
// keys. Keys are read even with reports disabled, so that a bad key is
// found when the configuration is written, not when reports are turned
// on.
func readSecrets(cfg *config.Config, log *slog.Logger) (secrets, error) {
	var s secrets
	s.dsn = cfg.Store.DSN
	if cfg.Store.DSNFile != "" {
		b, err := os.ReadFile(cfg.Store.DSNFile)
		if err != nil {
			return s, fmt.Errorf("store.dsn_file: %w", err)
		}
		s.dsn = strings.TrimSpace(string(b))
	}
	r := cfg.Reports
	s.password = r.Relay.Password
	if r.Relay.PasswordFile != "" {
		b, err := os.ReadFile(r.Relay.PasswordFile)
		if err != nil {
			return s, fmt.Errorf("reports.relay.password_file: %w", err)
		}
		s.password, _, _ = strings.Cut(strings.TrimRight(string(b), "\r\n"), "\n")
		s.password = strings.TrimRight(s.password, "\r")
	}
	for _, k := range []struct {
		key, path, selector string
		ed                  bool
	}{
		{"reports.dkim.key", r.DKIM.Key, r.DKIM.Selector, false},
		{"reports.dkim.ed25519_key", r.DKIM.Ed25519Key, r.DKIM.Ed25519Selector, true},
	} {
		if k.path == "" {
			continue
		}
		key, info, err := delivery.LoadKey(k.path)
		if err != nil {
			return s, fmt.Errorf("%s: %w", k.key, err)
		}
		if _, isEd := key.(ed25519.PrivateKey); isEd != k.ed {
			return s, fmt.Errorf("%s: %s holds an %s key", k.key, k.path, info.Algorithm)
		}
		for _, w := range info.Warnings {
			log.Warn("DKIM key for report mail", "key", k.key, "warning", w)
		}
		s.signers = append(s.signers, delivery.Signer{Domain: r.DKIM.Domain, Selector: k.selector, Key: key})
	}
	return s, nil
}

// storeConfig is what store.Open needs.
func storeConfig(cfg *config.Config, s secrets, log *slog.Logger) store.Config {
	suppressAfter := cfg.Reports.SuppressAfter
	if suppressAfter == 0 {
		suppressAfter = -1
	}
	return store.Config{
		Driver:   cfg.Store.Driver.String(),
		StateDir: cfg.StateDir,
		Path:     cfg.Store.Path,
		DSN:      s.dsn,
		Options:  store.Options{Reporter: cfg.Reports.OrgName, SuppressAfter: suppressAfter, Logger: log},
	}
}

// schedulerConfig turns the [reports] table into the scheduler's
// configuration.
func schedulerConfig(cfg *config.Config, s secrets) scheduler.Config {
	r := cfg.Reports
	c := scheduler.Config{
		Enabled:          r.Enabled,
		OrgName:          r.OrgName,
		Email:            r.ContactEmail,
		ExtraContactInfo: r.ContactInfo,
		Submitter:        r.Submitter,
		FromName:         r.FromName,
		FromAddress:      r.FromAddress,
		Generator:        "dmarcd " + Version,
		Floor:            r.IntervalFloor.Duration(),
		Ceiling:          r.IntervalCeiling.Duration(),
		CloseDelay:       r.CloseDelay.Duration(),
		MaxBacklog:       r.MaxBacklog.Duration(),
		Spread:           r.Spread.Duration(),
		Format:           reportFormat(r.Format),
		MaxSize:          uint64(r.MaxSize.Bytes()),
		Global:           scheduler.Rate{N: r.RateGlobal.N, Per: r.RateGlobal.Per.Duration()},
		PerDestination:   scheduler.Rate{N: r.RatePerDestination.N, Per: r.RatePerDestination.Per.Duration()},
		Concurrency:      r.Concurrency,
		RetryBackoff:     r.RetryBackoff.Duration(),
		RetryBackoffMax:  r.RetryBackoffMax.Duration(),
		RetryMaxAge:      r.RetryMaxAge.Duration(),
		Suppress:         r.Suppress,
		ExpireAfter:      r.ExpireAfter.Duration(),
		Signers:          s.signers,
		SpoolDir:         filepath.Join(cfg.StateDir, "spool"),
	}
	if r.IntervalFloor == config.IntervalNever {
		c.Floor = 0
	}
	for _, d := range r.Destinations {
		c.Formats = append(c.Formats, scheduler.FormatRule{Match: d.Match, Format: reportFormat(d.Format)})
	}
	return c
}

func reportFormat(f config.ReportFormat) aggregate.Format {
	if f == config.FormatRFC9990 {
		return aggregate.RFC9990
	}
	return aggregate.RFC7489
}

// relayOf is the delivery.Relay of the [reports.relay] table.
func relayOf(cfg *config.Config, s secrets) delivery.Relay {
	r := cfg.Reports.Relay
	return delivery.Relay{
		Addr:     r.Address,
		HeloName: r.HeloName,
		StartTLS: r.StartTLS.String(),
		Username: r.Username,
		Password: s.password,
		Timeout:  r.Timeout.Duration(),
	}
}

// swapSender is the scheduler's Sender: a relay that SIGHUP can replace.
type swapSender struct {
	r atomic.Pointer[delivery.Relay]
}

func (s *swapSender) Send(ctx context.Context, from string, to []string, msg io.Reader) (delivery.Result, error) {
	return s.r.Load().Send(ctx, from, to, msg)
}

// swapVerifier is the scheduler's Verifier: an evaluator (spec and public
// suffix list) that SIGHUP can replace.
type swapVerifier struct {
	e atomic.Pointer[dmarc.Evaluator]
}

func (s *swapVerifier) VerifyDestination(ctx context.Context, policyDomain string, u dmarc.URI, tag string) (dmarc.Destination, error) {
	return s.e.Load().VerifyDestination(ctx, policyDomain, u, tag)
}

// openReporting opens the store, starts the Writer and the scheduler.
// The scheduler works until close.
func openReporting(cfg *config.Config, s secrets, ev *dmarc.Evaluator, resolver dmarc.Resolver, opts Options, log *slog.Logger) (*reporting, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, storeConfig(cfg, s, log))
	if err != nil {
		return nil, fmt.Errorf("report store: %w", err)
	}
	r := &reporting{db: db, log: log, relay: &swapSender{}, ver: &swapVerifier{}, done: make(chan struct{})}
	relay := relayOf(cfg, s)
	r.relay.r.Store(&relay)
	r.ver.e.Store(ev)
	r.sched, err = scheduler.New(schedulerConfig(cfg, s), scheduler.Deps{
		Store: db, Verifier: r.ver, Resolver: resolver, Sender: r.relay,
		Now: opts.Now, Logger: log, Poll: opts.ReportPoll,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	r.writer = store.NewWriter(db, store.WriterOptions{
		QueueSize:     cfg.Store.QueueSize,
		FlushRows:     cfg.Store.FlushRows,
		FlushInterval: cfg.Store.FlushInterval.Duration(),
		Logger:        log,
	})
	r.redactKey = make([]byte, 32)
	rand.Read(r.redactKey)
	r.failSender, err = outbound.NewSender(failureConfig(cfg, s), outbound.SenderDeps{
		Store: db, Verifier: r.ver, Sender: r.relay, Resolver: resolver, Now: opts.Now, Logger: log, Poll: opts.ReportPoll,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	r.failQueue = outbound.NewQueue(db, r.queueConfig(cfg), cfg.FailureReports.QueueSize, r.failSender.Wake, log)
	var runCtx context.Context
	runCtx, r.stop = context.WithCancel(context.Background())
	go func() {
		defer close(r.done)
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			r.failSender.Run(runCtx)
		}()
		r.sched.Run(runCtx)
		<-sent
	}()
	log.Info("report store open", "driver", db.Driver(), "reports", cfg.Reports.Enabled, "failure_reports", cfg.FailureReports.Enabled)
	if !cfg.Reports.Enabled {
		log.Info("aggregate reports are not sent (reports.enabled = false); their data is kept")
	}
	return r, nil
}

// reload applies a new [reports] table; [store] changes need a restart.
func (r *reporting) reload(old, cfg *config.Config, ev *dmarc.Evaluator) error {
	s, err := readSecrets(cfg, r.log)
	if err != nil {
		return err
	}
	if err := r.sched.Reload(schedulerConfig(cfg, s)); err != nil {
		return err
	}
	if err := r.failSender.Reload(failureConfig(cfg, s)); err != nil {
		return err
	}
	r.failQueue.Reload(r.queueConfig(cfg))
	relay := relayOf(cfg, s)
	r.relay.r.Store(&relay)
	r.ver.e.Store(ev)
	if fmt.Sprint(cfg.Store) != fmt.Sprint(old.Store) || cfg.Reports.OrgName != old.Reports.OrgName ||
		cfg.Reports.SuppressAfter != old.Reports.SuppressAfter {
		r.log.Warn("store changes (and reports.org_name, reports.suppress_after) take effect at the next restart")
	}
	return nil
}

// close stops the scheduler, writes every row the Writer holds (the
// SIGTERM path: nothing is lost) and closes the store.
func (r *reporting) close(ctx context.Context) error {
	if r.mailboxes != nil {
		// Before the store closes: what the mailboxes queued is stored.
		if err := r.mailboxes.close(ctx); err != nil {
			r.log.Warn("report mailbox: mail still queued at stop was not read; import the mailbox", "error", err)
		}
	}
	r.stop()
	<-r.done
	if err := r.failQueue.Close(ctx); err != nil {
		r.log.Error("failure reports still queued in memory were lost", "err", err)
	}
	st := r.writer.Stats()
	werr := r.writer.Close(ctx)
	if werr == nil {
		r.log.Info("report rows written", "rows", r.writer.Stats().Written, "queued_at_stop", st.Queued+int(st.Pending))
	}
	return errors.Join(werr, r.db.Close())
}

// flushTimeout is how long a stop waits for the last rows to be written.
func flushTimeout(cfg *config.Config) time.Duration {
	return cmp.Or(cfg.Milter.ShutdownTimeout.Duration(), 30*time.Second)
}

// failures is the milter's failure sink: the queue when failure reports
// are on, nil (no incidents made) when they are off.
func (r *reporting) failures(cfg *config.Config) milter.FailureSink {
	if r == nil || !cfg.FailureReports.Enabled {
		return nil
	}
	return r.failQueue
}

// queueConfig is what the failure queue does with incidents.
func (r *reporting) queueConfig(cfg *config.Config) outbound.QueueConfig {
	f := cfg.FailureReports
	return outbound.QueueConfig{
		Redactor:    failure.Redactor{LocalParts: f.RedactLocalParts, Key: r.redactKey, Headers: f.RedactHeaders},
		DedupWindow: f.DedupWindow.Duration(),
	}
}

// failureConfig turns [failure_reports] and what it shares with [reports]
// into the failure sender's configuration.
func failureConfig(cfg *config.Config, s secrets) outbound.Config {
	f, r := cfg.FailureReports, cfg.Reports
	host, _ := os.Hostname()
	return outbound.Config{
		Enabled:         f.Enabled,
		FromName:        f.FromName,
		FromAddress:     cmp.Or(f.FromAddress, r.FromAddress),
		Bcc:             f.Bcc,
		WholeMessage:    f.Include == config.IncludeMessage,
		PerDomain:       scheduler.Rate{N: f.RatePerDomain.N, Per: f.RatePerDomain.Per.Duration()},
		PerDestination:  scheduler.Rate{N: f.RatePerDestination.N, Per: f.RatePerDestination.Per.Duration()},
		RetryBackoff:    r.RetryBackoff.Duration(),
		RetryBackoffMax: r.RetryBackoffMax.Duration(),
		MaxAge:          f.MaxAge.Duration(),
		UserAgent:       "dmarcd/" + Version,
		ReportingMTA:    cmp.Or(r.Relay.HeloName, host),
		Signers:         s.signers,
	}
}

// failureStats are the failure report counters for /metrics.
func (r *reporting) failureStats() map[string]int64 {
	q := r.failQueue.Stats()
	t := r.failSender.Totals()
	m := map[string]int64{
		"queued": q.Written, "duplicate": q.Duplicates, "queue_full": q.Overflow, "store_error": q.Errors,
		"sent": int64(t.Sent), "deferred": int64(t.Deferred), "failed": int64(t.Failed),
	}
	for k, v := range t.Dropped {
		m[k] += int64(v)
	}
	return m
}
