package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// drivers are the stores every conformance test runs against.
var drivers = []struct {
	name string
	open func(t testing.TB, opts store.Options) *store.DB
	// need skips (or fails, in CI) when the driver's server is missing.
	need func(t testing.TB)
}{
	{"sqlite", openSQLite, func(testing.TB) {}},
	{"postgres", openPostgres, func(t testing.TB) { storetest.RequirePostgres(t) }},
}

func TestConformance(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			d.need(t)
			storetest.Run(t, func(t testing.TB, opts store.Options) store.Store { return d.open(t, opts) })
		})
	}
}

func TestReceivedConformance(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			d.need(t)
			storetest.RunReceived(t, func(t testing.TB, opts store.Options) store.Received { return d.open(t, opts) })
		})
	}
}

// TestReceivedInsertFailingHalfwayLeavesNothing fails the transaction of a
// report after its row is written: neither the row nor any record stays,
// and the same report can be added afterwards.
func TestReceivedInsertFailingHalfwayLeavesNothing(t *testing.T) {
	ctx := context.Background()
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			d.need(t)
			db := d.open(t, store.Options{})
			r := storetest.Received("google.com", "1", "example.com", storetest.T0,
				storetest.Rec("192.0.2.1", 1, "pass", "pass"), storetest.Rec("192.0.2.2", 2, "pass", "pass"))
			boom := errors.New("boom")
			func() {
				sub := &cleanups{}
				defer sub.run()
				store.FailReceivedInserts(sub, boom)
				if _, _, err := db.AddReceived(ctx, r); !errors.Is(err, boom) {
					t.Fatalf("AddReceived = %v, want boom", err)
				}
			}()
			if n := storetest.Totals(t, db); n != (store.ReceivedTotals{}) {
				t.Fatalf("after a failed insert: %+v, want nothing", n)
			}
			if _, added, err := db.AddReceived(ctx, r); err != nil || !added {
				t.Fatalf("AddReceived after the failure = %v, %v", added, err)
			}
			if n := storetest.Totals(t, db); n != (store.ReceivedTotals{Reports: 1, Records: 2}) {
				t.Errorf("totals %+v", n)
			}
		})
	}
}

// cleanups runs functions registered with Cleanup when run is called.
type cleanups struct{ fns []func() }

func (c *cleanups) Cleanup(f func()) { c.fns = append(c.fns, f) }
func (c *cleanups) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
}

// openSQLite opens a new SQLite store in a temporary directory.
func openSQLite(t testing.TB, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), store.DefaultFile), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres opens a store in a new schema of the test database.
func openPostgres(t testing.TB, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.OpenPostgres(context.Background(), storetest.PostgresDSN(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenMigratesAnOldDatabase(t *testing.T) {
	ctx := context.Background()
	for _, d := range []struct {
		name string
		at   func(t *testing.T, version int) (*store.DB, func() *store.DB)
	}{
		{"sqlite", func(t *testing.T, version int) (*store.DB, func() *store.DB) {
			path := filepath.Join(t.TempDir(), store.DefaultFile)
			db, err := store.OpenSQLiteAt(ctx, path, store.Options{}, version)
			if err != nil {
				t.Fatal(err)
			}
			return db, func() *store.DB {
				db, err := store.OpenSQLite(ctx, path, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return db
			}
		}},
		{"postgres", func(t *testing.T, version int) (*store.DB, func() *store.DB) {
			dsn := storetest.PostgresDSN(t)
			db, err := store.OpenPostgresAt(ctx, dsn, store.Options{}, version)
			if err != nil {
				t.Fatal(err)
			}
			return db, func() *store.DB {
				db, err := store.OpenPostgres(ctx, dsn, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return db
			}
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			old, reopen := d.at(t, 1)
			if v, err := old.SchemaVersion(ctx); err != nil || v != 1 {
				t.Fatalf("old version = %d, %v", v, err)
			}
			// Version 1 has the roll-up tables and nothing else.
			storetest.Ingest(t, old, storetest.Row("example.com", storetest.T0, "192.0.2.1"))
			if _, err := old.Suppressions(ctx); err == nil {
				t.Fatal("version 1 has a suppression list")
			}
			old.Close()

			db := reopen()
			defer db.Close()
			if v, err := db.SchemaVersion(ctx); err != nil || v != store.LatestVersion {
				t.Fatalf("version after open = %d, %v, want %d", v, err, store.LatestVersion)
			}
			rep, _, err := db.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: storetest.Day})
			if err != nil || rep.Messages != 1 {
				t.Fatalf("report on the upgraded store: %+v, %v", rep, err)
			}
			if _, err := db.Suppressions(ctx); err != nil {
				t.Errorf("Suppressions after upgrade: %v", err)
			}
			db.Close()
			db = reopen() // and opening again changes nothing
			if v, _ := db.SchemaVersion(ctx); v != store.LatestVersion {
				t.Errorf("version after a second open = %d", v)
			}
			db.Close()
		})
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), store.DefaultFile)
	db, err := store.OpenSQLite(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteConn().ExecContext(ctx, `INSERT INTO schema_version VALUES (999, 'from the future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := store.OpenSQLite(ctx, path, store.Options{}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("open = %v, want ErrSchemaTooNew", err)
	}
}

func TestSQLiteFileIsPrivateAndInWALMode(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	db, err := store.Open(ctx, store.Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.Ingest(t, db, storetest.Row("example.com", storetest.T0, "192.0.2.1"))
	for _, name := range []string{store.DefaultFile, store.DefaultFile + "-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", name, m)
		}
	}
	for _, c := range []struct{ pragma, want string }{
		{"journal_mode", "wal"}, {"synchronous", "1"}, {"busy_timeout", "10000"}, {"foreign_keys", "1"},
	} {
		var got string
		if err := db.WriteConn().QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil || got != c.want {
			t.Errorf("PRAGMA %s = %q, %v, want %q", c.pragma, got, err, c.want)
		}
	}
	if err := db.Check(ctx); err != nil {
		t.Error(err)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	ctx := context.Background()
	for _, c := range []store.Config{
		{},
		{Driver: "postgres"},
		{Driver: "mysql", DSN: "x"},
		{Path: filepath.Join(t.TempDir(), "a?b")},
		{Path: filepath.Join(t.TempDir(), "x.db"), Options: store.Options{Synchronous: "OFF"}},
	} {
		if db, err := store.Open(ctx, c); err == nil {
			db.Close()
			t.Errorf("Open(%+v) succeeded", c)
		}
	}
}

// TestPostgresNodesWritingTheSameKeysSumExactly is two dmarcd nodes, each
// with its Writer, counting the same keys in one database at once.
func TestPostgresNodesWritingTheSameKeysSumExactly(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	const perWorker, workers, keys = 5000, 4, 50
	var nodes []*store.DB
	var writers []*store.Writer
	for range 2 {
		db, err := store.OpenPostgres(ctx, dsn, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		nodes = append(nodes, db)
		writers = append(writers, store.NewWriter(db, store.WriterOptions{FlushRows: 200, FlushInterval: 10 * time.Millisecond}))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			wr := writers[w%2]
			for i := range perWorker {
				wr.Add(storetest.Row("example.com", storetest.T0.Add(time.Duration(i%3)*time.Hour), fmt.Sprintf("192.0.2.%d", i%keys)))
				if i%500 == 0 {
					// Make the two nodes' transactions overlap often.
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	for _, w := range writers {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.Dropped != 0 || st.Written != perWorker*workers/2 {
			t.Errorf("writer stats %+v: want %d written, none dropped", st, perWorker*workers/2)
		}
	}
	for i, db := range nodes {
		rs := storetest.Records(t, db, "example.com", storetest.Day)
		if n := storetest.Total(rs); n != perWorker*workers || len(rs) != keys {
			t.Errorf("node %d reads %d records totalling %d, want %d totalling %d", i, len(rs), n, keys, perWorker*workers)
		}
		for _, r := range rs {
			if r.Count != perWorker*workers/keys {
				t.Errorf("%v: count %d, want %d", r.SourceIP, r.Count, perWorker*workers/keys)
			}
		}
	}
}

// TestPostgresNodesCreateOneReport is two nodes creating the same report
// at once, again and again: one report, one ID, one set of deliveries.
func TestPostgresNodesCreateOneReport(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	var nodes []*store.DB
	for range 2 {
		db, err := store.OpenPostgres(ctx, dsn, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		nodes = append(nodes, db)
	}
	var rows []report.Row
	for i := range 100 {
		rows = append(rows, storetest.Row("example.com", storetest.T0.Add(time.Duration(i%24)*time.Hour), fmt.Sprintf("192.0.2.%d", i%10)))
	}
	storetest.Ingest(t, nodes[0], rows...)
	ids := make(chan string, 20)
	created := make(chan bool, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			rep, c, err := nodes[i%2].CreateReport(ctx, store.NewReport{Domain: "example.com", Period: storetest.Day,
				Destinations: []store.Destination{{Address: "dmarc@example.com"}}})
			if err != nil {
				t.Errorf("CreateReport: %v", err)
				return
			}
			ids <- rep.ID
			created <- c
		})
	}
	wg.Wait()
	close(ids)
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	want := store.ReportID("", "example.com", storetest.Day)
	for id := range ids {
		if id != want {
			t.Errorf("report ID %s, want %s", id, want)
		}
	}
	if n != 1 {
		t.Errorf("%d calls created the report, want 1", n)
	}
	rs, err := nodes[1].Reports(ctx, store.ReportFilter{})
	if err != nil || len(rs) != 1 || rs[0].Messages != 100 {
		t.Errorf("Reports = %+v, %v, want one of 100 messages", rs, err)
	}
	if ds, err := nodes[0].Deliveries(ctx, want); err != nil || len(ds) != 1 {
		t.Errorf("Deliveries = %+v, %v, want 1", ds, err)
	}
}

// TestPostgresLeaseMovesWhenItsHolderDies is two nodes contending for the
// sender lease; the holder's session is killed, and the other takes over.
func TestPostgresLeaseMovesWhenItsHolderDies(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	opts := store.Options{LeaseCheck: 50 * time.Millisecond}
	a, err := store.OpenPostgres(ctx, dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := store.OpenPostgres(ctx, dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	name := fmt.Sprintf("sender-%d", rand.Uint32())
	held, err := a.TryLease(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryLease(ctx, name); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("the other node's TryLease = %v, want ErrLeaseHeld", err)
	}
	// A released lease goes to the other node at once.
	held.Release(ctx)
	held, err = b.TryLease(ctx, name)
	if err != nil {
		t.Fatalf("TryLease after release: %v", err)
	}
	if _, err := a.TryLease(ctx, name); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("TryLease while b holds = %v, want ErrLeaseHeld", err)
	}

	// The holder dies: its session ends as a crash would end it.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		"dmarcd lease "+name).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d sessions, %v", killed, err)
	}
	select {
	case <-held.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the dead holder did not notice it lost the lease")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := a.TryLease(ctx, name)
		if err == nil {
			l.Release(ctx)
			break
		}
		if !errors.Is(err, store.ErrLeaseHeld) || time.Now().After(deadline) {
			t.Fatalf("takeover: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := held.Release(ctx); err != nil {
		t.Errorf("Release of a lost lease: %v", err)
	}
}

func TestSQLiteCheckpointsSoonAfterACommit(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		every time.Duration
		want  bool
	}{
		{"with an interval, the WAL reaches the database file", 20 * time.Millisecond, true},
		{"with none, it waits for SQLite's own checkpoint", -1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), store.DefaultFile)
			db, err := store.OpenSQLite(ctx, path, store.Options{CheckpointInterval: c.every})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			size := func() int64 {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				return fi.Size()
			}
			before := size()
			var rows []report.Row
			for i := range 2000 {
				rows = append(rows, storetest.Row("example.com", storetest.T0, fmt.Sprintf("2001:db8::%x", i)))
			}
			storetest.Ingest(t, db, rows...)
			time.Sleep(300 * time.Millisecond)
			if grew := size() > before; grew != c.want {
				t.Errorf("database file grew from %d to %d bytes: %v, want %v", before, size(), grew, c.want)
			}
		})
	}
}

// TestAnHourWithTheSamePolicyIsWrittenOnce checks that Ingest leaves an
// agg_hours row alone while its policy stays the same (policy_seen is
// when it was written), writes it when the policy changes, and again
// after Expire forgot what it wrote.
func TestAnHourWithTheSamePolicyIsWrittenOnce(t *testing.T) {
	ctx := context.Background()
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			d.need(t)
			db := d.open(t, store.Options{})
			seen := func() time.Time {
				t.Helper()
				at, err := db.PolicySeen(ctx, "example.com", storetest.T0)
				if err != nil {
					t.Fatal(err)
				}
				return at
			}
			at := func(m int) time.Time { return storetest.T0.Add(time.Duration(m) * time.Minute) }
			storetest.Ingest(t, db, storetest.Row("example.com", at(1), "192.0.2.1"))
			storetest.Ingest(t, db, storetest.Row("example.com", at(2), "192.0.2.2"))
			if got := seen(); !got.Equal(at(1)) {
				t.Errorf("the same policy again: policy_seen %v, want %v (not written again)", got, at(1))
			}
			storetest.Ingest(t, db, storetest.Row("example.com", at(3), "192.0.2.1", func(r *report.Row) { r.Published.P = "none" }))
			if got := seen(); !got.Equal(at(3)) {
				t.Errorf("a new policy: policy_seen %v, want %v", got, at(3))
			}
			if _, err := db.Expire(ctx, storetest.T0.Add(-48*time.Hour)); err != nil {
				t.Fatal(err)
			}
			storetest.Ingest(t, db, storetest.Row("example.com", at(4), "192.0.2.1", func(r *report.Row) { r.Published.P = "none" }))
			if got := seen(); !got.Equal(at(4)) {
				t.Errorf("after Expire: policy_seen %v, want %v (written again)", got, at(4))
			}
		})
	}
}

// TestExpireDuringIngest runs Expire while a Writer ingests: Expire
// empties what Ingest remembers of the rows it wrote, and an Ingest
// committing then must go on (a panic here once took the daemon down).
func TestExpireDuringIngest(t *testing.T) {
	ctx := context.Background()
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			d.need(t)
			db := d.open(t, store.Options{})
			w := store.NewWriter(db, store.WriterOptions{FlushRows: 1})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range 200 {
					if _, err := db.Expire(ctx, storetest.T0.Add(-48*time.Hour)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			for i := 0; ; i++ {
				select {
				case <-done:
					if err := w.Close(ctx); err != nil {
						t.Fatal(err)
					}
					if st := w.Stats(); st.Written != st.Added || st.Failures != 0 {
						t.Errorf("writer stats %+v: every row should be written", st)
					}
					return
				default:
				}
				w.Add(storetest.Row(fmt.Sprintf("d%d.example", i%50), storetest.T0, "192.0.2.1"))
				if i%10 == 0 {
					if err := w.Flush(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}
