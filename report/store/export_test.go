package store

import (
	"context"
	"database/sql"
	"time"
)

// Hooks for the tests of package store_test.

// LatestVersion is the schema version this program writes.
var LatestVersion = latestVersion

// OpenSQLiteAt opens a SQLite store migrated only up to version.
func OpenSQLiteAt(ctx context.Context, path string, opts Options, version int) (*DB, error) {
	return openSQLite(ctx, path, opts, version)
}

// OpenPostgresAt opens a PostgreSQL store migrated only up to version.
func OpenPostgresAt(ctx context.Context, dsn string, opts Options, version int) (*DB, error) {
	return openPostgres(ctx, dsn, opts, version)
}

// WriteConn returns the pool writes go through.
func (db *DB) WriteConn() *sql.DB { return db.w }

// DeleteReport deletes a report with its records and deliveries.
func (db *DB) DeleteReport(ctx context.Context, id string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		for _, s := range []string{
			`DELETE FROM report_records WHERE report IN (SELECT id FROM reports WHERE report_id = ?)`,
			`DELETE FROM deliveries WHERE report IN (SELECT id FROM reports WHERE report_id = ?)`,
			`DELETE FROM reports WHERE report_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, db.q(s), id); err != nil {
				return err
			}
		}
		return nil
	})
}

// FailReceivedInserts makes AddReceived fail with err after writing the
// report's row and before its records, until the test ends.
func FailReceivedInserts(t interface{ Cleanup(func()) }, err error) {
	receivedHook = func() error { return err }
	t.Cleanup(func() { receivedHook = nil })
}

// PolicySeen returns agg_hours.policy_seen of the row of domain and hour:
// when the row's policy was last written.
func (db *DB) PolicySeen(ctx context.Context, domain string, hour time.Time) (time.Time, error) {
	var ns int64
	err := db.r.QueryRowContext(ctx, db.q(`SELECT policy_seen FROM agg_hours WHERE policy_domain = ? AND hour = ?`),
		domain, hour.Unix()).Scan(&ns)
	return time.Unix(0, ns).UTC(), err
}
