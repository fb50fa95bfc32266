package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Format is the syntax of a configuration file.
type Format uint8

// The formats dmarcd reads.
const (
	// FormatTOML is dmarcd.toml.
	FormatTOML Format = iota
	// FormatOpenDMARC is OpenDMARC's opendmarc.conf: "Key value" lines.
	FormatOpenDMARC
)

// String returns "dmarcd.toml" or "opendmarc.conf".
func (f Format) String() string {
	if f == FormatOpenDMARC {
		return "opendmarc.conf"
	}
	return "dmarcd.toml"
}

// tomlLine matches the start of a line that only TOML has: a [table] or
// [[array]] header, or a key followed by "=".
var tomlLine = regexp.MustCompile(`^\s*(\[|[A-Za-z0-9_.'"-]+\s*=)`)

// DetectFormat tells which syntax a configuration file uses, from its name
// and its content:
//
//  1. a name ending in ".toml" is TOML, whatever it holds;
//  2. otherwise the first line that is neither blank nor a comment
//     decides: "[table]" or "key = value" is TOML, anything else (OpenDMARC's
//     "Key value") is opendmarc.conf;
//  3. a file with no such line is opendmarc.conf if its name contains
//     "opendmarc", TOML otherwise. The two formats read an empty file to
//     different defaults (OpenDMARC's and dmarcd's).
func DetectFormat(name string, data []byte) Format {
	if strings.HasSuffix(name, ".toml") {
		return FormatTOML
	}
	for _, line := range strings.Split(string(bytes.TrimPrefix(data, []byte("\uFEFF"))), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if tomlLine.MatchString(t) {
			return FormatTOML
		}
		return FormatOpenDMARC
	}
	if strings.Contains(strings.ToLower(filepath.Base(name)), "opendmarc") {
		return FormatOpenDMARC
	}
	return FormatTOML
}

// ParseAs reads a configuration document in the format given: Parse for
// TOML, which has no warnings, or ParseOpenDMARC.
func ParseAs(f Format, name string, data []byte) (*Config, []Warning, error) {
	if f == FormatOpenDMARC {
		return ParseOpenDMARC(name, data)
	}
	c, err := Parse(name, data)
	return c, nil, err
}

// ParseAuto reads a configuration document in the format DetectFormat
// finds.
func ParseAuto(name string, data []byte) (*Config, []Warning, error) {
	return ParseAs(DetectFormat(name, data), name, data)
}

// LoadAuto reads the configuration file at path, dmarcd.toml or
// opendmarc.conf as DetectFormat tells. Errors and warnings name the file
// by path.
func LoadAuto(path string) (*Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return ParseAuto(path, data)
}

// WriteConverted writes c as WriteTOML does, after a comment naming the
// file it was read from and its format, and listing the warnings of the
// conversion, so that they stay with the result.
func (c *Config) WriteConverted(w io.Writer, from string, f Format, warnings []Warning) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Converted from %s (%s) by dmarcd config convert.\n", from, f)
	if f == FormatOpenDMARC {
		b.WriteString("# Keys that file does not set have OpenDMARC's defaults here; the\n" +
			"# \"Default:\" lines are dmarcd's own, which a key takes when removed.\n")
	}
	if len(warnings) > 0 {
		b.WriteString("#\n# Warnings:\n")
		for _, wn := range warnings {
			for i, line := range wrap(commentSafe(wn.String()), 74) {
				if i == 0 {
					fmt.Fprintf(&b, "# - %s\n", line)
				} else {
					fmt.Fprintf(&b, "#   %s\n", line)
				}
			}
		}
	}
	b.WriteString("\n")
	if err := c.WriteTOML(&b); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// wrap splits text into lines of at most width bytes at spaces; longer
// words get lines of their own.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// commentSafe escapes what a TOML comment cannot hold (control characters,
// invalid UTF-8) as \xNN.
func commentSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || r < ' ' && r != '\t' || r == 0x7f {
			fmt.Fprintf(&b, "\\x%02x", s[i])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}
