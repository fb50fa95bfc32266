package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dmarcd/dmarcd/report"
)

// Ingester takes rolled-up batches: a Store, or a test's stand-in.
type Ingester interface {
	Ingest(ctx context.Context, b *Batch) error
}

// WriterOptions tune a Writer. Zero fields take the defaults.
type WriterOptions struct {
	// QueueSize is how many rows may wait to be written; more are
	// dropped. Default 100,000.
	QueueSize int
	// FlushRows starts a write as soon as this many rows wait.
	// Default 1,000.
	FlushRows int
	// FlushInterval is the longest a row waits before a write starts.
	// Default 1 s.
	FlushInterval time.Duration
	// Logger receives the drop and failure warnings; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Writer is the report.Sink in front of a store: it takes rows from the
// milter without ever blocking, and writes them in the background by group
// commit: all the rows waiting, rolled up in memory (a thousand equal
// messages are one count += 1000), in one transaction, as soon as
// FlushRows are waiting or FlushInterval has passed.
//
// When the queue is full (the store is down or too slow), Add drops the row,
// counts it and logs, at most every 10 s, an error with the count. It does
// not wait instead, because the caller is answering an SMTP transaction:
// waiting on the database would turn a reporting problem into a mail
// problem, with the MTA's milter timeouts tempfailing or, worse, letting
// mail through unchecked. An aggregate report missing some messages is
// the lesser harm, and the drop counter says how many.
//
// A failed write is retried, with the same rows and a growing pause (up to
// 30 s), before new rows are taken; meanwhile the queue fills and then
// drops.
//
// What a crash loses: the rows in the queue and the write in progress,
// Stats().Queued + Stats().Pending. Under a steady load that is about
// the rows of the last FlushInterval or FlushRows, whichever is fewer,
// plus those that came in during one write; at most 2 × QueueSize (a full
// queue being written while another fills). Close writes everything first.
type Writer struct {
	ing    Ingester
	opts   WriterOptions
	log    *slog.Logger
	ctx    context.Context // for writes; cancelled when Close gives up
	cancel context.CancelFunc

	mu       sync.Mutex
	queue    []entry
	spare    []entry // the queue's other buffer
	accepted uint64  // rows ever queued
	closed   bool

	kick chan struct{} // FlushRows are waiting
	reqs chan flushReq // Flush and Close
	done chan struct{} // closed when run returns
	stop sync.Once     // Close

	processed atomic.Uint64 // rows taken from the queue and dealt with
	pending   atomic.Int64  // rows taken from the queue, not yet written
	written   atomic.Uint64
	skipped   atomic.Uint64
	dropped   atomic.Uint64
	flushes   atomic.Uint64
	failures  atomic.Uint64
	lastFlush atomic.Int64 // nanoseconds
	maxFlush  atomic.Int64
	// Drop logging: when the last drop warning went out, and the drop
	// count then.
	dropLogAt    atomic.Int64
	dropLogCount atomic.Uint64
}

// entry is a row as the queue keeps it: canonical and hashed already, by
// the goroutines calling Add, so that the writing goroutine only adds up.
type entry struct {
	key  Key
	hash KeyHash
	t    time.Time
	pub  report.Published
}

// flushReq asks run to write every row accepted up to upTo.
type flushReq struct {
	upTo  uint64
	close bool
	res   chan error
}

// WriterStats are a Writer's counters, for metrics and the log.
type WriterStats struct {
	// Queued is how many rows wait in the queue now.
	Queued int
	// Pending is how many rows were taken from the queue and are being
	// written (or retried).
	Pending int64
	// Added counts the rows accepted by Add.
	Added uint64
	// Written counts the rows committed to the store.
	Written uint64
	// Skipped counts the rows left out for having no policy.
	Skipped uint64
	// Dropped counts the rows Add refused: queue full or writer closed.
	Dropped uint64
	// Flushes and Failures count successful and failed transactions.
	Flushes, Failures uint64
	// LastFlush and MaxFlush are the durations of the latest and of the
	// longest transaction.
	LastFlush, MaxFlush time.Duration
}

// NewWriter starts a Writer in front of ing. Close it to write what is
// queued.
func NewWriter(ing Ingester, opts WriterOptions) *Writer {
	opts.QueueSize = cmp.Or(opts.QueueSize, 100_000)
	opts.FlushRows = cmp.Or(opts.FlushRows, 1_000)
	opts.FlushInterval = cmp.Or(opts.FlushInterval, time.Second)
	w := &Writer{
		ing:  ing,
		opts: opts,
		log:  cmp.Or(opts.Logger, slog.Default()),
		kick: make(chan struct{}, 1),
		reqs: make(chan flushReq),
		done: make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w
}

var _ report.Sink = (*Writer)(nil)

// Add implements report.Sink: it queues r, stamped now if r.Time is zero,
// or drops it when the queue is full or the Writer closed. A row without a
// published policy has nowhere to be reported to: it is only counted as
// skipped. Add never blocks on the store; it canonicalizes and hashes the
// row's key (a few microseconds) in the caller's goroutine.
func (w *Writer) Add(r report.Row) {
	if r.Published.Domain == "" {
		w.skipped.Add(1)
		return
	}
	e := entry{key: KeyOf(r), t: r.Time, pub: r.Published}
	e.hash = e.key.Hash()
	if e.t.IsZero() {
		e.t = time.Now()
	}
	w.mu.Lock()
	if w.closed || len(w.queue) >= w.opts.QueueSize {
		closed := w.closed
		w.mu.Unlock()
		w.drop(closed)
		return
	}
	w.queue = append(w.queue, e)
	w.accepted++
	n := len(w.queue)
	w.mu.Unlock()
	if n >= w.opts.FlushRows {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// drop counts a refused row and logs, at most every 10 s.
func (w *Writer) drop(closed bool) {
	n := w.dropped.Add(1)
	now := time.Now().UnixNano()
	last := w.dropLogAt.Load()
	if now-last < int64(10*time.Second) || !w.dropLogAt.CompareAndSwap(last, now) {
		return
	}
	since := n - w.dropLogCount.Swap(n)
	why := "queue full: the store is too slow or down"
	if closed {
		why = "writer closed"
	}
	w.log.Error("report rows dropped: aggregate reports will under-count",
		"dropped", since, "dropped_total", n, "why", why, "queue_size", w.opts.QueueSize)
}

// Flush writes every row added before the call, and returns the error of
// the write when it failed (the rows stay queued for a retry).
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	upTo := w.accepted
	w.mu.Unlock()
	return w.request(ctx, flushReq{upTo: upTo, res: make(chan error, 1)})
}

// Close stops taking rows (Add drops from then on) and writes every row
// queued: the SIGTERM path. A failing write is retried until ctx ends;
// then the rows not yet written are lost, counted as dropped, and Close
// returns an error saying how many. Calls after the first wait for the
// first to finish and return nil.
func (w *Writer) Close(ctx context.Context) error {
	first := false
	var err error
	w.stop.Do(func() {
		first = true
		err = w.close(ctx)
	})
	if !first {
		<-w.done
	}
	return err
}

func (w *Writer) close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	upTo := w.accepted
	w.mu.Unlock()
	err := w.request(ctx, flushReq{upTo: upTo, close: true, res: make(chan error, 1)})
	w.cancel() // if still writing, give up
	<-w.done
	if lost := w.Stats().Queued + int(w.pending.Load()); lost > 0 {
		w.dropped.Add(uint64(lost))
		w.log.Error("report rows lost at close", "rows", lost, "err", err)
		return fmt.Errorf("close writer: %d rows not written: %w", lost, err)
	}
	return nil
}

// request hands req to run and waits for its answer or the end of ctx.
func (w *Writer) request(ctx context.Context, req flushReq) error {
	select {
	case w.reqs <- req:
	case <-w.done:
		return errors.New("writer closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the Writer's counters.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	queued, added := len(w.queue), w.accepted
	w.mu.Unlock()
	return WriterStats{
		Queued:    queued,
		Pending:   w.pending.Load(),
		Added:     added,
		Written:   w.written.Load(),
		Skipped:   w.skipped.Load(),
		Dropped:   w.dropped.Load(),
		Flushes:   w.flushes.Load(),
		Failures:  w.failures.Load(),
		LastFlush: time.Duration(w.lastFlush.Load()),
		MaxFlush:  time.Duration(w.maxFlush.Load()),
	}
}

// run is the writing goroutine.
func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	var b Batch
	var retryAt time.Time
	backoff := time.Duration(0)
	pause := func() {
		backoff = min(max(2*backoff, w.opts.FlushInterval), 30*time.Second)
		retryAt = time.Now().Add(backoff)
	}
	for {
		var req flushReq
		select {
		case <-w.ctx.Done():
			return
		case <-w.kick:
		case <-tick.C:
		case req = <-w.reqs:
		}
		if req.res == nil && time.Now().Before(retryAt) {
			continue
		}
		err := w.writeUpTo(&b, req.upTo)
		// Closing: keep trying until Close gives up.
		for req.close && err != nil && w.ctx.Err() == nil {
			pause()
			select {
			case <-w.ctx.Done():
			case <-time.After(backoff):
				err = w.writeUpTo(&b, req.upTo)
			}
		}
		if err != nil {
			pause()
		} else {
			backoff, retryAt = 0, time.Time{}
		}
		if req.res != nil {
			req.res <- err
			if req.close {
				return
			}
		}
	}
}

// writeUpTo writes until every row accepted up to the upTo-th is written.
// It writes once at least, whatever upTo.
func (w *Writer) writeUpTo(b *Batch, upTo uint64) error {
	for {
		before := w.processed.Load()
		if err := w.write(b); err != nil {
			return err
		}
		// After a successful write, every row accepted before it began
		// is written: this loops twice at most.
		if n := w.processed.Load(); n >= upTo || n == before {
			return nil
		}
	}
}

// write writes b, first filling it with the queue when it is empty (when
// it is not, it holds rows whose write failed: those go first, alone).
func (w *Writer) write(b *Batch) error {
	if b.Rows() == 0 {
		w.mu.Lock()
		rows := w.queue
		w.queue, w.spare = w.spare[:0], nil
		w.mu.Unlock()
		w.pending.Store(int64(len(rows)))
		for i := range rows {
			e := &rows[i]
			b.add(&e.key, e.hash, e.t, 1, &e.pub)
		}
		clear(rows) // let the rows' strings go
		w.mu.Lock()
		w.spare = rows[:0]
		w.mu.Unlock()
	}
	if b.Len() == 0 {
		w.settle(b)
		return nil
	}
	start := time.Now()
	err := w.ing.Ingest(w.ctx, b)
	d := time.Since(start)
	w.lastFlush.Store(int64(d))
	if int64(d) > w.maxFlush.Load() {
		w.maxFlush.Store(int64(d))
	}
	if err != nil {
		w.failures.Add(1)
		w.log.Error("writing report rows failed, will retry", "rows", b.Rows(), "err", err)
		return err
	}
	w.flushes.Add(1)
	w.written.Add(uint64(b.Rows()))
	w.settle(b)
	return nil
}

// settle counts the rows of b as dealt with and empties it.
func (w *Writer) settle(b *Batch) {
	w.processed.Add(uint64(b.Rows()))
	w.pending.Store(0)
	b.Reset()
}
