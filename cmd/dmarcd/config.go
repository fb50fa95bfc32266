package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dmarcd/dmarcd/internal/config"
)

func init() {
	commands["config"] = command{"check a configuration, or convert opendmarc.conf to dmarcd.toml", runConfig}
}

// runConfig is `dmarcd config convert|check [flags] FILE`. It exits 0 when
// the file is usable (warnings or not), 1 when it has errors, 2 when the
// command line is wrong.
func runConfig(args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprint(w, "usage: dmarcd config convert [-format F] FILE\n"+
			"       dmarcd config check [-format F] FILE\n\n"+
			"convert prints FILE (opendmarc.conf or dmarcd.toml) as a commented dmarcd.toml,\n"+
			"with the warnings of the conversion as comments at the top and on standard error.\n"+
			"check reads FILE as dmarcd serve would and prints its warnings.\n"+
			"Exit status: 0 usable (with or without warnings), 1 errors found, 2 bad usage.\n")
	}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var run func(name string, f config.Format, c *config.Config, ws []config.Warning, stdout, stderr io.Writer) int
	switch args[0] {
	case "convert":
		run = convertConfig
	case "check":
		run = checkConfig
	case "help", "-h", "--help", "-help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "dmarcd config: unknown subcommand %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("config "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "auto", "read FILE as `format`: auto, toml or opendmarc")
	fs.Usage = func() {
		usage(fs.Output())
		fmt.Fprintln(fs.Output(), "\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "dmarcd config %s: want exactly one FILE\n", args[0])
		return 2
	}
	name := fs.Arg(0)
	data, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(stderr, "dmarcd config %s: %v\n", args[0], err)
		return 1
	}
	var f config.Format
	switch *format {
	case "auto":
		f = config.DetectFormat(name, data)
	case "toml":
		f = config.FormatTOML
	case "opendmarc":
		f = config.FormatOpenDMARC
	default:
		fmt.Fprintf(stderr, "dmarcd config %s: -format %q: want auto, toml or opendmarc\n", args[0], *format)
		return 2
	}
	c, ws, err := config.ParseAs(f, name, data)
	if err != nil {
		for _, w := range ws {
			fmt.Fprintln(stderr, "warning:", w)
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	return run(name, f, c, ws, stdout, stderr)
}

// convertConfig prints c as dmarcd.toml, its warnings as comments at the
// top, and the warnings again on stderr so that they are seen when stdout
// goes to a file.
func convertConfig(name string, f config.Format, c *config.Config, ws []config.Warning, stdout, stderr io.Writer) int {
	var b bytes.Buffer
	if err := c.WriteConverted(&b, name, f, ws); err != nil {
		fmt.Fprintln(stderr, "dmarcd config convert:", err)
		return 1
	}
	if _, err := stdout.Write(b.Bytes()); err != nil {
		fmt.Fprintln(stderr, "dmarcd config convert:", err)
		return 1
	}
	for _, w := range ws {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return 0
}

// checkConfig prints the warnings and a verdict.
func checkConfig(name string, f config.Format, _ *config.Config, ws []config.Warning, stdout, _ io.Writer) int {
	for _, w := range ws {
		fmt.Fprintln(stdout, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: %s configuration OK", name, f)
	switch n := len(ws); n {
	case 0:
	case 1:
		fmt.Fprint(stdout, ", 1 warning")
	default:
		fmt.Fprintf(stdout, ", %d warnings", n)
	}
	fmt.Fprintln(stdout)
	return 0
}
