// Package outbound queues dmarcd's failure reports in the store and sends
// them: Queue is the milter's sink, Sender drains the queue under the
// store's "failure-sender" lease. See report/failure for what a report
// holds and when one is made.
package outbound

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dmarcd/dmarcd/report/failure"
	"github.com/dmarcd/dmarcd/report/store"
)

// QueueConfig is what a Queue does with incidents.
type QueueConfig struct {
	// Redactor redacts every incident before it is stored.
	Redactor failure.Redactor
	// DedupWindow is how long a failure, once queued, keeps the same
	// failure (failure.DedupKey) from being queued again. Zero means a day.
	DedupWindow time.Duration
}

// Queue is the milter's FailureSink: Add hands it an incident without
// waiting; a goroutine redacts incidents, removes duplicates and writes
// them to the store's failure queue in batches. When the store is slow or
// down and size incidents (or 64 MiB of them) wait, further ones are
// dropped and counted (QueueStats.Overflow): the MTA must never wait for
// failure reports.
type Queue struct {
	st  store.FailureQueue
	log *slog.Logger
	cfg atomic.Pointer[QueueConfig]
	// ch holds pointers: a channel of values would allocate room for
	// size whole incidents (megabytes) up front, for a queue that is
	// nearly always empty.
	ch     chan *failure.Incident
	queued func() // called after a batch queued something

	closeOnce sync.Once
	done      chan struct{}

	received, written, duplicates, overflow, errs atomic.Int64
	lastOverflowLog                               atomic.Int64
	// held is the size of the incidents in the channel, bounded by
	// maxHeld: a queue of big whole messages must not eat the memory
	// when the store is down.
	held atomic.Int64
}

// maxHeld bounds the bytes of header fields and bodies waiting in a
// Queue's memory.
const maxHeld = 64 << 20

// sizeOf is roughly what an incident holds in memory.
func sizeOf(inc failure.Incident) int64 {
	n := int64(len(inc.Body)) + 512
	for _, f := range inc.Headers {
		n += int64(len(f.Name) + len(f.Value))
	}
	return n
}

// QueueStats counts what a Queue did since it started.
type QueueStats struct {
	// Received counts incidents Add took; Overflow those it dropped
	// because the queue was full.
	Received, Overflow int64
	// Written counts reports queued in the store (one per destination),
	// Duplicates those left out as duplicates, Errors the incidents lost
	// to store errors.
	Written, Duplicates, Errors int64
}

// NewQueue starts a queue holding up to size incidents in memory (1,000 if
// size is not positive) in front of st. queued, if not nil, is called after
// each batch that queued a report: the Sender's Wake.
func NewQueue(st store.FailureQueue, cfg QueueConfig, size int, queued func(), log *slog.Logger) *Queue {
	if size <= 0 {
		size = 1000
	}
	q := &Queue{st: st, log: cmp.Or(log, slog.Default()), ch: make(chan *failure.Incident, size), queued: queued, done: make(chan struct{})}
	q.Reload(cfg)
	go q.run()
	return q
}

// Reload replaces the configuration for the incidents written from now on.
func (q *Queue) Reload(cfg QueueConfig) {
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 24 * time.Hour
	}
	q.cfg.Store(&cfg)
}

// Add queues an incident without blocking. It reports false when the
// incident was dropped because the queue is full (or closed).
func (q *Queue) Add(inc failure.Incident) (ok bool) {
	defer func() {
		if recover() != nil { // closed: the daemon is stopping
			ok = false
		}
	}()
	q.received.Add(1)
	size := sizeOf(inc)
	if q.held.Add(size) > maxHeld {
		q.held.Add(-size)
		q.dropped(inc)
		return false
	}
	select {
	case q.ch <- &inc:
		return true
	default:
		q.held.Add(-size)
		q.dropped(inc)
		return false
	}
}

// dropped counts an incident the queue had no room for, and says so in the
// log once a minute at most: a flood must not flood the log.
func (q *Queue) dropped(inc failure.Incident) {
	n := q.overflow.Add(1)
	now := time.Now().Unix()
	if last := q.lastOverflowLog.Load(); now-last >= 60 && q.lastOverflowLog.CompareAndSwap(last, now) {
		q.log.Warn("failure report queue full: incident dropped", "dropped_so_far", n, "policy_domain", inc.PolicyDomain)
	}
}

// Stats returns the counts so far.
func (q *Queue) Stats() QueueStats {
	return QueueStats{Received: q.received.Load(), Overflow: q.overflow.Load(), Written: q.written.Load(),
		Duplicates: q.duplicates.Load(), Errors: q.errs.Load()}
}

// Close stops taking incidents and writes those waiting, until ctx ends.
func (q *Queue) Close(ctx context.Context) error {
	q.closeOnce.Do(func() { close(q.ch) })
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxBatch bounds the incidents written in one transaction.
const maxBatch = 100

func (q *Queue) run() {
	defer close(q.done)
	for inc := range q.ch {
		batch := []failure.Incident{*inc}
	more:
		for len(batch) < maxBatch {
			select {
			case next, ok := <-q.ch:
				if !ok {
					break more
				}
				batch = append(batch, *next)
			default:
				break more
			}
		}
		q.write(batch)
		for _, inc := range batch {
			q.held.Add(-sizeOf(inc))
		}
	}
}

// write redacts and stores a batch; a store error loses the batch, which
// is counted and logged (the milter must not wait for a database).
func (q *Queue) write(batch []failure.Incident) {
	cfg := q.cfg.Load()
	var fs []store.NewFailure
	for _, inc := range batch {
		fs = append(fs, Rows(inc, cfg.Redactor)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, dup, err := q.st.EnqueueFailures(ctx, fs, cfg.DedupWindow)
	if err != nil {
		q.errs.Add(int64(len(batch)))
		q.log.Error("failure reports not queued", "incidents", len(batch), "err", err)
		return
	}
	q.written.Add(int64(n))
	q.duplicates.Add(int64(dup))
	if n > 0 && q.queued != nil {
		q.queued()
	}
}

// Rows turns an incident into the store's rows: one per mailto: ruf
// destination, each with its own dedup key (from the incident before
// redaction) and the redacted incident naming that destination alone.
func Rows(inc failure.Incident, r failure.Redactor) []store.NewFailure {
	red := r.Redact(inc)
	var out []store.NewFailure
	for _, d := range inc.RUF {
		if d.Address == "" {
			continue
		}
		one := red
		one.RUF = []failure.Destination{d}
		js, err := json.Marshal(one)
		if err != nil {
			continue // an Incident always marshals; nothing to report otherwise
		}
		out = append(out, store.NewFailure{
			PolicyDomain: inc.PolicyDomain, Destination: d.Address, DestDomain: d.Domain(),
			DedupKey: failure.DedupKey(inc, d.Address), Incident: js, Created: inc.Arrival,
		})
	}
	return out
}
