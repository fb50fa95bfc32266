package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd/report"
)

// Options tune a DB. The zero value is fine for production.
type Options struct {
	// Reporter names the organisation that sends the reports, its
	// org_name; it goes into ReportID.
	Reporter string
	// SuppressAfter is how many permanent failures in a row add a
	// destination to the suppression list. Zero means 5; negative, never.
	SuppressAfter int
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time

	// Synchronous is SQLite's synchronous setting: "NORMAL" (the
	// default: a power loss may lose the transactions since the last
	// checkpoint, a crash of dmarcd loses none) or "FULL" (one fsync per
	// transaction: a power loss loses no committed transaction).
	Synchronous string
	// CheckpointInterval bounds, for SQLite with NORMAL, how old the
	// transactions are that a power loss can lose: the WAL is checkpointed
	// (and so synced) at most this long after a commit. Zero means 30 s;
	// negative leaves checkpoints to SQLite (every 1,000 WAL pages).
	CheckpointInterval time.Duration
	// BusyTimeout is how long SQLite waits for a lock held by another
	// connection. Zero means 10 s.
	BusyTimeout time.Duration

	// MaxConns caps PostgreSQL connections, leases not included. Zero
	// means 8.
	MaxConns int
	// LeaseCheck is how often the connection holding a PostgreSQL lease
	// is checked. Zero means 5 s.
	LeaseCheck time.Duration
}

// dialect is what differs between the SQL databases.
type dialect struct {
	name string
	// dollar: placeholders are $1, $2... instead of ?.
	dollar bool
	// Words of the schema, see migrate.go.
	blob, bigint, id, norowid string
	// maxParams is how many parameters one statement may carry.
	maxParams int
	// lockMigrations serializes schema migrations of concurrent openers.
	lockMigrations func(ctx context.Context, tx *sql.Tx) error
	// lock serializes the transactions that take the same name until they
	// end, across nodes: "report/<domain>" for report creation,
	// "failure/<dedup key>" for enqueueing a failure report.
	lock func(ctx context.Context, tx *sql.Tx, name string) error
}

// DB is a Store in SQLite or PostgreSQL. Open one with Open, OpenSQLite or
// OpenPostgres.
type DB struct {
	d    *dialect
	w    *sql.DB // writes; for SQLite, one connection
	r    *sql.DB // reads; for SQLite, read-only connections
	opts Options
	log  *slog.Logger
	now  func() time.Time

	lease     func(ctx context.Context, name string) (Lease, error)
	afterSave func(ctx context.Context) // after each Ingest
	check     func(ctx context.Context) error
	closing   []func() error // run first by Close

	qmu    sync.Mutex
	qcache map[string]string    // q's rewrites
	stmts  map[string]*sql.Stmt // prepared's statements

	// keysMu guards known, the keys whose agg_keys.last_hour this
	// process committed, and policies, the agg_hours rows it wrote with
	// their policy. Ingest skips writing what it knows; Expire forgets it
	// all.
	keysMu   sync.Mutex
	known    knownKeys
	policies knownPolicies
}

var _ Store = (*DB)(nil)

func newDB(d *dialect, w, r *sql.DB, opts Options) *DB {
	db := &DB{d: d, w: w, r: r, opts: opts, log: opts.Logger, now: opts.Now,
		qcache: make(map[string]string), stmts: make(map[string]*sql.Stmt)}
	if db.log == nil {
		db.log = slog.Default()
	}
	if db.now == nil {
		db.now = time.Now
	}
	if db.opts.SuppressAfter == 0 {
		db.opts.SuppressAfter = 5
	}
	return db
}

// Driver returns "sqlite" or "postgres".
func (db *DB) Driver() string { return db.d.name }

// Check verifies the database: SQLite's integrity_check, or a round trip
// to PostgreSQL.
func (db *DB) Check(ctx context.Context) error { return db.check(ctx) }

// Close implements Store.
func (db *DB) Close() error {
	var errs []error
	for _, f := range db.closing {
		errs = append(errs, f())
	}
	db.qmu.Lock()
	for _, st := range db.stmts {
		errs = append(errs, st.Close())
	}
	clear(db.stmts)
	db.qmu.Unlock()
	if db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	errs = append(errs, db.w.Close())
	return errors.Join(errs...)
}

// q rewrites a statement written with ? placeholders for the dialect.
func (db *DB) q(s string) string {
	if !db.d.dollar {
		return s
	}
	db.qmu.Lock()
	defer db.qmu.Unlock()
	if r, ok := db.qcache[s]; ok {
		return r
	}
	r := db.rebind(s)
	if len(db.qcache) < 1000 {
		db.qcache[s] = r
	}
	return r
}

// rebind is q without the cache.
func (db *DB) rebind(s string) string {
	if !db.d.dollar {
		return s
	}
	var b strings.Builder
	n := 0
	for _, c := range s {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// inTx runs fn in a write transaction, committed when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// bulkInsert is an INSERT of many rows at once: head is "INSERT INTO t
// (a, b)", tail what follows the VALUES.
type bulkInsert struct {
	head, tail string
	cols       int
}

// The inserts of Ingest.
var (
	insertKeys = bulkInsert{
		`INSERT INTO agg_keys (key_hash, policy_domain, source_ip, header_from, envelope_from, envelope_to,
			disposition, dkim, spf, reasons, auth_dkim, auth_spf, first_hour, last_hour)`,
		`ON CONFLICT (key_hash) DO UPDATE SET last_hour = excluded.last_hour
			WHERE agg_keys.last_hour < excluded.last_hour`,
		14}
	insertCounts = bulkInsert{
		`INSERT INTO agg_counts (policy_domain, hour, key_hash, count)`,
		`ON CONFLICT (policy_domain, hour, key_hash) DO UPDATE SET count = agg_counts.count + excluded.count`,
		4}
	// agg_hours.messages is no longer written (0): Unreported sums
	// agg_counts. It stays for nodes of older versions, which add to it.
	insertHours = bulkInsert{
		`INSERT INTO agg_hours (policy_domain, hour, messages, policy, policy_seen, has_rua)`,
		`ON CONFLICT (policy_domain, hour) DO UPDATE SET
			policy = CASE WHEN excluded.policy_seen >= agg_hours.policy_seen THEN excluded.policy ELSE agg_hours.policy END,
			has_rua = CASE WHEN excluded.policy_seen >= agg_hours.policy_seen THEN excluded.has_rua ELSE agg_hours.has_rua END,
			policy_seen = CASE WHEN excluded.policy_seen >= agg_hours.policy_seen THEN excluded.policy_seen ELSE agg_hours.policy_seen END`,
		6}
)

// perStatement is how many rows one statement of bi inserts at most.
func (db *DB) perStatement(bi bulkInsert) int {
	return max(1, min(500, db.d.maxParams/bi.cols))
}

// statement returns the text of bi for rows rows.
func (db *DB) statement(bi bulkInsert, rows int) string {
	ph := "(" + strings.TrimSuffix(strings.Repeat("?, ", bi.cols), ", ") + ")"
	return db.rebind(bi.head + " VALUES " + strings.TrimSuffix(strings.Repeat(ph+", ", rows), ", ") + " " + bi.tail)
}

// prepared returns bi for perStatement rows, prepared once for the life
// of db, or nil when n rows fill no such statement. It must be called
// outside a transaction: with SQLite's one connection, preparing inside
// one would wait for itself.
func (db *DB) prepared(ctx context.Context, bi bulkInsert, n int) (*sql.Stmt, error) {
	per := db.perStatement(bi)
	if n < per {
		return nil, nil
	}
	db.qmu.Lock()
	defer db.qmu.Unlock()
	if st, ok := db.stmts[bi.head]; ok {
		return st, nil
	}
	st, err := db.w.PrepareContext(ctx, db.statement(bi, per))
	if err != nil {
		return nil, err
	}
	db.stmts[bi.head] = st
	return st, nil
}

// insertMany inserts n rows of bi, row giving the arguments of row i, in
// statements of perStatement rows (full, the prepared statement full)
// and one for the rest.
func (db *DB) insertMany(ctx context.Context, tx *sql.Tx, bi bulkInsert, full *sql.Stmt, n int, row func(i int) []any) error {
	per := db.perStatement(bi)
	for start := 0; start < n; start += per {
		end := min(n, start+per)
		args := make([]any, 0, (end-start)*bi.cols)
		for i := start; i < end; i++ {
			args = append(args, row(i)...)
		}
		var err error
		if end-start == per && full != nil {
			_, err = tx.StmtContext(ctx, full).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, db.statement(bi, end-start), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Ingest implements Store.
func (db *DB) Ingest(ctx context.Context, b *Batch) error {
	if b.Len() == 0 {
		return nil
	}
	// Keys whose last_hour this process already wrote need no write.
	hashes := b.sortedKeys()
	db.keysMu.Lock()
	fresh := hashes[:0:0]
	for _, h := range hashes {
		if last, ok := db.known.get(h); !ok || last < b.keys[h].last {
			fresh = append(fresh, h)
		}
	}
	db.keysMu.Unlock()
	counts := b.sortedCounts()
	hours := db.changedHours(b)
	var stmts [3]*sql.Stmt
	for i, x := range []struct {
		bi bulkInsert
		n  int
	}{{insertKeys, len(fresh)}, {insertCounts, len(counts)}, {insertHours, len(hours)}} {
		var err error
		if stmts[i], err = db.prepared(ctx, x.bi, x.n); err != nil {
			return fmt.Errorf("ingest: prepare: %w", err)
		}
	}

	err := db.inTx(ctx, func(tx *sql.Tx) error {
		err := db.insertMany(ctx, tx, insertKeys, stmts[0], len(fresh), func(i int) []any {
			bk := b.keys[fresh[i]]
			k := &bk.key
			to, reasons, dkim, spf := k.keyLists()
			return []any{fresh[i][:], k.PolicyDomain, ipString(k.SourceIP), k.HeaderFrom, k.EnvelopeFrom, to,
				k.Disposition, k.DKIM, k.SPF, reasons, dkim, spf, bk.first, bk.last}
		})
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		err = db.insertMany(ctx, tx, insertCounts, stmts[1], len(counts), func(i int) []any {
			c := &counts[i]
			return []any{c.domain, c.hour, c.hash[:], c.n}
		})
		if err != nil {
			return fmt.Errorf("counts: %w", err)
		}
		err = db.insertMany(ctx, tx, insertHours, stmts[2], len(hours), func(i int) []any {
			h := &hours[i]
			return []any{h.domain, h.hour, 0, h.policy, h.seen.UnixNano(), boolInt(h.hasRUA)}
		})
		if err != nil {
			return fmt.Errorf("hours: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest %d rows: %w", b.Rows(), err)
	}
	db.keysMu.Lock()
	for _, h := range fresh {
		db.known.put(h, b.keys[h].last)
	}
	for _, h := range hours {
		db.policies.put(h.domain, h.hour, h.hash)
	}
	db.keysMu.Unlock()
	if db.afterSave != nil {
		db.afterSave(ctx)
	}
	return nil
}

// hourRow is an agg_hours row to write.
type hourRow struct {
	hourKey
	policy string // JSON
	hash   uint64 // of policy, for knownPolicies
	seen   time.Time
	hasRUA bool
}

// changedHours returns the agg_hours rows of b whose policy is not the
// one this process wrote last in them, in key order: the row holds the
// policy seen last in the hour, and needs no write while it stays the
// same.
func (db *DB) changedHours(b *Batch) []hourRow {
	var out []hourRow
	db.keysMu.Lock()
	defer db.keysMu.Unlock()
	for _, hk := range b.sortedHours() {
		bh := b.hours[hk]
		js := mustJSON(bh.policy)
		ph := db.policies.policyHash(js)
		if !db.policies.wrote(hk.domain, hk.hour, ph) {
			out = append(out, hourRow{hk, js, ph, bh.seen, len(bh.policy.RUA) > 0})
		}
	}
	return out
}

// Unreported implements Store.
func (db *DB) Unreported(ctx context.Context, q UnreportedQuery) ([]Unreported, error) {
	messages := "0"
	if q.Messages {
		messages = `(SELECT CAST(COALESCE(SUM(c.count), 0) AS BIGINT) FROM agg_counts c
			WHERE c.policy_domain = h.policy_domain AND c.hour = h.hour)`
	}
	rows, err := db.r.QueryContext(ctx, db.q(`
		SELECT h.policy_domain, h.hour, `+messages+`, h.policy, h.has_rua
		FROM agg_hours h
		LEFT JOIN (SELECT policy_domain, MAX(end_at) AS until FROM reports GROUP BY policy_domain) r
			ON r.policy_domain = h.policy_domain
		WHERE h.hour >= COALESCE(r.until, 0) AND h.hour <= ?
		ORDER BY h.policy_domain, h.hour`), q.Before.Unix()-3600)
	if err != nil {
		return nil, fmt.Errorf("unreported: %w", err)
	}
	defer rows.Close()
	var out []Unreported
	var policy string
	for rows.Next() {
		var domain, pol string
		var hour, messages, hasRUA int64
		if err := rows.Scan(&domain, &hour, &messages, &pol, &hasRUA); err != nil {
			return nil, fmt.Errorf("unreported: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Domain != domain {
			if err := finishUnreported(out, policy); err != nil {
				return nil, err
			}
			out = append(out, Unreported{Domain: domain})
		}
		u := &out[len(out)-1]
		u.Hours = append(u.Hours, HourCount{Hour: time.Unix(hour, 0).UTC(), Messages: messages})
		u.HasRUA = u.HasRUA || hasRUA != 0
		policy = pol // hours ascend: the last one's policy is the latest
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unreported: %w", err)
	}
	if err := finishUnreported(out, policy); err != nil {
		return nil, err
	}
	if !q.All {
		kept := out[:0]
		for _, u := range out {
			if u.HasRUA {
				kept = append(kept, u)
			}
		}
		out = kept
	}
	return out, nil
}

// finishUnreported sets the policy of the last domain of out.
func finishUnreported(out []Unreported, policy string) error {
	if len(out) == 0 {
		return nil
	}
	if err := json.Unmarshal([]byte(policy), &out[len(out)-1].Policy); err != nil {
		return fmt.Errorf("unreported: policy of %s: %w", out[len(out)-1].Domain, err)
	}
	return nil
}

// Policy implements Store.
func (db *DB) Policy(ctx context.Context, domain string, p Period) (report.Published, bool, error) {
	return db.policy(ctx, db.r, domainName(domain), p)
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// collect reads every row of a query, given as QueryContext returned it,
// with scan, and closes the rows. Errors are returned as they are: the
// caller says which query failed.
func collect[T any](rows *sql.Rows, err error, scan func(*sql.Rows) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (db *DB) policy(ctx context.Context, q querier, domain string, p Period) (report.Published, bool, error) {
	var pub report.Published
	if err := p.Check(); err != nil {
		return pub, false, err
	}
	var s string
	err := q.QueryRowContext(ctx, db.q(`SELECT policy FROM agg_hours
		WHERE policy_domain = ? AND hour >= ? AND hour < ?
		ORDER BY policy_seen DESC LIMIT 1`), domain, p.Begin.Unix(), p.End.Unix()).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return pub, false, nil
	}
	if err == nil {
		err = json.Unmarshal([]byte(s), &pub)
	}
	if err != nil {
		return pub, false, fmt.Errorf("policy of %s: %w", domain, err)
	}
	return pub, true, nil
}

// Count implements Store.
func (db *DB) Count(ctx context.Context, domain string, p Period) (Counts, error) {
	var c Counts
	if err := p.Check(); err != nil {
		return c, err
	}
	err := db.r.QueryRowContext(ctx, db.q(`SELECT COUNT(DISTINCT key_hash), CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM agg_counts
		WHERE policy_domain = ? AND hour >= ? AND hour < ?`), domainName(domain), p.Begin.Unix(), p.End.Unix()).
		Scan(&c.Records, &c.Messages)
	if err != nil {
		return c, fmt.Errorf("count %s: %w", domain, err)
	}
	return c, nil
}

// keyColumns are the columns of agg_keys that make a Key, as scanKey reads
// them.
const keyColumns = `k.policy_domain, k.source_ip, k.header_from, k.envelope_from, k.envelope_to,
	k.disposition, k.dkim, k.spf, k.reasons, k.auth_dkim, k.auth_spf`

// scanRecords calls fn for each row of keyColumns and a count.
func scanRecords(rows *sql.Rows, fn func(Record) error) error {
	defer rows.Close()
	for rows.Next() {
		var r Record
		var ip, to, reasons, dkim, spf string
		if err := rows.Scan(&r.PolicyDomain, &ip, &r.HeaderFrom, &r.EnvelopeFrom, &to,
			&r.Disposition, &r.DKIM, &r.SPF, &reasons, &dkim, &spf, &r.Count); err != nil {
			return err
		}
		if ip != "" {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return fmt.Errorf("source_ip %q: %w", ip, err)
			}
			r.SourceIP = a
		}
		if err := r.setKeyLists(to, reasons, dkim, spf); err != nil {
			return fmt.Errorf("record lists: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Records implements Store.
func (db *DB) Records(ctx context.Context, domain string, p Period, fn func(Record) error) error {
	if err := p.Check(); err != nil {
		return err
	}
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT `+keyColumns+`, c.n
		FROM (SELECT key_hash, CAST(SUM(count) AS BIGINT) AS n FROM agg_counts
			WHERE policy_domain = ? AND hour >= ? AND hour < ? GROUP BY key_hash) c
		JOIN agg_keys k ON k.key_hash = c.key_hash
		ORDER BY c.key_hash`), domainName(domain), p.Begin.Unix(), p.End.Unix())
	if err == nil {
		err = scanRecords(rows, fn)
	}
	if err != nil {
		return fmt.Errorf("records of %s %v: %w", domain, p, err)
	}
	return nil
}

// reportColumns are the columns of reports that scanReport reads.
const reportColumns = `r.id, r.report_id, r.policy_domain, r.begin_at, r.end_at, r.policy, r.state, r.records, r.messages,
	r.attempts, r.next_attempt_at, r.last_error, r.created_at, r.updated_at`

func scanReport(s interface{ Scan(...any) error }) (id int64, r Report, err error) {
	var begin, end, created, updated int64
	var next sql.NullInt64
	var policy, state string
	err = s.Scan(&id, &r.ID, &r.Domain, &begin, &end, &policy, &state, &r.Records, &r.Messages,
		&r.Attempts, &next, &r.LastError, &created, &updated)
	if err != nil {
		return 0, r, err
	}
	r.Period = Period{unix(begin), unix(end)}
	r.State = ReportState(state)
	r.NextAttempt = nullUnix(next)
	r.Created, r.Updated = unix(created), unix(updated)
	if err := json.Unmarshal([]byte(policy), &r.Policy); err != nil {
		return 0, r, fmt.Errorf("policy of report %s: %w", r.ID, err)
	}
	return id, r, nil
}

// report reads one report by its report_id.
func (db *DB) report(ctx context.Context, q querier, id string) (int64, Report, error) {
	rid, r, err := scanReport(q.QueryRowContext(ctx, db.q(`SELECT `+reportColumns+` FROM reports r WHERE r.report_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, r, fmt.Errorf("report %s: %w", id, ErrNotFound)
	}
	return rid, r, err
}

// CreateReport implements Store.
func (db *DB) CreateReport(ctx context.Context, nr NewReport) (rep Report, created bool, err error) {
	if err := nr.Period.Check(); err != nil {
		return rep, false, err
	}
	domain := domainName(nr.Domain)
	if domain == "" {
		return rep, false, errors.New("create report: no domain")
	}
	id := ReportID(db.opts.Reporter, domain, nr.Period)
	begin, end := nr.Period.Begin.Unix(), nr.Period.End.Unix()
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.d.lock(ctx, tx, "report/"+domain); err != nil {
			return err
		}
		_, r, err := db.report(ctx, tx, id)
		if err == nil {
			rep = r
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		var other string
		err = tx.QueryRowContext(ctx, db.q(`SELECT report_id FROM reports
			WHERE policy_domain = ? AND begin_at < ? AND end_at > ? LIMIT 1`), domain, end, begin).Scan(&other)
		if err == nil {
			return fmt.Errorf("%w: report %s", ErrOverlap, other)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		policy := nr.Policy
		if policy.Domain == "" {
			if policy, _, err = db.policy(ctx, tx, domain, nr.Period); err != nil {
				return err
			}
		}
		now := db.now().Unix()
		var rid int64
		err = tx.QueryRowContext(ctx, db.q(`INSERT INTO reports
			(report_id, policy_domain, begin_at, end_at, policy, state, records, messages, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?) RETURNING id`),
			id, domain, begin, end, mustJSON(policy), string(ReportPending), now, now).Scan(&rid)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, db.q(`INSERT INTO report_records (report, key_hash, count)
			SELECT CAST(? AS BIGINT), c.key_hash, SUM(c.count) FROM agg_counts c
			JOIN agg_keys k ON k.key_hash = c.key_hash
			WHERE c.policy_domain = ? AND c.hour >= ? AND c.hour < ?
			GROUP BY c.key_hash`), rid, domain, begin, end)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNoData
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE reports SET
			records = (SELECT COUNT(*) FROM report_records WHERE report = ?),
			messages = (SELECT SUM(count) FROM report_records WHERE report = ?)
			WHERE id = ?`), rid, rid, rid); err != nil {
			return err
		}
		if err := db.addDeliveries(ctx, tx, rid, nr); err != nil {
			return err
		}
		if err := db.settleReport(ctx, tx, rid, 0, ""); err != nil {
			return err
		}
		_, rep, err = db.report(ctx, tx, id)
		created = err == nil
		return err
	})
	if err != nil {
		return Report{}, false, fmt.Errorf("create report of %s for %v: %w", domain, nr.Period, err)
	}
	return rep, created, nil
}

// addDeliveries queues report rid to each destination of nr once.
func (db *DB) addDeliveries(ctx context.Context, tx *sql.Tx, rid int64, nr NewReport) error {
	sups, err := db.suppressions(ctx, tx)
	if err != nil {
		return err
	}
	next := nr.NotBefore
	if next.IsZero() {
		next = db.now()
	}
	now := db.now().Unix()
	seen := map[string]bool{}
	for _, d := range nr.Destinations {
		addr := strings.ToLower(strings.TrimSpace(d.Address))
		if addr == "" || seen[addr] {
			continue
		}
		seen[addr] = true
		state, nextAt := DeliveryPending, sql.NullInt64{Int64: next.Unix(), Valid: true}
		if suppressed(sups, addr) {
			state, nextAt = DeliverySuppressed, sql.NullInt64{}
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO deliveries
			(report, destination, dest_domain, max_size, state, next_attempt_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
			rid, addr, addressDomain(addr), d.MaxSize, string(state), nextAt, now); err != nil {
			return err
		}
	}
	return nil
}

func suppressed(sups []Suppression, addr string) bool {
	for _, s := range sups {
		if s.Matches(addr) {
			return true
		}
	}
	return false
}

// settleReport sets the state of report rid from its deliveries, and adds
// attempts and the last error.
func (db *DB) settleReport(ctx context.Context, tx *sql.Tx, rid int64, attempts int, lastError string) error {
	rows, err := tx.QueryContext(ctx, db.q(`SELECT state, COUNT(*), MIN(next_attempt_at) FROM deliveries WHERE report = ? GROUP BY state`), rid)
	if err != nil {
		return err
	}
	n := map[DeliveryState]int{}
	var next sql.NullInt64
	for rows.Next() {
		var s string
		var c int
		var nx sql.NullInt64
		if err := rows.Scan(&s, &c, &nx); err != nil {
			rows.Close()
			return err
		}
		n[DeliveryState(s)] = c
		if DeliveryState(s) == DeliveryPending {
			next = nx
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	state := ReportSkipped
	switch {
	case n[DeliveryPending] > 0:
		state = ReportPending
	case n[DeliverySent] > 0:
		state = ReportSent
	case n[DeliveryFailed] > 0:
		state = ReportFailed
	}
	_, err = tx.ExecContext(ctx, db.q(`UPDATE reports SET state = ?, next_attempt_at = ?, attempts = attempts + ?,
		last_error = CASE WHEN ? = '' THEN last_error ELSE ? END, updated_at = ? WHERE id = ?`),
		string(state), next, attempts, lastError, lastError, db.now().Unix(), rid)
	return err
}

// Report implements Store.
func (db *DB) Report(ctx context.Context, id string) (Report, error) {
	_, r, err := db.report(ctx, db.r, id)
	return r, err
}

// Reports implements Store.
func (db *DB) Reports(ctx context.Context, f ReportFilter) ([]Report, error) {
	where, args := []string{"1 = 1"}, []any{}
	if f.Domain != "" {
		where, args = append(where, "r.policy_domain = ?"), append(args, domainName(f.Domain))
	}
	if f.State != "" {
		where, args = append(where, "r.state = ?"), append(args, string(f.State))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT `+reportColumns+` FROM reports r WHERE `+
		strings.Join(where, " AND ")+` ORDER BY r.begin_at DESC, r.policy_domain LIMIT `+strconv.Itoa(limit)), args...)
	out, err := collect(rows, err, func(rows *sql.Rows) (Report, error) {
		_, r, err := scanReport(rows)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	return out, nil
}

// ReportRecords implements Store.
func (db *DB) ReportRecords(ctx context.Context, id string, fn func(Record) error) error {
	rid, _, err := db.report(ctx, db.r, id)
	if err != nil {
		return err
	}
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT `+keyColumns+`, rr.count
		FROM report_records rr JOIN agg_keys k ON k.key_hash = rr.key_hash
		WHERE rr.report = ? ORDER BY rr.key_hash`), rid)
	if err == nil {
		err = scanRecords(rows, fn)
	}
	if err != nil {
		return fmt.Errorf("records of report %s: %w", id, err)
	}
	return nil
}

// deliveryColumns are the columns that scanDelivery reads.
const deliveryColumns = `d.id, r.report_id, r.policy_domain, r.begin_at, r.end_at, d.destination, d.max_size, d.state,
	d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_error, d.sent_at, d.created_at`

func scanDelivery(s interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var begin, end, created int64
	var next, last, sent sql.NullInt64
	var state string
	err := s.Scan(&d.ID, &d.ReportID, &d.Domain, &begin, &end, &d.Destination.Address, &d.Destination.MaxSize, &state,
		&d.Attempts, &next, &last, &d.LastError, &sent, &created)
	d.Period = Period{unix(begin), unix(end)}
	d.State = DeliveryState(state)
	d.NextAttempt, d.LastAttempt, d.Sent = nullUnix(next), nullUnix(last), nullUnix(sent)
	d.Created = unix(created)
	return d, err
}

func (db *DB) deliveries(ctx context.Context, q querier, where string, args ...any) ([]Delivery, error) {
	rows, err := q.QueryContext(ctx, db.q(`SELECT `+deliveryColumns+` FROM deliveries d JOIN reports r ON r.id = d.report WHERE `+where), args...)
	return collect(rows, err, func(rows *sql.Rows) (Delivery, error) { return scanDelivery(rows) })
}

// Deliveries implements Store.
func (db *DB) Deliveries(ctx context.Context, id string) ([]Delivery, error) {
	ds, err := db.deliveries(ctx, db.r, `r.report_id = ? ORDER BY d.id`, id)
	if err != nil {
		return nil, fmt.Errorf("deliveries of %s: %w", id, err)
	}
	return ds, nil
}

// Due implements Store.
func (db *DB) Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	sups, err := db.suppressions(ctx, db.r)
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	for {
		ds, err := db.deliveries(ctx, db.r, `d.state = ? AND d.next_attempt_at <= ?
			ORDER BY d.next_attempt_at, d.id LIMIT `+strconv.Itoa(limit), string(DeliveryPending), now.Unix())
		if err != nil {
			return nil, fmt.Errorf("due deliveries: %w", err)
		}
		due := ds[:0]
		var drop []Delivery
		for _, d := range ds {
			if suppressed(sups, d.Destination.Address) {
				drop = append(drop, d)
			} else {
				due = append(due, d)
			}
		}
		if len(drop) == 0 {
			return due, nil
		}
		if err := db.suppressDeliveries(ctx, drop); err != nil {
			return nil, fmt.Errorf("due deliveries: %w", err)
		}
		// Those dropped made room: look again.
	}
}

// suppressDeliveries marks pending deliveries suppressed.
func (db *DB) suppressDeliveries(ctx context.Context, ds []Delivery) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		for _, d := range ds {
			var rid int64
			err := tx.QueryRowContext(ctx, db.q(`UPDATE deliveries SET state = ?, next_attempt_at = NULL
				WHERE id = ? AND state = ? RETURNING report`),
				string(DeliverySuppressed), d.ID, string(DeliveryPending)).Scan(&rid)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			} else if err != nil {
				return err
			}
			if err := db.settleReport(ctx, tx, rid, 0, ""); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecordAttempt implements Store.
func (db *DB) RecordAttempt(ctx context.Context, a Attempt) (Delivery, error) {
	var out Delivery
	at := a.At
	if at.IsZero() {
		at = db.now()
	}
	msg := text(a.Error)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var rid int64
		var dest, state string
		err := tx.QueryRowContext(ctx, db.q(`SELECT report, destination, state FROM deliveries WHERE id = ?`), a.Delivery).
			Scan(&rid, &dest, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if DeliveryState(state) != DeliveryPending {
			return ErrNotPending
		}
		const set = `UPDATE deliveries SET state = ?, attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
			next_attempt_at = ?, sent_at = ? WHERE id = ?`
		var next, sent sql.NullInt64
		switch a.Outcome {
		case Delivered:
			sent = sql.NullInt64{Int64: at.Unix(), Valid: true}
			state, msg = string(DeliverySent), ""
			_, err = tx.ExecContext(ctx, db.q(`INSERT INTO destinations (destination, permanent_failures, last_success_at)
				VALUES (?, 0, ?) ON CONFLICT (destination) DO UPDATE SET
				permanent_failures = 0, last_success_at = excluded.last_success_at`), dest, at.Unix())
		case TempFailed:
			n := a.Next
			if !n.After(at) {
				n = at.Add(time.Minute)
			}
			next = sql.NullInt64{Int64: n.Unix(), Valid: true}
		case PermFailed:
			state = string(DeliveryFailed)
			err = db.countFailure(ctx, tx, dest, at, msg)
		default:
			return fmt.Errorf("unknown outcome %v", a.Outcome)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(set), state, at.Unix(), msg, next, sent, a.Delivery); err != nil {
			return err
		}
		if err := db.settleReport(ctx, tx, rid, 1, msg); err != nil {
			return err
		}
		ds, err := db.deliveries(ctx, tx, `d.id = ?`, a.Delivery)
		if err == nil {
			out = ds[0]
		}
		return err
	})
	if err != nil {
		return out, fmt.Errorf("record attempt at delivery %d: %w", a.Delivery, err)
	}
	return out, nil
}

// countFailure counts a permanent failure of dest, and suppresses it when
// that makes Options.SuppressAfter in a row.
func (db *DB) countFailure(ctx context.Context, tx *sql.Tx, dest string, at time.Time, msg string) error {
	var n int
	err := tx.QueryRowContext(ctx, db.q(`INSERT INTO destinations (destination, permanent_failures, last_failure_at, last_error)
		VALUES (?, 1, ?, ?) ON CONFLICT (destination) DO UPDATE SET
		permanent_failures = destinations.permanent_failures + 1,
		last_failure_at = excluded.last_failure_at, last_error = excluded.last_error
		RETURNING permanent_failures`), dest, at.Unix(), msg).Scan(&n)
	if err != nil || db.opts.SuppressAfter < 0 || n < db.opts.SuppressAfter {
		return err
	}
	reason := fmt.Sprintf("%d permanent failures in a row, the last: %s", n, msg)
	_, err = tx.ExecContext(ctx, db.q(`INSERT INTO suppressions (pattern, reason, auto, created_at) VALUES (?, ?, 1, ?)
		ON CONFLICT (pattern) DO NOTHING`), dest, reason, at.Unix())
	if err == nil {
		db.log.Warn("report destination suppressed", "destination", dest, "reason", reason)
	}
	return err
}

// Attempted implements Store.
func (db *DB) Attempted(ctx context.Context, since time.Time) ([]DestinationCount, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT destination, dest_domain, COUNT(*) FROM deliveries
		WHERE last_attempt_at >= ? GROUP BY destination, dest_domain ORDER BY destination`), since.Unix())
	out, err := collect(rows, err, func(rows *sql.Rows) (c DestinationCount, err error) {
		return c, rows.Scan(&c.Destination, &c.Domain, &c.Count)
	})
	if err != nil {
		return nil, fmt.Errorf("attempted: %w", err)
	}
	return out, nil
}

// Suppress implements Store.
func (db *DB) Suppress(ctx context.Context, s Suppression) error {
	p := strings.ToLower(strings.TrimSpace(s.Pattern))
	if p == "" {
		return errors.New("suppress: empty pattern")
	}
	created := s.Created
	if created.IsZero() {
		created = db.now()
	}
	_, err := db.w.ExecContext(ctx, db.q(`INSERT INTO suppressions (pattern, reason, auto, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (pattern) DO UPDATE SET reason = excluded.reason, auto = excluded.auto`),
		p, text(s.Reason), boolInt(s.Auto), created.Unix())
	if err != nil {
		return fmt.Errorf("suppress %s: %w", p, err)
	}
	return nil
}

// Unsuppress implements Store.
func (db *DB) Unsuppress(ctx context.Context, pattern string) error {
	p := strings.ToLower(strings.TrimSpace(pattern))
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM suppressions WHERE pattern = ?`), p); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT destination FROM destinations WHERE permanent_failures > 0`)
		if err != nil {
			return err
		}
		var reset []string
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return err
			}
			if suppressionMatches(p, d) {
				reset = append(reset, d)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range reset {
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE destinations SET permanent_failures = 0 WHERE destination = ?`), d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unsuppress %s: %w", p, err)
	}
	return nil
}

// Suppressions implements Store.
func (db *DB) Suppressions(ctx context.Context) ([]Suppression, error) {
	s, err := db.suppressions(ctx, db.r)
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	return s, nil
}

func (db *DB) suppressions(ctx context.Context, q querier) ([]Suppression, error) {
	rows, err := q.QueryContext(ctx, `SELECT pattern, reason, auto, created_at FROM suppressions ORDER BY pattern`)
	return collect(rows, err, func(rows *sql.Rows) (s Suppression, err error) {
		var auto, created int64
		err = rows.Scan(&s.Pattern, &s.Reason, &auto, &created)
		s.Auto, s.Created = auto != 0, unix(created)
		return s, err
	})
}

// TryLease implements Store.
func (db *DB) TryLease(ctx context.Context, name string) (Lease, error) {
	if name == "" {
		return nil, errors.New("lease: empty name")
	}
	return db.lease(ctx, name)
}

// Expire implements Store.
func (db *DB) Expire(ctx context.Context, before time.Time) (Expired, error) {
	var x Expired
	cut := before.Unix()
	wrap := func(what string, err error) (Expired, error) {
		return x, fmt.Errorf("expire %s before %v: %w", what, before.UTC(), err)
	}
	// Finished reports, a few at a time so that the writer never waits
	// long behind expiry.
	for {
		var ids []any
		rows, err := db.r.QueryContext(ctx, db.q(`SELECT id FROM reports WHERE end_at <= ? AND state <> ? ORDER BY id LIMIT 200`),
			cut, string(ReportPending))
		if err != nil {
			return wrap("reports", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return wrap("reports", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if len(ids) == 0 {
			break
		}
		in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
		err = db.inTx(ctx, func(tx *sql.Tx) error {
			for _, s := range []string{
				`DELETE FROM report_records WHERE report IN ` + in,
				`DELETE FROM deliveries WHERE report IN ` + in,
				`DELETE FROM reports WHERE id IN ` + in,
			} {
				if _, err := tx.ExecContext(ctx, db.q(s), ids...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return wrap("reports", err)
		}
		x.Reports += int64(len(ids))
	}
	// Hourly data, one domain at a time.
	var domains []string
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT DISTINCT policy_domain FROM agg_hours WHERE hour < ?`), cut)
	if err != nil {
		return wrap("counts", err)
	}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return wrap("counts", err)
		}
		domains = append(domains, d)
	}
	rows.Close()
	for _, d := range domains {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, db.q(`DELETE FROM agg_counts WHERE policy_domain = ? AND hour < ?`), d, cut)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			x.Counts += n
			res, err = tx.ExecContext(ctx, db.q(`DELETE FROM agg_hours WHERE policy_domain = ? AND hour < ?`), d, cut)
			if err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			x.Hours += n
			return nil
		})
		if err != nil {
			return wrap("counts of "+d, err)
		}
	}
	// Keys no hour and no remaining report uses.
	for {
		res, err := db.w.ExecContext(ctx, db.q(`DELETE FROM agg_keys WHERE key_hash IN (
			SELECT k.key_hash FROM agg_keys k WHERE k.last_hour < ?
			AND NOT EXISTS (SELECT 1 FROM report_records rr WHERE rr.key_hash = k.key_hash) LIMIT 5000)`), cut)
		if err != nil {
			return wrap("keys", err)
		}
		n, _ := res.RowsAffected()
		x.Keys += n
		if n == 0 {
			break
		}
	}
	db.keysMu.Lock()
	db.known.forget()
	db.policies.forget()
	db.keysMu.Unlock()
	return x, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

func nullUnix(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return unix(n.Int64)
}
