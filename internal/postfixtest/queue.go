package postfixtest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// QueuedMessage is a message in the instance's queue, as postqueue -j
// reports it.
type QueuedMessage struct {
	// QueueName is the queue it is in: "hold" for a message a milter
	// quarantined, else "incoming", "active", "deferred" or "maildrop".
	QueueName string `json:"queue_name"`
	QueueID   string `json:"queue_id"`
	// ArrivalTime is in seconds since the epoch.
	ArrivalTime  int64 `json:"arrival_time"`
	MessageSize  int64 `json:"message_size"`
	ForcedExpire bool  `json:"forced_expire"`
	// Sender is the envelope sender; "" for the null sender.
	Sender     string            `json:"sender"`
	Recipients []QueuedRecipient `json:"recipients"`
}

// QueuedRecipient is a recipient of a queued message.
type QueuedRecipient struct {
	Address string `json:"address"`
	// DelayReason says why delivery was deferred, if it was.
	DelayReason string `json:"delay_reason,omitempty"`
}

// Queue returns every message in the instance's queue (postqueue -c DIR
// -j), in postqueue's order.
func (p *Postfix) Queue(t testing.TB) []QueuedMessage {
	t.Helper()
	cmd := exec.Command(p.bins.postqueue, "-c", p.etc(), "-j")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("postfixtest: postqueue -c %s -j: %v\n%s", p.etc(), err, stderr.Bytes())
	}
	var msgs []QueuedMessage
	for line := range strings.Lines(string(out)) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m QueuedMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("postfixtest: postqueue -j: %v in %q", err, line)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// Held returns the messages in the hold queue: those a milter quarantined.
func (p *Postfix) Held(t testing.TB) []QueuedMessage {
	t.Helper()
	var held []QueuedMessage
	for _, m := range p.Queue(t) {
		if m.QueueName == "hold" {
			held = append(held, m)
		}
	}
	return held
}

// WaitDrained waits until no message is on its way through the queue
// (incoming, active, maildrop), so that whatever was accepted is now
// delivered, held, bounced or deferred, and fails the test after timeout.
func (p *Postfix) WaitDrained(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		busy := slices.ContainsFunc(p.Queue(t), func(m QueuedMessage) bool {
			return m.QueueName != "hold" && m.QueueName != "deferred"
		})
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfixtest: queue not drained after %v: %+v\n%s", timeout, p.Queue(t), tail(p.Log(), 50))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// QueuedMail returns the header and body of a message in the queue (a held
// one, typically), as postcat -c DIR -hb -q ID shows it: with the milter's
// changes applied.
func (p *Postfix) QueuedMail(t testing.TB, queueID string) Mail {
	t.Helper()
	cmd := exec.Command(p.bins.postcat, "-c", p.etc(), "-h", "-b", "-q", queueID)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("postfixtest: postcat -q %s: %v\n%s", queueID, err, stderr.Bytes())
	}
	m, err := ParseMail(out)
	if err != nil {
		t.Fatalf("postfixtest: postcat -q %s: %v\n%s", queueID, err, out)
	}
	return m
}
