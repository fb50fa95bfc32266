package difftest

import (
	"reflect"
	"strings"
	"testing"
)

// These run everywhere, root or not: they check the test's own parts.

func TestTheCorpusHasAtLeast200UniquelyNamedMessages(t *testing.T) {
	c := buildCorpus()
	if len(c.messages) < 200 {
		t.Errorf("%d messages, want at least 200", len(c.messages))
	}
	seen := map[string]bool{}
	for _, m := range c.messages {
		if seen[m.Name] {
			t.Errorf("two messages named %q", m.Name)
		}
		seen[m.Name] = true
		if m.Category == "" {
			t.Errorf("%q has no category", m.Name)
		}
	}
}

func TestTheCorpusIsTheSameEveryTime(t *testing.T) {
	if a, b := buildCorpus(), buildCorpus(); !reflect.DeepEqual(a, b) {
		t.Error("two builds of the corpus differ; the inside and outside runs would not agree")
	}
}

func TestEveryAllowanceSaysWhyAndCitesAnRFC(t *testing.T) {
	for _, a := range allowList {
		if a.name == "" || a.reason == "" || !strings.Contains(a.rfc, "RFC ") || a.match == nil {
			t.Errorf("allowance %q lacks a name, a reason, an RFC section or a predicate", a.name)
		}
	}
}

func TestDMARCClausesAreReadInBothShapes(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []clause
	}{
		{"OpenDMARC's header", "mx.diff.test; dmarc=pass (p=reject dis=none) header.from=rej.test",
			[]clause{{"pass", "reject", "none", "rej.test"}}},
		{"a result without policy", "mx.diff.test; dmarc=permerror header.from=x.test",
			[]clause{{"permerror", "", "", "x.test"}}},
		{"a reason holding parentheses and a semicolon", `mx.diff.test; dmarc=temperror reason="lookup (p=reject dis=none); failed" header.from=x.test`,
			[]clause{{"temperror", "", "", "x.test"}}},
		{"a reason quoting another result", `mx.diff.test; dmarc=permerror reason="not \"dmarc=pass (p=none dis=none)\"" header.from=x.test`,
			[]clause{{"permerror", "", "", "x.test"}}},
		{"overrides after dis", "mx.diff.test; dmarc=fail (p=reject dis=quarantine override=sampled_out) header.from=x.test",
			[]clause{{"fail", "reject", "quarantine", "x.test"}}},
		{"other methods first and two From domains", "mx.diff.test; spf=pass smtp.mailfrom=x.test; dmarc=fail (p=none dis=none) header.from=a.test; dmarc=pass (p=reject dis=none) header.from=B.TEST",
			[]clause{{"fail", "none", "none", "a.test"}, {"pass", "reject", "none", "b.test"}}},
		{"no dmarc= at all", "mx.diff.test; spf=pass smtp.mailfrom=x.test", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dmarcClauses(tt.value); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("dmarcClauses(%q) = %+v, want %+v", tt.value, got, tt.want)
			}
		})
	}
}
