package arctest

import (
	"regexp"
	"strings"
)

// The canonicalizations of RFC 6376 §3.4, written for clarity rather than
// speed, over whole strings; the verifier's are streaming.

// canonHeader canonicalizes a whole field "Name: value" (RFC 6376
// §3.4.1, §3.4.2), with its CRLF.
func canonHeader(c, f string) string {
	if c == "simple" {
		return f + "\r\n"
	}
	name, value, _ := strings.Cut(f, ":")
	value = strings.ReplaceAll(strings.ReplaceAll(value, "\r\n", ""), "\n", "")
	words := strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == '\t' })
	return strings.ToLower(strings.TrimRight(name, " \t")) + ":" + strings.Join(words, " ") + "\r\n"
}

var wspRun = regexp.MustCompile(`[ \t]+`)

// canonBody canonicalizes a CRLF body (RFC 6376 §3.4.3, §3.4.4).
func canonBody(c, body string) string {
	lines := strings.Split(body, "\r\n")
	// A body ending in CRLF splits into a last empty element, which is no
	// line.
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if c == "relaxed" {
		for i, l := range lines {
			lines[i] = strings.TrimRight(wspRun.ReplaceAllString(l, " "), " ")
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		if c == "relaxed" {
			return ""
		}
		return "\r\n"
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}
