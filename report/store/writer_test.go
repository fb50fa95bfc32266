package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// fakeIngester records the batches it is given.
type fakeIngester struct {
	mu      sync.Mutex
	batches []fakeBatch
	rows    int64
	// fail makes the next fail calls fail.
	fail atomic.Int32
	// gate, when set, holds every Ingest until it is closed or ctx ends.
	gate chan struct{}
	// called is sent to (if there is room) at each call.
	called chan struct{}
}

type fakeBatch struct {
	rows int64
	len  int
}

func newFake() *fakeIngester { return &fakeIngester{called: make(chan struct{}, 100)} }

func (f *fakeIngester) Ingest(ctx context.Context, b *store.Batch) error {
	select {
	case f.called <- struct{}{}:
	default:
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fail.Load() > 0 {
		f.fail.Add(-1)
		return errors.New("database is down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, fakeBatch{b.Rows(), b.Len()})
	f.rows += b.Rows()
	return nil
}

func (f *fakeIngester) written() (rows int64, batches []fakeBatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rows, append([]fakeBatch(nil), f.batches...)
}

var quiet = slog.New(slog.DiscardHandler)

func row(i int) report.Row {
	return storetest.Row("example.com", storetest.T0, fmt.Sprintf("192.0.2.%d", i%200))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWriter(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"equal rows are rolled up before they are written", func(t *testing.T) {
			f := newFake()
			w := store.NewWriter(f, store.WriterOptions{FlushInterval: time.Hour, Logger: quiet})
			for range 1000 {
				w.Add(row(0))
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if _, bs := f.written(); len(bs) != 1 || bs[0] != (fakeBatch{rows: 1000, len: 1}) {
				t.Errorf("batches = %+v, want one of 1000 rows in one count", bs)
			}
			w.Close(ctx)
		}},
		{"a write starts when FlushRows rows wait", func(t *testing.T) {
			f := newFake()
			w := store.NewWriter(f, store.WriterOptions{FlushRows: 10, FlushInterval: time.Hour, Logger: quiet})
			defer w.Close(ctx)
			for i := range 9 {
				w.Add(row(i))
			}
			select {
			case <-f.called:
				t.Fatal("wrote before FlushRows rows waited")
			case <-time.After(50 * time.Millisecond):
			}
			w.Add(row(9))
			waitFor(t, "a write of 10 rows", func() bool { n, _ := f.written(); return n == 10 })
		}},
		{"a write starts when FlushInterval has passed", func(t *testing.T) {
			f := newFake()
			w := store.NewWriter(f, store.WriterOptions{FlushInterval: 20 * time.Millisecond, Logger: quiet})
			defer w.Close(ctx)
			w.Add(row(1))
			waitFor(t, "a timed write", func() bool { n, _ := f.written(); return n == 1 })
		}},
		{"a full queue drops rows without blocking and counts them", func(t *testing.T) {
			f := newFake()
			f.gate = make(chan struct{})
			w := store.NewWriter(f, store.WriterOptions{QueueSize: 100, FlushRows: 50, FlushInterval: time.Hour, Logger: quiet})
			for i := range 50 {
				w.Add(row(i))
			}
			<-f.called // the writer is stuck in a write of those 50
			start := time.Now()
			for i := range 1000 {
				w.Add(row(i))
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Add blocked: 1000 calls took %v", d)
			}
			st := w.Stats()
			if st.Dropped != 900 || st.Queued != 100 || st.Pending != 50 || st.Added != 150 {
				t.Errorf("stats = %+v, want 900 dropped, 100 queued, 50 pending", st)
			}
			close(f.gate)
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n, _ := f.written(); n != 150 {
				t.Errorf("%d rows written, want 150", n)
			}
		}},
		{"Flush writes every row added before it", func(t *testing.T) {
			f := newFake()
			w := store.NewWriter(f, store.WriterOptions{FlushRows: 7, FlushInterval: time.Hour, Logger: quiet})
			defer w.Close(ctx)
			for i := range 1234 {
				w.Add(row(i))
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if n, _ := f.written(); n != 1234 {
				t.Errorf("%d rows written after Flush, want 1234", n)
			}
			if st := w.Stats(); st.Written != 1234 || st.Queued != 0 || st.Pending != 0 || st.Flushes == 0 {
				t.Errorf("stats = %+v", st)
			}
		}},
		{"Close writes everything and later rows are dropped", func(t *testing.T) {
			f := newFake()
			w := store.NewWriter(f, store.WriterOptions{FlushInterval: time.Hour, Logger: quiet})
			for i := range 500 {
				w.Add(row(i))
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(ctx); err != nil {
				t.Errorf("second Close: %v", err)
			}
			w.Add(row(1))
			if n, _ := f.written(); n != 500 {
				t.Errorf("%d rows written, want 500", n)
			}
			if st := w.Stats(); st.Dropped != 1 {
				t.Errorf("dropped %d after close, want 1", st.Dropped)
			}
		}},
		{"a failed write is retried with the same rows", func(t *testing.T) {
			f := newFake()
			f.fail.Store(2)
			w := store.NewWriter(f, store.WriterOptions{FlushRows: 10, FlushInterval: 5 * time.Millisecond, Logger: quiet})
			for i := range 10 {
				w.Add(row(i))
			}
			waitFor(t, "the retried write", func() bool { n, _ := f.written(); return n == 10 })
			for i := range 5 {
				w.Add(row(i))
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			n, bs := f.written()
			if n != 15 || bs[0].rows != 10 {
				t.Errorf("batches %+v, want the 10 first rows alone, then 5", bs)
			}
			if st := w.Stats(); st.Failures != 2 || st.Written != 15 || st.Dropped != 0 {
				t.Errorf("stats = %+v", st)
			}
		}},
		{"Close gives up when its context ends and counts the rows lost", func(t *testing.T) {
			f := newFake()
			f.gate = make(chan struct{}) // never opens
			w := store.NewWriter(f, store.WriterOptions{FlushInterval: time.Hour, Logger: quiet})
			for i := range 30 {
				w.Add(row(i))
			}
			cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			err := w.Close(cctx)
			if err == nil {
				t.Fatal("Close succeeded without writing")
			}
			if st := w.Stats(); st.Dropped != 30 {
				t.Errorf("stats = %+v, want 30 dropped", st)
			}
		}},
		{"rows without a policy are counted as skipped", func(t *testing.T) {
			f := newFake()
			w := store.NewWriter(f, store.WriterOptions{Logger: quiet})
			r := row(1)
			r.Published = report.Published{}
			w.Add(r)
			w.Add(row(2))
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if st := w.Stats(); st.Skipped != 1 || st.Written != 1 {
				t.Errorf("stats = %+v, want 1 skipped, 1 written", st)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.f)
	}
}

// TestWriterIntoEachStore runs the milter's path end to end: concurrent
// Adds, a Writer, a real store, Close, and exact totals.
func TestWriterIntoEachStore(t *testing.T) {
	ctx := context.Background()
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			d.need(t)
			db := d.open(t, store.Options{Logger: quiet})
			w := store.NewWriter(db, store.WriterOptions{FlushRows: 100, FlushInterval: 10 * time.Millisecond, Logger: quiet})
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 2000 {
						w.Add(storetest.Row("example.com", storetest.T0.Add(time.Duration(i%24)*time.Hour), fmt.Sprintf("192.0.2.%d", (i+g)%100)))
					}
				})
			}
			wg.Wait()
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			rs := storetest.Records(t, db, "example.com", storetest.Day)
			if n := storetest.Total(rs); n != 16000 || len(rs) != 100 {
				t.Errorf("%d records totalling %d, want 100 totalling 16000", len(rs), n)
			}
		})
	}
}
