package milter

import (
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/arc/arctest"
)

func TestTrustedARCSealersRescueFailures(t *testing.T) {
	list := arctest.NewSealer(t, "lists.example", "arc", false)
	relay := arctest.NewSealer(t, "relay.example", "arc", false)
	stranger := arctest.NewSealer(t, "stranger.example", "arc", true)
	dns := map[string][]string{}
	for k, v := range testDNS {
		dns[k] = v
	}
	for _, s := range []*arctest.Sealer{list, relay, stranger} {
		dns[s.Selector+"._domainkey."+s.Domain] = []string{s.TXT()}
	}
	// The mailing list received the original, which passed there.
	passAtList := []string{"spf=pass smtp.mailfrom=bounce@reject.example", "dkim=pass header.d=reject.example header.s=s1"}
	message := func(from string) *arctest.Message {
		m := arctest.NewMessage()
		m.Set("From", " Alice <alice@"+from+">")
		return m
	}
	tests := []struct {
		name   string
		build  func() *arctest.Message
		action gomilter.ActionType
		header string
	}{
		{"a p=reject failure sealed by a trusted list whose results pass is delivered",
			func() *arctest.Message {
				m := message("reject.example")
				list.Seal(t, m, "none", passAtList...)
				return m
			},
			gomilter.ActionAccept, "arc=pass; dmarc=fail (p=reject dis=none override=trusted_forwarder) header.from=reject.example"},
		{"a p=quarantine failure is rescued too",
			func() *arctest.Message {
				m := message("quarantine.example")
				list.Seal(t, m, "none", "dkim=pass header.d=quarantine.example")
				return m
			},
			gomilter.ActionAccept, "dmarc=fail (p=quarantine dis=none override=trusted_forwarder)"},
		{"two trusted hops count from the newest back",
			func() *arctest.Message {
				m := message("reject.example")
				list.Seal(t, m, "none", passAtList...)
				relay.Seal(t, m, "pass", "spf=fail smtp.mailfrom=list@lists.example")
				return m
			},
			gomilter.ActionAccept, "override=trusted_forwarder"},
		{"an untrusted sealer rescues nothing",
			func() *arctest.Message {
				m := message("reject.example")
				stranger.Seal(t, m, "none", passAtList...)
				return m
			},
			gomilter.ActionRejectWithCode, ""},
		{"a trusted seal behind an untrusted newest hop rescues nothing",
			func() *arctest.Message {
				m := message("reject.example")
				list.Seal(t, m, "none", passAtList...)
				stranger.Seal(t, m, "pass")
				return m
			},
			gomilter.ActionRejectWithCode, ""},
		{"a trusted sealer whose results failed rescues nothing",
			func() *arctest.Message {
				m := message("reject.example")
				list.Seal(t, m, "none", "spf=fail smtp.mailfrom=x@evil.example", "dkim=fail header.d=reject.example")
				return m
			},
			gomilter.ActionRejectWithCode, ""},
		{"results that pass for another domain do not align",
			func() *arctest.Message {
				m := message("reject.example")
				list.Seal(t, m, "none", "dkim=pass header.d=evil.example")
				return m
			},
			gomilter.ActionRejectWithCode, ""},
		{"a broken chain rescues nothing",
			func() *arctest.Message {
				m := message("reject.example")
				list.Seal(t, m, "none", passAtList...)
				m.Body += "Added after sealing.\r\n"
				return m
			},
			gomilter.ActionRejectWithCode, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startWith(t, Strict, func(c *Config) {
				c.ARCTrustedSealers = []string{"lists.example", "relay.example"}
				c.SPFSelfCheck = false
			}, dmarc.MapResolver{TXT: dns})
			o := e.sendRaw(tt.build().Bytes(), nil)
			if o.act.Type != tt.action {
				t.Fatalf("action %v (%q), want %v\n%s", o.act.Type, o.act.SMTPReply, tt.action, e.logs)
			}
			if tt.header != "" && (len(o.inserted()) != 1 || !strings.Contains(o.inserted()[0], tt.header)) {
				t.Errorf("inserted %q, want %q", o.inserted(), tt.header)
			}
			if tt.action == gomilter.ActionAccept {
				rows := e.sink.Rows()
				if len(rows) != 1 || len(rows[0].Overrides) == 0 || rows[0].Overrides[len(rows[0].Overrides)-1].Type != "trusted_forwarder" {
					t.Errorf("rows %+v, want a trusted_forwarder override", rows)
				}
				if len(rows) == 1 && rows[0].ARC != "pass" {
					t.Errorf("row ARC %q, want our own check's pass", rows[0].ARC)
				}
			}
		})
	}
}
