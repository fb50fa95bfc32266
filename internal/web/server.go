package web

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"expvar"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Server. Every field is optional.
type Options struct {
	// Source holds the received aggregate reports the dashboard and the
	// API show; nil shows none.
	Source Source
	// Stats feed /metrics.
	Stats Stats
	// Resolver looks up the names of source addresses the Source gave
	// none for; nil shows no names.
	Resolver PTRResolver
	// Health reports whether dmarcd is healthy, for /healthz: nil when
	// it is, else the name of the part that is not and why. Nil always
	// answers healthy.
	Health func(ctx context.Context) (part string, err error)

	// User and Password, when User is not "", protect every path but
	// /healthz with HTTP basic authentication.
	User, Password string
	// PProf serves net/http/pprof under /debug/pprof/ and expvar at
	// /debug/vars.
	PProf bool

	// ReadTimeout and WriteTimeout bound reading a request and writing a
	// response; zero means 10 and 60 seconds.
	ReadTimeout, WriteTimeout time.Duration

	// Version is dmarcd's version, for the page footer and
	// dmarcd_build_info.
	Version string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock that decides which days "the last N days" are;
	// nil means time.Now.
	Now func() time.Time
}

// PTRResolver looks up the names of an address: a *dnscache.Resolver.
type PTRResolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Server is dmarcd's HTTP listener. See the package documentation for
// what it serves.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler

	userHash, passHash [sha256.Size]byte

	mu     sync.Mutex
	srv    []*http.Server
	closed bool // by Shutdown: Serve returns at once
}

// New returns a Server. It fails only when the metrics cannot be
// registered (a bug).
func New(opts Options) (*Server, error) {
	s := &Server{
		opts: opts,
		log:  cmp.Or(opts.Logger, slog.Default()),
		now:  opts.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.opts.ReadTimeout = cmp.Or(opts.ReadTimeout, 10*time.Second)
	s.opts.WriteTimeout = cmp.Or(opts.WriteTimeout, 60*time.Second)
	s.userHash = sha256.Sum256([]byte(opts.User))
	s.passHash = sha256.Sum256([]byte(opts.Password))
	reg, err := newRegistry(opts.Stats, opts.Source, cmp.Or(opts.Version, "dev"), s.log)
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.dashboard)
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /api/{$}", s.apiIndex)
	mux.HandleFunc("GET /api/domains", s.apiDomains)
	mux.HandleFunc("GET /api/summary", s.apiSummary)
	mux.HandleFunc("GET /api/sources", s.apiSources)
	mux.HandleFunc("GET /api/reporters", s.apiReporters)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slogPrinter{s.log},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          reg,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", s.healthz)
	if opts.PProf {
		publishExpvars()
		mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, allocs...
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/debug/vars", expvar.Handler())
	}
	s.handler = s.secure(mux)
	return s, nil
}

// Handler returns the Server's handler: every route, behind the
// authentication and the security headers.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until Shutdown, on any number of listeners at once.
// It returns nil after Shutdown, and at once when called after it.
func (s *Server) Serve(ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opts.ReadTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.srv = append(s.srv, srv)
	s.mu.Unlock()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in progress
// until ctx ends, then closes their connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	srvs := s.srv
	s.mu.Unlock()
	var errs []error
	for _, srv := range srvs {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err, srv.Close())
		}
	}
	return errors.Join(errs...)
}

// secure adds the security headers and, when configured, asks for the
// user and password: everywhere but /healthz, which load balancers and
// service managers probe without credentials and which tells nothing.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Nothing is fetched from elsewhere, and no script runs: the
		// dashboard is HTML, one stylesheet and inline SVG.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if s.opts.User != "" && r.URL.Path != "/healthz" && !s.authorized(r) {
			h.Set("WWW-Authenticate", `Basic realm="dmarcd", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorized checks the request's basic authentication in constant time:
// hashes of equal length are compared, both of them always.
func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	match := subtle.ConstantTimeCompare(u[:], s.userHash[:]) & subtle.ConstantTimeCompare(p[:], s.passHash[:])
	if ok && match == 1 {
		return true
	}
	if ok {
		s.log.Warn("HTTP authentication failed", "remote", r.RemoteAddr, "user", user, "path", r.URL.Path)
	}
	return false
}

// healthz answers 200 "ok", or 503 naming the part that is unhealthy
// (the reason goes to the log only: /healthz needs no password).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.opts.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if part, err := s.opts.Health(ctx); err != nil {
			s.log.Warn("health check failed", "part", part, "error", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("unhealthy: " + part + "\n"))
			return
		}
	}
	w.Write([]byte("ok\n"))
}

var expvarOnce sync.Once

// publishExpvars adds the goroutine count to /debug/vars (the soak test
// reads it there, with memstats), unless another part of the program
// published it already.
func publishExpvars() {
	expvarOnce.Do(func() {
		if expvar.Get("goroutines") == nil {
			expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
		}
	})
}

// slogPrinter is promhttp's error log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "error", v) }
