package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	Dmarcd    string // the dmarcd binary
	OpenDMARC string // the opendmarc binary; "" leaves OpenDMARC out
	Self      string // this program, which serves the null milter
	Dir       string // scratch directory
	DNSAddr   string // where the DNS server listens ("127.0.0.1:53" in the namespace)
	TCPAddr   string // the TCP milter address, the same for each server in turn

	Domains     int           // From domains of the measured runs (warm in dmarcd's cache)
	RSSDomains  int           // distinct From domains for the RSS measurement; 0 skips it
	Concurrency int           // sessions in flight
	Rounds      int           // measured runs of each server on each transport
	Duration    time.Duration // bound of each measured run
	Count       int           // bound of each measured run, in messages
	Warmup      int           // messages before each measured run
	BodySize    int
	Transports  []string // "unix", "tcp"
	// MaxOther is the most CPUs the rest of the machine may use during a
	// run before it is done again (twice at most); 0 never repeats.
	MaxOther float64
	// Replies adds a run of the null milter asking for a reply to every
	// step: what protocol 6's no-reply options save.
	Replies bool

	// Log receives progress lines.
	Log io.Writer
	// Namespace is the network namespace the run is in, for the report.
	Namespace string
}

// Run is one measured run of one server on one transport.
type Run struct {
	Server     string
	Round      int
	Result     DriveResult
	CPU        time.Duration // the server process's user+system time during the run
	Split      CPUSplit      // the machine's CPU time during the run, by whom
	Mem        Memory        // after the run
	Load       string        // /proc/loadavg before the run
	DNSQueries int64         // queries the DNS server answered during the run
}

// CPUPerMessage is the server's CPU time per message.
func (r Run) CPUPerMessage() time.Duration {
	if r.Result.Messages == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Result.Messages)
}

// BenchReport is everything Bench measured.
type BenchReport struct {
	Options BenchOptions
	Start   time.Time
	Machine string
	Runs    []Run
	// The RSS measurement: dmarcd's memory after RSSDomains distinct From
	// domains went through it, the DNS queries that took, and the queries
	// a second look at a sample of them took (0: they were all cached).
	RSS            Memory
	RSSGo          Sample // dmarcd's Go runtime then (live heap, what it holds)
	RSSMessages    int
	RSSQueries     int64
	RSSSample      int
	RSSSampleQuery int64
	Notes          []string
	// The machine's load average before and after.
	LoadStart, LoadEnd string
	// Repeated counts the runs done again because of other load.
	Repeated int
}

func (o *BenchOptions) defaults() {
	if o.Domains == 0 {
		o.Domains = 10000
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Rounds == 0 {
		o.Rounds = 1
	}
	if o.Duration == 0 && o.Count == 0 {
		o.Duration = 15 * time.Second
	}
	if o.BodySize == 0 {
		o.BodySize = 2048
	}
	if len(o.Transports) == 0 {
		o.Transports = []string{"unix", "tcp"}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Bench runs the null milter, dmarcd and OpenDMARC on each transport with
// the same corpus, DNS data and load, in Rounds rounds (the order of the
// servers turning from round to round, so that a disturbance of the
// shared machine does not fall on one server), then measures dmarcd's
// memory with RSSDomains From domains cached.
func Bench(ctx context.Context, o BenchOptions) (*BenchReport, error) {
	o.defaults()
	rep := &BenchReport{Options: o, Start: time.Now(), Machine: Machine(), LoadStart: LoadAvg()}
	defer func() { rep.LoadEnd = LoadAvg() }()
	zone := NewCorpus(max(o.Domains, o.RSSDomains), time.Hour, o.BodySize)
	corpus := NewCorpus(o.Domains, time.Hour, o.BodySize)
	dns, err := StartDNS(o.DNSAddr, zone)
	if err != nil {
		return nil, err
	}
	defer dns.Close()
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }
	logf("DNS server on %s with %d DMARC domains; %d sessions; %d rounds of runs of %s (or %d messages), each after %d messages of warm-up",
		dns.Addr(), zone.Domains, o.Concurrency, o.Rounds, o.Duration, o.Count, o.Warmup)

	drive := func(t Target, c *Corpus, count, first int, d time.Duration) DriveResult {
		return Drive(ctx, DriveOptions{Target: t, Corpus: c, Concurrency: o.Concurrency, Count: count, Duration: d, First: first})
	}
	var measureOnce func(round int, p *Process, t Target) (Run, error)
	// A run during which the rest of the machine kept more than
	// o.MaxOther CPUs busy is done again, twice at most: the machine is
	// shared, and a run that lost half a CPU to someone else measures
	// them, not the milter. The report counts the runs done again.
	measure := func(round int, p *Process, t Target) (Run, error) {
		for try := 1; ; try++ {
			run, err := measureOnce(round, p, t)
			if err != nil || o.MaxOther <= 0 || run.Split.OtherCores() <= o.MaxOther || try == 3 {
				return run, err
			}
			rep.Repeated++
			logf("    (the rest of the machine used %.2f CPUs during that run: again)", run.Split.OtherCores())
		}
	}
	measureOnce = func(round int, p *Process, t Target) (Run, error) {
		if o.Warmup > 0 {
			if w := drive(t, corpus, o.Warmup, 0, 0); w.Errors > 0 {
				return Run{}, fmt.Errorf("%s %s warm-up: %d errors, first: %s", p.Name, t.Network, w.Errors, w.FirstError)
			}
		}
		time.Sleep(300 * time.Millisecond) // let the warm-up's connections close
		run := Run{Server: p.Name, Round: round, Load: LoadAvg()}
		meter, err := startCPU(p.PID())
		if err != nil {
			return run, err
		}
		q0 := dns.Queries()
		run.Result = drive(t, corpus, o.Count, 0, o.Duration)
		if run.Split, err = meter.stop(); err != nil {
			return run, fmt.Errorf("%s died during the run: %v; its output:\n%s", p.Name, err, tail(p.LogPath))
		}
		run.CPU, run.DNSQueries = run.Split.Server, dns.Queries()-q0
		run.Mem, _ = MemoryOf(p.PID())
		r := run.Result
		logf("  %-12s %-4s %7d msgs %6.0f msg/s  p50 %6s  p99 %6s  max %6s  CPU %5.3f ms/msg  RSS %5s MiB  errors %d  other load %.2f CPUs",
			p.Name, t.Network, r.Messages, r.Rate(), ms(r.Percentile(0.5)), ms(r.Percentile(0.99)), ms(r.Max()),
			float64(run.CPUPerMessage())/1e6, MiB(run.Mem.RSS), r.Errors, run.Split.OtherCores())
		if r.Errors > 0 {
			logf("    first error: %s", r.FirstError)
			for _, l := range warnings(p.LogPath, 5) {
				rep.Notes = append(rep.Notes, p.Name+" "+t.Network+": "+l)
			}
		}
		return run, nil
	}

	// Every server runs from the start, each on its own TCP port (dmarcd on
	// TCPAddr), idle while another is measured.
	var procs []*Process
	defer func() {
		for _, p := range procs {
			if p.Name == "opendmarc" {
				p.Kill()
			} else {
				p.Stop()
			}
		}
	}()
	targets := map[string]map[string]*Process{} // server → transport → process
	add := func(p *Process, err error) error {
		if err != nil {
			return err
		}
		procs = append(procs, p)
		if targets[p.Name] == nil {
			targets[p.Name] = map[string]*Process{}
		}
		for tr := range p.Targets {
			targets[p.Name][tr] = p
		}
		return nil
	}
	port := func() string {
		a, err := freeAddr()
		if err != nil {
			return "127.0.0.1:0"
		}
		return a
	}
	if err := add(StartNull(o.Self, o.Dir, port(), false)); err != nil {
		return nil, err
	}
	if o.Replies {
		if err := add(StartNull(o.Self, o.Dir, port(), true)); err != nil {
			return nil, err
		}
	}
	debugAddr := port()
	if err := add(StartDmarcd(o.Dmarcd, o.Dir, dns.Addr(), o.TCPAddr, 4*max(o.Domains, o.RSSDomains), debugAddr)); err != nil {
		return nil, err
	}
	dmarcd := targets["dmarcd"]["unix"]
	if o.OpenDMARC != "" {
		for _, tr := range o.Transports {
			t := Target{"tcp", port()}
			if tr == "unix" {
				t = Target{"unix", filepath.Join(o.Dir, "opendmarc.sock")}
			}
			if err := add(StartOpenDMARC(o.OpenDMARC, o.Dir, t)); err != nil {
				return nil, err
			}
		}
	}
	q0 := dns.Queries()
	w := Drive(ctx, DriveOptions{Target: dmarcd.Targets["unix"], Corpus: corpus, Concurrency: o.Concurrency, Count: 2 * o.Domains, Warm: true})
	if w.Errors > 0 {
		return nil, fmt.Errorf("dmarcd DNS warm-up: %d errors, first: %s", w.Errors, w.FirstError)
	}
	logf("dmarcd warm-up: %d messages, one from each corpus domain and one from its mail. subdomain, %d DNS queries", w.Messages, dns.Queries()-q0)

	order := []string{"null", "dmarcd", "opendmarc"}
	for round := range o.Rounds {
		logf("round %d:", round+1)
		for _, tr := range o.Transports {
			servers := append(order[round%len(order):], order[:round%len(order)]...)
			if round == 0 && o.Replies {
				servers = append(servers, "null-replies")
			}
			for _, name := range servers {
				p := targets[name][tr]
				if p == nil {
					continue
				}
				run, err := measure(round, p, p.Targets[tr])
				if err != nil {
					return nil, err
				}
				rep.Runs = append(rep.Runs, run)
			}
		}
	}
	if o.RSSDomains > 0 {
		if err := rssPhase(ctx, rep, dmarcd, &debugClient{base: "http://" + debugAddr, pid: dmarcd.PID()}, zone, dns, o, logf); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// rssPhase sends one message from each of o.RSSDomains distinct From
// domains through dmarcd (those beyond the corpus are cold: each costs DNS
// queries), reads its memory, then checks with a sample that they are
// cached.
func rssPhase(ctx context.Context, rep *BenchReport, p *Process, debug *debugClient, zone *Corpus, dns *DNSServer, o BenchOptions, logf func(string, ...any)) error {
	q0 := dns.Queries()
	t := p.Targets["unix"]
	r := Drive(ctx, DriveOptions{Target: t, Corpus: zone, Concurrency: o.Concurrency, Count: o.RSSDomains})
	if r.Errors > 0 {
		return fmt.Errorf("dmarcd RSS phase: %d errors, first: %s", r.Errors, r.FirstError)
	}
	rep.RSSMessages, rep.RSSQueries = r.Messages, dns.Queries()-q0
	time.Sleep(time.Second)
	rep.RSS, _ = MemoryOf(p.PID())
	// What the Go runtime holds (read after rep.RSS: the forced GC of the
	// sample may return memory to the OS).
	rep.RSSGo, _ = debug.sample()
	// A sample spread over all the domains, a second time.
	rep.RSSSample = min(2000, o.RSSDomains)
	q1 := dns.Queries()
	step := max(o.RSSDomains/rep.RSSSample, 1)
	for i := range rep.RSSSample {
		s := Drive(ctx, DriveOptions{Target: t, Corpus: zone, Concurrency: 1, Count: 1, First: i * step})
		if s.Errors > 0 {
			return fmt.Errorf("dmarcd RSS sample: %s", s.FirstError)
		}
	}
	rep.RSSSampleQuery = dns.Queries() - q1
	logf("  dmarcd    %d distinct From domains in %s: %d DNS queries; RSS %s MiB (peak %s MiB); a second look at %d of them: %d queries",
		r.Messages, r.Elapsed.Round(time.Millisecond), rep.RSSQueries, MiB(rep.RSS.RSS), MiB(rep.RSS.Peak), rep.RSSSample, rep.RSSSampleQuery)
	return nil
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/1e6)
}

// Machine describes the machine in one line: CPU model, CPUs, memory,
// kernel.
func Machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	kernel := ""
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("%s, %d CPUs%s%s, %s", model, runtime.NumCPU(), mem, kernel, runtime.Version())
}

// Check is one target of the issue, measured.
type Check struct {
	Name   string
	Value  string
	Target string
	// Verdict is PASS, MISS or SKIP.
	Verdict string
	Why     string
}

// Summary is the runs of one server on one transport: the median of each
// measure over the rounds.
type Summary struct {
	Server, Transport string
	Runs              []Run
	Messages, Errors  int
	Rate              float64 // median msg/s
	MinRate, MaxRate  float64
	P50, P99, Max     time.Duration // medians of the runs' values
	CPU               time.Duration // median CPU per message
	RSS               int64         // after the last run
	DNSPerMessage     float64
	Driver, Other     float64 // median CPUs busy
	NoReply           []string
	Actions           map[string]int
}

// Summaries groups the runs by transport and server, in the order of the
// table.
func (r *BenchReport) Summaries() []Summary {
	var out []Summary
	for _, tr := range r.Options.Transports {
		for _, name := range []string{"null", "null-replies", "dmarcd", "opendmarc"} {
			sm := Summary{Server: name, Transport: tr, Actions: map[string]int{}}
			var rates, drv, oth []float64
			var p50, p99, mx, cpu []time.Duration
			var queries int64
			for _, run := range r.Runs {
				if run.Server != name || run.Result.Target.Network != tr {
					continue
				}
				res := run.Result
				sm.Runs = append(sm.Runs, run)
				sm.Messages += res.Messages
				sm.Errors += res.Errors
				sm.RSS = run.Mem.RSS
				sm.NoReply = res.NoReply
				queries += run.DNSQueries
				for k, v := range res.Actions {
					sm.Actions[k] += v
				}
				rates = append(rates, res.Rate())
				p50, p99, mx = append(p50, res.Percentile(0.5)), append(p99, res.Percentile(0.99)), append(mx, res.Max())
				cpu = append(cpu, run.CPUPerMessage())
				wall := max(run.Split.Wall.Seconds(), 1e-9)
				drv, oth = append(drv, run.Split.Driver.Seconds()/wall), append(oth, run.Split.OtherCores())
			}
			if len(sm.Runs) == 0 {
				continue
			}
			sm.Rate, sm.MinRate, sm.MaxRate = median(rates), slices.Min(rates), slices.Max(rates)
			sm.P50, sm.P99, sm.Max, sm.CPU = median(p50), median(p99), median(mx), median(cpu)
			sm.Driver, sm.Other = median(drv), median(oth)
			sm.DNSPerMessage = float64(queries) / float64(max(sm.Messages, 1))
			out = append(out, sm)
		}
	}
	return out
}

// median of a list: the middle value, or the mean of the two middle ones.
func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (r *BenchReport) find(server, transport string) *Summary {
	for _, sm := range r.Summaries() {
		if sm.Server == server && sm.Transport == transport {
			return &sm
		}
	}
	return nil
}

// Checks compares the runs with the targets.
func (r *BenchReport) Checks() []Check {
	var out []Check
	ratio := func(name, target string, limit float64, atLeast bool, num, den float64, why string) {
		c := Check{Name: name, Target: target, Verdict: "SKIP", Value: "-", Why: why}
		if den > 0 && num > 0 {
			v := num / den
			c.Value = fmt.Sprintf("%.2f", v)
			pass := v >= limit
			if !atLeast {
				pass = v <= limit
			}
			c.Verdict = map[bool]string{true: "PASS", false: "MISS"}[pass]
		}
		out = append(out, c)
	}
	rate := func(r *Summary) float64 {
		if r == nil {
			return 0
		}
		return r.Rate
	}
	p99 := func(r *Summary) float64 {
		if r == nil {
			return 0
		}
		return float64(r.P99)
	}
	cpu := func(r *Summary) float64 {
		if r == nil {
			return 0
		}
		return float64(r.CPU)
	}
	for _, tr := range r.Options.Transports {
		null, dd, od := r.find("null", tr), r.find("dmarcd", tr), r.find("opendmarc", tr)
		noOD := ""
		if od == nil {
			noOD = "OpenDMARC not run (needs root, ip netns and /usr/sbin/opendmarc)"
		}
		switch tr {
		case "unix":
			ratio("unix: dmarcd/null msg/s", "≥ 0.90", 0.9, true, rate(dd), rate(null), "")
			ratio("unix: dmarcd/OpenDMARC msg/s", "≥ 1.50", 1.5, true, rate(dd), rate(od), noOD)
			ratio("unix: dmarcd/OpenDMARC CPU per message", "≤ 0.50", 0.5, false, cpu(dd), cpu(od), noOD)
		case "tcp":
			ratio("tcp: dmarcd/OpenDMARC msg/s", "≥ 5.00", 5, true, rate(dd), rate(od), noOD)
			ratio("tcp: dmarcd/null msg/s (no target)", "-", 0, true, rate(dd), rate(null), "")
			out[len(out)-1].Verdict = "INFO"
		}
		ratio(tr+": dmarcd/null p99 latency", "≤ 1.20", 1.2, false, p99(dd), p99(null), "")
		if nr := r.find("null-replies", tr); nr != nil {
			ratio(tr+": null/null-replies msg/s (what no-reply saves)", "-", 0, true, rate(null), rate(nr), "")
			out[len(out)-1].Verdict = "INFO"
		}
	}
	if dd := r.find("dmarcd", r.Options.Transports[0]); dd != nil {
		c := Check{Name: "milter protocol 6 no-reply options (dmarcd)", Target: "helo rcpt header eoh",
			Value: strings.Join(dd.NoReply, " "), Verdict: "MISS"}
		if has(dd.NoReply, "helo", "rcpt", "header", "eoh") {
			c.Verdict = "PASS"
		}
		out = append(out, c)
	}
	if r.RSSMessages > 0 {
		c := Check{Name: fmt.Sprintf("dmarcd RSS, %d From domains cached", r.RSSMessages), Target: "≤ 100 MiB",
			Value: MiB(r.RSS.RSS) + " MiB", Verdict: "MISS"}
		if r.RSS.RSS <= 100<<20 {
			c.Verdict = "PASS"
		}
		if r.RSSSampleQuery > 0 {
			c.Why = fmt.Sprintf("but %d of a %d-domain sample were no longer cached", r.RSSSampleQuery, r.RSSSample)
		}
		out = append(out, c)
	}
	errs := 0
	for _, run := range r.Runs {
		errs += run.Result.Errors
	}
	c := Check{Name: "sessions without error", Target: "all", Value: fmt.Sprintf("%d errors", errs), Verdict: "PASS"}
	if errs > 0 {
		c.Verdict = "MISS"
	}
	out = append(out, c)
	return out
}

func has(list []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(list, w) {
			return false
		}
	}
	return true
}

// Print writes the table and the checks.
func (r *BenchReport) Print(w io.Writer) {
	o := r.Options
	fmt.Fprintf(w, "\nmilter load test, %s\n", r.Start.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	ns := "no network namespace (DNS on a random port; OpenDMARC needs port 53)"
	if o.Namespace != "" {
		ns = "network namespace " + o.Namespace + ", DNS on " + o.DNSAddr
	}
	fmt.Fprintf(w, "setup: %s; %d concurrent sessions, a new milter connection per message; %d From domains (DNS warm for dmarcd); %d-byte bodies; %d rounds of runs of %s", ns, o.Concurrency, o.Domains, o.BodySize, o.Rounds, o.Duration)
	if o.Count > 0 {
		fmt.Fprintf(w, " or %d messages", o.Count)
	}
	fmt.Fprintf(w, "\nload average: %s at the start, %s at the end (the machine is shared: \"other CPUs\" is what else ran during the runs", r.LoadStart, r.LoadEnd)
	if o.MaxOther > 0 {
		fmt.Fprintf(w, "; %d runs during which it exceeded %.2f were done again", r.Repeated, o.MaxOther)
	}
	fmt.Fprintf(w, ")\n\n")
	if o.Rounds > 1 {
		fmt.Fprintf(w, "each figure is the median of %d rounds (msg/s: median and range); every run is listed above\n\n", o.Rounds)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\ttransport\tmessages\tmsg/s\trange\tp50 ms\tp99 ms\tmax ms\tCPU ms/msg\tRSS MiB\tDNS q/msg\terrors\tdriver CPUs\tother CPUs\t")
	for _, sm := range r.Summaries() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.0f-%.0f\t%.2f\t%.2f\t%.2f\t%.3f\t%s\t%.2f\t%d\t%.2f\t%.2f\t\n",
			sm.Server, sm.Transport, sm.Messages, sm.Rate, sm.MinRate, sm.MaxRate,
			float64(sm.P50)/1e6, float64(sm.P99)/1e6, float64(sm.Max)/1e6,
			float64(sm.CPU)/1e6, MiB(sm.RSS), sm.DNSPerMessage, sm.Errors, sm.Driver, sm.Other)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, sm := range r.Summaries() {
		fmt.Fprintf(w, "  %-12s %-4s no-reply: %-32s actions: %s\n", sm.Server, sm.Transport, strings.Join(sm.NoReply, " "), actions(sm.Actions))
	}
	if r.RSSMessages > 0 {
		fmt.Fprintf(w, "\ndmarcd memory: %d distinct From domains (%d DNS queries to learn them): RSS %s MiB, peak %s MiB; a second look at %d of them made %d DNS queries\n",
			r.RSSMessages, r.RSSQueries, MiB(r.RSS.RSS), MiB(r.RSS.Peak), r.RSSSample, r.RSSSampleQuery)
		goRes := int64(r.RSSGo.GoSys)
		fmt.Fprintf(w, "  RSS %s MiB = %s MiB file-backed (the binary) + %s MiB anonymous: the Go runtime holds %s MiB of it (live heap after GC %s MiB, heap %s MiB), leaving about %s MiB outside Go (SQLite's page cache and heap, through modernc.org/libc)\n",
			MiB(r.RSS.RSS), MiB(r.RSS.File), MiB(r.RSS.Anon), MiB(goRes), MiB(int64(r.RSSGo.HeapAlloc)), MiB(int64(r.RSSGo.HeapSys)), MiB(max(r.RSS.Anon-goRes, 0)))
	}
	fmt.Fprintf(w, "\ntargets:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Verdict, c.Name, c.Value, c.Target, c.Why)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func actions(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
