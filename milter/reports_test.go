package milter

import (
	"strings"
	"sync"
	"testing"
)

// ingested records what the milter hands to the report ingester.
type ingested struct {
	mu   sync.Mutex
	msgs map[string]string // by queue ID
}

func (r *ingested) Ingest(queueID string, msg []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs[queueID] = string(msg)
}

func TestMessagesToReportMailboxesAreHandedOver(t *testing.T) {
	rec := &ingested{msgs: map[string]string{}}
	e := start(t, Strict, func(c *Config) { c.ReportMailboxes = []string{"dmarc-reports@mx.test"} }, nil)
	cfg, deps := e.srv.snapshot()
	deps.Reports = rec
	e.srv.Reload(cfg, deps)

	tests := []struct {
		name   string
		m      msg
		handed bool
	}{
		{"a report mail to the mailbox is handed over whole",
			msg{mailFrom: "noreply-dmarc-support@google.com", rcpts: []string{"DMARC-Reports@mx.test"},
				headers: headers("From: noreply-dmarc-support@google.com", "Subject: Report domain: mx.test")}, true},
		{"mail to another recipient is not",
			msg{mailFrom: "a@none.example", headers: headers("From: a@none.example")}, false},
		{"a report mail that DMARC rejects is not",
			msg{mailFrom: "x@evil.example", rcpts: []string{"dmarc-reports@mx.test"}, headers: headers("From: a@reject.example")}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clear(rec.msgs)
			e.t = t
			e.send(tc.m)
			got, ok := rec.msgs["QID123"]
			if ok != tc.handed {
				t.Fatalf("handed over: %v, want %v", ok, tc.handed)
			}
			if ok && (!strings.Contains(got, "Report domain: mx.test\r\n") || !strings.HasSuffix(got, "\r\n\r\nHello.\r\n")) {
				t.Errorf("handed over %q, want the header fields, an empty line and the body", got)
			}
		})
	}

}
