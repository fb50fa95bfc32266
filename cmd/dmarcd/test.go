package main

import (
	"flag"
	"fmt"
	"io"
	"net/mail"
	"net/netip"
	"os"
	"strings"

	"github.com/dmarcd/dmarcd/internal/daemon"
	"github.com/dmarcd/dmarcd/milter"
)

func init() {
	commands["test"] = command{"evaluate messages from files and print what the milter would do", runTest}
}

func runTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts daemon.Options
	fs.StringVar(&opts.ConfigPath, "c", "", "configuration file; default: built-in defaults")
	client := fs.String("client", "192.0.2.1", "SMTP client address the message came from")
	helo := fs.String("helo", "", "HELO name; default: the MAIL FROM domain")
	mailFrom := fs.String("mail-from", "", "MAIL FROM address; default: the Return-Path field, else the From address")
	rcpt := fs.String("rcpt", "postmaster@localhost", "recipient address")
	quiet := fs.Bool("q", false, "do not print the log line")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dmarcd test [flags] FILE.eml...\n\nEvaluates each message as if it arrived from -client and prints the verdict (like opendmarc -t).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	ip, err := netip.ParseAddr(*client)
	if err != nil {
		fmt.Fprintf(stderr, "dmarcd test: -client: %v\n", err)
		return 2
	}
	opts.Stderr = stderr
	if *quiet {
		opts.Stderr = io.Discard
	}
	srv, err := daemon.Offline(opts)
	if err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		return 1
	}
	code := 0
	for _, path := range fs.Args() {
		if err := testFile(srv, path, milter.Envelope{Client: ip, Helo: *helo, MailFrom: *mailFrom, Recipients: []string{*rcpt}}, stdout); err != nil {
			fmt.Fprintf(stderr, "dmarcd test: %s: %v\n", path, err)
			code = 1
		}
	}
	return code
}

func testFile(srv *milter.Server, path string, env milter.Envelope, stdout io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if env.MailFrom == "" {
		env.MailFrom = envelopeSender(data)
	}
	if env.Helo == "" {
		_, env.Helo, _ = strings.Cut(env.MailFrom, "@")
	}
	v, err := srv.Test(env, strings.NewReader(string(data)))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s:\n  action: %s\n", path, v.Action)
	if v.Reply != "" {
		fmt.Fprintf(stdout, "  reply: %s\n", v.Reply)
	}
	if v.Skipped != "" {
		fmt.Fprintf(stdout, "  skipped: %s\n", v.Skipped)
	}
	for _, c := range v.Changes {
		fmt.Fprintf(stdout, "  %s\n", c)
	}
	return nil
}

// envelopeSender guesses MAIL FROM from a stored message: its Return-Path,
// else its From address.
func envelopeSender(data []byte) string {
	m, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		return ""
	}
	if rp := strings.Trim(strings.TrimSpace(m.Header.Get("Return-Path")), "<>"); rp != "" {
		return rp
	}
	if a, err := mail.ParseAddress(m.Header.Get("From")); err == nil {
		return a.Address
	}
	return ""
}
