package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// CompareOptions configure Compare: two dmarcd binaries, A and B (before
// and after a change), measured in alternation so that the machine's
// other load falls on both alike.
type CompareOptions struct {
	A, B        string
	Dir         string
	Transport   string // "unix" or "tcp"
	Rounds      int
	Duration    time.Duration
	Concurrency int
	Domains     int
	Log         io.Writer
}

// CompareRun is one run of one binary.
type CompareRun struct {
	Which string // "A" or "B"
	Rate  float64
	P99   time.Duration
	CPU   time.Duration // per message
	Split CPUSplit
}

// Compare runs A and B side by side (each its own process, DNS warm) and
// returns every run, alternating A and B, for Rounds rounds.
func Compare(ctx context.Context, o CompareOptions) ([]CompareRun, error) {
	if o.Rounds == 0 {
		o.Rounds = 5
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Domains == 0 {
		o.Domains = 10000
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	corpus := NewCorpus(o.Domains, time.Hour, 2048)
	dns, err := StartDNS("127.0.0.1:0", corpus)
	if err != nil {
		return nil, err
	}
	defer dns.Close()
	procs := map[string]*Process{}
	for _, which := range []string{"A", "B"} {
		bin := map[string]string{"A": o.A, "B": o.B}[which]
		dir := filepath.Join(o.Dir, which)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		tcp, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := StartDmarcd(bin, dir, dns.Addr(), tcp, 4*o.Domains, "")
		if err != nil {
			return nil, err
		}
		defer p.Stop()
		procs[which] = p
		if w := Drive(ctx, DriveOptions{Target: p.Targets["unix"], Corpus: corpus, Concurrency: o.Concurrency, Count: 2 * o.Domains, Warm: true}); w.Errors > 0 {
			return nil, fmt.Errorf("%s warm-up: %s", which, w.FirstError)
		}
	}
	var runs []CompareRun
	for round := range o.Rounds {
		order := []string{"A", "B"}
		if round%2 == 1 {
			order = []string{"B", "A"}
		}
		for _, which := range order {
			p := procs[which]
			var r DriveResult
			var split CPUSplit
			for try := 1; ; try++ {
				time.Sleep(300 * time.Millisecond)
				m, err := startCPU(p.PID())
				if err != nil {
					return runs, err
				}
				r = Drive(ctx, DriveOptions{Target: p.Targets[o.Transport], Corpus: corpus, Concurrency: o.Concurrency, Duration: o.Duration})
				if split, err = m.stop(); err != nil {
					return runs, err
				}
				if split.OtherCores() <= 0.25 || try == 3 {
					break
				}
				fmt.Fprintf(o.Log, "round %d %s: other load %.2f CPUs, again\n", round+1, which, split.OtherCores())
			}
			if r.Errors > 0 {
				return runs, fmt.Errorf("%s: %d errors, first: %s", which, r.Errors, r.FirstError)
			}
			cr := CompareRun{Which: which, Rate: r.Rate(), P99: r.Percentile(0.99), Split: split}
			if r.Messages > 0 {
				cr.CPU = split.Server / time.Duration(r.Messages)
			}
			runs = append(runs, cr)
			fmt.Fprintf(o.Log, "round %d %s: %6.0f msg/s  p99 %6.2f ms  CPU %.3f ms/msg  other load %.2f CPUs\n",
				round+1, which, cr.Rate, float64(cr.P99)/1e6, float64(cr.CPU)/1e6, split.OtherCores())
		}
	}
	return runs, nil
}

// CompareSummary is the median of each measure, per binary.
func CompareSummary(runs []CompareRun, which string) (rate float64, p99, cpu time.Duration) {
	var rates []float64
	var p99s, cpus []time.Duration
	for _, r := range runs {
		if r.Which == which {
			rates, p99s, cpus = append(rates, r.Rate), append(p99s, r.P99), append(cpus, r.CPU)
		}
	}
	if len(rates) == 0 {
		return 0, 0, 0
	}
	slices.Sort(rates)
	slices.Sort(p99s)
	slices.Sort(cpus)
	return rates[len(rates)/2], p99s[len(p99s)/2], cpus[len(cpus)/2]
}
