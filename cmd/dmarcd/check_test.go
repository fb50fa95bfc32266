package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/internal/dnstest"
)

func TestCheckCommand(t *testing.T) {
	s := dnstest.Start(t,
		"example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300",
		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"`,
		`_dmarc.monitor.example.com. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.old.example.com. 300 IN TXT "v=DMARC1; p=reject; pct=100; rua=mailto:dmarc@example.com"`,
	)
	s.Fail("_dmarc.broken.example.com.", dns.RcodeServerFailure)
	ns := []string{"-nameserver", s.Addr(), "-timeout", "3s"}
	tests := []struct {
		name   string
		args   []string
		exit   int
		stdout string // a part of the output
		stderr string
	}{
		{"a clean domain exits 0", slices.Concat(ns, []string{"example.com"}), 0, "status: ok", ""},
		{"p=none exits 1", slices.Concat(ns, []string{"monitor.example.com"}), 1, "status: problems", ""},
		{"a domain without a record exits 1", slices.Concat(ns, []string{"nothing.example.net"}), 1, "no DMARC record applies", ""},
		{"a SERVFAIL exits 2", slices.Concat(ns, []string{"broken.example.com"}), 2, "status: failed", ""},
		{"the worst of several domains wins", slices.Concat(ns, []string{"example.com", "monitor.example.com"}), 1, "monitor.example.com", ""},
		{"a failure outweighs problems", slices.Concat(ns, []string{"monitor.example.com", "broken.example.com", "example.com"}), 2, "broken.example.com", ""},
		{"-spec picks the spec that judges", slices.Concat(ns, []string{"-spec", "rfc7489", "old.example.com"}), 0, "spec:                  RFC 7489", ""},
		{"the default spec is RFC 9989", slices.Concat(ns, []string{"old.example.com"}), 1, "removed pct", ""},
		{"flags may follow the domains", []string{"example.com", "-nameserver", s.Addr(), "-v"}, 0, "lookups:", ""},
		{"a comma-separated list of nameservers is taken", []string{"-nameserver", s.Addr() + "," + s.Addr(), "example.com"}, 0, "status: ok", ""},
		{"-- ends the flags", slices.Concat(ns, []string{"--", "example.com"}), 0, "status: ok", ""},
		{"-json writes JSON", slices.Concat(ns, []string{"-json", "example.com"}), 0, `"status": "ok"`, ""},
		{"no domain is a usage error", ns, 2, "", "no domain given"},
		{"an unknown spec is a usage error", slices.Concat(ns, []string{"-spec", "rfc1234", "example.com"}), 2, "", "unknown DMARC spec"},
		{"an unknown flag is a usage error", []string{"-bogus", "example.com"}, 2, "", "flag provided but not defined"},
		{"a nameserver that is not an address is an error", []string{"-nameserver", "ns.example.com", "example.com"}, 2, "", "not an IP address"},
		{"a zero timeout is an error", []string{"-nameserver", s.Addr(), "-timeout", "0s", "example.com"}, 2, "", "-timeout must be positive"},
		{"-h prints the usage and exits 0", []string{"-h"}, 0, "", "usage: dmarcd check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(append([]string{"check"}, tt.args...), &stdout, &stderr)
			if got != tt.exit {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tt.exit, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, &stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, &stderr)
			}
			if tt.stderr == "" && stderr.Len() > 0 {
				t.Errorf("unexpected stderr:\n%s", &stderr)
			}
		})
	}
}

func TestCheckCommandJSONShape(t *testing.T) {
	s := dnstest.Start(t, `_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"`)
	for _, tt := range []struct {
		name    string
		domains []string
		array   bool
	}{
		{"one domain gives an object", []string{"example.com"}, false},
		{"several domains give an array", []string{"example.com", "example.com"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			run(append([]string{"check", "-json", "-nameserver", s.Addr()}, tt.domains...), &stdout, &stderr)
			var v any
			if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
				t.Fatalf("%v:\n%s", err, &stdout)
			}
			if _, isArray := v.([]any); isArray != tt.array {
				t.Errorf("array %v, want %v:\n%s", isArray, tt.array, &stdout)
			}
		})
	}
}

func TestCheckIsListed(t *testing.T) {
	var stdout bytes.Buffer
	run([]string{"help"}, &stdout, &stdout)
	if !strings.Contains(stdout.String(), "check") {
		t.Errorf("help does not list check:\n%s", &stdout)
	}
}
