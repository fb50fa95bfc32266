package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// SoakOptions configure Soak.
type SoakOptions struct {
	Dmarcd      string
	Dir         string
	Warmup      time.Duration // load before the baseline
	Duration    time.Duration // load after it
	Every       time.Duration // sampling interval under load
	Concurrency int
	Domains     int
	TTL         time.Duration // of the DNS answers: short, so that entries expire and come back
	// Profiles, if not "", is a directory where the heap profiles of the
	// idle samples after warm-up and at the end are written, for
	// go tool pprof -base heap-baseline.pb.gz heap-final.pb.gz.
	Profiles string
	Log      io.Writer
}

// Sample is dmarcd's state at one moment, read through its HTTP listener
// with [http] pprof on: the goroutine count, the heap after a forced collection, and
// the resident set from /proc.
type Sample struct {
	At         time.Duration // since the start of the soak
	Idle       bool          // taken with no session in flight
	Messages   int           // sent so far
	Goroutines int
	HeapAlloc  uint64 // live heap after a forced GC
	HeapSys    uint64
	GoSys      uint64 // all the Go runtime holds from the OS, less what it released
	RSS        int64
}

// SoakReport is what Soak saw.
type SoakReport struct {
	Options  SoakOptions
	Start    time.Time
	Machine  string
	Samples  []Sample
	Baseline Sample // idle, after warm-up
	Final    Sample // idle, at the end
	Messages int
	Errors   int
	Elapsed  time.Duration
	Queries  int64
	Rate     float64
	// FirstError is the first session error; Warnings are dmarcd's log
	// lines at warning level or above (the first few).
	FirstError string
	Warnings   []string
}

// Limits of the verdict: after warm-up, with no message in flight, the
// goroutines must be back to the baseline's count (give or take the
// runtime's own), and the live heap within 10% (and 4 MiB) of it.
const (
	goroutineSlack = 4
	heapSlackFrac  = 0.10
	heapSlackBytes = 4 << 20
)

// GoroutinesOK and HeapOK are the two halves of the verdict.
func (r *SoakReport) GoroutinesOK() bool {
	return r.Final.Goroutines <= r.Baseline.Goroutines+goroutineSlack
}

func (r *SoakReport) HeapOK() bool {
	limit := max(uint64(float64(r.Baseline.HeapAlloc)*(1+heapSlackFrac)), r.Baseline.HeapAlloc+heapSlackBytes)
	return r.Final.HeapAlloc <= limit
}

// Pass is both. Session errors are reported but do not fail the soak,
// which is about growth: on a loaded machine the library's fixed 1 s wait
// for the MTA's first packet can cut a session the driver was too slow to
// start (see Warnings).
func (r *SoakReport) Pass() bool { return r.GoroutinesOK() && r.HeapOK() }

// Soak runs dmarcd (with [http] pprof on a loopback port) under a steady load
// over a unix socket: Warmup of load, an idle baseline sample, Duration of
// load sampled every Every, and an idle final sample.
func Soak(ctx context.Context, o SoakOptions) (*SoakReport, error) {
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Domains == 0 {
		o.Domains = 10000
	}
	if o.Every == 0 {
		o.Every = 15 * time.Second
	}
	if o.TTL == 0 {
		o.TTL = time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }
	rep := &SoakReport{Options: o, Start: time.Now(), Machine: Machine()}
	corpus := NewCorpus(o.Domains, o.TTL, 2048)
	dns, err := StartDNS("127.0.0.1:0", corpus)
	if err != nil {
		return nil, err
	}
	defer dns.Close()
	tcp, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := StartDmarcd(o.Dmarcd, o.Dir, dns.Addr(), tcp, 4*o.Domains, debugAddr)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	debug := &debugClient{base: "http://" + debugAddr, pid: p.PID()}
	if _, err := debug.sample(); err != nil {
		return nil, fmt.Errorf("dmarcd's HTTP listener: %w", err)
	}
	logf("soak: dmarcd pid %d, debug listener %s, DNS %s (TTL %s), %d sessions over %s, %d From domains",
		p.PID(), debugAddr, dns.Addr(), o.TTL, o.Concurrency, p.Targets["unix"], o.Domains)

	sent := 0
	var progress atomic.Int64
	load := func(d time.Duration, every time.Duration, onTick func()) DriveResult {
		lctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var wg sync.WaitGroup
		if every > 0 {
			wg.Go(func() {
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					select {
					case <-lctx.Done():
						return
					case <-t.C:
						onTick()
					}
				}
			})
		}
		r := Drive(lctx, DriveOptions{Target: p.Targets["unix"], Corpus: corpus, Concurrency: o.Concurrency, First: sent, Progress: &progress})
		wg.Wait()
		sent += r.Messages + r.Errors
		rep.Messages += r.Messages
		rep.Errors += r.Errors
		if r.Errors > 0 {
			logf("  errors: %d, first: %s", r.Errors, r.FirstError)
			if rep.FirstError == "" {
				rep.FirstError = r.FirstError
			}
		}
		return r
	}
	take := func(idle bool, profile string) Sample {
		if idle {
			time.Sleep(2 * time.Second) // the last connections close, timers fire
		}
		s, err := debug.sample()
		if err != nil {
			logf("  sample: %v", err)
		}
		if profile != "" && o.Profiles != "" {
			if err := debug.save("/debug/pprof/heap", filepath.Join(o.Profiles, profile)); err != nil {
				logf("  %s: %v", profile, err)
			}
		}
		s.At, s.Idle, s.Messages = time.Since(rep.Start).Round(time.Second), idle, int(progress.Load())
		rep.Samples = append(rep.Samples, s)
		logf("  %6s %-5s %8d msgs  goroutines %4d  heap %7s MiB  heap sys %7s MiB  RSS %7s MiB",
			s.At, map[bool]string{true: "idle", false: "load"}[idle], s.Messages, s.Goroutines,
			MiB(int64(s.HeapAlloc)), MiB(int64(s.HeapSys)), MiB(s.RSS))
		return s
	}
	take(true, "")
	logf("warm-up, %s:", o.Warmup)
	load(o.Warmup, o.Every, func() { take(false, "") })
	rep.Baseline = take(true, "heap-baseline.pb.gz")
	logf("soak, %s:", o.Duration)
	q0 := dns.Queries()
	t0 := time.Now()
	r := load(o.Duration, o.Every, func() { take(false, "") })
	rep.Elapsed, rep.Queries, rep.Rate = time.Since(t0), dns.Queries()-q0, r.Rate()
	rep.Final = take(true, "heap-final.pb.gz")
	rep.Warnings = warnings(p.LogPath, 10)
	if !p.Alive() {
		return rep, fmt.Errorf("dmarcd died; its output:\n%s", tail(p.LogPath))
	}
	return rep, nil
}

// Print writes the samples and the verdict.
func (r *SoakReport) Print(w io.Writer) {
	fmt.Fprintf(w, "\nsoak, %s, %s\n", r.Start.Format("2006-01-02 15:04 MST"), r.Machine)
	fmt.Fprintf(w, "%d messages (%d errors); after warm-up %.0f msg/s over %s, %d DNS queries (TTL %s)\n\n",
		r.Messages, r.Errors, r.Rate, r.Elapsed.Round(time.Second), r.Queries, r.Options.TTL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "at\tstate\tmessages\tgoroutines\theap MiB\theap sys MiB\tRSS MiB\t")
	for _, s := range r.Samples {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", s.At, map[bool]string{true: "idle", false: "load"}[s.Idle],
			s.Messages, s.Goroutines, MiB(int64(s.HeapAlloc)), MiB(int64(s.HeapSys)), MiB(s.RSS))
	}
	tw.Flush()
	v := func(ok bool) string { return map[bool]string{true: "PASS", false: "MISS"}[ok] }
	fmt.Fprintf(w, "\n%s goroutines idle: %d after warm-up, %d at the end (limit +%d)\n", v(r.GoroutinesOK()),
		r.Baseline.Goroutines, r.Final.Goroutines, goroutineSlack)
	fmt.Fprintf(w, "%s live heap idle: %s MiB after warm-up, %s MiB at the end (limit +10%% or +4 MiB)\n", v(r.HeapOK()),
		MiB(int64(r.Baseline.HeapAlloc)), MiB(int64(r.Final.HeapAlloc)))
	fmt.Fprintf(w, "    RSS idle: %s MiB after warm-up, %s MiB at the end\n", MiB(r.Baseline.RSS), MiB(r.Final.RSS))
	if r.Errors > 0 {
		fmt.Fprintf(w, "note: %d sessions failed; the first: %s\n", r.Errors, r.FirstError)
	}
	for _, l := range r.Warnings {
		fmt.Fprintf(w, "dmarcd: %s\n", l)
	}
}

// debugClient reads dmarcd's HTTP listener.
type debugClient struct {
	base string
	pid  int
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// sample forces a collection (the heap profile with gc=1), then reads the
// goroutine count from the goroutine profile and the heap from expvar's
// memstats.
func (d *debugClient) sample() (Sample, error) {
	var s Sample
	if err := d.get("/debug/pprof/heap?gc=1", func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }); err != nil {
		return s, err
	}
	err := d.get("/debug/pprof/goroutine?debug=1", func(r io.Reader) error {
		line, _ := bufio.NewReader(r).ReadString('\n')
		// "goroutine profile: total 12"
		f := strings.Fields(line)
		if len(f) < 4 {
			return fmt.Errorf("goroutine profile: unexpected first line %q", line)
		}
		n, err := strconv.Atoi(f[len(f)-1])
		s.Goroutines = n
		return err
	})
	if err != nil {
		return s, err
	}
	err = d.get("/debug/vars", func(r io.Reader) error {
		var v struct {
			MemStats struct {
				HeapAlloc    uint64
				HeapSys      uint64
				Sys          uint64
				HeapReleased uint64
			} `json:"memstats"`
		}
		if err := json.NewDecoder(r).Decode(&v); err != nil {
			return err
		}
		s.HeapAlloc, s.HeapSys = v.MemStats.HeapAlloc, v.MemStats.HeapSys
		s.GoSys = v.MemStats.Sys - v.MemStats.HeapReleased
		return nil
	})
	if m, err := MemoryOf(d.pid); err == nil {
		s.RSS = m.RSS
	}
	return s, err
}

// save writes what path serves to file.
func (d *debugClient) save(path, file string) error {
	return d.get(path, func(r io.Reader) error {
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

func (d *debugClient) get(path string, read func(io.Reader) error) error {
	resp, err := httpClient.Get(d.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return read(resp.Body)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
