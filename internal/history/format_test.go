package history

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.history from Format's output")

func TestGolden(t *testing.T) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			got := Format(c.rec)
			path := filepath.Join("testdata", c.name+".history")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Format differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}

// TestFormatShape checks what every record must be whatever its values:
// OpenDMARC's keys in OpenDMARC's order, one record starting at job, no
// blank line, every line ending in a newline.
func TestFormatShape(t *testing.T) {
	fixed := []string{"job", "reporter", "received", "ipaddr", "from", "mfrom"}
	middle := []string{"spf", "pdomain", "policy"}
	tail := []string{"pct", "adkim", "aspf", "p", "sp", "align_dkim", "align_spf", "arc", "arc_policy", "action"}
	for _, c := range cases() {
		b := Format(c.rec)
		if !bytes.HasSuffix(b, []byte("\n")) {
			t.Errorf("%s: no final newline", c.name)
		}
		var keys []string
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l == "" {
				t.Errorf("%s: blank line", c.name)
				continue
			}
			k, _, ok := strings.Cut(l, " ")
			if !ok {
				t.Errorf("%s: line %q has no value", c.name, l)
			}
			keys = append(keys, k)
		}
		// Collapse the repeatable keys, then compare.
		var shape []string
		for _, k := range keys {
			if (k == "dkim" || k == "rua") && len(shape) > 0 && shape[len(shape)-1] == k {
				continue
			}
			shape = append(shape, k)
		}
		var want []string
		want = append(want, fixed...)
		if containsKey(keys, "dkim") {
			want = append(want, "dkim")
		}
		want = append(want, middle...)
		want = append(want, "rua")
		want = append(want, tail...)
		if strings.Join(shape, ",") != strings.Join(want, ",") {
			t.Errorf("%s: keys %v, want %v", c.name, shape, want)
		}
	}
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// TestCodes pins every numeric code to the value in OpenDMARC 1.4.2's
// headers (opendmarc-ar.h, dmarc.h, opendmarc.h).
func TestCodes(t *testing.T) {
	ares := map[string]int{
		"": -1, "pass": 0, "softfail": 2, "neutral": 3, "temperror": 4, "permerror": 5,
		"none": 6, "fail": 7, "policy": 8, "nxdomain": 9, "signed": 10, "unknown": 11,
		"discard": 12, "PASS": 0, "hardfail": 11, "bogus": 11,
	}
	for k, want := range ares {
		if got := ResultCode(k); got != want {
			t.Errorf("ResultCode(%q) = %d, want %d", k, got, want)
		}
	}
	pol := []struct {
		result, requested string
		want              int
	}{
		{"pass", "reject", 15}, {"pass", "", 15},
		{"fail", "reject", 16}, {"fail", "quarantine", 17}, {"fail", "none", 18}, {"fail", "", 18},
		{"none", "", 14}, {"temperror", "", 14}, {"permerror", "", 14}, {"", "", 14},
	}
	for _, c := range pol {
		if got := PolicyCode(c.result, c.requested); got != c.want {
			t.Errorf("PolicyCode(%q, %q) = %d, want %d", c.result, c.requested, got, c.want)
		}
	}
	tags := map[string]int{"": 0, "r": 114, "s": 115, "none": 110, "quarantine": 113, "reject": 114, "Reject": 114}
	for k, want := range tags {
		if got := TagCode(k); got != want {
			t.Errorf("TagCode(%q) = %d, want %d", k, got, want)
		}
	}
	acts := map[Action]int{ActionReject: 0, ActionDiscard: 1, ActionAccept: 2, ActionTempfail: 3, ActionQuarantine: 4, Action(99): 2}
	for a, want := range acts {
		if got := a.Code(); got != want {
			t.Errorf("%v.Code() = %d, want %d", a, got, want)
		}
	}
	var zero Record
	if zero.Action != ActionAccept {
		t.Errorf("zero Action is %v, want accept", zero.Action)
	}
	aligns := map[Alignment]int{Unchecked: 0, Aligned: 4, NotAligned: 5}
	for a, want := range aligns {
		if got := a.Code(); got != want {
			t.Errorf("Alignment(%d).Code() = %d, want %d", a, got, want)
		}
	}
}

// TestFormatEmpty is the record of a zero Record: still every key, so the
// importer takes it.
func TestFormatEmpty(t *testing.T) {
	got := string(Format(Record{}))
	want := "job (unknown-jobid)\nreporter \nreceived 0\nipaddr 127.0.0.1\nfrom \nmfrom \nspf -1\npdomain \npolicy 14\nrua -\n" +
		"pct 0\nadkim 0\naspf 0\np 0\nsp 0\nalign_dkim 0\nalign_spf 0\narc 7\narc_policy 2 json:[]\naction 2\n"
	if got != want {
		t.Errorf("Format(Record{}) =\n%s\nwant\n%s", got, want)
	}
}

// TestEscapingKeepsLines: no value, however hostile, adds a line.
func TestEscapingKeepsLines(t *testing.T) {
	nasty := "a\nb c\td\re\x00f\x7fg"
	r := Record{JobID: nasty, Reporter: nasty, From: nasty, MailFrom: nasty, PolicyDomain: nasty,
		RUA: []string{nasty}, DKIM: []DKIM{{Domain: nasty, Selector: nasty, Result: nasty}},
		ARCSeals: []ARCSeal{{Domain: nasty, Selector: nasty, ClientIP: nasty}}}
	base := strings.Count(string(Format(Record{DKIM: []DKIM{{Domain: "x"}}, RUA: []string{"x"}})), "\n")
	out := string(Format(r))
	if n := strings.Count(out, "\n"); n != base {
		t.Errorf("%d lines, want %d:\n%s", n, base, out)
	}
	if !strings.Contains(out, "from a%0Ab%20c%09d%0De%00f%7Fg\n") {
		t.Errorf("from not percent-encoded:\n%s", out)
	}
	if !strings.Contains(out, "dkim a%0Ab%20c%09d%0De%00f%7Fg a%0Ab%20c%09d%0De%00f%7Fg 11\n") {
		t.Errorf("dkim line not as expected:\n%s", out)
	}
}
