package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/daemon"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/report/received"
)

func init() {
	commands["summary"] = command{"summarise the DMARC reports received about your domains", runSummary}
}

const summaryUsage = `usage: dmarcd summary [-c FILE] [-state-dir DIR] [-domain D] [-days 15] [-until DATE] [-top 10] [-json] [-no-names]

Summarises the aggregate reports imported with "dmarcd import", per domain
and over the last days (UTC, today included): messages, how many passed
DMARC, the dispositions applied, SPF and DKIM pass rates, the top source
IPs with their PTR names, the sources failing DMARC, who reported, and a
hint on when to move from p=none to p=quarantine and on to p=reject.

flags:
`

// newResolver returns the resolver PTR names are looked up with; tests
// replace it.
var newResolver = func(cfg *config.Config) (received.Resolver, error) {
	return dnscache.New(daemon.ResolverConfig(cfg))
}

func runSummary(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), summaryUsage)
		fs.PrintDefaults()
	}
	opts := storeFlags(fs)
	domain := fs.String("domain", "", "the `domain` to summarise (the policy domain of the reports); default: every domain with reports")
	days := fs.Int("days", 15, "how many UTC days, ending with -until, to summarise")
	until := fs.String("until", "", "the last `day` summarised, YYYY-MM-DD (UTC); default: today")
	top := fs.Int("top", 10, "how many top sources, failing sources and reporters to list")
	asJSON := fs.Bool("json", false, "print the summaries as JSON (the dashboard's types)")
	noNames := fs.Bool("no-names", false, "do not look up PTR names of the source IPs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmarcd summary: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *days < 1 || *days > 3660 {
		fmt.Fprintf(stderr, "dmarcd summary: -days %d: want 1 to 3660\n", *days)
		return 2
	}
	if *top < 1 {
		fmt.Fprintf(stderr, "dmarcd summary: -top %d: want at least 1\n", *top)
		return 2
	}
	end := time.Now().UTC()
	if *until != "" {
		t, err := time.Parse("2006-01-02", *until)
		if err != nil {
			fmt.Fprintf(stderr, "dmarcd summary: -until %q: want a date, YYYY-MM-DD\n", *until)
			return 2
		}
		end = t
	}
	rng := received.LastDays(end, *days)

	r, ok := openReceived(*opts, stderr, "summary")
	if !ok {
		return 2
	}
	defer r.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	svc := &received.Service{Store: r.Store}
	rc := r.Config.Received
	if rc.ResolveNames && !*noNames {
		res, err := newResolver(r.Config)
		if err != nil {
			fmt.Fprintln(stderr, "dmarcd summary: DNS resolver:", err)
			return 2
		}
		svc.Names = &received.Names{Resolver: res, TTL: rc.NameCacheTTL.Duration(), Timeout: rc.NameTimeout.Duration(),
			Concurrency: rc.NameConcurrency, MaxEntries: rc.NameCacheSize}
	}
	o := received.SummaryOptions{Top: *top}
	var sums []*received.Summary
	var err error
	if *domain != "" {
		var s *received.Summary
		if s, err = svc.Summary(ctx, strings.ToLower(strings.TrimSuffix(*domain, ".")), rng, o); err == nil {
			sums = append(sums, s)
		}
	} else {
		sums, err = svc.Summaries(ctx, rng, o)
	}
	if err != nil {
		fmt.Fprintln(stderr, "dmarcd summary:", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if sums == nil {
			sums = []*received.Summary{}
		}
		enc.Encode(sums)
		return 0
	}
	if len(sums) == 0 {
		fmt.Fprintf(stdout, "no reports received from %s to %s (UTC); import some with \"dmarcd import\"\n",
			rng.From.Format("2006-01-02"), rng.To.AddDate(0, 0, -1).Format("2006-01-02"))
		return 0
	}
	for i, s := range sums {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		writeSummary(stdout, s)
	}
	return 0
}

func pct(f float64) string { return received.Percent(f) }

// writeSummary prints one domain's summary.
func writeSummary(w io.Writer, s *received.Summary) {
	last := s.Range.To.AddDate(0, 0, -1)
	fmt.Fprintf(w, "%s: %s to %s (%d %s, UTC)\n", s.Domain, s.Range.From.Format("2006-01-02"), last.Format("2006-01-02"),
		s.Range.Days(), plural(s.Range.Days(), "day", "days"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  messages\t%s in %s aggregate %s", num(s.Messages), num(s.Reports), plural(int(s.Reports), "report", "reports"))
	if s.Failures > 0 {
		fmt.Fprintf(tw, ", %s failure %s", num(s.Failures), plural(int(s.Failures), "report", "reports"))
	}
	fmt.Fprintln(tw)
	if s.Messages > 0 {
		fmt.Fprintf(tw, "  compliant\t%s (%s) passed DMARC: aligned SPF or DKIM\n", num(s.Compliant), pct(s.Rates.Compliance))
		fmt.Fprintf(tw, "  disposition\tnone %s, quarantine %s (%s), reject %s (%s)", num(s.None), num(s.Quarantine),
			pct(s.Rates.Quarantined), num(s.Reject), pct(s.Rates.Rejected))
		if s.OtherDisposition > 0 {
			fmt.Fprintf(tw, ", other %s", num(s.OtherDisposition))
		}
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "  SPF\t%s pass, %s aligned\n", pct(s.Rates.SPFPass), pct(s.Rates.SPFAligned))
		fmt.Fprintf(tw, "  DKIM\t%s pass, %s aligned\n", pct(s.Rates.DKIMPass), pct(s.Rates.DKIMAligned))
		fmt.Fprintf(tw, "  aligned\t%s of the authenticated messages\n", pct(s.Rates.Aligned))
	}
	if p := s.Policy; p != nil {
		pol := "p=" + p.P
		if p.SP != "" {
			pol += " sp=" + p.SP
		}
		if p.NP != "" {
			pol += " np=" + p.NP
		}
		if p.Pct != 0 && p.Pct != 100 {
			pol += fmt.Sprintf(" pct=%d", p.Pct)
		}
		if p.Testing {
			pol += " t=y"
		}
		fmt.Fprintf(tw, "  policy\t%s (adkim=%s aspf=%s), as the latest report saw it\n", pol, or(p.ADKIM, "r"), or(p.ASPF, "r"))
	}
	tw.Flush()
	writeSources(w, "top sources", s.Sources, false)
	writeSources(w, "failing sources (to fix, or to stop)", s.Failing, true)
	if len(s.Reporters) > 0 {
		fmt.Fprintln(w, "\n  reporters")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "    ORGANISATION\tREPORTS\tMESSAGES\tCOMPLIANT")
		for _, r := range s.Reporters {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", r.Org, num(r.Reports), num(r.Messages), pct(r.Compliance))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\n  rollout: %s\n", s.Rollout.Text)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// writeSources prints a table of sources.
func writeSources(w io.Writer, title string, ss []received.Source, failing bool) {
	if len(ss) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  %s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if failing {
		fmt.Fprintln(tw, "    IP\tNAME\tFAILING\tMESSAGES\tSPF PASS\tDKIM PASS\tDISPOSITION")
	} else {
		fmt.Fprintln(tw, "    IP\tNAME\tMESSAGES\tCOMPLIANT\tSPF PASS\tDKIM PASS\tDISPOSITION")
	}
	for _, x := range ss {
		name := or(x.Name, "-")
		disp := fmt.Sprintf("none %s", num(x.None))
		if x.Quarantine > 0 {
			disp += fmt.Sprintf(", quarantine %s", num(x.Quarantine))
		}
		if x.Reject > 0 {
			disp += fmt.Sprintf(", reject %s", num(x.Reject))
		}
		if failing {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.IP, name, num(x.NonCompliant()), num(x.Messages),
				pct(x.Rates.SPFPass), pct(x.Rates.DKIMPass), disp)
		} else {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.IP, name, num(x.Messages), pct(x.Rates.Compliance),
				pct(x.Rates.SPFPass), pct(x.Rates.DKIMPass), disp)
		}
	}
	tw.Flush()
}
