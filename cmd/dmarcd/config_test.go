package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/config"
)

const debianConf = "../../internal/config/testdata/opendmarc/debian.conf"

func TestConfigCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("dmarcd.toml", "spec = \"rfc7489\"\n")
	bad := write("bad.toml", "[milter]\ndns_budget = \"2m\"\n")
	warned := write("opendmarc.conf", "Socket inet:8893@127.0.0.1\nAutoRestart yes\n")
	broken := write("broken.conf", "Socket inet:8893@127.0.0.1\nRejectFailures maybe\n")
	tests := []struct {
		name   string
		args   []string
		exit   int
		stdout []string // parts of the output
		stderr []string
	}{
		{"convert turns Debian's opendmarc.conf into dmarcd.toml",
			[]string{"convert", debianConf}, 0,
			[]string{"# Converted from " + debianConf + " (opendmarc.conf) by dmarcd config convert.\n", `address = "unix:/run/opendmarc/opendmarc.sock"`, `mode = "relaxed"`, `socket_mode = "0775"`, `user = "opendmarc"`, `spec = "rfc7489"`},
			nil},
		{"convert puts the warnings at the top and on stderr",
			[]string{"convert", warned}, 0,
			[]string{"# Warnings:\n# - ", "AutoRestart:"},
			[]string{"warning: " + warned + ":2: AutoRestart: ignored"}},
		{"convert stops at errors, naming file, line and key",
			[]string{"convert", broken}, 1,
			nil,
			[]string{broken + `:2: RejectFailures: "maybe" is not a boolean`}},
		{"convert -format reads a file in the format given",
			[]string{"convert", "-format", "opendmarc", good}, 0,
			[]string{"(opendmarc.conf) by dmarcd config convert", `spec = "rfc7489"`, `mode = "relaxed"`},
			[]string{`warning: ` + good + `:1: spec: unknown key, ignored`}},
		{"convert rewrites a dmarcd.toml with every key",
			[]string{"convert", good}, 0,
			[]string{"(dmarcd.toml) by dmarcd config convert", `spec = "rfc7489"`, `mode = "strict"`, "max_connections = 1024"},
			nil},
		{"check accepts a valid dmarcd.toml",
			[]string{"check", good}, 0,
			[]string{good + ": dmarcd.toml configuration OK\n"},
			nil},
		{"check accepts opendmarc.conf and prints its warnings",
			[]string{"check", warned}, 0,
			[]string{"warning: " + warned + ":2: AutoRestart:", warned + ": opendmarc.conf configuration OK, 1 warning\n"},
			nil},
		{"check reports errors with file, line and key",
			[]string{"check", bad}, 1,
			nil,
			[]string{bad + ":2: milter.dns_budget: 2m is too long"}},
		{"check of a missing file fails",
			[]string{"check", filepath.Join(dir, "missing.toml")}, 1,
			nil,
			[]string{"no such file"}},
		{"an unknown format is a usage error", []string{"check", "-format", "yaml", good}, 2, nil, []string{`-format "yaml"`}},
		{"no file is a usage error", []string{"check"}, 2, nil, []string{"want exactly one FILE"}},
		{"two files are a usage error", []string{"convert", good, good}, 2, nil, []string{"want exactly one FILE"}},
		{"no subcommand is a usage error", nil, 2, nil, []string{"usage: dmarcd config convert"}},
		{"an unknown subcommand is a usage error", []string{"show", good}, 2, nil, []string{`unknown subcommand "show"`}},
		{"help prints the usage and exits 0", []string{"help"}, 0, []string{"usage: dmarcd config convert"}, nil},
		{"-h after a subcommand prints the flags and exits 0", []string{"check", "-h"}, 0, nil, []string{"-format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(append([]string{"config"}, tt.args...), &stdout, &stderr)
			if got != tt.exit {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tt.exit, &stdout, &stderr)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, &stdout)
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, &stderr)
				}
			}
			if tt.stderr == nil && stderr.Len() > 0 {
				t.Errorf("unexpected stderr:\n%s", &stderr)
			}
			if tt.exit == 1 && stdout.Len() > 0 {
				t.Errorf("output despite errors:\n%s", &stdout)
			}
		})
	}
}

// TestConvertedConfigurationRunsAsConverted checks the whole path: what
// convert prints, dmarcd reads back to the configuration converted.
func TestConvertedConfigurationRunsAsConverted(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"config", "convert", debianConf}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	p := filepath.Join(t.TempDir(), "dmarcd.toml")
	if err := os.WriteFile(p, stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := config.LoadOpenDMARC(debianConf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the converted file reads as\n%+v\nnot\n%+v", got, want)
	}
	var out bytes.Buffer
	if code := run([]string{"config", "check", p}, &out, &stderr); code != 0 || !strings.Contains(out.String(), "configuration OK") {
		t.Errorf("check of the converted file: exit %d\n%s%s", code, &out, &stderr)
	}
}
