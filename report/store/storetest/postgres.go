package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

// RequirePostgres returns DMARCD_TEST_POSTGRES, the DSN of the test
// database (report/store/ci-postgres.sh prints one). Without it the test
// is skipped, or fails in CI (DMARCD_CI set).
func RequirePostgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("DMARCD_TEST_POSTGRES")
	if dsn == "" {
		if testenv.InCI() {
			t.Fatal("DMARCD_CI is set but DMARCD_TEST_POSTGRES is not: .ci/run must start PostgreSQL with report/store/ci-postgres.sh")
		}
		t.Skip("DMARCD_TEST_POSTGRES is not set: `export DMARCD_TEST_POSTGRES=$(report/store/ci-postgres.sh)` (as root) to run the PostgreSQL tests")
	}
	return dsn
}

// PostgresDSN returns the DSN of a new schema in the database of
// DMARCD_TEST_POSTGRES, dropped when the test ends, so that tests running
// at once do not see each other's tables.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := RequirePostgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("DMARCD_TEST_POSTGRES: %v", err)
	}
	schema := fmt.Sprintf("dmarcd_test_%d_%d", time.Now().UnixNano(), rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		conn.Close(ctx)
	})
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}
