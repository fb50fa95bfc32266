package arctest

import (
	"fmt"
	"strings"
	"testing"
)

// TestSeal checks the shape of what two hops write: three ARC fields per
// instance with the right i=, on top of the header, newest set first and
// ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results within it.
func TestSeal(t *testing.T) {
	m := NewMessage()
	before := len(m.Headers())
	NewSealer(t, "gw.example.net", "arc1", false).Seal(t, m, "none", "spf=pass smtp.mailfrom=example.com")
	m.Set("Subject", "[team] Quarterly numbers")
	m.Body += "-- \r\nteam mailing list\r\n"
	NewSealer(t, "lists.example.org", "s1", true).Seal(t, m, "pass")

	h := m.Headers()
	if len(h) != before+6 {
		t.Fatalf("%d fields, want %d", len(h), before+6)
	}
	want := []struct {
		name, prefix string
	}{
		{"ARC-Seal", " i=2; a=ed25519-sha256; t=1749546842; cv=pass;\r\n        d=lists.example.org; s=s1;"},
		{"ARC-Message-Signature", " i=2; a=ed25519-sha256; c=relaxed/relaxed; d=lists.example.org;"},
		{"ARC-Authentication-Results", " i=2; lists.example.org;\r\n       none"},
		{"ARC-Seal", " i=1; a=rsa-sha256; t=1749546842; cv=none;\r\n        d=gw.example.net; s=arc1;"},
		{"ARC-Message-Signature", " i=1; a=rsa-sha256; c=relaxed/relaxed; d=gw.example.net;"},
		{"ARC-Authentication-Results", " i=1; gw.example.net;\r\n       spf=pass smtp.mailfrom=example.com"},
	}
	for i, w := range want {
		if h[i][0] != w.name || !strings.HasPrefix(h[i][1], w.prefix) {
			t.Errorf("field %d is %s:%q, want %s:%q...", i, h[i][0], h[i][1], w.name, w.prefix)
		}
	}
	if h[6][0] != "From" || h[8] != [2]string{"Subject", " [team] Quarterly numbers"} {
		t.Errorf("the author's fields moved: %q", h[6:])
	}

	raw := string(m.Bytes())
	if !strings.HasPrefix(raw, "ARC-Seal: i=2; ") || !strings.Contains(raw, "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello team,\r\n") || !strings.HasSuffix(raw, "team mailing list\r\n") {
		t.Errorf("Bytes() = %q", raw)
	}
	if strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\n") {
		t.Error("Bytes() has a bare LF")
	}
}

func TestSealInstance(t *testing.T) {
	m := NewMessage()
	s := NewSealer(t, "ed.example", "ed1", true)
	for i := 1; i <= 3; i++ {
		s.Seal(t, m, "pass")
	}
	counts := map[string]int{}
	for i, f := range m.Headers()[:9] {
		inst := 3 - i/3
		if !strings.HasPrefix(f[1], fmt.Sprintf(" i=%d;", inst)) {
			t.Errorf("field %d %s:%q, want i=%d", i, f[0], f[1], inst)
		}
		counts[f[0]]++
	}
	if counts["ARC-Seal"] != 3 || counts["ARC-Message-Signature"] != 3 || counts["ARC-Authentication-Results"] != 3 {
		t.Errorf("ARC fields %v, want three of each", counts)
	}
}

func TestKeyRecord(t *testing.T) {
	a := NewSealer(t, "Example.ORG", "s1", false)
	if b := NewSealer(t, "example.org", "s1", false); b.TXT() != a.TXT() {
		t.Error("the same sealer made twice has two keys")
	}
	if e := NewSealer(t, "example.org", "s1", true); !strings.HasPrefix(e.TXT(), "v=DKIM1; k=ed25519; p=") || e.TXT() == a.TXT() {
		t.Errorf("Ed25519 record %q", e.TXT())
	}
	rr := a.RR()
	if !strings.HasPrefix(rr, `s1._domainkey.Example.ORG. 300 IN TXT "v=DKIM1; k=rsa; p=`) {
		t.Errorf("RR() = %q", rr)
	}
	// A 2048-bit key's record is longer than one character-string holds.
	_, text, _ := strings.Cut(rr, `TXT "`)
	parts := strings.Split(strings.TrimSuffix(text, `"`), `" "`)
	if len(parts) != 2 || len(parts[0]) != 255 || strings.Join(parts, "") != a.TXT() {
		t.Errorf("RR() splits the record as %q", parts)
	}
}
