package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// FailureQueue is the queue of failure reports (RFC 9991) in the store:
// the milter's side adds to it, the one node holding the failure sender
// lease drains it. *DB implements it.
type FailureQueue interface {
	// EnqueueFailures adds reports in one transaction, but those whose
	// DedupKey was queued within window before their Created time:
	// duplicates are counted and left out.
	EnqueueFailures(ctx context.Context, fs []NewFailure, window time.Duration) (queued, duplicates int, err error)
	// DueFailures returns up to limit pending reports whose next attempt
	// is at or before now, oldest first.
	DueFailures(ctx context.Context, now time.Time, limit int) ([]FailureReport, error)
	// FinishFailure records the outcome of one attempt at a pending
	// report. It returns ErrNotPending when the report is finished
	// already, ErrNotFound when it does not exist.
	FinishFailure(ctx context.Context, a FailureAttempt) error
	// FailuresSent counts the reports sent at or after since, per policy
	// domain and destination domain: what the rate limits count.
	FailuresSent(ctx context.Context, since time.Time) ([]FailureCount, error)
	// FailureStates counts the reports per state and reason.
	FailureStates(ctx context.Context) ([]FailureStateCount, error)
	// ExpireFailures deletes the finished reports finished before before,
	// and the pending ones created before it: those a sender left behind
	// when failure reports were turned off, which must not keep their
	// copy of a message for ever.
	ExpireFailures(ctx context.Context, before time.Time) (int64, error)
}

// The states of a failure report.
const (
	FailurePending = "pending"
	FailureSent    = "sent"
	FailureFailed  = "failed"
	FailureDropped = "dropped"
)

// NewFailure is one failure report to queue.
type NewFailure struct {
	PolicyDomain string
	// Destination is the mailto: address of the ruf URI; DestDomain its
	// domain.
	Destination, DestDomain string
	DedupKey                []byte
	// Incident is the report's content, JSON of a redacted
	// failure.Incident.
	Incident []byte
	Created  time.Time
}

// FailureReport is one queued failure report.
type FailureReport struct {
	ID                      int64
	PolicyDomain            string
	Destination, DestDomain string
	Incident                []byte // empty once finished
	State                   string
	Reason                  string
	Attempts                int
	NextAttempt             time.Time
	LastError               string
	Created, Finished       time.Time
}

// FailureAttempt is the outcome of one attempt at a failure report.
type FailureAttempt struct {
	ID int64
	At time.Time
	// State is FailureSent, FailureFailed, FailureDropped, or
	// FailurePending to try again at Next.
	State string
	// Reason is a word for a drop or failure: rate_limited, unauthorized,
	// too_large, suppressed, expired, rejected.
	Reason string
	Error  string
	Next   time.Time
}

// FailureCount is how many failure reports went to one destination domain
// about one policy domain.
type FailureCount struct {
	PolicyDomain, DestDomain string
	Count                    int
}

// FailureStateCount is how many failure reports are in one state for one
// reason.
type FailureStateCount struct {
	State, Reason string
	Count         int64
}

var _ FailureQueue = (*DB)(nil)

// EnqueueFailures implements FailureQueue.
func (db *DB) EnqueueFailures(ctx context.Context, fs []NewFailure, window time.Duration) (queued, duplicates int, err error) {
	// Two nodes (or two connections of one) enqueueing the same failure at
	// once would each find no copy and each insert one: with PostgreSQL's
	// READ COMMITTED, neither sees the other's row until it commits. A
	// lock per dedup key makes the second wait for the first's commit, and
	// taking them in one order keeps two batches from deadlocking.
	keys := make([]string, 0, len(fs))
	for _, f := range fs {
		keys = append(keys, string(f.DedupKey))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		queued, duplicates = 0, 0
		for _, k := range keys {
			if err := db.d.lock(ctx, tx, "failure/"+k); err != nil {
				return err
			}
		}
		for _, f := range fs {
			created := f.Created
			if created.IsZero() {
				created = db.now()
			}
			var one int
			err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM failure_reports WHERE dedup_key = ? AND created_at >= ? LIMIT 1`),
				f.DedupKey, created.Add(-window).Unix()).Scan(&one)
			switch {
			case err == nil:
				duplicates++
				continue
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO failure_reports (policy_domain, destination, dest_domain,
				dedup_key, incident, state, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
				text(strings.ToLower(f.PolicyDomain)), text(f.Destination), text(strings.ToLower(f.DestDomain)),
				f.DedupKey, text(string(f.Incident)), FailurePending, created.Unix(), created.Unix()); err != nil {
				return err
			}
			queued++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("enqueue failure reports: %w", err)
	}
	return queued, duplicates, nil
}

const failureColumns = `id, policy_domain, destination, dest_domain, incident, state, reason, attempts,
	next_attempt_at, last_error, created_at, finished_at`

func scanFailure(s interface{ Scan(...any) error }) (FailureReport, error) {
	var f FailureReport
	var incident string
	var next, finished sql.NullInt64
	var created int64
	err := s.Scan(&f.ID, &f.PolicyDomain, &f.Destination, &f.DestDomain, &incident, &f.State, &f.Reason,
		&f.Attempts, &next, &f.LastError, &created, &finished)
	f.Incident = []byte(incident)
	f.NextAttempt, f.Finished, f.Created = nullUnix(next), nullUnix(finished), unix(created)
	return f, err
}

// DueFailures implements FailureQueue.
func (db *DB) DueFailures(ctx context.Context, now time.Time, limit int) ([]FailureReport, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT `+failureColumns+` FROM failure_reports
		WHERE state = ? AND next_attempt_at <= ? ORDER BY id LIMIT ?`), FailurePending, now.Unix(), limit)
	out, err := collect(rows, err, func(rows *sql.Rows) (FailureReport, error) { return scanFailure(rows) })
	if err != nil {
		return nil, fmt.Errorf("due failure reports: %w", err)
	}
	return out, nil
}

// FailureReport returns the failure report with the given id, or
// ErrNotFound.
func (db *DB) FailureReport(ctx context.Context, id int64) (FailureReport, error) {
	f, err := scanFailure(db.r.QueryRowContext(ctx, db.q(`SELECT `+failureColumns+` FROM failure_reports WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("failure report %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return f, fmt.Errorf("failure report %d: %w", id, err)
	}
	return f, nil
}

// FinishFailure implements FailureQueue.
func (db *DB) FinishFailure(ctx context.Context, a FailureAttempt) error {
	switch a.State {
	case FailurePending, FailureSent, FailureFailed, FailureDropped:
	default:
		return fmt.Errorf("finish failure report %d: unknown state %q", a.ID, a.State)
	}
	at := a.At
	if at.IsZero() {
		at = db.now()
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, db.q(`SELECT state FROM failure_reports WHERE id = ?`), a.ID).Scan(&state)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case state != FailurePending:
			return ErrNotPending
		}
		tried := 0
		if a.State == FailureSent || a.State == FailureFailed || (a.State == FailurePending && a.Error != "") {
			tried = 1 // a drop is no attempt at sending
		}
		if a.State == FailurePending {
			next := a.Next
			if !next.After(at) {
				next = at.Add(time.Minute)
			}
			_, err = tx.ExecContext(ctx, db.q(`UPDATE failure_reports SET attempts = attempts + ?, next_attempt_at = ?,
				last_error = ? WHERE id = ?`), tried, next.Unix(), text(a.Error), a.ID)
			return err
		}
		// Finished: the copy of the reported message goes.
		_, err = tx.ExecContext(ctx, db.q(`UPDATE failure_reports SET state = ?, reason = ?, attempts = attempts + ?,
			next_attempt_at = NULL, last_error = ?, finished_at = ?, incident = '' WHERE id = ?`),
			a.State, text(a.Reason), tried, text(a.Error), at.Unix(), a.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish failure report %d: %w", a.ID, err)
	}
	return nil
}

// FailuresSent implements FailureQueue.
func (db *DB) FailuresSent(ctx context.Context, since time.Time) ([]FailureCount, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT policy_domain, dest_domain, COUNT(*) FROM failure_reports
		WHERE state = ? AND finished_at >= ? GROUP BY policy_domain, dest_domain ORDER BY policy_domain, dest_domain`),
		FailureSent, since.Unix())
	out, err := collect(rows, err, func(rows *sql.Rows) (c FailureCount, err error) {
		return c, rows.Scan(&c.PolicyDomain, &c.DestDomain, &c.Count)
	})
	if err != nil {
		return nil, fmt.Errorf("failure reports sent: %w", err)
	}
	return out, nil
}

// FailureStates implements FailureQueue.
func (db *DB) FailureStates(ctx context.Context) ([]FailureStateCount, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT state, reason, COUNT(*) FROM failure_reports
		GROUP BY state, reason ORDER BY state, reason`)
	out, err := collect(rows, err, func(rows *sql.Rows) (c FailureStateCount, err error) {
		return c, rows.Scan(&c.State, &c.Reason, &c.Count)
	})
	if err != nil {
		return nil, fmt.Errorf("failure report states: %w", err)
	}
	return out, nil
}

// ExpireFailures implements FailureQueue.
func (db *DB) ExpireFailures(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.w.ExecContext(ctx, db.q(`DELETE FROM failure_reports
		WHERE (state <> ? AND finished_at < ?) OR (state = ? AND created_at < ?)`),
		FailurePending, before.Unix(), FailurePending, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("expire failure reports: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
