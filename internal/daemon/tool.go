package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// Reports is the report store of a configuration and a scheduler over it,
// without the milter: what the dmarcd reports commands work with, beside
// a running daemon or instead of one.
type Reports struct {
	Config    *config.Config
	Store     *store.DB
	Scheduler *scheduler.Scheduler
}

// ErrSenderBusy is returned by Reports.Send when another process holds
// the sender lease: a running dmarcd, which sends the reports itself.
var ErrSenderBusy = errors.New("another dmarcd holds the report sender lease and sends the reports itself (see its log, or use -dry-run)")

// OpenReports opens the store of the configuration opts names. With
// sending, the relay password and DKIM keys are read too (Send needs
// them; list and preview do not).
func OpenReports(opts Options, sending bool) (*Reports, error) {
	cfg, _, err := Load(opts)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	if opts.Stderr != nil {
		if log, err = newLogger(opts.Stderr, cfg); err != nil {
			return nil, err
		}
	}
	var sec secrets
	if sending {
		if sec, err = readSecrets(cfg, log); err != nil {
			return nil, err
		}
	} else {
		// The DSN only.
		only := *cfg
		only.Reports.DKIM, only.Reports.Relay.PasswordFile = config.ReportDKIM{}, ""
		if sec, err = readSecrets(&only, log); err != nil {
			return nil, err
		}
	}
	resolver, err := dnscache.New(ResolverConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("DNS resolver: %w", err)
	}
	d, err := deps(cfg, resolver)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, storeConfig(cfg, sec, log))
	if err != nil {
		return nil, fmt.Errorf("report store: %w", err)
	}
	relay := relayOf(cfg, sec)
	sc := schedulerConfig(cfg, sec)
	// A tool must not leave files in the daemon's spool.
	sc.SpoolDir = filepath.Join(cfg.StateDir, "spool", "tool")
	s, err := scheduler.New(sc, scheduler.Deps{Store: db, Verifier: d.Evaluator, Resolver: resolver, Sender: relay, Now: opts.Now, Logger: log})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Reports{Config: cfg, Store: db, Scheduler: s}, nil
}

// Send runs the scheduler once, as the sending node: it takes the sender
// lease for the run (ErrSenderBusy when a daemon holds it). A dry run
// changes nothing and needs no lease.
func (r *Reports) Send(ctx context.Context, opts scheduler.RunOptions) (scheduler.Summary, error) {
	if opts.DryRun == "" {
		if !r.Config.Reports.Enabled {
			return scheduler.Summary{}, errors.New("reports are not enabled (reports.enabled = false); -dry-run shows what would be sent")
		}
		lease, err := r.Store.TryLease(ctx, scheduler.LeaseName)
		if errors.Is(err, store.ErrLeaseHeld) {
			return scheduler.Summary{}, ErrSenderBusy
		} else if err != nil {
			return scheduler.Summary{}, err
		}
		defer lease.Release(context.WithoutCancel(ctx))
	}
	return r.Scheduler.RunOnce(ctx, opts)
}

// Close closes the store.
func (r *Reports) Close() error { return r.Store.Close() }
