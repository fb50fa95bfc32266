package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// newFailure is a failure report of Example.org to its ruf, with key.
func newFailure(key string, at time.Time) store.NewFailure {
	return store.NewFailure{PolicyDomain: "Example.org", Destination: "ruf@example.org", DestDomain: "example.org",
		DedupKey: []byte(key), Incident: []byte(`{"x":1}`), Created: at}
}

func TestFailureQueue(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			d.need(t)
			now := t0
			db := d.open(t, store.Options{Now: func() time.Time { return now }})

			t.Run("a failure seen twice within the window is queued once", func(t *testing.T) {
				q, dup, err := db.EnqueueFailures(ctx, []store.NewFailure{newFailure("a", t0), newFailure("a", t0.Add(time.Minute)), newFailure("b", t0)}, time.Hour)
				if err != nil || q != 2 || dup != 1 {
					t.Fatalf("EnqueueFailures = %d, %d, %v; want 2, 1", q, dup, err)
				}
				q, dup, err = db.EnqueueFailures(ctx, []store.NewFailure{newFailure("a", t0.Add(2*time.Hour))}, time.Hour)
				if err != nil || q != 1 || dup != 0 {
					t.Fatalf("after the window: %d, %d, %v; want 1, 0", q, dup, err)
				}
			})

			due, err := db.DueFailures(ctx, t0, 10)
			if err != nil || len(due) != 2 {
				t.Fatalf("DueFailures = %d, %v; want the 2 created at t0", len(due), err)
			}
			if due[0].PolicyDomain != "example.org" || string(due[0].Incident) != `{"x":1}` || due[0].State != store.FailurePending {
				t.Errorf("due[0] = %+v", due[0])
			}

			t.Run("a retry waits for its next attempt", func(t *testing.T) {
				if err := db.FinishFailure(ctx, store.FailureAttempt{ID: due[1].ID, At: t0, State: store.FailurePending,
					Error: "451 try later", Next: t0.Add(10 * time.Minute)}); err != nil {
					t.Fatal(err)
				}
				if d, _ := db.DueFailures(ctx, t0.Add(5*time.Minute), 10); len(d) != 1 {
					t.Errorf("%d due before the retry time, want 1", len(d))
				}
				f, err := db.FailureReport(ctx, due[1].ID)
				if err != nil || f.Attempts != 1 || f.LastError != "451 try later" {
					t.Errorf("after a retry: %+v, %v", f, err)
				}
			})

			t.Run("a sent report is counted for the rate limits and loses its message", func(t *testing.T) {
				if err := db.FinishFailure(ctx, store.FailureAttempt{ID: due[0].ID, At: t0, State: store.FailureSent}); err != nil {
					t.Fatal(err)
				}
				cs, err := db.FailuresSent(ctx, t0.Add(-time.Hour))
				if err != nil || len(cs) != 1 || cs[0] != (store.FailureCount{PolicyDomain: "example.org", DestDomain: "example.org", Count: 1}) {
					t.Errorf("FailuresSent = %+v, %v", cs, err)
				}
				f, _ := db.FailureReport(ctx, due[0].ID)
				if f.State != store.FailureSent || len(f.Incident) != 0 || !f.Finished.Equal(t0) {
					t.Errorf("sent report %+v", f)
				}
				err = db.FinishFailure(ctx, store.FailureAttempt{ID: due[0].ID, State: store.FailureSent})
				if !errors.Is(err, store.ErrNotPending) {
					t.Errorf("finishing twice: %v, want ErrNotPending", err)
				}
			})

			t.Run("a dropped report is counted by reason", func(t *testing.T) {
				if err := db.FinishFailure(ctx, store.FailureAttempt{ID: due[1].ID, At: t0, State: store.FailureDropped, Reason: "rate_limited"}); err != nil {
					t.Fatal(err)
				}
				st, err := db.FailureStates(ctx)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]int64{"dropped/rate_limited": 1, "pending/": 1, "sent/": 1}
				for _, c := range st {
					if want[c.State+"/"+c.Reason] != c.Count {
						t.Errorf("%s/%s: %d", c.State, c.Reason, c.Count)
					}
				}
			})

			t.Run("finished reports expire, recent pending ones stay", func(t *testing.T) {
				n, err := db.ExpireFailures(ctx, t0.Add(time.Second))
				if err != nil || n != 2 {
					t.Errorf("ExpireFailures = %d, %v; want 2", n, err)
				}
				if d, _ := db.DueFailures(ctx, t0.Add(3*time.Hour), 10); len(d) != 1 {
					t.Errorf("%d pending after expiry, want 1", len(d))
				}
			})

			t.Run("pending reports older than the cut-off expire too", func(t *testing.T) {
				n, err := db.ExpireFailures(ctx, t0.Add(3*time.Hour))
				if err != nil || n != 1 {
					t.Errorf("ExpireFailures = %d, %v; want the pending one", n, err)
				}
			})

			if err := db.FinishFailure(ctx, store.FailureAttempt{ID: 9999, State: store.FailureSent}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("unknown id: %v", err)
			}
		})
	}
}

// TestFailureEnqueuedByTwoNodesAtOnceIsQueuedOnce races nodes sharing one
// store (two handles on one PostgreSQL schema; one SQLite file takes one
// node) to enqueue the same failures at the same instant: each must be
// queued once, as the dedup window says.
func TestFailureEnqueuedByTwoNodesAtOnceIsQueuedOnce(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			d.need(t)
			var nodes []*store.DB
			if d.name == "postgres" {
				dsn := storetest.PostgresDSN(t)
				for range 2 {
					db, err := store.OpenPostgres(ctx, dsn, store.Options{})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { db.Close() })
					nodes = append(nodes, db)
				}
			} else {
				nodes = append(nodes, d.open(t, store.Options{}))
			}
			const rounds, racers = 20, 8
			for k := range rounds {
				// Each racer brings two incidents, half of them in the
				// other order: no racer may wait on another for ever.
				a, b := newFailure(fmt.Sprintf("incident %d", k), t0), newFailure(fmt.Sprintf("incident %d bis", k), t0)
				var wg sync.WaitGroup
				var queued atomic.Int64
				start := make(chan struct{})
				for i := range racers {
					batch := []store.NewFailure{a, b}
					if i%2 == 1 {
						batch = []store.NewFailure{b, a}
					}
					wg.Go(func() {
						<-start
						q, _, err := nodes[i%len(nodes)].EnqueueFailures(ctx, batch, time.Hour)
						if err != nil {
							t.Error(err)
						}
						queued.Add(int64(q))
					})
				}
				close(start)
				wg.Wait()
				if n := queued.Load(); n != 2 {
					t.Fatalf("round %d: two incidents queued %d times by %d racers, want once each", k, n, racers)
				}
			}
		})
	}
}
