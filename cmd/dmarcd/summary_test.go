package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/report/received"
)

// ptrMap answers PTR lookups from a map.
type ptrMap map[string]string

func (m ptrMap) LookupAddr(_ context.Context, addr string) ([]string, error) {
	if n, ok := m[addr]; ok {
		return []string{n}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

// withResolver makes summary look PTR names up in m.
func withResolver(t *testing.T, m ptrMap) {
	old := newResolver
	newResolver = func(*config.Config) (received.Resolver, error) { return m, nil }
	t.Cleanup(func() { newResolver = old })
}

// importedState is a state directory holding the providers' reports.
func importedState(t *testing.T) string {
	t.Helper()
	state := t.TempDir()
	if code, out, errOut := runCmd("import", "-state-dir", state, providers); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	return state
}

func TestSummaryCommand(t *testing.T) {
	state := importedState(t)
	withResolver(t, ptrMap{"192.0.2.11": "mta2.example.org.", "203.0.113.9": "mailer.spoof.example."})
	code, out, errOut := runCmd("summary", "-state-dir", state, "--domain", "Example.ORG", "--days", "15", "-until", "2025-01-02", "-top", "3")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, frag := range []string{
		"example.org: 2024-12-19 to 2025-01-02 (15 days, UTC)\n",
		"  messages     458 in 4 aggregate reports, 1 failure report\n",
		"  compliant    442 (96.5%) passed DMARC: aligned SPF or DKIM\n",
		"  disposition  none 445, quarantine 12 (2.6%), reject 1 (0.2%)\n",
		"  SPF          96.9% pass, 87.7% aligned\n",
		"  DKIM         96.0% pass, 96.0% aligned\n",
		"  aligned      99.5% of the authenticated messages\n",
		"  policy       p=quarantine sp=quarantine np=reject (adkim=r aspf=r)",
		"    192.0.2.11              mta2.example.org  250       100.0%     100.0%    100.0%     none 250\n",
		"    203.0.113.9     mailer.spoof.example  8        8         0.0%      0.0%       none 0, quarantine 8\n",
		"    Yahoo               1        260       99.6%\n",
		"  rollout: example.org has been at p=quarantine for 2 days with 96.5% compliance",
	} {
		if !strings.Contains(out, frag) {
			t.Errorf("summary lacks %q:\n%s", frag, out)
		}
	}
	if strings.Count(out, "\n    Yahoo") != 1 || strings.Contains(out, "GMX") {
		t.Errorf("-top 3 lists more than 3 reporters:\n%s", out)
	}
}

func TestSummaryCommandJSON(t *testing.T) {
	state := importedState(t)
	code, out, errOut := runCmd("summary", "-state-dir", state, "-until", "2025-01-02", "-json", "-no-names")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var sums []received.Summary
	if err := json.Unmarshal([]byte(out), &sums); err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].Domain != "example.org" || sums[0].Messages != 458 || len(sums[0].Days) != 15 ||
		sums[0].Sources[0].Name != "" || sums[0].Rollout.Advice != received.AdviceFix {
		t.Errorf("summaries %+v", sums)
	}
}

func TestSummaryCommandWithoutData(t *testing.T) {
	state := importedState(t)
	code, out, _ := runCmd("summary", "-state-dir", state, "-until", "2026-01-01", "-no-names")
	if code != 0 || out != "no reports received from 2025-12-18 to 2026-01-01 (UTC); import some with \"dmarcd import\"\n" {
		t.Errorf("exit %d, %q", code, out)
	}
	code, out, _ = runCmd("summary", "-state-dir", state, "-until", "2025-01-02", "-no-names", "-domain", "other.example")
	if code != 0 || !strings.Contains(out, "messages  0 in 0 aggregate reports\n") || !strings.Contains(out, "rollout: other.example: no aggregate reports yet") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestSummaryCommandUsage(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		err  string
	}{
		{"a stray argument", []string{"summary", "example.org"}, `unexpected argument "example.org"`},
		{"zero days", []string{"summary", "-days", "0"}, "-days 0: want 1 to 3660"},
		{"a bad date", []string{"summary", "-until", "1/2/2025"}, `-until "1/2/2025": want a date`},
		{"no top", []string{"summary", "-top", "0"}, "-top 0: want at least 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCmd(c.args...)
			if code != 2 || !strings.Contains(errOut, c.err) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, c.err)
			}
		})
	}
	old := newResolver
	newResolver = func(*config.Config) (received.Resolver, error) { return nil, errors.New("no nameserver") }
	defer func() { newResolver = old }()
	if code, _, errOut := runCmd("summary", "-state-dir", t.TempDir()); code != 2 || !strings.Contains(errOut, "no nameserver") {
		t.Errorf("a resolver that cannot start: exit %d, %q", code, errOut)
	}
}
