package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/dmarc"
)

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                Format
	}{
		{"a .toml name is TOML whatever it holds", "x.toml", "Socket inet:8893\n", FormatTOML},
		{"a table header is TOML", "dmarcd.conf", "# c\n\n[milter]\n", FormatTOML},
		{"an array of tables is TOML", "x", "[[listener]]\n", FormatTOML},
		{"a key and = is TOML", "x", "spec = \"rfc7489\"\n", FormatTOML},
		{"a dotted key without spaces is TOML", "x", "milter.dns_budget=\"5s\"\n", FormatTOML},
		{"a quoted key is TOML", "x", "\"spec\" = \"rfc7489\"\n", FormatTOML},
		{"a key and a value is opendmarc.conf", "dmarcd.conf", "# comment\n  \nSocket inet:8893@localhost\n", FormatOpenDMARC},
		{"a value holding = is still opendmarc.conf", "x", "RejectString a = b\n", FormatOpenDMARC},
		{"a key alone is opendmarc.conf", "x", "PidFile\n", FormatOpenDMARC},
		{"a BOM is skipped", "x", "\uFEFF[log]\n", FormatTOML},
		{"comments only, named opendmarc, is opendmarc.conf", "/etc/opendmarc.conf", "# all commented out\n", FormatOpenDMARC},
		{"comments only, named otherwise, is TOML", "/etc/dmarcd/dmarcd.conf", "# all commented out\n", FormatTOML},
		{"an empty file is TOML", "x", "", FormatTOML},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectFormat(tc.file, []byte(tc.content)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLoadAutoReadsBothFormats(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, ws, err := LoadAuto(write("dmarcd.toml", "spec = \"rfc7489\"\n"))
	if err != nil || ws != nil || c.Spec != dmarc.RFC7489 || c.Listeners[0].Mode != ModeStrict {
		t.Errorf("TOML: %v %v %+v", err, ws, c)
	}
	c, ws, err = LoadAuto(write("opendmarc.conf", "Socket inet:8893@127.0.0.1\nBackground false\n"))
	if err != nil || len(ws) != 1 || c.Spec != dmarc.RFC7489 || c.Listeners[0].Mode != ModeRelaxed {
		t.Errorf("opendmarc.conf: %v %v %+v", err, ws, c)
	}
	_, _, err = LoadAuto(write("bad.conf", "Socket inet:8893@127.0.0.1\nRejectFailures maybe\n"))
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "bad.conf")+":2: RejectFailures: ") {
		t.Errorf("got %v", err)
	}
	if _, _, err := LoadAuto(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestParseAsIgnoresTheContent(t *testing.T) {
	// A TOML file read as opendmarc.conf gives warnings, not a TOML config.
	c, ws, err := ParseAs(FormatOpenDMARC, "x", []byte("spec = \"rfc9989\"\n"))
	if err != nil || c.Spec != dmarc.RFC7489 || len(ws) == 0 {
		t.Errorf("got %v %v %+v", err, ws, c)
	}
}

func TestWriteConvertedListsTheWarnings(t *testing.T) {
	c, ws, err := parseOD("Socket inet:1@127.0.0.1", "AutoRestart yes", "IgnoreMailTo dmarc@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.WriteConverted(&b, "/etc/opendmarc.conf", FormatOpenDMARC, ws); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# Converted from /etc/opendmarc.conf (opendmarc.conf) by dmarcd config convert.\n",
		"# - opendmarc.conf:2: AutoRestart: ignored: systemd does this for dmarcd; use\n#   Restart=on-failure in the unit\n",
		"# - opendmarc.conf:3: IgnoreMailTo: mapped to ignore.recipients",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for i, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "# ") && len(line) > 80 {
			t.Errorf("line %d is %d bytes long: %q", i+1, len(line), line)
		}
	}
	back, err := Parse("converted.toml", b.Bytes())
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Errorf("does not read back: %v", err)
	}
}
