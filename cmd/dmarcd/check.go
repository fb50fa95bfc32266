package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/check"
	"github.com/dmarcd/dmarcd/internal/dnscache"
)

func init() {
	commands["check"] = command{"check the DMARC record of domains", runCheck}
}

// nameservers is a repeatable flag that also takes comma-separated lists.
type nameservers []string

func (n *nameservers) String() string { return strings.Join(*n, ",") }

func (n *nameservers) Set(s string) error {
	for _, ns := range strings.Split(s, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			*n = append(*n, ns)
		}
	}
	return nil
}

// runCheck is `dmarcd check [flags] DOMAIN...`. It exits 0 when every
// domain is fine, 1 when problems were found, 2 when a lookup failed or the
// command line is wrong.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	specName := fs.String("spec", "rfc9989", "judge by `spec`: rfc9989 or rfc7489")
	asJSON := fs.Bool("json", false, "write JSON: an object for one domain, an array for several")
	verbose := fs.Bool("v", false, "list every DNS query made and its answer")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for each DNS answer (each nameserver is tried twice)")
	var ns nameservers
	fs.Var(&ns, "nameserver", "ask the recursive nameserver at `host[:port]`; repeat or separate with commas (default: those of /etc/resolv.conf)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dmarcd check [flags] DOMAIN...\n\n"+
			"Prints the DMARC record that applies to each domain, where it was found,\n"+
			"every tag with its effective value, and what the domain owner should fix.\n"+
			"Exit status: 0 all fine, 1 problems found (or no record), 2 a lookup failed.\n\nflags:\n")
		fs.PrintDefaults()
	}

	// Flags may follow the domains: "dmarcd check example.com -json".
	var domains []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			domains = append(domains, rest...)
			break
		}
		domains, args = append(domains, rest[0]), rest[1:]
	}
	if len(domains) == 0 {
		fmt.Fprintln(stderr, "dmarcd check: no domain given")
		fs.Usage()
		return 2
	}
	spec, err := dmarc.ParseSpec(*specName)
	if err != nil {
		fmt.Fprintf(stderr, "dmarcd check: -spec: %v\n", err)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "dmarcd check: -timeout must be positive")
		return 2
	}
	res, err := dnscache.New(dnscache.Config{Nameservers: ns, Timeout: *timeout})
	if err != nil {
		fmt.Fprintf(stderr, "dmarcd check: %v\n", err)
		return 2
	}

	c := &check.Checker{Resolver: res, Spec: spec}
	reports := c.CheckAll(context.Background(), domains)
	if *asJSON {
		err = check.WriteJSON(stdout, reports)
	} else {
		err = check.WriteText(stdout, reports, *verbose)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dmarcd check: %v\n", err)
		return 2
	}
	return check.ExitCode(reports)
}
