// Package daemon runs dmarcd serve: it reads the configuration, builds the
// resolver and the milter, opens the listeners, and handles the signals of
// a well-behaved Unix daemon (SIGHUP reloads, SIGTERM drains and stops).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/milter"
	"github.com/dmarcd/dmarcd/report"
)

// Version is dmarcd's version, for the DMARC-Filter header; the command
// sets it.
var Version = "dev"

// Options are the command-line choices of dmarcd serve.
type Options struct {
	// ConfigPath is the configuration file, dmarcd.toml or opendmarc.conf;
	// "" means built-in defaults.
	ConfigPath string
	// Listen replaces the configured listeners when not empty.
	Listen []string
	// StateDir replaces the configured state directory when not "".
	StateDir string
	// Spec replaces the configured DMARC specification when not "".
	Spec string
	// Stderr receives the log.
	Stderr io.Writer
	// Ready, when not nil, is called once every listener is open, with
	// their addresses (tests use it to learn the ports).
	Ready func(addrs []net.Addr)
	// HTTPReady, when not nil, is called once the [http] listener serves,
	// with its addresses.
	HTTPReady func(addrs []net.Addr)
	// Sink, when not nil, also receives every aggregate row, besides the
	// report store (tests read the rows from it).
	Sink report.Sink
	// Now is the report scheduler's clock; nil means time.Now. Tests move
	// it forward so that report periods close without waiting a day.
	Now func() time.Time
	// ReportPoll is how often the report scheduler looks for work; zero
	// means a minute.
	ReportPoll time.Duration
}

// Load reads the configuration named by opts, either format, and applies
// the overrides. Warnings are about opendmarc.conf keys that do nothing
// here, or that differ.
func Load(opts Options) (*config.Config, []config.Warning, error) {
	cfg := config.Default()
	var warnings []config.Warning
	if opts.ConfigPath != "" {
		var err error
		if cfg, warnings, err = config.LoadAuto(opts.ConfigPath); err != nil {
			return nil, nil, err
		}
	}
	if len(opts.Listen) > 0 {
		cfg.Listeners = nil
		for _, l := range opts.Listen {
			s, err := config.ParseSocket(l)
			if err != nil {
				return nil, nil, fmt.Errorf("-listen %s: %w", l, err)
			}
			ln := config.DefaultListener()
			ln.Address = s
			cfg.Listeners = append(cfg.Listeners, ln)
		}
	}
	if opts.StateDir != "" {
		// A directory named on the command line is relative to where
		// the command runs (make run's ./var); state_dir in a file must
		// be absolute.
		dir, err := filepath.Abs(opts.StateDir)
		if err != nil {
			return nil, nil, fmt.Errorf("-state-dir %s: %w", opts.StateDir, err)
		}
		cfg.StateDir = dir
	}
	if opts.Spec != "" {
		spec, err := dmarc.ParseSpec(opts.Spec)
		if err != nil {
			return nil, nil, fmt.Errorf("-spec: %w", err)
		}
		cfg.Spec = spec
	}
	return cfg, warnings, cfg.Validate()
}

// Run serves until ctx ends or SIGTERM/SIGINT arrives, reloading the
// configuration on SIGHUP.
func Run(ctx context.Context, opts Options) error {
	// Catch signals first: a SIGHUP that arrives while we start must not
	// take its default action and kill the daemon.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)
	cfg, warnings, err := Load(opts)
	if err != nil {
		return err
	}
	if mask, ok := cfg.Umask.Mask(); ok {
		syscall.Umask(int(mask))
	}
	log, err := newLogger(opts.Stderr, cfg)
	if err != nil {
		return err
	}
	logWarnings(log, warnings)
	if t := startHeapGoal(cfg, log); t != nil {
		defer t.Stop()
	}
	resolver, err := dnscache.New(ResolverConfig(cfg))
	if err != nil {
		return fmt.Errorf("DNS resolver: %w", err)
	}
	mcfg, err := milterConfig(cfg)
	if err != nil {
		return err
	}
	d, err := deps(cfg, resolver)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	history, closeHistory, err := openHistory(cfg, log)
	if err != nil {
		return err
	}
	defer closeHistory()

	listeners, err := openListeners(cfg)
	if err != nil {
		return err
	}
	// The HTTP listener and its password file may need root too.
	web, err := openWeb(cfg.HTTP, cfg.Received, log)
	if err != nil {
		closeAll(listeners)
		return err
	}
	defer web.close(context.Background())
	if cfg.PIDFile != "" {
		if err := os.WriteFile(cfg.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			closeAll(listeners)
			return fmt.Errorf("pid file: %w", err)
		}
		defer os.Remove(cfg.PIDFile)
	}
	// Files that only root may read are read before root is given up; the
	// store is opened after, so that its files belong to the user dmarcd
	// runs as.
	sec, err := readSecrets(cfg, log)
	if err == nil {
		err = giveStateDir(cfg)
	}
	if err == nil {
		err = switchUser(cfg)
	}
	if err != nil {
		closeAll(listeners)
		return err
	}
	rep, err := openReporting(cfg, sec, d.Evaluator, resolver, opts, log)
	if err != nil {
		closeAll(listeners)
		return err
	}
	rep.mailboxes = newMailboxIngester(rep.db, cfg.Received.QueueSize, log)
	d.Reports = rep.mailboxes
	sinks := fanout{rep.writer}
	if opts.Sink != nil {
		sinks = append(sinks, opts.Sink)
	}
	if history != nil {
		sinks = append(sinks, history)
	}
	d.Failures = rep.failures(cfg)
	srv := milter.New(mcfg, d, sinks, log)
	warnTrust(log, mcfg)
	if err := web.start(srv, resolver, rep); err != nil {
		closeAll(listeners)
		_ = rep.close(context.Background())
		return fmt.Errorf("HTTP listener: %w", err)
	}
	if opts.HTTPReady != nil && web != nil {
		opts.HTTPReady(web.Addrs())
	}
	// shutdown drains the milter, then writes the rows still queued (a
	// SIGTERM loses none) and closes the store.
	shutdown := func(why string) error {
		err := stop(srv, cfg, log, why)
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if werr := web.close(wctx); werr != nil {
			log.Warn("closing the HTTP listener", "error", werr)
		}
		wcancel()
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout(cfg))
		defer cancel()
		if cerr := rep.close(ctx); cerr != nil {
			log.Error("closing the report store", "error", cerr)
			err = errors.Join(err, cerr)
		}
		return err
	}

	errs := make(chan error, len(listeners))
	var addrs []net.Addr
	for i, ln := range listeners {
		addrs = append(addrs, ln.Addr())
		mode := listenerMode(cfg.Listeners[i].Mode)
		log.Info("listening", "address", cfg.Listeners[i].Address.String(), "mode", mode.String(), "spec", cfg.Spec.String())
		go func() { errs <- srv.Serve(ln, mode) }()
	}
	defer removeSockets(cfg)
	if opts.Ready != nil {
		opts.Ready(addrs)
	}
	_ = notify("READY=1\nSTATUS=serving")

	for {
		select {
		case <-ctx.Done():
			return shutdown("context ended")
		case err := <-errs:
			_ = shutdown("listener failed")
			return fmt.Errorf("serve: %w", err)
		case sig := <-signals:
			if sig != syscall.SIGHUP {
				return shutdown(sig.String())
			}
			cfg = reload(opts, cfg, srv, rep, resolver, log)
		}
	}
}

// reload re-reads the configuration. A bad file (or an unreadable DKIM key)
// leaves the running one in place; listener, DNS, history, user, log and
// store changes need a restart and say so.
func reload(opts Options, old *config.Config, srv *milter.Server, rep *reporting, resolver *dnscache.Resolver, log *slog.Logger) *config.Config {
	_ = notify("RELOADING=1")
	defer notify("READY=1")
	cfg, warnings, err := Load(opts)
	var mcfg *milter.Config
	var d milter.Deps
	if err == nil {
		mcfg, err = milterConfig(cfg)
	}
	if err == nil {
		d, err = deps(cfg, resolver)
		d.Reports = rep.mailboxes
	}
	if err == nil {
		// The report configuration goes first: it reads key files, which
		// may fail, and then nothing must have changed.
		err = rep.reload(old, cfg, d.Evaluator)
		d.Failures = rep.failures(cfg)
	}
	if err != nil {
		log.Error("reload failed; keeping the running configuration", "error", err)
		return old
	}
	srv.Reload(mcfg, d)
	logWarnings(log, warnings)
	warnTrust(log, mcfg)
	if fmt.Sprint(cfg.Listeners, cfg.DNS, cfg.HistoryFile, cfg.User, cfg.Log) != fmt.Sprint(old.Listeners, old.DNS, old.HistoryFile, old.User, old.Log) {
		log.Warn("listener, DNS, history file, user and log changes take effect at the next restart")
	}
	log.Info("configuration reloaded", "spec", cfg.Spec.String())
	return cfg
}

// stop drains the sessions in progress within shutdown_timeout.
func stop(srv *milter.Server, cfg *config.Config, log *slog.Logger, why string) error {
	_ = notify("STOPPING=1")
	log.Info("stopping", "reason", why)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Milter.ShutdownTimeout.Duration())
	defer cancel()
	err := srv.Shutdown(ctx)
	log.Info("stopped", "messages", srv.Stats().Messages)
	return err
}

func openListeners(cfg *config.Config) ([]net.Listener, error) {
	owner, group := cfg.User, ""
	if u, g, ok := cutUser(cfg.User); ok {
		owner, group = u, g
	}
	var out []net.Listener
	for _, l := range cfg.Listeners {
		perms := SocketPerms{Owner: l.SocketOwner, Group: l.SocketGroup, Mode: fs.FileMode(l.SocketMode)}
		// A socket without an owner of its own goes to the user dmarcd
		// runs as, so that it can still remove it at exit.
		if perms.Owner == "" {
			perms.Owner = owner
		}
		if perms.Group == "" {
			perms.Group = group
		}
		ln, err := Listen(l.Address.Network(), l.Address.Address(), perms)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("listen %s: %w", l.Address, err)
		}
		out = append(out, ln)
	}
	return out, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func removeSockets(cfg *config.Config) {
	for _, l := range cfg.Listeners {
		if l.Address.IsUnix() {
			os.Remove(l.Address.Path())
		}
	}
}

// warnTrust says at start-up when headers with our own authserv-id are
// read: that is OpenDMARC's arrangement, safe only when the upstream
// filter removes forged ones.
func warnTrust(log *slog.Logger, c *milter.Config) {
	if len(c.TrustedAuthServIDs) == 0 {
		log.Warn("trusted_authserv_ids is empty: Authentication-Results carrying our own authserv-id are trusted, as OpenDMARC does; " +
			"give upstream filters their own authserv-id and list it, or make them remove forged headers (OpenDKIM: RemoveARFrom)")
	}
}

func logWarnings(log *slog.Logger, ws []config.Warning) {
	for _, w := range ws {
		log.Warn("configuration", "warning", w.String())
	}
}

// Offline builds the milter as Run would, without listeners, for
// evaluating messages from files (dmarcd test). Rows stay in memory.
func Offline(opts Options) (*milter.Server, error) {
	cfg, _, err := Load(opts)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(opts.Stderr, cfg)
	if err != nil {
		return nil, err
	}
	resolver, err := dnscache.New(ResolverConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("DNS resolver: %w", err)
	}
	mcfg, err := milterConfig(cfg)
	if err != nil {
		return nil, err
	}
	d, err := deps(cfg, resolver)
	if err != nil {
		return nil, err
	}
	return milter.New(mcfg, d, &report.MemorySink{}, log), nil
}
