package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/dnstest"
)

func TestTestCommandPrintsTheVerdict(t *testing.T) {
	dns := dnstest.Start(t,
		"example. 300 IN SOA ns.example. h.example. 1 300 300 300 300",
		`_dmarc.reject.example. 300 IN TXT "v=DMARC1; p=reject"`)
	dir := t.TempDir()
	conf := filepath.Join(dir, "dmarcd.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("authserv_id = \"mx.test\"\ntrusted_authserv_ids = [\"border.test\"]\n[dns]\nnameservers = [%q]\n", dns.Addr())), 0o644)
	write := func(name, msg string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(strings.ReplaceAll(msg, "\n", "\r\n")), 0o644)
		return p
	}
	forged := write("forged.eml", "Return-Path: <x@evil.example>\nFrom: ceo@reject.example\nSubject: pay\n\nNow.\n")
	signed := write("signed.eml", "Authentication-Results: border.test; dkim=pass header.d=reject.example header.s=s\nFrom: ceo@reject.example\nSubject: hi\n\nHello.\n")
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"an unauthenticated message under p=reject is refused", forged, []string{"action: reject", "reply: 550 5.7.1 rejected by DMARC policy for reject.example"}},
		{"a message with a trusted aligned DKIM pass is accepted with our header", signed, []string{"action: accept",
			"insert 0 Authentication-Results: mx.test; spf=none smtp.mailfrom=reject.example; dmarc=pass (p=reject dis=none) header.from=reject.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run([]string{"test", "-q", "-c", conf, tt.file}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output %q lacks %q", out.String(), w)
				}
			}
		})
	}
}
