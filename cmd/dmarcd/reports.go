package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dmarcd/dmarcd/internal/daemon"
	"github.com/dmarcd/dmarcd/report/aggregate"
	"github.com/dmarcd/dmarcd/report/scheduler"
)

func init() {
	commands["reports"] = command{"list, preview and send the aggregate reports; count the failure reports", runReports}
}

const reportsUsage = `usage:
  dmarcd reports list [-c FILE] [-all]
  dmarcd reports preview [-c FILE] [-format rfc7489|rfc9990] DOMAIN
  dmarcd reports send [-c FILE] [-now] [-dry-run DIR]
  dmarcd reports failures [-c FILE]
`

func runReports(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, reportsUsage)
		return 2
	}
	switch args[0] {
	case "list":
		return reportsList(args[1:], stdout, stderr)
	case "preview":
		return reportsPreview(args[1:], stdout, stderr)
	case "send":
		return reportsSend(args[1:], stdout, stderr)
	case "failures":
		return reportsFailures(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, reportsUsage)
		return 0
	}
	fmt.Fprintf(stderr, "dmarcd reports: unknown command %q\n%s", args[0], reportsUsage)
	return 2
}

// reportsFlags are the flags every reports command takes.
func reportsFlags(name string, stderr io.Writer) (*flag.FlagSet, *daemon.Options) {
	fs := flag.NewFlagSet("reports "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := &daemon.Options{}
	fs.StringVar(&opts.ConfigPath, "c", "", "configuration file, dmarcd.toml or opendmarc.conf; default: built-in defaults")
	fs.StringVar(&opts.StateDir, "state-dir", "", "state directory, replacing state_dir")
	return fs, opts
}

func openReports(opts *daemon.Options, sending bool, stderr io.Writer) (*daemon.Reports, int) {
	r, err := daemon.OpenReports(*opts, sending)
	if err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		return nil, 1
	}
	return r, 0
}

func reportsList(args []string, stdout, stderr io.Writer) int {
	fs, opts := reportsFlags("list", stderr)
	all := fs.Bool("all", false, "also list domains whose policy has no rua (never reported)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmarcd reports list: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	r, code := openReports(opts, false, stderr)
	if r == nil {
		return code
	}
	defer r.Close()
	ps, err := r.Scheduler.Pending(context.Background(), *all)
	if err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		return 1
	}
	writePending(stdout, ps)
	return 0
}

// writePending prints the pending periods as a table, then the errors of
// the retrying ones.
func writePending(w io.Writer, ps []scheduler.Pending) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "nothing pending")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tPERIOD (UTC)\tSTATE\tRECORDS\tMESSAGES\tNEXT (UTC)\tDESTINATIONS")
	var errs []string
	for _, p := range ps {
		dests := strings.Join(p.Destinations, ",")
		if dests == "" {
			dests = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", p.Domain, period(p.Period.Begin, p.Period.End), p.State,
			p.Records, p.Messages, p.NextAttempt.UTC().Format("2006-01-02 15:04"), dests)
		if p.LastError != "" {
			errs = append(errs, fmt.Sprintf("  %s %s, %s: %s", p.Domain, p.Period.Begin.UTC().Format("2006-01-02 15:04"),
				count(p.Attempts, "attempt", "attempts"), p.LastError))
		}
	}
	tw.Flush()
	if len(errs) > 0 {
		fmt.Fprintln(w, "\nlast errors:")
		for _, e := range errs {
			fmt.Fprintln(w, e)
		}
	}
}

// period formats a period compactly: the end's date only when it differs.
func period(b, e time.Time) string {
	b, e = b.UTC(), e.UTC()
	end := e.Format("15:04")
	if e.Format("2006-01-02") != b.Format("2006-01-02") {
		end = e.Format("2006-01-02 15:04")
	}
	return b.Format("2006-01-02 15:04") + " to " + end
}

func reportsPreview(args []string, stdout, stderr io.Writer) int {
	fs, opts := reportsFlags("preview", stderr)
	format := fs.String("format", "", "XML format, rfc7489 or rfc9990; default: the destination's")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, "dmarcd reports preview: want one DOMAIN\n"+reportsUsage)
		return 2
	}
	var popts scheduler.PreviewOptions
	if *format != "" {
		f, err := aggregate.ParseFormat(*format)
		if err != nil {
			fmt.Fprintln(stderr, "dmarcd reports preview:", err)
			return 2
		}
		popts.Format = &f
	}
	r, code := openReports(opts, false, stderr)
	if r == nil {
		return code
	}
	defer r.Close()
	if err := r.Scheduler.Preview(context.Background(), stdout, fs.Arg(0), popts); err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		return 1
	}
	return 0
}

func reportsSend(args []string, stdout, stderr io.Writer) int {
	fs, opts := reportsFlags("send", stderr)
	var ropts scheduler.RunOptions
	fs.BoolVar(&ropts.Now, "now", false, "send pending reports at once, without waiting for their spread offset or retry time (rate limits still apply)")
	fs.StringVar(&ropts.DryRun, "dry-run", "", "write each report's .xml.gz and signed .eml into this directory instead of sending; changes nothing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmarcd reports send: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	opts.Stderr = stderr
	r, code := openReports(opts, true, stderr)
	if r == nil {
		return code
	}
	defer r.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := r.Send(ctx, ropts)
	if ropts.DryRun != "" {
		for _, f := range sum.Files {
			fmt.Fprintln(stdout, f)
		}
		fmt.Fprintf(stdout, "dry run: %d files written to %s; nothing sent, the store unchanged\n", len(sum.Files), ropts.DryRun)
	} else {
		fmt.Fprintln(stdout, summary(sum))
	}
	if err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		if errors.Is(err, daemon.ErrSenderBusy) {
			return 3
		}
		return 1
	}
	return 0
}

// summary says in one line what a send did.
func summary(s scheduler.Summary) string {
	parts := []string{
		count(s.Created, "report created", "reports created"),
		strconv.Itoa(s.Sent) + " sent",
	}
	for _, x := range []struct {
		n    int
		what string
	}{
		{s.Skipped, "without destination"}, {s.Deferred, "deferred"}, {s.Failed, "failed"},
		{s.Limited, "held back by rate limits"}, {s.Postponed, "postponed (destination not verifiable)"},
	} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	return strings.Join(parts, ", ")
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// reportsFailures counts the failure reports in the store by state and
// reason: what was sent, what waits, and what was dropped and why.
func reportsFailures(args []string, stdout, stderr io.Writer) int {
	fs, opts := reportsFlags("failures", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmarcd reports failures: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	r, code := openReports(opts, false, stderr)
	if r == nil {
		return code
	}
	defer r.Close()
	counts, err := r.Store.FailureStates(context.Background())
	if err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		return 1
	}
	if len(counts) == 0 {
		fmt.Fprintln(stdout, "no failure reports in the store")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tREASON\tREPORTS")
	for _, c := range counts {
		reason := c.Reason
		if reason == "" {
			reason = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\n", c.State, reason, c.Count)
	}
	tw.Flush()
	if !r.Config.FailureReports.Enabled {
		fmt.Fprintln(stdout, "\nfailure reports are not enabled (failure_reports.enabled = false)")
	}
	return 0
}
