package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migration is one version of the schema. The statements are written once
// for both databases; spell replaces the few words they spell differently.
// A migration, once released, never changes: a change is a new migration.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations is the schema's history. Times are Unix seconds (policy_seen
// nanoseconds), hours are the Unix second their UTC hour starts at, days
// the Unix second their UTC day starts at, lists are JSON arrays.
var migrations = []migration{
	{1, "hourly roll-up of aggregate rows", []string{
		// A record key, shared by all the hours it was seen in; last_hour
		// tells when it may go. In SQLite a rowid table: its wide rows
		// are appended, only the narrow index on key_hash takes random
		// inserts.
		`CREATE TABLE agg_keys (
			key_hash {blob} PRIMARY KEY,
			policy_domain TEXT NOT NULL,
			source_ip TEXT NOT NULL,
			header_from TEXT NOT NULL,
			envelope_from TEXT NOT NULL,
			envelope_to TEXT NOT NULL,
			disposition TEXT NOT NULL,
			dkim TEXT NOT NULL,
			spf TEXT NOT NULL,
			reasons TEXT NOT NULL,
			auth_dkim TEXT NOT NULL,
			auth_spf TEXT NOT NULL,
			first_hour {int} NOT NULL,
			last_hour {int} NOT NULL
		)`,
		`CREATE INDEX agg_keys_last_hour ON agg_keys (last_hour)`,
		// Messages per key and hour: what reports add up.
		`CREATE TABLE agg_counts (
			policy_domain TEXT NOT NULL,
			hour {int} NOT NULL,
			key_hash {blob} NOT NULL,
			count {int} NOT NULL,
			PRIMARY KEY (policy_domain, hour, key_hash)
		){norowid}`,
		// Messages per domain and hour, with the policy record seen
		// last in the hour: what the scheduler looks at.
		`CREATE TABLE agg_hours (
			policy_domain TEXT NOT NULL,
			hour {int} NOT NULL,
			messages {int} NOT NULL,
			policy TEXT NOT NULL,
			policy_seen {int} NOT NULL,
			has_rua {int} NOT NULL,
			PRIMARY KEY (policy_domain, hour)
		){norowid}`,
	}},
	{2, "reports and their outbound queue", []string{
		`CREATE TABLE reports (
			id {id},
			report_id TEXT NOT NULL UNIQUE,
			policy_domain TEXT NOT NULL,
			begin_at {int} NOT NULL,
			end_at {int} NOT NULL,
			policy TEXT NOT NULL,
			state TEXT NOT NULL,
			records {int} NOT NULL,
			messages {int} NOT NULL,
			attempts {int} NOT NULL DEFAULT 0,
			next_attempt_at {int},
			last_error TEXT NOT NULL DEFAULT '',
			created_at {int} NOT NULL,
			updated_at {int} NOT NULL,
			UNIQUE (policy_domain, begin_at, end_at)
		)`,
		`CREATE INDEX reports_state ON reports (state, end_at)`,
		// A report's records, frozen when it is created.
		`CREATE TABLE report_records (
			report {int} NOT NULL REFERENCES reports (id),
			key_hash {blob} NOT NULL,
			count {int} NOT NULL,
			PRIMARY KEY (report, key_hash)
		){norowid}`,
		`CREATE INDEX report_records_key ON report_records (key_hash)`,
		`CREATE TABLE deliveries (
			id {id},
			report {int} NOT NULL REFERENCES reports (id),
			destination TEXT NOT NULL,
			dest_domain TEXT NOT NULL,
			max_size {int} NOT NULL DEFAULT 0,
			state TEXT NOT NULL,
			attempts {int} NOT NULL DEFAULT 0,
			next_attempt_at {int},
			last_attempt_at {int},
			last_error TEXT NOT NULL DEFAULT '',
			sent_at {int},
			created_at {int} NOT NULL,
			UNIQUE (report, destination)
		)`,
		`CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)`,
		`CREATE INDEX deliveries_attempted ON deliveries (last_attempt_at)`,
	}},
	{3, "suppression list", []string{
		`CREATE TABLE destinations (
			destination TEXT PRIMARY KEY,
			permanent_failures {int} NOT NULL DEFAULT 0,
			last_failure_at {int},
			last_error TEXT NOT NULL DEFAULT '',
			last_success_at {int}
		)`,
		`CREATE TABLE suppressions (
			pattern TEXT PRIMARY KEY,
			reason TEXT NOT NULL,
			auto {int} NOT NULL,
			created_at {int} NOT NULL
		)`,
	}},
	{4, "reports received from others", []string{
		// One aggregate report someone sent us. key_hash is the SHA-256
		// of the caller's idempotence key (reporting organisation and
		// report_id): a report imported twice is stored once. day is
		// the UTC day holding the middle of the report's date range,
		// the day its messages count on. reporter is what reports
		// group by: org_name in lower case, or the email without one.
		`CREATE TABLE received_reports (
			id {id},
			key_hash {blob} NOT NULL UNIQUE,
			reporter TEXT NOT NULL,
			org TEXT NOT NULL,
			email TEXT NOT NULL,
			extra_contact TEXT NOT NULL,
			report_id TEXT NOT NULL,
			policy_domain TEXT NOT NULL,
			begin_at {int} NOT NULL,
			end_at {int} NOT NULL,
			day {int} NOT NULL,
			policy TEXT NOT NULL,
			p TEXT NOT NULL,
			format TEXT NOT NULL,
			version TEXT NOT NULL,
			generator TEXT NOT NULL,
			errors TEXT NOT NULL,
			warnings TEXT NOT NULL,
			records {int} NOT NULL,
			messages {int} NOT NULL,
			compliant {int} NOT NULL,
			source TEXT NOT NULL,
			imported_at {int} NOT NULL
		)`,
		`CREATE INDEX received_reports_domain_day ON received_reports (policy_domain, day)`,
		// Its records, in document order, with the report's domain and
		// day repeated so that summaries read this table alone. The
		// flags (0 or 1) are computed once at insert, as ReceivedCounts
		// defines them.
		`CREATE TABLE received_records (
			report {int} NOT NULL REFERENCES received_reports (id),
			seq {int} NOT NULL,
			policy_domain TEXT NOT NULL,
			day {int} NOT NULL,
			source_ip TEXT NOT NULL,
			count {int} NOT NULL,
			disposition TEXT NOT NULL,
			dkim TEXT NOT NULL,
			spf TEXT NOT NULL,
			reasons TEXT NOT NULL,
			header_from TEXT NOT NULL,
			envelope_from TEXT NOT NULL,
			envelope_to TEXT NOT NULL,
			auth_dkim TEXT NOT NULL,
			auth_spf TEXT NOT NULL,
			compliant {int} NOT NULL,
			dkim_aligned {int} NOT NULL,
			spf_aligned {int} NOT NULL,
			dkim_pass {int} NOT NULL,
			spf_pass {int} NOT NULL,
			authenticated {int} NOT NULL,
			PRIMARY KEY (report, seq)
		){norowid}`,
		`CREATE INDEX received_records_domain_day ON received_records (policy_domain, day)`,
		// One failure report (RFC 6591 ARF). Lists and the ARF fields are
		// JSON; headers is the reported message's header section, capped
		// by the parser. day is the UTC day of Arrival-Date, else of the
		// report's Date, else of the import.
		`CREATE TABLE received_failures (
			id {id},
			key_hash {blob} NOT NULL UNIQUE,
			reported_domain TEXT NOT NULL,
			day {int} NOT NULL,
			source_ip TEXT NOT NULL,
			feedback_type TEXT NOT NULL,
			version TEXT NOT NULL,
			user_agent TEXT NOT NULL,
			auth_failure TEXT NOT NULL,
			delivery_result TEXT NOT NULL,
			identity_alignment TEXT NOT NULL,
			incidents {int} NOT NULL,
			arrival_at {int},
			original_mail_from TEXT NOT NULL,
			original_rcpt_to TEXT NOT NULL,
			original_envelope_id TEXT NOT NULL,
			original_from TEXT NOT NULL,
			original_subject TEXT NOT NULL,
			original_message_id TEXT NOT NULL,
			dkim_domain TEXT NOT NULL,
			dkim_identity TEXT NOT NULL,
			dkim_selector TEXT NOT NULL,
			spf_dns TEXT NOT NULL,
			auth_results TEXT NOT NULL,
			reported_uri TEXT NOT NULL,
			reporter TEXT NOT NULL,
			reporter_name TEXT NOT NULL,
			reporting_mta TEXT NOT NULL,
			report_message_id TEXT NOT NULL,
			report_subject TEXT NOT NULL,
			report_date {int},
			headers TEXT NOT NULL,
			headers_truncated {int} NOT NULL,
			fields TEXT NOT NULL,
			warnings TEXT NOT NULL,
			source TEXT NOT NULL,
			imported_at {int} NOT NULL
		)`,
		`CREATE INDEX received_failures_domain_day ON received_failures (reported_domain, day)`,
	}},
	{5, "failure report queue", []string{
		// One failure report to one destination (RFC 9991). incident is
		// the redacted Incident as JSON, emptied once the report is
		// finished: the store keeps no copy of reported mail longer than
		// it must. dedup_key is failure.DedupKey: a failure already
		// queued within the deduplication window is not queued again.
		// state is pending, sent, failed or dropped; reason says why a
		// report was dropped (rate_limited, unauthorized, too_large,
		// suppressed, expired) or failed.
		`CREATE TABLE failure_reports (
			id {id},
			policy_domain TEXT NOT NULL,
			destination TEXT NOT NULL,
			dest_domain TEXT NOT NULL,
			dedup_key {blob} NOT NULL,
			incident TEXT NOT NULL,
			state TEXT NOT NULL,
			reason TEXT NOT NULL DEFAULT '',
			attempts {int} NOT NULL DEFAULT 0,
			next_attempt_at {int},
			last_error TEXT NOT NULL DEFAULT '',
			created_at {int} NOT NULL,
			finished_at {int}
		)`,
		`CREATE INDEX failure_reports_due ON failure_reports (state, next_attempt_at)`,
		`CREATE INDEX failure_reports_dedup ON failure_reports (dedup_key, created_at)`,
		`CREATE INDEX failure_reports_finished ON failure_reports (state, finished_at)`,
	}},
}

// latestVersion is the schema version this program writes.
var latestVersion = migrations[len(migrations)-1].version

// migrate brings the schema up to version upTo, one transaction per
// version, under the dialect's migration lock so that several nodes
// starting at once apply each version once.
func (db *DB) migrate(ctx context.Context, upTo int) error {
	for {
		done, err := db.migrateOne(ctx, upTo)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration, if any is due, and reports
// whether none was.
func (db *DB) migrateOne(ctx context.Context, upTo int) (done bool, err error) {
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.d.lockMigrations(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version `+db.d.spell("{int}")+` PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at `+db.d.spell("{int}")+` NOT NULL)`); err != nil {
			return err
		}
		var cur int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
			return err
		}
		if cur > latestVersion {
			return fmt.Errorf("%w: version %d, this program knows up to %d", ErrSchemaTooNew, cur, latestVersion)
		}
		if cur >= upTo {
			done = true
			return nil
		}
		m := migrations[cur] // versions are 1, 2, 3...
		for _, s := range m.stmts {
			if _, err := tx.ExecContext(ctx, db.d.spell(s)); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`),
			m.version, m.name, db.now().Unix())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("migrate schema: %w", err)
	}
	return done, nil
}

// SchemaVersion returns the version of the database's schema.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

// spell writes a statement of migrations in the dialect's words.
func (d *dialect) spell(s string) string {
	return strings.NewReplacer(
		"{blob}", d.blob,
		"{int}", d.bigint,
		"{id}", d.id,
		"{norowid}", d.norowid,
	).Replace(s)
}
