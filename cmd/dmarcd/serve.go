package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/dmarcd/dmarcd/internal/daemon"
)

func init() {
	commands["serve"] = command{"run the milter daemon", runServe}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts daemon.Options
	var listen listFlag
	fs.StringVar(&opts.ConfigPath, "c", "", "configuration file, dmarcd.toml or opendmarc.conf; default: built-in defaults")
	fs.Var(&listen, "listen", "socket to listen on, replacing the configured listeners (repeatable): inet:8893@127.0.0.1, unix:/run/dmarcd/dmarcd.sock, ...")
	fs.StringVar(&opts.StateDir, "state-dir", "", "state directory, replacing state_dir")
	fs.StringVar(&opts.Spec, "spec", "", "DMARC specification, rfc9989 or rfc7489, replacing spec")
	checkOnly := fs.Bool("check-config", false, "read and validate the configuration, then exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dmarcd serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	opts.Listen, opts.Stderr = listen, stderr
	if *checkOnly {
		_, warnings, err := daemon.Load(opts)
		for _, w := range warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if err != nil {
			fmt.Fprintln(stderr, "dmarcd:", err)
			return 1
		}
		fmt.Fprintln(stdout, "configuration OK")
		return 0
	}
	if err := daemon.Run(context.Background(), opts); err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		return 1
	}
	return 0
}
