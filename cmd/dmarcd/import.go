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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/dmarcd/dmarcd/internal/daemon"
	"github.com/dmarcd/dmarcd/report/received"
)

func init() {
	commands["import"] = command{"import the DMARC reports others sent: aggregate and failure reports, in files or mail", runImport}
}

const importUsage = `usage: dmarcd import [-c FILE] [-state-dir DIR] [-v] [-json] [-no-progress] PATH...

Reads the DMARC reports other receivers sent about your domains and stores
them for "dmarcd summary" and the dashboard. PATH is a file or a directory
(read recursively): aggregate reports as .xml, .xml.gz or .zip, whole
messages (.eml, maildir folders, mbox files) holding them, and RFC 6591
failure reports. A report already imported (same organisation and
report_id) is counted once. A report that is broken is rejected whole,
with the file and the XML line, and nothing of it is stored.

Exit status: 0 every report imported (or already there), 1 some rejected,
2 bad usage, configuration or store error.

flags:
`

// openReceived opens the store of the configuration opts names.
func openReceived(opts daemon.Options, stderr io.Writer, cmd string) (*daemon.Reports, bool) {
	r, err := daemon.OpenReports(opts, false)
	if err != nil {
		fmt.Fprintf(stderr, "dmarcd %s: %v\n", cmd, err)
		return nil, false
	}
	return r, true
}

// storeFlags are the flags naming the configuration, shared by import and
// summary.
func storeFlags(fs *flag.FlagSet) *daemon.Options {
	opts := &daemon.Options{}
	fs.StringVar(&opts.ConfigPath, "c", "", "configuration `file`, dmarcd.toml or opendmarc.conf, whose [store] holds the reports; default: built-in defaults")
	fs.StringVar(&opts.StateDir, "state-dir", "", "state `directory`, replacing state_dir (where the SQLite store is)")
	return opts
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// stderrIsTerminal is isTerminal, replaced by tests that want the
// progress bar.
var stderrIsTerminal = isTerminal

func runImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), importUsage)
		fs.PrintDefaults()
	}
	opts := storeFlags(fs)
	verbose := fs.Bool("v", false, "list every rejected report and every warning as it is met")
	asJSON := fs.Bool("json", false, "print the closing summary as JSON")
	noProgress := fs.Bool("no-progress", false, "no progress bar, even on a terminal")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "dmarcd import: want at least one PATH")
		fs.Usage()
		return 2
	}
	r, ok := openReceived(*opts, stderr, "import")
	if !ok {
		return 2
	}
	defer r.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	bar := &progressBar{w: stderr, draw: !*noProgress && stderrIsTerminal(stderr), every: 100 * time.Millisecond}
	im := &received.Importer{Store: r.Store, Progress: bar.update}
	if *verbose {
		im.OnReject = func(rj received.Reject) { bar.println("rejected: " + rj.String()) }
		im.OnWarnings = func(src string, ws []string) {
			bar.println("warnings: " + src + ": " + strings.Join(ws, "; "))
		}
	}
	sum, err := im.Import(ctx, fs.Args()...)
	bar.clear()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(sum)
	} else {
		writeImportSummary(stdout, sum)
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "dmarcd import: interrupted; the reports counted above are stored")
		} else {
			fmt.Fprintln(stderr, "dmarcd import:", err)
		}
		return 2
	}
	if sum.Rejected > 0 {
		return 1
	}
	return 0
}

// writeImportSummary prints what an import did.
func writeImportSummary(w io.Writer, s received.ImportSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "files\t%s\n", num(int64(s.Files)))
	fmt.Fprintf(tw, "reports\t%s new aggregate %s\n", num(int64(s.Reports)), plural(s.Reports, "report", "reports"))
	fmt.Fprintf(tw, "records\t%s\n", num(s.Records))
	fmt.Fprintf(tw, "messages\t%s\n", num(s.Messages))
	fmt.Fprintf(tw, "failure reports\t%s new\n", num(int64(s.Failures)))
	fmt.Fprintf(tw, "duplicates\t%s (already imported, counted once)\n", num(int64(s.Duplicates)))
	if s.Warned > 0 {
		fmt.Fprintf(tw, "warnings\t%s %s accepted with warnings (-v lists them)\n", num(int64(s.Warned)), plural(s.Warned, "report", "reports"))
	}
	fmt.Fprintf(tw, "rejected\t%s\n", num(int64(s.Rejected)))
	tw.Flush()
	for _, c := range s.Rejects {
		fmt.Fprintf(w, "  %s: %d\n", c.Class, c.Count)
		for _, e := range c.Examples {
			fmt.Fprintf(w, "    %s\n", e)
		}
		if c.Count > len(c.Examples) {
			fmt.Fprintf(w, "    and %d more (-v lists them all)\n", c.Count-len(c.Examples))
		}
	}
}

// num formats n with thousands separators: 12,345.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// progressBar draws the progress of an import on one terminal line,
// redrawn at most once per `every`, when draw is set; println prints
// above it.
type progressBar struct {
	w     io.Writer
	draw  bool
	every time.Duration

	mu    sync.Mutex
	last  time.Time
	shown bool
	line  string
}

const barWidth = 24

func (b *progressBar) update(p received.Progress) {
	if !b.draw {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	final := p.File == ""
	if !final && time.Since(b.last) < b.every {
		return
	}
	b.last = time.Now()
	frac := 0.0
	if p.BytesTotal > 0 {
		frac = min(1, float64(p.BytesDone)/float64(p.BytesTotal))
	}
	filled := int(frac * barWidth)
	s := p.Summary
	b.line = fmt.Sprintf("[%s%s] %3.0f%%  %d/%d files  %s reports  %s records  %d duplicates  %d rejected",
		strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), 100*frac, p.FilesDone, p.FilesTotal,
		num(int64(s.Reports+s.Failures)), num(s.Records), s.Duplicates, s.Rejected)
	fmt.Fprint(b.w, "\r\x1b[K"+b.line)
	b.shown = true
}

// println prints a line above the bar.
func (b *progressBar) println(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shown {
		fmt.Fprint(b.w, "\r\x1b[K")
	}
	fmt.Fprintln(b.w, s)
	if b.shown {
		fmt.Fprint(b.w, b.line)
	}
}

// clear removes the bar.
func (b *progressBar) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shown {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.shown = false
	}
}
