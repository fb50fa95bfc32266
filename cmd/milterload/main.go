// Command milterload is dmarcd's load driver: a go-milter client that runs
// concurrent milter sessions against a milter, and the benchmark and soak
// built on it (make bench, make soak). See internal/loadtest.
//
//	milterload bench -dmarcd bin/dmarcd [-opendmarc /usr/sbin/opendmarc]
//	milterload soak  -dmarcd bin/dmarcd [-duration 5m -warmup 1m]
//	milterload drive -target unix:/run/dmarcd/dmarcd.sock [-c 16 -n 10000 -d 10s]
//	milterload ab    -a bin/dmarcd.old -b bin/dmarcd [-rounds 5 -d 8s -transport unix]
//	milterload dns   -listen 127.0.0.1:5353 [-domains 10000]
//	milterload null  -unix PATH -tcp HOST:PORT        (the null milter)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dmarcd/dmarcd/internal/loadtest"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "bench":
		err = runBench(os.Args[2:])
	case "soak":
		err = runSoak(os.Args[2:])
	case "drive":
		err = runDrive(os.Args[2:])
	case "ab":
		err = runAB(os.Args[2:])
	case "dns":
		err = runDNS(os.Args[2:])
	case "null":
		err = runNull(os.Args[2:])
	case "help", "-h", "--help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "milterload: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "milterload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: milterload <command> [flags]

commands:
  bench   the null milter, dmarcd and OpenDMARC back to back, with ratios (make bench)
  soak    dmarcd under steady load, watching goroutines and heap (make soak)
  drive   load one milter and report msg/s and latency
  ab      two dmarcd binaries (before and after a change) measured in alternation
  dns     serve the corpus's DNS zone
  null    serve the null milter

Run "milterload <command> -h" for its flags.
`)
}

func interrupted() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o loadtest.BenchOptions
	fs.StringVar(&o.Dmarcd, "dmarcd", "bin/dmarcd", "the dmarcd binary to measure")
	fs.StringVar(&o.OpenDMARC, "opendmarc", "/usr/sbin/opendmarc", `the opendmarc binary to compare with; "" leaves it out`)
	fs.IntVar(&o.Domains, "domains", 10000, "From domains of the measured runs")
	fs.IntVar(&o.RSSDomains, "rss-domains", 100000, "distinct From domains for dmarcd's memory measurement; 0 skips it")
	fs.IntVar(&o.Concurrency, "c", 16, "concurrent sessions")
	fs.IntVar(&o.Rounds, "rounds", 5, "rounds: each server is measured this many times on each transport, in turns; the table gives medians")
	fs.DurationVar(&o.Duration, "d", 10*time.Second, "bound of each measured run in time")
	fs.IntVar(&o.Count, "n", 0, "bound of each measured run in messages; 0 = none")
	fs.IntVar(&o.Warmup, "warmup", 500, "messages sent before each measured run")
	fs.Float64Var(&o.MaxOther, "max-other", 0.25, "a run during which the rest of the machine used more CPUs than this is done again (twice at most); 0: never")
	fs.IntVar(&o.BodySize, "body", 2048, "body size in bytes")
	transports := fs.String("transports", "unix,tcp", "transports to measure, in order")
	tcp := fs.String("tcp", "127.0.0.1:8893", "TCP address each milter listens on in turn (inside the namespace)")
	noNS := fs.Bool("no-netns", false, "do not use a network namespace (OpenDMARC is then left out)")
	fs.BoolVar(&o.Replies, "replies", true, "also run the null milter asking for a reply to every step (what protocol 6's no-reply options save)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Transports = strings.Split(*transports, ",")
	ns := os.Getenv(loadtest.NamespaceEnv)
	if ns == "" && !*noNS && o.OpenDMARC != "" {
		if why := loadtest.CanUseNamespace(); why != "" {
			fmt.Fprintf(os.Stderr, "milterload: no network namespace (%s): OpenDMARC is left out, DNS on a random port\n", why)
			o.OpenDMARC = ""
		} else {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			return loadtest.RunInNamespace(append([]string{self, "bench"}, args...))
		}
	}
	if o.OpenDMARC != "" {
		if _, err := os.Stat(o.OpenDMARC); err != nil {
			fmt.Fprintf(os.Stderr, "milterload: %v: OpenDMARC is left out\n", err)
			o.OpenDMARC = ""
		}
	}
	if ns != "" {
		o.Namespace, o.DNSAddr, o.TCPAddr = ns, "127.0.0.1:53", *tcp
	} else {
		o.OpenDMARC, o.DNSAddr = "", "127.0.0.1:0"
		port, err := freePort()
		if err != nil {
			return err
		}
		o.TCPAddr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	var err error
	if o.Dmarcd, err = filepath.Abs(o.Dmarcd); err != nil {
		return err
	}
	if o.Self, err = os.Executable(); err != nil {
		return err
	}
	if o.Dir, err = os.MkdirTemp("", "milterload-"); err != nil {
		return err
	}
	defer os.RemoveAll(o.Dir)
	o.Log = os.Stdout
	ctx, cancel := interrupted()
	defer cancel()
	rep, err := loadtest.Bench(ctx, o)
	if err != nil {
		return err
	}
	rep.Print(os.Stdout)
	return nil
}

func runSoak(args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var o loadtest.SoakOptions
	fs.StringVar(&o.Dmarcd, "dmarcd", "bin/dmarcd", "the dmarcd binary")
	fs.DurationVar(&o.Warmup, "warmup", time.Minute, "load before the baseline sample")
	fs.DurationVar(&o.Duration, "duration", 5*time.Minute, "load after the baseline sample")
	fs.DurationVar(&o.Every, "every", 15*time.Second, "sampling interval")
	fs.IntVar(&o.Concurrency, "c", 16, "concurrent sessions")
	fs.IntVar(&o.Domains, "domains", 10000, "From domains")
	fs.DurationVar(&o.TTL, "ttl", time.Minute, "TTL of the DNS answers, so that cache entries expire and are fetched again during the soak")
	fs.StringVar(&o.Profiles, "profiles", "", "directory for the heap profiles after warm-up and at the end (for go tool pprof -base)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Dmarcd, err = filepath.Abs(o.Dmarcd); err != nil {
		return err
	}
	if o.Dir, err = os.MkdirTemp("", "milterload-soak-"); err != nil {
		return err
	}
	defer os.RemoveAll(o.Dir)
	o.Log = os.Stdout
	ctx, cancel := interrupted()
	defer cancel()
	rep, err := loadtest.Soak(ctx, o)
	if rep != nil {
		rep.Print(os.Stdout)
	}
	if err == nil && rep != nil && !rep.Pass() {
		return errors.New("soak: growth after warm-up (see above)")
	}
	return err
}

func runAB(args []string) error {
	fs := flag.NewFlagSet("ab", flag.ContinueOnError)
	var o loadtest.CompareOptions
	fs.StringVar(&o.A, "a", "", "dmarcd binary A (before)")
	fs.StringVar(&o.B, "b", "bin/dmarcd", "dmarcd binary B (after)")
	fs.StringVar(&o.Transport, "transport", "unix", "unix or tcp")
	fs.IntVar(&o.Rounds, "rounds", 5, "rounds of A and B")
	fs.DurationVar(&o.Duration, "d", 8*time.Second, "length of each run")
	fs.IntVar(&o.Concurrency, "c", 16, "concurrent sessions")
	fs.IntVar(&o.Domains, "domains", 10000, "From domains, all cached before the runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.A == "" {
		return errors.New("ab: give -a")
	}
	var err error
	if o.Dir, err = os.MkdirTemp("", "milterload-ab-"); err != nil {
		return err
	}
	defer os.RemoveAll(o.Dir)
	o.Log = os.Stdout
	ctx, cancel := interrupted()
	defer cancel()
	runs, err := loadtest.Compare(ctx, o)
	if err != nil {
		return err
	}
	ra, pa, ca := loadtest.CompareSummary(runs, "A")
	rb, pb, cb := loadtest.CompareSummary(runs, "B")
	fmt.Printf("\nmedians over %d rounds (%s):\n  A %s: %6.0f msg/s  p99 %6.2f ms  CPU %.3f ms/msg\n  B %s: %6.0f msg/s  p99 %6.2f ms  CPU %.3f ms/msg\n  B/A: msg/s %.2f  p99 %.2f  CPU %.2f\n",
		o.Rounds, o.Transport, o.A, ra, float64(pa)/1e6, float64(ca)/1e6, o.B, rb, float64(pb)/1e6, float64(cb)/1e6,
		rb/ra, float64(pb)/float64(pa), float64(cb)/float64(ca))
	return nil
}

func runDrive(args []string) error {
	fs := flag.NewFlagSet("drive", flag.ContinueOnError)
	target := fs.String("target", "", "milter socket: unix:/PATH or inet:PORT@HOST (also host:port)")
	c := fs.Int("c", 16, "concurrent sessions")
	n := fs.Int("n", 10000, "messages; 0 = until -d")
	d := fs.Duration("d", 0, "duration; 0 = until -n")
	first := fs.Int("first", 0, "corpus index of the first message")
	domains := fs.Int("domains", 10000, "From domains of the corpus")
	body := fs.Int("body", 2048, "body size in bytes")
	slow := fs.Duration("slow", 0, "print the start time and latency of every message slower than this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := parseTarget(*target)
	if err != nil {
		return err
	}
	if *n == 0 && *d == 0 {
		return errors.New("drive: give -n or -d")
	}
	ctx, cancel := interrupted()
	defer cancel()
	o := loadtest.DriveOptions{Target: t, Corpus: loadtest.NewCorpus(*domains, time.Hour, *body),
		Concurrency: *c, Count: *n, Duration: *d, First: *first}
	if *slow > 0 {
		var mu sync.Mutex
		begin := time.Now()
		o.Observe = func(start time.Time, took time.Duration) {
			if took >= *slow {
				mu.Lock()
				fmt.Printf("slow: at %9.3fs took %v\n", start.Sub(begin).Seconds(), took.Round(time.Microsecond))
				mu.Unlock()
			}
		}
	}
	r := loadtest.Drive(ctx, o)
	fmt.Printf("%s: %d messages in %s: %.0f msg/s; latency p50 %s p99 %s max %s; errors %d\n",
		t, r.Messages, r.Elapsed.Round(time.Millisecond), r.Rate(),
		r.Percentile(0.5).Round(time.Microsecond), r.Percentile(0.99).Round(time.Microsecond), r.Max().Round(time.Microsecond), r.Errors)
	fmt.Printf("no-reply options negotiated: %s\nactions: %v, headers inserted: %d\n", strings.Join(r.NoReply, " "), r.Actions, r.Inserted)
	if r.Errors > 0 {
		return fmt.Errorf("%d errors, first: %s", r.Errors, r.FirstError)
	}
	return nil
}

// parseTarget reads unix:/PATH, local:/PATH, inet:PORT@HOST or HOST:PORT.
func parseTarget(s string) (loadtest.Target, error) {
	switch {
	case strings.HasPrefix(s, "unix:"), strings.HasPrefix(s, "local:"):
		_, path, _ := strings.Cut(s, ":")
		return loadtest.Target{Network: "unix", Address: path}, nil
	case strings.HasPrefix(s, "/"):
		return loadtest.Target{Network: "unix", Address: s}, nil
	case strings.HasPrefix(s, "inet:"):
		port, host, ok := strings.Cut(strings.TrimPrefix(s, "inet:"), "@")
		if !ok {
			host = "127.0.0.1"
		}
		return loadtest.Target{Network: "tcp", Address: net.JoinHostPort(host, port)}, nil
	case strings.Contains(s, ":"):
		return loadtest.Target{Network: "tcp", Address: s}, nil
	}
	return loadtest.Target{}, fmt.Errorf("target %q: want unix:/PATH or inet:PORT@HOST", s)
}

func runDNS(args []string) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:5353", "UDP and TCP address")
	domains := fs.Int("domains", 100000, "DMARC domains in the zone")
	ttl := fs.Duration("ttl", time.Hour, "TTL of every answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := loadtest.StartDNS(*listen, loadtest.NewCorpus(*domains, *ttl, 0))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Printf("serving _dmarc.d000000.%s to _dmarc.d%06d.%s on %s\n", loadtest.Suffix, *domains-1, loadtest.Suffix, s.Addr())
	ctx, cancel := interrupted()
	defer cancel()
	<-ctx.Done()
	fmt.Printf("%d queries answered\n", s.Queries())
	return nil
}

func runNull(args []string) error {
	fs := flag.NewFlagSet("null", flag.ContinueOnError)
	unix := fs.String("unix", "", "unix socket path")
	tcp := fs.String("tcp", "", "TCP address host:port")
	replies := fs.Bool("replies", false, "ask for a reply to every step (no protocol 6 no-reply options)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *unix == "" && *tcp == "" {
		return errors.New("null: give -unix or -tcp")
	}
	srv := loadtest.NewNullServer(*replies)
	var lns []net.Listener
	if *unix != "" {
		_ = os.Remove(*unix)
		ln, err := net.Listen("unix", *unix)
		if err != nil {
			return err
		}
		defer os.Remove(*unix)
		lns = append(lns, ln)
	}
	if *tcp != "" {
		ln, err := net.Listen("tcp", *tcp)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	errs := make(chan error, len(lns))
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() { errs <- srv.Serve(ln) })
	}
	ctx, cancel := interrupted()
	defer cancel()
	select {
	case <-ctx.Done():
	case err := <-errs:
		return err
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
