package outbound

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dmarcd/dmarcd/report/store"
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
	dsn := os.Getenv("DMARCD_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("DMARCD_CI") != "" {
			t.Fatal("DMARCD_CI is set but DMARCD_TEST_POSTGRES is not")
		}
		t.Skip("DMARCD_TEST_POSTGRES is not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("DMARCD_TEST_POSTGRES: %v", err)
	}
	schema := fmt.Sprintf("dmarcd_outbound_%d_%d", time.Now().UnixNano(), rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(ctx)
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("DMARCD_TEST_POSTGRES must be a URL here: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := store.OpenPostgres(ctx, u.String(), store.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
