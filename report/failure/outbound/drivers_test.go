package outbound

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// drivers are the stores the queue tests run against: SQLite always,
// PostgreSQL when DMARCD_TEST_POSTGRES names a database (as in CI).
var drivers = []struct {
	name string
	open func(t *testing.T, now func() time.Time) *store.DB
}{
	{"sqlite", func(t *testing.T, now func() time.Time) *store.DB {
		return openStore(t, filepath.Join(t.TempDir(), store.DefaultFile), now)
	}},
	{"postgres", openPostgres},
}

// openPostgres opens a store in a schema of its own in the database of
// DMARCD_TEST_POSTGRES, dropped when the test ends.
func openPostgres(t *testing.T, now func() time.Time) *store.DB {
	t.Helper()
	db, err := store.OpenPostgres(context.Background(), storetest.PostgresDSN(t), store.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
