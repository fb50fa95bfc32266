package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// DefaultFile is the name of the SQLite database in the state directory.
const DefaultFile = "dmarcd.db"

var sqliteDialect = &dialect{
	name:    "sqlite",
	blob:    "BLOB",
	bigint:  "INTEGER",
	id:      "INTEGER PRIMARY KEY",
	norowid: " WITHOUT ROWID",
	// SQLite allows 32,766 parameters since 3.32.
	maxParams: 32000,
	// The one writer connection begins every transaction IMMEDIATE:
	// taking the write lock first serializes whoever else opens the file.
	lockMigrations: func(context.Context, *sql.Tx) error { return nil },
	lock:           func(context.Context, *sql.Tx, string) error { return nil },
}

// OpenSQLite opens the SQLite database at path, creating it (mode 0600)
// and its directory (0700) when missing, and brings its schema up to date.
//
// The database runs in WAL mode with synchronous=NORMAL unless
// Options.Synchronous says FULL. Writes go through one connection, so they
// never wait on each other inside the process; reads (report building,
// listings) use read-only connections and do not stop writes. What a crash
// can lose is on the package documentation.
func OpenSQLite(ctx context.Context, path string, opts Options) (*DB, error) {
	return openSQLite(ctx, path, opts, latestVersion)
}

func openSQLite(ctx context.Context, path string, opts Options, version int) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: unusable database path %q", path)
	}
	syncMode := strings.ToUpper(cmp.Or(opts.Synchronous, "NORMAL"))
	if syncMode != "NORMAL" && syncMode != "FULL" {
		return nil, fmt.Errorf("sqlite: synchronous must be NORMAL or FULL, not %q", opts.Synchronous)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// SQLite gives the -wal and -shm files the database's own mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	f.Close()

	busy := cmp.Or(opts.BusyTimeout, 10*time.Second)
	base := path + "?_pragma=busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")&_pragma=foreign_keys(1)"
	// cache_size: 2 MiB of pages for the writer. Inserts and the rollup
	// touch few pages (the right edge of each index, the hot keys), and the
	// OS page cache holds the rest: BenchmarkIngest is the same with 2, 8
	// and 64 MiB, while make bench saw 64 MiB fill up and make a third of
	// dmarcd's RSS with 100,000 From domains, and 8 MiB another 6 MiB.
	w, err := sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_pragma=synchronous("+syncMode+")&_pragma=cache_size(-2048)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(4)

	db := newDB(sqliteDialect, w, r, opts)
	db.lease = func(ctx context.Context, name string) (Lease, error) { return fileLease(path, name) }
	db.check = func(ctx context.Context) error {
		var res string
		if err := db.w.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
			return fmt.Errorf("sqlite: integrity check: %w", err)
		}
		if res != "ok" {
			return fmt.Errorf("sqlite: integrity check: %s", res)
		}
		return nil
	}
	if every := cmp.Or(opts.CheckpointInterval, 30*time.Second); every > 0 {
		c := &checkpointer{db: db, every: every}
		db.afterSave = c.soon
		db.closing = append(db.closing, c.stop)
	}
	if err := db.migrate(ctx, version); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return db, nil
}

// fileLease takes the lease name on the database at path: an exclusive
// flock of a file beside it, which the kernel releases when the process
// dies, whatever the way.
func fileLease(path, name string) (Lease, error) {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
	l, err := lockFile(path + ".lease-" + safe)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", name, err)
	}
	return &localLease{name: name, lost: make(chan struct{}), unlock: l}, nil
}

// localLease is a lease the kernel keeps: it cannot be lost while the
// process lives.
type localLease struct {
	name   string
	lost   chan struct{}
	once   sync.Once
	unlock func() error
}

// Name implements Lease.
func (l *localLease) Name() string { return l.name }

// Lost implements Lease.
func (l *localLease) Lost() <-chan struct{} { return l.lost }

// Release implements Lease.
func (l *localLease) Release(context.Context) error {
	var err error
	l.once.Do(func() { err = l.unlock() })
	return err
}

// checkpointer checkpoints the WAL of a SQLite database at most `every`
// after a commit. A checkpoint syncs the WAL first: with synchronous
// NORMAL, it is what makes commits survive a power loss, so this bounds
// how old the commits are that one can take away.
type checkpointer struct {
	db    *DB
	every time.Duration

	mu     sync.Mutex
	timer  *time.Timer // armed after a commit, until it fires
	closed bool
}

// soon arms the timer, unless it is armed already.
func (c *checkpointer) soon(context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer == nil && !c.closed {
		c.timer = time.AfterFunc(c.every, c.run)
	}
}

func (c *checkpointer) run() {
	c.mu.Lock()
	defer c.mu.Unlock() // Close waits for a checkpoint under way
	c.timer = nil
	if c.closed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.every)
	defer cancel()
	// PASSIVE: never waits for readers, never blocks them.
	if _, err := c.db.w.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		c.db.log.Warn("sqlite checkpoint", "err", err)
	}
}

func (c *checkpointer) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	return nil
}
