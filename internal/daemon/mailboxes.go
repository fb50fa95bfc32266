package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd/report/received"
	"github.com/dmarcd/dmarcd/report/store"
)

// mailboxIngester stores the reports in the mail that the milter passes
// it: the messages addressed to received.mailboxes. It implements
// milter.ReportIngester. One goroutine reads and stores them in turn, off
// the SMTP reply path; the queue is bounded, and a message that does not
// fit is only delivered (the mailbox keeps it for dmarcd import).
type mailboxIngester struct {
	im  *received.Importer
	log *slog.Logger

	mu     sync.Mutex // guards closed and sends on ch
	closed bool
	ch     chan mailboxMessage
	done   chan struct{}
}

type mailboxMessage struct {
	queueID string
	raw     []byte
}

// importTimeout bounds the storing of one message's reports.
const importTimeout = time.Minute

func newMailboxIngester(db store.Received, queue int, log *slog.Logger) *mailboxIngester {
	m := &mailboxIngester{log: log, ch: make(chan mailboxMessage, queue), done: make(chan struct{})}
	m.im = &received.Importer{
		Store: db,
		OnReject: func(r received.Reject) {
			log.Warn("report mailbox: report refused", "source", r.Source, "reason", r.Reason)
		},
		OnWarnings: func(src string, ws []string) {
			log.Info("report mailbox: report accepted with warnings", "source", src, "warnings", ws)
		},
	}
	go m.run()
	return m
}

// Ingest queues msg, or drops it with a warning when the queue is full
// or closed: the message itself is delivered either way.
func (m *mailboxIngester) Ingest(queueID string, msg []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		select {
		case m.ch <- mailboxMessage{queueID, msg}:
			return
		default:
		}
	}
	m.log.Warn("report mailbox: too many report mails waiting (received.queue_size); this one is delivered without being read: import the mailbox later",
		"queue_id", queueID)
}

func (m *mailboxIngester) run() {
	defer close(m.done)
	for msg := range m.ch {
		ctx, cancel := context.WithTimeout(context.Background(), importTimeout)
		src := "queue " + msg.queueID
		sum, err := m.im.ImportMessage(ctx, bytes.NewReader(msg.raw), src)
		cancel()
		if err != nil {
			m.log.Error("report mailbox: storing the reports failed; import the mailbox later", "queue_id", msg.queueID, "error", err)
			continue
		}
		m.log.Info("report mailbox: message read", "queue_id", msg.queueID, "reports", sum.Reports, "records", sum.Records,
			"failure_reports", sum.Failures, "duplicates", sum.Duplicates, "rejected", sum.Rejected)
	}
}

// close stops taking messages and waits until the queued ones are
// stored, or ctx ends.
func (m *mailboxIngester) close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.ch)
	}
	m.mu.Unlock()
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
