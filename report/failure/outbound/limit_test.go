package outbound

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// countingStore counts the FailuresSent queries.
type countingStore struct {
	Store
	queries int
}

func (c *countingStore) FailuresSent(ctx context.Context, since time.Time) ([]store.FailureCount, error) {
	c.queries++
	return c.Store.FailuresSent(ctx, since)
}

func TestTheLimiterCountsEachWindowOnce(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	db := openStore(t, filepath.Join(t.TempDir(), store.DefaultFile), func() time.Time { return t0 })
	// Three reports sent: two about example.org to example.net an hour
	// ago, one about example.com to example.net two days ago.
	for i, at := range []time.Time{t0.Add(-time.Hour), t0.Add(-time.Hour), t0.Add(-48 * time.Hour)} {
		domain := "example.org"
		if i == 2 {
			domain = "example.com"
		}
		nf := store.NewFailure{PolicyDomain: domain, Destination: "ruf@example.net", DestDomain: "example.net",
			DedupKey: []byte{byte(i)}, Incident: []byte(`{}`), Created: at}
		if _, _, err := db.EnqueueFailures(ctx, []store.NewFailure{nf}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	due, err := db.DueFailures(ctx, t0, 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("DueFailures = %d, %v", len(due), err)
	}
	for _, f := range due {
		if err := db.FinishFailure(ctx, store.FailureAttempt{ID: f.ID, At: f.Created, State: store.FailureSent}); err != nil {
			t.Fatal(err)
		}
	}
	day, week := scheduler.Rate{N: 100, Per: 24 * time.Hour}, scheduler.Rate{N: 100, Per: 7 * 24 * time.Hour}
	for _, c := range []struct {
		name               string
		perDomain, perDest scheduler.Rate
		queries            int
		org, net           int // reports counted about example.org, to example.net
	}{
		{"both limits over one window make one query", day, day, 1, 2, 2},
		{"two windows make two", day, week, 2, 2, 3},
		{"no domain limit leaves the destination's", scheduler.Rate{}, week, 1, 0, 3},
		{"no limit makes no query", scheduler.Rate{}, scheduler.Rate{}, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &countingStore{Store: db}
			l, err := newLimiter(ctx, st, t0, c.perDomain, c.perDest)
			if err != nil {
				t.Fatal(err)
			}
			if st.queries != c.queries || l.domainUsed["example.org"] != c.org || l.destUsed["example.net"] != c.net {
				t.Errorf("%d queries, %d about example.org, %d to example.net; want %d, %d, %d",
					st.queries, l.domainUsed["example.org"], l.destUsed["example.net"], c.queries, c.org, c.net)
			}
		})
	}
}
