// Command dmarcd is a DMARC milter for Postfix and Sendmail, and the tools
// around it. Run `dmarcd help` for the commands.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/dmarcd/dmarcd/internal/daemon"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// command is one subcommand: it parses its own flags from args and returns
// the process exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"version": {"print the version", func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, "dmarcd", version)
		return 0
	}},
}

func main() {
	daemon.Version = version
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "dmarcd: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dmarcd <command> [flags] [arguments]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun `dmarcd <command> -h` for a command's flags.")
}
