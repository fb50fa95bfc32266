package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/web"
	"github.com/dmarcd/dmarcd/milter"
	"github.com/dmarcd/dmarcd/report/received"
)

// webListener is the [http] side of a daemon: the dashboard, the JSON
// API, /metrics and /healthz (internal/web). Run opens it with openWeb
// before giving up root, starts it once the milter and the store exist,
// and closes it when it stops. A nil *webListener, [http] being off, does
// nothing.
type webListener struct {
	cfg      config.HTTP
	received config.Received
	password string
	lns      []net.Listener
	log      *slog.Logger

	srv  *web.Server
	done chan struct{}
}

// openWeb reads the password file and opens the listeners of h: the
// steps that may need root (a file only root reads, a port below 1024).
// rc says how the dashboard looks up the names of source addresses. It
// returns nil when h is off.
func openWeb(h config.HTTP, rc config.Received, log *slog.Logger) (*webListener, error) {
	if !h.Enabled() {
		return nil, nil
	}
	w := &webListener{cfg: h, received: rc, log: log}
	var err error
	if w.password, err = config.ReadHTTPPassword(&h); err != nil {
		return nil, err
	}
	if h.PasswordFile != "" {
		if fi, err := os.Stat(h.PasswordFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("http.password_file can be read by others than its owner; chmod 600 it", "file", h.PasswordFile, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
		}
	}
	addrs := h.ListenAddrs()
	for i, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			// "localhost" is two addresses; a host without IPv6 has
			// only the first.
			if i > 0 && len(w.lns) > 0 {
				log.Warn("HTTP listener: only on "+w.lns[0].Addr().String(), "address", a, "error", err)
				continue
			}
			w.closeListeners()
			return nil, fmt.Errorf("http.listen %s: %w", h.Listen, err)
		}
		w.lns = append(w.lns, ln)
	}
	return w, nil
}

// start serves the dashboard and the metrics of the daemon's parts.
// Serving errors are logged: the milter goes on without its dashboard.
func (w *webListener) start(srv *milter.Server, resolver *dnscache.Resolver, rep *reporting) error {
	if w == nil {
		return nil
	}
	stats := web.Stats{Milter: milterStats(srv)}
	opts := web.Options{
		User: w.cfg.User, Password: w.password, PProf: w.cfg.PProf,
		ReadTimeout: w.cfg.ReadTimeout.Duration(), WriteTimeout: w.cfg.WriteTimeout.Duration(),
		Version: Version, Logger: w.log,
	}
	svc := &received.Service{}
	if resolver != nil {
		stats.DNS = resolver.Stats
		if rc := w.received; rc.ResolveNames {
			svc.Names = &received.Names{Resolver: resolver, TTL: rc.NameCacheTTL.Duration(), Timeout: rc.NameTimeout.Duration(),
				Concurrency: rc.NameConcurrency, MaxEntries: rc.NameCacheSize}
		}
	}
	if rep != nil {
		stats.Writer = rep.writer.Stats
		stats.Scheduler = rep.sched.Stats
		stats.FailureReports = rep.failureStats
		svc.Store = rep.db
		opts.Source = web.ReceivedSource{Service: svc}
		opts.Health = func(ctx context.Context) (string, error) { return "store", rep.db.Check(ctx) }
	}
	opts.Stats = stats
	var err error
	if w.srv, err = web.New(opts); err != nil {
		return err
	}
	w.done = make(chan struct{})
	var addrs []string
	for _, ln := range w.lns {
		addrs = append(addrs, ln.Addr().String())
	}
	w.log.Info("HTTP listening", "address", strings.Join(addrs, " "), "auth", w.cfg.User != "", "pprof", w.cfg.PProf)
	if !w.cfg.Loopback() {
		w.log.Warn("the HTTP listener can be reached from other hosts, and basic authentication sends the password in the clear: " +
			"keep it on a trusted network or put a TLS proxy in front")
	}
	errs := make(chan error, len(w.lns))
	for _, ln := range w.lns {
		go func() { errs <- w.srv.Serve(ln) }()
	}
	go func() {
		defer close(w.done)
		for range w.lns {
			if err := <-errs; err != nil {
				w.log.Error("HTTP listener stopped; the milter goes on", "error", err)
			}
		}
	}()
	return nil
}

// Addrs returns the addresses the listener serves on.
func (w *webListener) Addrs() []net.Addr {
	if w == nil {
		return nil
	}
	var out []net.Addr
	for _, ln := range w.lns {
		out = append(out, ln.Addr())
	}
	return out
}

// close stops serving: requests in progress may finish until ctx ends.
func (w *webListener) close(ctx context.Context) error {
	if w == nil {
		return nil
	}
	if w.srv == nil { // opened, never started
		w.closeListeners()
		return nil
	}
	err := w.srv.Shutdown(ctx)
	select {
	case <-w.done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

func (w *webListener) closeListeners() {
	for _, ln := range w.lns {
		ln.Close()
	}
}

// milterStats reads the milter's counters for /metrics.
func milterStats(srv *milter.Server) func() web.MilterStats {
	return func() web.MilterStats {
		st := srv.Stats()
		ra := make(map[web.ResultAction]int64, len(st.ByResultAction))
		for k, n := range st.ByResultAction {
			ra[web.ResultAction{Result: k.Result, Action: k.Action}] = n
		}
		return web.MilterStats{
			Messages:       st.Messages,
			Skipped:        st.Skipped,
			ByResult:       st.ByResult,
			ByAction:       st.ByAction,
			ByResultAction: ra,
			Sessions:       &web.Sessions{Total: st.Sessions, Active: st.Active},
			Panics:         st.Panics,
		}
	}
}
